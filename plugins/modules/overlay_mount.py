#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: overlay_mount
short_description: Make a live overlayfs mount match its declaration
version_added: 0.1.0
description:
  - Declares one overlayfs mount (an ordered stack of lower directories, an
    optional upper and work directory, overlay options and a mount point) and
    makes the live mount on the host match it.
  - The live state is read from C(/proc/self/mountinfo), including the overlay's
    layers, and compared field by field with the declaration after
    normalisation (canonical paths, options equal to the kernel's defaults from
    C(/sys/module/overlay/parameters), options the kernel adds by itself), so a
    converged host never reports a change.
  - The overlay is mounted with the kernel's new mount API, one C(lowerdir+)
    value per layer (Linux 6.8 and later), so the number and length of layers
    is not limited by the one page that mount(8) and the legacy mount(2) pass;
    older kernels get the legacy mount(2) when the option string fits in a page
    and a clear error when it does not. After mounting, mountinfo is read again
    and the mount is undone and the task fails unless the kernel mounted exactly
    the declared layers, upper and work dir.
  - A remount cannot change an overlay's layers, upper or work dir. When those
    differ, the overlay is unmounted and mounted again, but only when no process
    and no submount uses it; otherwise the task fails, names the processes
    (PID, command, what they hold) or submounts, and leaves the mount intact.
  - Every check runs before anything is touched. Upper dir data is never removed.
author:
  - overlayfs.mounts developers
options:
  path:
    description:
      - Absolute path of the mount point (the merged directory).
    type: path
    required: true
    aliases: [name]
  lowerdir:
    description:
      - The lower directories, top layer first, as absolute paths.
      - Required for O(state=mounted). Lower directories must exist; they are
        never created.
      - Paths may contain spaces, commas, colons and backslashes; they are
        passed to the kernel without any option-string escaping ambiguity.
        A newline in a path is refused.
      - At most 500 layers.
    type: list
    elements: path
  upperdir:
    description:
      - Absolute path of the upper directory, which receives every write.
      - Must be given together with O(workdir). Without both, the overlay is
        read-only and needs at least two lower directories.
      - Must not be on an overlay, and must be on the same mount as O(workdir).
    type: path
  workdir:
    description:
      - Absolute path of the overlay's work directory, on the same mount as
        O(upperdir) and not inside it.
    type: path
  options:
    description:
      - Overlay mount options, each as C(name) or C(name=value).
      - Allowed are C(default_permissions), C(redirect_dir=on|follow|nofollow|off),
        C(index=on|off), C(uuid=on|off|null|auto), C(nfs_export=on|off),
        C(xino=on|off|auto), C(metacopy=on|off), C(volatile), C(userxattr) and
        C(verity=on|off|require). Anything else, a value the kernel does not
        accept, the same option twice with different values, or a combination
        the kernel refuses (such as C(metacopy=on) with C(redirect_dir=off)) is
        an error.
      - Layers, upper and work dir are set by their own options, never here.
    type: list
    elements: str
    default: []
  state:
    description:
      - V(mounted) makes sure the overlay is mounted at O(path) exactly as
        declared. It creates missing directories (see O(create_dirs)), mounts
        it when it is not mounted, and unmounts and mounts it again when its
        layers, upper, work dir or options differ and nothing uses it.
      - V(unmounted) makes sure no overlay is mounted at O(path). Nothing else is
        touched; directories and their data stay. A mount of another filesystem
        type at O(path) is left alone with a warning.
    type: str
    choices: [mounted, unmounted]
    default: mounted
  create_dirs:
    description:
      - Create a missing mount point, upper dir and work dir (and their missing
        parents). With V(false) a missing one is an error.
      - A missing lower dir is always an error.
    type: bool
    default: true
  mode:
    description:
      - Permissions of the directories this module creates, as an octal string
        such as C('0755'). Existing directories are not changed.
    type: raw
  owner:
    description:
      - User name or UID owning the directories this module creates.
    type: str
  group:
    description:
      - Group name or GID of the directories this module creates.
    type: str
notes:
  - Needs root (CAP_SYS_ADMIN) to mount.
  - In check mode nothing is created or mounted; the result predicts exactly
    what a real run would do. A mount in use that would need re-layering is
    reported as a warning in check mode and as a failure in a real run.
  - The kernel shows an option in mountinfo only when it differs from the
    overlay module's default; C(uuid) is only compared when declared as
    C(on), C(off) or C(null), because with the default C(auto) the kernel picks
    a value per upper dir; C(xino) is only compared when the kernel shows it,
    since it is hidden whenever all layers share one filesystem.
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  idempotent:
    support: full
seealso:
  - name: Overlay filesystem
    description: The kernel's documentation of overlayfs.
    link: https://docs.kernel.org/filesystems/overlayfs.html
"""

EXAMPLES = r"""
- name: Mount lower1 over lower2 with a writable upper dir
  overlayfs.mounts.overlay_mount:
    path: /srv/merged
    lowerdir:
      - /srv/lower1
      - /srv/lower2
    upperdir: /srv/upper
    workdir: /srv/work

- name: A read-only overlay of two layers, with an option
  overlayfs.mounts.overlay_mount:
    path: /srv/ro
    lowerdir: [/srv/app, /srv/base]
    options: [redirect_dir=nofollow]

- name: Create missing directories with an owner and mode
  overlayfs.mounts.overlay_mount:
    path: /srv/build/merged
    lowerdir: [/srv/build/src, /srv/build/base]
    upperdir: /srv/build/upper
    workdir: /srv/build/work
    mode: "0750"
    owner: builder
    group: builder

- name: See what would change, without changing anything
  overlayfs.mounts.overlay_mount:
    path: /srv/merged
    lowerdir: [/srv/lower1, /srv/lower2]
    upperdir: /srv/upper
    workdir: /srv/work
  check_mode: true
  diff: true
  register: overlay

- name: Make sure the overlay is not mounted (directories stay)
  overlayfs.mounts.overlay_mount:
    path: /srv/merged
    state: unmounted
"""

RETURN = r"""
mount:
  description: The declaration after normalisation (canonical absolute paths, options in canonical order).
  returned: always
  type: dict
  sample:
    path: /srv/merged
    lowerdir: [/srv/lower1, /srv/lower2]
    upperdir: /srv/upper
    workdir: /srv/work
    options: [index=off]
live:
  description:
    - The overlay mounted at O(path) after the task, or V(null) when none is.
    - C(options) are the overlay options that differ from the kernel defaults;
      C(shown_options) are the options exactly as mountinfo shows them;
      C(other_options) are options of other subsystems (for example an SELinux context).
  returned: always
  type: dict
  sample:
    path: /srv/merged
    lowerdir: [/srv/lower1, /srv/lower2]
    datadir: []
    upperdir: /srv/upper
    workdir: /srv/work
    options: []
    shown_options: [uuid=on]
    other_options: []
    read_only: false
    mount_id: 412
    source: overlay
    form: lowerdir+
actions:
  description:
    - What was done, or in check mode what would be done, in order.
    - Each item has C(action) (V(create_dir), V(unmount) or V(mount)) and C(path);
      an V(unmount) for re-layering also has C(reason).
  returned: always
  type: list
  elements: dict
  sample:
    - {action: create_dir, path: /srv/upper}
    - {action: mount, path: /srv/merged}
drift:
  description:
    - Every field in which the live overlay differed from the declaration
      before the task ran, each with C(field), C(declared) and C(live).
    - C(field) is V(mounted), V(lowerdir), V(upperdir), V(workdir), V(datadir) or
      C(options.<name>) for one overlay option.
  returned: always
  type: list
  elements: dict
  sample:
    - {field: lowerdir, declared: [/srv/l1, /srv/l2], live: [/srv/l2, /srv/l1]}
mount_method:
  description:
    - How the overlay was mounted, when this task mounted it.
    - V(fsconfig) is the new mount API with one C(lowerdir+) per layer;
      V(mount2) is the legacy mount(2) system call.
  returned: always
  type: str
  sample: fsconfig
diff:
  description: Before and after view of the mount (path, layers, upper, work, options), in diff mode.
  returned: when diff mode is on
  type: dict
holders:
  description: Processes that keep a mount busy (C(pid), C(command), C(uses)), when the task failed for that reason.
  returned: on failure because the mount is in use
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.overlayfs.mounts.plugins.module_utils._converge import run
from ansible_collections.overlayfs.mounts.plugins.module_utils._errors import OverlayError


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True, aliases=["name"]),
            lowerdir=dict(type="list", elements="path"),
            upperdir=dict(type="path"),
            workdir=dict(type="path"),
            options=dict(type="list", elements="str", default=[]),
            state=dict(type="str", choices=["mounted", "unmounted"], default="mounted"),
            create_dirs=dict(type="bool", default=True),
            mode=dict(type="raw"),
            owner=dict(type="str"),
            group=dict(type="str"),
        ),
        required_if=[("state", "mounted", ["lowerdir"])],
        required_together=[("upperdir", "workdir")],
        supports_check_mode=True,
    )
    try:
        module.exit_json(**run(module))
    except OverlayError as error:
        module.fail_json(msg=error.message, **error.details)


if __name__ == "__main__":
    main()
