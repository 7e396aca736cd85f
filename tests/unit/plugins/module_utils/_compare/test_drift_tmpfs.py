# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Drift rows of a volatile upper's tmpfs (tmpfs_drift)."""

from ansible_collections.overlayfs.mounts.plugins.module_utils._compare.drift import tmpfs_drift
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.upper_tmpfs import UpperTmpfs

TMPFS = UpperTmpfs("/vol", "64M", 0o755)
LIVE = {"fstype": "tmpfs", "size": 64 << 20, "mode": 0o755, "uid": 0, "gid": 0, "used": 0}


def _fields(rows):
    return [(row["field"], row["declared"], row["live"], row["persisted"]) for row in rows]


def test_in_sync():
    assert tmpfs_drift(TMPFS, (0, 0), 64 << 20, LIVE, "64M") == []


def test_missing_and_not_tmpfs():
    assert _fields(tmpfs_drift(TMPFS, (0, 0), 64 << 20, None)) == [("upper_tmpfs", "/vol", "missing", None)]
    assert _fields(tmpfs_drift(TMPFS, (0, 0), 64 << 20, dict(LIVE, fstype="ext4"))) == [
        ("upper_tmpfs", "/vol", "not tmpfs (ext4)", None)]


def test_size_mode_owner_group():
    live = dict(LIVE, size=32 << 20, mode=0o700, uid=5, gid=6)
    assert _fields(tmpfs_drift(TMPFS, (0, 0), 64 << 20, live, "32M")) == [
        ("upper_tmpfs.size", "64M", "32768k", "32M"),
        ("upper_tmpfs.mode", "0755", "0700", None),
        ("upper_tmpfs.owner", 0, 5, None),
        ("upper_tmpfs.group", 0, 6, None),
    ]


def test_a_persisted_size_alone_is_drift():
    assert _fields(tmpfs_drift(TMPFS, (0, 0), 64 << 20, LIVE, "1G")) == [("upper_tmpfs.size", "64M", "65536k", "1G")]
