# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The live overlay at a mount point, and how it differs from a declaration. Pure.

The live side comes in as mountinfo entries, the host facts as plain
values; ``_converge.plan.make_plan`` decides what to do about the
differences.
"""

from typing import Any, Callable, Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple

from ansible_collections.overlayfs.mounts.plugins.module_utils._host.mounting import links_dir_for
from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.mountinfo import (
    engine_layout,
    engine_of,
    latest_on_path,
    listed_position,
    mounts_at,
    overlay_config,
    resolve_paths,
    system_overlay,
)
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.mount_flags import (
    flag_differences,
    live_flags,
    superblock_differs,
)
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.declaration import DEFAULT_LINKS_DIR
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.paths import at_or_inside, normalize, same_path
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.stack_refusals import shadowed_reason
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.overlay_options import (
    live_config,
    option_differences,
    parse_options,
    resolve,
    visible_options,
)


class LiveOverlay(dict):
    """An overlay as mountinfo shows it: the module's ``live`` result.

    ``effective`` holds the value of every overlay option the kernel applies
    (shown or default), which comparisons use; it is not part of the result.
    Neither are ``covered`` (the mount on top of this overlay at its mount
    point, as :func:`mount_record` describes it, or None: set by
    :func:`observe`) and ``shadowed`` (the dirs the overlay serves although
    a later mount hides their paths: :func:`shadowed_dirs`); both become
    drift rows.
    """

    def __init__(self, fields: Mapping[str, Any], effective: Dict[str, Any]) -> None:
        super().__init__(fields)
        self.effective = effective
        self.covered: Optional[Dict[str, Any]] = None
        self.shadowed: List[Dict[str, Any]] = []


class _ObservedFields(NamedTuple):
    live: Optional[LiveOverlay]
    stacked: int
    foreign: Optional[str]


class Observed(_ObservedFields):
    """What is mounted at a mount point: the overlay that counts (a LiveOverlay
    or None), how many overlays are stacked there, and the fstype of a
    non-overlay mount on top (or None).

    ``covered``: when the declared overlay (``ours`` of :func:`observe`) is
    in the stack but another mount is on top of it, that mount
    (:func:`mount_record`); ``live`` is then the declared overlay beneath
    and ``stacked`` counts it and the copies of it right under it. Still a
    triple when unpacked (``live, stacked, foreign = observe(...)``).
    """

    def __new__(cls, live: Optional[LiveOverlay], stacked: int, foreign: Optional[str],
                covered: Optional[Dict[str, Any]] = None) -> "Observed":
        self = super().__new__(cls, live, stacked, foreign)
        self.covered = covered
        return self


def mount_record(entry: Any) -> Dict[str, Any]:
    """``{type, source, mount_id, path}`` of a mountinfo entry: how results name another mount."""
    return {"type": entry.fstype, "source": entry.source, "mount_id": entry.mount_id, "path": entry.mount_point}


def is_ours(config: Optional[Mapping[str, Any]], live: Optional[Mapping[str, Any]]) -> Optional[bool]:
    """Whether ``live`` is the overlay of ``config`` (a declared or persisted config); None when ``config`` cannot tell.

    An overlay with an upper dir is known by its upper and work dir (one
    pair serves one overlay at a time); a read-only one by its layers. Its
    options, flags, and with an upper its layers, may still differ: it is
    the declaration's overlay to re-layer, not another one's. A config that
    names neither (a ``state: unmounted`` with a path alone) cannot tell.
    """
    if config is None or not (config.get("upperdir") or config.get("lowerdir")):
        return None
    if live is None:
        return False
    if config.get("upperdir"):
        return same_path(live["upperdir"], config["upperdir"]) and same_path(live["workdir"], config.get("workdir"))
    return live["upperdir"] is None and same_path(live["lowerdir"], config["lowerdir"]) and same_path(
        live.get("datadir") or [], config.get("datadir") or [])


def managed_here(backends: Sequence[Any]) -> bool:
    """True when one of ``backends`` (read, ``_persist.backend.Backend``) found a line or unit this collection marked as its own."""
    return any((type(backend).first(backend.persisted(after=False).get(backend.name)) or {}).get("managed")
               for backend in backends)


def observe(path: str, entries: Sequence[Any], defaults: Mapping[str, Any], links_root: Optional[str] = None,
            exists: Optional[Callable[[str], bool]] = None, realpath: Optional[Callable[[str], str]] = None,
            links: Any = None, ours: Optional[Mapping[str, Any]] = None, own: bool = False) -> Observed:
    """:class:`Observed` at ``path`` among the mountinfo ``entries``.

    ``links_root``: where this collection keeps short layer links, against
    which relative layers of its own mounts resolve (then the default links
    root, where a mount through links elsewhere leaves a pointer to them:
    :func:`links_bases`); ``exists``, ``realpath`` and ``links`` as for
    :func:`live_state`; ``own``: the mount point carries the collection's
    own marks (a managed fstab line or unit), so no container engine is
    taken to own its overlay for its layout.

    ``ours``: the declared config (``Declaration.config()``) whose overlay
    is looked for in the stack (:func:`is_ours`). When the top of the
    stack is not it but an overlay beneath is, that one is ``live`` and the
    top mount ``covered``. Otherwise (and without ``ours``, or one that
    names no dirs) the top overlay counts, and ``stacked`` counts it and
    the overlays right under it.
    """
    stack = mounts_at(entries, path)
    if not stack:
        return Observed(None, 0, None)
    bases = links_bases(path, links_root)

    def state(entry):
        return live_state(entry, defaults, exists=exists, realpath=realpath, bases=bases, entries=entries,
                          links=links, own=own)

    return _in_stack(stack, state, ours)


def listed_overlay(path: str, top_overlay: Any, entries: Sequence[Any], defaults: Mapping[str, Any],
                   links_root: Optional[str], exists: Optional[Callable[[str], bool]], links: Any,
                   ours: Optional[Mapping[str, Any]] = None, own: bool = False) -> LiveOverlay:
    """The overlay ``overlay_mount_info`` lists at ``path``, ``top_overlay`` being the last overlay mounted there.

    The persisted overlay (``ours``, the first persisted config) where the
    stack holds it, else ``top_overlay``; either is ``covered`` when
    another mount sits on top of it. ``own`` and the rest as for :func:`observe`.
    """
    bases = links_bases(path, links_root) if links_root else []

    def state(entry):
        return live_state(entry, defaults, exists=exists, bases=bases, entries=entries, links=links, own=own)

    stack = mounts_at(entries, path)
    seen = _in_stack(stack, state, ours)
    if seen.live is not None:
        return seen.live
    live = state(top_overlay)
    live.covered = mount_record(stack[-1])
    return live


def _in_stack(stack, state, ours):
    """:class:`Observed` of a non-empty ``stack`` (oldest first), ``state`` making a LiveOverlay of an entry."""
    top = stack[-1]
    top_live = state(top) if top.is_overlay else None
    if top_live is not None and is_ours(ours, top_live) is not False:
        return Observed(top_live, _count_stacked(stack), None)
    if is_ours(ours, None) is not None:
        for number in range(len(stack) - 2, -1, -1):
            beneath = state(stack[number]) if stack[number].is_overlay else None
            if beneath is not None and is_ours(ours, beneath):
                beneath.covered = mount_record(top)
                return Observed(beneath, _count_stacked(stack[:number + 1]), None if top_live is not None else top.fstype,
                                beneath.covered)
    if top_live is None:
        return Observed(None, 0, top.fstype)
    return Observed(top_live, _count_stacked(stack), None)


def _count_stacked(stack):
    """How many overlays are stacked at the top of ``stack`` (oldest first)."""
    count = 0
    for entry in reversed(stack):
        if not entry.is_overlay:
            break
        count += 1
    return count


def links_bases(path: str, links_root: Optional[str] = None) -> List[str]:
    """The dirs where this collection's short links for the overlay at ``path`` may be: under
    ``links_root``, then under the default root, which holds a pointer to links kept elsewhere."""
    roots = [root for root in (links_root, DEFAULT_LINKS_DIR) if root]
    return list(dict.fromkeys(links_dir_for(root, path) for root in roots))


def live_state(entry: Any, defaults: Mapping[str, Any], exists: Optional[Callable[[str], bool]] = None,
               realpath: Optional[Callable[[str], str]] = None, bases: Sequence[str] = (),
               entries: Sequence[Any] = (), links: Any = None, own: bool = False) -> LiveOverlay:
    """The normalised live state of an overlay mountinfo entry.

    Relative layer, upper and work paths are resolved against one base (see
    _mountinfo.resolve_paths: ``bases``, this collection's short-link
    directories for the mount point, then the engine storage root the mount
    point sits in) when ``exists`` is given; ``resolved`` is False when some
    stay relative. A layer named through one of this collection's short
    links shows as the link's target. ``links`` (``_host.live_paths.LinkTimes``)
    tells what every absolute path names now (:func:`settle_paths`): a path
    through a symlink is what the mount serves only when every symlink on it
    is older than the mount; otherwise it stays as shown and is listed in
    ``unknown``. Without ``links``, ``realpath`` alone can only tell a path
    without symlinks (kept) from one with some (unknown); with neither,
    paths stay as shown.
    ``engine`` names the container engine whose storage layout the mount
    has (``docker``, ``containers-storage``), or the system tool that
    mounted it (``systemd-sysext``, ``systemd-confext``, ``composefs``; told
    by ``_formats.mountinfo.system_overlay`` from the mount source, or from an
    EROFS top layer among ``entries``), or is None. No container engine is
    named for an overlay with the collection's own marks: ``own`` (a line
    or unit it manages at the mount point), or layers named through its
    short links (resolved against one of ``bases``); the system tools'
    overlays are known by their own marks (the mount source) and stay theirs.
    The dirs the overlay serves though a mount made after it hides their
    paths are the ``shadowed`` attribute (:func:`shadowed_dirs`).
    """
    cfg = overlay_config(entry)
    paths = resolve_paths(cfg, entry.mount_point, exists, bases)
    engine = system_overlay(entry, cfg, entries, own=own)
    if engine is None and not own and not (paths["base"] is not None and paths["base"] in bases):
        engine = engine_of(engine_layout(entry.mount_point, paths), exists)

    settled, unknown = settle_paths(cfg, paths, links if links is not None else realpath_links(realpath), bases)
    effective, foreign = live_config(cfg["options"], defaults, has_upper=cfg["upperdir"] is not None)
    live = _live_overlay(entry, cfg, paths, settled, unknown, engine, effective, foreign, defaults)
    if entries:
        live.shadowed = shadowed_dirs(entry, entries, paths, settled, unknown)
    return live


def _live_overlay(entry, cfg, paths, settled, unknown, engine, effective, foreign, defaults):
    return LiveOverlay({
        "path": entry.mount_point,
        "lowerdir": settled["lowerdir"],
        "datadir": settled["datadir"],
        "upperdir": settled["upperdir"],
        "workdir": settled["workdir"],
        "unknown": unknown,
        "resolved": paths["resolved"],
        "relative_to": paths["base"],
        "engine": engine,
        "options": visible_options(effective, defaults),
        "other_options": foreign,
        "shown_options": cfg["options"],
        "read_only": "ro" in entry.mount_options or cfg["vfs"] == "ro",
        "flags": live_flags(entry.mount_options),
        "superblock": cfg["vfs"],
        "mount_id": entry.mount_id,
        "source": entry.source,
        "form": cfg["form"],
    }, effective)


def unknown_field(live: Mapping[str, Any], field: str) -> bool:
    """True when a path of ``field`` (``lowerdir``, ``upperdir``...) of ``live`` is unknown (:func:`settle_paths`)."""
    return any(row["field"].partition("[")[0] == field for row in live.get("unknown") or ())


def realpath_links(realpath: Optional[Callable[[str], str]], trusted: bool = False) -> Any:
    """A stand-in for ``_host.live_paths.LinkTimes`` that has ``realpath`` alone (None: None).

    It cannot tell a symlink's age: every path that ``realpath`` changes is
    unknown, unless ``trusted`` (a caller that knows no link moved since the
    mount, such as a test of container layouts): then it is what realpath says.
    """
    if realpath is None:
        return None

    class RealpathOnly:
        follow = True

        @staticmethod
        def trace(path):
            real = realpath(path)
            return real, (None if trusted or real == normalize(path) else _NEVER_OLDER)

        @staticmethod
        def own_link(path):
            return realpath(path)

        @staticmethod
        def mount_time(_workdir):
            return 0

    return RealpathOnly()


# A symlink age no mount time is later than.
_NEVER_OLDER = 1 << 62

UNKNOWN_REASON = (
    "mounted through the symlink path %s, which was changed after the mount was made (or cannot be "
    "shown to be older than it): the directory the mount serves cannot be known. Unmount and mount "
    "it again (overlay_mount re-layers it when it is declared) to make it known")


def settle_paths(cfg: Mapping[str, Any], paths: Mapping[str, Any], links: Any,
                 own_bases: Sequence[str] = ()) -> Tuple[Dict[str, Any], List[Dict[str, str]]]:
    """``({lowerdir, datadir, upperdir, workdir}, unknown)``: the paths of ``paths`` as the mount serves them.

    ``cfg`` is the ``overlay_config`` (the paths as the kernel shows them),
    ``paths`` its ``resolve_paths``. A path made absolute against one of
    ``own_bases`` (this collection's short-link dirs) is the target of that
    link. Then, with ``links``: a path with no symlink on it is kept
    (normalised); one whose symlinks are all older than the mount
    (``links.mount_time``) is the directory they lead to; any other stays
    as shown and gets an ``unknown`` row ``{field, path, reason}``.
    """
    out = {"lowerdir": [], "datadir": [], "upperdir": None, "workdir": None}
    unknown: List[Dict[str, str]] = []
    if links is None:
        out.update((name, paths[name]) for name in out)
        return out, unknown
    own = paths["base"] is not None and paths["base"] in own_bases
    since: List[int] = []

    def settle(field, given, path):
        if own and given[:1] != "/" and path[:1] == "/":
            path = links.own_link(path) or path
        if path[:1] != "/":
            return path  # relative, and nothing held it: as the kernel shows it
        real, newest = links.trace(path)
        if newest is None:
            return real
        if not since:
            since.append(links.mount_time(paths["workdir"]))
        if newest < since[0]:
            return real
        unknown.append({"field": field, "path": path, "reason": UNKNOWN_REASON % path})
        return path

    for name in ("lowerdir", "datadir"):
        out[name] = [settle("%s[%d]" % (name, i), given, path)
                     for i, (given, path) in enumerate(zip(cfg[name], paths[name]))]
    for name in ("upperdir", "workdir"):
        if paths[name] is not None:
            out[name] = settle(name, cfg[name], paths[name])
    return out, unknown


def shadowed_dirs(entry: Any, entries: Sequence[Any], paths: Mapping[str, Any], settled: Mapping[str, Any],
                  unknown: Sequence[Mapping[str, str]] = ()) -> List[Dict[str, Any]]:
    """``[{field, path, mount, reason}]``: the dirs of the overlay ``entry`` whose paths a later mount hides.

    The kernel lists mounts in the order they were attached
    (``_formats.mountinfo.listed_position``), and an overlay keeps the
    directories its paths named when it was mounted. A dir whose path now
    crosses a mount listed after the overlay (``latest_on_path``: attached at
    the dir or at one of its parents, after the overlay) is shadowed: the
    overlay serves what the path showed before. Each dir is checked as
    mountinfo names it (``paths``, relative ones made absolute; for the
    collection's short links, the link) and as it resolves (``settled``:
    the link's target), unless that is ``unknown``. Mounts at or under the
    overlay's own mount point do not count: one on top of it covers it
    rather than its dirs. ``mount`` is the later mount (``mount_record``).
    """
    position = listed_position(entries, entry)
    if position < 0:
        return []
    vague = {row["field"] for row in unknown}
    out = []
    for field, given, served in _dir_fields(paths, settled):
        for path in (given, None if field in vague else served):
            if not path or path[:1] != "/":
                continue
            later = latest_on_path(entries, normalize(path))
            if later is None or listed_position(entries, later) <= position or at_or_inside(later.mount_point, entry.mount_point):
                continue
            mount = mount_record(later)
            out.append({"field": field, "path": path, "mount": mount, "reason": shadowed_reason(field, path, mount)})
            break
    return out


def _dir_fields(paths, settled):
    """``(field, path as resolved, path as settled)`` for each layer, data layer, upper and work dir."""
    for name in ("lowerdir", "datadir"):
        for number, (given, served) in enumerate(zip(paths[name], settled[name])):
            yield "%s[%d]" % (name, number), given, served
    for name in ("upperdir", "workdir"):
        if paths[name] is not None:
            yield name, paths[name], settled[name]


def public_live(live: Optional[LiveOverlay]) -> Optional[Dict[str, Any]]:
    """``live`` as a plain dict for module results (None stays None)."""
    return None if live is None else dict(live)


def differences(decl: Any, live: Optional[LiveOverlay], defaults: Mapping[str, Any]) -> List[Dict[str, Any]]:
    """``[{field, declared, live}]`` for every field in which live differs."""
    if live is None:
        return [{"field": "mounted", "declared": True, "live": False}]
    pairs = parse_options(decl.options)
    declared_cfg = resolve(pairs, defaults, decl.writable)
    out = stack_rows(live)
    for field in ("lowerdir", "upperdir", "workdir", "datadir"):
        want, have = getattr(decl, field), live.get(field, [] if field == "datadir" else None)
        if not same_path(want, have) or unknown_field(live, field):
            out.append({"field": field, "declared": want, "live": have})
    for name, want, have in option_differences(pairs, declared_cfg, live.effective, live["shown_options"]):
        out.append({"field": "options.%s" % name, "declared": want, "live": have})
    return out + flag_rows(decl.flags, decl.writable, live)


def stack_rows(live: Mapping[str, Any]) -> List[Dict[str, Any]]:
    """``[{field, declared, live}]`` for where ``live`` sits among other mounts.

    ``covered``: another mount is on top of the overlay at its mount point
    (live: that mount, ``{type, source, mount_id, path}``); ``shadowed``: dirs
    the overlay serves though a later mount hides their paths (live:
    ``[{field, path, mount}]``, see :func:`shadowed_dirs`).
    """
    out = []
    covered = getattr(live, "covered", None)
    if covered:
        out.append({"field": "covered", "declared": None, "live": dict(covered)})
    shadowed = getattr(live, "shadowed", None)
    if shadowed:
        out.append({"field": "shadowed", "declared": [],
                    "live": [{"field": row["field"], "path": row["path"], "mount": row["mount"]} for row in shadowed]})
    return out


#: The drift fields of :func:`stack_rows`.
STACK_FIELDS = ("covered", "shadowed")


def flag_rows(flags: Sequence[str], writable: bool, live: Mapping[str, Any]) -> List[Dict[str, Any]]:
    """``[{field, declared, live}]`` for the per-mount flags of ``live`` that differ from ``flags``.

    ``flags.<group>`` (``flags.ro``, ``flags.suid``, ``flags.atime``...) for
    a per-mount flag; ``superblock`` when the overlay has an upper dir (live
    and declared), is not declared ``ro``, and is read-only as a whole.
    """
    out = [{"field": "flags." + name, "declared": want, "live": have}
           for name, want, have in flag_differences(flags, live.get("flags") or ())]
    if superblock_differs(flags, writable and live.get("upperdir") is not None, live.get("superblock")):
        out.append({"field": "superblock", "declared": "rw", "live": "ro"})
    return out


FLAG_FIELDS = ("flags.", "superblock")


def flags_only(diffs: Sequence[Mapping[str, Any]]) -> bool:
    """True when ``diffs`` (of :func:`differences`) are all per-mount flags: a remount, no re-layering."""
    return bool(diffs) and all(d["field"].startswith(FLAG_FIELDS) for d in diffs)
