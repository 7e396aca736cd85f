# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
name: drift_report
short_description: Build the fleet overlay drift report from per-host data
version_added: 1.0.0
description:
  - Takes a dictionary of host name to the data the C(overlayfs.mounts.drift_report)
    playbook gathers on that host (C(declared) drift rows, C(declared_paths),
    C(declared_mount_points), C(errors), and C(overlays) from
    M(overlayfs.mounts.overlay_mount_info)) and returns the report, with a
    summary per host and one row per drifted field.
  - A mount point is compared as the directory it names, not as a string. A
    declared path spelled through a symlink (C(/srv/link/m) where
    C(/srv/link) leads to C(/data/real)) is the overlay mounted at
    C(/data/real/m) - C(declared_mount_points) maps each declared path to the
    mount point it leads to on its host (M(overlayfs.mounts.overlay_mounts)'
    C(mount.path)), as do the C(aliases) of
    M(overlayfs.mounts.overlay_mount_info)'s entries - so each overlay has
    one set of rows, under its mount point, with C(declared_path) the path as
    declared.
  - Paths are shown as M(overlayfs.mounts.overlay_mount_info) returns them
    (a byte that is not UTF-8 as C(\NNN)); declared data is escaped the
    same way. In the Markdown, every control character (C0, DEL, C1) also
    shows as C(\NNN), lists show as JSON, and C(|), a backtick, C(<) and a
    backslash before punctuation carry a backslash, so that nothing a mount
    point is named reaches a terminal raw or breaks a table row.
  - With O(_input) already a report and O(output=markdown), renders it as Markdown.
  - Rows come grouped by the C(engine) each overlay belongs to (the field of
    M(overlayfs.mounts.overlay_mount_info); declared overlays are this
    collection's), in this order - V(overlayfs.mounts), V(none), V(docker),
    V(containers-storage), V(systemd-sysext), V(systemd-confext),
    V(composefs), V(fuse-overlayfs) - so a host's own overlays come first.
options:
  _input:
    description: The per-host data, or a report to render.
    type: dict
    required: true
  output:
    description: V(data) returns the report itself, V(markdown) a Markdown document.
    type: str
    choices: [data, markdown]
    default: data
  engines:
    description:
      - Keep only the overlays (rows and counts) of these engines, for
        example V([overlayfs.mounts, none]) to leave the containers out.
      - Applies when building the report from per-host data.
    type: list
    elements: str
author:
  - overlayfs.mounts developers (@overlayfs-mounts)
"""

EXAMPLES = r"""
- name: Render a report as Markdown
  ansible.builtin.copy:
    dest: /tmp/drift.md
    content: "{{ per_host | overlayfs.mounts.drift_report(output='markdown') }}"
    mode: "0644"

- name: The drift of this collection's overlays and of unowned ones, without the containers
  ansible.builtin.debug:
    msg: "{{ per_host | overlayfs.mounts.drift_report(engines=['overlayfs.mounts', 'none']) }}"
"""

RETURN = r"""
_value:
  description:
    - With O(output=data), a dictionary with C(hosts) (per host - C(host),
      C(reachable), C(overlays), C(engines) (overlays per engine), C(declared),
      C(drifted_overlays), C(drifted_fields)), C(rows) (C(engine), C(host),
      C(path), C(field), C(declared), C(live), C(persisted), and
      C(declared_path), the path as declared when it is not the mount point,
      else V(null)) and C(engines) (the O(engines) kept, or V(null)); with
      O(output=markdown), the Markdown text.
  type: raw
"""

from typing import Any, Callable, Dict, Union

from ansible.errors import AnsibleFilterError

from ansible_collections.overlayfs.mounts.plugins.module_utils._report.fleet import build, markdown


def drift_report(data: Any, output: str = "data", engines: Any = None) -> Union[Dict[str, Any], str]:
    """The fleet drift report of per-host ``data`` (or ``data``, already a report), as data or Markdown."""
    if not isinstance(data, dict):
        raise AnsibleFilterError("drift_report expects a dictionary of host name to gathered data")
    is_report = "rows" in data and "hosts" in data
    if engines is not None:
        if not isinstance(engines, (list, tuple)) or not all(isinstance(e, str) for e in engines):
            raise AnsibleFilterError("drift_report: engines must be a list of engine names, such as "
                                     "['overlayfs.mounts', 'none'], not %r" % (engines,))
        if is_report:
            raise AnsibleFilterError("drift_report: engines applies when building the report from "
                                     "per-host data; this input is already a report")
    report = data if is_report else build(data, engines)
    if output == "markdown":
        return markdown(report)
    if output != "data":
        raise AnsibleFilterError("drift_report: output must be 'data' or 'markdown', not %r" % output)
    return report


class FilterModule:
    """The ``drift_report`` filter."""

    def filters(self) -> Dict[str, Callable[..., Any]]:
        """The filters of this plugin, by name."""
        return {"drift_report": drift_report}
