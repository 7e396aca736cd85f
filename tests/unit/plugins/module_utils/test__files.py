# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Atomic writes, backups and stale temp files, on real files."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import subprocess
import sys

import pytest

from ansible_collections.overlayfs.mounts.plugins.module_utils import _files as files
from ansible_collections.overlayfs.mounts.plugins.module_utils._errors import OverlayError


@pytest.fixture
def module():
    """A real AnsibleModule, for its real atomic_move."""
    from ansible.module_utils import basic
    saved = basic._ANSIBLE_ARGS, getattr(basic, "_ANSIBLE_PROFILE", None)
    basic._ANSIBLE_ARGS = json.dumps({"ANSIBLE_MODULE_ARGS": {}}).encode("utf-8")
    basic._ANSIBLE_PROFILE = "legacy"
    try:
        yield basic.AnsibleModule(argument_spec={})
    finally:
        basic._ANSIBLE_ARGS, basic._ANSIBLE_PROFILE = saved


def test_symlinked_fstab_target_is_written_in_its_own_dir(tmp_path, module):
    (tmp_path / "cm").mkdir()
    (tmp_path / "cm" / "fstab").write_text("old\n")
    os.symlink("cm/fstab", str(tmp_path / "fstab"))
    files.write_atomic(module, str(tmp_path / "fstab"), "new\n")
    assert os.path.islink(str(tmp_path / "fstab"))
    assert (tmp_path / "cm" / "fstab").read_text() == "new\n"
    assert sorted(os.listdir(str(tmp_path / "cm"))) == ["fstab"]


def test_bare_exception_of_atomic_move_becomes_an_error_and_leaves_no_temp(tmp_path, module):
    """atomic_move raises a bare Exception (here: the target is a directory)."""
    (tmp_path / "fstab").mkdir()
    with pytest.raises(OverlayError) as error:
        files.write_atomic(module, str(tmp_path / "fstab"), "new\n", step="writing fstab")
    assert error.value.message == "writing fstab %s failed: Is a directory" % (tmp_path / "fstab")
    assert os.listdir(str(tmp_path)) == ["fstab"]
    assert os.listdir(str(tmp_path / "fstab")) == []


def test_backup_is_complete_and_keeps_mode(tmp_path):
    (tmp_path / "fstab").write_text("x" * 10000)
    os.chmod(str(tmp_path / "fstab"), 0o600)
    dest = files.backup(str(tmp_path / "fstab"))
    assert open(dest).read() == "x" * 10000
    assert os.stat(dest).st_mode & 0o777 == 0o600
    assert sorted(os.listdir(str(tmp_path))) == sorted(["fstab", os.path.basename(dest)])


def test_failed_backup_leaves_nothing(tmp_path):
    with pytest.raises(OverlayError) as error:
        files.backup(str(tmp_path / "missing"))
    assert error.value.message.startswith("backing up %s failed" % (tmp_path / "missing"))
    assert os.listdir(str(tmp_path)) == []


def test_stale_temps_of_dead_writers_are_removed(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / (".fstab%s%d.abc" % (files.TEMP_MARK, dead.pid))
    live = tmp_path / (".fstab%s%d.abc" % (files.TEMP_MARK, os.getppid()))
    other = tmp_path / ".fstab.swp"
    for path in (stale, live, other):
        path.write_text("partial")
    assert files.clean_stale_temps(str(tmp_path / "fstab")) == [str(stale)]
    assert sorted(os.listdir(str(tmp_path))) == sorted([live.name, other.name])
