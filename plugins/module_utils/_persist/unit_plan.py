# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The unit settings an overlay's .mount unit must have, and what drop-ins do to them. Pure.

A declaration says how its unit boots in two ways: fstab-style
``boot_options`` (``x-systemd.automount``, ``x-systemd.mount-timeout=``...)
and ``unit_settings`` by section. :func:`desired` joins them into the
settings the unit is written with. When ``unit_settings`` is not given, a
unit keeps the settings it has (adoption of a hand-written unit changes no
boot behaviour); when it is given, it is the whole list, and each setting of
the unit it drops is named.
"""

from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.unit_file import Effective, effective
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.unit_settings import (
    join_setting,
    merge_settings,
    options_to_settings,
    setting_items,
    targets,
)

Settings = Dict[str, Dict[str, str]]

#: Keys of a .mount unit the module writes itself: never kept, never declared.
OWNED = {("Mount", "What"), ("Mount", "Where"), ("Mount", "Type"), ("Mount", "Options"),
         ("Mount", "WorkingDirectory")}
#: Keys the module computes for each unit: a unit's old value is not kept.
COMPUTED = {("Unit", "RequiresMountsFor")}
#: The section of the automount's own settings.
AUTOMOUNT = "Automount"
#: How the description the module writes by default starts (not a setting anyone declared).
DEFAULT_DESCRIPTION = "Overlay mount at "


class Desired(NamedTuple):
    """What :func:`desired` found: the unit's ``settings``, the ``options`` left for ``Options=``,
    the settings of the old unit it ``dropped`` (``Section.Key=value``), the ``targets``
    (``[(kind, target)]``), whether an ``automount`` unit goes with it, and the settings
    the declaration itself sets (``declared``: its unit settings and boot options, not
    those kept from the unit)."""

    settings: Settings
    options: List[str]
    dropped: List[str]
    targets: List[Tuple[str, str]]
    automount: bool
    declared: Settings


def settings_of(files: Sequence[Tuple[str, str]], problems: Optional[List[str]] = None) -> Effective:
    """The effective settings of unit files ``[(path, text)]`` (main file first); ``problems`` as for
    ``unit_file.effective`` (without it, a line where systemd stops reading raises OverlayError)."""
    return effective(list(files), problems=problems)


def kept_settings(found: Union[Effective, Mapping[str, Mapping[str, str]], None]) -> Settings:
    """The settings of an existing unit (its files, or its settings by section) that a declaration
    without ``unit_settings`` keeps."""
    if found is None:
        return {}
    out: Settings = {}
    for section, keys in (found.settings if isinstance(found, Effective) else found).items():
        for key, value in keys.items():
            if (section, key) not in OWNED and (section, key) not in COMPUTED:
                out.setdefault(section, {})[key] = value
    return out


def _without(settings: Mapping[str, Mapping[str, str]], other: Mapping[str, Mapping[str, str]]) -> Settings:
    """``settings`` less the keys ``other`` sets."""
    return {section: {k: v for k, v in keys.items() if k not in (other.get(section) or {})}
            for section, keys in settings.items()}


def desired(extras: Sequence[str], declared: Optional[Mapping[str, Mapping[str, str]]],
            found: Union[Effective, Mapping[str, Mapping[str, str]], None]) -> Desired:
    """The settings the unit is written with, for boot options ``extras`` and ``unit_settings`` ``declared``.

    ``found``: the settings of the unit's main file as it is (its files, or
    its settings by section; None: no unit).
    Raises OverlayError when a boot option and a declared setting disagree.
    """
    boot, options = options_to_settings([o for o in extras if o != "noauto"])
    own = merge_settings(boot, declared or {}, "boot_options", "unit_settings") or {}
    kept = kept_settings(found)
    if declared is None:
        settings = merge_settings(boot, _without(kept, boot), "boot_options", "the unit's own settings") or {}
        dropped: List[str] = []
    else:
        settings = own
        dropped = ["%s.%s=%s" % (section, key, value) for section, keys in sorted(kept.items())
                   for key, value in sorted(keys.items())
                   if key not in (settings.get(section) or {}) and not _default_description(section, key, value)]
    automount = AUTOMOUNT in settings
    return Desired(settings, options, dropped, targets(settings), automount, own)


def _default_description(section: str, key: str, value: str) -> bool:
    """True for the description the module writes by default (nobody declared it)."""
    return (section, key) == ("Unit", "Description") and value.startswith(DEFAULT_DESCRIPTION)


def extra_requires(found: Optional[Effective], own_dirs: Sequence[str]) -> List[str]:
    """The ``RequiresMountsFor=`` paths of an existing unit beyond its own dirs (``own_dirs``): what a hand
    written unit asks for besides its layers, which a declaration without ``unit_settings`` keeps."""
    if found is None:
        return []
    skip = set(own_dirs)
    return [path for path in found.values("Unit", "RequiresMountsFor") if path not in skip]


def with_requires(want: Desired, paths: Sequence[str]) -> Desired:
    """``want`` whose unit also requires the mounts of ``paths`` (kept from the unit it replaces)."""
    if not paths:
        return want
    unit = dict(want.settings.get("Unit") or {})
    have = setting_items("Unit", "RequiresMountsFor", unit["RequiresMountsFor"]) if "RequiresMountsFor" in unit else []
    unit["RequiresMountsFor"] = join_setting("Unit", "RequiresMountsFor", have + [p for p in paths if p not in have])
    return want._replace(settings=dict(want.settings, Unit=unit))


def mount_settings(want: Desired) -> Settings:
    """The settings of the .mount unit itself: with an automount, its targets go to the automount."""
    out = {section: dict(keys) for section, keys in want.settings.items() if section != AUTOMOUNT}
    install = {k: v for k, v in (out.get("Install") or {}).items() if k not in ("WantedBy", "RequiredBy", "UpheldBy")}
    if want.automount:
        out["Install"] = install  # empty: no [Install], the automount is what boot starts
    elif not install and not (out.get("Install") or {}):
        out.pop("Install", None)
    return out


def automount_settings(want: Desired) -> Settings:
    """The settings of the .automount unit: its own section and the targets."""
    install = {k: v for k, v in (want.settings.get("Install") or {}).items() if k in ("WantedBy", "RequiredBy", "UpheldBy")}
    return {AUTOMOUNT: dict(want.settings.get(AUTOMOUNT) or {}), "Install": install or {"WantedBy": "local-fs.target"}}


def overridden(mine: Effective, with_drop_ins: Effective, declared: Mapping[str, Mapping[str, str]],
               main: str) -> List[Tuple[str, str, str]]:
    """``[(Section.Key, value the drop-in gives, drop-in path)]`` where drop-ins change what is declared.

    ``mine``: the unit as written, alone; ``with_drop_ins``: with every
    drop-in applied. A key counts when the module owns it or the declaration
    sets it, and the drop-ins leave it with another value.
    """
    keys = set(OWNED) | {(section, key) for section, values in declared.items() for key in values}
    found = []
    for section, key in sorted(keys):
        before = (mine.settings.get(section) or {}).get(key)
        after = (with_drop_ins.settings.get(section) or {}).get(key)
        origin = with_drop_ins.origin(section, key)
        if before != after and origin is not None and origin != main:
            found.append(("%s.%s" % (section, key), after, origin))
    return found


def settings_rows(conf: Dict[str, Any], persisted: Dict[str, Any], declared: Optional[Mapping[str, Mapping[str, str]]],
                  extras: Sequence[str], boot: bool) -> List[Dict[str, Any]]:
    """Drift rows of the unit's settings and targets against the declaration (``unit_settings.<Section>.<Key>``).

    ``declared``: the declared ``unit_settings`` (None: not given),
    ``extras`` the boot options, ``boot`` whether it is linked for boot. A
    declaration without ``unit_settings`` is compared only on what its boot
    options set; one with them on every setting. A row whose persisted value
    comes from a drop-in names it (``drop_in``).
    """
    kept = conf.get("unit_settings") if declared is None else None
    want = desired(extras, declared, kept)
    expected = mount_settings(want)
    if want.automount:
        expected[AUTOMOUNT] = dict(want.settings.get(AUTOMOUNT) or {})
    have = conf.get("unit_settings") or {}
    origins = conf.get("origins") or {}
    keys = {(s, k) for s, values in expected.items() for k in values}
    if declared is not None:
        keys |= {(s, k) for s, values in have.items() for k in values
                 if (s, k) not in COMPUTED and (s, k) != ("Unit", "Description") and s != "Install"}
    rows = []
    for section, key in sorted(keys):
        declared = (expected.get(section) or {}).get(key)
        found = (have.get(section) or {}).get(key)
        if section == AUTOMOUNT or declared == found or _required(section, key, declared, found):
            continue
        row = {"field": "unit_settings.%s.%s" % (section, key), "declared": declared, "live": None, "persisted": found}
        origin = origins.get("%s.%s" % (section, key))
        if origin and origin != conf.get("unit"):
            row["drop_in"] = origin
        rows.append(row)
    return rows + _target_rows(want, persisted, boot)


def _required(section: str, key: str, declared: Optional[str], found: Optional[str]) -> bool:
    """True for declared ``RequiresMountsFor=`` paths the unit has among the ones the module adds for its dirs."""
    if (section, key) != ("Unit", "RequiresMountsFor") or declared is None or found is None:
        return False
    return set(setting_items(section, key, declared)) <= set(setting_items(section, key, found))


def _target_rows(want: Desired, persisted: Dict[str, Any], boot: bool) -> List[Dict[str, Any]]:
    """Rows for whether and for which targets the unit starts at boot, and for its automount."""
    rows = []
    boots = bool(boot or want.automount)  # systemd arms an automount at boot whatever noauto says
    if boots != bool(persisted.get("unit_enabled")):
        rows.append({"field": "boot", "declared": boots, "live": None, "persisted": bool(persisted.get("unit_enabled"))})
    targets = sorted({target for _kind, target in want.targets}) if boots else []
    have = list(persisted.get("unit_targets") or [])
    if have and targets and sorted(have) != targets:
        rows.append({"field": "unit_targets", "declared": targets, "live": None, "persisted": have})
    if want.automount != bool(persisted.get("automount")):
        rows.append({"field": "automount", "declared": want.automount, "live": None,
                     "persisted": bool(persisted.get("automount"))})
    return rows
