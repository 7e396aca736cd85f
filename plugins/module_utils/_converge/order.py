# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A host's whole list of overlays: the entries with the task's settings, and what left it. Pure.

Each entry is carried out exactly as one overlay_mount task
(``entry.converge``), in the order of the host's graph of overlays
(``overlay_graph.plan_batch``); this file merges each entry with the
task-level settings and finds the earlier-managed overlays that left the list.
"""

import posixpath
from typing import Any, Callable, Dict, List, Mapping, Sequence

from ansible_collections.overlayfs.mounts.plugins.module_utils._model.spec import INHERITED


def merged_params(entry: Mapping[str, Any], defaults: Mapping[str, Any]) -> Dict[str, Any]:
    """An entry with the task-level settings it does not set itself."""
    params = dict(entry)
    for name in INHERITED:
        if params.get(name) is None:
            params[name] = defaults[name]
    return params


def prune_targets(declared_paths: Sequence[str], found: Mapping[str, Any],
                  realpath: Callable[[str], str] = posixpath.normpath) -> Dict[str, Dict[str, List[str]]]:
    """Managed overlays that left the list: ``{resolved path: {backend name: [locations]}}``.

    ``found`` maps a backend's name to ``{location: {mount point: [configs]}}``
    (``_persist.registry.scan``). Only configs marked as written by this collection
    count. Paths are compared resolved (``realpath``; ``declared_paths`` are
    resolved already): a mount point spelled through a symlink is the
    overlay it leads to, never a second one to prune.
    """
    declared = {posixpath.normpath(p) for p in declared_paths}
    targets: Dict[str, Dict[str, List[str]]] = {}
    for name, locations in found.items():
        for location, configs_by_path in locations.items():
            for path, configs in configs_by_path.items():
                real = realpath(path)
                if real not in declared and any(c.get("managed") for c in configs):
                    places = targets.setdefault(real, {}).setdefault(name, [])
                    if location not in places:
                        places.append(location)
    return targets
