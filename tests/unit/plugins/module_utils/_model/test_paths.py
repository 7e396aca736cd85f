# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

import pytest

from ansible_collections.overlayfs.mounts.plugins.module_utils._model.paths import at_or_inside, inside


@pytest.mark.parametrize("path, parent, is_inside, at_or_below", [
    ("/srv/a/b", "/srv/a", True, True),
    ("/srv/a", "/srv/a", False, True),
    ("/srv/a/", "/srv/a", False, True),
    ("/srv/a", "/srv/a/", False, True),
    ("/srv/ab", "/srv/a", False, False),
    ("/srv", "/srv/a", False, False),
    ("/srv/a", "/", True, True),
    ("/", "/", False, True),
    ("/srv/a/b", "/srv/a/", True, True),
])
def test_inside(path, parent, is_inside, at_or_below):
    assert inside(path, parent) is is_inside
    assert at_or_inside(path, parent) is at_or_below


def test_normalize_drops_doubled_and_trailing_slashes_and_dots_but_keeps_dot_dot():
    from ansible_collections.overlayfs.mounts.plugins.module_utils._model.paths import normalize
    assert normalize("/srv//l2/") == "/srv/l2"
    assert normalize("//srv/./l1/.") == "/srv/l1"
    assert normalize("/srv/a/../b") == "/srv/a/../b"
    assert normalize("/") == "/" and normalize("l/a/") == "l/a"


def test_same_path_compares_paths_and_lists_of_paths():
    from ansible_collections.overlayfs.mounts.plugins.module_utils._model.paths import same_path
    assert same_path("/srv/l1/", "/srv/l1")
    assert same_path(["/srv//l2", "/srv/l1/"], ["/srv/l2", "/srv/l1"])
    assert not same_path(["/srv/l1"], ["/srv/l1", "/srv/l2"])
    assert not same_path("/srv/l1", None) and same_path(None, None)
