# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Loading overlayfs and keeping it loaded at boot (_host.kernel_module), with a fake module and temp files."""

import os

import pytest

from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError
from ansible_collections.overlayfs.mounts.plugins.module_utils._host.kernel_module import (
    MODULES_LOAD_TEXT,
    keep_at_boot,
    load_overlay,
    overlay_listed,
)

WITHOUT = "nodev\tsysfs\nnodev\ttmpfs\n\text4\n"
WITH = WITHOUT + "nodev\toverlay\n"


def ensure_overlay(module, modules_load_file, filesystems):
    """Both steps, as overlay_mounts takes them for a list that passed its checks: ``(changed, info)``."""
    loaded, info = load_overlay(module, modules_load_file, filesystems)
    return keep_at_boot(module, info) or loaded, info


@pytest.mark.parametrize("text, listed", [
    (WITH, True),
    ("nodev\toverlay", True),
    ("overlay\n", True),
    ("nodev\toverlay  \r\n", True),
    (WITHOUT, False),
    ("nodev\toverlayfs\n", False),
    ("nodev\toverlay extra\n", False),
    ("# overlay is not here\n", False),
    ("", False),
    ("  \n\n", False),
    (None, False),
])
def test_overlay_listed(text, listed):
    assert overlay_listed(text) is listed


class FakeModule:
    """What load_overlay and keep_at_boot use of an AnsibleModule; ``modprobe`` (rc, err) and what it does to the list."""

    def __init__(self, filesystems, check_mode=False, modprobe="/sbin/modprobe", rc=0, err="", loads=True):
        self.filesystems = filesystems
        self.check_mode = check_mode
        self.modprobe = modprobe
        self.rc, self.err, self.loads = rc, err, loads
        self.commands = []
        self.moves = []

    def get_bin_path(self, name):
        assert name == "modprobe"
        return self.modprobe

    def run_command(self, cmd):
        self.commands.append(cmd)
        if self.rc == 0 and self.loads and "--dry-run" not in cmd:
            with open(self.filesystems, "a") as handle:
                handle.write("nodev\toverlay\n")
        return self.rc, "", self.err

    def atomic_move(self, src, dest, unsafe_writes=False):
        self.moves.append(dest)
        os.rename(src, dest)


def _filesystems(tmp_path, text):
    path = tmp_path / "filesystems"
    if text is not None:
        path.write_text(text)
    return str(path)


@pytest.mark.parametrize("text, check_mode, loaded, command", [
    (WITH, False, False, None),
    (WITH, True, False, None),
    (WITHOUT, False, True, ["/sbin/modprobe", "overlay"]),
    (WITHOUT, True, True, ["/sbin/modprobe", "--dry-run", "overlay"]),
    (None, False, True, ["/sbin/modprobe", "overlay"]),          # no /proc/filesystems at all
])
def test_overlay_is_loaded_only_when_missing(tmp_path, text, check_mode, loaded, command):
    filesystems = _filesystems(tmp_path, text)
    module = FakeModule(filesystems, check_mode=check_mode)
    changed, info = ensure_overlay(module, None, filesystems)
    assert (changed, info) == (loaded, {"available": text == WITH, "loaded": loaded, "modules_load_file": None})
    assert module.commands == ([command] if command else [])


@pytest.mark.parametrize("module_args, check_mode, message", [
    ({"modprobe": None}, False,
     "^this kernel does not list overlay in .*/filesystems and there is no modprobe to load it: "
     "use a kernel built with CONFIG_OVERLAY_FS$"),
    ({"rc": 1, "err": "modprobe: FATAL: Module overlay not found\n"}, False,
     "^this kernel does not support overlayfs: overlay is not in .*/filesystems and /sbin/modprobe overlay "
     "failed \\(rc=1\\): modprobe: FATAL: Module overlay not found\\. Use a kernel built with"),
    ({"rc": 1, "err": "no"}, True, "/sbin/modprobe --dry-run overlay failed \\(rc=1\\): no\\."),
    ({"loads": False}, False, "^/sbin/modprobe overlay succeeded but .*/filesystems still does not list overlay$"),
])
def test_overlay_that_cannot_be_loaded_is_refused(tmp_path, module_args, check_mode, message):
    filesystems = _filesystems(tmp_path, WITHOUT)
    module = FakeModule(filesystems, check_mode=check_mode, **module_args)
    with pytest.raises(OverlayError, match=message):
        ensure_overlay(module, str(tmp_path / "modules-load.d" / "overlay.conf"), filesystems)
    assert not (tmp_path / "modules-load.d").exists()


def test_a_dry_run_does_not_recheck_the_list(tmp_path):
    """In check mode nothing is loaded, so the list is not read again."""
    filesystems = _filesystems(tmp_path, WITHOUT)
    module = FakeModule(filesystems, check_mode=True, loads=False)
    assert ensure_overlay(module, None, filesystems)[0] is True


@pytest.mark.parametrize("existing, check_mode, changed", [
    (None, False, True),
    ("overlay\n", False, True),
    ("", False, True),
    (MODULES_LOAD_TEXT, False, False),
    (None, True, True),
    ("overlay\n", True, True),
    (MODULES_LOAD_TEXT, True, False),
])
@pytest.mark.parametrize("subdir", ["", "etc/modules-load.d"])
def test_modules_load_file_is_written_when_it_differs(tmp_path, existing, check_mode, changed, subdir):
    filesystems = _filesystems(tmp_path, WITH)
    load_file = tmp_path / subdir / "overlay.conf"
    if existing is not None:
        load_file.parent.mkdir(parents=True, exist_ok=True)
        load_file.write_text(existing)
    module = FakeModule(filesystems, check_mode=check_mode)
    result = ensure_overlay(module, str(load_file), filesystems)
    expected = {"available": True, "loaded": False, "modules_load_file": str(load_file)}
    if changed:
        expected["modules_load_file_changed"] = True
    assert result == (changed, expected)
    assert module.commands == []
    written = changed and not check_mode
    assert module.moves == ([str(load_file)] if written else [])
    if written or existing is not None:
        assert load_file.read_text() == (MODULES_LOAD_TEXT if written else existing)
    else:
        assert not load_file.exists()
    if written and existing is None:
        assert oct(os.stat(str(load_file)).st_mode & 0o777) == oct(0o644)
    if written:
        # A second run finds it in place.
        assert ensure_overlay(module, str(load_file), filesystems)[0] is False
    if subdir and not written and existing is None:
        assert not load_file.parent.exists()


def test_loading_and_writing_both_report(tmp_path):
    filesystems = _filesystems(tmp_path, WITHOUT)
    load_file = str(tmp_path / "overlay.conf")
    changed, info = ensure_overlay(FakeModule(filesystems), load_file, filesystems)
    assert changed is True
    assert info == {"available": False, "loaded": True, "modules_load_file": load_file,
                    "modules_load_file_changed": True}


def test_a_modules_load_dir_that_cannot_be_made_is_refused(tmp_path):
    """A dangling symlink where the directory should be: no file to read, and no directory to make."""
    filesystems = _filesystems(tmp_path, WITH)
    os.symlink(str(tmp_path / "nowhere"), str(tmp_path / "modules-load.d"))
    load_file = str(tmp_path / "modules-load.d" / "overlay.conf")
    with pytest.raises(OverlayError, match="^modules_load_file: cannot write %s: .*File exists" % load_file):
        ensure_overlay(FakeModule(filesystems), load_file, filesystems)
    assert not (tmp_path / "nowhere").exists()


def test_a_failed_write_leaves_no_file(tmp_path):
    filesystems = _filesystems(tmp_path, WITH)
    module = FakeModule(filesystems)

    def refuse(src, dest, unsafe_writes=False):
        raise Exception("Could not replace file: %s to %s" % (src, dest))
    module.atomic_move = refuse
    with pytest.raises(OverlayError, match="^writing .*/overlay.conf failed: Could not replace file"):
        ensure_overlay(module, str(tmp_path / "overlay.conf"), filesystems)
    assert sorted(os.listdir(str(tmp_path))) == ["filesystems"]


@pytest.mark.parametrize("text", [WITH, WITHOUT])
def test_loading_writes_no_file(tmp_path, text):
    """load_overlay only loads: the boot-time file waits for keep_at_boot (a list that passed its checks)."""
    filesystems = _filesystems(tmp_path, text)
    load_file = str(tmp_path / "modules-load.d" / "overlay.conf")
    module = FakeModule(filesystems)
    loaded, info = load_overlay(module, load_file, filesystems)
    assert loaded is (text == WITHOUT) and info["modules_load_file"] == load_file
    assert "modules_load_file_changed" not in info and module.moves == []
    assert sorted(os.listdir(str(tmp_path))) == ["filesystems"]
    assert keep_at_boot(module, info) is True and info["modules_load_file_changed"] is True
    assert module.moves == [load_file]
