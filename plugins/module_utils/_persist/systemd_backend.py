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
from typing import Any, Callable, Dict, Iterable, List, NamedTuple, Optional, Tuple

from ansible_collections.overlayfs.mounts.plugins.module_utils._formats import unit_syntax as _systemd
from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.fstab_syntax import normalize_mount_point
from ansible_collections.overlayfs.mounts.plugins.module_utils._host import files
from ansible_collections.overlayfs.mounts.plugins.module_utils._host import safe_paths as _safepath
from ansible_collections.overlayfs.mounts.plugins.module_utils._host import system as host
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
from ansible_collections.overlayfs.mounts.plugins.module_utils._persist.backend import Backend, StepContext, Undo, file_diff

# Where a running systemd finds units; elsewhere a unit cannot be started by name.
SYSTEMD_UNIT_PATH = (
    "/etc/systemd/system", "/run/systemd/system", "/usr/local/lib/systemd/system",
    "/lib/systemd/system", "/usr/lib/systemd/system",
)


class UnitPlan(NamedTuple):
    """A unit as :func:`unit_plan` renders it: its text, the short links' dir (or None), notes."""

    text: str
    links_dir: Optional[str]
    notes: List[str]


def unit_plan(decl: Declaration, facts: Optional[HostFacts] = None, links_dir: Optional[str] = None) -> UnitPlan:
    """The .mount unit that persists ``decl``, with its boot options (``noauto`` aside: boot is the wants link).

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
    prefix = link_prefix(decl)
    decl = decl.as_spelled()
    unit_extras = [o for o in decl.boot_extras if o != "noauto"]
    try:
        text, notes = _systemd.render_unit(decl, facts, unit_extras)
        return UnitPlan(text, None, notes)
    except OverlayError as error:
        if not links_dir or "option_bytes" not in error.details:
            raise
    names = [prefix + str(i) for i in range(len(decl.layers))]
    lowers = len(decl.lowerdir)
    requires = requires_mounts_for(decl.lowerdir, decl.upperdir, decl.workdir, decl.datadir,
                                   decl.also_needs) + [links_dir]
    linked = dataclasses.replace(decl, lowerdir=names[:lowers], datadir=names[lowers:])
    text, notes = _systemd.render_unit(linked, facts, unit_extras, working_directory=links_dir, requires=requires)
    return UnitPlan(text, links_dir, notes)


#: The names of a unit's links to symlinked layers start with this (``b0``, ``b1``...).
BOOT_LINK_PREFIX = "b"


def link_prefix(decl: Declaration) -> str:
    """What the names of the unit's short links start with: :data:`BOOT_LINK_PREFIX` for symlinked paths."""
    return BOOT_LINK_PREFIX if decl.symlinked else ""


def unit_config(text: str, readlink: Optional[Callable[[str], Optional[str]]] = None) -> Optional[Dict[str, Any]]:
    """What an overlay unit declares, in the module's terms (None if it is no overlay unit).

    Layers named relative to the unit's WorkingDirectory= (short links) are
    followed with ``readlink`` when it is given.
    """
    parsed = _systemd.parse_unit(text)
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
    return {
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


def unit_files(directory: str) -> List[Tuple[str, str]]:
    """``[(unit path, text)]`` of the .mount units in ``directory``, by name."""
    found = []
    for unit_path in sorted(glob.glob(os.path.join(glob.escape(directory), "*.mount"))):
        text = files.read_text(unit_path)
        if text is not None:
            found.append((unit_path, text))
    return found


class SystemdBackend(Backend):
    """Overlays as systemd .mount units (``persist: systemd``)."""

    name = "systemd"
    location = "unit_dir"
    many = False

    @classmethod
    def configs_in(cls, sources: Iterable[Tuple[str, Optional[str]]],
                   readlink: Optional[Callable[[str], Optional[str]]] = None) -> Dict[str, List[Dict[str, Any]]]:
        found = {}
        for unit_path, text in sources:
            config = unit_config(text, readlink)
            if config is not None and config["path"]:
                config["unit"] = unit_path
                found.setdefault(normalize_mount_point(config["path"]), []).append(config)
        return found

    @classmethod
    def scan(cls, locations: Iterable[str], readlink: Optional[Callable[[str], Optional[str]]] = None) -> Dict[str, List[Dict[str, Any]]]:
        return cls.configs_in([unit for directory in locations for unit in unit_files(directory)], readlink)

    @classmethod
    def boot_drift(cls, conf: Dict[str, Any], persisted: Dict[str, Any], extras: List[str], boot: bool) -> List[Tuple[str, Any, Any]]:
        rows = []
        want = [o for o in extras if o != "noauto"]  # boot is the wants link, not noauto
        have = list(conf.get("boot_options") or [])
        if sorted(want) != sorted(have):
            rows.append(("boot_options", want, have))
        if bool(persisted.get("unit_enabled")) != bool(boot):
            rows.append(("boot", bool(boot), bool(persisted.get("unit_enabled"))))
        return rows

    def __init__(self, decl: Declaration, facts: HostFacts, realpath: Optional[Callable[[str], str]] = None) -> None:
        super().__init__(decl, facts, realpath)
        self.unit_dir = decl.unit_dir
        self.unit_name = _systemd.unit_name_for(decl.path)
        self.unit_path = os.path.join(self.unit_dir, self.unit_name)
        self.before = self.after = None
        self.enabled_before = self.enabled_after = False
        self.links_dir = None
        self.links_wanted = {}
        self.links_seen = {}
        self.links_found: List[str] = []  # state absent: the overlay's short-link dirs (and pointer) on the host
        self.links_remove: List[str] = []
        self._links_removed: List[Tuple[str, Dict[str, str]]] = []
        self.rendered = None  # (unit text, links dir or None, notes), or the OverlayError rendering raised

    def read(self, touch: bool) -> None:
        """Read the unit and its wants link; when this task may write it, also render it and read its links.

        Rendering is pure, but whether the unit names its layers through
        short links decides which links (and which links root) must be read,
        so that :meth:`plan` reads nothing.
        """
        self.before = self.after = files.read_text(self.unit_path)
        self.enabled_before = self.enabled_after = files.is_enabled(self.unit_dir, self.unit_name)
        if touch and self.decl.state == "absent":
            # Whether its unit or a live mount through links made them, absent removes them.
            working = (unit_config(self.before) or {}).get("links_dir") if self.before is not None else None
            self.links_found = links_dirs_found(self.decl.links_dir, self.decl.path, [working])
        if not (touch and self.decl.writes and self.decl.persist is type(self)):
            return
        try:
            text, links_dir, notes = unit_plan(self.decl, self.facts, links_dir_for(self.decl.links_dir, self.decl.path))
        except OverlayError as error:
            self.rendered = error
            return
        self.rendered = (text, links_dir, notes)
        if links_dir:
            try:
                _safepath.check_links_root(self.decl.links_dir)
            except OverlayError as error:
                self.rendered = error
                return
            names = [link_prefix(self.decl) + str(i) for i in range(len(self.decl.layers))]
            self.links_seen = {name: host.readlink(os.path.join(links_dir, name)) for name in names}

    def plan(self, keep: bool) -> List[str]:
        self.keep = keep
        notes: List[str] = []
        if keep:
            if self.before is not None and unit_config(self.before) is None:
                raise OverlayError(
                    "unit_dir: %s exists and is not an overlay mount unit; move it away or "
                    "choose another path" % self.unit_path)
            if isinstance(self.rendered, OverlayError):
                raise self.rendered
            self.after, self.links_dir, notes = self.rendered
            self.enabled_after = self.decl.boot
            if self.links_dir:
                prefix = link_prefix(self.decl)
                self.links_wanted = {prefix + str(i): layer for i, layer in enumerate(self.decl.as_spelled().layers)}
        elif self.before is not None and unit_config(self.before) is not None:
            self.after, self.enabled_after = None, False
        elif self.before is None and self.enabled_before and self._wants_ours():
            self.enabled_after = False  # a wants link left to a unit that is gone
        if not keep:
            self.links_remove = list(self.links_found)
        return notes

    def _wants_ours(self) -> bool:
        """The unit's wants link leads to this unit's path (as :func:`files.enable` makes it)."""
        return host.readlink(files.wants_link(self.unit_dir, self.unit_name)) == self.unit_path

    @property
    def links_changed(self) -> bool:
        """The unit names its layers through links, and some link is missing or wrong."""
        return any(self.links_seen.get(name) != layer for name, layer in self.links_wanted.items())

    @property
    def unit_changed(self) -> bool:
        return self.after != self.before

    @property
    def enable_changed(self) -> bool:
        return self.enabled_after != self.enabled_before

    @property
    def changed(self) -> bool:
        return self.unit_changed or self.enable_changed or self.links_changed or bool(self.links_remove)

    def actions(self) -> List[Dict[str, Any]]:
        out = []
        if self.links_changed:
            out.append({"action": "write_links", "path": self.links_dir})
        if self.unit_changed:
            out.append({"action": "remove_unit" if self.after is None else "write_unit", "path": self.unit_path})
        if self.enable_changed:
            out.append({"action": "enable_unit" if self.enabled_after else "disable_unit",
                        "path": files.wants_link(self.unit_dir, self.unit_name)})
        out += [{"action": "remove_links", "path": path} for path in self.links_remove]  # last: the unit names them
        return out

    def persisted(self, after: bool = True) -> Dict[str, Any]:
        text = self.after if after else self.before
        return {
            self.name: unit_config(text, host.readlink) if text is not None else None,
            "unit_name": self.unit_name,
            "unit_enabled": self.enabled_after if after else self.enabled_before,
        }

    def diffs(self) -> List[Dict[str, str]]:
        return file_diff(self.unit_path, self.before, self.after) if self.unit_changed else []

    @property
    def steps(self) -> Dict[str, Callable[[StepContext], Optional[Undo]]]:
        return {
            "write_links": self._write_links,
            "write_unit": self._write_unit,
            "remove_unit": self._remove_unit,
            "enable_unit": self._set_enabled,
            "disable_unit": self._set_enabled,
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
        if not (self.facts.booted and self.before is not None):
            return False
        _rc, out, _err = module.run_command(
            [module.get_bin_path("systemctl", required=True), "is-active", self.unit_name])
        if out.strip() != "active":
            return False
        files.systemctl(module, "stop", self.unit_name)
        return True

    def start(self, module: Any) -> None:
        files.systemctl(module, "start", self.unit_name)

    def done(self, module: Any, state: str) -> None:
        if self.keep and not self.facts.booted and self.changed:
            module.warn(
                "systemd is not running on this host (chroot, container or image build): wrote %s "
                "and linked it into %s for boot, but skipped daemon-reload and start%s"
                % (self.unit_path, files.WANTS_DIR, "; the overlay was mounted directly"
                   if state == "mounted" else ""))

    def _write_links(self, ctx):
        spelled = self.decl.as_spelled()
        prepare_links(self.links_dir, spelled.lowerdir, spelled.datadir, link_prefix(self.decl))

    def _write_unit(self, ctx):
        if not os.path.isdir(self.unit_dir):
            host.make_dirs(self.unit_dir, 0o755, field="unit_dir")
        files.write_atomic(ctx.module, self.unit_path, self.after, step="writing the unit")
        return lambda: self._restore_unit(ctx.module)

    def _remove_unit(self, ctx):
        files.remove_file(self.unit_path)
        return lambda: self._restore_unit(ctx.module)

    def _restore_unit(self, module):
        if self.before is None:
            files.remove_file(self.unit_path)
        elif files.read_text(self.unit_path) != self.before:
            files.write_atomic(module, self.unit_path, self.before, step="restoring the unit")

    def _remove_links(self, ctx):
        # One remove_links action per dir, in the order of links_remove: each takes the next.
        done = sum(1 for _path, _links in self._links_removed)
        path = self.links_remove[done]
        removed = remove_links(path)
        self._links_removed.append((path, removed))
        return lambda: restore_links(path, removed)

    def _set_enabled(self, ctx):
        self._enable(self.enabled_after)
        return lambda: self._enable(self.enabled_before)

    def _enable(self, enabled):
        if enabled:
            files.enable(self.unit_dir, self.unit_name)
        else:
            files.disable(self.unit_dir, self.unit_name)
            try:  # the wants dir, when enabling made it and nothing else is in it
                os.rmdir(os.path.dirname(files.wants_link(self.unit_dir, self.unit_name)))
            except OSError:
                pass
