# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)


class ModuleDocFragment:
    """How an overlay is set up on the host: state, persistence, mounting.

    These are the options ``overlay_mount`` takes and ``overlay_mounts`` takes
    at task level as the defaults of its entries (``_model.spec.INHERITED``). Their
    type, choices and default are written here once. The descriptions are
    overlay_mount's; overlay_mounts gives each option a short description of
    its own, which Ansible merges over the one here.
    """

    DOCUMENTATION = r"""
options:
  state:
    description:
      - V(mounted) makes sure the overlay is mounted at O(path) exactly as
        declared and persisted as O(persist) says. It creates missing
        directories (see O(create_dirs)), writes the fstab line or the unit,
        mounts the overlay when it is not mounted, and unmounts and mounts it
        again when its layers, upper, work dir or options differ and nothing
        uses it. If the mount fails, fstab and the unit are restored exactly.
      - V(present) makes sure the overlay is persisted as O(persist) says (so it
        is mounted at the next boot) and creates missing directories, but leaves
        the live mount as it is. Lower dirs may be missing (a warning says so).
      - V(unmounted) makes sure no overlay is mounted at O(path). Nothing else is
        touched; persistence, directories and their data stay. A mount of
        another filesystem type at O(path) is left alone with a warning.
      - V(absent) makes sure the overlay is neither mounted nor persisted. It
        unmounts it (through systemd when its unit is active), stops and
        disables its unit, removes the unit file and the overlay's fstab lines
        for O(path), whatever O(persist) says. Directories, and the upper dir's
        data, always stay.
    type: str
    choices: [mounted, present, unmounted, absent]
    default: mounted
  persist:
    description:
      - How the overlay comes back after a reboot.
      - V(fstab) writes one line for O(path) in O(fstab), with an
        C(x-systemd.requires-mounts-for=) option for every lower, upper and work
        dir, so that systemd mounts what they sit on (other overlays included)
        first. Other lines, comments, blank lines, order, mode, owner and the
        file's final newline stay exactly as they were; more lines for the same
        mount point are collapsed into one, with a warning. An overlay unit for
        O(path) in O(unit_dir) is removed (the live mount stays).
      - V(systemd) writes a native C(.mount) unit in O(unit_dir), named as
        C(systemd-escape --path --suffix=mount) names it, and links it into
        each target its C([Install]) section names (C(local-fs.target) unless
        O(unit_settings) says otherwise; when O(boot)). With C(x-systemd.automount)
        it also writes a C(.automount) unit, which is the one linked for boot.
        Drop-ins systemd applies over the unit are read with it (see
        O(drop_ins)). On a host booted with systemd it
        then runs daemon-reload and mounts by starting the unit; on a host
        without a running systemd (chroot, image build) it skips those steps
        with a warning and mounts directly. The overlay's fstab lines for
        O(path) are removed.
      - V(none) touches neither fstab nor units.
      - Files are written atomically (temporary file in the same directory,
        fsync, rename) under a lock on the fstab directory, so concurrent runs
        do not lose each other's edits; a new fstab line is checked with
        C(findmnt --verify) before it replaces the file.
    type: str
    choices: [fstab, systemd, none]
    default: fstab
  fstab:
    description:
      - The fstab file to edit. When it is a symlink, the file it points to is
        replaced atomically in its own directory; the link stays.
    type: path
    default: /etc/fstab
  unit_dir:
    description:
      - The directory of the systemd unit file. It is created if missing.
      - A running systemd only starts units from its own unit directories; with
        another directory the overlay is mounted directly.
    type: path
    default: /etc/systemd/system
  backup:
    description:
      - Keep a timestamped copy of the fstab file before changing it.
    type: bool
    default: false
  boot:
    description:
      - Whether the overlay is mounted at boot.
      - V(false) writes C(noauto) in fstab and links the unit into no target
        (any link to it in O(unit_dir) is removed). A unit linked into any
        target counts as mounted at boot.
      - With C(x-systemd.automount), systemd arms the automount at boot either
        way (it ignores C(noauto) for an automount), so its C(.automount) unit
        is linked for boot with V(false) too.
    type: bool
    default: true
  create_dirs:
    description:
      - Create a missing mount point, upper dir and work dir (and their missing
        parents). With V(false) a missing one is an error.
      - A missing lower dir is always an error.
    type: bool
    default: true
  method:
    description:
      - How the overlay is mounted.
      - V(auto) uses the new mount API with one C(lowerdir+) value per layer
        where the kernel has it (probed; Linux 6.8+; no limit on the number of
        layers or the total length, but each path at most 255 bytes), else the
        legacy mount(2) when the option string fits in its one page, else
        V(symlinks) (with O(links_dir)).
      - V(fsconfig), V(mount2) and V(symlinks) force one way. V(symlinks) links
        every layer as C(0), C(1), ... in a directory under O(links_dir) and
        mounts with the legacy mount(2) and those short relative names (as
        Docker's overlay2 does), so that 500 layers of long paths fit in one page.
      - Whatever the method, the result is read back from mountinfo and verified;
        C(mount_method) says which was used.
    type: str
    choices: [auto, fsconfig, mount2, symlinks]
    default: auto
  links_dir:
    description:
      - Where the short layer links of V(symlinks) mounts are kept, one
        directory per mount point. They must stay while the overlay is mounted,
        since mountinfo names the layers through them.
      - It must be owned by root and not writable by group or others; only the
        numbered links this module makes are ever removed from it.
      - Links kept elsewhere than the default directory leave a pointer there
        (a symlink C(/var/lib/overlayfs-mounts/links/<name>) to their
        directory), through which M(overlayfs.mounts.overlay_mount_info) reads
        such a mount back as its real layers without being told where the
        links are; O(state=absent) removes it.
    type: path
    default: /var/lib/overlayfs-mounts/links
  drop_ins:
    description:
      - What to do with a drop-in this collection did not write
        (C(<unit>.d/*.conf), its prefix dirs and C(mount.d/), in any unit
        directory systemd reads) that changes what the declaration sets -
        the unit's C(What=), C(Where=), C(Type=), C(Options=) or a setting of
        O(unit_settings) - with O(persist=systemd).
      - V(refuse) fails the task before anything changes and names the drop-in
        file and the settings it changes.
      - V(mask) masks that drop-in with a link to C(/dev/null) of the same name
        in C(/etc/systemd/system.control/<unit>.d/), the unit directory systemd
        reads first, and says so in a warning; the drop-in itself is never
        edited or removed. Remove the mask by hand (or with
        C(systemctl revert <unit>)) to let the drop-in apply again.
      - Drop-ins that change nothing declared are always kept; their values
        show in RV(persisted) and in M(overlayfs.mounts.overlay_mount_info)
        with the file each comes from.
    type: str
    choices: [refuse, mask]
    default: refuse
notes:
  - A run of M(overlayfs.mounts.overlay_mount) or M(overlayfs.mounts.overlay_mounts)
    that changes the host holds the lock file C(/run/overlayfs-mounts.lock)
    from its first read of the host to its last write, so that two runs at
    once take turns and the second plans from the host as the first left it.
    A check-mode run shares the lock and never creates the file. A run that
    waits more than 5 minutes for the lock fails, changing nothing, and names
    the process that holds it.
"""
