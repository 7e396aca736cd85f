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
