# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where declared, live and persisted overlays disagree, field by field. Pure.

A drift row is ``{field, declared, live, persisted}``; ``field`` is
``mounted``, ``lowerdir``, ``upperdir``, ``workdir``, ``datadir``,
``options.<name>``, ``flags.<group>`` (a per-mount flag: ``flags.ro``,
``flags.suid``, ``flags.dev``, ``flags.exec``, ``flags.atime``,
``flags.diratime``), ``superblock`` (an overlay with an upper dir that is
read-only as a whole), ``covered`` (another mount sits on top of the
overlay at its mount point; live: that mount, ``{type, source, mount_id,
path}``), ``shadowed`` (dirs the overlay serves though a mount made after
it hides their paths; live: ``[{field, path, mount}]``), ``persisted``
(how the overlay is persisted: a backend's name, ``both`` or ``none``),
or a backend's boot settings (``boot_options``, ``boot``, ``managed``). A value
that does not apply (no declaration in overlay_mount_info, nothing live) is
None.
"""

from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from ansible_collections.overlayfs.mounts.plugins.module_utils._compare.live import STACK_FIELDS, stack_rows, unknown_field
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.paths import same_path
from ansible_collections.overlayfs.mounts.plugins.module_utils._persist import registry as _backends
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.mount_flags import GROUPS, flag_differences, state_of, superblock_differs
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.overlay_options import (
    OPTION_VALUES,
    option_differences,
    parse_options,
    resolve,
)

PATH_FIELDS = ("lowerdir", "upperdir", "workdir")
_OPTION_NAMES = [name for name, _values in OPTION_VALUES]
#: The drift fields of the per-mount flags, in report order (see ``_model.mount_flags``).
FLAG_FIELDS = ["flags." + group.name for group in GROUPS] + ["superblock"]


def resolved(config: Mapping[str, Any],
             defaults: Mapping[str, Any]) -> Tuple[Optional[List[Tuple[str, Any]]], Optional[Dict[str, Any]]]:
    """``(pairs, effective options)`` of a declared or persisted config; (None, None) if invalid."""
    try:
        pairs = parse_options(config["options"])
        return pairs, resolve(pairs, defaults, config["upperdir"] is not None)
    except OverlayError:
        return None, None


def _resolved_dirs(config, resolve):
    """The dir fields of ``config``, each path through ``resolve`` (where it leads now) when given."""
    def each(value):
        if resolve is None or value is None:
            return value
        return [resolve(p) for p in value] if isinstance(value, list) else resolve(value)
    return {field: each(config.get(field, [] if field == "datadir" else None)) for field in PATH_FIELDS + ("datadir",)}


def against_live(config: Mapping[str, Any], live: Any, defaults: Mapping[str, Any],
                 resolve: Optional[Callable[[str], str]] = None) -> Dict[str, Tuple[Any, Any]]:
    """``{field: (config value, live value)}`` where ``live`` differs from ``config``.

    Paths are compared as paths (``_model.paths.same_path``); a field with
    a path the live side cannot know (``live["unknown"]``) always differs.
    ``resolve``: what each path of ``config`` leads to now, compared in its
    place (a persisted symlinked layer against the live directory).
    ``covered`` and ``shadowed`` (``_compare.live.stack_rows``) come first.
    """
    out = {row["field"]: (row["declared"], row["live"]) for row in stack_rows(live)}
    dirs = _resolved_dirs(config, resolve)
    for field in PATH_FIELDS + ("datadir",):
        have = live.get(field) if field == "datadir" else live[field]
        if not same_path(dirs[field], have) or unknown_field(live, field):
            out[field] = (config.get(field, []) if field == "datadir" else config[field], have)
    pairs, effective = resolved(config, defaults)
    if pairs is None:
        out["options"] = (config["options"], live["options"])
        return out
    for name, want, have in option_differences(pairs, effective, live.effective, live["shown_options"]):
        out["options." + name] = (want, have)
    return dict(out, **_flags_against_live(config, live))


def _flags_against_live(config, live):
    """``{field: (config value, live value)}`` of the per-mount flags (``flags.<group>``, ``superblock``)."""
    flags = config.get("flags") or ()
    out = {"flags." + name: (want, have) for name, want, have in flag_differences(flags, live.get("flags") or ())}
    if superblock_differs(flags, config["upperdir"] is not None and live["upperdir"] is not None, live.get("superblock")):
        out["superblock"] = ("rw", "ro")
    return out


def against_config(config: Mapping[str, Any], other: Mapping[str, Any],
                   defaults: Mapping[str, Any]) -> Dict[str, Tuple[Any, Any]]:
    """``{field: (config value, other value)}`` between two declared-style configs."""
    out = {}
    for field in PATH_FIELDS:
        if not same_path(config[field], other[field]):
            out[field] = (config[field], other[field])
    if other.get("datadir") and not same_path(other.get("datadir"), config.get("datadir", [])):
        out["datadir"] = (config.get("datadir", []), other["datadir"])
    _pairs, mine = resolved(config, defaults)
    _pairs, theirs = resolved(other, defaults)
    if mine is None or theirs is None:
        if config["options"] != other["options"]:
            out["options"] = (config["options"], other["options"])
        return out
    for name in _OPTION_NAMES:
        if mine[name] != theirs[name]:
            out["options." + name] = (mine[name], theirs[name])
    for name, want, have in flag_differences(config.get("flags") or (), other.get("flags") or ()):
        out["flags." + name] = (want, have)
    return out


def value_of(config: Any, field: str, defaults: Mapping[str, Any], live: bool = False) -> Any:
    """The value of one drift field in a config (or live state)."""
    if config is None:
        return None
    if field.startswith("flags."):
        return state_of(config.get("flags") or ())[field.split(".", 1)[1]]
    if field == "superblock":
        return config.get("superblock") if live else None
    if field.startswith("options."):
        name = field.split(".", 1)[1]
        if live:
            return config.effective[name]
        _pairs, effective = resolved(config, defaults)
        return effective[name] if effective else None
    return config.get(field)


def _resolved(conf: Mapping[str, Any], realpath: Callable[[str], str]) -> Dict[str, Any]:
    """``conf`` with its layer, data layer, upper and work paths resolved."""
    out = dict(conf)
    for field in PATH_FIELDS + ("datadir",):
        value = out.get(field)
        if isinstance(value, list):
            out[field] = [realpath(p) for p in value]
        elif isinstance(value, str):
            out[field] = realpath(value)
    return out


def _persisted_fields(config: Mapping[str, Any], spelled: Mapping[str, Any], conf: Mapping[str, Any],
                      defaults: Mapping[str, Any], realpath: Optional[Callable[[str], str]]) -> Dict[str, Tuple[Any, Any]]:
    """The fields in which the persisted ``conf`` differs from the declaration, as spelled and as resolved.

    A path spelled otherwise than declared but leading to the same dir is
    the same path: a field differs only when it differs both from the
    declared spelling and, resolved, from the resolved declaration.
    """
    found = against_config(spelled, conf, defaults)
    if realpath is None or not found:
        return found
    resolved = against_config(config, _resolved(conf, realpath), defaults)
    return {field: pair for field, pair in found.items() if field in resolved}


def options_drop_in(conf: Optional[Mapping[str, Any]]) -> Optional[str]:
    """The drop-in a persisted unit's ``Options=`` (its layers and options) comes from, or None."""
    if not conf:
        return None
    origin = (conf.get("origins") or {}).get("Mount.Options")
    return origin if origin and origin != conf.get("unit") else None


def declared_drift(decl: Any, persist: Optional[str], extras: Sequence[str], boot: bool, live: Any,
                   persisted: Mapping[str, Any], defaults: Mapping[str, Any],
                   realpath: Optional[Callable[[str], str]] = None) -> List[Dict[str, Any]]:
    """Drift of one overlay_mount declaration against the live host and what is persisted.

    ``decl`` is a ``_model.declaration.Declaration``; ``persisted`` is the
    module's ``persisted`` result (before the task), whose part for each
    backend ``persist`` names is read through that backend. ``realpath``
    resolves the persisted paths, so that a spelling through a symlink is
    no drift.
    """
    state = decl.state
    config = decl.config()
    spelled = decl.as_spelled().config()
    kind = _backends.persisted_kind(persisted)
    backend = _backends.BY_NAME.get(persist)
    conf = backend.first(persisted[backend.name]) if backend else None
    compare_live = state == "mounted" and live is not None
    compare_persisted = state in ("mounted", "present") and conf is not None
    rows = []

    def add(field, declared, live_value, persisted_value):
        rows.append({"field": field, "declared": declared, "live": live_value, "persisted": persisted_value})

    if state == "mounted" and live is None:
        add("mounted", True, False, kind != "none")
    if state in ("unmounted", "absent") and live is not None:
        add("mounted", False, True, kind != "none")
    fields = {}
    if compare_live:
        for field, (want, have) in against_live(config, live, defaults).items():
            fields[field] = [want, have, value_of(conf, field, defaults)]
    if compare_persisted:
        for field, (want, have) in _persisted_fields(config, spelled, conf, defaults, realpath).items():
            want = config[field] if field in config else want
            if field in fields:
                fields[field][2] = have
            else:
                fields[field] = [want, value_of(live, field, defaults, live=True) if compare_live else None, have]
    order = list(STACK_FIELDS) + list(PATH_FIELDS) + ["datadir", "options"] + ["options." + n for n in _OPTION_NAMES] + FLAG_FIELDS
    drop_in = options_drop_in(conf)
    for field in sorted(fields, key=lambda f: order.index(f) if f in order else len(order)):
        add(field, *fields[field])
        if field in spelled and spelled[field] != config[field]:
            rows[-1]["declared_as"] = spelled[field]  # declared through a symlink: both spellings
        if drop_in and field not in STACK_FIELDS and compare_persisted:
            rows[-1]["drop_in"] = drop_in

    if state in ("mounted", "present") and backend is not None:
        count = backend.count(persisted[backend.name])
        if kind != persist:
            add("persisted", persist, None, kind)
        elif count > 1:
            add("persisted", "%s (1 line)" % persist, None, "%s (%d lines)" % (persist, count))
        if conf is not None:
            # Where the persisted paths lead now: a boot must find those mounted too, which
            # the backend checks against what its entry requires (also_needs, as a declaration's).
            dirs = list(conf.get("lowerdir") or []) + list(conf.get("datadir") or []) + [conf.get("upperdir"), conf.get("workdir")]
            leads = ([realpath(p) for p in dirs if isinstance(p, str) and not same_path(realpath(p), p)]
                     if realpath is not None else decl.as_spelled().also_needs)
            for field, want, have in backend.boot_drift(dict(conf, also_needs=leads), persisted, extras, boot):
                add(field, want, None, have)
    if state in ("mounted", "present") and backend is not None and conf is not None:
        rows += backend.settings_drift(conf, persisted, decl, list(extras), boot)
    if state == "absent" and kind != "none":
        add("persisted", "none", None, kind)
    return rows


def _mounts_at_boot(conf: Mapping[str, Any]) -> bool:
    """True when a persisted overlay is mounted at boot: no ``noauto``, a unit linked for a target, no automount.

    An automount mounts it on first access only: until then, not mounted is no drift.
    """
    boot_options = conf.get("boot_options") or []
    if "noauto" in boot_options or "x-systemd.automount" in boot_options or conf.get("automount"):
        return False
    return conf.get("unit_targets") is None or bool(conf["unit_targets"])


def live_vs_persisted(live: Any, persisted: Mapping[str, Any], defaults: Mapping[str, Any],
                      resolve: Optional[Callable[[str], str]] = None) -> List[Dict[str, Any]]:
    """Drift between a live overlay and what fstab/units persist for it (overlay_mount_info).

    ``resolve``: what a persisted path leads to now (see :func:`against_live`).
    ``covered`` and ``shadowed`` are facts of the live mount alone: they
    come once, first, with ``source`` None, persisted or not.
    """
    rows = [dict(row, persisted=None, source=None) for row in stack_rows(live)] if live is not None else []
    for source in _backends.BY_NAME:
        conf = persisted.get(source)
        if not conf:
            continue
        if live is None:
            if _mounts_at_boot(conf):
                rows.append({"field": "mounted", "declared": None, "live": False, "persisted": True,
                             "source": source})
            continue
        drop_in = options_drop_in(conf)
        for field, (want, have) in sorted(against_live(conf, live, defaults, resolve).items()):
            if field in STACK_FIELDS:
                continue
            rows.append({"field": field, "declared": None, "live": have, "persisted": want, "source": source})
            if drop_in:
                rows[-1]["drop_in"] = drop_in
    return rows


def tmpfs_drift(tmpfs: Any, ids: Sequence[int], want: Optional[int], live: Optional[Mapping[str, Any]],
                persisted_size: Optional[str] = None) -> List[Dict[str, Any]]:
    """Drift rows of a volatile upper's tmpfs (``_model.upper_tmpfs.UpperTmpfs``) against the live one.

    ``ids``: the declared ``(uid, gid)``; ``want``: the declared size in
    bytes (None when it cannot be known here: a percentage of unknown RAM);
    ``live``: ``_host.tmpfs_mounts.live_tmpfs`` (None: nothing mounted);
    ``persisted_size``: the size the persisted line or unit gives. Rows:
    ``upper_tmpfs`` (``missing``, or ``not tmpfs (TYPE)``), then
    ``upper_tmpfs.size``, ``upper_tmpfs.mode``, ``upper_tmpfs.owner`` and
    ``upper_tmpfs.group`` where they differ.
    """
    rows = []

    def add(field, declared, live_value, persisted_value=None):
        rows.append({"field": field, "declared": declared, "live": live_value, "persisted": persisted_value})

    if live is None:
        add("upper_tmpfs", tmpfs.path, "missing")
        return rows
    if live["fstype"] != "tmpfs":
        add("upper_tmpfs", tmpfs.path, "not tmpfs (%s)" % live["fstype"])
        return rows
    if (want is not None and live["size"] != want) or (persisted_size is not None and persisted_size != tmpfs.size):
        shown = "%dk" % (live["size"] // 1024) if live["size"] is not None else "unlimited"
        add("upper_tmpfs.size", tmpfs.size, shown, persisted_size)
    if live["mode"] is not None and live["mode"] != tmpfs.mode:
        add("upper_tmpfs.mode", "%04o" % tmpfs.mode, "%04o" % live["mode"])
    if live["uid"] is not None and live["uid"] != ids[0]:
        add("upper_tmpfs.owner", ids[0], live["uid"])
    if live["gid"] is not None and live["gid"] != ids[1]:
        add("upper_tmpfs.group", ids[1], live["gid"])
    return rows
