# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A host's whole list (overlay_mounts): order, one session, groups, prune.

The whole list is checked first, against itself and the live host, and
ordered by the host's graph of overlays (``overlay_graph.plan_batch``: a
duplicate, a cycle or a shared upper dir refuses the list before anything
changes). A list that passes is ``accepted`` (the caller's step that must not
run for a refused one), then entries run each exactly as one overlay_mount task
(``entry.converge``), in one ``session.BatchSession``: the host reads are
shared, and mounts are verified and fstab written per group (:func:`settle`),
the group's new fstab lines checked with one findmnt run. Managed
overlays that left the list are pruned after, under the same host lock.
"""

import itertools
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from ansible_collections.overlayfs.mounts.plugins.module_utils._compare.live import public_live
from ansible_collections.overlayfs.mounts.plugins.module_utils._converge import steps
from ansible_collections.overlayfs.mounts.plugins.module_utils._converge.entry import converge
from ansible_collections.overlayfs.mounts.plugins.module_utils._converge.order import merged_params, prune_targets
from ansible_collections.overlayfs.mounts.plugins.module_utils._converge.overlay_graph import plan_batch, teardown_order
from ansible_collections.overlayfs.mounts.plugins.module_utils._converge.session import BatchSession
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.declaration import SETUP_STATES
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.spec import INHERITED, entry_spec
from ansible_collections.overlayfs.mounts.plugins.module_utils._persist import registry


def run_batch(module: Any, host: Any = None, backends: Any = None,
              accepted: Optional[Callable[[], None]] = None) -> Tuple[Dict[str, Any], List[Dict[str, Any]]]:
    """Carry out every entry of overlay_mounts, then prune; return ``(result, failed results)``.

    ``accepted`` is called once the whole list has passed its checks, under
    the host lock, before any entry runs.
    """
    p = module.params
    defaults = {name: p[name] for name in INHERITED}
    entries = [merged_params(entry, defaults) for entry in p["mounts"]]
    results: List[Any] = [None] * len(entries)
    provided: List[str] = []
    with BatchSession(module, settle, host, backends) as session:
        order = plan_batch(session, entries)  # under the host lock; raises before anything changes
        if accepted is not None:
            accepted()
        session.later = {session.realpath(e["path"]) for e in entries if e["state"] in SETUP_STATES}
        try:
            for index in order:
                session.later.discard(session.realpath(entries[index]["path"]))
                results[index] = run_entry(session, entries[index], provided)
                if entries[index]["state"] in SETUP_STATES:
                    provided.append(session.realpath(entries[index]["path"]))
        finally:
            session.settle()  # every mount of the batch is verified, whatever happened meanwhile
        pruned = _prune(session, [e["path"] for e in entries], defaults, entries) if p["prune"] else []
    return _batch_result(module, entries, order, results, pruned)


def _batch_result(module, entries, order, results, pruned):
    everything = results + pruned
    out = {
        "changed": any(r.get("changed") for r in everything),
        "overlays": results,
        "pruned": pruned,
        "order": [entries[i]["path"] for i in order] + [r["path"] for r in pruned],
        "drift": [dict(row, path=r["path"]) for r in everything for row in r.get("drift", [])],
    }
    diffs = [d for r in everything for d in r.pop("diff", [])]
    if module._diff:
        out["diff"] = diffs
    return out, [r for r in everything if r.get("failed")]


def run_entry(session: Any, params: Dict[str, Any], provided: Sequence[str] = ()) -> Dict[str, Any]:
    """overlay_mount's result for one entry; a failure becomes a failed result."""
    try:
        result = converge(session, params, provided)
    except OverlayError as error:
        result = dict(error.details, failed=True, changed=False, msg=error.message)
    result["path"] = params["path"]
    return result


def settle(session: BatchSession) -> None:
    """Finish a batch's group: verify its mounts with one mountinfo read, write its files once.

    Each mount is checked exactly as ``steps.verify`` checks a single one;
    one that the kernel mounted otherwise is unmounted and its entry rolled
    back (dirs removed while empty, a re-layered overlay put back), and its
    fstab edit is dropped. Then each file's remaining edits are made in one
    write (``write_together`` of the backend); an entry whose edit fails
    there has its overlay unmounted again and is rolled back too. A failed
    entry's result becomes a failed one.
    """
    group = session.pending.take()
    if not group and not session.writes:
        return
    intact = True
    mounted = [entry for entry in group if entry.unverified]
    entries = session.host.read_mountinfo() if mounted else None
    for entry in mounted:
        entry.unverified = False
        try:
            live, _entries = steps.verify(session, entry.decl, entries)
        except OverlayError as error:
            intact = False
            _fail_in_group(session, entry, "mount", error)
            continue
        entry.result["live"] = public_live(live)
        entry.undo.append(("mount", lambda path=entry.decl.path: steps.unmount_again(session, path)))
    failed = []
    for (backend, location), members in sorted(session.writes.items(), key=lambda item: item[0][1]):
        live_members = [(entry, b) for entry, b in members if not entry.result.get("failed")]
        if live_members:
            failed += [(entry, backend.batched_step, error)
                       for entry, error in backend.write_together(session.module, location, live_members)]
    session.writes.clear()
    for entry, step, error in failed:
        intact = False
        _fail_in_group(session, entry, step, error)
    if intact:
        session.saw(entries)
    else:
        session.changed()


def _fail_in_group(session: Any, entry: Any, step: str, error: OverlayError) -> None:
    """Roll back an entry of a settled group and turn its result into a failed one."""
    entry.ctx.step = step
    with steps.locked(session, entry):
        failure = steps.failure(session, entry, error)
    message = failure.message
    deferred = entry.ctx.deferred
    if deferred:
        files_named = ", ".join(location for location, _backend in deferred)
        message += "; %s %s not changed" % (files_named, "was" if len(deferred) == 1 else "were")
    keep = {key: entry.result[key] for key in ("path",) if key in entry.result}
    entry.result.clear()
    entry.result.update(failure.details, failed=True, changed=False, msg=message, **keep)


def _prune(session: Any, declared: List[str], defaults: Dict[str, Any], entries: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Remove the managed overlays that left the list, from every place the task names."""
    backends = session.backends
    locations = {b.name: sorted({defaults[b.location]} | {e[b.location] for e in entries}) for b in backends}
    targets = prune_targets([session.realpath(path) for path in declared], registry.scan(locations, backends=backends),
                            session.realpath)
    pruned = []
    for path in teardown_order(session, [(path, path) for path in sorted(targets)], reverse=False):
        places = [[(b.location, where) for where in targets[path].get(b.name) or [defaults[b.location]]]
                  for b in backends]
        for combination in itertools.product(*places):
            entry = {key: spec.get("default") for key, spec in entry_spec().items()}
            entry.update(path=path, state="absent", marked_only=True)
            params = merged_params(entry, dict(defaults, **dict(combination)))
            pruned.append(run_entry(session.single(), params))
    return pruned
