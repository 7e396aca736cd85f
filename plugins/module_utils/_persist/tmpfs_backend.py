# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""How a volatile upper is persisted for boot, beside its overlay's line or unit.

Not a ``persist`` choice of its own (it is not in ``registry.BACKENDS``): it
follows the overlay's. With ``persist: fstab`` it writes a ``tmpfs`` line
before the overlay's line; with ``persist: systemd`` a ``Type=tmpfs`` mount
unit, linked into ``local-fs.target`` with ``boot: true``. Either way it
writes the oneshot service that makes the upper and work dirs on the fresh
tmpfs (``_formats.tmpfs_units``), which the overlay requires
(``x-systemd.requires=``, added to its boot options by ``registry.declare``).
``state: absent`` removes all of it; only the lines and units the collection
marked as its own are ever removed.
"""

import os
from typing import Any, Callable, Dict, List, Optional

from ansible_collections.overlayfs.mounts.plugins.module_utils._formats import tmpfs_units as _units
from ansible_collections.overlayfs.mounts.plugins.module_utils._formats import unit_syntax as _systemd
from ansible_collections.overlayfs.mounts.plugins.module_utils._host import files
from ansible_collections.overlayfs.mounts.plugins.module_utils._host import system as host
from ansible_collections.overlayfs.mounts.plugins.module_utils._host import unit_paths
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.upper_tmpfs import UpperTmpfs
from ansible_collections.overlayfs.mounts.plugins.module_utils._persist.backend import Backend, StepContext, Undo, file_diff

_TARGET = "local-fs.target"


class TmpfsBackend(Backend):
    """The tmpfs line or unit of a volatile upper, and its dirs service."""

    name = "upper_tmpfs"
    location = "unit_dir"

    def __init__(self, decl: Any, facts: Any, realpath: Optional[Callable[[str], str]] = None) -> None:
        super().__init__(decl, facts, realpath)
        self.ids = (0, 0)
        self.dir_attrs = (0o755, 0, 0)
        self.service_path = os.path.join(decl.unit_dir, _units.service_name(decl.path))
        self.tmpfs: Optional[UpperTmpfs] = decl.upper_tmpfs
        self.files: Dict[str, List[Optional[str]]] = {}  # path: [before, after]
        self.link: Optional[str] = None
        self.link_before = self.link_after = False

    # Reads ---------------------------------------------------------------

    def read(self, touch: bool) -> None:
        service = files.read_text(self.service_path)
        self.files = {self.service_path: [service, service]}
        if self.tmpfs is None:
            self.tmpfs = self.recorded(service)
        if self.tmpfs is None:
            return
        fstab = files.read_text(self.decl.fstab)
        self.files[self.decl.fstab] = [fstab, fstab]
        unit_name = _systemd.unit_name_for(self.tmpfs.path)
        unit_path = os.path.join(self.decl.unit_dir, unit_name)
        unit = files.read_text(unit_path)
        self.files[unit_path] = [unit, unit]
        self.link = unit_paths.link_path(self.decl.unit_dir, unit_name, "wants", _TARGET)
        self.link_before = self.link_after = os.path.islink(self.link)

    def recorded(self, service: Optional[str] = None) -> Optional[UpperTmpfs]:
        """The tmpfs the collection's dirs service records for this overlay (an earlier declaration), or None."""
        text = service if service is not None else self.files.get(self.service_path, [None])[0]
        path = _units.service_tmpfs(text)
        return UpperTmpfs(path, "") if path else None

    def found_anything(self) -> bool:
        return any(before is not None for before, _after in self.files.values())

    @property
    def unit_path(self) -> Optional[str]:
        return os.path.join(self.decl.unit_dir, _systemd.unit_name_for(self.tmpfs.path)) if self.tmpfs else None

    # Plan ----------------------------------------------------------------

    def _kind(self) -> Optional[str]:
        decl = self.decl
        if decl.writes and decl.persist is not None and decl.upper_tmpfs is not None:
            return decl.persist_name
        return None

    def plan(self, keep: bool) -> List[str]:
        """What the tmpfs persistence must be: that of the overlay's ``persist`` kind, or none (``keep`` is the overlay's)."""
        kind = self._kind()
        self.keep = kind is not None
        decl, tmpfs = self.decl, self.tmpfs
        service = self.files[self.service_path]
        if kind is not None:
            mode, uid, gid = self.dir_attrs
            service[1] = _units.render_service(decl.path, tmpfs, [decl.upperdir, decl.workdir], mode, uid, gid)
        elif service[0] is not None and _systemd.is_managed(service[0]):
            service[1] = None
        if tmpfs is None:
            return []
        fstab = self.files[decl.fstab]
        line = _units.fstab_line(tmpfs, *self.ids, boot=decl.boot) if kind == "fstab" else None
        if fstab[0] is not None or line is not None:
            fstab[1] = _units.edit_fstab(fstab[0] or "", tmpfs.path, line, decl.path)
            if fstab[0] is None and fstab[1] == "":
                fstab[1] = None
        unit = self.files[self.unit_path]
        if kind == "systemd":
            unit[1] = _units.render_mount_unit(decl.path, tmpfs, *self.ids, boot=decl.boot)
        elif _units.mount_unit_options(unit[0]) is not None:
            unit[1] = None
        self.link_after = kind == "systemd" and decl.boot
        return []

    def _changed(self, path: str) -> bool:
        before, after = self.files.get(path, [None, None])
        return before != after

    @property
    def changed(self) -> bool:
        return any(self._changed(path) for path in self.files) or self.link_before != self.link_after

    def actions(self) -> List[Dict[str, Any]]:
        out = []
        if self.tmpfs is not None and self._changed(self.decl.fstab):
            out.append({"action": "write_tmpfs_fstab", "path": self.decl.fstab})
        for path, name in ((self.service_path, "dirs_service"), (self.unit_path, "tmpfs_unit")):
            if path is not None and self._changed(path):
                out.append({"action": ("remove_" if self.files[path][1] is None else "write_") + name, "path": path})
        if self.link_before != self.link_after:
            out.append({"action": "enable_tmpfs_unit" if self.link_after else "disable_tmpfs_unit", "path": self.link})
        return out

    def persisted(self, after: bool = True) -> Dict[str, Any]:
        """``{upper_tmpfs: {path, fstab, unit, unit_options, service, enabled}}``, or None when nothing is persisted."""
        side = 1 if after else 0
        if self.tmpfs is None:
            return {self.name: None}
        fstab = _units.fstab_tmpfs(self.files.get(self.decl.fstab, [None, None])[side], self.tmpfs.path)
        unit = _units.mount_unit_options(self.files[self.unit_path][side])
        service = self.files[self.service_path][side]
        if fstab is None and unit is None and service is None:
            return {self.name: None}
        return {self.name: {
            "path": self.tmpfs.path,
            "fstab": fstab["line"] if fstab else None,
            "unit": os.path.basename(self.unit_path) if unit else None,
            "unit_options": unit[1] if unit else None,
            "unit_enabled": self.link_after if after else self.link_before,
            "service": os.path.basename(self.service_path) if service is not None else None,
        }}

    def persisted_size(self) -> Optional[str]:
        """The ``size=`` the tmpfs line or unit of the declared ``persist`` kind gives now (None: none persisted)."""
        if self.tmpfs is None:
            return None
        if self.decl.persist_name == "systemd":
            unit = _units.mount_unit_options(self.files[self.unit_path][0])
            options = unit[1] if unit else None
        else:
            fstab = _units.fstab_tmpfs(self.files.get(self.decl.fstab, [None, None])[0], self.tmpfs.path)
            options = fstab["options"] if fstab else None
        return next((o[len("size="):] for o in options or () if o.startswith("size=")), None)

    def diffs(self) -> List[Dict[str, str]]:
        out = []
        for path, (before, after) in self.files.items():
            if before != after:
                out += file_diff(path, before, after)
        return out

    # Steps ---------------------------------------------------------------

    @property
    def steps(self) -> Dict[str, Callable[[StepContext], Optional[Undo]]]:
        return {
            "write_tmpfs_fstab": self._write_fstab,
            "write_dirs_service": self._write_file,
            "remove_dirs_service": self._write_file,
            "write_tmpfs_unit": self._write_file,
            "remove_tmpfs_unit": self._write_file,
            "enable_tmpfs_unit": self._link,
            "disable_tmpfs_unit": self._link,
        }

    def lock_dir(self) -> Optional[str]:
        return os.path.dirname(self.decl.fstab) or "." if self.tmpfs is not None else None

    def stale_file(self) -> Optional[str]:
        return self.service_path

    def _write_fstab(self, ctx: StepContext) -> Optional[Undo]:
        """Edit fstab again on the text read now (the overlay's line may have been written just before), check, write."""
        path = self.decl.fstab
        current = files.read_text(path)
        line = _units.fstab_line(self.tmpfs, *self.ids, boot=self.decl.boot) if self._kind() == "fstab" else None
        new = _units.edit_fstab(current or "", self.tmpfs.path, line, self.decl.path)
        if new == (current or ""):
            return None

        def check(_tmp):
            files.findmnt_verify(ctx.module, line + "\n", [self.tmpfs.path], missing_ok=True)

        files.write_atomic(ctx.module, path, new, validate=check if line else None, step="writing the tmpfs line to fstab")
        return lambda: _put_back(ctx.module, path, current)

    def _write_file(self, ctx: StepContext) -> Undo:
        path = ctx.path
        before, after = self.files[path]
        if after is None:
            files.remove_file(path)
        else:
            if not os.path.isdir(os.path.dirname(path)):
                host.make_dirs(os.path.dirname(path), 0o755, field="unit_dir")
            files.write_atomic(ctx.module, path, after, step="writing %s" % os.path.basename(path))
        return lambda: _put_back(ctx.module, path, before)

    def _link(self, ctx: StepContext) -> Optional[Undo]:
        name = os.path.basename(self.unit_path)
        if self.link_after:
            path, _made = unit_paths.make_link(self.decl.unit_dir, name, "wants", _TARGET)
            return lambda: unit_paths.remove_link(path)
        was = unit_paths.remove_link(self.link)
        return (lambda: unit_paths.restore_link(self.link, was)) if was is not None else None


def _put_back(module: Any, path: str, text: Optional[str]) -> None:
    """Undo a write or removal of ``path``: back to ``text`` (None: no file)."""
    if text is None:
        files.remove_file(path)
    elif files.read_text(path) != text:
        files.write_atomic(module, path, text, step="restoring %s" % os.path.basename(path))
