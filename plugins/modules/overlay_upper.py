#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: overlay_upper
short_description: Reset an overlay's upper dir, or commit it into a new lower layer
version_added: 1.1.0
description:
  - Acts on what was written to a declared overlay, kept in its upper dir.
  - O(state=reset) throws it away, optionally keeping a backup first.
    O(state=committed) keeps it as a new read-only layer on top of the old
    ones and starts again with an empty upper dir; the merged view stays
    exactly what it was.
  - The overlay is unmounted and mounted again around the change, only while
    nothing uses it in any mount namespace. A run that is killed is finished
    or undone by the next one.
  - How each step works, crash safety and the playbook pattern for commits
    are in the collection's docs/upper.md.
author:
  - overlayfs.mounts developers (@overlayfs-mounts)
requirements:
  - Linux 5.2 or newer
  - overlayfs, built in or the C(overlay) module
  - C(renameat2) with C(RENAME_EXCHANGE) on the upper dir's filesystem
  - root
options:
  state:
    description:
      - V(reset) empties the upper and work dir and mounts the overlay again
        (when it was mounted), so its merged view is the lower layers' view. A
        reset of an empty upper dir changes nothing.
      - V(committed) writes the upper dir's changes into the new layer dir
        O(layer), puts it on top of O(lowerdir), empties the upper and work
        dir, mounts the overlay again (when it was mounted) and persists the
        new layers as O(persist) says. The merged view after is the one
        before, byte for byte and in metadata. RV(lowerdir) is the new list.
        A commit with an empty upper dir changes nothing, and so does one
        whose layer is already on top of the live overlay.
    type: str
    choices: [reset, committed]
    required: true
  layer:
    description:
      - The new layer dir for O(state=committed). It must not exist yet (or be
        empty) and must lie outside the overlay's mount point, layers, upper and
        work dir. Missing parents are created.
      - The layer is self-contained - whiteouts stay whiteouts, opaque dirs
        stay opaque, and renamed dirs and metadata-only copies are written out
        whole - so it mounts on any kernel, whatever C(redirect_dir) and
        C(metacopy) say.
    type: path
  backup:
    description:
      - V(true), or the absolute path of a new dir, keeps what was in the upper
        dir before it is changed - with its ownership, modes, times, xattrs and
        whiteouts, so that it can be restored as an upper dir. V(true) keeps it
        beside the upper dir as C(<upperdir>.backup-<timestamp>).
      - The old upper dir itself is renamed there when the path is on its
        filesystem, else copied exactly.
    type: raw
    default: false
  path:
    description:
      - Absolute path of the overlay's mount point.
      - Given alone, the rest of the declaration comes from the overlay's fstab
        line in O(fstab) or its unit in O(unit_dir), else from its live mount.
    type: path
    required: true
    aliases: [name]
  lowerdir:
    description:
      - The lower directories, top layer first, as for M(overlayfs.mounts.overlay_mount).
    type: list
    elements: path
  datadir:
    description:
      - Data-only lower layers, as for M(overlayfs.mounts.overlay_mount).
    type: list
    elements: path
  upperdir:
    description:
      - The upper directory, with O(workdir). Needed when O(lowerdir) is given.
    type: path
  workdir:
    description:
      - The work directory, on the same mount as O(upperdir).
    type: path
  options:
    description:
      - Overlay options and per-mount flags, as for M(overlayfs.mounts.overlay_mount).
    type: list
    elements: str
    default: []
  persist:
    description:
      - How the overlay is persisted, as for M(overlayfs.mounts.overlay_mount).
        After a commit, the persisted entry gets the new layers.
      - Not given, as it is persisted now (its fstab line, its unit, or
        neither).
    type: str
    choices: [fstab, systemd, none]
  fstab:
    description:
      - The fstab file.
    type: path
    default: /etc/fstab
  unit_dir:
    description:
      - The directory of the overlay's unit.
    type: path
    default: /etc/systemd/system
  boot:
    description:
      - Whether the overlay is mounted at boot. Not given, as persisted now.
    type: bool
  boot_options:
    description:
      - Further options of the persisted entry, as for M(overlayfs.mounts.overlay_mount).
    type: list
    elements: str
    default: []
  method:
    description:
      - How the overlay is mounted again, as for M(overlayfs.mounts.overlay_mount).
    type: str
    choices: [auto, fsconfig, mount2, symlinks]
    default: auto
  links_dir:
    description:
      - Where short layer links are kept, as for M(overlayfs.mounts.overlay_mount).
    type: path
    default: /var/lib/overlayfs-mounts/links
  unit_settings:
    description:
      - Further settings of the overlay's unit, as for M(overlayfs.mounts.overlay_mount).
    type: dict
  drop_ins:
    description:
      - What to do with a foreign drop-in that changes the unit, as for M(overlayfs.mounts.overlay_mount).
    type: str
    choices: [refuse, mask]
    default: refuse
  upper_tmpfs:
    description:
      - The tmpfs of a volatile upper dir, as for M(overlayfs.mounts.overlay_mount).
        A volatile upper dir can be committed into a layer on disk, or reset,
        like any other; the tmpfs stays mounted.
    type: dict
    suboptions:
      path:
        description: Mount point of the tmpfs.
        type: path
      size:
        description: Size limit of the tmpfs.
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
extends_documentation_fragment:
  - overlayfs.mounts.attributes
attributes:
  diff_mode:
    support: partial
    details: The fstab line or unit, when a commit changes the persisted layers.
notes:
  - A run that changes the host holds the lock file C(/run/overlayfs-mounts.lock)
    from its first read of the host to its last write, as M(overlayfs.mounts.overlay_mount) does.
  - The overlay must be mounted as declared (or not at all); a live overlay with
    other layers, upper or work dir is refused, so that a stale declaration
    never resets or commits the wrong view.
seealso:
  - module: overlayfs.mounts.overlay_mount
  - module: overlayfs.mounts.overlay_mount_info
    description: Its C(upper_usage) option shows what an upper dir holds before a reset or commit.
"""

EXAMPLES = r"""
- name: Throw away what was written to the kiosk's overlay, keeping a backup
  overlayfs.mounts.overlay_upper:
    path: /srv/kiosk
    state: reset
    backup: true

- name: Keep today's changes as a new layer of the golden image
  overlayfs.mounts.overlay_upper:
    path: /srv/golden
    lowerdir: "{{ golden_layers }}"
    upperdir: /srv/golden-upper
    workdir: /srv/golden-work
    state: committed
    layer: /srv/layers/2026-12-07
  register: golden_commit

- name: Remember the new layer list for the next runs
  ansible.builtin.set_fact:
    golden_layers: "{{ golden_commit.lowerdir }}"
    cacheable: true

- name: See what a reset would discard, without changing anything
  overlayfs.mounts.overlay_upper:
    path: /srv/build
    state: reset
  check_mode: true
  register: would_discard
"""

RETURN = r"""
mount_point:
  description: The overlay's mount point, O(path).
  returned: always
  type: str
  sample: /srv/golden
lowerdir:
  description:
    - The overlay's lower layers after the task, top layer first, spelled as
      declared - after a commit the new layer, then the old ones. Feed it back
      into the overlay's declaration.
  returned: always
  type: list
  elements: str
  sample: [/srv/layers/2026-12-07, /srv/golden-base]
upperdir:
  description: The upper dir.
  returned: always
  type: str
  sample: /srv/golden-upper
workdir:
  description: The work dir.
  returned: always
  type: str
  sample: /srv/golden-work
layer:
  description: The new layer dir of a commit (V(null) for a reset).
  returned: always
  type: str
  sample: /srv/layers/2026-12-07
backup_path:
  description: Where the old upper dir was kept (V(null) without O(backup)).
  returned: always
  type: str
  sample: /srv/kiosk-upper.backup-20261207T101500
discarded:
  description:
    - What the upper dir held, thrown away by a reset (in check mode, what would
      be) - C(files), C(dirs), C(symlinks), C(other), C(bytes), C(disk_bytes),
      C(whiteouts), C(opaque_dirs), C(redirects), C(metacopy), C(errors),
      C(unreadable), and C(first_paths), its first 10 paths.
  returned: when O(state=reset) and the upper dir held something
  type: dict
  sample: {files: 120, dirs: 8, symlinks: 0, other: 0, bytes: 5242880, disk_bytes: 5300224, whiteouts: 3,
           opaque_dirs: 1, redirects: 0, metacopy: 0, errors: 0, unreadable: [], first_paths: [etc, etc/hosts]}
committed:
  description: What the upper dir held, written into the new layer by a commit; the keys of RV(discarded).
  returned: when O(state=committed) and the upper dir held something
  type: dict
layer_counts:
  description:
    - What the new layer holds - C(files), C(dirs), C(symlinks), C(specials),
      C(hardlinks), C(whiteouts), C(opaque_dirs), C(redirects) (renamed dirs
      written out whole), C(metacopy) (files whose data was copied from the
      layers below), C(bytes), and C(linked) - the files hard-linked from the
      old upper dir rather than copied (a layer on the upper dir's
      filesystem with no backup kept; see docs/upper.md).
  returned: when a commit wrote a layer
  type: dict
recovered:
  description:
    - What was done about a run that was killed in the middle (its journal
      beside the upper dir) before this task - V(null) when none was.
  returned: always
  type: str
  sample: an interrupted commit of /srv/golden was finished
actions:
  description:
    - What was done, or in check mode what would be done, in order. Each has
      C(action) and C(path) - V(unmount), V(write_layer), V(swap_upper),
      V(swap_work), V(backup), V(mount), V(persist) and V(remove_old_upper).
  returned: always
  type: list
  elements: dict
live:
  description: The live overlay after the task, as M(overlayfs.mounts.overlay_mount) returns it (V(null) when unmounted).
  returned: always
  type: dict
persisted:
  description: The fstab line or unit after the task, as M(overlayfs.mounts.overlay_mount) returns it.
  returned: when the overlay was mounted or persisted again
  type: dict
mount_actions:
  description: What mounting and persisting the overlay again did, as RV(overlayfs.mounts.overlay_mount#module:actions).
  returned: when the overlay was mounted or persisted again
  type: list
  elements: dict
holders:
  description: Processes, in any mount namespace, that use the overlay, when the task failed for that reason.
  returned: on failure because the overlay is in use
  type: list
  elements: dict
elsewhere:
  description: Copies of the overlay in other mount namespaces, when the task failed for that reason.
  returned: on failure because the overlay is in use
  type: list
  elements: dict
shared:
  description: Other overlays, in other mount namespaces, on the same upper or work dir, when the task failed for that reason.
  returned: on failure because the upper dir is in use
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule

# First: the collection's other modules then load through the code cache (compiled once, kept between runs).
from ansible_collections.overlayfs.mounts.plugins.module_utils._host import code_cache
from ansible_collections.overlayfs.mounts.plugins.module_utils._converge.session import TaskSession
from ansible_collections.overlayfs.mounts.plugins.module_utils._converge.upper_life import run
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError
from ansible_collections.overlayfs.mounts.plugins.module_utils._report.printable import utf8_result
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.upper_spec import (
    UPPER_REQUIRED_BY,
    UPPER_REQUIRED_IF,
    UPPER_REQUIRED_TOGETHER,
    UPPER_SPEC,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec=UPPER_SPEC,
        required_if=UPPER_REQUIRED_IF,
        required_together=UPPER_REQUIRED_TOGETHER,
        required_by=UPPER_REQUIRED_BY,
        supports_check_mode=True,
    )
    try:
        with TaskSession(module) as session:
            result = run(session, module.params)
    except OverlayError as error:
        module.fail_json(**utf8_result(dict(error.details, msg=error.message)), **code_cache.host_bytecode())
    module.exit_json(**utf8_result(result), **code_cache.host_bytecode())


if __name__ == "__main__":
    main()
