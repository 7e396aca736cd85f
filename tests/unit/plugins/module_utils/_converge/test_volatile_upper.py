# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The live actions of a volatile upper's tmpfs (live_actions) and what an unmount may take down."""

from ansible_collections.overlayfs.mounts.plugins.module_utils._converge.volatile_upper import (
    TmpfsSeen,
    _holds_only,
    live_actions,
    public,
)
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.declaration import Declaration
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.upper_tmpfs import UpperTmpfs

DECL = Declaration("/srv/m", ["/l"], "/vol/upper", "/vol/work", upper_tmpfs=UpperTmpfs("/vol", "64M", 0o750))
LIVE = {"fstype": "tmpfs", "size": 64 << 20, "mode": 0o750, "uid": 0, "gid": 0, "used": 8192, "mount_id": 1, "source": "tmpfs"}


def _seen(live, **given):
    return TmpfsSeen(DECL.upper_tmpfs, True, (0, 0), live, want=64 << 20, **given)


def test_a_fresh_tmpfs_is_mounted_then_its_dirs_made():
    assert live_actions(DECL, _seen(None)) == [
        {"action": "mount_tmpfs", "path": "/vol", "options": "size=64M,mode=0750,uid=0,gid=0"},
        {"action": "create_upper_dirs", "path": "/vol", "dirs": ["/vol/upper", "/vol/work"]},
    ]


def test_in_sync_nothing():
    assert live_actions(DECL, _seen(LIVE)) == []


def test_size_and_root_fixed_in_place():
    actions = live_actions(DECL, _seen(dict(LIVE, size=1 << 20, mode=0o755, uid=3)))
    assert [a["action"] for a in actions] == ["remount_tmpfs", "set_tmpfs_root"]
    assert actions[0]["size"] == "64M" and actions[1] == {"action": "set_tmpfs_root", "path": "/vol", "mode": "0750",
                                                          "uid": 0, "gid": 0}


def test_unmount_only_when_it_holds_the_upper_and_work_alone():
    assert _holds_only(DECL, _seen(LIVE, names=["upper", "work"]), None)
    assert _holds_only(DECL, _seen(LIVE, names=[]), None)
    assert not _holds_only(DECL, _seen(LIVE, names=["upper", "work", "notes.txt"]), None)
    assert not _holds_only(DECL, _seen(LIVE, names=["upper"], others=["/vol/upper/sub"]), None)
    bare = Declaration("/srv/m", state="absent", upper_tmpfs=UpperTmpfs("/vol", ""))
    overlay = {"upperdir": "/vol/upper", "workdir": "/vol/work"}
    assert _holds_only(bare, _seen(LIVE, names=["upper", "work"]), overlay)


def test_public():
    assert public(None) is None
    assert public(LIVE) == {"fstype": "tmpfs", "size": 64 << 20, "mode": "0750", "uid": 0, "gid": 0, "used": 8192}
