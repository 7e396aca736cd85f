# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""_host.realpath: the kernel's answer must be os.path.realpath's, for every kind of path."""

import os

import pytest

from ansible_collections.overlayfs.mounts.plugins.module_utils._host import system as _host


@pytest.fixture
def tree(tmp_path, monkeypatch):
    """Dirs, a file, absolute and relative links, links to links, dangling and looping links."""
    base = tmp_path / "t"
    (base / "real" / "sub").mkdir(parents=True)
    (base / "real" / "file").write_text(u"x")
    (base / "space dir").mkdir()
    os.symlink(str(base / "real"), str(base / "abs"))
    os.symlink("real/sub", str(base / "rel"))
    os.symlink("abs", str(base / "chain"))
    os.symlink("../../real", str(base / "real" / "sub" / "up"))
    os.symlink("nowhere", str(base / "dangling"))
    os.symlink("loop2", str(base / "loop1"))
    os.symlink("loop1", str(base / "loop2"))
    monkeypatch.chdir(str(base))
    return base


PATHS = [
    "real", "real/sub", "real/file", "abs", "abs/sub", "rel", "chain/sub/up/file", "real/sub/up/sub",
    "rel/../file", "abs/../real/./sub", "space dir", "dangling", "dangling/more", "loop1", "loop1/x",
    "missing", "missing/deeper", "real/file/", "real/file/x", "real/sub/", "abs//sub", ".", "..",
    "abs/missing", "chain/sub/missing/deeper", "rel/new", "dangling/../real", "real/missing/..", "loop1/../x",
]


@pytest.mark.parametrize("relative", PATHS)
def test_realpath_agrees_with_os_path_realpath(tree, relative):
    for path in (relative, str(tree / relative)):
        assert _host.realpath(path) == os.path.realpath(path)


def test_realpath_without_proc_falls_back(tree, monkeypatch):
    monkeypatch.setattr(_host, "FD_LINK", str(tree / "no-proc" / "%d"))
    assert _host.realpath(str(tree / "chain" / "sub")) == str(tree / "real" / "sub")


@pytest.mark.parametrize("relative", [
    "chain/sub/up/file",  # exists: one open(O_PATH) and one readlink
    "chain/sub/new/upper",  # to be created: its parent's, from the kernel, and the names as written
])
def test_realpath_asks_the_kernel(tree, monkeypatch, relative):
    expected = os.path.realpath(str(tree / relative))

    def not_called(path):
        raise AssertionError("walked %s component by component" % path)

    monkeypatch.setattr(_host.os.path, "realpath", not_called)
    assert _host.realpath(str(tree / relative)) == expected
