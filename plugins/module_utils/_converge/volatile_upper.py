# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A volatile upper in the life cycle of one entry: observe its tmpfs, plan its actions, report its drift.

``entry`` calls :func:`observe` (reads; refusals that depend on them), then
:func:`plan` after ``plan.make_plan`` (pure: the tmpfs actions go before the
overlay's mount and after its unmount), then :func:`report`. The steps are
in ``steps.STEPS``; the persistence is ``_persist.tmpfs_backend``.

Which tmpfs an unmount takes down: the declared one, or, when ``upper_tmpfs``
is not declared (``state: absent`` with a path alone), the one the
collection's dirs service records for the overlay. It is unmounted only when
it holds nothing but the overlay's upper and work dirs and no other mount:
anything else in it is not the overlay's volatile data, and stays (with a
warning).
"""

import dataclasses
import grp
import posixpath
import pwd
from typing import Any, Dict, List, Optional, Tuple

from ansible_collections.overlayfs.mounts.plugins.module_utils._compare.drift import tmpfs_drift
from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.mountinfo import submounts
from ansible_collections.overlayfs.mounts.plugins.module_utils._host import tmpfs_mounts
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.declaration import dir_attributes
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.paths import inside
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.upper_tmpfs import UpperTmpfs, resolve_ids, size_bytes
from ansible_collections.overlayfs.mounts.plugins.module_utils._persist.tmpfs_backend import TmpfsBackend


@dataclasses.dataclass
class TmpfsSeen:
    """What :func:`observe` read about the tmpfs of one overlay.

    ``tmpfs``: the declared one, or the recorded one (``declared`` False);
    ``ids``: its ``(uid, gid)``; ``live``: ``tmpfs_mounts.live_tmpfs`` at its
    path; ``want``: its size in bytes; ``names``: what its root holds;
    ``others``: other mounts below it; ``dirs``: ``(mode, uid, gid)`` of the
    upper and work dirs it gets.
    """

    tmpfs: UpperTmpfs
    declared: bool
    ids: Tuple[int, int]
    live: Optional[Dict[str, Any]]
    want: Optional[int] = None
    names: List[str] = dataclasses.field(default_factory=list)
    others: List[str] = dataclasses.field(default_factory=list)
    dirs: Tuple[int, int, int] = (0o755, 0, 0)
    missing: List[str] = dataclasses.field(default_factory=list)
    backend: Any = None

    @property
    def fresh(self) -> bool:
        """True when no tmpfs is mounted at its path: one will be, empty."""
        return self.live is None


def _ids(tmpfs: UpperTmpfs) -> Tuple[int, int]:
    return resolve_ids(tmpfs, lambda n: pwd.getpwnam(n).pw_uid, lambda n: grp.getgrnam(n).gr_gid)


def observe(session: Any, decl: Any, seen: Any, facts: Any) -> None:
    """Read the tmpfs the overlay's upper lives on; add the backend that persists it; refuse what the host rules out.

    Sets ``seen.tmpfs`` (None when the overlay has no volatile upper). Where
    a fresh tmpfs will be mounted, the upper and work dirs count as dirs
    (they are made in it) on no mount yet.
    """
    backend = TmpfsBackend(decl, facts, realpath=session.realpath)
    backend.read(seen.touch)
    tmpfs = decl.upper_tmpfs if decl.upper_tmpfs is not None else backend.recorded()
    if tmpfs is None:
        if backend.found_anything():
            seen.backends.append(backend)  # absent: remove what an earlier declaration persisted
        return
    seen.backends.append(backend)
    ids = _ids(tmpfs) if decl.upper_tmpfs is not None else (0, 0)
    backend.ids = ids
    entries = session.mountinfo()
    live = tmpfs_mounts.live_tmpfs(tmpfs.path, entries)
    mode, uid, gid = dir_attributes(decl.mode, decl.owner, decl.group)
    # The dirs belong to the tmpfs owner unless owner/group say otherwise: a root-owned dir in a
    # tmpfs of another user would be an unsafe path transition (_host.safe_paths).
    tseen = TmpfsSeen(tmpfs, decl.upper_tmpfs is not None, ids, live, backend=backend,
                      dirs=(0o755 if mode is None else mode, ids[0] if uid is None else uid, ids[1] if gid is None else gid))
    backend.dir_attrs = tseen.dirs
    seen.tmpfs = tseen
    if live is not None and live["fstype"] == "tmpfs":
        tseen.names = tmpfs_mounts.root_names(tmpfs.path)
        tseen.others = [e.mount_point for e in submounts(entries, tmpfs.path) if e.mount_point != decl.path]
    if decl.state != "mounted" or not tseen.declared:
        return
    _refuse_live(decl, tseen, seen)
    tseen.want = size_bytes(tmpfs.size, tmpfs_mounts.total_pages())
    if tseen.fresh:
        for path in (decl.upperdir, decl.workdir):
            seen.kinds[path] = "dir"  # made in the fresh tmpfs, before the overlay is mounted
        seen.upper_mount = seen.work_mount = None
    else:
        for path in (decl.upperdir, decl.workdir):
            if seen.kinds.get(path) == "missing":
                tseen.missing.append(path)
                seen.kinds[path] = "dir"  # made in the tmpfs by create_upper_dirs
        _refuse_shrink(tmpfs, tseen)


def _refuse_live(decl: Any, tseen: TmpfsSeen, seen: Any) -> None:
    live, path = tseen.live, tseen.tmpfs.path
    if live is not None and live["fstype"] != "tmpfs":
        raise OverlayError(
            "upper_tmpfs.path: %s is a mount point of %s (%s), not a tmpfs; the collection mounts the tmpfs there "
            "itself: choose another upper_tmpfs.path, or unmount what is mounted there" % (path, live["fstype"], live["source"]))
    overlay = seen.live.live if seen.live is not None else None
    if live is None and overlay is not None and overlay.get("upperdir") and inside(overlay["upperdir"], path):
        raise OverlayError(
            "upper_tmpfs.path: the overlay at %s is mounted with its upper dir %s on the directory below %s, not on a "
            "tmpfs; unmount it first (state: unmounted), then declare it mounted again with upper_tmpfs"
            % (decl.path, overlay["upperdir"], path))


def _refuse_shrink(tmpfs: UpperTmpfs, tseen: TmpfsSeen) -> None:
    used, want = tseen.live.get("used"), tseen.want
    if want is not None and used is not None and want < used and want != tseen.live.get("size"):
        raise OverlayError(
            "upper_tmpfs.size: %s (%d bytes) is less than the %d bytes the tmpfs at %s holds now; tmpfs cannot shrink "
            "below what it holds: give a larger size, or unmount the overlay and its tmpfs first (state: unmounted), "
            "which drops their volatile content" % (tmpfs.size, want, used, tmpfs.path))


def live_actions(decl: Any, tseen: TmpfsSeen) -> List[Dict[str, Any]]:
    """The actions that make the live tmpfs what ``decl`` declares (state ``mounted``), before the overlay's. Pure."""
    tmpfs, live = tseen.tmpfs, tseen.live
    dirs = [decl.upperdir, decl.workdir]
    if live is None:
        return [{"action": "mount_tmpfs", "path": tmpfs.path, "options": tmpfs.options(*tseen.ids)},
                {"action": "create_upper_dirs", "path": tmpfs.path, "dirs": dirs}]
    out = []
    if tseen.want is not None and live["size"] != tseen.want:
        out.append({"action": "remount_tmpfs", "path": tmpfs.path, "size": tmpfs.size, "used": live.get("used")})
    if (live["mode"], live["uid"], live["gid"]) != (tmpfs.mode,) + tuple(tseen.ids):
        out.append({"action": "set_tmpfs_root", "path": tmpfs.path, "mode": "%04o" % tmpfs.mode,
                    "uid": tseen.ids[0], "gid": tseen.ids[1]})
    return out


def _holds_only(decl: Any, tseen: TmpfsSeen, overlay: Any) -> bool:
    """True when the tmpfs holds nothing but the overlay's upper and work dirs, and no other mount."""
    path = tseen.tmpfs.path
    dirs = [d for d in (decl.upperdir, decl.workdir) if d] or [
        d for d in ((overlay or {}).get("upperdir"), (overlay or {}).get("workdir")) if d]
    tops = {posixpath.relpath(d, path).split("/", maxsplit=1)[0] for d in dirs if inside(d, path)}
    return not tseen.others and set(tseen.names) <= tops


def plan(session: Any, entry: Any) -> None:
    """Put the tmpfs actions into ``entry.plan``: before the overlay's for ``mounted``, after its unmount otherwise."""
    tseen = entry.seen.tmpfs
    if tseen is None:
        return
    decl, plan_ = entry.decl, entry.plan
    actions = plan_["actions"]
    if decl.state == "mounted" and tseen.declared:
        wanted = live_actions(decl, tseen)
        if tseen.missing:
            wanted.append({"action": "create_upper_dirs", "path": tseen.tmpfs.path, "dirs": list(tseen.missing)})
        actions[0:0] = wanted
    elif decl.state in ("unmounted", "absent") and tseen.live is not None and tseen.live["fstype"] == "tmpfs":
        overlay = entry.seen.live.live
        if _holds_only(decl, tseen, overlay):
            last = max([n for n, step in enumerate(actions) if step["action"] == "unmount"] or [-1])
            actions.insert(last + 1, {"action": "unmount_tmpfs", "path": tseen.tmpfs.path})
        else:
            held = ", ".join(tseen.others + list(tseen.names))
            session.module.warn("upper_tmpfs: the tmpfs at %s holds more than the upper and work dirs of %s (%s); "
                                "it stays mounted: unmount it by hand when its content may go" % (tseen.tmpfs.path, decl.path, held))
    plan_["changed"] = bool(actions)


def report(entry: Any) -> None:
    """Add the tmpfs to the entry's result (``upper_tmpfs``) and its drift rows (``upper_tmpfs``, ``upper_tmpfs.size``...)."""
    tseen = entry.seen.tmpfs
    if tseen is None:
        return
    live = tseen.live
    entry.result["upper_tmpfs"] = dict(tseen.tmpfs.as_result(), live=public(live))
    if entry.decl.state == "mounted" and tseen.declared:
        persisted = tseen.backend.persisted_size() if tseen.backend is not None else None
        entry.result["drift"] = list(entry.result.get("drift") or []) + tmpfs_drift(
            tseen.tmpfs, tseen.ids, tseen.want, live, persisted)


def public(live: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """A live tmpfs as results show it: ``{fstype, size, mode, uid, gid, used}`` (None: nothing mounted)."""
    if live is None:
        return None
    out = {key: live[key] for key in ("fstype", "size", "uid", "gid", "used")}
    out["mode"] = "%04o" % live["mode"] if live["mode"] is not None else None
    return out


def refresh(session: Any, entry: Any) -> None:
    """After a step changed the tmpfs: the result shows it as it is now."""
    shown = entry.result.get("upper_tmpfs")
    if shown is not None:
        shown["live"] = public(tmpfs_mounts.live_tmpfs(shown["path"], session.host.read_mountinfo()))
