# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The live overlay at a mount point, and how it differs from a declaration. Pure.

The live side comes in as mountinfo entries, the host facts as plain
values; ``_converge.plan.make_plan`` decides what to do about the
differences.
"""

from typing import Any, Callable, Dict, List, Mapping, NamedTuple, Optional, Sequence

from ansible_collections.overlayfs.mounts.plugins.module_utils._host.mounting import links_dir_for
from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.mountinfo import (
    engine_layout,
    engine_of,
    mounts_at,
    overlay_config,
    resolve_paths,
)
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
            exists: Optional[Callable[[str], bool]] = None, realpath: Optional[Callable[[str], str]] = None) -> Observed:
    """:class:`Observed` at ``path`` among the mountinfo ``entries``.

    ``links_root``: where this collection keeps short layer links, against
    which relative layers of its own mounts resolve; ``exists`` and
    ``realpath`` as for :func:`live_state`.
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
    bases = [links_dir_for(links_root, path)] if links_root else []
    return Observed(live_state(stack[-1], defaults, exists=exists, realpath=realpath, bases=bases), count, None)


def live_state(entry: Any, defaults: Mapping[str, Any], exists: Optional[Callable[[str], bool]] = None,
               realpath: Optional[Callable[[str], str]] = None, bases: Sequence[str] = ()) -> LiveOverlay:
    """The normalised live state of an overlay mountinfo entry.

    Relative layer, upper and work paths are resolved against one base (see
    _mountinfo.resolve_paths: ``bases``, this collection's short-link
    directory for the mount point, then the engine storage root the mount
    point sits in) when ``exists`` is given; ``resolved`` is False when some
    stay relative. ``realpath`` canonicalises every absolute path when given.
    ``engine`` names the container engine whose storage layout the mount
    has (``docker``, ``containers-storage``), or is None.
    """
    cfg = overlay_config(entry)
    paths = resolve_paths(cfg, entry.mount_point, exists, bases)
    engine = engine_of(engine_layout(entry.mount_point, paths), exists)

    def canon(path):
        # A relative path that could not be resolved stays as the kernel shows it.
        return realpath(path) if realpath and path[:1] == "/" else path

    def layers(found):
        return [canon(p) for p in found] if realpath is not None else found

    upper, work = paths["upperdir"], paths["workdir"]
    effective, foreign = live_config(cfg["options"], defaults, has_upper=cfg["upperdir"] is not None)
    return LiveOverlay({
        "path": entry.mount_point,
        "lowerdir": layers(paths["lowerdir"]),
        "datadir": layers(paths["datadir"]),
        "upperdir": canon(upper) if upper else None,
        "workdir": canon(work) if work else None,
        "resolved": paths["resolved"],
        "relative_to": paths["base"],
        "engine": engine,
        "options": visible_options(effective, defaults),
        "other_options": foreign,
        "shown_options": cfg["options"],
        "read_only": "ro" in entry.mount_options or cfg["vfs"] == "ro",
        "mount_id": entry.mount_id,
        "source": entry.source,
        "form": cfg["form"],
    }, effective)


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
        if want != have:
            out.append({"field": field, "declared": want, "live": have})
    for name, want, have in option_differences(pairs, declared_cfg, live.effective, live["shown_options"]):
        out.append({"field": "options.%s" % name, "declared": want, "live": have})
    return out
