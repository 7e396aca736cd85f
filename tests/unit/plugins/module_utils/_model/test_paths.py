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
