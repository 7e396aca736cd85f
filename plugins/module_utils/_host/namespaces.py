# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Who holds an overlay, in every mount namespace of the host.

A container started on a merged dir (``podman run --rootfs``, LXC,
systemd-nspawn) or a service with ``PrivateTmp=yes`` has its own mount
namespace with its own copy of the overlay's mount. Unmounting ours does
not free a copy that no propagation reaches: the overlay's superblock lives
on there, and a new overlay on the same upper dir would make two live
overlays write one upper. A copy that our unmount does reach fails the
unmount with EBUSY while a process uses it. This module finds both.

One ``/proc/PID/mountinfo`` per distinct ``/proc/PID/ns/mnt`` covers the
host. Processes are matched by mount ID, which is global (the same copy
has the same ID whatever namespace reads it): the ``mnt_id`` of each open
file (``/proc/PID/fdinfo``) and of the process's root, working dir and
executable (opened with ``O_PATH``). Mapped files are matched by path in
the process's own view. Costs one pass over /proc, linear in the number of
processes, and runs only when an overlay is about to be unmounted or
mounted.
"""

import os
import posixpath
import re
from typing import Any, Dict, Iterable, List, NamedTuple, Optional, Sequence, Set, Tuple

from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.mountinfo import (
    MountEntry,
    mounts_at,
    overlay_config,
    parse,
    submounts,
)
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.paths import at_or_inside

PROC = "/proc"
#: Processes named at most in one refusal: enough to act on, short enough to read.
HOLDER_LIMIT = 50
# File descriptors that are never a file on a mount.
_NOT_FILES = ("socket:", "pipe:", "anon_inode:", "/memfd:")


class Namespace(NamedTuple):
    """A mount namespace: its id (``mnt:[N]``), its processes, and its mounts as ``reader`` sees them."""

    ident: str
    pids: List[int]
    reader: int
    entries: List[MountEntry]


class HostView(NamedTuple):
    """Every mount namespace of the host: ``own`` is this process's, ``others`` the rest."""

    own: Optional[str]
    members: Dict[str, List[int]]
    others: List[Namespace]


# Reads ------------------------------------------------------------------

def read_view(proc: str = PROC) -> HostView:
    """The mount namespaces of the host and the mounts of each (not ours: the session reads that)."""
    try:
        own = os.readlink(proc + "/self/ns/mnt")
    except OSError:
        own = None
    members: Dict[str, List[int]] = {}
    for name in os.listdir(proc):
        if name.isdigit():
            try:
                members.setdefault(os.readlink("%s/%s/ns/mnt" % (proc, name)), []).append(int(name))
            except OSError:
                continue  # gone, or a kernel thread we may not look at
    others = []
    for ident, pids in members.items():
        if ident == own:
            continue
        for pid in pids:
            try:
                with open("%s/%d/mountinfo" % (proc, pid), encoding="utf-8", errors="surrogateescape") as handle:
                    entries = parse(handle.read())
            except OSError:
                continue
            others.append(Namespace(ident, pids, pid, entries))
            break
    return HostView(own, members, others)


def _mount_id_of(path: str) -> Optional[int]:
    """The mount ID of what the magic link ``path`` (``/proc/PID/cwd``...) leads to, or None."""
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return _fdinfo_mount_id("%s/self/fdinfo/%d" % (PROC, fd))
    finally:
        os.close(fd)


def _device_of(path: str) -> Optional[int]:
    try:
        return os.stat(path).st_dev
    except OSError:
        return None


def device_number(field: str) -> Optional[int]:
    """The device number of mountinfo's ``major:minor`` field, or None."""
    try:
        major, minor = field.split(":")
        return os.makedev(int(major), int(minor))
    except ValueError:
        return None


def _fdinfo_mount_id(path: str) -> Optional[int]:
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as handle:
            for line in handle:
                if line.startswith("mnt_id:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def process_uses(pid: int, ids: Set[int], points: Sequence[str], own_view: bool, proc: str = PROC,
                 devices: Optional[Set[int]] = None) -> List[str]:
    """What process ``pid`` uses of the mounts ``ids`` (mount IDs) mounted at ``points`` in its view.

    ``own_view``: the process shares our namespace, so a path it shows is a
    path we see (and files outside ``points`` need no closer look);
    ``devices``: the devices of those mounts, when known.
    """
    base = "%s/%d" % (proc, pid)
    uses = []
    for link in ("root", "cwd", "exe"):
        if link != "exe" and devices is not None and _device_of(base + "/" + link) not in devices:
            continue  # a dir shows its mount's device: a stat rules most processes out
        if _mount_id_of(base + "/" + link) in ids:
            uses.append("%s %s" % (link, _readlink(base + "/" + link)))
    try:
        fds = os.listdir(base + "/fd")
    except OSError:
        fds = []
    for fd in fds:
        target = _readlink("%s/fd/%s" % (base, fd))
        if target.startswith(_NOT_FILES) or (own_view and not any(at_or_inside(target, p) for p in points)):
            continue
        if _fdinfo_mount_id("%s/fdinfo/%s" % (base, fd)) in ids:
            uses.append("fd %s %s" % (fd, target))
    return uses + _mapped(base, points)


def _readlink(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return "?"


def _mapped(base: str, points: Sequence[str]) -> List[str]:
    """``map <file>`` for each file at or below one of ``points`` the process maps, once each."""
    try:
        with open(base + "/maps", encoding="utf-8", errors="surrogateescape") as handle:
            text = handle.read()
    except OSError:
        return []
    if not any(point in text for point in points):
        return []  # most processes: one substring search, no line split
    uses, seen = [], set()
    for line in text.splitlines():
        parts = line.split(None, 5)
        if len(parts) == 6:
            target = parts[5]
            if target[:1] == "/" and target not in seen and any(at_or_inside(target, p) for p in points):
                seen.add(target)
                uses.append("map %s" % target)
    return uses


def describe_process(pid: int, proc: str = PROC) -> Dict[str, Any]:
    """``{pid, command}`` plus ``owner`` (a container or unit) when its cgroup tells it."""
    base = "%s/%d" % (proc, pid)
    try:
        with open(base + "/comm", encoding="utf-8", errors="surrogateescape") as handle:
            command = handle.read().strip()
    except OSError:
        command = "?"
    found: Dict[str, Any] = {"pid": pid, "command": command}
    try:
        with open(base + "/cgroup", encoding="utf-8", errors="surrogateescape") as handle:
            owner = cgroup_owner(handle.read())
    except OSError:
        owner = None
    if owner:
        found["owner"] = owner
    return found


def stat_identity(path: str) -> Optional[Tuple[int, int]]:
    """``(st_dev, st_ino)`` of ``path``, or None when it cannot be reached."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


# Pure -----------------------------------------------------------------

_OWNERS = (
    (re.compile(r"libpod-(?:conmon-)?([0-9a-f]{12})[0-9a-f]*"), "podman container %s"),
    (re.compile(r"docker-([0-9a-f]{12})[0-9a-f]*\.scope"), "docker container %s"),
    (re.compile(r"/docker/([0-9a-f]{12})[0-9a-f]*"), "docker container %s"),
    (re.compile(r"lxc\.payload\.([^/]+)"), "lxc container %s"),
    (re.compile(r"/lxc/([^/]+)"), "lxc container %s"),
    (re.compile(r"machine-([^/]+)\.scope"), "machine %s"),
    (re.compile(r"/([^/]+\.service)(?:/|$)"), "unit %s"),
)


def cgroup_owner(text: str) -> Optional[str]:
    """The container or systemd unit a ``/proc/PID/cgroup`` text names, or None.

    The unified (``0::``) line is read first, then the others. A unit run
    inside a container is named with it: ``unit app.service in podman
    container 958ae1c4dc49``.
    """
    lines = [line.split(":", 2) for line in text.splitlines() if line.count(":") >= 2]
    lines.sort(key=lambda fields: fields[0] != "0")
    for path in (fields[2] for fields in lines):
        found = sorted((match.start(), form % match.group(1).replace("\\x2d", "-"))
                       for pattern, form in _OWNERS for match in pattern.finditer(path))
        if found:
            return " in ".join(name for _start, name in reversed(found))
    return None


def _peer_groups(entry: Optional[MountEntry]) -> Set[str]:
    """The peer group numbers an entry sends to or receives from (``shared:N``, ``master:N``)."""
    if entry is None:
        return set()
    return {field.split(":", 1)[1] for field in entry.optional if field.startswith(("shared:", "master:"))}


def reached(copy: MountEntry, theirs: Sequence[MountEntry], ours: MountEntry, our_entries: Sequence[MountEntry]) -> bool:
    """Whether our unmount of ``ours`` propagates to ``copy`` (a mount of the same overlay elsewhere).

    The kernel unmounts the copies on mounts that receive propagation from
    our mount's parent; a copy whose parent shares no peer group with it
    survives our unmount.
    """
    by_id = {e.mount_id: e for e in theirs}
    our_parent = next((e for e in our_entries if e.mount_id == ours.parent_id), None)
    return bool(_peer_groups(by_id.get(copy.parent_id)) & _peer_groups(our_parent))


def copies(namespace: Namespace, device: str) -> List[MountEntry]:
    """The mounts of the superblock ``device`` (mountinfo's ``major:minor``) in ``namespace``."""
    return [e for e in namespace.entries if e.device == device]


def below(entries: Iterable[MountEntry], points: Sequence[str]) -> List[MountEntry]:
    """The entries mounted at or below one of ``points``."""
    return [e for e in entries if any(at_or_inside(e.mount_point, p) for p in points)]


def overlay_dirs_of(entry: MountEntry) -> List[str]:
    """The absolute upper and work dirs of the overlay ``entry``, as its mount options name them."""
    cfg = overlay_config(entry)
    return [d for d in (cfg["upperdir"], cfg["workdir"]) if d and d[:1] == "/"]


def shares_dirs(entry: MountEntry, identity: Any) -> List[Tuple[Any, str]]:
    """The keys under which the overlay ``entry`` (of another namespace) uses its upper and work dirs.

    ``identity(path)``: the identity (``st_dev, st_ino``) of ``entry``'s
    path as its namespace sees it; when the path cannot be reached there it
    was given in another view (a container's overlay, mounted before the
    container's root was), and its key is the path itself.
    """
    cfg = overlay_config(entry)
    keys = []
    for theirs in (cfg["upperdir"], cfg["workdir"]):
        if theirs and theirs[:1] == "/":
            found = identity(theirs)
            keys.append((found if found is not None else posixpath.normpath(theirs), theirs))
    return keys


GONE = object()  # what _identity_in answers for a namespace that no process holds any more


def _still_in(pid: int, ident: str, proc: str) -> bool:
    try:
        return os.readlink("%s/%d/ns/mnt" % (proc, pid)) == ident
    except OSError:
        return False


def _members(namespace: Namespace) -> List[int]:
    """The processes of ``namespace``, its reader first."""
    return [namespace.reader] + [p for p in namespace.pids if p != namespace.reader]


def live_member(namespace: Namespace, proc: str = PROC) -> Optional[int]:
    """A process of ``namespace`` that is still in it (its reader first), or None when none is left."""
    for pid in _members(namespace):
        if _still_in(pid, namespace.ident, proc):
            return pid
    return None


def _identity_in(namespace: Namespace, path: str, proc: str) -> Any:
    """The identity of ``path`` as ``namespace`` sees it; None when it cannot be reached there; GONE.

    Seen through a process of the namespace that is still in it: a process
    that ended between the scan and this look (a short-lived one can be the
    first of its namespace) reaches nothing, and is not taken to mean that
    the path is not there.
    """
    for pid in _members(namespace):
        found = stat_identity("%s/%d/root%s" % (proc, pid, path))
        if found is not None:
            return found
        if _still_in(pid, namespace.ident, proc):
            return None
    return GONE


def overlay_dirs(view: HostView, proc: str = PROC) -> Dict[Any, List[Tuple[Namespace, MountEntry]]]:
    """Every overlay of the other namespaces, by the identity (or path) of its upper and work dir.

    An overlay whose namespace no process holds any more by the time its
    dirs are looked at is left out: its dirs cannot be told apart from ours
    by identity, and a path alike names a dir of another filesystem as
    often as not (each host of a fleet on one machine has its own scratch
    at the same path). Made once per run: a batch asks it for each overlay it mounts.
    """
    index: Dict[Any, List[Tuple[Namespace, MountEntry]]] = {}
    for namespace in view.others:
        for entry in namespace.entries:
            if entry.fstype != "overlay":
                continue
            identities = {}
            for theirs in overlay_dirs_of(entry):
                identities[theirs] = _identity_in(namespace, theirs, proc)
            if GONE in identities.values():
                continue
            for key, _path in shares_dirs(entry, identities.get):
                index.setdefault(key, []).append((namespace, entry))
    return index


# The scan ---------------------------------------------------------------

def scan_holders(path: str, entries: Sequence[MountEntry], live: Optional[MountEntry],
                 mine: Optional[Dict[str, Optional[Tuple[int, int]]]] = None, proc: str = PROC,
                 view: Optional[HostView] = None,
                 others: Optional[Dict[Any, List[Tuple[Namespace, MountEntry]]]] = None) -> Dict[str, List[Dict[str, Any]]]:
    """Who holds the overlay ``live`` mounted at ``path`` (our ``entries``), in every namespace.

    Returns ``{processes, elsewhere, shared}``:

    - ``processes``: ``{pid, command, uses[, owner][, namespace]}`` of each
      process whose root, working dir, executable, open files or mapped
      files are on the mount, its submounts, or a copy of it elsewhere;
    - ``elsewhere``: ``{namespace, mount_point, pid, command[, owner]}`` for
      each copy of the overlay in another namespace that our unmount would
      not reach (``pid``: a process of that namespace);
    - ``shared``: the same, with ``dir``, for each other overlay in another
      namespace on one of the upper and work dirs of ``mine`` (canonical
      paths and their identities).

    ``view`` and ``others`` (:func:`read_view`, :func:`overlay_dirs`) are
    read when not given.
    """
    view = view if view is not None else read_view(proc)
    found: Dict[str, List[Dict[str, Any]]] = {"processes": [], "elsewhere": [], "shared": []}
    targets = {}
    if live is not None:
        stack = mounts_at(entries, path)
        ours = [stack[-1]] if stack else []
        mine_now = ours + submounts(entries, path)
        targets[view.own] = ({e.mount_id for e in mine_now}, [path], {device_number(e.device) for e in mine_now})
        for namespace in view.others:
            held = copies(namespace, live.device)
            if held:
                points = [copy.mount_point for copy in held]
                under = below(namespace.entries, points)
                targets[namespace.ident] = ({e.mount_id for e in under}, points, {device_number(e.device) for e in under})
                found["elsewhere"].extend(
                    _in(namespace, proc, mount_point=copy.mount_point)
                    for copy in held if not reached(copy, namespace.entries, live, entries))
    if mine:
        others = others if others is not None else overlay_dirs(view, proc)
        found["shared"] = _sharing(others, live, mine, proc)
    found["processes"] = _processes(view, targets, proc)
    return found


def _in(namespace: Namespace, proc: str, **more: Any) -> Dict[str, Any]:
    """A process of ``namespace`` that names it (one still in it, when any is), with ``more``."""
    pid = live_member(namespace, proc)
    return dict(describe_process(namespace.reader if pid is None else pid, proc), namespace=namespace.ident, **more)


def _sharing(others: Dict[Any, List[Tuple[Namespace, MountEntry]]], live: Optional[MountEntry],
             mine: Dict[str, Optional[Tuple[int, int]]], proc: str) -> List[Dict[str, Any]]:
    shared, seen = [], set()
    for path, ident in mine.items():
        for key in (ident, posixpath.normpath(path)):
            for namespace, entry in others.get(key, ()) if key is not None else ():
                if (live is not None and entry.device == live.device) or (namespace.ident, entry.mount_id) in seen:
                    continue
                seen.add((namespace.ident, entry.mount_id))
                shared.append(_in(namespace, proc, mount_point=entry.mount_point, dir=path))
    return shared


def _processes(view: HostView, targets: Dict[Optional[str], Tuple[Set[int], List[str], Set[Optional[int]]]],
               proc: str) -> List[Dict[str, Any]]:
    own_pid = os.getpid()
    holders = []
    for ident, (ids, points, devices) in targets.items():
        for pid in view.members.get(ident, ()) if ident is not None else ():
            if pid == own_pid:
                continue
            uses = process_uses(pid, ids, points, ident == view.own, proc, devices)
            if not uses:
                continue
            holder = describe_process(pid, proc)
            holder["uses"] = uses[:5]
            if ident != view.own:
                holder["namespace"] = ident
            holders.append(holder)
            if len(holders) >= HOLDER_LIMIT:
                return holders
    return holders


def describe(found: Dict[str, List[Dict[str, Any]]]) -> str:
    """The holders :func:`scan_holders` found, in words (empty: none)."""
    parts = []
    if found.get("processes"):
        parts.append("processes " + ", ".join(_process_words(h) for h in found["processes"]))
    for copy in found.get("elsewhere", ()):
        parts.append("its mount at %s in the mount namespace %s of %s, which an unmount here does not reach"
                     % (copy["mount_point"], copy["namespace"], _who(copy)))
    for other in found.get("shared", ()):
        parts.append("the overlay at %s in the mount namespace %s of %s, which uses the same %s"
                     % (other["mount_point"], other["namespace"], _who(other), other["dir"]))
    return "; ".join(parts)


def _who(holder: Dict[str, Any]) -> str:
    owner = ", %s" % holder["owner"] if holder.get("owner") else ""
    return "pid %d (%s%s)" % (holder["pid"], holder["command"], owner)


def _process_words(holder: Dict[str, Any]) -> str:
    owner = ", %s" % holder["owner"] if holder.get("owner") else ""
    where = " in the mount namespace %s" % holder["namespace"] if holder.get("namespace") else ""
    return "pid %d (%s%s: %s)%s" % (holder["pid"], holder["command"], owner, "; ".join(holder["uses"]), where)
