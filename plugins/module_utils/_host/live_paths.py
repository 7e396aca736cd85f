# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host reads that tell what a live overlay's layer paths name: symlinks, their ages, the mount's.

The kernel keeps a layer path as it was given at mount time, and keeps
serving the directory that path named then. A path in mountinfo that goes
through a symlink today may name another directory than the one the mount
serves: the link may have moved since. ``_compare.live.live_state`` decides,
with what :class:`LinkTimes` reads here:

- :meth:`LinkTimes.trace`: where a path leads now, and the newest ``ctime``
  (lstat) among the symlinks on the way. A symlink's ctime changes whenever
  it is replaced or changed (``ln -sfn`` makes a new one), and cannot be set
  back by a user;
- :meth:`LinkTimes.mount_time`: a time the mount cannot be older than: the
  birth time (statx) of ``<workdir>/work``, which the kernel removes and
  makes again at every mount of a writable overlay, else the boot time
  (``btime`` in /proc/stat). The ctime of ``<workdir>/work`` will not do:
  copy-ups and whiteouts pass through that dir and move its ctime past the
  mount;
- :meth:`LinkTimes.own_link`: the target of one of this collection's short
  layer links, which are what the mount was made with.

A symlink older than the mount cannot have moved since: the path names what
the mount serves. Otherwise that cannot be known.
"""

import ctypes
import os
from typing import Optional, Tuple

from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.mountinfo import RealPaths
from ansible_collections.overlayfs.mounts.plugins.module_utils._host.system import readlink, symlinks_in
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.paths import normalize

_AT_FDCWD = -100
_AT_SYMLINK_NOFOLLOW = 0x100
_STATX_BTIME = 0x800
# struct statx: stx_mask (u32) first; stx_btime (i64 tv_sec, u32 tv_nsec) at byte 80.
_STATX_SIZE = 256
_BTIME_OFFSET = 80

#: The newest ctime given to a path whose symlinks loop: never older than any mount.
LOOP = RealPaths.LOOP


def birth_time(path: str) -> Optional[int]:
    """The birth time of ``path`` in nanoseconds (statx), or None when the filesystem or libc has none."""
    try:
        statx = ctypes.CDLL(None, use_errno=True).statx
    except (AttributeError, OSError):
        return None
    buf = ctypes.create_string_buffer(_STATX_SIZE)
    if statx(_AT_FDCWD, os.fsencode(path), _AT_SYMLINK_NOFOLLOW, _STATX_BTIME, buf) != 0:
        return None
    raw = buf.raw
    if not int.from_bytes(raw[0:4], "little") & _STATX_BTIME:
        return None
    seconds = int.from_bytes(raw[_BTIME_OFFSET:_BTIME_OFFSET + 8], "little", signed=True)
    return seconds * 10 ** 9 + int.from_bytes(raw[_BTIME_OFFSET + 8:_BTIME_OFFSET + 12], "little")


def boot_time(stat_file: str = "/proc/stat") -> int:
    """When this host booted, in nanoseconds (``btime``, whole seconds rounded down); 0 when unknown."""
    try:
        with open(stat_file) as handle:
            for line in handle:
                if line.startswith("btime "):
                    return int(line.split()[1]) * 10 ** 9
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _link_time(path: str) -> int:
    """A symlink's ctime (ns); one that vanished meanwhile is newer than any mount."""
    try:
        return os.lstat(path).st_ctime_ns
    except OSError:
        return LOOP


class LinkTimes:
    """Where live layer paths lead now and how old their symlinks are; reads cached for one use.

    ``follow``: False reads nothing but this collection's own links
    (``overlay_mount_info`` without ``resolve_layers``): :meth:`trace` then
    returns the path as it is, as if no symlink were on it. The walk is
    ``_formats.mountinfo.RealPaths``'s, which keeps the newest link time.
    """

    def __init__(self, follow: bool = True) -> None:
        self.follow = follow
        self._real = RealPaths(readlink, symlinks_in, link_time=_link_time)
        self._boot: Optional[int] = None

    def realpath(self, path: str) -> str:
        """Where ``path`` leads now (``os.path.realpath``), through the same cache as :meth:`trace`."""
        return self._real(normalize(path))

    def trace(self, path: str) -> Tuple[str, Optional[int]]:
        """``(where path leads now, newest ctime in ns of the symlinks followed)``; None: no symlink on it.

        A missing component ends the walk: the rest is kept as written.
        """
        plain = normalize(path)
        if not self.follow or plain[:1] != "/":
            return plain, None
        real = self._real(plain)
        return real, self._real.newest(plain)

    @staticmethod
    def own_link(path: str) -> Optional[str]:
        """The target of this collection's short link ``path`` (made absolute), or None when it is gone."""
        try:
            target = os.readlink(path)
        except OSError:
            return None
        return target if target[:1] == "/" else os.path.join(os.path.dirname(path), target)

    def boot_time(self) -> int:
        """When the host booted (ns), read once."""
        if self._boot is None:
            self._boot = boot_time()
        return self._boot

    def mount_time(self, workdir: Optional[str]) -> int:
        """A time (ns) the overlay with this work dir cannot have been mounted before.

        The birth time of ``<workdir>/work`` when the work dir's path has no
        symlink on it and its filesystem records birth times; else the boot time.
        """
        if workdir and workdir[:1] == "/":
            real, newest = self.trace(workdir)
            if newest is None:
                born = birth_time(real.rstrip("/") + "/work")
                if born is not None:
                    return born
        return self.boot_time()
