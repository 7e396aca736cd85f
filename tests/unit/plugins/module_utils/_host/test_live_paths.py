# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

import os

from ansible_collections.overlayfs.mounts.plugins.module_utils._host.live_paths import (
    LOOP,
    LinkTimes,
    birth_time,
    boot_time,
)


def _tree(tmp_path):
    (tmp_path / "rel" / "v1").mkdir(parents=True)
    (tmp_path / "rel" / "v2").mkdir()
    os.symlink("rel/v1", str(tmp_path / "current"))
    return str(tmp_path)


def test_a_path_without_symlinks_is_kept_normalised(tmp_path):
    root = _tree(tmp_path)
    assert LinkTimes().trace(root + "//rel/./v1/") == (root + "/rel/v1", None)


def test_a_symlinked_path_leads_to_its_target_with_the_links_ctime(tmp_path):
    root = _tree(tmp_path)
    real, newest = LinkTimes().trace(root + "/current")
    assert real == root + "/rel/v1"
    assert newest == os.lstat(root + "/current").st_ctime_ns


def test_a_symlinked_parent_counts_as_well(tmp_path):
    root = _tree(tmp_path)
    (tmp_path / "rel" / "v1" / "sub").mkdir()
    real, newest = LinkTimes().trace(root + "/current/sub")
    assert real == root + "/rel/v1/sub" and newest is not None


def test_dot_dot_after_a_symlink_is_taken_from_the_target(tmp_path):
    root = _tree(tmp_path)
    assert LinkTimes().trace(root + "/current/../v2")[0] == root + "/rel/v2"


def test_a_link_loop_is_never_older_than_a_mount(tmp_path):
    os.symlink("b", str(tmp_path / "a"))
    os.symlink("a", str(tmp_path / "b"))
    assert LinkTimes().trace(str(tmp_path / "a"))[1] == LOOP


def test_without_follow_nothing_is_resolved(tmp_path):
    root = _tree(tmp_path)
    assert LinkTimes(follow=False).trace(root + "/current/") == (root + "/current", None)


def test_own_link_reads_the_target_made_absolute(tmp_path):
    root = _tree(tmp_path)
    os.symlink("/abs/layer", str(tmp_path / "0"))
    assert LinkTimes.own_link(root + "/0") == "/abs/layer"
    assert LinkTimes.own_link(root + "/current") == root + "/rel/v1"
    assert LinkTimes.own_link(root + "/missing") is None


def test_mount_time_is_the_birth_of_work_else_the_boot(tmp_path):
    (tmp_path / "w" / "work").mkdir(parents=True)
    born = birth_time(str(tmp_path / "w" / "work"))
    times = LinkTimes()
    if born is not None:
        assert times.mount_time(str(tmp_path / "w")) == born
    assert times.mount_time(None) == times.boot_time() == boot_time()
    os.symlink("w", str(tmp_path / "wl"))
    assert times.mount_time(str(tmp_path / "wl")) == times.boot_time()  # a symlinked work dir proves nothing


def test_boot_time_from_proc_stat(tmp_path):
    stat = tmp_path / "stat"
    stat.write_text("cpu 1 2 3\nbtime 1700000000\nprocesses 5\n")
    assert boot_time(str(stat)) == 1700000000 * 10 ** 9
    assert boot_time(str(tmp_path / "none")) == 0
