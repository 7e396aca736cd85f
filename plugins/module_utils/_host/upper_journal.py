# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The journal of a reset or commit of an upper dir, and the atomic swap of a dir.

A reset or commit never changes the upper dir in place. It builds what
replaces it beside it (an empty dir, a new layer), makes that durable, and
then swaps the two names in one ``renameat2(RENAME_EXCHANGE)``: at any
instant the upper dir's name holds either the old tree or the new one. The
old tree is removed only after the overlay was mounted again.

What a run is doing is written first, durably, to a journal in a staging
dir beside the upper dir (``.<name>.overlay-upper/journal.json``, same
filesystem, so renames between the two are atomic). A run that was killed
leaves the journal; the next run reads it and finishes or undoes what was
started (``_converge.upper_life``).
"""

import ctypes
import errno
import json
import os
import posixpath
from typing import Any, Dict, Optional, Tuple

from ansible_collections.overlayfs.mounts.plugins.module_utils._host.kernel_features import libc

JOURNAL = "journal.json"
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def staging_dir(upper: str) -> str:
    """The staging dir of ``upper``: a hidden sibling, on the upper dir's filesystem."""
    parent, name = posixpath.split(upper.rstrip("/"))
    return posixpath.join(parent, ".%s.overlay-upper" % name)


def read_journal(staging: str) -> Optional[Dict[str, Any]]:
    """The journal in ``staging``, or None when no run left one."""
    try:
        with open(posixpath.join(staging, JOURNAL), "rb") as handle:
            return json.loads(handle.read().decode("utf-8"))
    except FileNotFoundError:
        return None
    except ValueError:
        return {"op": "unknown", "phase": "written"}  # killed while writing it: nothing was changed yet


def write_journal(staging: str, journal: Dict[str, Any]) -> None:
    """Write ``journal`` durably: a temp file, fsync, rename over the old one, fsync of the dir."""
    os.makedirs(staging, mode=0o700, exist_ok=True)
    path = posixpath.join(staging, JOURNAL)
    temp = path + ".new"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, json.dumps(journal, sort_keys=True).encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(temp, path)
    fsync_dir(staging)


def remove_journal(staging: str) -> None:
    """Forget the journal (the run is complete), then the staging dir when it is empty."""
    for name in (JOURNAL, JOURNAL + ".new"):
        try:
            os.unlink(posixpath.join(staging, name))
        except FileNotFoundError:
            pass
    try:
        os.rmdir(staging)
    except OSError:
        pass
    fsync_dir(posixpath.dirname(staging))


def fsync_dir(path: str) -> None:
    """fsync a directory, so that the names created, renamed or removed in it are on disk."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def identity(path: str) -> Optional[Tuple[int, int]]:
    """``(device, inode)`` of ``path`` (not followed), or None when it does not exist."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    return (info.st_dev, info.st_ino)


def exchange(first: str, second: str) -> None:
    """Swap the names ``first`` and ``second`` atomically (both exist, same filesystem), then fsync both parents.

    Where the filesystem has no ``RENAME_EXCHANGE``, the OSError says so;
    the caller does not fall back to two renames, which would leave a moment
    with no dir at one of the names.
    """
    try:
        function = libc().renameat2
    except AttributeError:
        raise OSError(errno.ENOSYS, "renameat2 is not in this C library (glibc 2.28 or later has it)")
    result = function(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE)
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, "exchanging %s and %s: %s" % (first, second, os.strerror(code)))
    for parent in sorted({posixpath.dirname(first), posixpath.dirname(second)}):
        fsync_dir(parent)


#: An "incompat feature" in a work dir: the kernel refuses to mount an overlay whose work dir holds
#: ``work/incompat/<name>`` ("overlay with incompat feature '<name>' cannot be mounted"). Put in place
#: while a commit has its layers and upper dir out of step, so that no boot and no hand mount shows the
#: lower layers without the committed ones.
PENDING = "overlayfs-mounts-pending"


def pending_marker(work: str) -> str:
    """The path of the marker in the work dir ``work``."""
    return posixpath.join(work, "work", "incompat", PENDING)


def mark_pending(work: str) -> None:
    """Make ``work`` unmountable until :func:`clear_pending` (durably)."""
    path = pending_marker(work)
    os.makedirs(path, mode=0o700, exist_ok=True)
    for directory in (posixpath.dirname(path), posixpath.dirname(posixpath.dirname(path)), work):
        fsync_dir(directory)


def clear_pending(work: str) -> None:
    """Remove the marker of :func:`mark_pending` and the dirs made for it (the kernel makes its own)."""
    path = pending_marker(work)
    for directory in (path, posixpath.dirname(path), posixpath.dirname(posixpath.dirname(path))):
        try:
            os.rmdir(directory)
        except FileNotFoundError:
            continue
        except OSError as error:
            if error.errno in (errno.ENOTEMPTY, errno.EEXIST):
                break  # the kernel's own entries: left to it
            raise
    fsync_dir(work)
