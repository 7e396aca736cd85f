# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What an overlay's upper dir holds: what was written through the overlay, counted. Reads only.

The upper dir of a mounted overlay may be read (not changed) while it is
mounted. What the kernel keeps there besides files:

* a whiteout (a deleted lower file): a character device 0/0, or a regular
  file with the ``overlay.whiteout`` xattr (the "xwhiteout" form);
* an opaque dir (a lower dir replaced as a whole): ``overlay.opaque=y``;
* a renamed dir (``redirect_dir=on``): ``overlay.redirect``;
* a file whose metadata alone was copied up (``metacopy=on``):
  ``overlay.metacopy``; its data is still in a lower layer.

The xattrs are ``trusted.overlay.*``, or ``user.overlay.*`` on an overlay
mounted with ``userxattr``; both are counted. The walk stays on the upper
dir's filesystem (a mount inside it is not the overlay's) and never follows
a symlink.
"""

import os
import stat
from typing import Any, Dict, List, Optional

_PREFIXES = ("trusted.overlay.", "user.overlay.")
#: How many unreadable paths a report names (the count is complete).
ERRORS_SHOWN = 20


def _overlay_xattrs(path: str) -> Dict[str, bytes]:
    """``{name without prefix: value}`` of the overlay xattrs of ``path`` (not followed)."""
    try:
        names = [n for n in os.listxattr(path, follow_symlinks=False) if n.startswith(_PREFIXES)]
    except OSError:
        return {}
    found = {}
    for name in names:
        try:
            found[name.split(".", 2)[2]] = os.getxattr(path, name, follow_symlinks=False)
        except OSError:
            continue
    return found


def _empty() -> Dict[str, Any]:
    return {"files": 0, "dirs": 0, "symlinks": 0, "other": 0, "bytes": 0, "disk_bytes": 0,
            "whiteouts": 0, "opaque_dirs": 0, "redirects": 0, "metacopy": 0, "errors": 0, "unreadable": []}


def _count(usage: Dict[str, Any], path: str, info: os.stat_result) -> bool:
    """Add one entry to ``usage``; True when it is a dir to walk into."""
    usage["disk_bytes"] += info.st_blocks * 512
    xattrs = _overlay_xattrs(path)
    mode = info.st_mode
    if (stat.S_ISCHR(mode) and info.st_rdev == 0) or "whiteout" in xattrs:
        usage["whiteouts"] += 1
        return False
    if "redirect" in xattrs:
        usage["redirects"] += 1
    if stat.S_ISDIR(mode):
        usage["dirs"] += 1
        usage["opaque_dirs"] += xattrs.get("opaque") == b"y"
        return True
    if stat.S_ISREG(mode):
        usage["files"] += 1
        if "metacopy" in xattrs:
            usage["metacopy"] += 1  # its data is in a lower layer: no bytes of its own here
        else:
            usage["bytes"] += info.st_size
    elif stat.S_ISLNK(mode):
        usage["symlinks"] += 1
    else:
        usage["other"] += 1
    return False


def upper_usage(upper: str, first: int = 0) -> Dict[str, Any]:
    """What ``upper`` holds, as counts: ``files``, ``dirs``, ``symlinks``, ``other``, ``bytes``, ``disk_bytes``,
    ``whiteouts``, ``opaque_dirs``, ``redirects``, ``metacopy``; ``errors`` and the first ``unreadable`` paths.

    With ``first``, also ``first_paths``: that many of its paths (relative to
    ``upper``), in name order, parents before what they hold.

    ``bytes`` is the size of the regular files written (metacopy files, whose
    data stays in a lower layer, add none); ``disk_bytes`` what every entry
    takes on disk. The upper dir itself is not counted, only what is in it.
    """
    usage = _empty()
    if first:
        usage["first_paths"] = []
    top = os.lstat(upper)
    pending: List[str] = [upper]
    while pending:
        directory = pending.pop()
        try:
            entries = list(os.scandir(directory))
        except OSError:
            _unreadable(usage, directory)
            continue
        if first:
            entries.sort(key=lambda entry: entry.name, reverse=True)  # popped from the end: name order
            _name_first(usage["first_paths"], entries, upper, first)
        for entry in entries:
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                _unreadable(usage, entry.path)
                continue
            if info.st_dev != top.st_dev:
                continue  # another filesystem mounted inside the upper dir: not the overlay's
            if _count(usage, entry.path, info):
                pending.append(entry.path)
    return usage


def _name_first(names: List[str], entries: List[Any], upper: str, first: int) -> None:
    """Add paths of ``entries`` to ``names`` while it has fewer than ``first``."""
    for entry in reversed(entries):
        if len(names) >= first:
            return
        names.append(os.path.relpath(entry.path, upper))


def usage_of(upper: Any) -> Optional[Dict[str, Any]]:
    """:func:`upper_usage` of ``upper`` when it is an absolute path; ``{"error": ...}`` when it cannot be read."""
    if not isinstance(upper, str) or not upper.startswith("/"):
        return None
    try:
        return upper_usage(upper)
    except OSError as error:
        return {"error": "%s: %s" % (upper, error.strerror)}


def _unreadable(usage: Dict[str, Any], path: str) -> None:
    usage["errors"] += 1
    if len(usage["unreadable"]) < ERRORS_SHOWN:
        usage["unreadable"].append(path)
