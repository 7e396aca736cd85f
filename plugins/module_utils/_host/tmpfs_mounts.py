# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The tmpfs of a volatile upper on the host: read it, mount, resize, set its root, unmount.

Commands go through mount(8) and umount(8) as list argv; every failure is an
OverlayError with the command, its exit code and its message.
"""

import os
import re
from typing import Any, Dict, List, Optional, Sequence

from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.mountinfo import MountEntry, mounts_at
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError

_SIZE_OPTION = re.compile(r"(?:^|,)size=([0-9]+)k(?:,|$)")


def total_pages() -> Optional[int]:
    """The host's RAM in 4 KiB pages (MemTotal), what a ``size=N%`` is taken of; None when unknown."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) // 4
    except (OSError, ValueError, IndexError):
        return None
    return None


def live_tmpfs(path: str, entries: Sequence[MountEntry]) -> Optional[Dict[str, Any]]:
    """What is mounted at ``path`` now (the top mount): ``{fstype, size, mode, uid, gid, used, mount_id, source}``.

    ``size`` (bytes) comes from the super options (tmpfs shows ``size=Nk``;
    None when it shows none: no limit); mode and owner from the root dir;
    ``used`` bytes from statvfs. None when nothing is mounted at ``path``.
    """
    stack = mounts_at(entries, path)
    if not stack:
        return None
    top = stack[-1]
    out = {"fstype": top.fstype, "mount_id": top.mount_id, "source": top.source, "size": None,
           "mode": None, "uid": None, "gid": None, "used": None}
    if top.fstype != "tmpfs":
        return out
    match = _SIZE_OPTION.search(top.super_options)
    out["size"] = int(match.group(1)) * 1024 if match else None
    try:
        status = os.stat(path)
        fs = os.statvfs(path)
    except OSError:
        return out
    out.update(mode=status.st_mode & 0o7777, uid=status.st_uid, gid=status.st_gid,
               used=(fs.f_blocks - fs.f_bfree) * fs.f_frsize)
    return out


def root_names(path: str) -> List[str]:
    """The names in the tmpfs root (sorted); [] when it cannot be read."""
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []


def _run(module: Any, argv: List[str], what: str) -> None:
    rc, out, err = module.run_command(argv)
    if rc != 0:
        raise OverlayError("%s failed (%s, rc=%d): %s" % (what, " ".join(argv), rc, (err or out).strip()))


def mount(module: Any, path: str, options: str) -> None:
    """Mount a tmpfs at ``path`` with ``options`` (size, mode, uid, gid)."""
    binary = module.get_bin_path("mount", required=True)
    _run(module, [binary, "-t", "tmpfs", "-o", options, "tmpfs", path], "mounting the tmpfs at %s" % path)


def resize(module: Any, path: str, size: str, used: Optional[int] = None) -> None:
    """Set the size limit of the tmpfs at ``path`` in place (``remount,size=``); its content stays."""
    binary = module.get_bin_path("mount", required=True)
    try:
        _run(module, [binary, "-o", "remount,size=%s" % size, path], "resizing the tmpfs at %s" % path)
    except OverlayError as error:
        hint = " (it holds %d bytes; tmpfs cannot shrink below what it holds)" % used if used is not None else ""
        raise OverlayError("upper_tmpfs.size: %s%s" % (error.message, hint))


def set_root(path: str, mode: Optional[int], uid: Optional[int], gid: Optional[int]) -> None:
    """Set the mode and owner of the tmpfs root (None: leave that one)."""
    if uid is not None or gid is not None:
        os.chown(path, -1 if uid is None else uid, -1 if gid is None else gid)
    if mode is not None:
        os.chmod(path, mode)


def make_dirs(dirs: Sequence[str], mode: int, uid: int, gid: int) -> List[str]:
    """Make the missing ``dirs`` (and parents inside the tmpfs) with ``mode`` and owner; the dirs made, in order."""
    made = []
    for directory in dirs:
        missing = []
        current = directory
        while not os.path.lexists(current):
            missing.append(current)
            current = os.path.dirname(current)
        for each in reversed(missing):
            os.mkdir(each, mode)
            os.chown(each, uid, gid)
            os.chmod(each, mode)  # mkdir's mode passes through the umask
            made.append(each)
    return made


def remove_dirs(made: Sequence[str]) -> None:
    """Remove the dirs :func:`make_dirs` made, while they are empty (never data)."""
    for directory in reversed(made):
        try:
            os.rmdir(directory)
        except OSError:
            pass


def unmount(module: Any, path: str) -> None:
    """umount(8) the tmpfs at ``path``."""
    binary = module.get_bin_path("umount", required=True)
    _run(module, [binary, path], "unmounting the tmpfs at %s" % path)
