# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Order and prune a host's whole list of overlays. Pure.

Each entry is then carried out exactly as one overlay_mount task
(``entry.converge``); this file only decides the order, so that an overlay
stacked on another one's merged dir is mounted after it and unmounted before
it, and which earlier-managed overlays left the list.
"""

import posixpath
from typing import Any, Dict, List, Mapping, Sequence

from ansible_collections.overlayfs.mounts.plugins.module_utils._model.declaration import SETUP_STATES
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.spec import INHERITED


def merged_params(entry: Mapping[str, Any], defaults: Mapping[str, Any]) -> Dict[str, Any]:
    """An entry with the task-level settings it does not set itself."""
    params = dict(entry)
    for name in INHERITED:
        if params.get(name) is None:
            params[name] = defaults[name]
    return params


def _dirs(entry):
    dirs = list(entry.get("lowerdir") or [])
    dirs += [d for d in (entry.get("upperdir"), entry.get("workdir")) if d]
    return [posixpath.normpath(d) for d in dirs]


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


def _depends_on(entries, index, points):
    """The entries whose mount point holds one of entry ``index``'s dirs.

    ``points`` maps each candidate's normalised mount point to its indexes:
    a dir depends on the mount points at or above it, found by walking up
    its parents rather than by comparing it with every candidate.
    """
    own = posixpath.normpath(entries[index]["path"])
    found = set()
    for directory in _dirs(entries[index]):
        for parent in ancestors(directory):
            if parent != own:
                found.update(other for other in points.get(parent, ()) if other != index)
    return found


def _topological(entries, indexes):
    """``indexes`` with every entry after those it depends on; input order otherwise."""
    points = {}
    for i in indexes:
        points.setdefault(posixpath.normpath(entries[i]["path"]), []).append(i)
    deps = {i: _depends_on(entries, i, points) for i in indexes}
    done, ordered = set(), []
    while len(ordered) < len(indexes):
        ready = [i for i in indexes if i not in done and deps[i] <= done]
        if not ready:  # a cycle: the kernel will say what is wrong; keep the input order
            ready = [i for i in indexes if i not in done][:1]
        for i in ready:
            done.add(i)
            ordered.append(i)
    return ordered


def apply_order(entries: Sequence[Mapping[str, Any]]) -> List[int]:
    """Indexes of ``entries`` in the order to carry them out.

    Set-up entries (mounted, present) first, each after the overlays it sits
    on; then tear-down entries (unmounted, absent), each before the overlays
    it sits on.
    """
    setup = [i for i, e in enumerate(entries) if e["state"] in SETUP_STATES]
    teardown = [i for i, e in enumerate(entries) if e["state"] not in SETUP_STATES]
    return _topological(entries, setup) + list(reversed(_topological(entries, teardown)))


def prune_targets(declared_paths: Sequence[str], found: Mapping[str, Any]) -> Dict[str, Dict[str, List[str]]]:
    """Managed overlays that left the list: ``{path: {backend name: [locations]}}``.

    ``found`` maps a backend's name to ``{location: {mount point: [configs]}}``
    (``_persist.registry.scan``). Only configs marked as written by this collection
    count.
    """
    declared = {posixpath.normpath(p) for p in declared_paths}
    targets = {}
    for name, locations in found.items():
        for location, configs_by_path in locations.items():
            for path, configs in configs_by_path.items():
                if path not in declared and any(c.get("managed") for c in configs):
                    targets.setdefault(path, {}).setdefault(name, []).append(location)
    return targets


def prune_order(paths: Sequence[str]) -> List[str]:
    """Deepest mount points first, so stacked overlays come down top first."""
    return sorted(paths, key=lambda p: (-p.count("/"), p))
