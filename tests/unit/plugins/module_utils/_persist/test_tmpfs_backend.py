# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""TmpfsBackend: what a volatile upper persists for each persist kind, and what absent removes."""

import os

from ansible_collections.overlayfs.mounts.plugins.module_utils._formats import tmpfs_units
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.facts import HostFacts
from ansible_collections.overlayfs.mounts.plugins.module_utils._persist import registry
from ansible_collections.overlayfs.mounts.plugins.module_utils._persist.tmpfs_backend import TmpfsBackend
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.spec import MOUNT_SPEC


def _decl(tmp_path, **given):
    params = {name: option.get("default") for name, option in MOUNT_SPEC.items()}
    params.update(path="/srv/m", lowerdir=["/l"], upperdir="/vol/upper", workdir="/vol/work",
                  fstab=str(tmp_path / "fstab"), unit_dir=str(tmp_path / "units"),
                  upper_tmpfs={"size": "64M", "mode": "0755", "owner": "root", "group": "root", "path": None})
    params.update(given)
    return registry.declare(params)


def _planned(decl):
    backend = TmpfsBackend(decl, HostFacts(True, False, False))
    backend.read(True)
    backend.plan(False)
    return backend


def test_fstab_kind_writes_the_line_and_the_service(tmp_path):
    (tmp_path / "fstab").write_text("proc /proc proc defaults 0 0\n")
    decl = _decl(tmp_path)
    assert "x-systemd.requires=overlayfs-upper-srv-m.service" in decl.boot_extras
    backend = _planned(decl)
    assert [a["action"] for a in backend.actions()] == ["write_tmpfs_fstab", "write_dirs_service"]
    assert backend.persisted()["upper_tmpfs"]["fstab"] == tmpfs_units.fstab_line(decl.upper_tmpfs, 0, 0)
    assert backend.persisted(after=False)["upper_tmpfs"] is None
    assert len(backend.diffs()) == 2


def test_systemd_kind_writes_the_unit_links_it_and_the_service(tmp_path):
    backend = _planned(_decl(tmp_path, persist="systemd"))
    assert [a["action"] for a in backend.actions()] == ["write_dirs_service", "write_tmpfs_unit", "enable_tmpfs_unit"]
    persisted = backend.persisted()["upper_tmpfs"]
    assert (persisted["unit"], persisted["unit_enabled"], persisted["fstab"]) == ("vol.mount", True, None)


def test_absent_with_the_path_alone_removes_what_the_service_records(tmp_path):
    units = tmp_path / "units"
    units.mkdir()
    decl = _decl(tmp_path, persist="systemd")
    service = units / tmpfs_units.service_name("/srv/m")
    service.write_text(tmpfs_units.render_service("/srv/m", decl.upper_tmpfs, ["/vol/upper", "/vol/work"], 0o755, 0, 0))
    (units / "vol.mount").write_text(tmpfs_units.render_mount_unit("/srv/m", decl.upper_tmpfs, 0, 0))
    os.makedirs(str(units / "local-fs.target.wants"))
    os.symlink(str(units / "vol.mount"), str(units / "local-fs.target.wants" / "vol.mount"))
    bare = _decl(tmp_path, state="absent", lowerdir=None, upperdir=None, workdir=None, upper_tmpfs=None)
    backend = _planned(bare)
    assert backend.recorded().path == "/vol"
    assert [a["action"] for a in backend.actions()] == ["remove_dirs_service", "remove_tmpfs_unit", "disable_tmpfs_unit"]
    assert backend.persisted()["upper_tmpfs"] is None


def test_a_hand_written_service_is_not_removed(tmp_path):
    units = tmp_path / "units"
    units.mkdir()
    (units / tmpfs_units.service_name("/srv/m")).write_text("[Service]\nExecStart=/bin/true\n")
    backend = _planned(_decl(tmp_path, state="absent", lowerdir=None, upperdir=None, workdir=None, upper_tmpfs=None))
    assert backend.actions() == []
