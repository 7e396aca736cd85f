# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.overlayfs.mounts.plugins.module_utils._errors import OverlayError
from ansible_collections.overlayfs.mounts.plugins.module_utils._persist import (
    boot_extras,
    edit_fstab,
    fstab_line,
    persisted_entries,
    unit_config,
    unit_plan,
    unit_text,
)

DECL = {"path": "/srv/m", "lowerdir": ["/srv/l1", "/srv/l2"], "upperdir": "/srv/u", "workdir": "/srv/w",
        "options": ["index=off"]}
USER_FSTAB = "# /etc/fstab: static file system information.\nUUID=1\t/\text4\terrors=remount-ro 0 1\n\n# end"


@pytest.mark.parametrize("boot, options, expected", [
    (True, [], []),
    (False, [], ["noauto"]),
    (True, ["nofail", "nofail", " _netdev "], ["nofail", "_netdev"]),
    (False, ["x-systemd.device-timeout=5s"], ["noauto", "x-systemd.device-timeout=5s"]),
])
def test_boot_extras(boot, options, expected):
    assert boot_extras(boot, options) == expected


def test_an_unmarked_line_is_taken_over_and_marked():
    hand = "overlay /srv/m overlay lowerdir=/srv/l1:/srv/l2,upperdir=/srv/u,workdir=/srv/w,index=off 0 0\n"
    assert persisted_entries(hand, "/srv/m")[0]["managed"] is False
    text, _info = edit_fstab(hand, DECL, True, [])
    assert persisted_entries(text, "/srv/m")[0]["managed"] is True
    assert text.count("\n") == 1


@pytest.mark.parametrize("options", [["noauto"], ["auto"], [""], ["x-overlayfs.managed"]])
def test_boot_extras_refuses_what_boot_owns(options):
    with pytest.raises(OverlayError, match="^boot_options:"):
        boot_extras(True, options)


def test_add_keeps_every_user_line_and_the_final_newline_convention():
    text, info = edit_fstab(USER_FSTAB, DECL, True, [])
    assert text.startswith(USER_FSTAB + "\n")
    assert not text.endswith("\n")
    assert text.count("\n") == USER_FSTAB.count("\n") + 1
    assert info == {"duplicates": 0, "removed": 0}
    assert persisted_entries(text, "/srv/m")[0]["lowerdir"] == ["/srv/l1", "/srv/l2"]


def test_second_edit_is_a_no_op():
    once, _info = edit_fstab(USER_FSTAB, DECL, True, ["nofail"])
    twice, info = edit_fstab(once, DECL, True, ["nofail"])
    assert twice == once and info["duplicates"] == 0


def test_an_equivalent_hand_written_line_is_kept_as_written():
    hand = ("overlay\t/srv/m/  overlay  index=off,workdir=/srv/w,lowerdir=/srv/l1:/srv/l2,upperdir=/srv/u,"
            "x-overlayfs.managed,"
            "x-systemd.requires-mounts-for=/srv/w,x-systemd.requires-mounts-for=/srv/l1,"
            "x-systemd.requires-mounts-for=/srv/l2,x-systemd.requires-mounts-for=/srv/u\t0 0\n")
    text, _info = edit_fstab(hand, DECL, True, [])
    assert text == hand


def test_a_changed_declaration_replaces_the_line_in_place():
    before, _info = edit_fstab("a /b c\n", DECL, True, [])
    before += "d /e f\n"
    changed = dict(DECL, lowerdir=["/srv/l2", "/srv/l1"])
    after, _info = edit_fstab(before, changed, True, [])
    lines = after.splitlines()
    assert lines[0] == "a /b c" and lines[2] == "d /e f"
    assert persisted_entries(after, "/srv/m")[0]["lowerdir"] == ["/srv/l2", "/srv/l1"]


def test_duplicates_are_collapsed_into_one():
    line = fstab_line(DECL, [])
    text = "a /b c\n" + line + "\n# between\n" + line.replace("index=off", "index=on") + "\n"
    after, info = edit_fstab(text, DECL, True, [])
    assert info["duplicates"] == 1
    assert after == "a /b c\n" + line + "\n# between\n"


def test_remove_takes_every_overlay_line_of_the_mount_point_only():
    line = fstab_line(DECL, [])
    other = fstab_line(dict(DECL, path="/srv/other"), [])
    text = line + "\n" + other + "\n" + line + "\n"
    after, info = edit_fstab(text, DECL, False, [])
    assert after == other + "\n" and info["removed"] == 2


def test_a_non_overlay_entry_for_the_mount_point_is_an_error():
    with pytest.raises(OverlayError, match="already has a ext4 entry for /srv/m"):
        edit_fstab("/dev/sdb1 /srv/m ext4 defaults 0 2\n", DECL, True, [])


def test_noauto_when_not_at_boot():
    text, _info = edit_fstab("", DECL, True, boot_extras(False, ["nofail"]))
    assert persisted_entries(text, "/srv/m")[0]["boot_options"] == ["noauto", "nofail"]


def test_unit_round_trip():
    text = unit_text(DECL, ["noauto", "nofail"])
    config = unit_config(text)
    assert config["managed"] is True
    assert config["path"] == "/srv/m"
    assert config["lowerdir"] == ["/srv/l1", "/srv/l2"]
    assert config["options"] == ["index=off"]
    assert config["boot_options"] == ["nofail"]
    assert set(config["requires_mounts_for"]) == {"/srv/l1", "/srv/l2", "/srv/u", "/srv/w"}


def test_a_unit_of_another_type_is_not_an_overlay_unit():
    assert unit_config("[Mount]\nWhat=/dev/sdb1\nWhere=/srv/m\nType=ext4\n") is None


# 16 layers of about 100 bytes with a comma in one: no lowerdir+ (mount(8)
# splits at the comma), so only the one-page lowerdir= form holds them.
COMMA_DECL = dict(DECL, options=[], lowerdir=["/srv/" + "x" * 90 + "/layer-%d" % i for i in range(16)]
                  + ["/srv/with,comma"])


def test_a_unit_takes_short_links_where_mount_uses_fsconfig():
    text, links = unit_plan(COMMA_DECL, [], links_dir="/var/lib/l/m", fsconfig=True)
    assert links == "/var/lib/l/m"
    assert "\nOptions=lowerdir=0:1:2:3:4:5:6:7:8:9:10:11:12:13:14:15:16,upperdir=/srv/u,workdir=/srv/w\n" in text
    assert "\nWorkingDirectory=/var/lib/l/m\n" in text


@pytest.mark.parametrize("fsconfig", [None, False])
def test_a_unit_keeps_full_paths_where_mount_uses_mount2(fsconfig):
    notes = []
    text, links = unit_plan(COMMA_DECL, [], links_dir="/var/lib/l/m", notes=notes, fsconfig=fsconfig)
    assert links is None
    assert "\nOptions=lowerdir=/srv/xxx" in text and "/srv/with\\,comma," in text
    assert "WorkingDirectory" not in text and len(notes) == 1


def test_fstab_refuses_the_one_page_form_where_mount_uses_fsconfig():
    with pytest.raises(OverlayError, match="^lowerdir: .*fsconfig.*persist: systemd"):
        edit_fstab(USER_FSTAB, COMMA_DECL, True, [], fsconfig=True)


def test_a_line_written_for_mount2_is_not_kept_once_mount_uses_fsconfig():
    # Written on util-linux 2.38; after an upgrade to 2.39+ it would not mount at boot.
    before, _info = edit_fstab(USER_FSTAB, COMMA_DECL, True, [], fsconfig=False)
    assert edit_fstab(before, COMMA_DECL, True, [], fsconfig=False)[0] == before
    with pytest.raises(OverlayError, match="fsconfig"):
        edit_fstab(before, COMMA_DECL, True, [], fsconfig=True)
    # A line that fits one value per option is kept as it is.
    short, _info = edit_fstab(USER_FSTAB, DECL, True, [], fsconfig=False)
    assert edit_fstab(short, DECL, True, [], fsconfig=True)[0] == short


# Issue 9: boot_options that would eat the marker or set layers ---------------

@pytest.mark.parametrize("option", ["lowerdir+=/x", "datadir+=/x", "lowerdir=/x", "upperdir=/x", "workdir=/x",
                                    "index=off", "x-systemd.requires-mounts-for=/x",
                                    'x-opt="unbalanced', "x-opt=a\\", "a,b"])
def test_boot_options_refused(option):
    with pytest.raises(OverlayError) as error:
        boot_extras(True, [option])
    assert error.value.message.startswith("boot_options:")


def test_boot_option_quotes_balanced_and_escaped_backslash_accepted():
    assert boot_extras(True, ['x-opt="a b"', "x-two=c\\\\"]) == ['x-opt="a b"', "x-two=c\\\\"]


def test_defaults_in_boot_options_causes_no_drift():
    decl = {"path": "/m", "lowerdir": ["/l1", "/l2"], "upperdir": None, "workdir": None, "options": []}
    extras = boot_extras(True, ["defaults", "nofail"])
    assert extras == ["nofail"]
    text, _info = edit_fstab("", decl, True, extras)
    assert edit_fstab(text, decl, True, boot_extras(True, ["defaults", "nofail"]))[0] == text
