# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

import pytest

from ansible_collections.overlayfs.mounts.plugins.module_utils._converge.pending import PendingMounts


# PendingMounts: which entries must wait for the group's mountinfo check --------

def _group():
    group = PendingMounts()
    group.add("a", ["/srv/base", "/srv/a/lower"], ["/srv/a/merged", "/srv/a/d/upper", "/srv/a/d/work"])
    return group


@pytest.mark.parametrize("lowers, others, meets", [
    # independent overlays, sharing only a lower layer: no need to wait
    (["/srv/base", "/srv/b/lower"], ["/srv/b/merged", "/srv/b/d/upper", "/srv/b/d/work"], False),
    # a layer at or inside the unverified mount point (stacked on it)
    (["/srv/a/merged"], ["/srv/b/merged"], True),
    (["/srv/a/merged/sub"], ["/srv/b/merged"], True),
    # its mount point above the unverified one (it would cover it), at it, or inside it
    (["/srv/base"], ["/srv", "/srv/x/upper", "/srv/x/work"], True),
    (["/srv/base"], ["/srv/a/merged"], True),
    (["/srv/base"], ["/srv/a/merged/inner"], True),
    # the same upper or work dir, or one inside the other
    (["/srv/base"], ["/srv/c/merged", "/srv/a/d/upper", "/srv/c/work"], True),
    (["/srv/base"], ["/srv/c/merged", "/srv/c/upper", "/srv/a/d/work/x"], True),
    (["/srv/base"], ["/srv/c/merged", "/srv/a/d", "/srv/c/work"], True),
    # its upper dir is a lower layer of the unverified overlay, or holds one
    (["/srv/base"], ["/srv/c/merged", "/srv/a/lower", "/srv/c/work"], True),
    (["/srv/base"], ["/srv/c/merged", "/srv/c/upper", "/srv/"], True),
    # a lower layer that is the unverified overlay's upper dir
    (["/srv/a/d/upper"], ["/srv/c/merged"], True),
    # siblings of the unverified dirs
    (["/srv/a/lower2"], ["/srv/a/merged2", "/srv/a/d/upper2", "/srv/a/d/work2"], False),
])
def test_unverified_touches(lowers, others, meets):
    assert _group().touches(lowers, others) is meets


def test_unverified_take_empties_the_group():
    group = _group()
    group.add("b", [], ["/srv/b/merged"])
    assert len(group) == 2 and group.take() == ["a", "b"]
    assert len(group) == 0 and not group.touches(["/srv/a/merged"], ["/srv/a/merged"])


def test_unverified_checks_cost_the_depth_not_the_group():
    group = PendingMounts()
    for number in range(5000):
        group.add(number, ["/srv/base", "/srv/l/%d" % number], ["/srv/m/%d" % number, "/srv/u/%d" % number])
    assert not group.touches(["/srv/base", "/srv/l/x"], ["/srv/m/x", "/srv/u/x"])
    assert group.touches(["/srv/base"], ["/srv/m/4999"])
    assert group.touches(["/srv/base"], ["/srv/m"])
