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
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.paths import normalize, same_path
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
    """

    def __init__(self, fields: Mapping[str, Any], effective: Dict[str, Any]) -> None:
        super().__init__(fields)
        self.effective = effective


class Observed(NamedTuple):
    """What is mounted at a mount point: the visible overlay (a LiveOverlay or
    None), how many overlays are stacked there, and the fstype of a non-overlay
    mount on top (or None)."""

    live: Optional[LiveOverlay]
    stacked: int
    foreign: Optional[str]


def observe(path: str, entries: Sequence[Any], defaults: Mapping[str, Any], links_root: Optional[str] = None,
            exists: Optional[Callable[[str], bool]] = None, realpath: Optional[Callable[[str], str]] = None,
            links: Any = None) -> Observed:
    """:class:`Observed` at ``path`` among the mountinfo ``entries``.

    ``links_root``: where this collection keeps short layer links, against
    which relative layers of its own mounts resolve (then the default links
    root, where a mount through links elsewhere leaves a pointer to them:
    :func:`links_bases`); ``exists``, ``realpath`` and ``links`` as for
    :func:`live_state`.
    """
    stack = mounts_at(entries, path)
    if not stack:
        return Observed(None, 0, None)
    if not stack[-1].is_overlay:
        return Observed(None, 0, stack[-1].fstype)
    count = 0
    for entry in reversed(stack):
        if not entry.is_overlay:
            break
        count += 1
    bases = links_bases(path, links_root)
    return Observed(live_state(stack[-1], defaults, exists=exists, realpath=realpath, bases=bases, entries=entries,
                               links=links), count, None)


def links_bases(path: str, links_root: Optional[str] = None) -> List[str]:
    """The dirs where this collection's short links for the overlay at ``path`` may be: under
    ``links_root``, then under the default root, which holds a pointer to links kept elsewhere."""
    roots = [root for root in (links_root, DEFAULT_LINKS_DIR) if root]
    return list(dict.fromkeys(links_dir_for(root, path) for root in roots))


def live_state(entry: Any, defaults: Mapping[str, Any], exists: Optional[Callable[[str], bool]] = None,
               realpath: Optional[Callable[[str], str]] = None, bases: Sequence[str] = (),
               entries: Sequence[Any] = (), links: Any = None) -> LiveOverlay:
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
    EROFS top layer among ``entries``), or is None.
    """
    cfg = overlay_config(entry)
    paths = resolve_paths(cfg, entry.mount_point, exists, bases)
    engine = system_overlay(entry, cfg, entries) or engine_of(engine_layout(entry.mount_point, paths), exists)

    settled, unknown = settle_paths(cfg, paths, links if links is not None else realpath_links(realpath), bases)
    effective, foreign = live_config(cfg["options"], defaults, has_upper=cfg["upperdir"] is not None)
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


def public_live(live: Optional[LiveOverlay]) -> Optional[Dict[str, Any]]:
    """``live`` as a plain dict for module results (None stays None)."""
    return None if live is None else dict(live)


def differences(decl: Any, live: Optional[LiveOverlay], defaults: Mapping[str, Any]) -> List[Dict[str, Any]]:
    """``[{field, declared, live}]`` for every field in which live differs."""
    if live is None:
        return [{"field": "mounted", "declared": True, "live": False}]
    pairs = parse_options(decl.options)
    declared_cfg = resolve(pairs, defaults, decl.writable)
    out = []
    for field in ("lowerdir", "upperdir", "workdir", "datadir"):
        want, have = getattr(decl, field), live.get(field, [] if field == "datadir" else None)
        if not same_path(want, have) or unknown_field(live, field):
            out.append({"field": field, "declared": want, "live": have})
    for name, want, have in option_differences(pairs, declared_cfg, live.effective, live["shown_options"]):
        out.append({"field": "options.%s" % name, "declared": want, "live": have})
    return out + flag_rows(decl.flags, decl.writable, live)


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
