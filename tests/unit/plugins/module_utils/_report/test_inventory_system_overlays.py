# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""overlay_mount_info's inventory and the fleet report on a host with system overlays.

The mountinfo lines are those captured from systemd-sysext, systemd-confext,
mount.composefs and fuse-overlayfs (``_formats/fixtures/system_overlays.json``).
"""

import json
import os

from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.mountinfo import parse
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.overlay_options import defaults_from_parameters
from ansible_collections.overlayfs.mounts.plugins.module_utils._persist.fstab_backend import FstabBackend
from ansible_collections.overlayfs.mounts.plugins.module_utils._report.fleet import build, markdown
from ansible_collections.overlayfs.mounts.plugins.module_utils._report.inventory import gather

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(__file__)), "_formats", "fixtures", "system_overlays.json")
with open(FIXTURES) as handle:
    LINES = json.load(handle)
FUSE_POINT = "/tmp/sysov-capture/fz/m"
KEYS = ("container_root", "sysext_usr", "confext_etc", "sysext_opt", "composefs", "fuse_overlayfs")
HOST = parse("\n".join(LINES[key] for key in KEYS))
DEFAULTS = defaults_from_parameters({})


def records(entries=None, fstab="", **kwargs):
    entries = HOST if entries is None else entries
    persisted = {"fstab": FstabBackend.configs_in([("/etc/fstab", fstab)]), "systemd": {}}
    return {r["path"]: r for r in gather(entries, DEFAULTS, persisted, **kwargs)}


def test_each_overlay_says_whose_it_is():
    found = records()
    assert {path: r["engine"] for path, r in found.items()} == {
        "/": "none", "/usr": "systemd-sysext", "/etc": "systemd-confext", "/opt": "systemd-sysext",
        "/srv/m": "composefs", FUSE_POINT: "fuse-overlayfs"}
    assert found["/usr"]["live"]["engine"] == "systemd-sysext"
    assert [r["path"] for r in found.values() if not r["kernel_overlay"]] == [FUSE_POINT]


def test_a_sysext_entry_is_read_like_any_overlay():
    usr = records()["/usr"]
    assert usr["lowerdir"] == ["/run/systemd/sysext/meta/usr", "/run/systemd/sysext/extensions/demo/usr", "/usr"]
    assert (usr["source"], usr["mount_id"], usr["mounted"], usr["drift"]) == ("sysext", 189, True, [])


def test_fuse_overlayfs_is_listed_with_its_layers_unknown():
    fuse = records(paths=[FUSE_POINT])
    assert list(fuse) == [FUSE_POINT]
    assert fuse[FUSE_POINT] == {
        "path": FUSE_POINT, "lowerdir": None, "datadir": None, "upperdir": None, "workdir": None, "options": [],
        "mounted": True, "persisted": "none", "managed": False, "boot": False, "engine": "fuse-overlayfs",
        "kernel_overlay": False, "resolved": None, "source": "fuse-overlayfs", "mount_id": 68, "stacked": 1,
        "live": None, "fstab": [], "systemd": None, "drift": [], "aliases": []}


def test_a_kernel_overlay_persisted_where_fuse_overlayfs_is_mounted_is_not_mounted():
    line = "overlay %s overlay lowerdir=/srv/a:/srv/b 0 0\n" % FUSE_POINT
    fuse = records(fstab=line)[FUSE_POINT]
    assert fuse["persisted"] == "fstab" and [d["field"] for d in fuse["drift"]] == ["mounted"]


def test_the_fleet_report_counts_filters_and_renders_them():
    overlays = list(records().values())
    overlays[1]["drift"] = [{"field": "mounted", "declared": None, "live": False, "persisted": True}]
    report = build({"h1": {"declared": None, "overlays": overlays}})
    assert report["hosts"][0]["engines"] == {"none": 1, "systemd-sysext": 2, "systemd-confext": 1,
                                             "composefs": 1, "fuse-overlayfs": 1}
    only = build({"h1": {"declared": None, "overlays": overlays}}, engines=["systemd-sysext", "fuse-overlayfs"])
    assert only["hosts"][0]["engines"] == {"systemd-sysext": 2, "fuse-overlayfs": 1}
    text = markdown(report)
    assert "fuse-overlayfs" in text and "/etc" in text
