# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

import os
import stat

import pytest

from ansible_collections.overlayfs.mounts.plugins.module_utils._host import merged_reader
from ansible_collections.overlayfs.mounts.plugins.module_utils._host.kernel_features import Features
from ansible_collections.overlayfs.mounts.plugins.module_utils._host.merged_reader import (
    lowerdir_value,
    merged_view,
    option_tries,
)
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError

NEW = Features("6.12.0", new_api=True, native_params=True, lowerdir_plus=True)
NO_PLUS = Features("6.6.0", new_api=True, native_params=True, lowerdir_plus=False)
LEGACY_PARSER = Features("6.1.0", new_api=True, native_params=False)
NO_API = Features("4.18.0", new_api=False)
ROOT = os.geteuid() == 0


@pytest.mark.parametrize("options, tries", [
    ([], [["redirect_dir=follow", "metacopy=on"], ["redirect_dir=on", "metacopy=on"], ["redirect_dir=follow"]]),
    (["index=on", "xino=auto", "uuid=on", "volatile"],
     [["xino=auto", "redirect_dir=follow", "metacopy=on"], ["xino=auto", "redirect_dir=on", "metacopy=on"],
      ["xino=auto", "redirect_dir=follow"]]),
    (["userxattr", "index=off"], [["userxattr"]]),
    (["redirect_dir=nofollow"], [["redirect_dir=nofollow"]]),
    (["metacopy=off", "verity=on"], [["metacopy=off", "verity=on"]]),
])
def test_the_view_keeps_what_changes_how_layers_read(options, tries):
    assert option_tries(options) == tries


def test_lowerdir_value_with_data_only_layers():
    assert lowerdir_value(["/proc/self/fd/5", "/proc/self/fd/6"]) == "/proc/self/fd/5:/proc/self/fd/6"
    assert lowerdir_value(["/a", "/b"], ["/c", "/d"]) == "/a:/b::/c::/d"
    with pytest.raises(ValueError):
        lowerdir_value(["/a:b"])


def test_a_kernel_without_the_new_mount_api_is_told(tmp_path):
    with pytest.raises(OverlayError, match="new mount API"):
        with merged_view(str(tmp_path), [str(tmp_path)], feats=NO_API):
            pass
    with pytest.raises(OverlayError, match="datadir: this kernel has no data-only lower layers"):
        with merged_view(str(tmp_path), [str(tmp_path)], datadir=[str(tmp_path)], feats=LEGACY_PARSER):
            pass


def _tree(tmp_path):
    upper, lower = tmp_path / "upper", tmp_path / "lower"
    (lower / "dir").mkdir(parents=True)
    (lower / "dir" / "gone").write_bytes(b"deleted in the upper")
    (lower / "dir" / "kept").write_bytes(b"lower")
    (upper / "dir").mkdir(parents=True)
    os.mknod(str(upper / "dir" / "gone"), stat.S_IFCHR, 0)
    (upper / "new").write_bytes(b"upper")
    return str(upper), str(lower)


@pytest.mark.skipif(not ROOT, reason="fsopen() needs CAP_SYS_ADMIN")
@pytest.mark.parametrize("feats", [None, NO_PLUS], ids=["probed", "one lowerdir= value"])
def test_a_view_shows_the_upper_over_the_lowers_and_mounts_nothing(tmp_path, feats):
    with open("/proc/self/mountinfo") as handle:
        before = handle.read()
    upper, lower = _tree(tmp_path)
    with merged_view(upper, [lower], feats=feats) as view:
        assert view.startswith("/proc/self/fd/")
        assert sorted(os.listdir(view)) == ["dir", "new"] and sorted(os.listdir(view + "/dir")) == ["kept"]
        with open(view + "/dir/kept", "rb") as handle:
            assert handle.read() == b"lower"
        with pytest.raises(OSError):
            with open(view + "/written", "wb"):
                pass
        with open("/proc/self/mountinfo") as handle:
            assert handle.read() == before
        fd = int(view.rsplit("/", 1)[1])
    with pytest.raises(OSError):
        os.fstat(fd)  # closed with the context


@pytest.mark.skipif(not ROOT, reason="fsopen() needs CAP_SYS_ADMIN")
def test_the_kernels_reason_when_a_layer_is_missing(tmp_path):
    upper, _lower = _tree(tmp_path)
    for feats in (None, NO_PLUS):
        with pytest.raises(OverlayError) as caught:
            with merged_view(upper, [str(tmp_path / "missing")], feats=feats):
                pass
        assert "missing" in caught.value.message and "No such file or directory" in caught.value.message


@pytest.mark.skipif(not ROOT, reason="fsopen() needs CAP_SYS_ADMIN")
def test_too_many_layers_for_one_lowerdir_value(tmp_path):
    upper, _lower = _tree(tmp_path)
    many = []
    for n in range(20):
        many.append(str(tmp_path / ("l%02d" % n)))
        os.mkdir(many[-1])
    with pytest.raises(OverlayError) as caught:
        with merged_view(upper, many, feats=NO_PLUS):
            pass
    assert "255 bytes" in caught.value.message and "Linux 6.8+" in caught.value.message


def test_the_option_sets_are_tried_in_turn(monkeypatch, tmp_path):
    tried = []

    def superblock(layers, data, options, feats, what):
        tried.append(list(options))
        raise OverlayError("conflicting options", errno=22)
    monkeypatch.setattr(merged_reader, "_superblock", superblock)
    with pytest.raises(OverlayError, match="conflicting options"):
        with merged_view(str(tmp_path), [str(tmp_path)], feats=NEW):
            pass
    assert tried == option_tries([])
