# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every overlay of a host, live or persisted, with the drift between the two. Pure.

The input is text (mountinfo entries, the fstab text, unit file texts); the
only host access is through the optional ``exists``/``realpath`` callables.
One pass over each source, dict lookups by mount point: a container host
with thousands of overlay mounts is read in a few tens of milliseconds.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.overlayfs.mounts.plugins.module_utils import _fstab
from ansible_collections.overlayfs.mounts.plugins.module_utils._drift import live_vs_persisted, resolved
from ansible_collections.overlayfs.mounts.plugins.module_utils._mount_api import links_dir_for
from ansible_collections.overlayfs.mounts.plugins.module_utils._mountinfo import (
    ENGINE_COLLECTION,
    ENGINE_NONE,
)
from ansible_collections.overlayfs.mounts.plugins.module_utils._options import visible_options
from ansible_collections.overlayfs.mounts.plugins.module_utils._persist import entry_config, unit_config
from ansible_collections.overlayfs.mounts.plugins.module_utils._plan import live_state, public_live


def _live_overlays(entries):
    """``{mount point: (top overlay entry, overlays stacked there)}``."""
    found = {}
    for entry in entries:
        if entry.fstype == "overlay":
            previous = found.get(entry.mount_point)
            found[entry.mount_point] = (entry, previous[1] + 1 if previous else 1)
    return found


def fstab_overlays(text):
    """``{mount point: [entry configs]}`` of the overlay lines of an fstab text."""
    found = {}
    for line in _fstab.parse(text or ""):
        entry = line.entry
        if entry is not None and entry.vfstype == "overlay":
            path = _fstab.normalize_mount_point(entry.file)
            found.setdefault(path, []).append(entry_config(entry))
    return found


def unit_overlays(units, readlink=None):
    """``{mount point: unit config}`` of the overlay units among ``(path, text)`` pairs."""
    found = {}
    for unit_path, text in units:
        config = unit_config(text, readlink)
        if config is not None and config["path"]:
            config["unit"] = unit_path
            found.setdefault(_fstab.normalize_mount_point(config["path"]), config)
    return found


def _as_shown(config, defaults):
    """Persisted options as the kernel would show them once mounted (non-default values)."""
    _pairs, effective = resolved(config, defaults)
    return list(config["options"]) if effective is None else visible_options(effective, defaults)


# Where overlay_mount keeps the short layer links of a deep overlay by default.
DEFAULT_LINKS_ROOT = "/var/lib/overlayfs-mounts/links"


def engine_of_record(state, managed, links_root=DEFAULT_LINKS_ROOT):
    """Who an overlay belongs to: the container engine whose layout it has,
    this collection (persisted by it, or mounted through its short links),
    or ``none`` known."""
    if state is not None and state.get("engine"):
        return state["engine"]
    if managed:
        return ENGINE_COLLECTION
    base = state.get("relative_to") if state is not None else None
    if base and links_root and base.startswith(links_root.rstrip("/") + "/"):
        return ENGINE_COLLECTION
    return ENGINE_NONE


def gather(entries, defaults, fstab_text, units, paths=None, exists=None, realpath=None, readlink=None,
           links_root=DEFAULT_LINKS_ROOT):
    """The ``overlay_mounts`` list of overlay_mount_info.

    ``units`` is a list of ``(unit file path, text)``; ``paths`` limits the
    result to those mount points; ``exists`` lets relative layer paths be
    resolved; ``realpath`` resolves layer symlinks (``resolve_layers``);
    ``readlink`` follows the short layer links of units persisted through them;
    ``links_root`` is where overlay_mount keeps short layer links (a mount
    made through them is this collection's).
    """
    live = _live_overlays(entries)
    fstab = fstab_overlays(fstab_text)
    units_by_path = unit_overlays(units, readlink)
    wanted = set(_fstab.normalize_mount_point(p) for p in paths) if paths else None
    every = set(live) | set(fstab) | set(units_by_path)
    result = []
    for path in sorted(every):
        if wanted is not None and path not in wanted:
            continue
        state = None
        stacked = 0
        if path in live:
            top, stacked = live[path]
            bases = [links_dir_for(links_root, path)] if links_root else []
            state = live_state(top, defaults, exists=exists, realpath=realpath, bases=bases)
        fstab_conf = fstab.get(path, [])
        unit_conf = units_by_path.get(path)
        persisted = {"fstab": fstab_conf[0] if fstab_conf else None, "systemd": unit_conf}
        kinds = [k for k in ("fstab", "systemd") if persisted[k]]
        source = state or persisted["fstab"] or unit_conf
        options = source["options"] if state else _as_shown(source, defaults)
        managed = bool((fstab_conf and fstab_conf[0].get("managed")) or (unit_conf and unit_conf.get("managed")))
        record = {
            "path": path,
            "lowerdir": source["lowerdir"],
            "upperdir": source["upperdir"],
            "workdir": source["workdir"],
            "options": options,
            "mounted": state is not None,
            "persisted": "both" if len(kinds) == 2 else (kinds[0] if kinds else "none"),
            "managed": managed,
            "engine": engine_of_record(state, managed, links_root),
            "resolved": state["resolved"] if state else None,
            "source": state["source"] if state else None,
            "mount_id": state["mount_id"] if state else None,
            "stacked": stacked,
            "live": public_live(state),
            "fstab": fstab_conf,
            "systemd": unit_conf,
            "drift": live_vs_persisted(state, persisted, defaults),
        }
        if len(fstab_conf) > 1:
            record["drift"].append({"field": "persisted", "declared": None, "live": None,
                                    "persisted": "fstab (%d lines)" % len(fstab_conf), "source": "fstab"})
        result.append(record)
    return result
