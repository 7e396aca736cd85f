# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Small glue that reads host facts and carries out actions.

Everything that decides lives in the pure modules; this file only touches
/proc, /sys, the filesystem and the mount system calls.
"""

import ctypes
import errno
import os
import stat
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

from ansible_collections.overlayfs.mounts.plugins.module_utils._host.upper_journal import pending_marker
from ansible_collections.overlayfs.mounts.plugins.module_utils._host import safe_paths as _safepath
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError
from ansible_collections.overlayfs.mounts.plugins.module_utils._host.kernel_features import check_support, features as kernel_features, uuid_default
from ansible_collections.overlayfs.mounts.plugins.module_utils._host.mounting import mount_overlay, remount_flags, umount2 as _umount2
from ansible_collections.overlayfs.mounts.plugins.module_utils._host.namespaces import describe as describe_scan, scan_holders
from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.mountinfo import (
    MountEntry,
    mount_containing,
    mounts_at,
    parse,
    submounts,
)
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.overlay_options import defaults_from_parameters
from ansible_collections.overlayfs.mounts.plugins.module_utils._host.upper_safety import VOLATILE_MARKER, find_shared, parse_origin

MOUNTINFO = "/proc/self/mountinfo"
PARAMETERS_DIR = "/sys/module/overlay/parameters"


def read_mountinfo(path: str = MOUNTINFO) -> List[MountEntry]:
    """Every entry of this process's mountinfo, in file order."""
    with open(path, "rb") as handle:
        return parse(handle.read().decode("utf-8", "surrogateescape"))


def read_defaults(directory: str = PARAMETERS_DIR) -> Dict[str, Any]:
    """The overlay module's defaults; Kconfig defaults where it is not loaded."""
    values = {}
    try:
        names = os.listdir(directory)
    except OSError:
        names = []
    for name in names:
        try:
            with open(os.path.join(directory, name)) as handle:
                values[name] = handle.read().strip()
        except OSError:
            continue
    return defaults_from_parameters(values, uuid_default())


_O_PATH = getattr(os, "O_PATH", 0)
FD_LINK = "/proc/self/fd/%d"


def realpath(path: str) -> str:
    """``os.path.realpath(path)``, asked of the kernel when ``path`` exists.

    The kernel resolves the whole path for one ``open(O_PATH)`` (which opens
    nothing for reading and works on any file type), and
    ``/proc/self/fd/N`` names what it found: three system calls, where
    ``os.path.realpath`` makes one ``lstat`` per component. A path that does
    not exist, a dangling or looping link, or a host without ``/proc`` falls
    back to ``os.path.realpath``, which resolves what exists and keeps the
    rest as written.
    """
    if not _O_PATH:
        return os.path.realpath(path)
    try:
        fd = os.open(path, _O_PATH | os.O_CLOEXEC)
    except (OSError, ValueError) as error:
        return _realpath_of_missing(path, error)
    try:
        found = os.readlink(FD_LINK % fd)
    except OSError:
        found = None
    finally:
        os.close(fd)
    if not found or found[:1] != "/" or found.endswith(" (deleted)"):
        return os.path.realpath(path)
    return found


def _realpath_of_missing(path, error):
    """realpath of a path that could not be opened: its parent's, and the name as written.

    That is what ``os.path.realpath`` makes of a last component that does
    not exist (a mount point or upper dir still to be created). Anything
    else (a dangling or looping link, ``..``, not a directory on the way)
    goes to ``os.path.realpath`` itself.
    """
    parent, name = os.path.split(path)
    if getattr(error, "errno", None) != errno.ENOENT or not parent or not name or name in (".", ".."):
        return os.path.realpath(path)
    try:
        os.lstat(path)
    except OSError as missing:
        if missing.errno == errno.ENOENT:
            return os.path.join(realpath(parent), name)
    return os.path.realpath(path)


def cached(function: Callable[[str], Any]) -> Callable[[str], Any]:
    """``function`` of one path, each path looked up once (a module run's host reads)."""
    cache = {}

    def lookup(path):
        if path not in cache:
            cache[path] = function(path)
        return cache[path]
    return lookup


def readlink(path: str) -> Optional[str]:
    """A symlink's target, or None when ``path`` is not a readable link."""
    try:
        return os.readlink(path)
    except OSError:
        return None


def symlinks_in(directory: str) -> Optional[List[str]]:
    """Names of the symlinks in ``directory``, or None when it cannot be listed."""
    try:
        return [entry.name for entry in os.scandir(directory) if entry.is_symlink()]
    except OSError:
        return None


def check_kernel_support(decl: Any) -> None:
    """Refuse options (and data-only layers) the running kernel does not take, before acting."""
    check_support(decl.options, decl.datadir)


def lowerdir_plus() -> bool:
    """True when the running kernel takes layers one by one (``lowerdir+``), as probed."""
    return kernel_features().lowerdir_plus


def path_kind(path: str) -> str:
    """``dir``, ``missing``, or a word for what else is there."""
    try:
        st = os.stat(path)
    except OSError:
        if os.path.lexists(path):
            return "dangling symlink"
        return "missing"
    if stat.S_ISDIR(st.st_mode):
        return "dir"
    if stat.S_ISREG(st.st_mode):
        return "regular file"
    return "special file"


def make_dirs(path: str, mode: Optional[int] = None, uid: Optional[int] = None, gid: Optional[int] = None,
              field: str = "path") -> List[str]:
    """Create ``path`` and missing parents; return the dirs created, outermost first.

    fd-relative and without following links (see ``_host.safe_paths.make_dirs``).
    """
    return _safepath.make_dirs(path, mode, uid, gid, field)


def workdir_listing(workdir: str) -> Optional[Dict[str, List[str]]]:
    """The names ``_model.refusals.check_workdir`` looks at, or None when the work dir is missing."""
    try:
        top = os.listdir(workdir)
    except OSError:
        return None
    listing = {"": top, "not_dirs": []}
    for name in top:
        entry = os.path.join(workdir, name)
        if os.path.islink(entry) or not os.path.isdir(entry):
            listing["not_dirs"].append(name)
        elif name in ("work", "index"):
            try:
                listing[name] = os.listdir(entry)
            except OSError:
                listing[name] = []
    return listing


def remove_empty_dirs(created: Sequence[str]) -> None:
    """Undo make_dirs where the directories are still empty (never removes data).

    A failed mount can leave the kernel's empty ``work`` (and ``index``)
    subdirectory in a work dir we created; those go too.
    """
    for directory in reversed(created):
        for scratch in ("work", "index"):
            try:
                os.rmdir(os.path.join(directory, scratch))
            except OSError:
                pass
        try:
            os.rmdir(directory)
        except OSError:
            continue


def mount(decl: Any, method: str = "auto", links_root: Optional[str] = None) -> str:
    """Mount the overlay of ``decl`` at its path (``_host.mounting.mount_overlay``); return the method used."""
    return mount_overlay(
        decl.path, decl.lowerdir, decl.upperdir, decl.workdir,
        decl.options, decl.datadir, method=method, links_root=links_root, flags=decl.flags)


def remount(path: str, flags: Sequence[str], superblock: Optional[str] = None) -> None:
    """Set the per-mount flags of the mount at ``path`` in place (``_host.mounting.remount_flags``)."""
    remount_flags(path, flags, superblock)


def umount2(path: str) -> None:
    """Unmount the top mount at ``path`` with the system call (no umount(8) needed)."""
    _umount2(path)


def unmount(module: Any, path: str) -> None:
    """umount(8) the top mount at ``path``; a busy mount names its holders, in any namespace."""
    umount = module.get_bin_path("umount", required=True)
    rc, out, err = module.run_command([umount, path])
    if rc != 0:
        entries = read_mountinfo()
        stack = mounts_at(entries, path)
        found = scan_holders(path, entries, stack[-1] if stack else None)
        subs = [e.mount_point for e in submounts(entries, path)]
        held = describe_scan(found)
        raise OverlayError(
            "unmounting %s failed (%s, rc=%d): %s%s%s" % (
                path, " ".join([umount, path]), rc, (err or out).strip(),
                "; held by " + held if held else "",
                "; submounts " + ", ".join(subs) if subs else ""),
            holders=found["processes"], elsewhere=found["elsewhere"], submounts=subs, rc=rc, stderr=err)


class _FileHandle(ctypes.Structure):
    _fields_ = [("handle_bytes", ctypes.c_uint), ("handle_type", ctypes.c_int),
                ("f_handle", ctypes.c_ubyte * 128)]


def _name_to_handle(path):
    """``(handle type, handle bytes)`` of ``path`` (name_to_handle_at), or None."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        handle = _FileHandle()
        handle.handle_bytes = 128
        mount_id = ctypes.c_int()
        if libc.name_to_handle_at(-100, path.encode("utf-8", "surrogateescape"),
                                  ctypes.byref(handle), ctypes.byref(mount_id), 0) != 0:
            return None
    except (AttributeError, OSError):
        return None
    return handle.handle_type, bytes(bytearray(handle.f_handle)[:handle.handle_bytes])


def upper_facts(decl: Any, entries: Sequence[MountEntry], live: Optional[Mapping[str, Any]],
                userxattr: bool = False) -> Dict[str, Any]:
    """What ``_host.upper_safety.check_upper`` needs to know about the declared upper and work dirs."""
    facts = {}
    upper, work = decl.upperdir, decl.workdir
    if upper is None:
        return facts
    own = set()
    if live is not None:
        own = {e.mount_id for e in entries if e.mount_point == decl.path}
    shared = find_shared([upper, work], entries, own, os.path.exists, os.path.realpath)
    if shared is not None:
        facts["shared"] = shared
    holder = mount_containing(entries, upper)
    facts["upper_fstype"] = holder.fstype if holder is not None else None
    marker = os.path.join(work, *VOLATILE_MARKER)
    uses_this_work = live is not None and live.get("workdir") == work
    if os.path.isdir(marker) and not uses_this_work:
        facts["volatile_marker"] = marker
    pending = pending_marker(work)
    if os.path.isdir(pending):
        facts["pending_marker"] = pending
    try:
        raw = os.getxattr(upper, "%s.overlay.origin" % ("user" if userxattr else "trusted"))
    except (OSError, AttributeError):
        raw = None
    facts["origin"] = parse_origin(raw) if raw else None
    if facts["origin"] is not None and decl.lowerdir:
        facts["lower_handle"] = _name_to_handle(decl.lowerdir[0])
    return facts


def clear_volatile_marker(path: str) -> None:
    """Remove the marker dir the volatile option leaves in the work dir.

    It holds nothing but the kernel's empty ``dirty`` file; anything else is
    left alone and reported, and upper data is never near it.
    """
    for name in os.listdir(path):
        entry = os.path.join(path, name)
        if name != "dirty" or not os.path.isfile(entry) or os.path.getsize(entry):
            raise OverlayError(
                "workdir: the volatile marker %s holds %s, which the kernel does not put there; "
                "remove it by hand after checking" % (path, name))
        os.unlink(entry)
    os.rmdir(path)
