# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

import pytest

from ansible_collections.overlayfs.mounts.plugins.module_utils._formats import unit_syntax
from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.mount_data import split_unit_words
from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.unit_file import (
    LIST_KEYS,
    Assignment,
    drop_in_order,
    effective,
    join_values,
    parse_assignments,
    quote_word,
    split_value,
)
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError

MOUNT_SECTIONS = ("Unit", "Mount", "Install")


def _pairs(text, sections=None):
    return [(a.section, a.key, a.value) for a in parse_assignments(text, "/u.mount", sections)]


def test_assignments_carry_section_key_value_and_path():
    text = "[Unit]\nDescription=Overlay\n\n[Mount]\nWhat=overlay\n"
    assert parse_assignments(text, "/etc/systemd/system/srv.mount") == [
        Assignment("Unit", "Description", "Overlay", "/etc/systemd/system/srv.mount"),
        Assignment("Mount", "What", "overlay", "/etc/systemd/system/srv.mount"),
    ]


@pytest.mark.parametrize("text, expected", [
    # Blanks around key and value go; blanks inside the value stay.
    ("[Unit]\n  Description \t=  a  b \t\n", [("Unit", "Description", "a  b")]),
    # Only the first "=" separates.
    ("[Mount]\nOptions=lowerdir=/a:/b,upperdir=/u\n", [("Mount", "Options", "lowerdir=/a:/b,upperdir=/u")]),
    # Comments with # and ;, also indented; an inline # is part of the value.
    ("[Unit]\n# x=1\n; y=2\n   # z=3\nA=b # not a comment\n", [("Unit", "A", "b # not a comment")]),
    # Specifiers and %% are kept as written.
    ("[Unit]\nDescription=50%% of %n\n", [("Unit", "Description", "50%% of %n")]),
    # Empty values are assignments too.
    ("[Unit]\nAfter=\n", [("Unit", "After", "")]),
    # Outside a section, a line without "=", and one without a key: ignored.
    ("Before=x\n[Unit]\nnothing here\n=value\nA=1\n", [("Unit", "A", "1")]),
    # Section names are case-sensitive and kept as written.
    ("[unit]\nA=1\n", [("unit", "A", "1")]),
    ("", []),
    ("[Unit]", []),
])
def test_line_syntax(text, expected):
    assert _pairs(text) == expected


@pytest.mark.parametrize("text, value", [
    # A trailing backslash continues the line and becomes a space.
    ("[Unit]\nDescription=a \\\n  b\n", "a    b"),
    ("[Unit]\nDescription=a\\\nb\n", "a b"),
    # Comment lines inside a continuation are skipped, as systemd skips them.
    ("[Unit]\nDescription=a \\\n# comment\n; other\n  b\n", "a    b"),
    # Three lines.
    ("[Unit]\nDescription=a\\\nb\\\nc\n", "a b c"),
    # An even number of backslashes does not continue.
    ("[Unit]\nDescription=a\\\\\n", "a\\\\"),
    # An odd number does.
    ("[Unit]\nDescription=a\\\\\\\nb\n", "a\\\\ b"),
    # An empty line ends the continuation.
    ("[Unit]\nDescription=a\\\n\nB=c\n", "a"),
    # A continuation at the end of the file is still read.
    ("[Unit]\nDescription=a \\\n", "a"),
    ("[Unit]\nDescription=a\\", "a"),
])
def test_continuation_lines(text, value):
    assert _pairs(text)[0] == ("Unit", "Description", value)


def test_a_commented_backslash_does_not_continue():
    assert _pairs("[Unit]\n# A=1 \\\nB=2\n") == [("Unit", "B", "2")]


def test_a_continued_line_can_hold_the_next_key():
    assert _pairs("[Unit]\nA=1\\\nB=2\n") == [("Unit", "A", "1 B=2")]


@pytest.mark.parametrize("text", [
    "[Unit]\r\nA=1\r\nB=2\r\n",
    "[Unit]\rA=1\rB=2\r",
    "[Unit]\n\rA=1\n\rB=2",
    "[Unit]\0A=1\0B=2\0",
    "[Unit]\r\n\0A=1\nB=2",
])
def test_line_ends_as_systemd_reads_them(text):
    assert _pairs(text) == [("Unit", "A", "1"), ("Unit", "B", "2")]


@pytest.mark.parametrize("text", [
    "[Unit]\nA=1\x0bB=2\n",      # \v
    "[Unit]\nA=1\x0cB=2\n",      # \f
    "[Unit]\nA=1\u2028B=2\n",    # line separator
    "[Unit]\nA=1\x1cB=2\n",
])
def test_other_breaks_are_part_of_the_value(text):
    assert _pairs(text) == [("Unit", "A", text[9:-1])]


def test_repeated_line_ends_are_separate_lines():
    # "\n\n" is two line ends; so is "\r\r": the continuation stops at the empty line.
    assert _pairs("[Unit]\nA=1\\\r\rB=2\r") == [("Unit", "A", "1"), ("Unit", "B", "2")]


def test_a_byte_order_mark_is_dropped():
    assert _pairs("\ufeff[Unit]\nA=1\n") == [("Unit", "A", "1")]


def test_sections_filter_drops_unknown_sections():
    text = "[Unit]\nA=1\n[Service]\nB=2\n[X-Custom]\nC=3\n[Mount]\nD=4\n"
    assert _pairs(text, MOUNT_SECTIONS) == [("Unit", "A", "1"), ("Mount", "D", "4")]
    assert len(_pairs(text)) == 4


@pytest.mark.parametrize("text, fragment", [
    ("[Unit\nA=1\n", "invalid section header '[Unit'"),
    ("[Unit]\nA=1\n[Mount\n", "line 3: invalid section header"),
    ("[Un\"it]\n", "quotes or backslashes"),
    ("[Un\\it]\n", "quotes or backslashes"),
    ("[Un\tit]\n", "control characters"),
    ("[Unit]\nA=\udcff\n", "not valid UTF-8"),
])
def test_lines_systemd_stops_at(text, fragment):
    with pytest.raises(OverlayError) as info:
        parse_assignments(text, "/etc/systemd/system/srv.mount")
    assert info.value.message.startswith("/etc/systemd/system/srv.mount, line ")
    assert fragment in info.value.message
    assert "fix or remove the line" in info.value.message


def test_error_line_numbers_count_physical_lines():
    with pytest.raises(OverlayError) as info:
        parse_assignments("[Unit]\nA=1\\\n# c\nb\n[Bad\n", "/x")
    assert "line 5:" in info.value.message


def test_effective_last_assignment_wins():
    unit = effective([
        ("/usr/lib/systemd/system/srv.mount", "[Unit]\nDescription=main\n[Mount]\nTimeoutSec=10\nWhat=overlay\n"),
        ("/etc/systemd/system/srv.mount.d/10-a.conf", "[Mount]\nTimeoutSec=20\n"),
        ("/etc/systemd/system/srv.mount.d/20-b.conf", "[Mount]\nTimeoutSec=30\n"),
    ])
    assert unit.settings == {"Unit": {"Description": "main"}, "Mount": {"TimeoutSec": "30", "What": "overlay"}}
    assert unit.origin("Mount", "TimeoutSec") == "/etc/systemd/system/srv.mount.d/20-b.conf"
    assert unit.origin("Unit", "Description") == "/usr/lib/systemd/system/srv.mount"
    assert unit.origin("Mount", "Options") is None
    assert unit.from_file("Mount", "What", "/usr/lib/systemd/system/srv.mount")
    assert not unit.from_file("Mount", "TimeoutSec", "/usr/lib/systemd/system/srv.mount")
    assert unit.files == ["/usr/lib/systemd/system/srv.mount", "/etc/systemd/system/srv.mount.d/10-a.conf",
                          "/etc/systemd/system/srv.mount.d/20-b.conf"]
    assert len(unit.assignments) == 5


def test_an_empty_single_value_is_left_out_but_has_an_origin():
    unit = effective([("/m", "[Unit]\nDescription=x\n"), ("/d.conf", "[Unit]\nDescription=\n")])
    assert unit.settings == {}
    assert unit.origin("Unit", "Description") == "/d.conf"
    assert unit.values("Unit", "Description") == []


def test_dependency_lists_gather_and_are_never_reset():
    unit = effective([
        ("/m", "[Unit]\nAfter=a.service b.service\nAfter=c.service\n"),
        ("/d1.conf", "[Unit]\nAfter=\nAfter=b.service d.service\n"),
        ("/d2.conf", "[Unit]\nAfter=\n"),
    ])
    assert unit.settings["Unit"]["After"] == "a.service b.service c.service d.service"
    assert unit.values("Unit", "After") == ["a.service", "b.service", "c.service", "d.service"]
    # The empty assignment in d2 changed nothing, so d1 decided.
    assert unit.origin("Unit", "After") == "/d1.conf"


def test_an_empty_dependency_alone_sets_nothing():
    unit = effective([("/m", "[Unit]\nRequires=\n")])
    assert unit.settings == {}
    assert unit.origin("Unit", "Requires") is None


def test_unit_names_keep_their_backslashes():
    unit = effective([("/m", "[Unit]\nAfter=srv-my\\x20dir.mount\tb.service\n")])
    assert unit.values("Unit", "After") == ["srv-my\\x20dir.mount", "b.service"]
    assert unit.settings["Unit"]["After"] == "srv-my\\x20dir.mount b.service"


def test_resettable_lists_start_over_after_an_empty_assignment():
    unit = effective([
        ("/m", "[Install]\nWantedBy=local-fs.target\n[Unit]\nDocumentation=man:a(1)\n"),
        ("/d.conf", "[Install]\nWantedBy=\nWantedBy=multi-user.target\n[Unit]\nDocumentation=\n"),
    ])
    assert unit.settings == {"Install": {"WantedBy": "multi-user.target"}}
    assert unit.origin("Install", "WantedBy") == "/d.conf"
    # Reset to nothing: left out, and the resetting file decided it.
    assert unit.origin("Unit", "Documentation") == "/d.conf"
    assert unit.values("Unit", "Documentation") == []


def test_quoted_lists_are_unquoted_and_written_back_quoted():
    unit = effective([("/m", "[Unit]\nRequiresMountsFor=/a \"/b c\" '/d'\nRequiresMountsFor=/a /e%%f\n")])
    assert unit.values("Unit", "RequiresMountsFor") == ["/a", "/b c", "/d", "/e%%f"]
    assert unit.settings["Unit"]["RequiresMountsFor"] == '/a "/b c" /d /e%%f'


def test_conditions_are_one_value_each_and_reset_together():
    unit = effective([
        ("/m", "[Unit]\nConditionPathExists=/a b\nConditionPathExists=!/c\nConditionHost=h\n"
               "AssertPathExists=/x\n"),
    ])
    assert unit.values("Unit", "ConditionPathExists") == ["/a b", "!/c"]
    assert unit.settings["Unit"]["ConditionHost"] == "h"
    reset = effective([
        ("/m", "[Unit]\nConditionPathExists=/a\nConditionHost=h\nAssertPathExists=/x\n"),
        ("/d.conf", "[Unit]\nConditionFirstBoot=\nConditionUser=root\n"),
    ])
    # Any empty Condition...= resets every condition, but not the assertions.
    assert reset.settings == {"Unit": {"AssertPathExists": "/x", "ConditionUser": "root"}}
    assert reset.origin("Unit", "ConditionPathExists") == "/d.conf"
    assert reset.origin("Unit", "ConditionHost") == "/d.conf"
    assert reset.origin("Unit", "AssertPathExists") == "/m"


def test_environment_lists_of_a_mount_unit():
    unit = effective([
        ("/m", "[Mount]\nEnvironment=A=1 \"B=2 3\"\nEnvironmentFile=/etc/a b\n"),
        ("/d.conf", "[Mount]\nEnvironment=C=4\nEnvironmentFile=\nEnvironmentFile=-/etc/c\n"),
    ])
    assert unit.values("Mount", "Environment") == ["A=1", "B=2 3", "C=4"]
    assert unit.settings["Mount"]["Environment"] == 'A=1 "B=2 3" C=4'
    assert unit.values("Mount", "EnvironmentFile") == ["-/etc/c"]


def test_the_same_item_counts_once():
    unit = effective([("/m", "[Install]\nWantedBy=a.target a.target\n"), ("/d.conf", "[Install]\nWantedBy=a.target\n")])
    assert unit.settings["Install"]["WantedBy"] == "a.target"
    assert unit.origin("Install", "WantedBy") == "/d.conf"


def test_effective_sections_filter():
    unit = effective([("/m", "[Mount]\nWhat=overlay\n[Service]\nExecStart=/bin/true\n")], MOUNT_SECTIONS)
    assert unit.settings == {"Mount": {"What": "overlay"}}


def test_settings_keep_the_order_of_first_assignment():
    unit = effective([("/m", "[Mount]\nB=1\nA=2\n[Unit]\nC=3\n"), ("/d.conf", "[Mount]\nA=4\n")])
    assert list(unit.settings) == ["Mount", "Unit"]
    assert list(unit.settings["Mount"].items()) == [("B", "1"), ("A", "4")]


def test_list_keys():
    assert ("Unit", "After") in LIST_KEYS
    assert ("Unit", "ConditionPathExists") in LIST_KEYS
    assert ("Unit", "AssertPathExists") in LIST_KEYS
    assert ("Unit", "AssertFirmware") not in LIST_KEYS
    assert ("Install", "WantedBy") in LIST_KEYS
    assert ("Mount", "Options") not in LIST_KEYS
    assert ("Unit", "Description") not in LIST_KEYS


@pytest.mark.parametrize("word", ["/srv/a", "/srv/my dir", "/srv/a\tb", '/srv/"q"', "/srv/it's", "/srv/back\\slash",
                                  "/srv/50%"])
def test_quote_word_reads_back_and_matches_the_unit_renderer(word):
    assert split_unit_words(quote_word(word)) == [word]
    # unit_syntax doubles % on top: the same quoting otherwise.
    assert unit_syntax._unit_word(word) == quote_word(word).replace("%", "%%")  # pylint: disable=protected-access


def test_split_and_join_round_trip():
    items = ["/a", "/b c", '/d"e']
    assert split_value("Unit", "RequiresMountsFor", join_values("Unit", "RequiresMountsFor", items)) == items
    assert split_value("Unit", "After", "a.service  b.service") == ["a.service", "b.service"]
    assert split_value("Unit", "Description", "a b") == ["a b"]
    assert split_value("Unit", "After", "") == []


def test_drop_in_order_sorts_by_name_across_directories():
    found = [
        (0, "/etc/systemd/system/srv.mount.d/50-b.conf"),
        (2, "/usr/lib/systemd/system/srv.mount.d/10-a.conf"),
        (1, "/run/systemd/system/srv.mount.d/99-z.conf"),
        (3, "/usr/lib/systemd/system/mount.d/20-type.conf"),
    ]
    assert [path for _rank, path in drop_in_order(found)] == [
        "/usr/lib/systemd/system/srv.mount.d/10-a.conf",
        "/usr/lib/systemd/system/mount.d/20-type.conf",
        "/etc/systemd/system/srv.mount.d/50-b.conf",
        "/run/systemd/system/srv.mount.d/99-z.conf",
    ]


def test_drop_in_order_keeps_the_best_ranked_of_one_name():
    found = [
        (2, "/usr/lib/systemd/system/srv.mount.d/override.conf"),
        (0, "/etc/systemd/system/srv.mount.d/override.conf"),
        (1, "/run/systemd/system/srv.mount.d/override.conf"),
    ]
    assert drop_in_order(found) == [(0, "/etc/systemd/system/srv.mount.d/override.conf")]


def test_drop_in_order_ties_keep_the_first_given():
    found = [(0, "/etc/systemd/system/srv.mount.d/a.conf"), (0, "/etc/systemd/system/mount.d/a.conf")]
    assert drop_in_order(found) == [(0, "/etc/systemd/system/srv.mount.d/a.conf")]


def test_a_masked_drop_in_hides_lower_ones_and_drops_out():
    found = [
        (2, "/usr/lib/systemd/system/srv.mount.d/a.conf", False),
        (0, "/etc/systemd/system/srv.mount.d/a.conf", True),
        (1, "/run/systemd/system/srv.mount.d/b.conf", False),
    ]
    assert drop_in_order(found) == [(1, "/run/systemd/system/srv.mount.d/b.conf")]


def test_a_masked_drop_in_of_lower_rank_changes_nothing():
    found = [(0, "/etc/systemd/system/srv.mount.d/a.conf", False), (2, "/usr/lib/systemd/system/srv.mount.d/a.conf", True)]
    assert drop_in_order(found) == [(0, "/etc/systemd/system/srv.mount.d/a.conf")]


def test_drop_in_order_compares_names_as_bytes():
    found = [(0, "/d/b.conf"), (0, "/d/a.conf"), (0, "/d/B.conf"), (0, "/d/\u00e9.conf"), (0, "/d/_.conf"), (0, "/d/1.conf")]
    assert [path for _rank, path in drop_in_order(found)] == [
        "/d/1.conf", "/d/B.conf", "/d/_.conf", "/d/a.conf", "/d/b.conf", "/d/\u00e9.conf"]


def test_drop_in_order_skips_what_systemd_skips():
    found = [(0, "/d/.hidden.conf"), (0, "/d/a.conf~"), (0, "/d/b.txt"), (0, "/d/c.conf")]
    assert drop_in_order(found) == [(0, "/d/c.conf")]


def test_drop_in_order_then_effective():
    texts = {
        "/etc/systemd/system/srv.mount.d/10-x.conf": "[Mount]\nTimeoutSec=5\n",
        "/usr/lib/systemd/system/srv.mount.d/10-x.conf": "[Mount]\nTimeoutSec=99\n",
        "/usr/lib/systemd/system/srv.mount.d/20-y.conf": "[Mount]\nLazyUnmount=yes\n",
    }
    order = drop_in_order([(0, "/etc/systemd/system/srv.mount.d/10-x.conf"),
                           (2, "/usr/lib/systemd/system/srv.mount.d/10-x.conf"),
                           (2, "/usr/lib/systemd/system/srv.mount.d/20-y.conf")])
    unit = effective([("/etc/systemd/system/srv.mount", "[Mount]\nTimeoutSec=1\n")]
                     + [(path, texts[path]) for _rank, path in order])
    assert unit.settings == {"Mount": {"TimeoutSec": "5", "LazyUnmount": "yes"}}
    assert unit.origin("Mount", "TimeoutSec") == "/etc/systemd/system/srv.mount.d/10-x.conf"
