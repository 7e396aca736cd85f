# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Upper and work dirs that would make a mount fail or misbehave, in plain words. Pure.

The kernel answers these cases with a bare errno (EBUSY, ESTALE, EINVAL) and
a line in dmesg; we find them before mounting and say what is wrong and what
to do about it. The facts come from ``_host.system.upper_facts``.
"""

import posixpath
from typing import Any, Callable, Collection, Dict, Iterable, List, Mapping, Optional, Tuple

from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError
from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.mountinfo import (
    MountEntry,
    engine_layout,
    engine_of,
    overlay_config,
    resolve_paths,
)
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.paths import inside

# Filesystems that lack the xattrs or d_type an upper dir needs (or are read-only).
UNSUITABLE_UPPER_FS = frozenset([
    "vfat", "msdos", "exfat", "ntfs", "ntfs3", "iso9660", "udf", "squashfs", "erofs", "cramfs",
    "nfs", "nfs4", "cifs", "smb3", "9p", "sshfs", "fuse.sshfs", "ramfs", "proc", "sysfs",
])

VOLATILE_MARKER = ("work", "incompat", "volatile")


def _layer_dir(path, prefix):
    """``<root>/<id>`` for a path below an engine's storage root ``<root>/``."""
    return prefix + path[len(prefix):].split("/", 1)[0]


def _overlay_facts(entry, exists):
    """``(paths, upper and work set, engine root)`` of an overlay entry, for find_shared.

    Kept on the entry when no path of it is relative (``exists`` then plays
    no part): a batch checks every overlay it mounts against every live
    one, and mountinfo hands out the same entries again (``_formats.mountinfo.parse``).
    """
    derived = entry.derived
    if derived is not None and "shared" in derived:
        return derived["shared"]
    paths = resolve_paths(overlay_config(entry), entry.mount_point, exists)
    theirs = frozenset(posixpath.normpath(d) for d in (paths["upperdir"], paths["workdir"]) if d)
    facts = (paths, theirs, engine_layout(entry.mount_point, paths))
    if paths["base"] is None and paths["resolved"]:
        if derived is None:
            derived = entry.derived = {}
        derived["shared"] = facts
    return facts


def find_shared(mine: Iterable[Optional[str]], entries: Iterable[MountEntry], own_mount_ids: Collection[int] = (),
                exists: Optional[Callable[[str], bool]] = None,
                realpath: Optional[Callable[[str], str]] = None) -> Optional[Dict[str, Any]]:
    """The first live overlay (other than ours) an upper or work dir of ``mine`` would share.

    Shared means: its upper or work dir is one of ``mine`` (relative paths
    resolved as _mountinfo.resolve_paths does), or, for a container engine's
    mount, one of ``mine`` lies in a layer dir (``<root>/<id>``) the
    container uses: its own (upper and work) or one of its lower layers
    (``realpath`` follows the engine's short ``l/`` links). ``mine`` holds
    canonical paths. Returns ``{path, mount_id, engine}`` or None.
    """
    mine = {posixpath.normpath(d) for d in mine if d}
    for entry in entries:
        if entry.fstype != "overlay" or entry.mount_id in own_mount_ids:
            continue
        paths, theirs, root = _overlay_facts(entry, exists)
        found = not mine.isdisjoint(theirs)
        if not found and root is not None:
            prefix = root.rstrip("/") + "/"
            near = {_layer_dir(d, prefix) for d in mine if inside(d, root)}
            if near:
                in_use = {entry.mount_point[:-len("/merged")]}
                for layer in paths["lowerdir"] + paths["datadir"]:
                    real = realpath(layer) if realpath is not None and layer[:1] == "/" else layer
                    if inside(real, root):
                        in_use.add(_layer_dir(real, prefix))
                found = bool(near & in_use)
        if found:
            return {"path": entry.mount_point, "mount_id": entry.mount_id,
                    "engine": engine_of(root, exists) if root is not None else None}
    return None


def parse_origin(raw: Optional[bytes]) -> Optional[Tuple[int, bytes]]:
    """``(handle type, handle bytes)`` of a ``trusted.overlay.origin`` value, or None.

    The value is the kernel's struct ovl_fb: version, magic 0xfb, length,
    flags, handle type, the lower filesystem's 16-byte uuid, then the handle.
    """
    data = bytearray(raw or b"")
    if len(data) < 21 or data[1] != 0xFB or data[2] > len(data):
        return None
    return data[4], bytes(data[21:data[2]])


def check_upper(decl: Any, facts: Mapping[str, Any], index_on: bool,
                clear_volatile: bool) -> List[Dict[str, str]]:
    """Raise OverlayError for an upper/work dir the kernel would refuse or misuse.

    Returns the list of safe remedies to carry out (``clear_volatile``).
    """
    if not decl.writable:
        return []
    shared = facts.get("shared")
    if shared is not None and shared.get("engine"):
        raise OverlayError(
            "upperdir: %s (or workdir %s) is a layer dir of the container mounted at %s by %s, "
            "in use now; an upper or work dir must never be another overlay's layer (the kernel "
            "answers EBUSY, or the container's files get corrupted), and this collection never "
            "writes into a container engine's storage: give this overlay its own upper and work "
            "dirs outside the engine's storage root"
            % (decl.upperdir, decl.workdir, shared["path"], shared["engine"]),
            shared_with=shared["path"], engine=shared["engine"])
    if shared is not None:
        raise OverlayError(
            "upperdir: %s (or workdir %s) is already used by the overlay mounted at %s; one upper "
            "and work dir pair must never serve two overlays at once (the kernel answers EBUSY, "
            "or the data gets corrupted): give this overlay its own upper and work dirs"
            % (decl.upperdir, decl.workdir, shared["path"]), shared_with=shared["path"])
    fstype = facts.get("upper_fstype")
    if fstype in UNSUITABLE_UPPER_FS or (fstype or "").startswith("fuse"):
        raise OverlayError(
            "upperdir: %s is on a %s filesystem, which lacks the extended attributes or d_type "
            "support an overlay's upper dir needs: put upper and work on ext4, xfs, btrfs or tmpfs"
            % (decl.upperdir, fstype))
    if facts.get("pending_marker"):
        raise OverlayError(
            "workdir: %s holds the marker %s: an overlayfs.mounts.overlay_upper run that commits this "
            "overlay's upper dir into a new layer was interrupted between its steps, and the kernel refuses "
            "to mount the overlay until it is finished. Run overlay_upper for this overlay again (any state; "
            "it finishes the interrupted commit first, from the journal beside the upper dir)"
            % (decl.workdir, facts["pending_marker"]), pending=facts["pending_marker"])
    remedies = []
    if facts.get("volatile_marker"):
        if not clear_volatile:
            raise OverlayError(
                "workdir: %s holds the marker %s left by a mount with the volatile option; the "
                "kernel refuses to mount again until it is removed, because after a crash the "
                "upper dir may be inconsistent. If the host has not crashed since that overlay "
                "was mounted, set clear_volatile: true to remove the marker (upper data is not "
                "touched); otherwise recreate upper and work"
                % (decl.workdir, facts["volatile_marker"]))
        remedies.append({"action": "clear_volatile", "path": facts["volatile_marker"]})
    origin = facts.get("origin")
    lower_handle = facts.get("lower_handle")
    if index_on and origin is not None and lower_handle is not None and origin != lower_handle:
        raise OverlayError(
            "upperdir: %s was used with index=on over other lower layers: its recorded origin does "
            "not match the top lower layer %s, and the kernel would refuse the mount (ESTALE). "
            "Mount it over the lowers it was made with, use a fresh upper and work dir, or mount "
            "with index=off" % (decl.upperdir, decl.lowerdir[0] if decl.lowerdir else "?"))
    return remedies
