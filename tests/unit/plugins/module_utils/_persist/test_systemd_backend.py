# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

import dataclasses
import pytest

from ansible_collections.overlayfs.mounts.plugins.module_utils._model.facts import HostFacts
from ansible_collections.overlayfs.mounts.plugins.module_utils._persist.systemd_backend import unit_config, unit_plan
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.declaration import Declaration

DECL = Declaration("/srv/m", ["/srv/l1", "/srv/l2"], "/srv/u", "/srv/w", ["index=off"])
# 16 layers of about 100 bytes with a comma in one: no lowerdir+ (mount(8)
# splits at the comma), so only the one-page lowerdir= form holds them.
COMMA_DECL = Declaration("/srv/m", ["/srv/" + "x" * 90 + "/layer-%d" % i for i in range(16)] + ["/srv/with,comma"],
                         "/srv/u", "/srv/w")


def test_unit_round_trip():
    text = unit_plan(dataclasses.replace(DECL, boot_extras=["noauto", "nofail"]))[0]
    config = unit_config(text)
    assert config["managed"] is True
    assert config["path"] == "/srv/m"
    assert config["lowerdir"] == ["/srv/l1", "/srv/l2"]
    assert config["options"] == ["index=off"]
    assert config["boot_options"] == ["nofail"]
    assert set(config["requires_mounts_for"]) == {"/srv/l1", "/srv/l2", "/srv/u", "/srv/w"}


def test_a_unit_of_another_type_is_not_an_overlay_unit():
    assert unit_config("[Mount]\nWhat=/dev/sdb1\nWhere=/srv/m\nType=ext4\n") is None


def test_a_unit_takes_short_links_where_mount_uses_fsconfig():
    text, links, _notes = unit_plan(COMMA_DECL, HostFacts(True, True, False), links_dir="/var/lib/l/m")
    assert links == "/var/lib/l/m"
    assert "\nOptions=lowerdir=0:1:2:3:4:5:6:7:8:9:10:11:12:13:14:15:16,upperdir=/srv/u,workdir=/srv/w\n" in text
    assert "\nWorkingDirectory=/var/lib/l/m\n" in text


@pytest.mark.parametrize("fsconfig", [None, False])
def test_a_unit_keeps_full_paths_where_mount_uses_mount2(fsconfig):
    text, links, notes = unit_plan(COMMA_DECL, HostFacts(True, fsconfig, False), links_dir="/var/lib/l/m")
    assert links is None
    assert "\nOptions=lowerdir=/srv/xxx" in text and "/srv/with\\,comma," in text
    assert "WorkingDirectory" not in text and len(notes) == 1


def test_unit_flags_round_trip_apart_from_boot_options():
    text = unit_plan(dataclasses.replace(DECL, flags=["ro", "nosuid"], boot_extras=["nofail"]))[0]
    assert "Options=lowerdir=/srv/l1:/srv/l2,upperdir=/srv/u,workdir=/srv/w,index=off,ro,nosuid,nofail" in text
    config = unit_config(text)
    assert (config["options"], config["flags"], config["boot_options"]) == (["index=off"], ["ro", "nosuid"], ["nofail"])


# Long mount points, and what absent leaves ----------------------------------


def _backend(tmp_path, path="/srv/m", **changes):
    from ansible_collections.overlayfs.mounts.plugins.module_utils._persist.systemd_backend import SystemdBackend
    decl = dataclasses.replace(DECL, path=path, unit_dir=str(tmp_path / "units"), links_dir=str(tmp_path / "links"),
                               **changes)
    return SystemdBackend(decl, HostFacts(True, True, False))


class _Ctx:
    module = None

    def __init__(self, path=None):
        self.path = path


def test_a_long_mount_point_has_the_hashed_unit_name(tmp_path):
    """The name systemd-fstab-generator gave /srv/ + 250 'm' (systemd 252), no refusal."""
    backend = _backend(tmp_path, "/srv/" + "m" * 250, state="absent")
    assert backend.unit_name == "srv-" + "m" * 228 + "_" + backend.unit_name[-22:-6] + ".mount"
    assert len(backend.unit_name) == 255
    backend.read(True)
    assert backend.plan(False) == [] and backend.actions() == []


def test_absent_removes_a_wants_link_left_to_a_missing_unit(tmp_path):
    from ansible_collections.overlayfs.mounts.plugins.module_utils._host import files
    backend = _backend(tmp_path, state="absent")
    files.enable(backend.unit_dir, backend.unit_name)  # the unit file itself is gone
    backend.read(True)
    backend.plan(False)
    assert [a["action"] for a in backend.actions()] == ["disable_unit"]
    undo = backend.steps["disable_unit"](_Ctx(backend.actions()[0]["path"]))
    assert not (tmp_path / "units" / "local-fs.target.wants").exists()
    undo()
    assert files.is_enabled(backend.unit_dir, backend.unit_name)


def test_absent_removes_the_short_links_and_their_dir(tmp_path):
    from ansible_collections.overlayfs.mounts.plugins.module_utils._host.mounting import links_dir_for
    from ansible_collections.overlayfs.mounts.plugins.module_utils._host.safe_paths import prepare_links  # no pointer on the host
    backend = _backend(tmp_path, state="absent")
    directory = links_dir_for(backend.decl.links_dir, backend.decl.path)
    prepare_links(directory, ["/srv/l1", "/srv/l2"])
    prepare_links(directory, ["/srv/l1", "/srv/l2"], prefix="b")
    (tmp_path / "links" / "someone-else").mkdir()
    backend.read(True)
    backend.plan(False)
    assert backend.actions() == [{"action": "remove_links", "path": directory}] and backend.changed
    undo = backend.steps["remove_links"](_Ctx(directory))
    assert sorted(p.name for p in (tmp_path / "links").iterdir()) == ["someone-else"]
    undo()
    assert sorted(p.name for p in (tmp_path / "links" / directory.rsplit("/", 1)[1]).iterdir()) == ["0", "1", "b0", "b1"]


@pytest.mark.parametrize("version, refused", [(247, True), (250, True), (251, False), (257, False), (None, False)])
def test_a_long_mount_point_is_refused_where_systemd_cannot_load_its_hashed_name(tmp_path, version, refused):
    from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError
    from ansible_collections.overlayfs.mounts.plugins.module_utils._persist.systemd_backend import SystemdBackend
    decl = dataclasses.replace(DECL, path="/srv/" + "m" * 250, unit_dir=str(tmp_path / "units"),
                               links_dir=str(tmp_path / "links"), persist=SystemdBackend)
    backend = SystemdBackend(decl, HostFacts(True, True, False, version))
    backend.read(True)
    if refused:
        with pytest.raises(OverlayError, match=r"^path: .* too long for a unit name .*systemd %d loads no unit" % version):
            backend.plan(True)
    else:
        backend.plan(True)
        assert backend.auto_name.endswith(".automount") and len(backend.auto_name) == 255


@pytest.mark.parametrize("name, asked", [("m", 0), ("m" * 250, 1)])
def test_the_systemd_version_is_asked_only_for_a_hashed_unit_name(tmp_path, name, asked):
    from ansible_collections.overlayfs.mounts.plugins.module_utils._persist.systemd_backend import SystemdBackend
    calls = []
    decl = dataclasses.replace(DECL, path="/srv/" + name, unit_dir=str(tmp_path / "units"),
                               links_dir=str(tmp_path / "links"), persist=SystemdBackend)
    backend = SystemdBackend(decl, HostFacts(True, True, False, lambda: calls.append(1) or 252))
    backend.read(True)
    backend.plan(True)
    assert "\nWhere=/srv/" in backend.rendered[0]
    assert len(calls) == asked


def test_the_automount_of_a_long_mount_point_has_its_own_hashed_name():
    from ansible_collections.overlayfs.mounts.plugins.module_utils._persist.systemd_backend import automount_name
    name = automount_name("/srv/" + "m" * 250)
    assert len(name) == 255 and name.startswith("srv-" + "m" * 224) and name.endswith(".automount")
    assert automount_name("/srv/m") == "srv-m.automount"


def test_a_broken_drop_in_ends_where_systemd_stops_reading_and_is_named(tmp_path):
    from ansible_collections.overlayfs.mounts.plugins.module_utils._persist.systemd_backend import SystemdBackend
    unit_dir = tmp_path / "etc/systemd/system"
    (unit_dir / "srv-m.mount.d").mkdir(parents=True)
    (unit_dir / "srv-m.mount").write_text(unit_plan(DECL)[0])
    (unit_dir / "srv-m.mount.d/10.conf").write_text("[Mount]\nTimeoutSec=9\n[Broken\nOptions=lowerdir=/x:/y\n")
    [config] = SystemdBackend.scan([str(unit_dir)])["/srv/m"]
    assert config["lowerdir"] == ["/srv/l1", "/srv/l2"] and config["unit_settings"]["Mount"]["TimeoutSec"] == "9"
    assert len(config["problems"]) == 1 and "10.conf, line 3" in config["problems"][0]
