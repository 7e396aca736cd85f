# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The graph of a host's overlays: order, duplicates, cycles, exclusive upper and work dirs."""

import time

import pytest

from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.graph import (
    Node,
    check_cycles,
    check_depth,
    check_duplicates,
    check_exclusive,
    dependencies,
    find_cycle,
    stack_depths,
    topological,
)


def node(path, lowerdir=("/srv/l1", "/srv/l2"), upperdir=None, workdir=None, declared=True, name=None):
    dirs = [("lowerdir[%d]" % i, d) for i, d in enumerate(lowerdir)]
    dirs += [(f, d) for f, d in (("upperdir", upperdir), ("workdir", workdir)) if d]
    return Node(path, tuple(dirs), name or path, declared)


def ordered(nodes):
    return [nodes[i].path for i in topological(nodes, range(len(nodes)))]


ORDER_CASES = [
    ("independent: input order",
     [node("/srv/c"), node("/srv/a"), node("/srv/b")], ["/srv/c", "/srv/a", "/srv/b"]),
    ("stacked listed first comes after its base",
     [node("/srv/top", ["/srv/base/sub", "/srv/l"]), node("/srv/base")], ["/srv/base", "/srv/top"]),
    ("stacked on the merged dir itself",
     [node("/srv/top", ["/srv/base", "/srv/l"]), node("/srv/other"), node("/srv/base")],
     ["/srv/other", "/srv/base", "/srv/top"]),
    ("a chain of three listed backwards",
     [node("/c", ["/b/x", "/l"]), node("/b", ["/a/x", "/l"]), node("/a")], ["/a", "/b", "/c"]),
    ("data layers count",
     [Node("/srv/top", (("lowerdir[0]", "/srv/l"), ("datadir[0]", "/srv/base/d")), "/srv/top"), node("/srv/base")],
     ["/srv/base", "/srv/top"]),
    ("a name prefix is no dependency",
     [node("/srv/application", ["/srv/app2/x", "/srv/l"]), node("/srv/app")],
     ["/srv/application", "/srv/app"]),
    ("an overlay stacked on its own mount point depends on nothing",
     [node("/srv/stack", ["/srv/s3", "/srv/stack"]), node("/srv/x")], ["/srv/stack", "/srv/x"]),
    ("a diamond",
     [node("/d", ["/b/x", "/c/x"]), node("/c", ["/a/y", "/l"]), node("/b", ["/a/x", "/l"]), node("/a")],
     ["/a", "/c", "/b", "/d"]),
]


@pytest.mark.parametrize("nodes, expected", [c[1:] for c in ORDER_CASES], ids=[c[0] for c in ORDER_CASES])
def test_topological(nodes, expected):
    assert ordered(nodes) == expected


def test_dependencies_name_the_dir_of_each_edge():
    nodes = [node("/top", ["/l", "/base/x/y"]), node("/base")]
    assert dependencies(nodes) == {0: {1: ("lowerdir[1]", "/base/x/y")}, 1: {}}


def test_topological_of_a_subset_ignores_the_rest():
    nodes = [node("/c", ["/b/x", "/l"]), node("/b", ["/a/x", "/l"]), node("/a")]
    assert topological(nodes, [0, 1]) == [1, 0]


def test_a_cycle_is_found_and_named():
    nodes = [node("/a", ["/b/x", "/l"], name="mounts[0] (/a)"), node("/b", ["/a/y", "/l"], name="mounts[1] (/b)"),
             node("/c")]
    assert find_cycle(dependencies(nodes)) == [0, 1, 0]
    with pytest.raises(OverlayError) as caught:
        check_cycles(nodes)
    message = caught.value.message
    assert "mounts[0] (/a) has lowerdir[0] /b/x under mounts[1] (/b)" in message
    assert "mounts[1] (/b) has lowerdir[0] /a/y under mounts[0] (/a)" in message
    assert caught.value.details["cycle"] == ["/a", "/b", "/a"]


def test_a_longer_cycle_through_a_live_overlay():
    nodes = [node("/a", ["/c/x", "/l"]), node("/b", ["/a/x", "/l"], declared=False), node("/c", ["/b/x", "/l"])]
    with pytest.raises(OverlayError, match="cycle"):
        check_cycles(nodes)


def test_no_cycle_in_a_chain():
    nodes = [node("/m%d" % i, ["/m%d/x" % (i + 1), "/l"]) for i in range(200)]
    check_cycles(nodes)
    assert ordered(nodes) == ["/m%d" % i for i in reversed(range(200))]


def test_topological_keeps_going_past_a_cycle():
    nodes = [node("/b", ["/a/x", "/l"]), node("/a", ["/b/x", "/l"]), node("/c")]
    assert sorted(topological(nodes, range(3))) == [0, 1, 2]


def test_duplicates_named_with_both_positions():
    nodes = [node("/srv/x", name="mounts[0] (/srv/x)"), node("/srv/y"), node("/srv/x", name="mounts[2] (/srv/link/x)")]
    with pytest.raises(OverlayError) as caught:
        check_duplicates(nodes)
    assert "mounts[0] (/srv/x) and mounts[2] (/srv/link/x)" in caught.value.message


def test_a_live_overlay_at_a_declared_path_is_no_duplicate():
    check_duplicates([node("/srv/x"), node("/srv/x", declared=False)])


EXCLUSIVE_REFUSED = [
    ("a live upper as a lower",
     [node("/n", ["/srv/a/upper", "/l"]), node("/a", upperdir="/srv/a/upper", workdir="/srv/a/work", declared=False)],
     "/n lowerdir[0] /srv/a/upper is /a's upperdir"),
    ("a lower inside a live work dir",
     [node("/n", ["/srv/a/work/x", "/l"]), node("/a", upperdir="/srv/a/upper", workdir="/srv/a/work", declared=False)],
     "lies inside /a's workdir"),
    ("the same upper",
     [node("/n", upperdir="/u", workdir="/w2"), node("/a", upperdir="/u", workdir="/w", declared=False)],
     "/n upperdir /u is /a's upperdir"),
    ("an upper inside another's upper",
     [node("/n", upperdir="/u/inner", workdir="/w2"), node("/a", upperdir="/u", workdir="/w", declared=False)],
     "lies inside /a's upperdir"),
    ("another's upper inside mine",
     [node("/n", upperdir="/u", workdir="/w2"), node("/a", upperdir="/u/inner", workdir="/w", declared=False)],
     "/a's upperdir /u/inner lies inside /n upperdir /u"),
    ("mounted over another's upper and work",
     [node("/srv/data"), node("/a", upperdir="/srv/data/a/upper", workdir="/srv/data/a/work", declared=False)],
     "/srv/data, mounted at /srv/data, would hide /a's upperdir /srv/data/a/upper"),
    ("an upper under a declared overlay's mount point (check mode: not mounted yet)",
     [node("/n", upperdir="/srv/base/u", workdir="/srv/base/w"), node("/srv/base")],
     "lies under the mount point of /srv/base"),
    ("two declared overlays sharing an upper",
     [node("/n", upperdir="/u", workdir="/w"), node("/m", upperdir="/u", workdir="/w2")],
     "/n upperdir /u is /m's upperdir"),
]


@pytest.mark.parametrize("nodes, expected", [c[1:] for c in EXCLUSIVE_REFUSED], ids=[c[0] for c in EXCLUSIVE_REFUSED])
def test_exclusive_refused(nodes, expected):
    with pytest.raises(OverlayError) as caught:
        check_exclusive(nodes)
    assert expected in caught.value.message
    assert "give each overlay its own upper and work dirs" in caught.value.message


EXCLUSIVE_ALLOWED = [
    ("separate dirs", [node("/n", upperdir="/n-u", workdir="/n-w"), node("/a", upperdir="/a-u", workdir="/a-w")]),
    ("a lower that contains another's upper (a root-style lower)",
     [node("/n", ["/", "/l"]), node("/a", upperdir="/srv/a/u", workdir="/srv/a/w", declared=False)]),
    ("the live version of the same overlay",
     [node("/n", upperdir="/u", workdir="/w"), node("/n", upperdir="/u", workdir="/w", declared=False)]),
    ("a lower in another overlay's merged dir", [node("/n", ["/srv/base/x", "/l"]), node("/srv/base")]),
    ("live overlays sharing among themselves are not the declaration's business",
     [node("/n"), node("/a", upperdir="/u", workdir="/w", declared=False),
      node("/b", upperdir="/u", workdir="/w", declared=False)]),
    ("a name prefix is not inside", [node("/n", upperdir="/u2", workdir="/w2"), node("/a", upperdir="/u", workdir="/w")]),
]


@pytest.mark.parametrize("nodes", [c[1] for c in EXCLUSIVE_ALLOWED], ids=[c[0] for c in EXCLUSIVE_ALLOWED])
def test_exclusive_allowed(nodes):
    check_exclusive(nodes)


def test_the_whole_graph_is_linear():
    """Five thousand overlays on one base, with upper dirs: checked and ordered in well under a second."""
    nodes = [node("/srv/m%d" % i, ["/srv/base/l%d" % i, "/srv/shared"], "/srv/u/%d/upper" % i, "/srv/u/%d/work" % i)
             for i in range(5000)]
    nodes.append(node("/srv/base"))
    start = time.monotonic()
    deps = dependencies(nodes)
    check_cycles(nodes, deps)
    check_exclusive(nodes)
    order = topological(nodes, range(len(nodes)), deps)
    assert time.monotonic() - start < 2.0
    assert order[0] == 5000 and sorted(order) == list(range(5001))


def test_stack_depths_follow_the_mounts_that_hold_each_dir():
    nodes = [node("/c", ["/b/x", "/l"]), node("/b", ["/a/x", "/l"]), node("/a"), node("/d", ["/e/x", "/l"])]
    holders = {0: [("lowerdir[0]", "/b/x", 1)], 1: [("lowerdir[0]", "/a/x", 2)], 2: [], 3: [("lowerdir[0]", "/e/x", None)]}
    assert stack_depths(nodes, holders) == {0: 3, 1: 2, 2: 1, 3: 1}
    with pytest.raises(OverlayError) as caught:
        check_depth(nodes, holders)
    assert caught.value.message.startswith("/c would be stacked 3 overlays deep, and the kernel stacks at most 2: "
                                           "/c has lowerdir[0] /b/x on /b; /b has lowerdir[0] /a/x on /a.")


def test_two_deep_is_allowed_and_live_stacks_are_not_the_declarations_business():
    nodes = [node("/b", ["/a/x", "/l"]), node("/a"), node("/z", declared=False), node("/y", declared=False)]
    holders = {0: [("lowerdir[0]", "/a/x", 1)], 2: [("lowerdir[0]", "/y/x", 3)], 3: [("lowerdir[0]", "/w/x", 1)]}
    check_depth(nodes, holders)
