# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unsafe path transitions, fd-relative creation and link dirs, on real files (chown needs root)."""

import os
import stat

import pytest

from ansible_collections.overlayfs.mounts.plugins.module_utils._host import safe_paths as _safepath
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError

NOBODY = 65534

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="planting files as another user needs root")


@pytest.fixture
def world(tmp_path):
    """A sticky world-writable dir (like /tmp), a user's home, and a root-only victim."""
    os.chmod(str(tmp_path), 0o755)
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(str(shared), 0o1777)
    home = tmp_path / "home"
    home.mkdir()
    os.chown(str(home), NOBODY, NOBODY)
    victim = tmp_path / "victim"
    (victim / "work").mkdir(parents=True)
    (victim / "work" / "precious").write_text("data")
    return tmp_path


def _plant(link, target, uid=NOBODY):
    os.symlink(str(target), str(link))
    os.lchown(str(link), uid, uid)


@pytest.mark.parametrize("where", ["shared", "home"])
def test_link_planted_by_another_user_is_refused(world, where):
    _plant(world / where / "upper", world / "victim")
    with pytest.raises(OverlayError) as error:
        _safepath.resolve_safely("upperdir", str(world / where / "upper" / "sub"))
    message = error.value.message
    assert message.startswith("upperdir: unsafe path transition")
    assert "the symlink %s" % (world / where / "upper") in message and "nobody" in message


def test_relative_link_planted_by_another_user_is_refused(world):
    _plant(world / "home" / "up", "../victim")
    with pytest.raises(OverlayError):
        _safepath.resolve_safely("workdir", str(world / "home" / "up"))


def test_root_owned_link_is_followed(world):
    _plant(world / "root-link", world / "victim", uid=0)
    assert _safepath.resolve_safely("path", str(world / "root-link" / "new")) == str(world / "victim" / "new")


def test_users_own_link_inside_own_dir_is_followed(world):
    (world / "home" / "data").mkdir()
    os.chown(str(world / "home" / "data"), NOBODY, NOBODY)
    _plant(world / "home" / "cur", "data")
    assert _safepath.resolve_safely("path", str(world / "home" / "cur")) == str(world / "home" / "data")


def test_plain_paths_resolve_like_realpath(world):
    path = str(world / "shared" / "missing" / ".." / "x")
    assert _safepath.resolve_safely("path", path) == os.path.realpath(path)


def test_make_dirs_is_fd_relative_and_sets_mode_and_owner(world):
    target = world / "a" / "b" / "c"
    created = _safepath.make_dirs(str(target), 0o750, NOBODY, NOBODY)
    assert created == [str(world / "a"), str(world / "a" / "b"), str(target)]
    st = os.stat(str(target))
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o750, NOBODY, NOBODY)
    assert os.stat(str(world / "a")).st_uid == 0


def test_make_dirs_never_follows_a_swapped_link(world):
    _plant(world / "shared" / "d", world / "victim", uid=0)
    before = os.stat(str(world / "victim" / "work"))
    with pytest.raises(OverlayError) as error:
        _safepath.make_dirs(str(world / "shared" / "d" / "work"), 0o777, NOBODY, NOBODY, "upperdir")
    assert error.value.message.startswith("upperdir:")
    after = os.stat(str(world / "victim" / "work"))
    assert (after.st_mode, after.st_uid) == (before.st_mode, before.st_uid)


def test_links_dir_must_be_roots_alone(world):
    with pytest.raises(OverlayError) as error:
        _safepath.prepare_links(str(world / "shared" / "ovl-1"), ["/l1"])
    assert error.value.message.startswith("links_dir:") and "chmod go-w" in error.value.message
    assert not os.path.lexists(str(world / "shared" / "ovl-1"))


def test_links_dir_planted_link_is_not_followed(world):
    root = world / "links"
    root.mkdir()
    _plant(root / "ovl-1", world / "victim", uid=0)
    os.symlink("/keep", str(world / "victim" / "0"))
    with pytest.raises(OverlayError):
        _safepath.prepare_links(str(root / "ovl-1"), ["/l1"])
    assert os.readlink(str(world / "victim" / "0")) == "/keep"


def test_prepare_links_only_touches_numbered_links(world):
    directory = world / "links" / "ovl-1"
    _safepath.prepare_links(str(directory), ["/l1", "/l2"])
    os.symlink("/elsewhere", str(directory / "mine"))
    os.unlink(str(directory / "1"))
    os.symlink("/wrong", str(directory / "1"))
    _safepath.prepare_links(str(directory), ["/l1", "/l2", "/l3"])
    assert sorted(os.listdir(str(directory))) == ["0", "1", "2", "mine"]
    assert [os.readlink(str(directory / n)) for n in ("0", "1", "2", "mine")] == ["/l1", "/l2", "/l3", "/elsewhere"]
    assert stat.S_IMODE(os.stat(str(directory)).st_mode) == 0o755
