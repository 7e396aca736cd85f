# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

import pytest

from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.mount_flags import (
    canonical_flags,
    flag_differences,
    live_flags,
    merge_flags,
    persisted_flags,
    split_flags,
    superblock_differs,
)


def test_flags_are_split_from_overlay_options_in_order():
    assert split_flags(["index=off", "nosuid", " ro ", "volatile", "noatime"]) == (
        ["index=off", "volatile"], ["nosuid", "ro", "noatime"])
    assert split_flags(None) == ([], [])


@pytest.mark.parametrize("given, canonical", [
    ([], []),
    (["rw", "suid", "dev", "exec", "relatime", "diratime"], []),
    (["noatime", "nosuid", "ro"], ["ro", "nosuid", "noatime"]),
    (["nodiratime", "strictatime", "noexec", "nodev"], ["nodev", "noexec", "strictatime", "nodiratime"]),
    (["nosuid", "nosuid"], ["nosuid"]),
])
def test_canonical_flags_keep_what_differs_from_a_fresh_mount_in_table_order(given, canonical):
    assert canonical_flags(given) == canonical


@pytest.mark.parametrize("given, words", [
    (["ro", "rw"], "options: 'ro' and 'rw' contradict each other (both set whether the mount is read-only)"),
    (["nosuid", "suid"], "'nosuid' and 'suid' contradict each other"),
    (["noatime", "strictatime"], "'noatime' and 'strictatime' contradict each other (both set how access times"),
    (["relatime", "noatime"], "'relatime' and 'noatime'"),
    (["diratime", "nodiratime"], "'diratime' and 'nodiratime'"),
])
def test_contradictions_are_refused_naming_the_field_and_the_fix(given, words):
    with pytest.raises(OverlayError) as error:
        canonical_flags(given)
    assert words in error.value.message and error.value.message.endswith("keep one of them")


def test_boot_option_flags_join_the_declared_ones():
    assert merge_flags(["nosuid"], ["nodev", "nosuid"], "boot_options", "options") == ["nosuid", "nodev"]


def test_a_boot_option_flag_contradicting_options_is_refused():
    with pytest.raises(OverlayError, match="^boot_options: 'rw' contradicts 'ro' in options .*keep one of them, in options$"):
        merge_flags(["ro"], ["rw"], "boot_options", "options")
    with pytest.raises(OverlayError, match="^boot_options: 'noatime' and 'strictatime' contradict each other"):
        merge_flags([], ["noatime", "strictatime"], "boot_options", "options")


@pytest.mark.parametrize("shown, flags", [
    (["rw", "relatime"], []),
    (["ro", "nosuid", "nodev", "noexec", "noatime"], ["ro", "nosuid", "nodev", "noexec", "noatime"]),
    (["rw", "nosuid"], ["nosuid", "strictatime"]),  # the kernel shows nothing for strictatime
    (["rw", "nodiratime", "relatime", "nosymfollow"], ["nodiratime"]),
])
def test_live_flags_from_mountinfo_field_6(shown, flags):
    assert live_flags(shown) == flags


def test_flag_differences_by_group():
    assert flag_differences(["nosuid", "noatime"], ["nodev", "strictatime"]) == [
        ("suid", "nosuid", "suid"), ("dev", "dev", "nodev"), ("atime", "noatime", "strictatime")]
    assert flag_differences(["ro"], ["ro"]) == []


def test_persisted_flags_that_contradict_stay_as_written():
    assert persisted_flags(["rw", "nodev"]) == ["nodev"]
    assert persisted_flags(["ro", "rw"]) == ["ro", "rw"]


@pytest.mark.parametrize("flags, writable, superblock, differs", [
    ([], True, "ro", True),
    (["ro"], True, "ro", False),   # a read-only mount: the overlay itself may be either
    ([], False, "ro", False),      # no upper: always read-only underneath
    ([], True, "rw", False),
])
def test_a_read_only_superblock_differs_only_for_a_writable_overlay_not_declared_ro(flags, writable, superblock, differs):
    assert superblock_differs(flags, writable, superblock) is differs
