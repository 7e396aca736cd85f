#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: overlay_mounts
short_description: Converge a host's whole list of overlayfs mounts in one task
version_added: 1.0.0
description:
  - Makes the host match a whole list of overlays in one module run. Each
    entry takes the parameters of M(overlayfs.mounts.overlay_mount) and is
    checked and carried out exactly as that module would do it; only the
    cost of one task per overlay goes away.
  - The list is checked first as one graph with the live overlays and carried
    out in its order, so stacked overlays are set up after and torn down
    before what they sit on. Every entry is tried; the task fails at the end
    when any failed, and C(overlays) says which and why.
  - With O(prune=true), overlays this collection persisted earlier that are
    no longer listed are unmounted and unpersisted; their upper data stays.
  - Grouped verification, ordering, failures and pruning are described in the
    collection's docs/overlay_mount.md.
author:
  - overlayfs.mounts developers (@overlayfs-mounts)
requirements:
  - Linux 5.10 or newer
  - overlayfs, built in or the C(overlay) module
  - Linux 6.8 or newer for O(mounts[].method=fsconfig)
  - Linux 6.5 or newer for O(mounts[].datadir)
  - util-linux C(mount) for persisted overlays
  - systemd for O(mounts[].persist=systemd)
  - kmod (C(modprobe)) for O(load_module=true)
  - root
options:
  mounts:
    description:
      - The overlays, each a dictionary with the options of
        M(overlayfs.mounts.overlay_mount) (O(mounts[].path), O(mounts[].lowerdir),
        O(mounts[].upperdir), O(mounts[].workdir), O(mounts[].options),
        O(mounts[].state), O(mounts[].persist), and so on).
      - An entry that does not set O(mounts[].state), O(mounts[].persist),
        O(mounts[].fstab), O(mounts[].unit_dir), O(mounts[].backup),
        O(mounts[].boot), O(mounts[].create_dirs), O(mounts[].method) or
        O(mounts[].links_dir) takes the value of the task-level option of the
        same name.
    type: list
    elements: dict
    required: true
    suboptions:
      path:
        description: The mount point.
        type: path
        required: true
        aliases: [name]
      lowerdir:
        description: The lower directories, top layer first.
        type: list
        elements: path
      datadir:
        description: Data-only lower layers (need C(metacopy=on)); one lower over data-only layers without an upper is the composefs layout.
        type: list
        elements: path
      upperdir:
        description: The upper directory.
        type: path
      workdir:
        description: The work directory.
        type: path
      options:
        description:
          - Overlay mount options, and per-mount flags (C(ro), C(nosuid), C(nodev),
            C(noexec), C(noatime), ...), as in M(overlayfs.mounts.overlay_mount).
        type: list
        elements: str
        default: []
      state:
        description: As in M(overlayfs.mounts.overlay_mount); defaults to O(state).
        type: str
        choices: [mounted, present, unmounted, absent]
      persist:
        description: As in M(overlayfs.mounts.overlay_mount); defaults to O(persist).
        type: str
        choices: [fstab, systemd, none]
      fstab:
        description: The fstab file; defaults to O(fstab).
        type: path
      unit_dir:
        description: The unit directory; defaults to O(unit_dir).
        type: path
      backup:
        description: Keep a copy of fstab before changing it; defaults to O(backup).
        type: bool
      boot:
        description: Mount at boot; defaults to O(boot).
        type: bool
      boot_options:
        description:
          - Options for the persisted overlay only (C(nofail), ...). A per-mount flag
            here counts as one of O(mounts[].options), with a warning.
        type: list
        elements: str
        default: []
      create_dirs:
        description: Create missing mount point, upper and work dirs; defaults to O(create_dirs).
        type: bool
      method:
        description: How to mount (see M(overlayfs.mounts.overlay_mount)); defaults to O(method).
        type: str
        choices: [auto, fsconfig, mount2, symlinks]
      links_dir:
        description: Where short layer links are kept; defaults to O(links_dir).
        type: path
      unit_settings:
        description:
          - Further unit settings by section (C(Unit), C(Mount), C(Automount),
            C(Install)); see M(overlayfs.mounts.overlay_mount).
        type: dict
      drop_ins:
        description: What to do with a foreign drop-in that changes the declared unit; defaults to O(drop_ins).
        type: str
        choices: [refuse, mask]
      clear_volatile:
        description: Remove a stale volatile marker before mounting (see M(overlayfs.mounts.overlay_mount)).
        type: bool
        default: false
      mode:
        description: Mode of created directories, such as C('0755').
        type: raw
      owner:
        description: Owner of created directories.
        type: str
      group:
        description: Group of created directories.
        type: str
      upper_tmpfs:
        description:
          - A volatile upper on a tmpfs this module mounts (see M(overlayfs.mounts.overlay_mount)).
        type: dict
        suboptions:
          path:
            description: Mount point of the tmpfs; defaults to the common parent dir of upperdir and workdir.
            type: path
          size:
            description: Size of the tmpfs (C(64M), C(1G), C(10%)).
            type: str
            required: true
          mode:
            description: Mode of the tmpfs root.
            type: raw
            default: '0755'
          owner:
            description: Owner of the tmpfs root.
            type: str
            default: root
          group:
            description: Group of the tmpfs root.
            type: str
            default: root
  # state to links_dir: type, choices and default come from the overlayfs.mounts.host fragment.
  state:
    description: Default O(mounts[].state) for entries that do not set one.
  persist:
    description: Default O(mounts[].persist) for entries that do not set one.
  fstab:
    description: Default fstab file.
  unit_dir:
    description: Default unit directory.
  backup:
    description: Default for O(mounts[].backup).
  boot:
    description: Default for O(mounts[].boot).
  create_dirs:
    description: Default for O(mounts[].create_dirs).
  method:
    description: Default O(mounts[].method).
  links_dir:
    description: Default O(mounts[].links_dir).
  drop_ins:
    description: Default O(mounts[].drop_ins).
  load_module:
    description:
      - Make sure the running kernel has overlayfs before anything else - load
        the C(overlay) module with modprobe when C(/proc/filesystems) does not
        list it, and fail clearly when the kernel cannot - and keep it loaded at
        boot through O(modules_load_file), written only once the list has
        passed its checks (a refused list changes no file).
    type: bool
    default: false
  modules_load_file:
    description: The modules-load.d file that loads C(overlay) at boot, with O(load_module=true).
    type: path
    default: /etc/modules-load.d/overlay.conf
  list_overlays:
    description:
      - Also return every overlay of the host, declared or not, in
        RV(overlay_mounts), as M(overlayfs.mounts.overlay_mount_info) lists
        them (with O(fstab) and O(unit_dir)), read after this task's changes -
        in check mode, the host as it is. One module run instead of two
        where both are wanted, as in the drift report playbook and the role's
        metrics.
      - Also returned when the list as a whole is refused, so that what the
        host has is still known.
    type: bool
    default: false
  metrics_file:
    description:
      - Also write the host's overlay state for monitoring to this file, a
        Prometheus textfile-collector file (for node_exporter's
        C(--collector.textfile.directory)), as the filter
        C(overlayfs.mounts.prometheus_metrics) renders it from this task's
        result and every overlay of the host (listed as O(list_overlays)
        lists them). The C(overlayfs.mounts.overlay_host) role sets it from
        C(overlay_host_metrics_dir).
      - Written in check mode too (it describes the host, it is not part of
        its configuration) and when the task fails, after everything else;
        replaced through a hidden file in the same directory, so a reader
        sees the old file or the new one. The directory must exist. Its
        writing does not count as a change.
    type: path
  prune:
    description:
      - Remove (as O(mounts[].state=absent)) the overlays this collection
        persisted earlier in the fstab files and unit dirs of this task that are
        no longer listed in O(mounts). Upper data stays on disk.
    type: bool
    default: false
extends_documentation_fragment:
  - overlayfs.mounts.host
  - overlayfs.mounts.attributes
notes:
  - In check mode the task is a complete drift report for the whole list; see
    C(drift).
  - The arguments Ansible shows with the result (C(invocation), with C(-vvv))
    list each entry of O(mounts) without the keys it left at their default,
    so that a long list does not come back with every key of every entry.
    The task's own options are shown whole.
seealso:
  - module: overlayfs.mounts.overlay_mount
  - module: overlayfs.mounts.overlay_mount_info
"""

EXAMPLES = r"""
- name: A container host's overlays, persisted as systemd units
  overlayfs.mounts.overlay_mounts:
    persist: systemd
    prune: true
    mounts:
      - path: /srv/app
        lowerdir: [/srv/layers/app, /srv/layers/base]
        upperdir: /srv/state/app/upper
        workdir: /srv/state/app/work
      - path: /srv/tools
        lowerdir: [/srv/layers/tools, /srv/layers/base]
      - path: /srv/app-debug
        lowerdir: [/srv/layers/debug, /srv/app]
        upperdir: /srv/state/debug/upper
        workdir: /srv/state/debug/work
        persist: fstab

- name: Drift report for the same list, changing nothing
  overlayfs.mounts.overlay_mounts:
    mounts: "{{ my_overlays }}"
  check_mode: true
  register: report
"""

RETURN = r"""
overlays:
  description:
    - One result per entry of O(mounts), in the order given, each with C(path)
      and the keys M(overlayfs.mounts.overlay_mount) returns (C(changed),
      C(mount), C(live), C(persisted), C(actions), C(drift), C(mount_method)),
      or C(failed) and C(msg) for an entry that failed.
  returned: always
  type: list
  elements: dict
pruned:
  description: Results of the overlays removed by O(prune), as in C(overlays).
  returned: always
  type: list
  elements: dict
drift:
  description:
    - Every drift row of every entry (and of pruned overlays), each with
      C(path), C(field), C(declared), C(live) and C(persisted); see
      M(overlayfs.mounts.overlay_mount).
  returned: always
  type: list
  elements: dict
  sample:
    - {path: /srv/app, field: mounted, declared: true, live: false, persisted: true}
kernel:
  description:
    - With O(load_module=true), C(available) (overlay was listed before),
      C(loaded) (this task loaded it, or would in check mode) and
      C(modules_load_file); V(null) otherwise.
  returned: always
  type: dict
order:
  description: The mount points in the order they were carried out.
  returned: always
  type: list
  elements: str
overlay_mounts:
  description:
    - With O(list_overlays=true), every overlay of the host, one entry per
      mount point, as RV(overlayfs.mounts.overlay_mount_info#module:overlay_mounts)
      returns them.
  returned: when O(list_overlays=true)
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule

# First: the collection's other modules then load through the code cache (compiled once, kept between runs).
from ansible_collections.overlayfs.mounts.plugins.module_utils._host import code_cache
from ansible_collections.overlayfs.mounts.plugins.module_utils._converge.host_task import run_task
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.spec import batch_spec


def main() -> None:
    module = AnsibleModule(argument_spec=batch_spec(), supports_check_mode=True)
    out, failed = run_task(module)
    out.update(code_cache.host_bytecode())
    if failed:
        module.fail_json(**out)
    module.exit_json(**out)


if __name__ == "__main__":
    main()
