# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

import os

from ansible_collections.overlayfs.mounts.plugins.module_utils._host import unit_paths


def _root(tmp_path):
    """A unit_dir that stands for /etc/systemd/system under a root of its own."""
    unit_dir = tmp_path / "etc/systemd/system"
    unit_dir.mkdir(parents=True)
    return str(unit_dir)


def _write(path, text="[Mount]\n"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        handle.write(text)


def test_a_unit_dir_under_a_root_reads_the_whole_search_path_there(tmp_path):
    unit_dir = _root(tmp_path)
    (tmp_path / "run/systemd/system").mkdir(parents=True)
    dirs = unit_paths.search_path(unit_dir)
    assert dirs[0] == str(tmp_path) + "/etc/systemd/system.control"
    assert dirs.index(unit_dir) < dirs.index(str(tmp_path) + "/run/systemd/system")
    assert dirs.index(str(tmp_path) + "/run/systemd/system") < dirs.index(str(tmp_path) + "/usr/lib/systemd/system")


def test_any_other_unit_dir_is_read_with_its_control_sibling(tmp_path):
    assert unit_paths.search_path(str(tmp_path / "units")) == [str(tmp_path / "units.control"), str(tmp_path / "units")]
    assert unit_paths.mask_dir(str(tmp_path / "units")) == str(tmp_path / "units.control")


def test_dropin_dirs_most_specific_first():
    assert unit_paths.dropin_dirs("srv-a-b.mount") == ["srv-a-b.mount.d", "srv-a-.mount.d", "srv-.mount.d", "mount.d"]
    assert unit_paths.dropin_dirs("srv.mount") == ["srv.mount.d", "mount.d"]
    assert unit_paths.dropin_dirs("-.mount") == ["-.mount.d", "mount.d"]


def test_drop_ins_apply_by_file_name_and_the_first_dir_wins(tmp_path):
    unit_dir = _root(tmp_path)
    name = "srv-x.mount"
    etc = unit_dir + "/" + name + ".d/"
    run = str(tmp_path) + "/run/systemd/system/" + name + ".d/"
    lib = str(tmp_path) + "/usr/lib/systemd/system/mount.d/"
    _write(etc + "50-same.conf", "[Mount]\nTimeoutSec=1\n")
    _write(run + "50-same.conf", "[Mount]\nTimeoutSec=2\n")
    _write(run + "10-run.conf", "[Mount]\nOptions=ro\n")
    _write(lib + "90-all.conf", "[Unit]\nAfter=x.service\n")
    found = unit_paths.drop_ins(unit_dir, name)
    assert [d.path for d in found] == [run + "10-run.conf", etc + "50-same.conf", lib + "90-all.conf"]
    assert found[1].text == "[Mount]\nTimeoutSec=1\n"


def test_a_mask_hides_drop_ins_of_its_name_and_applies_nothing(tmp_path):
    unit_dir = _root(tmp_path)
    name = "srv-x.mount"
    _write(str(tmp_path) + "/run/systemd/system/" + name + ".d/10-opts.conf", "[Mount]\nOptions=ro\n")
    mask = unit_paths.mask_path(unit_dir, name, "/run/systemd/system/" + name + ".d/10-opts.conf")
    assert mask == str(tmp_path) + "/etc/systemd/system.control/srv-x.mount.d/10-opts.conf"
    assert unit_paths.make_mask(mask) is True
    found = unit_paths.drop_ins(unit_dir, name)
    assert [(d.path, d.text) for d in found] == [(mask, None)]


def test_links_in_any_target_and_kind(tmp_path):
    unit_dir = _root(tmp_path)
    name = "srv-x.mount"
    _write(os.path.join(unit_dir, name))
    assert unit_paths.make_link(unit_dir, name, "wants", "multi-user.target")[1] is True
    unit_paths.make_link(unit_dir, name, "requires", "my.target")
    os.makedirs(str(tmp_path) + "/run/systemd/generator/local-fs.target.requires")
    os.symlink("/x", str(tmp_path) + "/run/systemd/generator/local-fs.target.requires/" + name)
    found = unit_paths.links(unit_dir, name)
    assert sorted((link.kind, link.target) for link in found) == [("requires", "my.target"), ("wants", "multi-user.target")]
    assert len(unit_paths.links(unit_dir, name, generated=True)) == 3
    link = unit_paths.link_path(unit_dir, name, "wants", "multi-user.target")
    assert unit_paths.remove_link(link) == os.path.join(unit_dir, name)
    assert not os.path.isdir(os.path.dirname(link))  # emptied: gone with the link
    unit_paths.restore_link(link, os.path.join(unit_dir, name))
    assert os.readlink(link) == os.path.join(unit_dir, name)


def test_main_file_is_the_first_along_the_search_path(tmp_path):
    unit_dir = _root(tmp_path)
    name = "srv-x.mount"
    _write(str(tmp_path) + "/usr/lib/systemd/system/" + name)
    assert unit_paths.main_file(unit_dir, name) == str(tmp_path) + "/usr/lib/systemd/system/" + name
    _write(os.path.join(unit_dir, name))
    assert unit_paths.main_file(unit_dir, name) == os.path.join(unit_dir, name)
    assert unit_paths.main_file(unit_dir, "other.mount") is None
