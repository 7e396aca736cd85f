# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

import pytest

from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.layers import (
    check_pairing,
    named_layers,
    requires_mounts_for,
)


def test_named_layers_lists_every_path_top_layer_first():
    assert named_layers(["/a", "/b"], "/u", "/w", ["/d"]) == [
        ("lowerdir[0]", "/a"), ("lowerdir[1]", "/b"), ("datadir[0]", "/d"), ("upperdir", "/u"), ("workdir", "/w")]
    assert named_layers(["/a"]) == [("lowerdir[0]", "/a")]


@pytest.mark.parametrize("args, expected", [
    ((["/a", "/b"],), ["/a", "/b"]),
    ((["/a", "/b", "/a"], "/u", "/w", ["/b", "/d"]), ["/a", "/b", "/d", "/u", "/w"]),
    ((["/a"], "/a", "/w"), ["/a", "/w"]),
])
def test_requires_mounts_for_lists_each_directory_once_top_layer_first(args, expected):
    assert requires_mounts_for(*args) == expected


@pytest.mark.parametrize("upperdir, workdir", [("/u", None), (None, "/w")])
def test_upper_and_work_go_together(upperdir, workdir):
    with pytest.raises(OverlayError, match="^upperdir and workdir go together: give both"):
        check_pairing(upperdir, workdir)


@pytest.mark.parametrize("upperdir, workdir", [("/u", "/w"), (None, None)])
def test_both_or_neither_is_fine(upperdir, workdir):
    check_pairing(upperdir, workdir)
