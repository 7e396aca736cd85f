# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""overlay_mount_info's upper_tmpfs: the tmpfs an overlay's upper lies on, live and persisted."""

from ansible_collections.overlayfs.mounts.plugins.module_utils._formats import tmpfs_units
from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.mountinfo import parse
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.upper_tmpfs import UpperTmpfs
from ansible_collections.overlayfs.mounts.plugins.module_utils._report.inventory import upper_tmpfs_record

MOUNTINFO = (
    "20 1 8:1 / / rw - ext4 /dev/sda1 rw\n"
    "30 20 0:40 / /vol rw,relatime - tmpfs tmpfs rw,size=65536k,mode=750\n"
    "31 20 0:41 / /srv/m rw - overlay overlay rw,lowerdir=/l,upperdir=/vol/upper,workdir=/vol/work\n"
)
LIVE = {"fstype": "tmpfs", "size": 64 << 20, "mode": 0o750, "uid": 0, "gid": 0, "used": 4096}


def test_an_upper_on_a_persisted_tmpfs():
    line = tmpfs_units.fstab_line(UpperTmpfs("/vol", "64M", 0o750), 0, 0)
    unit = tmpfs_units.render_mount_unit("/srv/m", UpperTmpfs("/vol", "64M", 0o750), 0, 0)
    record = upper_tmpfs_record("/vol/upper", parse(MOUNTINFO), lambda point: LIVE, line + "\n",
                                {"/etc/systemd/system/vol.mount": unit, "/etc/systemd/system/x.mount": None})
    assert record == {"path": "/vol", "size": 64 << 20, "mode": "0750", "uid": 0, "gid": 0, "used": 4096, "fstab": line,
                      "unit": "/etc/systemd/system/vol.mount", "unit_options": ["size=64M", "mode=0750", "uid=0", "gid=0"]}


def test_other_uppers_have_none():
    entries = parse(MOUNTINFO)
    assert upper_tmpfs_record("/srv/upper", entries, lambda point: LIVE, None, {}) is None
    assert upper_tmpfs_record(None, entries, lambda point: LIVE, None, {}) is None
    assert upper_tmpfs_record("rel/upper", entries, lambda point: LIVE, None, {}) is None
