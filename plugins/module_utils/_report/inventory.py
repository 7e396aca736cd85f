# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every overlay of a host, live or persisted, with the drift between the two. Pure.

The input is text (mountinfo entries, the fstab text, unit file texts); the
only host access is through the optional ``exists``/``realpath`` callables.
One pass over each source, dict lookups by mount point: a container host
with thousands of overlay mounts is read in a few tens of milliseconds.
"""

from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence

from ansible_collections.overlayfs.mounts.plugins.module_utils._formats import fstab_syntax as _fstab
from ansible_collections.overlayfs.mounts.plugins.module_utils._formats import tmpfs_units as _tmpfs_units
from ansible_collections.overlayfs.mounts.plugins.module_utils._persist import registry as _backends
from ansible_collections.overlayfs.mounts.plugins.module_utils._compare.drift import live_vs_persisted, resolved
from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.mountinfo import (
    mount_containing,
    ENGINE_COLLECTION,
    ENGINE_FUSE_OVERLAYFS,
    ENGINE_NONE,
    FUSE_OVERLAYFS_TYPE,
    MountEntry,
)
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.overlay_options import visible_options
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.paths import inside
from ansible_collections.overlayfs.mounts.plugins.module_utils._compare.live import listed_overlay, public_live, realpath_links
from ansible_collections.overlayfs.mounts.plugins.module_utils._report.printable import returnable, unescape_bytes


def _live_overlays(entries):
    """``{mount point: (top overlay entry, overlays stacked there)}``."""
    found = {}
    for entry in entries:
        if entry.fstype == "overlay":
            previous = found.get(entry.mount_point)
            found[entry.mount_point] = (entry, previous[1] + 1 if previous else 1)
    return found


def _as_shown(config, defaults):
    """Persisted options as the kernel would show them once mounted (non-default values)."""
    _pairs, effective = resolved(config, defaults)
    return list(config["options"]) if effective is None else visible_options(effective, defaults)


# Where overlay_mount keeps the short layer links of a deep overlay by default.
DEFAULT_LINKS_ROOT = "/var/lib/overlayfs-mounts/links"


def engine_of_record(state: Optional[Mapping[str, Any]], managed: bool,
                     links_root: Optional[str] = DEFAULT_LINKS_ROOT) -> str:
    """Who an overlay belongs to: the container engine whose layout it has,
    this collection (persisted by it, or mounted through its short links),
    or ``none`` known."""
    if state is not None and state.get("engine"):
        return state["engine"]
    if managed:
        return ENGINE_COLLECTION
    base = state.get("relative_to") if state is not None else None
    if base and links_root and inside(base, links_root):
        return ENGINE_COLLECTION
    return ENGINE_NONE


def gather(entries: Iterable[MountEntry], defaults: Mapping[str, Any], persisted: Mapping[str, Mapping[str, Any]],
           paths: Optional[Iterable[str]] = None, exists: Optional[Callable[[str], bool]] = None,
           realpath: Optional[Callable[[str], str]] = None,
           links_root: Optional[str] = DEFAULT_LINKS_ROOT, links: Any = None,
           canonical: Optional[Callable[[str], str]] = None) -> List[Dict[str, Any]]:
    """The ``overlay_mounts`` list of overlay_mount_info, ready to return (see ``printable.returnable``).

    ``persisted`` maps each backend's name to ``{mount point: [configs]}``
    (``Backend.scan``); ``paths`` limits the result to those mount points;
    ``exists`` lets relative layer paths be resolved; ``links``
    (``_host.live_paths.LinkTimes``) tells what live paths name now: this
    collection's short links are followed, and, when it follows symlinks
    (``resolve_layers``), every path whose symlinks are older than the mount
    (others are ``unknown``; see ``_compare.live.settle_paths``).
    ``realpath`` resolves the persisted paths when comparing them with the
    live ones (a persisted symlinked layer against the directory the mount
    serves); without ``links`` it also stands for the live side's symlinks,
    trusted. ``links_root`` is where overlay_mount keeps short layer links (a
    mount made through them is this collection's; links kept elsewhere are
    found through the pointer their mount left there). A fuse-overlayfs mount is listed too, with
    ``kernel_overlay`` false and its layers unknown (None).

    A mount point is an identity, not a string: ``canonical`` (``realpath``)
    tells where a persisted mount point and one of ``paths`` lead, so that a
    mount point spelled through a symlink is one entry with the live mount
    at the directory it names; the other spellings are its ``aliases``.
    ``paths`` are given as results show them (``printable.escape_bytes``).
    """
    entries = entries if isinstance(entries, list) else list(entries)
    live = _live_overlays(entries)
    fuse = _fuse_overlays(entries)
    persisted, aliases = _by_mount_point(persisted, canonical)
    wanted = None
    if paths:
        wanted = set()
        for given in paths:
            point = _fstab.normalize_mount_point(unescape_bytes(given))
            real = canonical(point) if canonical is not None else point
            wanted.add(real)
            if real != point:
                aliases.setdefault(real, set()).add(point)
    every = set(live).union(fuse, *(persisted.get(b.name, {}) for b in _backends.BACKENDS))
    records = [_fuse_record(path, fuse[path], persisted, defaults) if path in fuse and path not in live
               else _record(path, live.get(path), persisted, defaults, exists, realpath, links_root, entries, links)
               for path in sorted(every) if wanted is None or path in wanted]
    for record in records:
        record["aliases"] = sorted(aliases.get(record["path"], ()))
    return returnable(records)


def _by_mount_point(persisted, canonical):
    """``persisted`` keyed by the mount point each entry leads to, and ``{mount point: {other spellings}}``."""
    aliases = {}
    if canonical is None:
        return persisted, aliases
    keyed = {}
    for backend in _backends.BACKENDS:
        table = keyed[backend.name] = {}
        for point, configs in (persisted.get(backend.name) or {}).items():
            real = canonical(point)
            table.setdefault(real, []).extend(configs)
            if real != point:
                aliases.setdefault(real, set()).add(point)
    return keyed, aliases


def boots(configs: Iterable[Mapping[str, Any]]) -> bool:
    """Whether a persisted overlay comes up at boot: an fstab line without ``noauto`` (or with an automount),
    or a unit (or its automount) linked into any target."""
    for conf in configs:
        options = conf.get("boot_options") or []
        if "unit_targets" in conf:
            if conf["unit_targets"]:
                return True
        elif "noauto" not in options or "x-systemd.automount" in options:
            return True
    return False


def _fuse_overlays(entries):
    """``{mount point: fuse-overlayfs entry}`` (the last one mounted there)."""
    return {entry.mount_point: entry for entry in entries if entry.fstype == FUSE_OVERLAYFS_TYPE}


def _fuse_record(path, entry, persisted, defaults):
    """A fuse-overlayfs mount: listed, but not a kernel overlay; mountinfo shows none of its layers."""
    shown = {b.name: b.public(persisted.get(b.name, {}).get(path, [])) for b in _backends.BACKENDS}
    firsts = {b.name: b.first(shown[b.name]) for b in _backends.BACKENDS}
    record = {
        "path": path,
        "lowerdir": None,
        "datadir": None,
        "upperdir": None,
        "workdir": None,
        "options": [],
        "mounted": True,
        "persisted": _backends.persisted_kind(shown),
        "managed": any(conf.get("managed") for conf in firsts.values() if conf is not None),
        "boot": boots(conf for conf in firsts.values() if conf is not None),
        "engine": ENGINE_FUSE_OVERLAYFS,
        "kernel_overlay": False,
        "resolved": None,
        "source": entry.source,
        "mount_id": entry.mount_id,
        "stacked": 1,
        "live": None,
    }
    record.update(shown)
    # A persisted kernel overlay for this point is not mounted: the FUSE mount is.
    record["drift"] = live_vs_persisted(None, firsts, defaults) + _persisted_twice(record["persisted"])
    return record


def _record(path, top, persisted, defaults, exists, realpath, links_root, entries=(), links=None):
    """One overlay of the inventory: live (``top``: entry and stack count, or None) and persisted."""
    state, stacked = None, 0
    shown = {b.name: b.public(persisted.get(b.name, {}).get(path, [])) for b in _backends.BACKENDS}
    firsts = [conf for conf in (b.first(shown[b.name]) for b in _backends.BACKENDS) if conf is not None]
    managed = any(conf.get("managed") for conf in firsts)
    if top is not None:
        stacked = top[1]
        state = listed_overlay(path, top[0], entries, defaults, links_root, exists,
                               links if links is not None else realpath_links(realpath, trusted=True),
                               ours=firsts[0] if firsts else None, own=managed)
    source = state or firsts[0]
    record = {
        "path": path,
        "lowerdir": source["lowerdir"],
        "datadir": list(source.get("datadir") or []),
        "upperdir": source["upperdir"],
        "workdir": source["workdir"],
        "options": source["options"] if state else _as_shown(source, defaults),
        "flags": list(source.get("flags") or ()),
        "mounted": state is not None,
        "persisted": _backends.persisted_kind(shown),
        "managed": managed,
        "boot": boots(firsts),
        "engine": engine_of_record(state, managed, links_root),
        "kernel_overlay": True,
        "resolved": state["resolved"] if state else None,
        "source": state["source"] if state else None,
        "mount_id": state["mount_id"] if state else None,
        "stacked": stacked,
        "live": public_live(state),
    }
    record.update(shown)
    record["drift"] = live_vs_persisted(state, {b.name: b.first(shown[b.name]) for b in _backends.BACKENDS},
                                        defaults, resolve=realpath)
    for b in _backends.BACKENDS:
        count = b.count(shown[b.name])
        if count > 1:
            record["drift"].append({"field": "persisted", "declared": None, "live": None,
                                    "persisted": "%s (%d lines)" % (b.name, count), "source": b.name})
    record["drift"] += _persisted_twice(record["persisted"])
    return record


def _persisted_twice(kind):
    """The drift row of an overlay persisted by more than one backend: at boot, both would mount it."""
    if kind in ("none",) + tuple(b.name for b in _backends.BACKENDS):
        return []
    return [{"field": "persisted", "declared": None, "live": None, "persisted": kind, "source": None}]


def upper_tmpfs_record(upperdir: Any, entries: Sequence[MountEntry], read_live: Callable[[str], Optional[Dict[str, Any]]],
                       fstab_text: Optional[str], units: Mapping[str, Optional[str]]) -> Optional[Dict[str, Any]]:
    """The ``upper_tmpfs`` of an overlay whose upper dir lies on a tmpfs (None for any other).

    ``read_live(mount point)`` reads the tmpfs (``_host.tmpfs_mounts.live_tmpfs``);
    ``fstab_text`` is the fstab read and ``units`` ``{unit file path: text}``
    of the unit dirs read, where its persisted tmpfs line or ``Type=tmpfs``
    unit is looked for. Returns ``{path, size, mode, uid, gid, used, fstab,
    unit, unit_options}``.
    """
    if not isinstance(upperdir, str) or not upperdir.startswith("/"):
        return None
    mount = mount_containing(entries, upperdir)
    if mount is None or mount.fstype != "tmpfs":
        return None
    live = read_live(mount.mount_point) or {}
    line = _tmpfs_units.fstab_tmpfs(fstab_text, mount.mount_point)
    unit = next(((path, found[1]) for path, found in ((p, _tmpfs_units.mount_unit_options(t)) for p, t in sorted(units.items()))
                 if found is not None and found[0] == mount.mount_point), None)
    return {
        "path": mount.mount_point,
        "size": live.get("size"),
        "mode": "%04o" % live["mode"] if live.get("mode") is not None else None,
        "uid": live.get("uid"),
        "gid": live.get("gid"),
        "used": live.get("used"),
        "fstab": line["line"] if line else None,
        "unit": unit[0] if unit else None,
        "unit_options": unit[1] if unit else None,
    }
