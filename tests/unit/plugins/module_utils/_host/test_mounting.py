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


# Upper, work and option values go through fsconfig() one by one too.
LONG = "/srv/" + "u" * 290


@pytest.mark.parametrize("upper, work, options, links, expected", [
    (LONG + "/up", LONG + "/wo", [], None, ["mount2"]),
    (UPPER, LONG + "/wo", [], "/run/l", ["mount2", "symlinks"]),
    ("/srv/" + "u" * 250, "/srv/" + "w" * 250, [], None, ["fsconfig", "mount2"]),  # 255 bytes each: fits
    ("/srv/" + "u" * 251, WORK, [], None, ["mount2"]),                                # 256: does not
    ("/srv/" + "u" * 248 + ",x", WORK, [], None, ["mount2"]),                         # 255, but 256 escaped
    (UPPER, WORK, ["x=" + "v" * 256], None, ["mount2"]),
])
def test_auto_checks_every_fsconfig_value(upper, work, options, links, expected):
    assert plan_methods(NEW, layers(2), upper, work, options, (), "auto", links) == expected


def test_a_forced_new_api_names_the_value_that_does_not_fit():
    with pytest.raises(OverlayError) as caught:
        plan_methods(NEW, layers(2), LONG + "/up", UPPER, [], (), "fsconfig", None)
    assert "method fsconfig cannot mount this overlay" in caught.value.message
    assert "upperdir takes %d bytes, over the 255 bytes one fsconfig() value holds" % len(LONG + "/up") in caught.value.message
    with pytest.raises(OverlayError, match="workdir takes 298 bytes"):
        plan_methods(NEW, layers(2), UPPER, LONG + "/wo", [], (), "fsconfig", None)
    with pytest.raises(OverlayError, match=r"lowerdir\[1\] takes 300 bytes"):
        plan_methods(NEW, ["/a", "/" + "l" * 299], UPPER, WORK, [], (), "fsconfig", None)


def test_fsconfig_values_names_each_field():
    assert mounting.fsconfig_values(["/a"], "/u,x", "/w", ["index=off", "volatile"], ["/d"]) == [
        ("lowerdir[0]", 2), ("datadir[0]", 2), ("upperdir", 5), ("workdir", 2), ("options (index)", 3)]


_REAL_LONG_UPPER = r'''
import json, os, sys
from ansible_collections.overlayfs.mounts.plugins.module_utils._host import mounting
from ansible_collections.overlayfs.mounts.plugins.module_utils._host.kernel_features import features
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError
root = sys.argv[1]
out = {"lowerdir_plus": features().lowerdir_plus}
for size in (255, 256, 300):
    base = os.path.join(root, str(size))
    upper = base + "/" + "u" * (size - len(base) - 1)
    work, lower, merged = base + "/w", base + "/l", base + "/m"
    for path in (upper, work, lower, merged):
        os.makedirs(path)
    try:
        mounting.mount_new_api(merged, [lower], upper, work, [])
        out["fsconfig %d" % size] = "mounted"
        mounting.umount2(merged)
    except OverlayError as error:
        out["fsconfig %d" % size] = os.strerror(error.details.get("errno") or 0)
    out["auto %d" % size] = mounting.mount_overlay(merged, [lower], upper, work, [])
    with open("/proc/self/mountinfo") as handle:
        out["shown %d" % size] = any(" %s " % merged in line and "upperdir=" + upper + "," in line for line in handle)
    mounting.umount2(merged)
print(json.dumps(out))
'''


def _probe(private_mount, tmp_path, source):
    """Run the Python ``source`` as root in a private mount namespace, with a scratch dir; its JSON output."""
    import json
    import sys
    script = tmp_path / "probe.py"
    script.write_text(source)
    root = tmp_path / "t"
    root.mkdir()
    return json.loads(private_mount('PYTHONPATH="$1" exec "$2" "$3" "$4"', os.pathsep.join(sys.path), sys.executable,
                                    script, root))


def test_a_long_upper_mounts_under_auto_for_real(private_mount, tmp_path):
    """Measured: fsconfig() takes a 255-byte upperdir and refuses 256 bytes; auto then mounts with mount(2)."""
    out = _probe(private_mount, tmp_path, _REAL_LONG_UPPER)
    if not out["lowerdir_plus"]:
        pytest.skip("this kernel has no lowerdir+: auto does not use fsconfig()")
    assert out["fsconfig 255"] == "mounted" and out["auto 255"] == "fsconfig"
    assert out["fsconfig 256"] == out["fsconfig 300"] == "Invalid argument"
    assert out["auto 256"] == out["auto 300"] == "mount2"
    assert out["shown 255"] and out["shown 256"] and out["shown 300"]


_FULL_LINKS = r'''
import json, os, subprocess, sys
from ansible_collections.overlayfs.mounts.plugins.module_utils._host import mounting
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError
root = sys.argv[1]
mounting.point_to_links = lambda directory: None  # no pointer in the host's default links root
out = {}
for inodes in (3, 4, 5, 6):
    disk = os.path.join(root, "disk%d" % inodes)
    os.mkdir(disk)
    # A tmpfs with room for a few inodes: its root, then a dir, links...
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,nr_inodes=%d" % inodes, "tmpfs", disk], check=True)
    before = sorted(os.listdir(disk))
    links = os.path.join(disk, "links", "srv-m-0123456789ab")
    try:
        mounting.prepare_links(links, ["/srv/l1", "/srv/l2", "/srv/l3"])
        out[str(inodes)] = ["made", sorted(os.listdir(links))]
    except OverlayError as error:
        out[str(inodes)] = [error.message, sorted(os.listdir(disk)) == before]
print(json.dumps(out))
'''


def test_links_on_a_full_file_system_leave_nothing_behind(private_mount, tmp_path):
    """Measured on a tmpfs that runs out of inodes at each step: the dirs, then each link."""
    out = _probe(private_mount, tmp_path, _FULL_LINKS)
    for inodes in ("3", "4", "5"):
        message, clean = out[inodes]
        assert message.startswith("links_dir: could not make the short layer links in ") and "No space left on device" in message
        assert "What this run made there was removed" in message
        assert clean, "inodes=%s left %s" % (inodes, out)
    assert out["6"] == ["made", ["0", "1", "2"]]


def test_remove_links_takes_only_numbered_links_and_restore_puts_them_back(tmp_path):
    from ansible_collections.overlayfs.mounts.plugins.module_utils._host.safe_paths import prepare_links as make
    directory = str(tmp_path / "links" / "srv-m-0123456789ab")
    make(directory, ["/srv/l1", "/srv/l2"])
    (tmp_path / "links" / "srv-m-0123456789ab" / "notes").write_text("not ours")
    removed = mounting.remove_links(directory)
    assert removed == {"0": "/srv/l1", "1": "/srv/l2"}
    assert os.listdir(directory) == ["notes"]  # the dir stays while something not ours is in it
    mounting.restore_links(directory, removed)
    assert sorted(os.listdir(directory)) == ["0", "1", "notes"]
    os.unlink(os.path.join(directory, "notes"))
    mounting.remove_links(directory)
    assert not os.path.exists(directory)


def test_links_dirs_found_only_takes_this_overlays_dir(tmp_path):
    root = str(tmp_path / "links")
    mine = mounting.links_dir_for(root, "/srv/m")
    os.makedirs(mine)
    os.makedirs(os.path.join(root, "other"))
    assert mounting.links_dirs_found(root, "/srv/m", [os.path.join(root, "other"), None]) == [mine]
    assert mounting.links_dirs_found(root, "/srv/n") == []
