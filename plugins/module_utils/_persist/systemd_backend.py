# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Persistence backend ``systemd``: one .mount unit per overlay in a unit dir.

The unit is linked into ``local-fs.target.wants`` for boot (``boot``); when
its layers do not fit what mount(8) takes at boot, the unit names them
through short links (``0``, ``1``, ...) in a directory of its own under
``links_dir``. On a host where systemd runs and searches the unit dir, the
overlay is mounted and unmounted through the unit, so that systemd's view
and the kernel's agree.
"""

import dataclasses
import glob
import os
from typing import Any, Callable, Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple

from ansible_collections.overlayfs.mounts.plugins.module_utils._formats import unit_syntax as _systemd
from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.fstab_syntax import normalize_mount_point
from ansible_collections.overlayfs.mounts.plugins.module_utils._host import files
from ansible_collections.overlayfs.mounts.plugins.module_utils._host import safe_paths as _safepath
from ansible_collections.overlayfs.mounts.plugins.module_utils._host import system as host
from ansible_collections.overlayfs.mounts.plugins.module_utils._host import unit_paths
from ansible_collections.overlayfs.mounts.plugins.module_utils._host.mounting import (
    links_dir_for,
    links_dirs_found,
    prepare_links,
    remove_links,
    restore_links,
)
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.declaration import Declaration
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.facts import HostFacts
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.layers import requires_mounts_for
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.mount_flags import persisted_flags, split_flags
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.overlay_options import canonical_options
from ansible_collections.overlayfs.mounts.plugins.module_utils._model import unit_settings as unit_settings_model
from ansible_collections.overlayfs.mounts.plugins.module_utils._persist import unit_plan as unit_plan_model
from ansible_collections.overlayfs.mounts.plugins.module_utils._persist.backend import Backend, StepContext, Undo, file_diff

# Where a running systemd finds units; elsewhere a unit cannot be started by name.
SYSTEMD_UNIT_PATH = (
    "/etc/systemd/system", "/run/systemd/system", "/usr/local/lib/systemd/system",
    "/lib/systemd/system", "/usr/lib/systemd/system",
)


#: The first systemd that loads mount units whose escaped name is past 255 bytes (under a hashed name).
HASHED_NAMES_SINCE = 251


class UnitPlan(NamedTuple):
    """A unit as :func:`unit_plan` renders it: its text, the short links' dir (or None), notes."""

    text: str
    links_dir: Optional[str]
    notes: List[str]


def unit_plan(decl: Declaration, facts: Optional[HostFacts] = None, links_dir: Optional[str] = None,
              want: Optional[unit_plan_model.Desired] = None) -> UnitPlan:
    """The .mount unit that persists ``decl``, with its boot options (``noauto`` aside: boot is the wants link).

    ``want``: the unit's settings and the boot options left for ``Options=``
    (``unit_plan.desired``); by default those of the declaration alone.
    When the layers do not fit in what mount(8) passes at boot, and
    ``links_dir`` is given, the unit names them through short links in that
    directory (``0``, ``1``, ...) and sets it as the WorkingDirectory= of
    mount(8), as Docker's overlay2 does: the caller must then create the
    links (``_host.mounting.prepare_links``) before writing the unit. On a
    host whose mount(8) uses fsconfig() (``facts.fsconfig``), a lower list
    that fits only the legacy one-page form takes the links too.

    Layer, upper and work paths are written as declared
    (``Declaration.as_spelled``), so that a boot follows a symlinked layer.
    The links of a declaration with symlinked paths point to the paths as
    declared and are named ``b0``, ``b1``, ... (:func:`link_prefix`), apart
    from the links ``0``, ``1``, ... to the real layers that a live mount
    through short links is made with.
    """
    if want is None:
        want = unit_plan_model.desired(decl.boot_extras, decl.unit_settings, None)
    prefix = link_prefix(decl)
    decl = decl.as_spelled()
    settings = unit_plan_model.mount_settings(want)
    try:
        text, notes = _systemd.render_unit(decl, facts, want.options, settings=settings)
        return UnitPlan(text, None, notes)
    except OverlayError as error:
        if not links_dir or "option_bytes" not in error.details:
            raise
    names = [prefix + str(i) for i in range(len(decl.layers))]
    lowers = len(decl.lowerdir)
    requires = requires_mounts_for(decl.lowerdir, decl.upperdir, decl.workdir, decl.datadir,
                                   decl.also_needs) + [links_dir]
    linked = dataclasses.replace(decl, lowerdir=names[:lowers], datadir=names[lowers:])
    text, notes = _systemd.render_unit(linked, facts, want.options, working_directory=links_dir, requires=requires,
                                       settings=settings)
    return UnitPlan(text, links_dir, notes)


#: The names of a unit's links to symlinked layers start with this (``b0``, ``b1``...).
BOOT_LINK_PREFIX = "b"


def link_prefix(decl: Declaration) -> str:
    """What the names of the unit's short links start with: :data:`BOOT_LINK_PREFIX` for symlinked paths."""
    return BOOT_LINK_PREFIX if decl.symlinked else ""


def applied(drop_ins: Iterable[unit_paths.DropIn], masked: Iterable[str] = ()) -> List[Tuple[str, str]]:
    """``[(path, text)]`` of the drop-ins systemd applies (not masked now, nor by ``masked`` paths)."""
    skip = set(masked)
    return [(d.path, d.text) for d in drop_ins if d.text is not None and d.path not in skip]


def unit_config(text: str, readlink: Optional[Callable[[str], Optional[str]]] = None,
                path: Optional[str] = None, drop_ins: Sequence[Tuple[str, str]] = ()) -> Optional[Dict[str, Any]]:
    """What an overlay unit declares, in the module's terms (None if it is no overlay unit).

    ``drop_ins``: ``[(path, text)]`` applied after the main file at
    ``path``, as systemd applies them: the result is the effective unit,
    with ``unit_settings`` (its settings by section, apart from those the
    module owns), ``drop_ins`` (their paths) and ``origins`` (``Section.Key``
    -> the file its value comes from). A line where systemd stops reading a
    file ends it here too, and is named in ``problems``. Layers named
    relative to the unit's WorkingDirectory= (short links) are followed with
    ``readlink`` when it is given.
    """
    problems: List[str] = []
    found = unit_plan_model.settings_of([(path or "", text)] + list(drop_ins), problems)
    parsed = _systemd.unit_fields(found, text)
    if (parsed["type"] or "").strip() != "overlay":
        return None
    base = parsed.get("working_directory")
    if base and readlink is not None:
        for key in ("lowerdir", "datadir"):
            parsed[key] = [p if p.startswith("/") else readlink(base.rstrip("/") + "/" + p) for p in parsed[key]]
        parsed["requires_mounts_for"] = [p for p in parsed["requires_mounts_for"] if p != base]
    try:
        options = canonical_options(parsed["options"])
    except OverlayError:
        options = list(parsed["options"])
    boot_options, flags = split_flags(parsed["extra_options"])
    config = {
        "path": parsed["where"],
        "lowerdir": parsed["lowerdir"],
        "datadir": parsed["datadir"],
        "upperdir": parsed["upperdir"],
        "workdir": parsed["workdir"],
        "options": options,
        "flags": persisted_flags(flags),
        "boot_options": boot_options,
        "requires_mounts_for": parsed["requires_mounts_for"],
        "managed": parsed["managed"],
        "links_dir": base,
    }
    config.update(_effective_settings(found, drop_ins))
    if problems:
        config["problems"] = problems
    if path:
        config["unit"] = path
    return config


def _effective_settings(found: Any, drop_ins: Sequence[Tuple[str, str]]) -> Dict[str, Any]:
    """``unit_settings``, ``drop_ins`` and ``origins`` of a unit's files read as ``found`` (see :func:`unit_config`)."""
    settings: Dict[str, Dict[str, str]] = {}
    origins = {}
    for section, keys in found.settings.items():
        for key, value in keys.items():
            if (section, key) not in unit_plan_model.OWNED:
                settings.setdefault(section, {})[key] = value
            origins["%s.%s" % (section, key)] = found.origin(section, key)
    return {"unit_settings": settings, "drop_ins": [p for p, _t in drop_ins], "origins": origins}


def unit_files(directory: str) -> List[Tuple[str, str]]:
    """``[(unit path, text)]`` of the .mount units in ``directory``, by name."""
    found = []
    for unit_path in sorted(glob.glob(os.path.join(glob.escape(directory), "*.mount"))):
        text = files.read_text(unit_path)
        if text is not None:
            found.append((unit_path, text))
    return found


def automount_name(path: str) -> str:
    """The name systemd gives the .automount unit of mount point ``path`` (hashed past 255 bytes, as the mount unit's)."""
    return _systemd.hash_long_name(_systemd.escape_path(path) + ".automount")


class SystemdBackend(Backend):
    """Overlays as systemd .mount units (``persist: systemd``), with their drop-ins, links and automount."""

    name = "systemd"
    location = "unit_dir"
    many = False

    @classmethod
    def configs_in(cls, sources: Iterable[Tuple[str, Optional[str]]],
                   readlink: Optional[Callable[[str], Optional[str]]] = None) -> Dict[str, List[Dict[str, Any]]]:
        found = {}
        for unit_path, text in sources:
            config = unit_config(text, readlink, unit_path)
            if config is not None and config["path"]:
                config["unit"] = unit_path
                found.setdefault(normalize_mount_point(config["path"]), []).append(config)
        return found

    @classmethod
    def scan(cls, locations: Iterable[str], readlink: Optional[Callable[[str], Optional[str]]] = None) -> Dict[str, List[Dict[str, Any]]]:
        """The overlay units in ``locations``, each as systemd reads it: with its drop-ins and links."""
        found: Dict[str, List[Dict[str, Any]]] = {}
        for directory in locations:
            for unit_path, text in unit_files(directory):
                name = os.path.basename(unit_path)
                config = unit_config(text, readlink, unit_path, applied(unit_paths.drop_ins(directory, name)))
                if config is not None and config["path"]:
                    config["unit"] = unit_path
                    config.update(_boot_links(directory, name, config["path"]))
                    found.setdefault(normalize_mount_point(config["path"]), []).append(config)
        return found

    @classmethod
    def boot_drift(cls, conf: Dict[str, Any], persisted: Dict[str, Any], extras: List[str], boot: bool) -> List[Tuple[str, Any, Any]]:
        rows = []
        want = unit_settings_model.options_to_settings([o for o in extras if o != "noauto"])[1]
        have = list(conf.get("boot_options") or [])
        if sorted(want) != sorted(have):
            rows.append(("boot_options", want, have))
        return rows  # boot (linked into a target) is compared with the declaration: settings_drift

    @classmethod
    def settings_drift(cls, conf: Dict[str, Any], persisted: Dict[str, Any], decl: Any, extras: List[str],
                       boot: bool) -> List[Dict[str, Any]]:
        return unit_plan_model.settings_rows(conf, persisted, decl.unit_settings, extras, boot)

    @classmethod
    def with_settings(cls, extras: List[str], settings: Optional[Dict[str, Dict[str, str]]]) -> List[str]:
        unit_plan_model.desired(extras, settings, None)  # refuses what disagrees, before anything is read
        return extras

    def __init__(self, decl: Declaration, facts: HostFacts, realpath: Optional[Callable[[str], str]] = None) -> None:
        super().__init__(decl, facts, realpath)
        self.unit_dir = decl.unit_dir
        self.unit_name = _systemd.unit_name_for(decl.path)
        self.unit_path = os.path.join(self.unit_dir, self.unit_name)
        self.auto_name = automount_name(decl.path)
        self.auto_path = os.path.join(self.unit_dir, self.auto_name)
        self.before = self.after = None
        self.auto_before = self.auto_after = None
        self.drop_ins: List[unit_paths.DropIn] = []
        self.masks: List[Tuple[str, str]] = []  # (foreign drop-in, the mask that hides it)
        self.links_before: List[unit_paths.UnitLink] = []
        self.link_add: List[str] = []
        self.link_remove: List[str] = []
        self.want: Optional[unit_plan_model.Desired] = None
        self.dropped: List[str] = []
        self.links_dir = None
        self.links_wanted = {}
        self.links_seen = {}
        self.links_found: List[str] = []  # state absent: the overlay's short-link dirs (and pointer) on the host
        self.links_remove: List[str] = []
        self._links_removed: List[Tuple[str, Dict[str, str]]] = []
        self.rendered = None  # (unit text, links dir or None, notes), or the OverlayError rendering raised
        self._done: Dict[str, List[Any]] = {}

    def read(self, touch: bool) -> None:
        """Read the unit, its drop-ins, its automount and its links; when this task may write it, render it.

        Rendering is pure, but whether the unit names its layers through
        short links decides which links (and which links root) must be read,
        so that :meth:`plan` reads nothing.
        """
        self.before = self.after = files.read_text(self.unit_path)
        self.auto_before = self.auto_after = files.read_text(self.auto_path)
        self.drop_ins = unit_paths.drop_ins(self.unit_dir, self.unit_name)
        self.links_before = unit_paths.links(self.unit_dir, self.unit_name) + unit_paths.links(self.unit_dir, self.auto_name)
        if touch and self.decl.state == "absent":
            # Whether its unit or a live mount through links made them, absent removes them.
            working = (unit_config(self.before) or {}).get("links_dir") if self.before is not None else None
            self.links_found = links_dirs_found(self.decl.links_dir, self.decl.path, [working])
        if not (touch and self.decl.writes and self.decl.persist is type(self)):
            return
        try:
            self._render()
        except OverlayError as error:
            self.rendered = error

    def _render(self) -> None:
        """Work out the unit's settings, render it, and read the short links it needs."""
        version = self.facts.systemd_version if _systemd.is_hashed_name(self.unit_name) else None
        if version is not None and version < HASHED_NAMES_SINCE:
            raise OverlayError(
                "path: %s is too long for a unit name (%d bytes escaped); systemd %d loads no unit for it "
                "(systemd %d and later give such a mount point a hashed name): choose a shorter mount point"
                % (self.decl.path, len(_systemd.escape_path(self.decl.path)) + len(".mount"), version,
                   HASHED_NAMES_SINCE))
        found = unit_plan_model.settings_of([(self.unit_path, self.before)]) if self.before is not None else None
        self.want = unit_plan_model.desired(self.decl.boot_extras, self.decl.unit_settings, found)
        if self.decl.unit_settings is None:  # a hand-written unit's own RequiresMountsFor= stay
            self.want = unit_plan_model.with_requires(self.want, unit_plan_model.extra_requires(found, self._old_dirs()))
        text, links_dir, notes = unit_plan(self.decl, self.facts, links_dir_for(self.decl.links_dir, self.decl.path),
                                           self.want)
        self.rendered = (text, links_dir, notes)
        if links_dir:
            _safepath.check_links_root(self.decl.links_dir)
            names = [link_prefix(self.decl) + str(i) for i in range(len(self.decl.layers))]
            self.links_seen = {name: host.readlink(os.path.join(links_dir, name)) for name in names}

    def _old_dirs(self) -> List[str]:
        """The dirs the unit there now names (and where they lead), which its RequiresMountsFor= hold for itself."""
        old = unit_config(self.before, host.readlink) if self.before is not None else None
        if old is None:
            return []
        dirs = [p for p in old["lowerdir"] + old["datadir"] + [old["upperdir"], old["workdir"], old["links_dir"]] if p]
        return dirs + ([self.realpath(p) for p in dirs] if self.realpath is not None else [])

    def plan(self, keep: bool) -> List[str]:
        self.keep = keep
        notes: List[str] = []
        if keep:
            notes = self._plan_keep()
        else:
            if self.before is not None and unit_config(self.before) is not None:
                self.after = None
            if self.auto_before is not None and _systemd.is_managed(self.auto_before):
                self.auto_after = None
            self.link_remove = [link.path for link in self._own_links()]
            self.links_remove = list(self.links_found)
        return notes

    def _plan_keep(self) -> List[str]:
        if self.before is not None and unit_config(self.before) is None:
            raise OverlayError(
                "unit_dir: %s exists and is not an overlay mount unit; move it away or "
                "choose another path" % self.unit_path)
        if isinstance(self.rendered, OverlayError):
            raise self.rendered
        self.after, self.links_dir, notes = self.rendered
        want = self.want
        if self.links_dir:
            prefix = link_prefix(self.decl)
            self.links_wanted = {prefix + str(i): layer for i, layer in enumerate(self.decl.as_spelled().layers)}
        if want.automount:
            self.auto_after = _systemd.render_automount(self.decl.path, unit_plan_model.automount_settings(want))
        elif self.auto_before is not None and _systemd.is_managed(self.auto_before):
            self.auto_after = None
        self._plan_links(want)
        notes = list(notes) + self._plan_drop_ins(want)
        if want.dropped:
            self.dropped = list(want.dropped)
            notes.append("unit_settings: %s has settings the declaration does not name, which %s: %s; "
                         "declare them in unit_settings to keep them"
                         % (self.unit_path, "are dropped", ", ".join(want.dropped)))
        return notes

    def _own_links(self) -> List[unit_paths.UnitLink]:
        """The links of the unit and its automount in ``unit_dir`` (those this module may change)."""
        return [link for link in self.links_before if os.path.dirname(os.path.dirname(link.path)) == self.unit_dir]

    def _plan_links(self, want: unit_plan_model.Desired) -> None:
        """The links to add and remove so that boot starts the unit (or its automount) for its targets."""
        boots = self.auto_name if want.automount else self.unit_name
        wanted = set()
        if self.decl.boot or want.automount:  # systemd arms an automount at boot whatever noauto says
            wanted = {unit_paths.link_path(self.unit_dir, boots, kind, target) for kind, target in want.targets}
        have = {link.path for link in self._own_links()}
        self.link_add = sorted(wanted - {p for p in have if _points_to(p, self.unit_dir)})
        self.link_remove = sorted(have - wanted)

    def _plan_drop_ins(self, want: unit_plan_model.Desired) -> List[str]:
        """Refuse (or mask, with ``drop_ins: mask``) the drop-ins that change what is declared."""
        mine = unit_plan_model.settings_of([(self.unit_path, self.after)])
        whole = unit_plan_model.settings_of([(self.unit_path, self.after)] + applied(self.drop_ins))
        found = unit_plan_model.overridden(mine, whole, want.declared, self.unit_path)
        if not found:
            return []
        named = "; ".join("%s sets %s=%s" % (origin, key, value) for key, value, origin in found)
        if self.decl.drop_ins != "mask":
            raise OverlayError(
                "drop_ins: %s; systemd applies it over the unit, so the overlay would not be what is "
                "declared. Remove or change that drop-in, or set drop_ins: mask to mask it" % named,
                drop_ins=sorted({origin for _key, _value, origin in found}))
        for origin in sorted({origin for _key, _value, origin in found}):
            mask = unit_paths.mask_path(self.unit_dir, self.unit_name, origin)
            if os.path.dirname(os.path.dirname(origin)) == os.path.dirname(os.path.dirname(mask)):
                raise OverlayError("drop_ins: %s is in the unit dir of highest precedence, where no mask can "
                                   "hide it; remove it" % origin)
            self.masks.append((origin, mask))
        return ["drop_ins: masked %s with %s, as drop_ins: mask asks (it sets %s)"
                % (origin, mask, ", ".join("%s=%s" % (key, value) for key, value, where in found if where == origin))
                for origin, mask in self.masks]

    @property
    def links_changed(self) -> bool:
        """The unit names its layers through links, and some link is missing or wrong."""
        return any(self.links_seen.get(name) != layer for name, layer in self.links_wanted.items())

    @property
    def unit_changed(self) -> bool:
        return self.after != self.before

    @property
    def automount_changed(self) -> bool:
        return self.auto_after != self.auto_before

    @property
    def enable_changed(self) -> bool:
        return bool(self.link_add or self.link_remove)

    @property
    def changed(self) -> bool:
        return any((self.unit_changed, self.automount_changed, self.enable_changed, self.links_changed,
                    bool(self.links_remove), bool(self.masks)))

    def actions(self) -> List[Dict[str, Any]]:
        out = []
        if self.links_changed:
            out.append({"action": "write_links", "path": self.links_dir})
        out += [{"action": "mask_drop_in", "path": mask, "masks": origin} for origin, mask in self.masks]
        if self.unit_changed:
            out.append({"action": "remove_unit" if self.after is None else "write_unit", "path": self.unit_path})
        if self.automount_changed:
            out.append({"action": "remove_automount" if self.auto_after is None else "write_automount",
                        "path": self.auto_path})
        out += [{"action": "disable_unit", "path": path} for path in self.link_remove]
        out += [{"action": "enable_unit", "path": path} for path in self.link_add]
        out += [{"action": "remove_links", "path": path} for path in self.links_remove]  # last: the unit names them
        return out

    def persisted(self, after: bool = True) -> Dict[str, Any]:
        text = self.after if after else self.before
        masked = [origin for origin, _mask in self.masks] if after else []
        config = None
        if text is not None:
            config = unit_config(text, host.readlink, self.unit_path, applied(self.drop_ins, masked))
        links = self._links_after() if after else [(link.kind, link.target, link.path) for link in self.links_before]
        auto = self.auto_after if after else self.auto_before
        return {
            self.name: config,
            "unit_name": self.unit_name,
            "unit_enabled": bool(links),
            "unit_targets": sorted({target for _kind, target, _path in links}),
            "automount": self.auto_name if auto is not None else None,
        }

    def _links_after(self) -> List[Tuple[str, str, str]]:
        """``[(kind, target, path)]`` of the links once the plan is carried out."""
        out = [(link.kind, link.target, link.path) for link in self.links_before if link.path not in self.link_remove]
        for path in self.link_add:
            kind = os.path.basename(os.path.dirname(path)).rpartition(".")[2]
            out.append((kind, os.path.basename(os.path.dirname(path))[:-len(kind) - 1], path))
        return out

    def applied_drop_ins(self) -> List[str]:
        masked = [origin for origin, _mask in self.masks]
        return [path for path, _text in applied(self.drop_ins, masked)]

    def diffs(self) -> List[Dict[str, str]]:
        out = file_diff(self.unit_path, self.before, self.after) if self.unit_changed else []
        if self.automount_changed:
            out += file_diff(self.auto_path, self.auto_before, self.auto_after)
        return out

    @property
    def steps(self) -> Dict[str, Callable[[StepContext], Optional[Undo]]]:
        return {
            "write_links": self._write_links,
            "write_unit": self._write_unit,
            "remove_unit": self._remove_unit,
            "write_automount": self._write_automount,
            "remove_automount": self._write_automount,
            "mask_drop_in": self._mask,
            "enable_unit": self._link,
            "disable_unit": self._unlink,
            "remove_links": self._remove_links,
        }

    def stale_file(self) -> Optional[str]:
        return self.unit_path

    @property
    def mounts_itself(self) -> bool:
        searched = os.path.realpath(self.unit_dir) in SYSTEMD_UNIT_PATH
        # A unit names symlinked layers as declared: mounted through it, the
        # mount would show the links, not the directories it serves. Such an
        # overlay is mounted directly, with the real paths.
        return self.keep and self.facts.booted and searched and not self.decl.symlinked

    def stop(self, module: Any) -> bool:
        if not self.facts.booted:
            return False
        stopped = False
        for name, text in ((self.unit_name, self.before), (self.auto_name, self.auto_before)):
            if text is not None and _is_active(module, name):
                files.systemctl(module, "stop", name)
                stopped = stopped or name == self.unit_name
        return stopped

    def start(self, module: Any) -> None:
        if self.auto_after is not None:
            files.systemctl(module, "start", self.auto_name)  # armed first: the mount goes on top of it
        files.systemctl(module, "start", self.unit_name)

    def done(self, module: Any, state: str, mounted: bool = False) -> None:
        if not (self.keep and not self.facts.booted and self.changed):
            return
        wrote = [path for path, changed in ((self.unit_path, self.unit_changed), (self.auto_path, self.automount_changed))
                 if changed]
        what = "wrote %s" % " and ".join(wrote) if wrote else "left the unit as it was"
        if self.link_add:
            what += " and linked it for boot (%s)" % ", ".join(self.link_add)
        module.warn("systemd is not running on this host (chroot, container or image build): %s, but skipped "
                    "daemon-reload and start%s" % (what, "; the overlay was mounted directly" if mounted else ""))

    def _write_links(self, ctx):
        spelled = self.decl.as_spelled()
        prepare_links(self.links_dir, spelled.lowerdir, spelled.datadir, link_prefix(self.decl))

    def _write_unit(self, ctx):
        if not os.path.isdir(self.unit_dir):
            host.make_dirs(self.unit_dir, 0o755, field="unit_dir")
        files.write_atomic(ctx.module, self.unit_path, self.after, step="writing the unit")
        return lambda: _put_back(ctx.module, self.unit_path, self.before)

    def _remove_unit(self, ctx):
        files.remove_file(self.unit_path)
        return lambda: _put_back(ctx.module, self.unit_path, self.before)

    def _write_automount(self, ctx):
        if self.auto_after is None:
            if self.facts.booted and _is_active(ctx.module, self.auto_name):
                files.systemctl(ctx.module, "stop", self.auto_name)  # else its autofs stays at the path
            files.remove_file(self.auto_path)
        else:
            if not os.path.isdir(self.unit_dir):
                host.make_dirs(self.unit_dir, 0o755, field="unit_dir")
            files.write_atomic(ctx.module, self.auto_path, self.auto_after, step="writing the automount unit")
        return lambda: _put_back(ctx.module, self.auto_path, self.auto_before)

    def _mask(self, ctx):
        made_dir = unit_paths.make_mask(ctx.path)
        return lambda: _unmask(ctx.path, made_dir)

    def _link(self, ctx):
        path = ctx.path
        kind = os.path.basename(os.path.dirname(path)).rpartition(".")[2]
        target = os.path.basename(os.path.dirname(path))[:-len(kind) - 1]
        unit_paths.make_link(self.unit_dir, os.path.basename(path), kind, target)
        return lambda: unit_paths.remove_link(path)

    def _unlink(self, ctx):
        path = ctx.path
        was = unit_paths.remove_link(path)
        return (lambda: unit_paths.restore_link(path, was)) if was is not None else None

    def _remove_links(self, ctx):
        path = ctx.path
        removed = remove_links(path)
        self._links_removed.append((path, removed))
        return lambda: restore_links(path, removed)


def _points_to(link: str, unit_dir: str) -> bool:
    """True when ``link`` leads to the unit of its name in ``unit_dir``."""
    return host.readlink(link) == os.path.join(unit_dir, os.path.basename(link))


def _is_active(module: Any, name: str) -> bool:
    _rc, out, _err = module.run_command([module.get_bin_path("systemctl", required=True), "is-active", name])
    return out.strip() == "active"


def _put_back(module: Any, path: str, text: Optional[str]) -> None:
    """Undo a write or removal of the unit file at ``path``: back to ``text`` (None: no file)."""
    if text is None:
        files.remove_file(path)
    elif files.read_text(path) != text:
        files.write_atomic(module, path, text, step="restoring %s" % os.path.basename(path))


def _unmask(path: str, made_dir: bool) -> None:
    unit_paths.forget()
    files.remove_file(path)
    if made_dir:
        try:
            os.rmdir(os.path.dirname(path))
        except OSError:
            pass


def _boot_links(directory: str, name: str, path: str) -> Dict[str, Any]:
    """``unit_targets`` (the targets that start the unit or its automount at boot) and ``automount``."""
    try:
        auto = automount_name(path)
    except OverlayError:  # a Where= no unit could have: no automount either
        auto = name[:-len(".mount")] + ".automount"
    found = unit_paths.links(directory, name) + unit_paths.links(directory, auto)
    has_auto = os.path.exists(os.path.join(directory, auto))
    return {"unit_targets": sorted({link.target for link in found}), "automount": auto if has_auto else None}
