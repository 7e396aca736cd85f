#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: overlay_mount_info
short_description: List a host's overlayfs mounts, live and persisted, with their drift
version_added: 1.0.0
description:
  - Lists every overlay of a host, one entry per mount point - mounted now
    (C(/proc/self/mountinfo)), in an fstab file, or in a C(.mount) unit,
    written by this collection or not - with its layers, upper and work dir,
    options, persistence, and where the live mount and the persisted one
    disagree.
  - Docker and podman container mounts (short relative layer links
    included), systemd-sysext, systemd-confext, composefs and fuse-overlayfs
    mounts are listed too, each named by its owner in C(engine).
  - Changes nothing, so it runs the same in check mode. It reads only files
    (mountinfo, the overlay module's parameters, fstab, unit files) and needs
    neither util-linux nor systemd.
  - How engine mounts are resolved is in the collection's
    docs/container_hosts.md; the drift fields in docs/drift.md.
author:
  - overlayfs.mounts developers (@overlayfs-mounts)
requirements:
  - Linux
options:
  path:
    description:
      - Only report these mount points. All overlays when omitted.
      - A path is compared by the directory it leads to, so a path through a
        symlink finds the overlay mounted at the link's target (listed under
        that mount point, with the path given among its C(aliases)).
      - Give a path as this module returns it (see RV(overlay_mounts[].path)),
        with C(\NNN) for a byte that is not UTF-8.
    type: list
    elements: path
    aliases: [name]
  fstab:
    description:
      - The fstab file to read.
    type: path
    default: /etc/fstab
  unit_dir:
    description:
      - The directories whose C(.mount) units are read.
    type: list
    elements: path
    default: [/etc/systemd/system]
  resolve_layers:
    description:
      - Resolve symlinks in every layer, upper and work path, so that a
        container engine's short links (C(l/ABC...)) show as the real layer
        directories. For a container, C(lowerdir) is then exactly the
        C(GraphDriver.Data.LowerDir) that C(docker inspect) or
        C(podman inspect) report (top first), and C(upperdir), C(workdir) and
        C(path) their C(UpperDir), C(WorkDir) and C(MergedDir).
      - A symlink is followed only when it is older than the mount (see the
        notes); otherwise the path is listed in C(live.unknown).
    type: bool
    default: false
  upper_usage:
    description:
      - Count what each overlay's upper dir holds - what was written through
        the overlay - in RV(overlay_mounts[].upper_usage) - files, bytes,
        whiteouts (deleted lower files, in both the device and the xattr
        form), opaque dirs, renamed dirs and metadata-only copies.
      - The upper dir is read, never changed, also while the overlay is
        mounted; the walk stays on the upper dir's filesystem and follows no
        symlink. It reads every entry, so it takes time on a large upper.
    type: bool
    default: false
extends_documentation_fragment:
  - overlayfs.mounts.attributes.info_module
notes:
  - Overlay options are normalised as in M(overlayfs.mounts.overlay_mount);
    values equal to the kernel's defaults are left out, and options of other
    subsystems (an SELinux C(context=...)) are kept apart in C(live.other_options).
  - The kernel shows a relative layer, upper or work path as the mounting
    process gave it, relative to a working directory mountinfo does not
    record. All relative paths of one mount are resolved against one base,
    the first of these that holds the first relative layer and the relative
    upper and work dir - this collection's short-link directory for the
    mount point (under C(/var/lib/overlayfs-mounts/links)), the mount point's
    grandparent (an engine's storage root, C(<root>/<id>/merged)), then the
    directories two and one levels above an absolute upper or work dir.
    Where none holds them, the paths are shown as the kernel shows them and
    C(resolved) is V(false). A mount made through this collection's short
    links shows the links' targets, wherever its C(links_dir)
    is (a mount through links elsewhere leaves a pointer under the default one).
  - A layer path through a symlink is never resolved anew, since the mount
    serves the directory the link named at mount time. With O(resolve_layers),
    such a path shows as the link's current target only when every symlink on
    it is older than the mount (the birth time of the work dir's C(work),
    which the kernel makes anew at each mount of a writable overlay, else
    the boot time); otherwise it stays as the kernel shows it and is listed in
    C(live.unknown) with the reason, and the drift shows it. Remounting the
    overlay (M(overlayfs.mounts.overlay_mount) re-layers a declared one)
    makes it known.
  - A mount point is an identity, not a string. A persisted mount point
    spelled through a symlink (an fstab line or unit for C(/srv/link/m),
    C(/srv/link) leading to C(/data/real)) is the one entry of the overlay at
    C(/data/real/m), live or not, and the spelling is listed in its
    C(aliases).
  - Paths are returned as they are, except a byte that is not UTF-8 (which a
    result cannot carry), shown as C(\NNN) with three octal digits as in
    C(/proc/self/mountinfo), and a backslash followed by three octal digits,
    shown as C(\134) - so every C(\NNN) in a returned path stands for exactly
    one byte, and the path's bytes are given back by replacing each C(\NNN)
    with its byte, as for mountinfo.
    A directory named C(bad) and the bytes C(0xff 0xfe) shows as C(bad\377\376).
    This applies to every path, option and source in the result.
  - Persisted paths are compared with the live ones as paths (a trailing or
    doubled slash, a C(.) component are no drift), and a persisted path
    through a symlink by where it leads now (a spelling is no drift).
seealso:
  - module: overlayfs.mounts.overlay_mount
"""

EXAMPLES = r"""
- name: Every overlay of the host
  overlayfs.mounts.overlay_mount_info:
  register: overlays

- name: Show the overlays whose live mount differs from fstab or its unit
  ansible.builtin.debug:
    msg: "{{ overlays.overlay_mounts | selectattr('drift') | map(attribute='path') | list }}"

- name: This collection's overlays and those of no known owner, not the containers'
  ansible.builtin.debug:
    msg: "{{ overlays.overlay_mounts | rejectattr('engine', 'in', ['docker', 'containers-storage'])
             | map(attribute='path') | list }}"

- name: Two mount points, with container short links resolved
  overlayfs.mounts.overlay_mount_info:
    path:
      - /srv/app
      - /var/lib/docker/overlay2/9f2c/merged
    resolve_layers: true
  register: some
"""

RETURN = r"""
overlay_mounts:
  description: One entry per mount point that has an overlay live or persisted, sorted by path.
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description:
        - The mount point, where the kernel shows the overlay (symlinks
          resolved).
        - A byte that is not UTF-8 shows as C(\NNN) (three octal digits), and a
          backslash followed by three octal digits as C(\134); see the notes.
      type: str
      sample: /srv/merged
    aliases:
      description:
        - Other spellings of C(path), through a symlink, that name this same
          mount point - a path given in O(path), or the mount point of an
          fstab line or unit - sorted; empty when there is none.
      type: list
      elements: str
      sample: [/srv/link/merged]
    lowerdir:
      description:
        - The lower layers, top first (live when mounted, else as persisted).
        - V(null) for a fuse-overlayfs mount, whose layers are not known.
      type: list
      elements: str
    datadir:
      description:
        - The data-only layers under the lower layers (the composefs layout), empty when there are none.
        - V(null) for a fuse-overlayfs mount.
      type: list
      elements: str
    upperdir:
      description: The upper dir, or V(null) for a read-only overlay.
      type: str
    workdir:
      description: The work dir, or V(null).
      type: str
    options:
      description: The overlay options that differ from the kernel defaults.
      type: list
      elements: str
    flags:
      description:
        - The per-mount flags that differ from a fresh mount's (C(ro), C(nosuid),
          C(nodev), C(noexec), C(noatime) or C(strictatime), C(nodiratime)) -
          live when mounted, else as persisted.
      type: list
      elements: str
      sample: [nosuid, nodev]
    mounted:
      description: Whether an overlay is mounted at C(path) now.
      type: bool
    persisted:
      description: V(fstab), V(systemd), V(both) or V(none).
      type: str
    managed:
      description: Whether the fstab line or unit was written by this collection.
      type: bool
    boot:
      description:
        - Whether the persisted overlay comes up at boot - an fstab line without
          C(noauto) (or with C(x-systemd.automount), which systemd arms whatever
          C(noauto) says), or a unit, or its automount, linked into any target
          (C(local-fs.target), C(multi-user.target), a target of its own).
        - V(false) when nothing persists it.
      type: bool
    upper_usage:
      description:
        - With O(upper_usage), what the upper dir holds; V(null) for an overlay
          without an upper dir (or whose upper is not an absolute path), and
          C(error) alone when it cannot be read.
        - C(files), C(dirs), C(symlinks), C(other) (devices, FIFOs, sockets);
          C(bytes) (the size of the regular files written; metadata-only
          copies add none, their data stays in a lower layer) and
          C(disk_bytes) (what every entry takes on disk); C(whiteouts) (deleted
          lower entries, as 0/0 character devices or files with the
          C(overlay.whiteout) xattr), C(opaque_dirs), C(redirects) (renamed
          dirs, C(redirect_dir=on)) and C(metacopy) (metadata-only copies,
          C(metacopy=on)); C(errors) and the first C(unreadable) paths.
        - Not returned without O(upper_usage).
      type: dict
      sample:
        files: 12
        dirs: 3
        symlinks: 0
        other: 0
        bytes: 40960
        disk_bytes: 53248
        whiteouts: 2
        opaque_dirs: 1
        redirects: 0
        metacopy: 1
        errors: 0
        unreadable: []
    engine:
      description:
        - Whom the overlay belongs to - V(docker) (Docker's overlay2 storage),
          V(containers-storage) (podman, CRI-O, buildah), V(overlayfs.mounts)
          (persisted by this collection, or mounted through its short links),
          V(systemd-sysext) and V(systemd-confext) (the merged system and
          configuration extensions, mount source C(sysext) or C(confext)),
          V(composefs) (mount source C(composefs), or an EROFS top layer over
          data-only layers), V(fuse-overlayfs) (a FUSE mount, see
          C(kernel_overlay)), or V(none) when no owner is known.
        - Told from the storage layout (a mount point C(<root>/<id>/merged)
          over C(<root>/<id>/diff) and C(<root>/<id>/work), layers in
          C(<root>/l/) or C(<root>/*/diff), and Docker's C(image/overlay2) or
          containers-storage's C(overlay-layers) beside the root), without
          asking the engine.
        - This collection never mounts over, re-layers, unmounts or prunes an
          overlay of any of these but its own, nor uses a container engine's
          layer dirs as an upper dir.
      type: str
      sample: docker
    kernel_overlay:
      description:
        - V(false) for a fuse-overlayfs mount, which is a FUSE file system
          and not a kernel overlay (its C(lowerdir), C(upperdir), C(workdir)
          and C(live) are V(null)); V(true) for every other entry.
      type: bool
    resolved:
      description:
        - V(false) when relative layer, upper or work paths of the live mount
          could not be resolved (nothing holds them) and are shown as the
          kernel shows them; V(true) when every path is absolute; V(null)
          when nothing is mounted.
      type: bool
    source:
      description: The live mount's source (usually C(overlay)), or V(null).
      type: str
    mount_id:
      description: The live mount's id in mountinfo, or V(null).
      type: int
    stacked:
      description: How many overlays are mounted on top of each other at C(path).
      type: int
    live:
      description:
        - The live state as M(overlayfs.mounts.overlay_mount) returns it, or V(null);
          with C(resolved), C(engine) and C(relative_to) (the base relative
          paths were resolved against, or V(null)); V(null) for a
          fuse-overlayfs mount.
      type: dict
    fstab:
      description: Every overlay fstab line for C(path), read back (normally one).
      type: list
      elements: dict
    systemd:
      description:
        - The overlay unit for C(path), read back as systemd reads it (the unit
          file and every drop-in over it), with C(unit) (its file), C(managed),
          C(unit_settings) (its other settings by section), C(drop_ins) (the
          drop-in files applied, in order), C(origins) (for each C(Section.Key),
          the file its value comes from), C(unit_targets) (the targets the unit
          or its automount is linked into), C(automount) (its C(.automount)
          unit, or V(null)) and, when a file has a line where systemd stops
          reading it, C(problems) naming the file and line; or V(null).
      type: dict
    drift:
      description:
        - Where the live mount and a persisted one disagree, as C(field), C(live),
          C(persisted), C(source) (V(fstab) or V(systemd)) and C(declared) (always V(null) here).
        - C(flags.<group>) (V(flags.ro), V(flags.suid), V(flags.dev), V(flags.exec),
          V(flags.atime), V(flags.diratime)) when a per-mount flag differs, such as
          a persisted C(nosuid) on a mount remounted C(suid) by hand; V(superblock)
          when an overlay with an upper dir is read-only as a whole but not
          persisted C(ro).
        - V(mounted) when a persisted overlay (without C(noauto)) is not mounted,
          V(persisted) when fstab holds more than one line for C(path), or when
          the overlay is persisted both as a unit and as an fstab line
          (C(persisted) V(both)).
        - A row whose persisted value comes from a unit's drop-in names that
          file in C(drop_in).
        - V(covered) when another mount sits on top of the overlay at its mount
          point (C(live) names that mount); V(shadowed) when a mount made after
          the overlay covers one of its layers, upper or work dir, so it serves
          the directory that was there before (C(live) names the dir and the
          mount). Both have C(source) V(null), and show whether or not the
          overlay is persisted.
      type: list
      elements: dict
      sample:
        - {field: lowerdir, live: [/srv/l2], persisted: [/srv/l1, /srv/l2], source: fstab, declared: null}
    upper_tmpfs:
      description:
        - For an overlay whose upper dir lies on a tmpfs (a volatile upper, see
          the C(upper_tmpfs) option of M(overlayfs.mounts.overlay_mount)) - the
          tmpfs mount point C(path), its live C(size) limit and C(used) space in
          bytes, the C(mode), C(uid) and C(gid) of its root, and how it is
          persisted - C(fstab) (its line in O(fstab)) and C(unit) with
          C(unit_options) (its C(Type=tmpfs) unit in O(unit_dir)), each V(null)
          when there is none. V(null) for any other overlay.
      type: dict
      sample: {path: /var/lib/volatile, size: 67108864, used: 4096, mode: "0755", uid: 0, gid: 0,
               fstab: "tmpfs /var/lib/volatile tmpfs size=64M,mode=0755,uid=0,gid=0,x-overlayfs.managed 0 0",
               unit: null, unit_options: null}
"""

from ansible.module_utils.basic import AnsibleModule

# First: the collection's other modules then load through the code cache (compiled once, kept between runs).
from ansible_collections.overlayfs.mounts.plugins.module_utils._host import code_cache
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.spec import INFO_SPEC
from ansible_collections.overlayfs.mounts.plugins.module_utils._report.host_overlays import list_overlays
from ansible_collections.overlayfs.mounts.plugins.module_utils._report.printable import escape_bytes, returnable


def main() -> None:
    """Run the module: gather every overlay of the host, live and persisted."""
    module = AnsibleModule(
        argument_spec=INFO_SPEC,
        supports_check_mode=True,
    )
    p = module.params
    try:
        mounts = list_overlays(p["fstab"], p["unit_dir"], paths=p["path"], resolve_layers=p["resolve_layers"],
                               upper_usage=p["upper_usage"])
    except OverlayError as error:
        module.fail_json(msg=escape_bytes(error.message), **returnable(error.details), **code_cache.host_bytecode())
    module.exit_json(changed=False, overlay_mounts=mounts, **code_cache.host_bytecode())


if __name__ == "__main__":
    main()
