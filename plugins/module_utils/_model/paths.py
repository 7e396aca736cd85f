# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whether one absolute path lies inside another. Pure, lexical.

The one place that answers it: the layout checks, the batch order, the
holder scan, mountinfo lookups and the inventory all ask. Callers pass
normalised (or canonical) absolute paths; a trailing slash is ignored.
"""


def inside(path: str, parent: str) -> bool:
    """True when ``path`` lies below ``parent`` (and is not ``parent`` itself)."""
    base = parent.rstrip("/")
    return path.rstrip("/") != base and path.startswith(base + "/")


def at_or_inside(path: str, parent: str) -> bool:
    """True when ``path`` is ``parent`` or lies below it."""
    return path.rstrip("/") == parent.rstrip("/") or inside(path, parent)
