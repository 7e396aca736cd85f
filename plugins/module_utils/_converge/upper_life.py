# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The life cycle of an overlay's upper dir: reset it, or commit it into a new lower layer (overlay_upper).

One run, under the session's host lock:

1. **declare**: the overlay's declaration, from the task or, for a task that
   names only ``path``, from its persisted fstab line or unit (or its live
   mount); ``upper_intent.declaration``;
2. **observe**: as ``overlay_mount`` does (``entry.observe``), then who holds
   the overlay or its upper dir, in every mount namespace; a journal a killed
   run left (``_host.upper_journal``) is finished or undone first;
3. **decide**: nothing to do (an empty upper dir; a commit already made) is
   ``changed: false``; check mode reports what would be discarded or committed;
4. **act**: unmount; write the new layer (commit) and make it durable; swap
   the upper and work dirs with empty ones in one atomic rename each; keep
   the old upper as the backup or remove it only after the overlay was
   mounted again (``entry.converge``, which also persists the new layers).
"""

import os
import posixpath
from typing import Any, Dict, List, Optional

from ansible_collections.overlayfs.mounts.plugins.module_utils._converge import upper_intent
from ansible_collections.overlayfs.mounts.plugins.module_utils._converge.entry import converge
from ansible_collections.overlayfs.mounts.plugins.module_utils._host import layer_copy, upper_journal
from ansible_collections.overlayfs.mounts.plugins.module_utils._host.merged_reader import merged_view
from ansible_collections.overlayfs.mounts.plugins.module_utils._host.upper_usage import upper_usage
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError

#: How many of the paths in the upper dir a result names.
FIRST_PATHS = 10


def run(session: Any, params: Dict[str, Any]) -> Dict[str, Any]:
    """Reset or commit the upper dir of the overlay ``params`` declares; the module's result."""
    intent = upper_intent.observe(session, params)
    result = intent.result()
    if intent.journal is not None:
        result["recovered"] = _recover(session, intent)
        if result["recovered"] and not session.check_mode:
            intent = upper_intent.observe(session, params)  # the host as the finished run left it
            result = dict(intent.result(), recovered=result["recovered"], changed=True)
    if intent.done is not None:
        result.update(intent.done)
        return result
    intent.refuse_if_held()
    usage = upper_usage(intent.upper, first=FIRST_PATHS)
    result["discarded" if intent.state == "reset" else "committed"] = usage
    result["actions"] = intent.planned_actions()
    result["changed"] = True
    if intent.state == "committed":
        result["lowerdir"] = intent.new_lowerdir
    if session.check_mode:
        return result
    _act(session, intent, result)
    return result


def _act(session: Any, intent: Any, result: Dict[str, Any]) -> None:
    """Carry out the reset or commit, journaled so that a killed run is finished or undone by the next one.

    A failure (a full disk while writing the layer or the backup, a mount
    the kernel refuses) removes what this run made, puts the old dirs back
    and mounts the overlay again as it was; the error says that nothing
    changed.
    """
    record = intent.journal_record()
    upper_journal.write_journal(intent.staging, record)
    made: List[str] = []
    try:
        if intent.mounted:
            intent.unmount()
        if intent.state == "committed":
            result["layer_counts"] = _write_layer(intent, made, result["committed"])
        if intent.backup and not _same_filesystem(intent.backup, intent.upper):
            result["backup_path"] = _copy_backup(intent.upper, intent.backup, made)
        result.update(_switch(session, intent, record))
    except (OSError, OverlayError) as error:
        raise _rolled_back(session, intent, made, error)
    result.update(_finish(intent))


def _switch(session: Any, intent: Any, record: Dict[str, Any]) -> Dict[str, Any]:
    """Swap in the empty work and upper dirs, persist a commit's layers, and mount the overlay again.

    The work dir goes first: an old upper dir with a fresh work dir is still
    the old overlay. A commit's new work dir carries the kernel's incompat
    marker (``upper_journal.mark_pending``) from before the persisted layers
    change until after the upper dir is swapped: an overlay mounted from
    that state by a boot or by hand would show the old lower layers without
    the committed ones, so the kernel refuses it instead.
    """
    committing = record["state"] == "committed"
    _swap(intent, "work", pending=committing)
    persisted = _persist_layers(session, intent, record) if committing else {}
    _swap(intent, "upper")
    upper_journal.clear_pending(intent.work)
    mounted = _mount_again(session, intent, record)
    actions = persisted.get("mount_actions", []) + mounted.get("mount_actions", [])
    if not (persisted or mounted):
        return {}
    return dict(persisted, **dict(mounted, mount_actions=actions))


def backup_partial(target: str) -> str:
    """Where a backup is copied before it is complete: a hidden sibling of ``target``."""
    return posixpath.join(posixpath.dirname(target), ".%s.overlay-backup" % posixpath.basename(target))


def _same_filesystem(path: str, other: str) -> bool:
    """Whether ``path`` (which may not exist yet) would be on ``other``'s filesystem: its first existing parent is."""
    probe = path
    while not os.path.lexists(probe):
        probe = posixpath.dirname(probe)
    return os.lstat(probe).st_dev == os.lstat(other).st_dev


def _write_layer(intent: Any, made: List[str], usage: Dict[str, Any]) -> Dict[str, int]:
    """Write the upper dir's changes into the new layer dir, durably, under a temporary name first.

    The merged view is mounted only when the upper dir holds renamed dirs or
    metadata-only copies, whose content is in the lower layers. On the upper
    dir's filesystem, with no backup to keep, the files written through the
    overlay are hard-linked into the layer rather than copied: the old upper
    dir is removed once the overlay is mounted again, and the layer keeps
    them.
    """
    partial = intent.partial_layer
    if os.path.lexists(partial):
        layer_copy.remove_tree(partial)
    parent = posixpath.dirname(intent.layer)
    os.makedirs(parent, exist_ok=True)
    link = intent.backup is None and _same_filesystem(parent, intent.upper)
    made.append(partial)
    if usage.get("redirects") or usage.get("metacopy"):
        with merged_view(intent.upper, intent.decl.lowerdir, intent.decl.datadir, intent.decl.options) as merged:
            counts = layer_copy.write_layer(intent.upper, merged, partial, intent.xattr_prefix, link=link)
    else:
        counts = layer_copy.write_layer(intent.upper, None, partial, intent.xattr_prefix, link=link)
    if os.path.isdir(intent.layer) and not os.path.islink(intent.layer):
        os.rmdir(intent.layer)  # an empty dir the task may name (checked by upper_intent): replaced
    os.rename(partial, intent.layer)
    made[-1] = intent.layer
    upper_journal.fsync_dir(parent)
    return counts


def _copy_backup(source: str, target: str, made: List[str]) -> str:
    """Copy ``source`` exactly to the backup path ``target`` on another filesystem, under a temporary name first."""
    parent = posixpath.dirname(target)
    os.makedirs(parent, exist_ok=True)
    partial = backup_partial(target)
    if os.path.lexists(partial):
        layer_copy.remove_tree(partial)
    made.append(partial)
    layer_copy.copy_raw(source, partial)
    os.rename(partial, target)
    made[-1] = target
    upper_journal.fsync_dir(parent)
    return target


def _swap(intent: Any, kind: str, pending: bool = False) -> None:
    """Put an empty dir (with ``pending``, holding the incompat marker) in place of the old upper or work dir.

    One atomic exchange; nothing to do when a killed run swapped it already.
    """
    current = intent.upper if kind == "upper" else intent.work
    if upper_journal.identity(current) != intent.identities["upperdir" if kind == "upper" else "workdir"]:
        return
    spare = intent.spare(kind)
    if os.path.lexists(spare):
        layer_copy.remove_tree(spare)
    layer_copy.make_empty_like(current, spare)
    if pending:
        upper_journal.mark_pending(spare)
    layer_copy.sync_path(spare)
    upper_journal.exchange(spare, current)


def _swap_back(intent: Any) -> None:
    """Undo :func:`_swap`: the old upper and work dir back at their names (their spares hold them)."""
    for current, spare, field in ((intent.upper, intent.spare("upper"), "upperdir"),
                                  (intent.work, intent.spare("work"), "workdir")):
        if upper_journal.identity(current) != intent.identities[field] and os.path.isdir(spare):
            upper_journal.exchange(spare, current)


def _rolled_back(session: Any, intent: Any, made: List[str], error: Exception) -> OverlayError:
    """Undo this run after ``error``: the old dirs back, what it made removed, the overlay mounted as it was."""
    text = error.message if isinstance(error, OverlayError) else "%s" % error
    details = dict(error.details) if isinstance(error, OverlayError) else {}
    try:
        _swap_back(intent)
        for path in reversed(made):
            if os.path.lexists(path):
                layer_copy.remove_tree(path)
        for spare in (intent.spare("upper"), intent.spare("work")):
            if os.path.lexists(spare):
                layer_copy.remove_tree(spare)
        session.changed()
        if intent.mounted:
            converge(session, dict(intent.spelled, state="mounted"))
        upper_journal.remove_journal(intent.staging)
    except (OSError, OverlayError) as undo_error:
        undo_text = undo_error.message if isinstance(undo_error, OverlayError) else "%s" % undo_error
        return OverlayError("%s: %s; undoing it failed too (%s): the journal in %s stays, and the next run finishes "
                            "or undoes it" % (intent.state, text, undo_text, intent.staging), **details)
    return OverlayError("%s: %s; nothing was changed: the upper dir is as it was%s" % (
        intent.state, text, " and the overlay mounted again" if intent.mounted else ""), **details)


def _finish(intent: Any) -> Dict[str, Any]:
    """After the overlay is mounted again: keep the old upper dir as the backup, or remove it; forget the journal."""
    out: Dict[str, Any] = {}
    old_upper = intent.spare("upper")
    if intent.backup and os.path.lexists(old_upper):
        if os.path.lexists(intent.backup):
            out["backup_path"] = intent.backup  # copied before the swap (another filesystem)
        else:
            out["backup_path"] = _keep_backup(intent, old_upper)
    for spare in (intent.spare("upper"), intent.spare("work")):
        if os.path.lexists(spare):
            layer_copy.remove_tree(spare)
    upper_journal.remove_journal(intent.staging)
    return out


def _keep_backup(intent: Any, old_upper: str) -> str:
    """Keep the old upper dir at the backup path: renamed there on the same filesystem, else copied exactly."""
    target = intent.backup
    parent = posixpath.dirname(target)
    os.makedirs(parent, exist_ok=True)
    if _same_filesystem(target, old_upper):
        os.rename(old_upper, target)
        upper_journal.fsync_dir(parent)
        return target
    return _copy_backup(old_upper, target, [])


def _persist_layers(session: Any, intent: Any, record: Dict[str, Any]) -> Dict[str, Any]:
    """Persist a commit's new layers (fstab line or unit), mounting nothing: ``overlay_mount``'s ``present``."""
    params = intent.after_params(record, mounting=False)
    session.changed()
    if params is None:
        return {}
    done = converge(session, params)
    out = {"persisted": done.get("persisted"), "mount_actions": list(done.get("actions", []))}
    if done.get("diff"):
        out["diff"] = [d for d in done["diff"] if d.get("before") != d.get("after")]  # the fstab line or unit
    return out


def _mount_again(session: Any, intent: Any, record: Dict[str, Any]) -> Dict[str, Any]:
    """Mount the overlay again when it was mounted (``overlay_mount``'s converge), with a commit's new layers."""
    params = intent.after_params(record)
    session.changed()
    if params is None or params["state"] != "mounted":
        return {}
    done = converge(session, params)
    return {"live": done.get("live"), "persisted": done.get("persisted"), "mount_actions": done.get("actions", [])}


def _recover(session: Any, intent: Any) -> Optional[str]:
    """Finish or undo what the killed run in the journal started; a sentence saying which (None: nothing).

    A run that swapped the upper dir, or wrote its new layer completely, is
    finished (the old upper dir is kept until the overlay is mounted again);
    any other is undone: only what it made is removed, and the upper dir is
    as it was. When something mounted the overlay since (a boot), a run
    that had not swapped is undone, and one that had is finished after an
    unmount, which holders refuse as for any reset or commit.
    """
    journal = intent.journal
    recorded = journal.get("identities", {}).get("upperdir")
    swapped = recorded is not None and upper_journal.identity(intent.upper) != tuple(recorded)
    layer = journal.get("layer")
    made_layer = journal.get("state") == "committed" and bool(layer) and _holds_something(layer)
    forward = swapped or (made_layer and not intent.mounted)
    what = "%s of %s" % ("commit" if journal.get("state") == "committed" else "reset", intent.path)
    if session.check_mode:
        return "an interrupted %s would be %s first" % (what, "finished" if forward else "undone")
    if not forward:
        _undo(intent, layer if made_layer and layer not in (intent.live or {}).get("lowerdir", []) else None)
        if journal.get("mounted") and not intent.mounted:
            session.changed()
            converge(session, dict(journal["spelled"], state="mounted"))  # it was unmounted by the killed run
        return "an interrupted %s was undone: the upper dir was still whole" % what
    if intent.mounted:
        intent.refuse_if_held()
        intent.unmount()
    resumed = upper_intent.resumed(session, intent, journal)
    _switch(session, resumed, journal)
    _finish(resumed)
    return "an interrupted %s was finished" % what


def _holds_something(path: str) -> bool:
    return os.path.isdir(path) and not os.path.islink(path) and bool(os.listdir(path))


def _undo(intent: Any, layer: Optional[str]) -> None:
    """Remove what a killed run that never swapped made: its spare dirs, its layer (``layer``: complete) or its part."""
    journal_layer, backup = intent.journal.get("layer"), intent.journal.get("backup")
    paths = [intent.spare("upper"), intent.spare("work")]
    paths += [upper_intent.partial_of(journal_layer)] if journal_layer else []
    paths += [layer] if layer else []
    if backup:  # a new path when the killed run began; a copy there (on another filesystem) is its own
        paths += [backup, backup_partial(backup)]
    for path in paths:
        if os.path.lexists(path):
            layer_copy.remove_tree(path)
    upper_journal.clear_pending(intent.work)  # (the old upper with a fresh work dir is the old overlay)
    upper_journal.remove_journal(intent.staging)
