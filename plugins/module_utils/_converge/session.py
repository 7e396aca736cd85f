# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The session: what one module run keeps beyond a single overlay.

A session owns

- the **host reads** (mountinfo, the overlay module's defaults, the facts
  rendering depends on, resolved paths), made once and dropped whenever an
  entry changes the host (:meth:`Session.changed`);
- the **host lock** (``_host.port.HostLock``), taken at the first host read
  and held until the session closes, after the last write: what a run
  planned is what it acts on;
- for a batch, the **group** of mounts not yet verified and the file writes
  waiting for them (:class:`BatchSession`).

Two kinds: :class:`TaskSession` for ``overlay_mount``, which verifies each
mount and writes each file at once, and :class:`BatchSession` for
``overlay_mounts``, which verifies its mounts in groups with one mountinfo
read and writes each fstab once per group. A session is a context manager;
closing it settles the last group, then releases the lock.
"""

import posixpath
from typing import Any, Callable, Dict, List, Optional, Tuple

from ansible_collections.overlayfs.mounts.plugins.module_utils._model.paths import ancestors
from ansible_collections.overlayfs.mounts.plugins.module_utils._converge.pending import PendingMounts
from ansible_collections.overlayfs.mounts.plugins.module_utils._host.port import Host
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.facts import HostFacts
from ansible_collections.overlayfs.mounts.plugins.module_utils._persist import registry


class Session:
    """What a module run shares between its entries; see the module docstring."""

    #: Whether mounts are verified and batched files written per group.
    grouped = False
    #: Whether the whole declaration was checked as one graph already (a batch, at its start).
    graph_checked = False

    def __init__(self, module: Any, host: Optional[Host] = None, backends: Optional[Tuple[type, ...]] = None,
                 lock: Any = None) -> None:
        self.module = module
        self.host = host if host is not None else Host()
        self.backends = tuple(backends if backends is not None else registry.BACKENDS)
        self._mountinfo: Optional[list] = None
        self._defaults: Optional[dict] = None
        self._facts: Optional[HostFacts] = None
        self._memo: Dict[Any, str] = {}
        self._below: Dict[str, set] = {}  # a path: the keys of the resolutions at or below it
        self._followed: set = set()  # the keys of the resolutions that followed a symlink
        self._cleaned: set = set()  # the files whose stale temp files were removed
        self._view: Any = None  # the other mount namespaces, read once
        self._links: Any = None  # LinkTimes, until the host changes
        self._others: Optional[Dict[Any, list]] = None
        self._derived: Tuple[Any, Dict[str, Any]] = (None, {})  # what was derived from one host read
        #: The graph nodes of live overlays (``overlay_graph.live_nodes``), by mount; dropped with every resolution.
        self.nodes: Dict[Any, Any] = {}
        self._lock = lock
        self._owns_lock = lock is None

    @property
    def check_mode(self) -> bool:
        return bool(self.module.check_mode)

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc: Any) -> bool:
        self.close()
        return False

    def close(self) -> None:
        """Release the host lock, if this session took it (a batch settles its last group first)."""
        if self._lock is not None and self._owns_lock:
            self._lock.release()
        self._lock = None

    def single(self) -> "TaskSession":
        """A session for one more entry that acts at once, under this session's lock (prune)."""
        self.hold()
        return TaskSession(self.module, self.host, self.backends, lock=self._lock)

    # Host reads -------------------------------------------------------

    def hold(self) -> None:
        """Take the host lock, if this session does not hold it yet: before the first host read."""
        if self._lock is None:
            self._lock = self.host.lock(shared=self.check_mode)

    def mountinfo(self) -> list:
        """This mount namespace's mountinfo entries, read once until the host changes."""
        self.hold()
        if self._mountinfo is None:
            self._mountinfo = self.host.read_mountinfo()
        return self._mountinfo

    def defaults(self) -> dict:
        """The overlay module's effective defaults (its parameters), read once."""
        self.hold()
        if self._defaults is None:
            self._defaults = self.host.read_defaults()
        return self._defaults

    def facts(self) -> HostFacts:
        """What rendering persisted forms depends on, read once."""
        self.hold()
        if self._facts is None:
            host = self.host
            module = self.module
            # mount -V and systemctl --version run only if a rendering asks (HostFacts says when).
            self._facts = HostFacts(host.lowerdir_plus(), lambda: host.mount_fsconfig(module), host.systemd_booted(),
                                    lambda: host.systemd_version(module))
        return self._facts

    def memo_for(self, read: Any, key: str, value: Any = None) -> Any:
        """What was derived under ``key`` from ``read`` (a host read of this session, such as mountinfo).

        With ``value``, keep it and return it. Kept until a new read replaces
        ``read`` (after a change), so nothing derived outlives what it was
        derived from.
        """
        if self._derived[0] is not read:
            self._derived = (read, {})
        if value is not None:
            self._derived[1][key] = value
        return self._derived[1].get(key)

    def namespaces(self) -> Any:
        """The other mount namespaces and their mounts (``_host.namespaces.read_view``), read once.

        For the checks of a mount only: what is planned to be unmounted is
        checked against the host as it is then.
        """
        self.hold()
        if self._view is None:
            self._view = self.host.read_view()
        return self._view

    def other_overlays(self) -> Dict[Any, list]:
        """The overlays of the other namespaces by upper and work dir (``_host.namespaces.overlay_dirs``), once."""
        if self._others is None:
            self._others = self.host.overlay_dirs(self.namespaces())
        return self._others

    def link_times(self) -> Any:
        """Where live layer paths lead and how old their links are (``_host.live_paths.LinkTimes``).

        One for the run, so that the overlays of a batch share the reads of
        the dirs they have in common; a new one after every change.
        """
        self.hold()
        if self._links is None:
            self._links = self.host.link_times()
        return self._links

    def _remembered(self, key: Any, path: str, compute: Callable[[], str]) -> str:
        """``compute()``, the resolution of ``path``, kept under ``key`` until a change can alter it.

        A batch resolves the same paths when it checks its fstab lines, when
        each entry is declared and when its live mount is read, and every
        entry names the same fstab, unit dir, links dir and often the same
        base layer. A resolution that followed no symlink depends only on
        the dirs along the path itself, so it is kept until a change is made
        at or above it (:meth:`changed`); one that followed a symlink may
        depend on any dir, and is dropped at every change. A computation
        that raised is not kept, so it is made (and raises) again next time.
        """
        self.hold()
        found = self._memo.get(key)
        if found is None:
            found = self._memo[key] = compute()
            plain = posixpath.normpath(path)
            if found != plain:
                self._followed.add(key)
            else:
                for parent in ancestors(plain):
                    self._below.setdefault(parent, set()).add(key)
        return found

    def realpath(self, path: str) -> str:
        """os.path.realpath (asked of the kernel), once per path until a change can alter it."""
        return self._remembered(path, path, lambda: self.host.realpath(path))

    def resolve_safely(self, field: str, path: str) -> str:
        """``_host.safe_paths.resolve_safely``, once per path until a change can alter it."""
        return self._remembered(("safe", path), path, lambda: self.host.resolve_safely(field, path))

    def changed(self, mountinfo: Optional[list] = None, paths: Optional[List[str]] = None) -> None:
        """The host changes now: drop the reads a change makes stale (mountinfo, resolved paths, link times).

        ``mountinfo`` is a read made after the change. ``paths``: where the
        change is made (a mount point, a created dir, a written file); the
        resolutions of paths at or below them, and every one that followed a
        symlink, are dropped. Without ``paths`` every resolution is. The
        overlay module's defaults and the host facts stay: mounting changes
        neither.
        """
        self._mountinfo = mountinfo
        self._links = None
        if paths is None:
            self._memo, self._below, self._followed, self.nodes = {}, {}, set(), {}
            return
        for key in self._followed:
            self._memo.pop(key, None)
        self._followed = set()
        for path in paths:
            for key in self._below.pop(posixpath.normpath(path), ()):
                self._memo.pop(key, None)

    def saw(self, mountinfo: Optional[list], unless_read: bool = False) -> None:
        """``mountinfo`` shows the host as it is now: keep it for the next entry.

        ``unless_read``: keep a read made since instead, if there is one.
        """
        if mountinfo is not None and not (unless_read and self._mountinfo is not None):
            self._mountinfo = mountinfo

    def clean_stale(self, path: Optional[str]) -> None:
        """Remove the temp files a killed run left next to ``path`` (None: nothing), once per run."""
        if path is not None and path not in self._cleaned:
            self._cleaned.add(path)
            self.host.clean_stale_temps(path)

    # Grouping (a batch) ---------------------------------------------

    def takes_down(self, paths: List[str]) -> bool:
        """Whether this run may unmount the overlays at ``paths`` because it mounts them again later."""
        return False

    def wait_for(self, lowers: List[str], others: List[str]) -> bool:
        """Settle the group first when an entry with these paths meets one of its mounts."""
        return False

    def join(self, entry: Any, mounted: bool) -> None:
        """Leave ``entry``'s verification (``mounted``) and deferred writes to the group."""
        raise NotImplementedError("%s verifies and writes each entry at once" % type(self).__name__)


class TaskSession(Session):
    """One overlay_mount task: every mount verified at once, every file written at once."""


class BatchSession(Session):
    """overlay_mounts: mounts verified in groups, fstab written once per group.

    ``pending`` holds the entries whose mounts wait for the group's check
    (``pending.PendingMounts``); ``writes`` the deferred writes, by
    ``(backend class, location)``. :meth:`settle` is ``_converge.batch.settle``,
    given when the session is made, so that this file stays free of the
    converge's steps.
    """

    grouped = True

    def __init__(self, module: Any, settle: Callable[["BatchSession"], None], host: Optional[Host] = None,
                 backends: Optional[Tuple[type, ...]] = None) -> None:
        super().__init__(module, host, backends)
        self.pending = PendingMounts()
        self.writes: Dict[Tuple[type, str], List[Tuple[Any, Any]]] = {}
        self._settle = settle
        #: The resolved mount points of the set-up entries not carried out yet.
        self.later: set = set()

    def takes_down(self, paths: List[str]) -> bool:
        return bool(paths) and set(paths) <= self.later

    def wait_for(self, lowers: List[str], others: List[str]) -> bool:
        if self.pending and self.pending.touches(lowers, others):
            self.settle()
            return True
        return False

    def join(self, entry: Any, mounted: bool) -> None:
        """Leave the rest of ``entry`` (verify, write fstab) to the group (:meth:`settle`).

        Only an entry whose steps all succeeded joins: a failed one has been
        rolled back, and its waiting edits are dropped with it.
        """
        for location, backend in entry.ctx.deferred:
            self.writes.setdefault((type(backend), location), []).append((entry, backend))
        decl = entry.decl
        if mounted:
            self.pending.add(entry, decl.layers, entry.meeting_paths())
        else:
            self.pending.add(entry, [], [decl.path])

    def settle(self) -> None:
        """Verify the group's mounts with one mountinfo read, then write its files once."""
        self._settle(self)

    def close(self) -> None:
        try:
            self.settle()  # every mount of the batch is verified, whatever happened meanwhile
        finally:
            super().close()
