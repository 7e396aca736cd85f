# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which entries of a batch meet the mounts its group has not verified yet. Pure."""

import posixpath
from typing import Any, Iterable, List

from ansible_collections.overlayfs.mounts.plugins.module_utils._model.paths import ancestors


class PendingMounts:
    """The mounts a batch has made and not yet checked against mountinfo.

    Reading mountinfo costs the kernel time in proportion to every mount of
    the host, so a batch checks the mounts it makes in groups, one read per
    group, instead of one read per mount. An entry must never be planned on
    a stale read that misses one of these mounts, so :meth:`touches` tells
    whether an entry's paths meet one: a pending mount point, upper or work
    dir (or an engine storage root) at, above or below any path of the
    entry, or a pending lower layer at, above or below the entry's mount
    point, upper or work dir. Two overlays sharing a lower layer do not
    meet. Lookups walk the parents of each path, so checking an entry costs
    the depth of its paths, not the size of the group.
    """

    def __init__(self):
        self.items = []
        self._points = {}  # path: True when a mount point, upper or work dir (False: lower only)
        self._below = {}  # each such path and its parents: True when one below is not a lower

    def __len__(self) -> int:
        return len(self.items)

    def add(self, item: Any, lowers: Iterable[str], others: Iterable[str]) -> None:
        """Keep ``item``, mounted with lower layers ``lowers`` and other paths ``others``."""
        self.items.append(item)
        for paths, strong in ((lowers, False), (others, True)):
            for path in paths:
                path = posixpath.normpath(path)
                self._points[path] = self._points.get(path, False) or strong
                for parent in ancestors(path):
                    self._below[parent] = self._below.get(parent, False) or strong

    def touches(self, lowers: Iterable[str], others: Iterable[str]) -> bool:
        """True when an entry with ``lowers`` and ``others`` meets a pending mount."""
        for paths, strong in ((lowers, False), (others, True)):
            for path in paths:
                path = posixpath.normpath(path)
                below = self._below.get(path)
                if below is not None and (strong or below):
                    return True
                for parent in ancestors(path):
                    point = self._points.get(parent)
                    if point is not None and (strong or point):
                        return True
        return False

    def take(self) -> List[Any]:
        """The pending items, in the order they were added; the group is empty after."""
        items, self.items = self.items, []
        self._points, self._below = {}, {}
        return items
