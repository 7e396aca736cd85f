# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
name: prometheus_metrics
short_description: A host's overlay state as a Prometheus textfile-collector file
version_added: 1.0.0
description:
  - Takes the result of M(overlayfs.mounts.overlay_mounts) (registered, failed
    or not) and returns the text of a Prometheus textfile-collector file, for
    node_exporter's C(--collector.textfile.directory).
    M(overlayfs.mounts.overlay_mounts) writes the same text on the host with
    O(overlayfs.mounts.overlay_mounts#module:metrics_file), which the
    C(overlayfs.mounts.overlay_host) role sets from C(overlay_host_metrics_dir).
  - Every metric is a gauge named C(overlayfs_mounts_*), with one HELP and one
    TYPE line - C(declared) (by C(state)), C(mounted) and C(drifting) (by
    C(engine)), C(drift) (V(1) per C(engine), C(mount_point) and C(field)),
    C(failed), C(corrected_fields) and C(last_check_timestamp_seconds).
    The collection's guide docs/overlay_host.md lists them with example queries.
  - Declared overlays have the engine V(overlayfs.mounts); with O(overlays),
    every other overlay of the host counts under the engine
    M(overlayfs.mounts.overlay_mount_info) gives it (V(none) when none is
    known), with its live-versus-persisted drift.
  - With O(check_mode=true) the result's drift rows are the host's drift; after
    a real run they are what the run corrected (C(corrected_fields)), and the
    declared overlays count as drifting no more.
  - Label values are paths as M(overlayfs.mounts.overlay_mount_info) returns
    them (a byte that is not UTF-8 as C(\NNN)), with backslash, double quote
    and newline escaped as the exposition format asks.
options:
  _input:
    description: The registered result of M(overlayfs.mounts.overlay_mounts).
    type: dict
    required: true
  declared:
    description:
      - The list of overlays the task was given, to count them by C(state)
        (V(mounted) where an entry does not say). Without it, the entries of
        the result are counted.
    type: list
    elements: dict
  overlays:
    description:
      - C(overlay_mounts) of M(overlayfs.mounts.overlay_mount_info) run after
        the task, to count every overlay mounted on the host by engine.
        Without it, C(mounted) counts the declared overlays the result shows live.
    type: list
    elements: dict
  check_mode:
    description: Whether the task ran in check mode (pass C(ansible_check_mode)).
    type: bool
    default: false
  timestamp:
    description: The time of the check, in seconds since the Unix epoch; now when omitted.
    type: float
author:
  - overlayfs.mounts developers (@overlayfs-mounts)
"""

EXAMPLES = r"""
- name: Converge the overlays, keeping the result
  overlayfs.mounts.overlay_mounts:
    mounts: "{{ my_overlays }}"
  register: converged

- name: Read every overlay of the host
  overlayfs.mounts.overlay_mount_info:
  register: info

- name: Write the metrics for node_exporter (atomically replaced)
  ansible.builtin.copy:
    dest: /var/lib/prometheus/node-exporter/overlayfs_mounts.prom
    content: "{{ converged | overlayfs.mounts.prometheus_metrics(declared=my_overlays, overlays=info.overlay_mounts,
                                                               check_mode=ansible_check_mode) }}"
    mode: "0644"
"""

RETURN = r"""
_value:
  description: The text of the file, in the Prometheus text exposition format, ending in a newline.
  type: str
  sample: |
    # HELP overlayfs_mounts_drifting Overlays that differed from their declaration ...
    # TYPE overlayfs_mounts_drifting gauge
    overlayfs_mounts_drifting{engine="overlayfs.mounts"} 1
    # HELP overlayfs_mounts_drift 1 for each field of an overlay that differed at the last check ...
    # TYPE overlayfs_mounts_drift gauge
    overlayfs_mounts_drift{engine="overlayfs.mounts",mount_point="/srv/app",field="lowerdir"} 1
"""

import time
from typing import Any, Callable, Dict

from ansible.errors import AnsibleFilterError

from ansible_collections.overlayfs.mounts.plugins.module_utils._report.metrics import render


def _list_of_dicts(value: Any, name: str) -> None:
    if value is not None and (not isinstance(value, (list, tuple)) or not all(isinstance(v, dict) for v in value)):
        raise AnsibleFilterError("prometheus_metrics: %s must be a list of dictionaries, not %r" % (name, value))


def prometheus_metrics(result: Any, declared: Any = None, overlays: Any = None, check_mode: Any = False,
                       timestamp: Any = None) -> str:
    """The textfile-collector text of an overlay_mounts ``result``."""
    if not isinstance(result, dict):
        raise AnsibleFilterError("prometheus_metrics expects the registered result of overlayfs.mounts.overlay_mounts")
    _list_of_dicts(declared, "declared")
    _list_of_dicts(overlays, "overlays")
    if not isinstance(check_mode, bool):
        raise AnsibleFilterError("prometheus_metrics: check_mode must be true or false (ansible_check_mode), not %r" % (check_mode,))
    try:
        when = time.time() if timestamp is None else float(timestamp)
    except (TypeError, ValueError):
        raise AnsibleFilterError("prometheus_metrics: timestamp must be seconds since the epoch, not %r" % (timestamp,)) from None
    return render(result, when, declared=declared, overlays=overlays, check_mode=check_mode)


class FilterModule:
    """The ``prometheus_metrics`` filter."""

    def filters(self) -> Dict[str, Callable[..., Any]]:
        """The filters of this plugin, by name."""
        return {"prometheus_metrics": prometheus_metrics}
