# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""An overlay among other mounts: covered at its mount point, serving shadowed dirs, and whose it is.

The mountinfo texts are written as the kernel lists them: in the order the
mounts were attached, with short mount ids that are reused (so an id says
nothing of age; the place in the list does).
"""

import pytest

from ansible_collections.overlayfs.mounts.plugins.module_utils._compare.drift import declared_drift, live_vs_persisted
from ansible_collections.overlayfs.mounts.plugins.module_utils._compare.live import (
    differences,
    is_ours,
    listed_overlay,
    live_state,
    managed_here,
    observe,
)
from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.mountinfo import parse
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.declaration import Declaration
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.overlay_options import defaults_from_parameters
from ansible_collections.overlayfs.mounts.plugins.module_utils._report.inventory import gather

DEFAULTS = defaults_from_parameters({})
ROOT = "22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw"
SRV = "30 22 0:40 / /srv rw,relatime - tmpfs tmpfs rw"
OURS = "90 30 0:60 / /srv/m rw,relatime - overlay overlay rw,lowerdir=/srv/l1:/srv/l2,upperdir=/srv/u,workdir=/srv/w"
DECL = Declaration("/srv/m", ["/srv/l1", "/srv/l2"], "/srv/u", "/srv/w")


def entries(*lines):
    return parse("\n".join((ROOT, SRV) + lines) + "\n")


def seen(*lines, ours=DECL):
    return observe("/srv/m", entries(*lines), DEFAULTS, None, ours=ours.config() if ours else None)


# Covered --------------------------------------------------------------------


@pytest.mark.parametrize("cover, fstype, foreign", [
    ("41 90 0:70 / /srv/m rw,relatime - tmpfs scratch rw", "tmpfs", "tmpfs"),
    ("41 90 254:0 /opt /srv/m rw,relatime - ext4 /dev/vda rw", "ext4", "ext4"),  # a bind mount
    ("41 90 0:71 / /srv/m rw,relatime - overlay theirs rw,lowerdir=/srv/o1:/srv/o2,upperdir=/srv/ou,workdir=/srv/ow",
     "overlay", None),
])
def test_our_overlay_under_another_mount_is_covered_by_it(cover, fstype, foreign):
    # The cover got a lower mount id than ours (ids are reused): its place in the list says it is later.
    found = seen(OURS, cover)
    assert found.live is not None and found.live["mount_id"] == 90 and found.foreign == foreign
    assert found.covered == {"type": fstype, "source": found.covered["source"], "mount_id": 41, "path": "/srv/m"}
    assert found.live.covered == found.covered
    rows = differences(DECL, found.live, DEFAULTS)
    assert rows == [{"field": "covered", "declared": None, "live": found.covered}]


def test_unpacks_as_a_triple_as_before():
    live, stacked, foreign = seen(OURS, "41 90 0:70 / /srv/m rw - tmpfs scratch rw")
    assert (live["mount_id"], stacked, foreign) == (90, 1, "tmpfs")


def test_a_second_copy_of_ours_on_top_is_ours_not_a_cover():
    copy = OURS.replace("90 30 0:60", "91 90 0:61")
    found = seen(OURS, copy)
    assert found.covered is None and found.live["mount_id"] == 91 and found.stacked == 2


def test_without_anything_of_ours_the_top_counts_as_before():
    theirs = "41 90 0:71 / /srv/m rw - overlay theirs rw,lowerdir=/srv/o1:/srv/o2,upperdir=/srv/ou,workdir=/srv/ow"
    other = OURS.replace("upperdir=/srv/u,workdir=/srv/w", "upperdir=/srv/x,workdir=/srv/y")
    found = seen(other, theirs)
    assert found.covered is None and found.live["mount_id"] == 41 and found.stacked == 2
    found = seen(other, "41 90 0:70 / /srv/m rw - tmpfs scratch rw")
    assert (found.live, found.stacked, found.foreign, found.covered) == (None, 0, "tmpfs", None)
    # A declaration with a path alone cannot tell whose an overlay is: the top counts.
    found = seen(OURS, theirs, ours=Declaration("/srv/m", state="unmounted"))
    assert found.covered is None and found.live["mount_id"] == 41


def test_is_ours_by_upper_and_work_or_by_layers_when_read_only():
    live = seen(OURS, ours=None).live
    assert is_ours(DECL.config(), live) is True
    assert is_ours(dict(DECL.config(), lowerdir=["/srv/new"]), live) is True  # a re-layering, still ours
    assert is_ours(dict(DECL.config(), upperdir="/srv/u2", workdir="/srv/w2"), live) is False
    read_only = {"lowerdir": ["/srv/l1", "/srv/l2"], "upperdir": None}
    assert is_ours(read_only, live) is False
    assert is_ours({"lowerdir": [], "upperdir": None}, live) is None


# Shadowed -------------------------------------------------------------------

B = "60 30 0:50 / /srv/b rw,relatime - overlay overlay rw,lowerdir=/srv/a/merged/x:/srv/l2,upperdir=/srv/bu,workdir=/srv/bw"
B_DECL = Declaration("/srv/b", ["/srv/a/merged/x", "/srv/l2"], "/srv/bu", "/srv/bw")
A = "45 30 0:51 / /srv/a/merged rw,relatime - overlay overlay ro,lowerdir=/srv/a1:/srv/a2"


def b_seen(*lines):
    return observe("/srv/b", entries(*lines), DEFAULTS, None, ours=B_DECL.config())


def test_a_mount_made_later_at_a_parent_of_a_layer_shadows_it():
    live = b_seen(B, A).live  # A listed after B (with a lower, reused id)
    assert [(row["field"], row["path"], row["mount"]["mount_id"]) for row in live.shadowed] == [
        ("lowerdir[0]", "/srv/a/merged/x", 45)]
    assert "mounted over its path after the overlay" in live.shadowed[0]["reason"]
    rows = differences(B_DECL, live, DEFAULTS)
    assert rows == [{"field": "shadowed", "declared": [], "live": [
        {"field": "lowerdir[0]", "path": "/srv/a/merged/x",
         "mount": {"type": "overlay", "source": "overlay", "mount_id": 45, "path": "/srv/a/merged"}}]}]


def test_a_mount_made_before_the_overlay_shadows_nothing():
    assert b_seen(A, B).live.shadowed == []
    assert differences(B_DECL, b_seen(A, B).live, DEFAULTS) == []


def test_upper_and_work_dirs_are_checked_too():
    later = "46 30 0:52 / /srv/bu rw - tmpfs t rw"
    live = b_seen(B, later).live
    assert [row["field"] for row in live.shadowed] == ["upperdir"]


def test_a_later_mount_hidden_under_an_older_one_is_not_crossed():
    # /srv/a/merged was mounted after B, but beneath a later mount of /srv/a that hides it.
    hide = "47 30 0:53 / /srv/a rw - tmpfs t rw"
    live = b_seen(B, A, hide).live
    assert [row["mount"]["mount_id"] for row in live.shadowed] == [47]


def test_a_bind_of_a_dir_onto_itself_shadows_nothing():
    self_bind = "48 30 0:40 /a /srv/a rw,nosuid - tmpfs tmpfs rw"  # /srv/a of the /srv tmpfs, onto itself
    assert b_seen(B, self_bind).live.shadowed == []
    other_dir = "48 30 0:40 /elsewhere /srv/a rw - tmpfs tmpfs rw"
    assert [row["mount"]["mount_id"] for row in b_seen(B, other_dir).live.shadowed] == [48]


def test_a_mount_at_the_overlays_own_mount_point_covers_rather_than_shadows():
    cover = "49 60 0:54 / /srv/b rw - tmpfs t rw"
    found = b_seen(B, cover)
    assert found.covered["mount_id"] == 49 and found.live.shadowed == []


def test_short_links_are_checked_as_links_and_as_their_targets():
    """``method: symlinks``: mountinfo names the link; the kernel walked the link and then its target."""

    class Links:
        follow = True

        @staticmethod
        def trace(path):
            return path, None

        @staticmethod
        def own_link(path):
            return {"/links/srv-b/0": "/srv/a/merged/x", "/links/srv-b/1": "/srv/l2"}.get(path)

        @staticmethod
        def mount_time(_workdir):
            return 0

    line = "60 30 0:50 / /srv/b rw - overlay overlay rw,lowerdir=0:1,upperdir=/srv/bu,workdir=/srv/bw"
    links_mount = "44 22 0:41 / /links rw - tmpfs t rw"
    known = {"/links/srv-b/0", "/links/srv-b/1"}
    for lines, expected in (((links_mount, line, A), [45]), ((line, links_mount), [44, 44]), ((links_mount, A, line), [])):
        entry_list = entries(*lines)
        entry = [e for e in entry_list if e.mount_point == "/srv/b"][0]
        live = live_state(entry, DEFAULTS, exists=known.__contains__, bases=["/links/srv-b"], entries=entry_list,
                          links=Links())
        assert live["lowerdir"] == ["/srv/a/merged/x", "/srv/l2"]
        assert [row["mount"]["mount_id"] for row in live.shadowed] == expected


# Drift ----------------------------------------------------------------------


def test_declared_drift_names_the_cover_and_the_shadowed_dirs():
    found = seen(OURS, "41 90 0:70 / /srv/m rw - tmpfs scratch rw")
    rows = declared_drift(DECL, None, [], True, found.live, {}, DEFAULTS)
    assert rows == [{"field": "covered", "declared": None, "persisted": None,
                     "live": {"type": "tmpfs", "source": "scratch", "mount_id": 41, "path": "/srv/m"}}]
    rows = declared_drift(B_DECL, None, [], True, b_seen(B, A).live, {}, DEFAULTS)
    assert [row["field"] for row in rows] == ["shadowed"]


def test_info_lists_the_persisted_overlay_covered_and_its_shadowed_dirs():
    mountinfo = entries(OURS, "41 90 0:71 / /srv/m rw - overlay theirs rw,lowerdir=/srv/o1:/srv/o2", B, A)
    conf = dict(DECL.config(), boot_options=[], managed=True)
    b_conf = dict(B_DECL.config(), boot_options=[], managed=True)
    records = {r["path"]: r for r in gather(mountinfo, DEFAULTS, {"fstab": {"/srv/m": [conf], "/srv/b": [b_conf]}})}
    ours = records["/srv/m"]
    assert ours["mount_id"] == 90 and ours["stacked"] == 2
    assert [(row["field"], row["live"]["mount_id"]) for row in ours["drift"]] == [("covered", 41)]
    assert [row["field"] for row in records["/srv/b"]["drift"]] == ["shadowed"]
    assert records["/srv/a/merged"]["drift"] == []


def test_info_shows_an_unpersisted_overlay_under_a_tmpfs_as_covered():
    mountinfo = entries(OURS, "41 90 0:70 / /srv/m rw - tmpfs scratch rw")
    record = gather(mountinfo, DEFAULTS, {})[0]
    top = [e for e in mountinfo if e.mount_id == 90][0]
    assert record["mount_id"] == 90
    assert [(row["field"], row["source"], row["live"]["mount_id"]) for row in record["drift"]] == [("covered", None, 41)]
    live = listed_overlay("/srv/m", top, mountinfo, DEFAULTS, None, None, None)
    assert live.covered["mount_id"] == 41
    # Once, whatever persists the overlay (the stack is the live mount's alone).
    persisted = {"fstab": dict(DECL.config(), boot_options=[]), "systemd": dict(DECL.config(), boot_options=[])}
    assert [row["field"] for row in live_vs_persisted(live, persisted, DEFAULTS)] == ["covered"]


# Whose overlay --------------------------------------------------------------

# The collection's own layout that looks like an engine's: <root>/<name>/{merged,diff,work}, layers in <root>/l.
LOOKALIKE = ("70 30 0:55 / /srv/overlay/web/merged rw - overlay overlay rw,lowerdir=/srv/overlay/l/base,"
             "upperdir=/srv/overlay/web/diff,workdir=/srv/overlay/web/work")


@pytest.mark.parametrize("marks, own, engine", [
    (set(), False, None),  # named like containers/storage's root, but none of its marks: not an engine's
    ({"/srv/overlay-layers"}, False, "containers-storage"),
    ({"/srv/overlay-layers"}, True, None),  # a managed line or unit at the mount point: the collection's
])
def test_an_engine_is_named_by_its_own_marks_never_by_a_name(marks, own, engine):
    mountinfo = entries(LOOKALIKE)
    found = observe("/srv/overlay/web/merged", mountinfo, DEFAULTS, None, exists=marks.__contains__, own=own)
    assert found.live["engine"] == engine


def test_the_collections_own_lines_make_it_its_own():
    class Backend:
        name = "fstab"

        def __init__(self, managed):
            self.shown = {"lowerdir": [], "managed": managed} if managed is not None else None

        @staticmethod
        def first(shown):
            return shown

        def persisted(self, after=True):
            return {self.name: self.shown}

    assert managed_here([Backend(True)]) is True
    assert managed_here([Backend(False), Backend(None)]) is False
