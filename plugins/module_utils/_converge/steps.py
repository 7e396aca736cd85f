# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Act and verify: carry out a plan's steps, undo them on failure, check what was mounted.

Each action of a plan runs through a table: :data:`STEPS` for dirs,
unmount, remedies, mount and daemon-reload, and each backend's own
``steps`` for its files. Every step returns its undo as ``(kind, undo)``.
On a failure the undos run: persistence first (fstab and unit files come
back byte for byte), then the previous mount is put back, then created dirs
are removed while still empty. The error names the step that failed and
says what was rolled back.

All host changes go through the session's host (``_host.port.Host``).
"""

import contextlib
import os
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from ansible_collections.overlayfs.mounts.plugins.module_utils._compare.live import differences, observe, public_live
from ansible_collections.overlayfs.mounts.plugins.module_utils._converge import volatile_upper
from ansible_collections.overlayfs.mounts.plugins.module_utils._host import tmpfs_mounts
from ansible_collections.overlayfs.mounts.plugins.module_utils._host.mounting import links_dir_for
from ansible_collections.overlayfs.mounts.plugins.module_utils._host.upper_safety import VOLATILE_MARKER
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.declaration import Declaration
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.path_limits import declared_paths
from ansible_collections.overlayfs.mounts.plugins.module_utils._persist import registry
from ansible_collections.overlayfs.mounts.plugins.module_utils._persist.backend import StepContext
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.paths import missing_parents

#: A step's undo, tagged with its kind (``persist``, ``mount`` or ``dirs``).
KindedUndo = Tuple[str, Callable[[], Any]]


def carry_out(session: Any, entry: Any) -> None:
    """Act on ``entry``'s plan, then verify its mount now or leave it to the group.

    First, where the entry may change persisted files, the temp files a
    killed run left next to them are removed (also when nothing else is to do).
    """
    if entry.seen.touch:
        for backend in entry.backends:
            session.clean_stale(backend.stale_file())
    if not entry.plan["actions"]:
        return
    entries = session.mountinfo() if session.grouped else None
    session.changed(paths=touched(entry))  # this entry changes the host there: read afresh next time
    act(session, entry)
    _check_links_pointer(session, entry)
    if entry.unverified or entry.ctx.deferred:
        session.join(entry, entry.unverified)
        for backend in entry.backends:
            backend.release()  # the result is made; a group of 1,000 must not keep 1,000 fstab texts
        if not any(step["action"] == "unmount" for step in entry.plan["actions"]):
            # Only the new mount is missing from that read; an entry that meets
            # it waits for its group's check, which reads mountinfo again.
            session.saw(entries, unless_read=True)


def _check_links_pointer(session: Any, entry: Any) -> None:
    """Warn when short links were made outside the default root and the pointer to them is missing."""
    linked = entry.result.get("mount_method") == "symlinks" or any(
        step["action"] == "write_links" for step in entry.plan["actions"])
    if linked:
        missing = session.host.links_pointer_missing(entry.decl.links_dir, entry.decl.path)
        if missing:
            session.module.warn(missing)


def touched(entry: Any) -> List[str]:
    """Where ``entry``'s plan changes the host: each action's path, and where a unit or links are written, their dir."""
    paths = [entry.decl.path]
    for step in entry.plan["actions"]:
        paths.append(step["path"])
        if step["action"] in ("write_unit", "write_links", "write_automount", "mask_drop_in", "enable_unit"):
            paths.append(os.path.dirname(step["path"]))  # made when missing
    return paths


@contextlib.contextmanager
def locked(session: Any, entry: Any) -> Iterator[None]:
    """Hold the locks on the dirs of the files the entry's backends edit."""
    dirs = sorted({b.lock_dir() for b in entry.backends} - {None}) if entry.seen.touch else []
    with contextlib.ExitStack() as stack:
        for directory in dirs:
            stack.enter_context(session.host.directory_lock(directory))
        yield


def act(session: Any, entry: Any) -> None:
    """Carry out the planned steps; on a failure undo the earlier ones and raise."""
    table = dict(STEPS)
    for backend in entry.backends:
        table.update((name, _persist_step(function)) for name, function in backend.steps.items())
    entry.ctx = StepContext(session.module, entry.decl, entry.result, grouped=session.grouped)
    with locked(session, entry):  # from reading the files again to the mount that follows
        try:
            for step in entry.plan["actions"]:
                entry.ctx.step = step["action"]
                entry.ctx.path = step.get("path")
                undo = table[step["action"]](session, entry, step)
                if undo is not None:
                    entry.undo.append(undo)
        except Exception as error:  # whatever a step raised, undo the earlier ones
            raise failure(session, entry, error)
    for backend in entry.backends:
        backend.done(session.module, entry.decl.state, mounted=entry.result.get("mount_method") is not None)
    entry.result["persisted"] = registry.persisted(entry.backends)
    if entry.decl.state in ("unmounted", "absent"):
        entry.result["live"] = None


def _persist_step(function: Callable[[StepContext], Any]) -> Callable[..., Optional[KindedUndo]]:
    """A backend's step in the table: its undo is a persistence undo."""
    def step(_session, entry, _step):
        undo = function(entry.ctx)
        return ("persist", undo) if undo is not None else None
    return step


def made_paths(entry: Any) -> List[Tuple[str, str]]:
    """``[(field, path)]`` of every path the entry names or may make: dirs, its short links, its files.

    What ``entry.observe`` measures against the kernel's path limit
    (``_model.path_limits``) before anything is planned, in check mode too.
    """
    decl = entry.decl
    made = []
    if decl.links_dir:
        links = links_dir_for(decl.links_dir, decl.path)
        made += [("links_dir", links), ("links_dir", os.path.join(links, "b%d" % len(decl.layers)))]
    made += [(backend.location, backend.stale_file()) for backend in entry.backends]
    return declared_paths(decl, made)


def _create_dir(session: Any, entry: Any, step: Dict[str, Any]) -> KindedUndo:
    """Make a missing dir and its parents; a failure half-way removes the ones this step made."""
    decl = entry.decl
    fields = {decl.path: "path", decl.upperdir: "upperdir", decl.workdir: "workdir"}
    mode, uid, gid = entry.seen.attrs
    missing = missing_parents(step["path"], session.host.exists)
    field = fields.get(step["path"], "path")
    try:
        created = session.host.make_dirs(step["path"], mode, uid, gid, field)
    except (OSError, OverlayError) as error:
        made = [d for d in missing if session.host.exists(d)]
        if made:
            session.host.remove_empty_dirs(made)
        if isinstance(error, OverlayError):
            raise
        raise OverlayError("%s: cannot create %s: %s; the directories this step made were removed"
                           % (field, error.filename or step["path"], error.strerror), errno=error.errno)
    return ("dirs", lambda: session.host.remove_empty_dirs(created))


def _daemon_reload(session: Any, entry: Any, _step: Dict[str, Any]) -> None:
    if entry.ctx.deferred and not any(kind == "persist" for kind, _undo in entry.undo):
        return  # nothing written yet: the group's write reloads after it (write_together)
    session.host.systemctl(session.module, "daemon-reload")


def _unmount_dependent(session: Any, entry: Any, step: Dict[str, Any]) -> Optional[KindedUndo]:
    """Unmount an overlay that uses a dir inside this one; its own entry, later in the batch, mounts it again."""
    session.host.unmount(session.module, step["path"])
    return None


def _unmount(session: Any, entry: Any, step: Dict[str, Any]) -> Optional[KindedUndo]:
    """Unmount the top overlay; through its backend's unit when that has it active."""
    if not any(backend.stop(session.module) for backend in entry.backends):
        session.host.unmount(session.module, step["path"])
    live = entry.seen.live.live
    _clear_own_volatile_marker(session, live)
    if entry.decl.state == "absent":
        session.host.remove_links_pointer(entry.decl.path)  # the pointer to its short links, if any
    if entry.decl.state == "mounted":  # a re-layering: put the old overlay back on failure
        return ("mount", lambda: restore_mount(session, live, entry.decl.path))
    return None


def _clear_volatile(session: Any, _entry: Any, step: Dict[str, Any]) -> None:
    session.host.clear_volatile_marker(step["path"])


def _mount(session: Any, entry: Any, step: Dict[str, Any]) -> None:
    """Mount (or start the unit that mounts), then verify what the kernel mounted.

    In a batch a direct mount joins the group that ``batch.settle`` verifies.
    """
    decl = entry.decl
    via = None
    if step.get("via"):
        via = next(b for b in entry.backends if b.name == step["via"])
        via.start(session.module)
        entry.result["mount_method"] = step["via"]
    else:
        entry.result["mount_method"] = session.host.mount(decl, decl.method, decl.links_dir)
        if session.grouped:
            entry.unverified = True  # verified with its group
            return
    try:
        live, entries = verify(session, decl)
    except OverlayError as error:
        applied = via.applied_drop_ins() if via is not None else []
        if not applied:
            raise
        raise OverlayError("%s; systemd applied these drop-ins over the unit: %s" % (error.message, ", ".join(applied)),
                           **error.details)
    entry.result["live"] = public_live(live)
    session.saw(entries)  # read after this mount: the host as the next entry finds it


def _remount_flags(session: Any, entry: Any, step: Dict[str, Any]) -> KindedUndo:
    """Set the mount's per-mount flags in place (no re-layering), then verify them.

    The undo puts back the flags (and the superblock's ro) the mount had. A
    mount that does not show the declared flags afterwards gets its old
    flags back, and the step fails.
    """
    decl, host = entry.decl, session.host
    old = entry.seen.live.live
    old_flags, old_superblock = list(old.get("flags") or ()), step.get("superblock") and old.get("superblock")

    def undo() -> str:
        try:
            host.remount_flags(decl.path, old_flags, old_superblock or None)
        except OverlayError as error:
            return "putting back the mount flags (%s) also failed: %s" % (",".join(old_flags) or "rw", error.message)
        return "the mount's flags were put back (%s)" % (",".join(old_flags) or "rw")

    try:
        host.remount_flags(decl.path, decl.flags, step.get("superblock"))
    except OverlayError as error:
        raise OverlayError("%s; %s" % (error.message, undo()), **error.details)
    entries = host.read_mountinfo()
    live = observe(decl.path, entries, session.defaults(), decl.links_dir, exists=host.exists,
                   realpath=host.realpath, links=host.link_times()).live
    diffs = differences(decl, live, session.defaults())
    if diffs:
        detail = "; ".join("%s: declared %r, mounted %r" % (d["field"], d.get("declared"), d.get("live")) for d in diffs)
        raise OverlayError("the mount flags at %s are not what was declared after the remount (%s); %s"
                           % (decl.path, detail, undo()), drift=diffs, live=public_live(live))
    entry.result["live"] = public_live(live)
    session.saw(entries)
    return ("mount", undo)


def _mount_tmpfs(session: Any, entry: Any, step: Dict[str, Any]) -> KindedUndo:
    """Mount the tmpfs of a volatile upper (making its mount point when missing); the undo unmounts it again."""
    path = step["path"]
    made = [] if session.host.exists(path) else session.host.make_dirs(path, 0o755, 0, 0, "upper_tmpfs.path")
    try:
        tmpfs_mounts.mount(session.module, path, step["options"])
    except OverlayError:
        session.host.remove_empty_dirs(made)
        raise
    volatile_upper.refresh(session, entry)

    def undo() -> str:
        try:
            tmpfs_mounts.unmount(session.module, path)
        except OverlayError as error:
            return "unmounting the tmpfs at %s again also failed: %s" % (path, error.message)
        session.host.remove_empty_dirs(made)
        return "the tmpfs at %s was unmounted again" % path
    return ("mount", undo)


def _remount_tmpfs(session: Any, entry: Any, step: Dict[str, Any]) -> KindedUndo:
    """Resize the tmpfs in place; the undo gives it its old size back."""
    old = entry.seen.tmpfs.live["size"]
    tmpfs_mounts.resize(session.module, step["path"], step["size"], step.get("used"))
    volatile_upper.refresh(session, entry)

    def undo() -> str:
        if old is None:
            return "the tmpfs at %s keeps its new size (it had no limit before)" % step["path"]
        try:
            tmpfs_mounts.resize(session.module, step["path"], "%dk" % (old // 1024))
        except OverlayError as error:
            return "giving the tmpfs at %s its old size back also failed: %s" % (step["path"], error.message)
        return "the tmpfs at %s has its old size again" % step["path"]
    return ("mount", undo)


def _set_tmpfs_root(session: Any, entry: Any, step: Dict[str, Any]) -> KindedUndo:
    """Set the mode and owner of the tmpfs root; the undo puts the old ones back."""
    live = entry.seen.tmpfs.live
    tmpfs_mounts.set_root(step["path"], int(step["mode"], 8), step["uid"], step["gid"])
    volatile_upper.refresh(session, entry)

    def undo() -> str:
        tmpfs_mounts.set_root(step["path"], live["mode"], live["uid"], live["gid"])
        return "the tmpfs root %s has its old mode and owner again" % step["path"]
    return ("mount", undo)


def _create_upper_dirs(session: Any, entry: Any, step: Dict[str, Any]) -> KindedUndo:
    """Make the upper and work dirs in the tmpfs, with the declared mode and owner."""
    mode, uid, gid = entry.seen.tmpfs.dirs
    try:
        made = tmpfs_mounts.make_dirs(step["dirs"], mode, uid, gid)
    except OSError as error:
        raise OverlayError("upperdir: cannot create %s in the tmpfs: %s" % (error.filename, error.strerror))
    return ("dirs", lambda: tmpfs_mounts.remove_dirs(made))


def _unmount_tmpfs(session: Any, entry: Any, step: Dict[str, Any]) -> None:
    """Unmount the tmpfs of a volatile upper, after its overlay: its content is volatile by declaration."""
    tmpfs_mounts.unmount(session.module, step["path"])
    volatile_upper.refresh(session, entry)


#: What carries out each action of a plan, apart from the backends' own steps.
#: Each takes the session, the entry and the step, and returns ``(kind, undo)`` or None.
STEPS = {
    "create_dir": _create_dir,
    "daemon_reload": _daemon_reload,
    "unmount": _unmount,
    "unmount_dependent": _unmount_dependent,
    "clear_volatile": _clear_volatile,
    "mount": _mount,
    "remount_flags": _remount_flags,
    "mount_tmpfs": _mount_tmpfs,
    "remount_tmpfs": _remount_tmpfs,
    "set_tmpfs_root": _set_tmpfs_root,
    "create_upper_dirs": _create_upper_dirs,
    "unmount_tmpfs": _unmount_tmpfs,
}


def _clear_own_volatile_marker(session: Any, live: Any) -> None:
    """After our own clean unmount of a volatile overlay its marker is stale: remove it."""
    if live is not None and live.effective.get("volatile") and live["workdir"]:
        marker = os.path.join(live["workdir"], *VOLATILE_MARKER)
        if session.host.isdir(marker):
            session.host.clear_volatile_marker(marker)


# Verify -----------------------------------------------------------------

def verify(session: Any, decl: Declaration, entries: Optional[list] = None) -> Tuple[Any, list]:
    """Read mountinfo again; unmount and fail unless the kernel mounted exactly ``decl``.

    Returns the live overlay and the mountinfo entries read (``entries``,
    when a read made after the mount is given).
    """
    host = session.host
    if entries is None:
        entries = host.read_mountinfo()
    defaults = session.defaults()
    live, _count, foreign = observe(decl.path, entries, defaults, decl.links_dir,
                                    exists=host.exists, realpath=host.realpath, links=host.link_times())
    if live is None:
        raise OverlayError(
            "the mount of %s reported success but mountinfo shows %s there"
            % (decl.path, "a %s filesystem" % foreign if foreign else "nothing mounted"))
    diffs = differences(decl, live, defaults)
    if diffs:
        detail = "; ".join("%s: declared %r, mounted %r" % (d["field"], d["declared"], d["live"]) for d in diffs)
        undone = unmount_again(session, decl.path, "it")
        raise OverlayError(
            "the kernel mounted something other than what was declared at %s (%s); %s"
            % (decl.path, detail, undone), drift=diffs, live=public_live(live))
    return live, entries


def unmount_again(session: Any, path: str, name: Optional[str] = None) -> str:
    """Unmount a mount this run made; what happened, in words (``name``: how to call it)."""
    name = name or path
    try:
        session.host.umount2(path)
    except OSError as error:
        return "unmounting %s again failed (%s): unmount it by hand" % (name, error)
    return "%s was unmounted again" % name


# Roll back --------------------------------------------------------------

def failure(session: Any, entry: Any, error: BaseException) -> OverlayError:
    """The error to raise for a failed step, with what rolling back did."""
    kind = entry.ctx.step
    if isinstance(error, OverlayError):
        message, details = error.message, error.details
        if kind != "mount":
            message = "step %s failed: %s" % (kind, message)
    else:
        message, details = "step %s failed: %s" % (kind, error), {}
    return OverlayError(message + rollback(session, entry), **details)


def rollback(session: Any, entry: Any) -> str:
    """Undo the steps that ran before a failure: persistence, then the mount, then dirs."""
    notes: List[str] = []
    undone = {kind: [undo for k, undo in reversed(entry.undo) if k == kind] for kind in ("persist", "mount", "dirs")}
    for undo in undone["persist"]:
        try:
            undo()
        except Exception as error:  # pylint: disable=broad-except
            notes.append("undoing a persistence step failed: %s" % getattr(error, "message", error))
    if undone["persist"] and not notes:
        notes.append("fstab and unit files were restored")
        if entry.facts.booted:
            try:
                session.host.systemctl(session.module, "daemon-reload")
            except OverlayError as error:
                notes.append(error.message)
    notes += [undo() for undo in undone["mount"]]
    for undo in undone["dirs"]:
        undo()
    return ("; " + "; ".join(notes)) if notes else ""


def restore_mount(session: Any, old: Any, path: str) -> str:
    """Try to put back the overlay that was unmounted for a re-layering."""
    previous = Declaration(path, old["lowerdir"], old["upperdir"], old["workdir"], old["options"], old.get("datadir"),
                           flags=old.get("flags") or [])
    try:
        session.host.mount(previous)
    except OverlayError as error:
        return "putting back the previous overlay also failed: %s" % error.message
    return "the previous overlay was mounted again"
