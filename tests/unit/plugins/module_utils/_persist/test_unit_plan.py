# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

import pytest

from ansible_collections.overlayfs.mounts.plugins.module_utils._model.declaration import Declaration
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError
from ansible_collections.overlayfs.mounts.plugins.module_utils._persist import unit_plan

HAND_WRITTEN = """[Unit]
Description=Hand-written
After=db.service
RequiresMountsFor=/old/layer

[Mount]
What=overlay
Where=/srv/m
Type=overlay
Options=lowerdir=/a:/b
TimeoutSec=20

[Install]
WantedBy=multi-user.target
"""
DECL = Declaration("/srv/m", ["/srv/l1", "/srv/l2"], boot_extras=[])


def _found(text=HAND_WRITTEN):
    return unit_plan.settings_of([("/etc/systemd/system/srv-m.mount", text)])


def test_without_unit_settings_a_unit_keeps_its_own_but_not_what_the_module_writes():
    want = unit_plan.desired([], None, _found())
    assert want.settings == {"Unit": {"Description": "Hand-written", "After": "db.service"},
                             "Mount": {"TimeoutSec": "20"}, "Install": {"WantedBy": "multi-user.target"}}
    assert want.dropped == [] and want.targets == [("wants", "multi-user.target")] and not want.automount


def test_declared_boot_options_win_over_what_the_unit_had():
    want = unit_plan.desired(["x-systemd.mount-timeout=5", "nofail"], None, _found())
    assert want.settings["Mount"] == {"TimeoutSec": "5"} and want.options == ["nofail"]


def test_unit_settings_are_the_whole_list_and_each_dropped_one_is_named():
    want = unit_plan.desired([], {"Mount": {"TimeoutSec": "20"}}, _found())
    assert want.dropped == ["Install.WantedBy=multi-user.target", "Unit.After=db.service", "Unit.Description=Hand-written"]
    assert want.declared == {"Mount": {"TimeoutSec": "20"}}
    assert want.targets == [("wants", "local-fs.target")]


def test_the_default_description_is_not_a_dropped_setting():
    found = _found(HAND_WRITTEN.replace("Description=Hand-written", "Description=Overlay mount at /srv/m"))
    assert "Unit.Description" not in " ".join(unit_plan.desired([], {"Mount": {"TimeoutSec": "20"}}, found).dropped)


def test_kept_settings_are_not_what_drop_ins_are_compared_with():
    want = unit_plan.desired(["x-systemd.mount-timeout=5"], None, _found())
    assert want.declared == {"Mount": {"TimeoutSec": "5"}} and want.settings["Unit"]["After"] == "db.service"


def test_a_disagreement_between_boot_options_and_unit_settings_is_refused():
    with pytest.raises(OverlayError, match="TimeoutSec"):
        unit_plan.desired(["x-systemd.mount-timeout=5"], {"Mount": {"TimeoutSec": "20"}}, None)


def test_with_an_automount_the_targets_go_to_the_automount():
    want = unit_plan.desired(["noauto", "x-systemd.automount", "x-systemd.idle-timeout=60"],
                             {"Install": {"WantedBy": "multi-user.target"}, "Mount": {"LazyUnmount": "yes"}}, None)
    assert want.automount
    assert unit_plan.mount_settings(want) == {"Mount": {"LazyUnmount": "yes"}, "Install": {}}
    assert unit_plan.automount_settings(want) == {"Automount": {"TimeoutIdleSec": "60"},
                                                  "Install": {"WantedBy": "multi-user.target"}}


def test_overridden_names_the_drop_in_that_changes_an_owned_or_declared_key():
    main = ("/etc/systemd/system/srv-m.mount", HAND_WRITTEN)
    mine = unit_plan.settings_of([main])
    drop_ins = [("/run/systemd/system/srv-m.mount.d/10.conf", "[Mount]\nOptions=lowerdir=/c:/d\nTimeoutSec=9\n"),
                ("/etc/systemd/system/srv-m.mount.d/20.conf", "[Unit]\nAfter=other.service\n")]
    whole = unit_plan.settings_of([main] + drop_ins)
    assert unit_plan.overridden(mine, whole, {}, main[0]) == [
        ("Mount.Options", "lowerdir=/c:/d", "/run/systemd/system/srv-m.mount.d/10.conf")]
    declared = {"Mount": {"TimeoutSec": "20"}, "Unit": {"After": "db.service"}}
    found = unit_plan.overridden(mine, whole, declared, main[0])
    assert [(key, origin) for key, _value, origin in found] == [
        ("Mount.Options", "/run/systemd/system/srv-m.mount.d/10.conf"),
        ("Mount.TimeoutSec", "/run/systemd/system/srv-m.mount.d/10.conf"),
        ("Unit.After", "/etc/systemd/system/srv-m.mount.d/20.conf")]


def _conf(settings, origins=None):
    return {"unit": "/etc/systemd/system/srv-m.mount", "unit_settings": settings, "origins": origins or {}}


def test_settings_rows_compare_only_boot_options_without_unit_settings():
    conf = _conf({"Unit": {"After": "db.service"}, "Mount": {"TimeoutSec": "9"}},
                 {"Mount.TimeoutSec": "/run/systemd/system/srv-m.mount.d/10.conf"})
    persisted = {"unit_targets": ["local-fs.target"], "automount": None, "unit_enabled": True}
    assert unit_plan.settings_rows(conf, persisted, None, ["x-systemd.mount-timeout=20"], True) == [
        {"field": "unit_settings.Mount.TimeoutSec", "declared": "20", "live": None, "persisted": "9",
         "drop_in": "/run/systemd/system/srv-m.mount.d/10.conf"}]
    assert unit_plan.settings_rows(conf, persisted, None, [], True) == []
    assert unit_plan.settings_rows(conf, persisted, None, ["noauto"], False) == [
        {"field": "boot", "declared": False, "live": None, "persisted": True}]


def test_settings_rows_with_unit_settings_name_what_is_not_declared():
    conf = _conf({"Unit": {"After": "db.service", "Description": "x"}, "Install": {"WantedBy": "multi-user.target"}})
    persisted = {"unit_targets": ["multi-user.target"], "automount": "srv-m.automount", "unit_enabled": True}
    rows = {row["field"]: (row["declared"], row["persisted"])
            for row in unit_plan.settings_rows(conf, persisted, {"Mount": {"TimeoutSec": "20"}}, [], True)}
    assert rows == {"unit_settings.Unit.After": (None, "db.service"), "unit_settings.Mount.TimeoutSec": ("20", None),
                    "unit_targets": (["local-fs.target"], ["multi-user.target"]), "automount": (False, True)}


def test_a_hand_written_units_own_requires_mounts_for_stay():
    found = _found()
    assert unit_plan.extra_requires(found, ["/a", "/b"]) == ["/old/layer"]
    assert unit_plan.extra_requires(found, ["/old/layer"]) == []
    want = unit_plan.with_requires(unit_plan.desired([], None, found), ["/old/layer", "/with space"])
    assert want.settings["Unit"]["RequiresMountsFor"] == '/old/layer "/with space"'
    assert unit_plan.with_requires(want, []) is want


def test_declared_requires_mounts_for_is_no_drift_beside_the_ones_the_module_adds():
    conf = _conf({"Unit": {"RequiresMountsFor": "/srv/l1 /srv/l2 /data"}})
    persisted = {"unit_targets": ["local-fs.target"], "automount": None, "unit_enabled": True}
    assert unit_plan.settings_rows(conf, persisted, {"Unit": {"RequiresMountsFor": "/data"}}, [], True) == []
    rows = unit_plan.settings_rows(conf, persisted, {"Unit": {"RequiresMountsFor": "/other"}}, [], True)
    assert [row["field"] for row in rows] == ["unit_settings.Unit.RequiresMountsFor"]
