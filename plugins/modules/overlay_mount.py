#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: overlay_mount
short_description: Make a live overlayfs mount match its declaration
version_added: 1.0.0
description:
  - Makes one overlayfs mount (an ordered stack of lower directories, an
    optional upper and work directory, overlay options and a mount point)
    match its declaration, and persists it in fstab or a systemd mount unit.
  - The live overlay is read from C(/proc/self/mountinfo) and compared field
    by field with the declaration, so a converged host reports no change.
    After a mount it is read again, and the mount is undone unless the kernel
    mounted exactly the declared layers, upper and work dir.
  - Every check runs before anything is touched, and a failed step undoes the
    earlier ones. An overlay that any process or submount uses, in any mount
    namespace, is never unmounted or re-layered.
  - How it mounts on each kernel, compares, finds holders and what it refuses
    is in the collection's docs/overlay_mount.md; persistence in
    docs/persistence.md; the trust model in docs/security.md.
author:
  - overlayfs.mounts developers (@overlayfs-mounts)
requirements:
  - Linux 5.10 or newer
  - overlayfs, built in or the C(overlay) module
  - Linux 6.8 or newer for O(method=fsconfig)
  - Linux 6.5 or newer for O(datadir)
  - util-linux C(mount) for persisted overlays
  - systemd for O(persist=systemd)
  - root
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
      - Required for O(state=mounted) and O(state=present). Lower directories
        must exist for O(state=mounted); they are never created.
      - Paths may contain spaces, commas, colons and backslashes; they are
        passed to the kernel without any option-string escaping ambiguity.
        A newline in a path is refused.
      - At most 500 layers.
    type: list
    elements: path
  datadir:
    description:
      - Data-only lower layers, below all of O(lowerdir) (the C(::) layers of
        the kernel's syntax). Their files are never visible by name; they only
        serve file data to metacopy files of the layers above, as composefs
        and image builders use them.
      - Needs C(metacopy=on) in O(options) and a kernel with data-only layers
        (Linux 6.5+, 6.8+ for the new mount API); an older kernel's refusal is
        reported with its own message.
      - Data-only layers count towards the two layers a read-only overlay
        needs, so one O(lowerdir) over O(datadir) without O(upperdir) (the
        composefs layout) is accepted; data-only layers alone are not.
    type: list
    elements: path
  upperdir:
    description:
      - Absolute path of the upper directory, which receives every write.
      - Must be given together with O(workdir). Without both, the overlay is
        read-only and needs at least two layers, counting O(datadir) (one lower over data-only layers is the composefs layout).
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
        C(verity=on|off|require) and C(fsync=auto|strict|volatile) (Linux 6.15+,
        C(fsync=volatile) being the same as C(volatile)). Anything else, a value the kernel does not
        accept, the same option twice with different values, or a combination
        the kernel refuses (such as C(metacopy=on) with C(redirect_dir=off)) is
        an error.
      - Layers, upper and work dir are set by their own options, never here.
      - Per-mount flags may be given here too, as mount(8) takes them beside the
        overlay options - C(ro) or C(rw), C(nosuid) or C(suid), C(nodev) or
        C(dev), C(noexec) or C(exec), one of C(noatime), C(relatime) and
        C(strictatime), and C(nodiratime) or C(diratime). They are applied to
        the live mount, written to the persisted entry, and compared with what
        mountinfo shows. Flags not given take a fresh mount's value (C(rw),
        C(suid), C(dev), C(exec), C(relatime), C(diratime)). Two flags that
        contradict each other (C(ro) and C(rw), C(noatime) and C(strictatime))
        are an error.
      - C(ro) with an O(upperdir) makes the mount read-only while the overlay
        itself stays writable underneath; without an upper dir the overlay is
        read-only anyway.
      - Changing only flags changes the live mount in place (action
        V(remount_flags)), without unmounting it.
    type: list
    elements: str
    default: []
  boot_options:
    description:
      - Mount options that only matter for the persisted overlay, written after
        the overlay options in fstab's fourth field and in the unit's C(Options=),
        such as C(nofail), C(_netdev) or C(x-systemd.device-timeout=10s).
      - C(noauto) and C(auto) are set by O(boot), overlay options by O(options).
      - A per-mount flag given here (C(ro), C(nosuid), C(noexec), ...) counts as
        if given in O(options) - it is applied to the live mount as well - and
        the task warns to move it there. One that contradicts a flag of
        O(options) is an error.
      - Layer keys (C(lowerdir+=), C(datadir+=), C(upperdir=), ...), an
        unbalanced double quote and a trailing backslash are refused;
        C(defaults) is dropped, as it means nothing next to other options.
    type: list
    elements: str
    default: []
  unit_settings:
    description:
      - Further settings of the overlay's unit with O(persist=systemd), by
        unit file section - C(Unit), C(Mount), C(Automount) and C(Install) -
        as in the examples (C(DefaultDependencies) and C(After) under C(Unit),
        C(TimeoutSec) and C(LazyUnmount) under C(Mount), C(WantedBy) under
        C(Install)). Keys are checked against the ones systemd
        defines for mount units (systemd.unit(5), systemd.mount(5)); a
        boolean is written C(yes)/C(no), a list as one line of words.
      - The keys this module writes itself are refused here with the option to
        use instead - C(What=), C(Where=) (O(path)), C(Type=) and C(Options=)
        (O(options), O(boot_options)).
      - C(Install) names the targets that start the overlay at boot (C(WantedBy),
        C(RequiredBy); default C(local-fs.target)); the unit is linked into
        each of them with O(boot=true).
      - An C(Automount) section (its keys, such as C(TimeoutIdleSec), or none)
        writes a C(.automount) unit that mounts the overlay on first access;
        that unit is the one linked for boot. The boot options
        C(x-systemd.automount) and C(x-systemd.idle-timeout=) say the same.
      - Not given, a unit keeps the settings it has (a hand-written unit that
        is adopted keeps its C(After=), C(TimeoutSec=) and so on). Given, it is
        the whole list, and settings of an existing unit it does not name are
        dropped, each named in a warning, in the diff and in RV(drift).
      - With O(persist=fstab), each setting becomes its fstab option
        (C(x-systemd.mount-timeout=), C(x-systemd.after=), ...); one that has no
        fstab form is refused, naming it.
      - See docs/persistence.md for every setting carried between the two.
    type: dict
  clear_volatile:
    description:
      - A mount with the C(volatile) option leaves the marker directory
        C(work/incompat/volatile) in the work dir, and the kernel refuses the
        next mount while it is there, because after a crash the upper dir may
        be inconsistent. By default such a work dir is an error that says so.
      - V(true) removes the (empty) marker before mounting. Only set it when the
        host has not crashed since that overlay was mounted. Upper data is
        never touched.
      - After this module itself unmounts a volatile overlay cleanly (to change
        its layers), it removes the marker without being asked.
    type: bool
    default: false
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
  upper_tmpfs:
    description:
      - A volatile upper - O(upperdir) and O(workdir) on a tmpfs this module
        mounts with a declared size, in the manner of systemd.volatile. With
        O(state=mounted) the tmpfs is mounted first (or its size, mode and
        owner set in place), the upper and work dirs are made in it, then the
        overlay is mounted on them. Whatever is written to the overlay lives
        in memory and is gone when the tmpfs is unmounted or the host boots.
      - O(state=unmounted) and O(state=absent) unmount the overlay, then the
        tmpfs, when it holds nothing but the upper and work dirs; a tmpfs that
        holds other files, or other mounts, is left mounted with a warning.
        O(state=absent) also removes the tmpfs persistence.
      - Persisted for boot with O(persist=fstab) as a C(tmpfs) line before the
        overlay line, and with O(persist=systemd) as a C(.mount) unit of
        C(Type=tmpfs); in both cases a small oneshot service unit in
        O(unit_dir) makes the upper and work dirs on the fresh tmpfs before the
        overlay is mounted (the overlay requires it). See docs/volatile.md.
    type: dict
    suboptions:
      path:
        description:
          - Mount point of the tmpfs. Both O(upperdir) and O(workdir) must lie
            inside it. Defaults to their common parent directory (refused when
            that is C(/)).
        type: path
      size:
        description:
          - Size limit of the tmpfs, in tmpfs syntax (C(64M), C(1G), C(10%) of
            RAM). A live tmpfs of another size is resized in place; shrinking
            below what it holds is refused.
        type: str
        required: true
      mode:
        description: Mode of the tmpfs root, an octal string such as C('0755').
        type: raw
        default: '0755'
      owner:
        description: User name or UID owning the tmpfs root.
        type: str
        default: root
      group:
        description: Group name or GID of the tmpfs root.
        type: str
        default: root
notes:
  - Needs root (CAP_SYS_ADMIN) to mount.
  - In check mode nothing is created or mounted; the result predicts exactly
    what a real run would do. A mount that is in use and would be unmounted
    (re-layered, O(state=unmounted), O(state=absent)) fails the task in check
    mode as in a real run, before anything changes.
  - Holders are looked for in every mount namespace of the host, only when a
    mount or an unmount is planned; a container or service with its own copy
    of the overlay (C(podman run --rootfs), C(PrivateTmp=yes)) holds it. See
    RV(holders), RV(elsewhere) and RV(shared).
  - The kernel shows an option in mountinfo only when it differs from the
    overlay module's default; C(uuid) is only compared when declared as
    C(on), C(off) or C(null), because with the default C(auto) the kernel picks
    a value per upper dir; C(xino) is only compared when the kernel shows it,
    since it is hidden whenever all layers share one filesystem.
extends_documentation_fragment:
  - overlayfs.mounts.host
  - overlayfs.mounts.attributes
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

- name: Mount it read-only, without set-user-ID programs or device files (the overlay stays writable underneath)
  overlayfs.mounts.overlay_mount:
    path: /srv/merged
    lowerdir: [/srv/lower1, /srv/lower2]
    upperdir: /srv/upper
    workdir: /srv/work
    options: [ro, nosuid, nodev, noatime]

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

- name: Make sure the overlay is not mounted (fstab and directories stay)
  overlayfs.mounts.overlay_mount:
    path: /srv/merged
    state: unmounted

- name: Persist as a native systemd mount unit, and mount through systemd
  overlayfs.mounts.overlay_mount:
    path: /srv/app
    lowerdir: [/srv/layers/app, /srv/layers/base]
    upperdir: /srv/state/upper
    workdir: /srv/state/work
    persist: systemd

- name: A unit started by multi-user.target after the database, with its own timeouts
  overlayfs.mounts.overlay_mount:
    path: /srv/data
    lowerdir: [/srv/layers/data, /srv/layers/base]
    upperdir: /srv/state/data-upper
    workdir: /srv/state/data-work
    persist: systemd
    unit_settings:
      Unit:
        Description: Data overlay of the app
        DefaultDependencies: false
        After: [postgresql.service]
      Mount:
        TimeoutSec: 30
        LazyUnmount: true
      Install:
        WantedBy: [multi-user.target]

- name: Mounted on first access, unmounted after a minute idle (a real .automount unit)
  overlayfs.mounts.overlay_mount:
    path: /srv/archive
    lowerdir: [/srv/layers/archive, /srv/layers/base]
    persist: systemd
    boot_options: [x-systemd.automount, x-systemd.idle-timeout=60]

- name: Persist in fstab for the next boot only, tolerate a failure at boot
  overlayfs.mounts.overlay_mount:
    path: /srv/cache
    lowerdir: [/srv/layers/cache, /srv/layers/base]
    upperdir: /srv/state/cache-upper
    workdir: /srv/state/cache-work
    state: present
    boot_options: [nofail]
    backup: true

- name: Remove the overlay for good (upper data stays on disk)
  overlayfs.mounts.overlay_mount:
    path: /srv/app
    state: absent
"""

RETURN = r"""
mount:
  description:
    - The declaration after normalisation (canonical absolute paths, options in
      canonical order); C(datadir) only when data-only layers were declared, C(flags) only when flags were.
    - C(flags) are the declared per-mount flags (from O(options) and
      O(boot_options)) that differ from a fresh mount's, in a fixed order.
    - Paths declared through a symlink show here as the directories they
      resolve to (what the overlay is mounted with); C(declared_as) then
      holds those fields as declared (normalised), which is how they are
      persisted, so that a boot follows the link. Absent when no path went
      through a symlink.
  returned: always
  type: dict
  sample:
    path: /srv/merged
    lowerdir: [/srv/lower1, /srv/lower2]
    upperdir: /srv/upper
    workdir: /srv/work
    options: [index=off]
    flags: [nosuid, nodev]
live:
  description:
    - The overlay mounted at O(path) after the task, or V(null) when none is.
    - C(options) are the overlay options that differ from the kernel defaults;
      C(shown_options) are the options exactly as mountinfo shows them;
      C(other_options) are options of other subsystems (for example an SELinux context).
    - C(flags) are the mount's per-mount flags that differ from a fresh
      mount's (C(ro), C(nosuid), C(nodev), C(noexec), C(noatime) or
      C(strictatime), C(nodiratime)); C(superblock) is V(ro) or V(rw) for the
      overlay itself; C(read_only) is V(true) when either is read-only.
    - Relative paths (short layer links, a container engine's C(l/) links)
      are resolved as in M(overlayfs.mounts.overlay_mount_info). C(relative_to)
      is the directory they were resolved against (V(null) when all paths were
      absolute), C(resolved) is V(false) when no directory held them, and
      C(engine) is V(docker) or V(containers-storage) for a container
      engine's mount (inferred from its storage layout), V(systemd-sysext),
      V(systemd-confext) or V(composefs) for an overlay the system mounted
      (told by its mount source, or for composefs by an EROFS top layer over
      data-only layers), else V(null).
    - C(unknown) lists the paths whose directory cannot be known, each as
      C(field), C(path) and C(reason). The kernel keeps a layer path as it was
      given and serves the directory it named then; a path in mountinfo that
      goes through a symlink is taken as the link's current target only when
      every symlink on it is older than the mount (the birth time of the
      work dir's C(work), which the kernel makes anew at each mount of a
      writable overlay, else the boot time). Otherwise the path stays as
      mountinfo shows it, is listed here, and counts as a difference, so a
      declared overlay is re-layered. Overlays this module mounts are mounted
      with the real paths and never have unknown paths.
    - A mount point that belongs to a container engine or the system
      (systemd-sysext, systemd-confext, composefs), or that holds a
      fuse-overlayfs mount, is never mounted over, unmounted, re-layered or
      pruned, whatever O(state); the task fails instead, with the reason and
      what to do, before anything changes (in check mode too).
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
    flags: [nosuid, nodev]
    superblock: rw
    mount_id: 412
    source: overlay
    form: lowerdir+
    resolved: true
    relative_to: null
    engine: null
    unknown: []
actions:
  description:
    - What was done, or in check mode what would be done, in order.
    - Each item has C(action) and C(path). C(action) is one of V(create_dir),
      V(write_fstab), V(write_links), V(write_unit), V(remove_unit),
      V(write_automount), V(remove_automount), V(mask_drop_in) (with C(masks),
      the drop-in it hides), V(enable_unit) and V(disable_unit) (one per link
      into a target), V(remove_links) (the short links C(state=absent)
      leaves no trace of), V(daemon_reload), V(unmount_dependent) (in
      M(overlayfs.mounts.overlay_mounts) only, a listed overlay that uses a dir
      inside this one, unmounted first and mounted again later in the list, with
      C(reason)), V(unmount) (with C(reason) when it is
      for re-layering), V(clear_volatile), V(mount) (with C(via=systemd)
      when the unit is started) and V(remount_flags) (the per-mount flags
      change in place, with C(reason), and C(superblock=rw) when the overlay
      itself is made writable again).
  returned: always
  type: list
  elements: dict
  sample:
    - {action: create_dir, path: /srv/upper}
    - {action: write_fstab, path: /etc/fstab}
    - {action: mount, path: /srv/merged}
persisted:
  description:
    - What persists the overlay after the task.
    - C(fstab) lists every overlay fstab entry for O(path) (normally one), each
      with C(path), C(lowerdir), C(upperdir), C(workdir), C(options), C(flags),
      C(boot_options) and C(requires_mounts_for).
    - C(systemd) is the overlay unit for O(path) in O(unit_dir) read back the same
      way, plus C(managed) (written by this collection), or V(null). It is the
      effective unit - the unit file and every drop-in systemd applies over it,
      in systemd's order - with C(unit_settings) (its other settings by
      section), C(drop_ins) (the drop-in files applied) and C(origins) (for each
      C(Section.Key), the file its value comes from).
    - C(unit_name) is the unit's name; C(unit_enabled) says whether the unit (or
      its automount) is linked into any target for boot, C(unit_targets) which
      targets; C(automount) is the name of its C(.automount) unit, or V(null).
  returned: always
  type: dict
  sample:
    fstab:
      - path: /srv/merged
        lowerdir: [/srv/lower1, /srv/lower2]
        datadir: []
        upperdir: /srv/upper
        workdir: /srv/work
        options: []
        flags: []
        boot_options: []
        requires_mounts_for: [/srv/lower1, /srv/lower2, /srv/upper, /srv/work]
        source: overlay
    systemd: null
    unit_name: srv-merged.mount
    unit_enabled: false
    unit_targets: []
    automount: null
backup_file:
  description: The copy of fstab made before it was changed.
  returned: when O(backup=true) and fstab was changed
  type: str
  sample: /etc/fstab.12345.2026-11-26@23:59:01~
drift:
  description:
    - Every field in which the host differed from the declaration before the
      task ran, each as C(field), C(declared), C(live) and C(persisted) (the
      value in the persisted fstab line or unit; V(null) where it does not apply).
      In check mode this is a complete drift report; in a real run it lists
      what the task corrected.
    - C(field) is V(mounted), V(lowerdir), V(upperdir), V(workdir), V(datadir),
      C(options.<name>) for one overlay option, C(flags.<group>) for one
      per-mount flag (V(flags.ro), V(flags.suid), V(flags.dev), V(flags.exec),
      V(flags.atime), V(flags.diratime); the values are flags such as V(nosuid)
      or V(suid)), V(superblock) (an overlay with an upper dir, not declared
      C(ro), that is read-only as a whole), V(persisted) (how the overlay is
      persisted - V(fstab), V(systemd), V(both) or V(none)), V(boot_options),
      V(boot) (unit linked for boot) or V(managed) (an fstab line not yet
      marked as written by this collection).
    - With O(persist=systemd) also C(unit_settings.<Section>.<Key>) for one unit
      setting, V(unit_targets) (the targets the unit is linked into) and
      V(automount); a row whose persisted value comes from a drop-in names that
      file in C(drop_in).
  returned: always
  type: list
  elements: dict
  sample:
    - {field: lowerdir, declared: [/srv/l1, /srv/l2], live: [/srv/l2, /srv/l1], persisted: [/srv/l1, /srv/l2]}
    - {field: persisted, declared: fstab, live: null, persisted: none}
mount_method:
  description:
    - How this task mounted the overlay. V(null) when it mounted nothing -
      the overlay was already mounted as declared, O(state) is not
      V(mounted), or the task ran in check mode (which mounts nothing, so
      does not know the method either).
    - V(fsconfig) is the new mount API with one C(lowerdir+) per layer;
      V(mount2) is the legacy mount(2) system call; V(symlinks) is mount(2)
      through short links to the layers; V(systemd) is the unit started by
      systemd (which runs mount(8)).
  returned: always
  type: str
  sample: fsconfig
diff:
  description:
    - In diff mode, a list of before/after views - the live mount (path, layers,
      upper, work, options, flags), then the fstab file and the unit file when they change.
  returned: when diff mode is on
  type: list
  elements: dict
holders:
  description:
    - Processes, in any mount namespace, that keep the mount busy, when the task failed for that reason.
    - Each has C(pid), C(command) and C(uses) (what it holds, such as C(cwd /srv/merged) or C(fd 7 /srv/merged/f));
      C(owner) when its cgroup names a container or a systemd unit (C(podman container 69802ccab605),
      C(unit app.service)); C(namespace) (C(mnt:[4026532175])) when it runs in another mount namespace.
  returned: on failure because the mount is in use
  type: list
  elements: dict
elsewhere:
  description:
    - Copies of the overlay mounted in other mount namespaces that an unmount here would not reach
      (a container's root, for example), when the task failed for that reason.
    - Each has C(namespace), C(mount_point) (as that namespace sees it), and C(pid), C(command) and
      C(owner) of a process of that namespace.
  returned: on failure because the mount is in use
  type: list
  elements: dict
shared:
  description:
    - Other overlays, in other mount namespaces, live on the declared upper or work dir (C(dir)),
      when a mount was refused for that reason; keys as in RV(elsewhere).
  returned: on failure because the upper or work dir is in use
  type: list
  elements: dict
submounts:
  description: Mounts below the mount point, when the task failed because they keep it busy.
  returned: on failure because the mount is in use
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

# First: the collection's other modules then load through the code cache (compiled once, kept between runs).
from ansible_collections.overlayfs.mounts.plugins.module_utils._host import code_cache
from ansible_collections.overlayfs.mounts.plugins.module_utils._converge.entry import converge
from ansible_collections.overlayfs.mounts.plugins.module_utils._converge.session import TaskSession
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError
from ansible_collections.overlayfs.mounts.plugins.module_utils._report.printable import utf8_result
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.spec import (
    MOUNT_REQUIRED_IF,
    MOUNT_REQUIRED_TOGETHER,
    MOUNT_SPEC,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec=MOUNT_SPEC,
        required_if=MOUNT_REQUIRED_IF,
        required_together=MOUNT_REQUIRED_TOGETHER,
        supports_check_mode=True,
    )
    try:
        with TaskSession(module) as session:
            result = converge(session, module.params)
    except OverlayError as error:
        module.fail_json(**utf8_result(dict(error.details, msg=error.message)), **code_cache.host_bytecode())
    module.exit_json(**utf8_result(result), **code_cache.host_bytecode())


if __name__ == "__main__":
    main()
