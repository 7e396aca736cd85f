# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A host's overlays as one graph: the declared ones and the live ones. Pure.

Each overlay is a :class:`Node`, known by its resolved mount point, with its
resolved dirs (layers, data layers, upper, work). An overlay **depends on**
every other overlay whose mount point one of its dirs lies at or under: it
must be mounted after it and unmounted before it, and its persisted line or
unit must come after it. From that:

- :func:`check_duplicates`: one mount point declared twice;
- :func:`dependencies`, :func:`find_cycle`, :func:`check_cycles`: an order
  that cannot exist (systemd's "Transaction order is cyclic" at boot);
- :func:`topological`: the order to carry the overlays out in;
- :func:`check_exclusive`: an upper or work dir is its overlay's alone, on
  the whole host: never another overlay's layer, upper or work, never
  nested in one, never hidden under another overlay's mount point;
- :func:`check_depth`: no overlay stacked deeper than the kernel stacks.

Every function is linear in the total number of path components: parents
are found by walking up each path (``paths.ancestors``), never by comparing
every pair of overlays.
"""

import dataclasses
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.paths import ancestors

EXCLUSIVE_FIELDS = ("upperdir", "workdir")


@dataclasses.dataclass(frozen=True)
class Node:
    """One overlay of the graph.

    ``path``: its resolved mount point (its identity); ``dirs``: ``(field,
    resolved path)`` of every layer, data layer, upper and work dir;
    ``name``: how a message names it (``mounts[2] (/srv/b)``, ``the overlay
    mounted at /srv/b``); ``declared``: part of the declaration (else live).
    """

    path: str
    dirs: Tuple[Tuple[str, str], ...]
    name: str
    declared: bool = False

    def exclusive(self) -> List[Tuple[str, str]]:
        """``(field, path)`` of its upper and work dir."""
        return [(field, path) for field, path in self.dirs if field in EXCLUSIVE_FIELDS]


def check_duplicates(nodes: Sequence[Node]) -> None:
    """Refuse a mount point declared twice (after symlinks are resolved), naming both entries."""
    seen: Dict[str, Node] = {}
    for node in nodes:
        if not node.declared:
            continue
        first = seen.setdefault(node.path, node)
        if first is not node:
            raise OverlayError(
                "path: %s and %s declare the same mount point %s; each overlay must be declared "
                "once: remove one of them or give it another path" % (first.name, node.name, node.path),
                duplicates=[first.name, node.name])


def _points(nodes: Sequence[Node]) -> Dict[str, List[int]]:
    points: Dict[str, List[int]] = {}
    for index, node in enumerate(nodes):
        points.setdefault(node.path, []).append(index)
    return points


def dependencies(nodes: Sequence[Node]) -> Dict[int, Dict[int, Tuple[str, str]]]:
    """``{i: {j: (field, dir)}}``: overlay ``i`` has ``dir`` at or under overlay ``j``'s mount point.

    The first such dir of ``i`` names each edge. Overlays at the same mount
    point never depend on each other (they are one overlay's versions).
    """
    points = _points(nodes)
    found: Dict[int, Dict[int, Tuple[str, str]]] = {}
    for index, node in enumerate(nodes):
        edges = found.setdefault(index, {})
        for field, directory in node.dirs:
            for parent in ancestors(directory):
                for other in points.get(parent, ()):
                    if nodes[other].path != node.path and other not in edges:
                        edges[other] = (field, directory)
    return found


def find_cycle(deps: Dict[int, Dict[int, Tuple[str, str]]]) -> Optional[List[int]]:
    """One cycle of ``deps`` as ``[a, b, ..., a]`` (a depends on b ...), or None. Iterative DFS."""
    state: Dict[int, int] = {}  # 1: on the current path, 2: done
    for start in sorted(deps):
        if state.get(start):
            continue
        path, stack = [start], [iter(sorted(deps[start]))]
        state[start] = 1
        while stack:
            step = next(stack[-1], None)
            if step is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(step) == 1:
                return path[path.index(step):] + [step]
            elif not state.get(step):
                state[step] = 1
                path.append(step)
                stack.append(iter(sorted(deps.get(step, ()))))
    return None


def check_cycles(nodes: Sequence[Node], deps: Optional[Dict[int, Dict[int, Tuple[str, str]]]] = None) -> None:
    """Refuse overlays that depend on each other in a cycle, naming every link of it."""
    deps = dependencies(nodes) if deps is None else deps
    cycle = find_cycle(deps)
    if cycle is None:
        return
    links = []
    for here, there in zip(cycle, cycle[1:]):
        field, directory = deps[here][there]
        links.append("%s has %s %s under %s" % (nodes[here].name, field, directory, nodes[there].name))
    raise OverlayError(
        "these overlays depend on each other in a cycle, so no order can mount them (systemd "
        "would report an ordering cycle at boot): %s. Move one layer, upper or work dir out of "
        "the other overlay's mount point" % "; ".join(links),
        cycle=[nodes[i].path for i in cycle])


def topological(nodes: Sequence[Node], indexes: Iterable[int],
                deps: Optional[Dict[int, Dict[int, Tuple[str, str]]]] = None) -> List[int]:
    """``indexes`` with each after those of them it depends on, in waves.

    The first wave is every overlay that depends on none of the others, in
    their own order; the next, every overlay whose dependencies are all in
    earlier waves; and so on. A cycle (refused by :func:`check_cycles`
    before) keeps the rest in their own order. Linear: each edge is looked
    at twice.
    """
    indexes = list(indexes)
    chosen = set(indexes)
    deps = dependencies(nodes) if deps is None else deps
    rank = {index: position for position, index in enumerate(indexes)}
    waiting = {i: len({j for j in deps.get(i, ()) if j in chosen and j != i}) for i in indexes}
    users: Dict[int, List[int]] = {}
    for i in indexes:
        for j in {j for j in deps.get(i, ()) if j in chosen and j != i}:
            users.setdefault(j, []).append(i)
    wave = [i for i in indexes if not waiting[i]]
    ordered: List[int] = []
    done: set = set()
    while len(ordered) < len(indexes):
        if not wave:  # a cycle: take the first one left
            wave = [min((i for i in indexes if i not in done), key=rank.__getitem__)]
        ordered += wave
        done.update(wave)
        following = []
        for index in wave:
            for user in users.get(index, ()):
                waiting[user] -= 1
                if waiting[user] == 0 and user not in done:
                    following.append(user)
        wave = sorted(set(following), key=rank.__getitem__)
    return ordered


def _exclusive_index(nodes: Sequence[Node]) -> Tuple[Dict[str, List[Tuple[int, str]]], Dict[str, List[Tuple[int, str, str]]]]:
    """``(at, below)``: each upper and work dir by path, and by every path at or above it."""
    at: Dict[str, List[Tuple[int, str]]] = {}
    below: Dict[str, List[Tuple[int, str, str]]] = {}
    for index, node in enumerate(nodes):
        for field, directory in node.exclusive():
            at.setdefault(directory, []).append((index, field))
            for parent in ancestors(directory):
                below.setdefault(parent, []).append((index, field, directory))
    return at, below


def _conflict(nodes: Sequence[Node], index: int, at: Dict[str, List[Tuple[int, str]]],
              below: Dict[str, List[Tuple[int, str, str]]], points: Dict[str, List[int]]) -> Optional[str]:
    """Why declared overlay ``index`` cannot have its dirs or mount point where they are, or None."""
    node = nodes[index]
    for field, directory in node.dirs:
        for parent in ancestors(directory):
            for other, their_field in at.get(parent, ()):
                if nodes[other].path != node.path:
                    where = "is" if parent == directory else "lies inside"
                    return "%s %s %s %s %s's %s" % (node.name, field, directory, where, nodes[other].name, their_field)
        if field in EXCLUSIVE_FIELDS:
            for other, their_field, theirs in below.get(directory, ()):
                if nodes[other].path != node.path and theirs != directory:
                    return "%s's %s %s lies inside %s %s %s" % (
                        nodes[other].name, their_field, theirs, node.name, field, directory)
            for parent in ancestors(directory):  # (under a live overlay: the mount holding it tells, not this)
                for other in points.get(parent, ()):
                    if nodes[other].declared and nodes[other].path != node.path:
                        return ("%s %s %s lies under the mount point of %s, so it would be on an overlay, which "
                                "the kernel refuses as upper or work dir" % (node.name, field, directory, nodes[other].name))
    for other, their_field, theirs in below.get(node.path, ()):
        if nodes[other].path != node.path:
            return "%s, mounted at %s, would hide %s's %s %s" % (node.name, node.path, nodes[other].name, their_field, theirs)
    return None


def check_exclusive(nodes: Sequence[Node]) -> None:
    """Refuse a declared overlay whose upper or work dir is not its alone, or that hides another's.

    For each declared overlay: none of its dirs is (or lies inside) another
    overlay's upper or work dir; no other overlay's upper or work dir lies
    inside its own upper or work dir; its upper and work dir are not under
    another declared overlay's mount point (an overlay as upper is refused
    by the kernel; under a live one, the mount that holds them decides,
    ``refusals.check_host``); and its mount point does not cover another overlay's upper or
    work dir (that overlay would fail on its next mount and at boot).
    """
    at, below = _exclusive_index(nodes)
    points = _points(nodes)
    for index, node in enumerate(nodes):
        if node.declared:
            why = _conflict(nodes, index, at, below, points)
            if why is not None:
                raise OverlayError(
                    "%s: an upper and work dir belong to one overlay alone, on the whole host (sharing or "
                    "nesting them corrupts data, and the kernel answers EBUSY): give each overlay its own "
                    "upper and work dirs, outside every other overlay's dirs and mount points" % why,
                    conflict=why)


#: How many overlays the kernel stacks on one another (FILESYSTEM_MAX_STACK_DEPTH).
MAX_STACK_DEPTH = 2

#: For each overlay, ``(field, dir, index)`` per dir: the overlay whose mount holds that dir, or None.
Holders = Mapping[int, Sequence[Tuple[str, str, Optional[int]]]]


def stack_depths(nodes: Sequence[Node], holders: Holders) -> Dict[int, int]:
    """How deep each overlay stacks: 1, plus the depth of the deepest overlay holding one of its dirs.

    ``holders`` names, for each dir, the overlay whose mount holds it (the
    nearest mount point above it, when that is an overlay's). Their edges
    are dependencies, so after :func:`check_cycles` they have no cycle.
    """
    edges = {i: {h: ("", "") for _f, _d, h in holders.get(i, ()) if h is not None and h != i} for i in range(len(nodes))}
    depths: Dict[int, int] = {}
    for index in topological(nodes, range(len(nodes)), edges):
        below = [depths.get(h, 1) for h in edges[index]]
        depths[index] = 1 + max(below or [0])
    return depths


def check_depth(nodes: Sequence[Node], holders: Holders) -> None:
    """Refuse a declared overlay stacked deeper than the kernel stacks, naming the stack."""
    depths = stack_depths(nodes, holders)
    for index, node in enumerate(nodes):
        if node.declared and depths[index] > MAX_STACK_DEPTH:
            chain, here = [], index
            while True:
                deeper = [(depths[h], f, d, h) for f, d, h in holders.get(here, ()) if h is not None and h != here]
                if not deeper:
                    break
                _depth, field, directory, there = max(deeper, key=lambda item: item[0])
                chain.append("%s has %s %s on %s" % (nodes[here].name, field, directory, nodes[there].name))
                here = there
            raise OverlayError(
                "%s would be stacked %d overlays deep, and the kernel stacks at most %d: %s. Give it layers "
                "that are not inside an overlay that is itself on an overlay"
                % (node.name, depths[index], MAX_STACK_DEPTH, "; ".join(chain)), stack=[node.path])
