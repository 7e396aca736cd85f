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
  - With O(_input) already a report, renders it (O(output=markdown), V(html) or V(lines)) or checks it
    (O(output=gate)).
  - A host whose data has C(status) V(unreachable) or V(failed) (what the
    playbook records when Ansible could not reach it or a task failed) is a
    host line with C(msg), the message Ansible reported, and has no rows;
    the report's C(summary) counts hosts in sync, drifted, unreachable and
    failed.
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
    description:
      - V(data) returns the report itself, V(markdown) a Markdown document.
      - V(html) returns one self-contained HTML page (inline style and
        script, a Content-Security-Policy that allows no request) with the
        fleet summary, the hosts and the drifted fields, filterable by host,
        engine and drift kind, sortable, and printable. Every text from the
        hosts is escaped, never interpreted.
      - V(lines) returns a list of lines for the console, at most 68
        characters each - the fleet's counts, then one line per host.
      - V(gate) returns the reasons to fail the play, one per kind that
        O(fail_on) names and the report holds; an empty list when none.
    type: str
    choices: [data, markdown, html, lines, gate]
    default: data
  fail_on:
    description:
      - With O(output=gate), what makes the play fail - V(drift) (any
        drifted field), V(unreachable) (a host that could not be reached),
        V(failed) (a host where a task failed).
    type: list
    elements: str
    choices: [drift, unreachable, failed]
    default: []
  title:
    description: The title of the Markdown and HTML documents.
    type: str
    default: Overlay drift report
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

- name: Write the report as an HTML page
  ansible.builtin.copy:
    dest: /tmp/drift.html
    content: "{{ per_host | overlayfs.mounts.drift_report(output='html') }}"
    mode: "0644"

- name: Fail when any host drifted or could not be reached
  ansible.builtin.fail:
    msg: "{{ reasons | join('; ') }}"
  when: reasons | length > 0
  vars:
    reasons: "{{ report | overlayfs.mounts.drift_report(output='gate', fail_on=['drift', 'unreachable']) }}"

- name: The drift of this collection's overlays and of unowned ones, without the containers
  ansible.builtin.debug:
    msg: "{{ per_host | overlayfs.mounts.drift_report(engines=['overlayfs.mounts', 'none']) }}"
"""

RETURN = r"""
_value:
  description:
    - With O(output=data), a dictionary with C(hosts) (per host - C(host),
      C(status) (V(ok), V(unreachable) or V(failed)), C(msg) (why, as
      Ansible reported it, else V(null)), C(reachable), C(overlays),
      C(engines) (overlays per engine), C(declared), C(drifted_overlays),
      C(drifted_fields)), C(rows) (C(engine), C(host), C(path), C(field),
      C(declared), C(live), C(persisted), and C(declared_path), the path as
      declared when it is not the mount point, else V(null)), C(engines)
      (the O(engines) kept, or V(null)) and C(summary) (C(hosts), C(in_sync),
      C(drifted), C(unreachable), C(failed), C(overlays),
      C(drifted_overlays), C(drifted_fields)).
    - With O(output=markdown) or O(output=html), the document's text; with
      O(output=lines) or O(output=gate), a list of strings.
  type: raw
"""

from typing import Any, Callable, Dict, List, Union

from ansible.errors import AnsibleFilterError

from ansible_collections.overlayfs.mounts.plugins.module_utils._report.fleet import build, console_lines, gate, markdown
from ansible_collections.overlayfs.mounts.plugins.module_utils._report.html import render

OUTPUTS = ("data", "markdown", "html", "lines", "gate")


def _report(data: Any, engines: Any) -> Dict[str, Any]:
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
    if is_report:
        return data
    try:
        return build(data, engines)
    except ValueError as exc:
        raise AnsibleFilterError("drift_report: %s" % exc) from exc


def drift_report(data: Any, output: str = "data", engines: Any = None, fail_on: Any = None,
                 title: str = "Overlay drift report") -> Union[Dict[str, Any], List[str], str]:
    """The fleet drift report of per-host ``data`` (or ``data``, already a report), as data, a document, lines or a gate."""
    if output not in OUTPUTS:
        raise AnsibleFilterError("drift_report: output must be one of %s, not %r" % (", ".join(OUTPUTS), output))
    if fail_on is not None and (not isinstance(fail_on, (list, tuple)) or not all(isinstance(k, str) for k in fail_on)):
        raise AnsibleFilterError("drift_report: fail_on (drift_report_fail_on) must be a list such as "
                                 "[drift, unreachable], not %r" % (fail_on,))
    report = _report(data, engines)
    if output == "markdown":
        return markdown(report, title=title)
    if output == "html":
        return render(report, title=title)
    if output == "lines":
        return console_lines(report)
    if output == "gate":
        try:
            return gate(report, fail_on or [])
        except ValueError as exc:
            raise AnsibleFilterError(str(exc)) from exc
    return report


class FilterModule:
    """The ``drift_report`` filter."""

    def filters(self) -> Dict[str, Callable[..., Any]]:
        """The filters of this plugin, by name."""
        return {"drift_report": drift_report}
