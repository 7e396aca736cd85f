# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

import errno
import os

import pytest

from ansible_collections.overlayfs.mounts.plugins.module_utils._model.declaration import Declaration
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.path_limits import (
    PATH_BYTES_MAX,
    check_path_lengths,
    declared_paths,
    path_bytes,
)


def test_path_bytes_counts_utf8_and_raw_bytes():
    assert path_bytes("/\u00e9") == 3
    assert path_bytes("/x\udcff") == 3


@pytest.mark.parametrize("size, refused", [(4094, False), (4095, False), (4096, True), (5000, True)])
def test_the_limit_is_4095_bytes(size, refused):
    path = "/" + "a" * (size - 1)
    if refused:
        with pytest.raises(OverlayError, match="upperdir: the path .* is %d bytes long; Linux takes at most 4095" % size):
            check_path_lengths([("upperdir", path)])
    else:
        check_path_lengths([("upperdir", path)])


def test_declared_paths_name_every_field():
    decl = Declaration("/m", ["/l1", "/l2"], "/u", "/w")
    assert declared_paths(decl, [("links_dir", "/run/l/m"), ("unit_dir", None)]) == [
        ("path", "/m"), ("lowerdir[0]", "/l1"), ("lowerdir[1]", "/l2"), ("upperdir", "/u"), ("workdir", "/w"),
        ("links_dir", "/run/l/m")]


def test_the_kernel_agrees_on_the_limit(tmp_path):
    """Measured: a path of 4095 bytes is looked up (ENOENT), one of 4096 is refused as too long."""
    base = str(tmp_path)
    for size, expected in ((PATH_BYTES_MAX, errno.ENOENT), (PATH_BYTES_MAX + 1, errno.ENAMETOOLONG)):
        path = base + ("/" + "n" * 200) * ((size - len(base)) // 201)
        path += "/" + "x" * (size - len(path) - 1)
        assert len(path) == size
        with pytest.raises(OSError) as caught:
            os.stat(path)
        assert caught.value.errno == expected
