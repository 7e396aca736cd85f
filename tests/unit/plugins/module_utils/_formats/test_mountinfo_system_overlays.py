# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The system's own overlays and fuse-overlayfs told apart in real mountinfo lines.

``fixtures/system_overlays.json`` holds lines captured from the real tools:
systemd-sysext and systemd-confext (systemd 257, Debian 13, read-only and
``--mutable=yes``), mount.composefs (composefs 1.0.8), an overlay over a
loop-mounted EROFS composefs image, and fuse-overlayfs 1.10.
"""

import json
import os

import pytest

from ansible_collections.overlayfs.mounts.plugins.module_utils._compare.live import live_state, observe
from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.mountinfo import (
    CONTAINER_ENGINES,
    FUSE_OVERLAYFS_TYPE,
    HANDS_OFF_ENGINES,
    SYSTEM_OVERLAYS,
    overlay_config,
    parse,
    parse_line,
    system_overlay,
)
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.overlay_options import defaults_from_parameters

with open(os.path.join(os.path.dirname(__file__), "fixtures", "system_overlays.json")) as handle:
    LINES = json.load(handle)

DEFAULTS = defaults_from_parameters({})


def engine(key, *others):
    entries = parse("\n".join([LINES[k] for k in others] + [LINES[key]]))
    return live_state(entries[-1], DEFAULTS, entries=entries)["engine"]


@pytest.mark.parametrize("key, expected", [
    ("sysext_usr", "systemd-sysext"),
    ("sysext_opt", "systemd-sysext"),
    ("sysext_usr_mutable", "systemd-sysext"),
    ("confext_etc", "systemd-confext"),
    ("composefs", "composefs"),
])
def test_the_mount_source_names_the_system_tool(key, expected):
    assert engine(key) == expected


def test_sysext_layers_read_as_the_kernel_shows_them():
    entry = parse_line(LINES["sysext_usr"])
    cfg = overlay_config(entry)
    assert (entry.source, cfg["lowerdir"], cfg["upperdir"], cfg["vfs"]) == (
        "sysext", ["/run/systemd/sysext/meta/usr", "/run/systemd/sysext/extensions/demo/usr", "/usr"], None, "ro")
    live = live_state(entry, DEFAULTS)
    assert live["read_only"] and live["options"] == ["redirect_dir=on"]


def test_a_mutable_sysext_has_an_upper_dir_and_is_still_systemd_sysext():
    live = live_state(parse_line(LINES["sysext_usr_mutable"]), DEFAULTS)
    assert (live["upperdir"], live["read_only"], live["engine"]) == (
        "/var/lib/extensions.mutable/usr", False, "systemd-sysext")


def test_composefs_data_only_layers_are_read():
    live = live_state(parse_line(LINES["composefs"]), DEFAULTS)
    assert (live["lowerdir"], live["datadir"], live["form"]) == (["/tmp/.composefs.WxltWy"], ["/srv/objects"], "lowerdir+")


def test_an_overlay_of_any_source_over_an_erofs_image_with_data_layers_is_composefs():
    assert engine("overlay_on_erofs", "erofs_image") == "composefs"


def test_an_overlay_over_an_erofs_image_with_the_collections_own_marks_is_its_own():
    entries = parse("\n".join([LINES["erofs_image"], LINES["overlay_on_erofs"]]))
    assert live_state(entries[-1], DEFAULTS, entries=entries, own=True)["engine"] is None
    assert system_overlay(entries[-1], overlay_config(entries[-1]), entries, own=True) is None


def test_libcomposefs_and_its_source_stay_composefs_whatever_the_marks():
    assert live_state(parse_line(LINES["composefs"]), DEFAULTS, own=True)["engine"] == "composefs"
    line = LINES["composefs"].replace(" composefs ro,", " overlay ro,")
    assert live_state(parse_line(line), DEFAULTS, own=True)["engine"] == "composefs"


def test_without_the_erofs_mount_the_same_overlay_is_nobodys():
    assert engine("overlay_on_erofs") is None


def test_data_layers_under_an_ordinary_top_layer_are_not_composefs():
    line = LINES["overlay_on_erofs"].replace("/srv/img::", "/srv/plain::")
    entries = parse("\n".join([LINES["erofs_image"], line]))
    assert system_overlay(entries[-1], overlay_config(entries[-1]), entries) is None


def test_an_erofs_top_layer_without_data_layers_is_not_composefs():
    line = LINES["overlay_on_erofs"].replace("/srv/img::/srv/objects", "/srv/img:/srv/objects")
    entries = parse("\n".join([LINES["erofs_image"], line]))
    assert system_overlay(entries[-1], overlay_config(entries[-1]), entries) is None


def test_the_container_root_beside_them_stays_an_ordinary_overlay():
    assert engine("container_root", "sysext_usr") is None


def test_fuse_overlayfs_is_not_a_kernel_overlay():
    entry = parse_line(LINES["fuse_overlayfs"])
    assert (entry.fstype, entry.source, entry.is_overlay) == (FUSE_OVERLAYFS_TYPE, "fuse-overlayfs", False)
    assert "lowerdir" not in entry.super_options


def test_fuse_overlayfs_is_observed_as_a_foreign_mount():
    entries = parse(LINES["fuse_overlayfs"])
    seen = observe("/tmp/sysov-capture/fz/m", entries, DEFAULTS)
    assert (seen.live, seen.stacked, seen.foreign) == (None, 0, FUSE_OVERLAYFS_TYPE)


def test_hands_off_holds_the_engines_and_the_system_overlays():
    assert set(CONTAINER_ENGINES) | set(SYSTEM_OVERLAYS) | {"fuse-overlayfs"} == set(HANDS_OFF_ENGINES)
    assert set(SYSTEM_OVERLAYS) == {"systemd-sysext", "systemd-confext", "composefs"}
