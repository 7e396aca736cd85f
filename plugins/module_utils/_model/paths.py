# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whether one absolute path lies inside another. Pure, lexical.

The one place that answers it: the layout checks, the batch order, the
holder scan, mountinfo lookups and the inventory all ask. Callers pass
normalised (or canonical) absolute paths; a trailing slash is ignored.
:func:`normalize` and :func:`same_path` compare persisted paths as paths.
"""

import posixpath
from typing import Any, Callable, List


def inside(path: str, parent: str) -> bool:
    """True when ``path`` lies below ``parent`` (and is not ``parent`` itself)."""
    base = parent.rstrip("/")
    return path.rstrip("/") != base and path.startswith(base + "/")


def at_or_inside(path: str, parent: str) -> bool:
    """True when ``path`` is ``parent`` or lies below it."""
    return path.rstrip("/") == parent.rstrip("/") or inside(path, parent)


def normalize(path: str) -> str:
    """``path`` as a path, not a string: doubled and trailing slashes and ``.`` components dropped.

    ``..`` is kept: what it names depends on the symlinks before it, which a
    lexical function cannot see. A relative path stays relative.
    """
    if not isinstance(path, str) or not path:
        return path
    parts = [part for part in path.split("/") if part not in ("", ".")]
    lead = "/" if path[0] == "/" else ""
    return (lead + "/".join(parts)) or (lead or ".")


def same_path(first: Any, second: Any) -> bool:
    """True when two paths (or two lists of paths, or None) name the same directories, spelled apart."""
    if isinstance(first, (list, tuple)) and isinstance(second, (list, tuple)):
        return len(first) == len(second) and all(same_path(a, b) for a, b in zip(first, second))
    if isinstance(first, str) and isinstance(second, str):
        return first == second or normalize(first) == normalize(second)
    return first == second


def ancestors(path: str) -> List[str]:
    """``path`` and each of its parents, up to ``/`` (or the first part of a relative path).

    ``path`` is normalised (no trailing or doubled slashes, as ``posixpath.normpath``
    leaves it); the parents are found by cutting at each slash from the right.
    """
    found = [path]
    if path.startswith("//"):  # kept by normpath, as POSIX allows; rare enough for the slow way
        while posixpath.dirname(path) != path and posixpath.dirname(path):
            path = posixpath.dirname(path)
            found.append(path)
        return found
    cut = path.rfind("/")
    while cut > 0:
        path = path[:cut]
        found.append(path)
        cut = path.rfind("/")
    if cut == 0 and path != "/":
        found.append("/")
    return found


def missing_parents(path: str, exists: Callable[[str], bool]) -> List[str]:
    """``path`` and those of its parents that do not exist yet (``exists``), outermost first."""
    missing = []
    current = posixpath.normpath(path)
    while current not in ("/", "") and not exists(current):
        missing.append(current)
        current = posixpath.dirname(current)
    return missing[::-1]
