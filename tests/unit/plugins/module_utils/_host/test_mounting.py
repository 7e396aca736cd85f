# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

import os

import pytest

from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError
from ansible_collections.overlayfs.mounts.plugins.module_utils._host.kernel_features import Features
from ansible_collections.overlayfs.mounts.plugins.module_utils._host.mounting import (
    MS_BIND,
    MS_REMOUNT,
    _form_refused,
    attr_flags,
    ms_flags,
    plan_methods,
)
from ansible_collections.overlayfs.mounts.plugins.module_utils._host import mounting
from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.mount_data import overlay_data

# The three kinds of kernel in the test matrix, as _features probes them.
NEW = Features("6.12.0", new_api=True, native_params=True, lowerdir_plus=True)      # Debian 13
LEGACY_PARSER = Features("6.1.0", new_api=True, native_params=False)                 # Debian 12
ALSO_LEGACY = Features("5.10.0", new_api=True, native_params=False)                  # Debian 11
NO_PLUS = Features("6.6.0", new_api=True, native_params=True, lowerdir_plus=False)   # 6.5 to 6.7
NO_API = Features("4.18.0", new_api=False)                                           # RHEL 8

UPPER, WORK = "/srv/upper", "/srv/work"


def layers(count, length=120):
    return ["/srv/%s-%03d" % ("l" * (length - 9), i) for i in range(count)]


@pytest.mark.parametrize("feats, count, length, links, expected", [
    (NEW, 2, 10, None, ["fsconfig", "mount2"]),
    (NEW, 100, 120, None, ["fsconfig"]),
    (NEW, 100, 120, "/run/l", ["fsconfig", "symlinks"]),
    (NEW, 2, 300, "/run/l", ["mount2", "symlinks"]),          # a path over one fsconfig value
    (LEGACY_PARSER, 2, 10, None, ["mount2"]),
    (LEGACY_PARSER, 2, 10, "/run/l", ["mount2", "symlinks"]),
    (LEGACY_PARSER, 100, 120, "/run/l", ["symlinks"]),
    (ALSO_LEGACY, 500, 120, "/run/l", ["symlinks"]),
    (NO_PLUS, 30, 120, "/run/l", ["mount2", "symlinks"]),
    (NO_API, 2, 10, None, ["mount2"]),
])
def test_auto_takes_what_the_kernel_has(feats, count, length, links, expected):
    assert plan_methods(feats, layers(count, length), UPPER, WORK, [], (), "auto", links) == expected


def test_nothing_fits_says_what_the_kernel_has_and_what_would_fit():
    with pytest.raises(OverlayError) as caught:
        plan_methods(LEGACY_PARSER, layers(100), UPPER, WORK, [], (), "auto", None)
    message = caught.value.message
    assert "this kernel has no lowerdir+" in message
    assert "over the 4095 bytes the legacy mount(2) copies" in message
    assert "no links_dir was given" in message
    assert "Linux 6.1.0" in message and "lowerdir+ no" in message
    assert "links_dir" in message and "Linux 6.8+" in message
    assert caught.value.details["option_bytes"] > 4095


def test_even_links_can_be_too_long():
    upper = "/" + "u" * 2100
    with pytest.raises(OverlayError, match="short links to the layers: still"):
        plan_methods(LEGACY_PARSER, layers(3), upper, upper + "w", [], (), "auto", "/run/l")


@pytest.mark.parametrize("feats, method, count, fragment", [
    (LEGACY_PARSER, "fsconfig", 2, "method fsconfig cannot mount this overlay: one lowerdir\\+ per layer: "
                                   "this kernel has no lowerdir\\+"),
    (NEW, "mount2", 100, "method mount2 cannot mount this overlay: one lowerdir= option string"),
    (NEW, "symlinks", 2, "no links_dir was given"),
])
def test_a_forced_method_is_checked_against_the_kernel(feats, method, count, fragment):
    with pytest.raises(OverlayError, match=fragment):
        plan_methods(feats, layers(count), UPPER, WORK, [], (), method, None)


def test_forced_methods_that_fit():
    assert plan_methods(NEW, layers(2), UPPER, WORK, [], (), "mount2", None) == ["mount2"]
    assert plan_methods(ALSO_LEGACY, layers(300), UPPER, WORK, [], (), "symlinks", "/run/l") == ["symlinks"]


def test_the_page_limit_counts_the_whole_option_string():
    lower = layers(33)
    data = overlay_data(lower, UPPER, WORK, ["index=off"])
    assert len(data) > 4000
    fits = plan_methods(LEGACY_PARSER, lower, UPPER, WORK, ["index=off"], (), "auto", None)
    assert fits == (["mount2"] if len(data) <= 4095 else [])


@pytest.mark.parametrize("log, refused", [
    # 6.1 and 5.10: lowerdir+ goes through the legacy layer, refused at create time.
    (['overlayfs: unrecognized mount option "lowerdir+=/srv/l1" or missing value'], True),
    # 6.1 and 5.10: 100 long layers overflow the legacy layer's page.
    (["e VFS: Legacy: Cumulative options too large"], True),
    # 6.5 to 6.7: overlayfs's own parser does not know the key.
    (["e overlay: Unknown parameter 'lowerdir+'"], True),
    (["e overlay: Unknown parameter 'datadir+'"], True),
    # A real problem with this overlay, not with the form: no fallback.
    (["e overlay: failed to resolve '/srv/l1': -2"], False),
    (["overlayfs: workdir and upperdir must reside under the same mount"], False),
])
def test_form_refusals_are_told_from_real_errors(log, refused):
    assert _form_refused(log) is refused


@pytest.mark.parametrize("flags, ms, attrs", [
    ([], 1 << 21, 0),
    (["ro", "nosuid", "nodev", "noexec"], 0xf | 1 << 21, 0xf),
    (["noatime", "nodiratime"], 0x400 | 0x800, 0x10 | 0x80),
    (["strictatime"], 1 << 24, 0x20),
])
def test_flags_as_mount2_flags_and_mount_attributes(flags, ms, attrs):
    assert (ms_flags(flags), attr_flags(flags)) == (ms, attrs)


def test_remount_sets_the_flags_of_the_mount_and_makes_the_overlay_writable_first(monkeypatch):
    calls = []
    monkeypatch.setattr(mounting, "_remount", lambda target, ms, step: calls.append((target, ms)))
    mounting.remount_flags("/m", ["ro", "nosuid"], "rw")
    assert calls == [("/m", MS_REMOUNT | 0x2 | 1 << 21), ("/m", MS_REMOUNT | MS_BIND | 0x3 | 1 << 21)]
    calls.clear()
    mounting.remount_flags("/m", ["nodev"])
    assert calls == [("/m", MS_REMOUNT | MS_BIND | 0x4 | 1 << 21)]


def test_a_pointer_the_default_root_cannot_take_is_skipped_and_reported(tmp_path, monkeypatch):
    """A read-only or unusable default links root (the reason to keep links elsewhere) never fails a mount."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setattr(mounting, "DEFAULT_LINKS_DIR", str(blocker / "links"))
    links_root = tmp_path / "links"
    directory = mounting.links_dir_for(str(links_root), "/srv/m")
    os.makedirs(directory)
    mounting.point_to_links(directory)  # no exception
    assert "could not be written" in mounting.links_pointer_missing(str(links_root), "/srv/m")


def test_a_pointer_in_place_is_not_reported(tmp_path, monkeypatch):
    default = tmp_path / "default"
    monkeypatch.setattr(mounting, "DEFAULT_LINKS_DIR", str(default))
    links_root = tmp_path / "links"
    directory = mounting.links_dir_for(str(links_root), "/srv/m")
    os.makedirs(directory)
    assert mounting.links_pointer_missing(str(links_root), "/srv/m") is not None
    os.makedirs(str(default))
    os.symlink(os.path.normpath(directory), str(default / os.path.basename(directory)))
    assert mounting.links_pointer_missing(str(links_root), "/srv/m") is None
    assert mounting.links_pointer_missing(str(default), "/srv/m") is None  # under the default root: nothing to point
