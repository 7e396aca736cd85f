#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: overlay_drift_report
short_description: Write the fleet's overlay drift report on the controller
version_added: 1.1.0
description:
  - Builds the fleet drift report from what each host of the play
    registered (O(result)), the result of M(overlayfs.mounts.overlay_mounts)
    with O(overlayfs.mounts.overlay_mounts#module:list_overlays=true) or of
    M(overlayfs.mounts.overlay_mount_info), or from a fact each host keeps
    (O(fact)), and writes C(drift.json), C(drift.md) and C(drift.html) into
    O(dir) on the controller.
  - Runs in the controller's own process, as an action, once for the whole
    fleet - no module is sent anywhere and no host is contacted. Use it with
    C(run_once).
  - Each file is written through a hidden file in O(dir), then renamed over
    the old one, so a reader sees the old report or the new one, never half
    of one. A file whose content is the same is left alone.
  - What the report holds, and the data each host keeps, is in the
    collection's docs/drift.md; the filter C(overlayfs.mounts.drift_report)
    builds and renders the same report.
author:
  - overlayfs.mounts developers (@overlayfs-mounts)
options:
  dir:
    description:
      - The directory on the controller the files are written to; created
        when missing.
      - A relative path is relative to the directory C(ansible-playbook) runs from.
    type: path
    default: .
  hosts:
    description: The hosts to report. By default every host of the play, including those that failed or were unreachable.
    type: list
    elements: str
  result:
    description:
      - The name of the variable each host registered with the result of
        M(overlayfs.mounts.overlay_mounts) (with
        O(overlayfs.mounts.overlay_mounts#module:list_overlays=true)) or of
        M(overlayfs.mounts.overlay_mount_info), run with
        C(ignore_unreachable) and C(ignore_errors) so that every host keeps
        one.
      - A host Ansible could not reach, or whose overlays could not be
        listed, is reported as such with Ansible's message; declared entries
        that failed are rows of their own. A host without the variable (it
        never ran that task) is reported as failed.
      - When not set, each host's data is read from O(fact).
    type: str
  fact:
    description:
      - The fact holding each host's data, in the shape the filter
        C(overlayfs.mounts.drift_report) takes, when O(result) is not set. A
        host without it is reported as failed.
    type: str
    default: overlay_drift
  engines:
    description:
      - Keep only the overlays (rows and counts) of these engines, for
        example V([overlayfs.mounts, none]) to leave the containers out.
    type: list
    elements: str
  fail_on:
    description:
      - What fails the task once the files are written - a drifted field
        (V(drift)), a host Ansible could not reach (V(unreachable)), a host
        where a task failed (V(failed)). Nothing by default.
    type: list
    elements: str
    choices: [drift, unreachable, failed]
    default: []
  title:
    description: The heading of drift.md and drift.html.
    type: str
    default: Overlay drift report
attributes:
  check_mode:
    description: In check mode nothing is written; C(changed) and RV(written) say which files would change.
    support: full
  diff_mode:
    description: Shows no diff.
    support: none
  platform:
    description: Runs on the controller.
    support: full
    platforms: posix
  action:
    support: full
    description: An action plugin only; it runs on the controller.
notes:
  - C(drift.html) records when it was made, so it changes on every run.
seealso:
  - module: overlayfs.mounts.overlay_mount_info
  - module: overlayfs.mounts.overlay_mounts
"""

EXAMPLES = r"""
- name: Compare each host's declared overlays with the host, and list every overlay
  overlayfs.mounts.overlay_mounts:
    mounts: "{{ overlay_host_mounts | default([]) }}"
    list_overlays: true
  check_mode: true
  register: overlay_drift_read
  failed_when: false
  ignore_errors: true
  ignore_unreachable: true

- name: Write the report of this play's hosts into the current directory
  overlayfs.mounts.overlay_drift_report:
    result: overlay_drift_read
  run_once: true

- name: Write it into /srv/reports and fail when a host drifted or was down
  overlayfs.mounts.overlay_drift_report:
    result: overlay_drift_read
    dir: /srv/reports/overlays
    fail_on: [drift, unreachable]
  run_once: true
  register: drift_written

- name: Only this collection's overlays and unowned ones, without the containers
  overlayfs.mounts.overlay_drift_report:
    result: overlay_drift_read
    engines: [overlayfs.mounts, none]
  run_once: true
"""

RETURN = r"""
dir:
  description: The directory the files are in (absolute).
  returned: success
  type: str
  sample: /home/ops/reports
files:
  description: The report's three files.
  returned: success
  type: list
  elements: str
  sample: [/home/ops/reports/drift.json, /home/ops/reports/drift.md, /home/ops/reports/drift.html]
written:
  description: The files that were written (in check mode, that would be); the others already held the same.
  returned: success
  type: list
  elements: str
summary:
  description: The fleet's counts.
  returned: success
  type: dict
  sample: {hosts: 3, in_sync: 1, drifted: 1, unreachable: 1, failed: 0, overlays: 40, drifted_overlays: 1, drifted_fields: 2}
lines:
  description: The console summary - the fleet's counts, then one line per host, at most 68 characters each.
  returned: success
  type: list
  elements: str
gate:
  description: The reasons O(fail_on) makes the task fail, one per kind the report holds; empty when none.
  returned: success
  type: list
  elements: str
  sample: ["drift: 1 host(s) drifted (web2)"]
"""
