# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The graph of a run's overlays (``_model.graph``), made from the declaration and the live host.

A declared overlay becomes a node with its canonical paths; a live one
(this mount namespace's mountinfo) a node with its paths made absolute and
resolved. A live overlay at a declared mount point is that overlay's old
version, and leaves the graph: the declaration takes its place.

:func:`check_entry` checks one declared overlay against the live ones
(``overlay_mount``, and each entry of a batch as it is carried out);
:func:`plan_batch` checks a whole list before anything changes (so that
check mode predicts what the real run refuses between entries not mounted
yet) and gives the order to carry it out in.
"""

from typing import Any, Collection, Dict, List, Mapping, Optional, Sequence, Tuple

from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.mountinfo import (
    ENGINE_ROOT_NAMES,
    engine_layout,
    engine_of,
    overlay_config,
    resolve_paths,
)
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.declaration import SETUP_STATES, Declaration
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.graph import (
    Node,
    check_cycles,
    check_depth,
    check_duplicates,
    check_exclusive,
    dependencies,
    topological,
)
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.layers import named_layers
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.paths import ancestors, at_or_inside
from ansible_collections.overlayfs.mounts.plugins.module_utils._persist import registry


def declared_node(decl: Declaration, name: str) -> Node:
    """The node of a canonical declaration (its dirs as the kernel will see them)."""
    return Node(decl.path, tuple(decl.named_dirs()), name, declared=True)


def _live_node(session: Any, entry: Any) -> Node:
    paths = resolve_paths(overlay_config(entry), entry.mount_point, session.host.exists)
    engine = engine_layout(entry.mount_point, paths) is not None
    real = session.realpath

    def settle(field: str, path: Optional[str]) -> Optional[str]:
        if path is None or path[:1] != "/":
            return path  # relative and unresolved: kept as written, it matches nothing
        return path if engine and field.startswith(("lowerdir", "datadir")) else real(path)

    dirs = [(field, settle(field, path)) for field, path in
            named_layers(paths["lowerdir"], paths["upperdir"], paths["workdir"], paths["datadir"])]
    point = real(entry.mount_point)
    return Node(point, tuple((f, p) for f, p in dirs if p), "the overlay mounted at %s" % point)


def live_nodes(session: Any) -> List[Node]:
    """A node for every overlay of this mount namespace, kept until the host changes."""
    entries = session.mountinfo()
    kept = session.memo_for(entries, "graph")
    if kept is None:
        known = session.nodes  # by mount: a new mountinfo read after each change re-lists the same mounts
        kept = []
        for entry in entries:
            if entry.is_overlay:
                key = (entry.mount_id, entry.mount_point, entry.super_options)
                if key not in known:
                    known[key] = _live_node(session, entry)
                kept.append(known[key])
        session.memo_for(entries, "graph", kept)
    return kept


def _holders(nodes: Sequence[Node], mount_points: Collection[str]) -> Dict[int, List[Tuple[str, str, Optional[int]]]]:
    """For each node's dir, the node whose mount holds it: the nearest mount point above it, if an overlay's."""
    at: Dict[str, int] = {}
    for index, node in enumerate(nodes):
        at.setdefault(node.path, index)  # a declared overlay before a live one at its path
    found: Dict[int, List[Tuple[str, str, Optional[int]]]] = {}
    for index, node in enumerate(nodes):
        rows = found.setdefault(index, [])
        for field, directory in node.dirs:
            for parent in ancestors(directory):
                holder = at.get(parent)
                if holder is not None and nodes[holder].path != node.path:
                    rows.append((field, directory, holder))
                    break
                if parent in mount_points and holder is None:
                    break  # on another kind of mount
    return found


def check_nodes(declared: Sequence[Node], live: Sequence[Node], mount_points: Collection[str] = ()) -> List[Node]:
    """Refuse duplicates, cycles, shared upper or work dirs and stacks too deep; the nodes (declared first).

    ``mount_points``: every live mount point, of any kind: a dir is on the
    nearest mount above it, which decides how deep an overlay stacks.
    """
    check_duplicates(declared)
    taken = {node.path for node in declared}
    nodes = list(declared) + [node for node in live if node.path not in taken]
    check_cycles(nodes)
    check_exclusive(nodes)
    check_depth(nodes, _holders(nodes, mount_points))
    return nodes


def _mount_points(session: Any) -> Collection[str]:
    entries = session.mountinfo()
    kept = session.memo_for(entries, "points")
    return kept if kept is not None else session.memo_for(entries, "points", frozenset(e.mount_point for e in entries))


def engine_store(path: str, exists: Any) -> Optional[Tuple[str, str]]:
    """``(storage dir, engine)`` when ``path`` lies in a container engine's layer storage, else None.

    Known by the engine's own marks beside its store (``engine_of``), so a
    stopped container's layers count as much as a running one's.
    """
    for parent in ancestors(path)[1:]:
        if parent.rsplit("/", 1)[-1] in ENGINE_ROOT_NAMES:
            engine = engine_of(parent, exists)
            if engine is not None:
                return parent, engine
    return None


def _refuse_engine_upper(session: Any, decl: Declaration) -> None:
    for field, path in (("upperdir", decl.upperdir), ("workdir", decl.workdir)):
        found = engine_store(path, session.host.exists) if path else None
        if found is not None:
            raise OverlayError(
                "%s: %s lies in %s's layer storage %s; whether or not a container runs on it now, it "
                "is an image or container layer, and writes there would land in that layer: give this "
                "overlay its own upper and work dirs outside the engine's storage" % (field, path, found[1], found[0]),
                engine=found[1])


def check_entry(session: Any, decl: Declaration) -> None:
    """Refuse one declared overlay whose place in the host's graph is impossible (see ``_model.graph``).

    A batch checked its whole list at the start (:func:`plan_batch`), under
    the host lock it still holds: its entries are not checked again.
    """
    if decl.state in SETUP_STATES and not session.graph_checked:
        if decl.writable:
            _refuse_engine_upper(session, decl)
        check_nodes([declared_node(decl, "the overlay declared at %s" % decl.path)], live_nodes(session),
                    _mount_points(session))


def _declared(session: Any, params: Mapping[str, Any]) -> Optional[Declaration]:
    """The canonical declaration of an entry; None when it is refused (its own run says why)."""
    try:
        return registry.declare(params, session.backends).canonical(session.realpath)
    except OverlayError:
        return None


def plan_batch(session: Any, entries: Sequence[Mapping[str, Any]]) -> List[int]:
    """Check the whole list against itself and the live host; the indexes in the order to carry out.

    Set-up entries first, each after the overlays it depends on; then
    tear-down entries, each before the overlays it depends on. Raises
    OverlayError, naming the entries, for a mount point declared twice, a
    cycle, or an upper or work dir that is not one overlay's alone.
    """
    decls = [_declared(session, params) for params in entries]
    named = [(i, decl) for i, decl in enumerate(decls) if decl is not None]
    check_duplicates([declared_node(decl, "mounts[%d] (%s)" % (i, entries[i]["path"])) for i, decl in named])
    setup = [(i, decl) for i, decl in named if decl.state in SETUP_STATES]
    for _i, decl in setup:
        if decl.writable:
            _refuse_engine_upper(session, decl)
    live = live_nodes(session)
    nodes = check_nodes([declared_node(decl, "mounts[%d] (%s)" % (i, entries[i]["path"])) for i, decl in setup], live,
                        _mount_points(session))
    up = [setup[n][0] for n in topological(nodes, range(len(setup)))]
    down = teardown_order(session, [(i, decl.path) for i, decl in named if decl.state not in SETUP_STATES], live)
    refused = [i for i, decl in enumerate(decls) if decl is None]
    session.graph_checked = True
    return up + down + refused


def teardown_order(session: Any, targets: Sequence[Tuple[Any, str]], live: Optional[Sequence[Node]] = None,
                   reverse: bool = True) -> List[Any]:
    """The keys of ``targets`` (``(key, resolved mount point)``), each before the overlays it depends on.

    An overlay is known by its live node; one not mounted has no dirs.
    ``reverse``: overlays that do not depend on each other go in the reverse
    of their order (a list torn down as it was set up); otherwise in their
    own order (prune, in the order of its mount points).
    """
    live = live_nodes(session) if live is None else live
    by_path: Dict[str, Node] = {node.path: node for node in live}
    nodes = [by_path.get(path) or Node(path, (), path) for _key, path in targets]
    deps = dependencies(nodes)
    if reverse:
        ordered = list(reversed(topological(nodes, range(len(nodes)), deps)))
    else:
        users: Dict[int, Dict[int, Tuple[str, str]]] = {i: {} for i in range(len(nodes))}
        for user, needs in deps.items():
            for needed, why in needs.items():
                users[needed][user] = why
        ordered = topological(nodes, range(len(nodes)), users)
    return [targets[n][0] for n in ordered]


def dependents(session: Any, path: str) -> List[Dict[str, str]]:
    """The live overlays with a dir at or under ``path`` (a mount point), and theirs, dependents last-first.

    Each is ``{path, field, dir}``. An overlay keeps a private copy of each
    layer's mount, so unmounting the overlay at ``path`` under them would
    succeed and leave its superblock, and its upper dir, in use by them
    unseen: they must come down first, deepest first.
    """
    live = live_nodes(session)
    found: Dict[str, Dict[str, str]] = {}
    queue = [path]
    while queue:
        below = queue.pop(0)
        for node in live:
            if node.path == path or node.path in found:
                continue
            hit = next(((f, d) for f, d in node.dirs if at_or_inside(d, below)), None)
            if hit is not None:
                found[node.path] = {"path": node.path, "field": hit[0], "dir": hit[1]}
                queue.append(node.path)
    return list(reversed(list(found.values())))
