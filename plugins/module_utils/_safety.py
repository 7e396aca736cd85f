# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Upper and work dirs that would make a mount fail or misbehave, in plain words. Pure.

The kernel answers these cases with a bare errno (EBUSY, ESTALE, EINVAL) and
a line in dmesg; we find them before mounting and say what is wrong and what
to do about it. The facts come from ``_host.upper_facts``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.overlayfs.mounts.plugins.module_utils._errors import OverlayError

# Filesystems that lack the xattrs or d_type an upper dir needs (or are read-only).
UNSUITABLE_UPPER_FS = frozenset([
    "vfat", "msdos", "exfat", "ntfs", "ntfs3", "iso9660", "udf", "squashfs", "erofs", "cramfs",
    "nfs", "nfs4", "cifs", "smb3", "9p", "sshfs", "fuse.sshfs", "ramfs", "proc", "sysfs",
])

VOLATILE_MARKER = ("work", "incompat", "volatile")


def shared_upper(decl, overlays, own_mount_ids=()):
    """The first live overlay (other than ours) using the declared upper or work dir.

    ``overlays`` are normalised live states (``_plan.live_state``).
    """
    mine = set(d for d in (decl["upperdir"], decl["workdir"]) if d)
    for live in overlays:
        if live["mount_id"] in own_mount_ids:
            continue
        theirs = set(d for d in (live["upperdir"], live["workdir"]) if d)
        if mine & theirs:
            return live
    return None


def parse_origin(raw):
    """``(handle type, handle bytes)`` of a ``trusted.overlay.origin`` value, or None.

    The value is the kernel's struct ovl_fb: version, magic 0xfb, length,
    flags, handle type, the lower filesystem's 16-byte uuid, then the handle.
    """
    data = bytearray(raw or b"")
    if len(data) < 21 or data[1] != 0xFB or data[2] > len(data):
        return None
    return data[4], bytes(data[21:data[2]])


def check_upper(decl, facts, index_on, clear_volatile):
    """Raise OverlayError for an upper/work dir the kernel would refuse or misuse.

    Returns the list of safe remedies to carry out (``clear_volatile``).
    """
    if decl["upperdir"] is None:
        return []
    shared = facts.get("shared")
    if shared is not None:
        raise OverlayError(
            "upperdir: %s (or workdir %s) is already used by the overlay mounted at %s; one upper "
            "and work dir pair must never serve two overlays at once (the kernel answers EBUSY, "
            "or the data gets corrupted): give this overlay its own upper and work dirs"
            % (decl["upperdir"], decl["workdir"], shared["path"]), shared_with=shared["path"])
    fstype = facts.get("upper_fstype")
    if fstype in UNSUITABLE_UPPER_FS or (fstype or "").startswith("fuse"):
        raise OverlayError(
            "upperdir: %s is on a %s filesystem, which lacks the extended attributes or d_type "
            "support an overlay's upper dir needs: put upper and work on ext4, xfs, btrfs or tmpfs"
            % (decl["upperdir"], fstype))
    remedies = []
    if facts.get("volatile_marker"):
        if not clear_volatile:
            raise OverlayError(
                "workdir: %s holds the marker %s left by a mount with the volatile option; the "
                "kernel refuses to mount again until it is removed, because after a crash the "
                "upper dir may be inconsistent. If the host has not crashed since that overlay "
                "was mounted, set clear_volatile: true to remove the marker (upper data is not "
                "touched); otherwise recreate upper and work"
                % (decl["workdir"], facts["volatile_marker"]))
        remedies.append({"action": "clear_volatile", "path": facts["volatile_marker"]})
    origin = facts.get("origin")
    lower_handle = facts.get("lower_handle")
    if index_on and origin is not None and lower_handle is not None and origin != lower_handle:
        raise OverlayError(
            "upperdir: %s was used with index=on over other lower layers: its recorded origin does "
            "not match the top lower layer %s, and the kernel would refuse the mount (ESTALE). "
            "Mount it over the lowers it was made with, use a fresh upper and work dir, or mount "
            "with index=off" % (decl["upperdir"], decl["lowerdir"][0] if decl["lowerdir"] else "?"))
    return remedies
