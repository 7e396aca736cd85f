# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

import os

import pytest

from ansible_collections.overlayfs.mounts.plugins.module_utils._host.upper_usage import upper_usage, usage_of


def _xattr_or_skip(path, name, value):
    try:
        os.setxattr(path, name, value, follow_symlinks=False)
    except OSError as error:
        pytest.skip("this filesystem takes no %s xattr here: %s" % (name.split(".")[0], error.strerror))


def test_files_bytes_dirs_and_symlinks(tmp_path):
    (tmp_path / "d" / "e").mkdir(parents=True)
    (tmp_path / "d" / "a").write_bytes(b"x" * 100)
    (tmp_path / "b").write_bytes(b"y" * 28)
    (tmp_path / "link").symlink_to("/nowhere")
    os.mkfifo(str(tmp_path / "fifo"))
    usage = upper_usage(str(tmp_path))
    assert (usage["files"], usage["dirs"], usage["symlinks"], usage["other"], usage["bytes"]) == (2, 2, 1, 1, 128)
    assert usage["whiteouts"] == usage["opaque_dirs"] == usage["errors"] == 0 and usage["disk_bytes"] >= 0


def test_overlay_marks_in_the_user_namespace_are_counted(tmp_path):
    (tmp_path / "opaque").mkdir()
    (tmp_path / "renamed").mkdir()
    (tmp_path / "gone").write_bytes(b"")
    (tmp_path / "meta").write_bytes(b"z" * 10)
    _xattr_or_skip(str(tmp_path / "opaque"), "user.overlay.opaque", b"y")
    _xattr_or_skip(str(tmp_path / "renamed"), "user.overlay.redirect", b"/old")
    _xattr_or_skip(str(tmp_path / "gone"), "user.overlay.whiteout", b"")
    _xattr_or_skip(str(tmp_path / "meta"), "user.overlay.metacopy", b"")
    usage = upper_usage(str(tmp_path))
    assert (usage["opaque_dirs"], usage["redirects"], usage["whiteouts"], usage["metacopy"]) == (1, 1, 1, 1)
    assert (usage["files"], usage["bytes"]) == (1, 0)  # the whiteout is no file; the metacopy file has no data here


@pytest.mark.skipif(os.geteuid() != 0, reason="a 0/0 character device needs CAP_MKNOD")
def test_a_whiteout_device_is_a_whiteout(tmp_path):
    os.mknod(str(tmp_path / "deleted"), 0o600 | 0o020000, os.makedev(0, 0))
    usage = upper_usage(str(tmp_path))
    assert (usage["whiteouts"], usage["other"], usage["files"]) == (1, 0, 0)


def test_an_unreadable_dir_is_counted_and_named(tmp_path, monkeypatch):
    (tmp_path / "locked").mkdir()
    real = os.scandir

    def scandir(path):
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied")
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    usage = upper_usage(str(tmp_path))
    assert usage["errors"] == 1 and usage["unreadable"] == [str(tmp_path / "locked")]


def test_no_upper_and_a_missing_one():
    assert usage_of(None) is None and usage_of("relative/upper") is None
    assert usage_of("/nonexistent/upper") == {"error": "/nonexistent/upper: No such file or directory"}
