# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.overlayfs.mounts.plugins.module_utils._errors import OverlayError
from ansible_collections.overlayfs.mounts.plugins.module_utils._mountinfo import parse_line
from ansible_collections.overlayfs.mounts.plugins.module_utils._options import defaults_from_parameters
from ansible_collections.overlayfs.mounts.plugins.module_utils._plan import (
    differences,
    live_state,
    make_plan,
    public_live,
)

DEFAULTS = defaults_from_parameters({})
DECL = {"path": "/srv/m", "lowerdir": ["/srv/l1", "/srv/l2"], "upperdir": "/srv/u", "workdir": "/srv/w",
        "options": []}


def _live(super_options, mount_point="/srv/m"):
    line = "70 22 0:50 / %s rw,relatime - overlay overlay rw,%s" % (mount_point, super_options)
    return live_state(parse_line(line), DEFAULTS)


SAME = "lowerdir+=/srv/l1,lowerdir+=/srv/l2,upperdir=/srv/u,workdir=/srv/w,uuid=on"
SAME_LEGACY = "lowerdir=/srv/l1:/srv/l2,upperdir=/srv/u,workdir=/srv/w"


@pytest.mark.parametrize("super_options", [SAME, SAME_LEGACY])
def test_converged_mount_plans_nothing(super_options):
    plan = make_plan(DECL, "mounted", _live(super_options), 1, DEFAULTS, [])
    assert plan["changed"] is False
    assert plan["actions"] == [] and plan["differences"] == []
    assert plan["diff"]["before"] == plan["diff"]["after"]


def test_missing_mount_creates_dirs_then_mounts():
    plan = make_plan(DECL, "mounted", None, 0, DEFAULTS, ["/srv/u", "/srv/w"])
    assert [a["action"] for a in plan["actions"]] == ["create_dir", "create_dir", "mount"]
    assert plan["differences"] == [{"field": "mounted", "declared": True, "live": False}]
    assert plan["diff"]["before"] == {}
    assert plan["diff"]["after"]["lowerdir"] == ["/srv/l1", "/srv/l2"]


@pytest.mark.parametrize("super_options, fields", [
    ("lowerdir=/srv/l2:/srv/l1,upperdir=/srv/u,workdir=/srv/w", ["lowerdir"]),
    ("lowerdir=/srv/l1,upperdir=/srv/u,workdir=/srv/w", ["lowerdir"]),
    ("lowerdir=/srv/l1:/srv/l2,upperdir=/srv/u2,workdir=/srv/w2", ["upperdir", "workdir"]),
    ("lowerdir=/srv/l1:/srv/l2,upperdir=/srv/u,workdir=/srv/w,index=on,volatile",
     ["options.index", "options.volatile"]),
    ("lowerdir=/srv/l1:/srv/l2,redirect_dir=on", ["upperdir", "workdir", "options.redirect_dir"]),
])
def test_changes_a_remount_cannot_carry_relayer(super_options, fields):
    plan = make_plan(DECL, "mounted", _live(super_options), 1, DEFAULTS, [])
    assert plan["changed"] and plan["relayer"]
    assert [d["field"] for d in plan["differences"]] == fields
    assert [a["action"] for a in plan["actions"]] == ["unmount", "mount"]


def test_unmounted_unmounts_every_stacked_overlay():
    plan = make_plan(DECL, "unmounted", _live(SAME), 2, DEFAULTS, [])
    assert [a["action"] for a in plan["actions"]] == ["unmount", "unmount"]
    assert plan["diff"]["after"] == {}


def test_unmounted_when_nothing_is_mounted():
    plan = make_plan(DECL, "unmounted", None, 0, DEFAULTS, [])
    assert plan["changed"] is False and plan["actions"] == []


def test_foreign_filesystem_at_path_is_refused():
    with pytest.raises(OverlayError, match="tmpfs filesystem, not an overlay"):
        make_plan(DECL, "mounted", None, 0, DEFAULTS, [], foreign_top="tmpfs")


def test_kernel_added_uuid_is_not_drift_nor_diff_noise():
    live = _live(SAME)
    assert live["shown_options"] == ["uuid=on"]
    plan = make_plan(DECL, "mounted", live, 1, DEFAULTS, [])
    assert plan["diff"]["before"]["options"] == [] == plan["diff"]["after"]["options"]


def test_live_state_is_public_without_private_keys():
    live = public_live(_live(SAME))
    assert "_config" not in live
    assert live["form"] == "lowerdir+" and live["mount_id"] == 70


def test_read_only_overlay_matches_its_declaration():
    decl = dict(DECL, upperdir=None, workdir=None)
    live = _live("lowerdir=/srv/l1:/srv/l2,redirect_dir=on")
    assert live["read_only"] is False
    assert differences(decl, live, DEFAULTS) == []


def test_relative_layers_with_dotdot_resolve_against_the_matching_base():
    line = ("71 22 0:51 / /s/root/c/merged rw - overlay overlay rw,lowerdir=../other/l/a:../other/l/b,"
            "upperdir=/s/root/c/diff,workdir=/s/root/c/work")
    existing = {"/s/other/l/a"}
    live = live_state(parse_line(line), DEFAULTS, exists=existing.__contains__)
    assert live["lowerdir"] == ["/s/other/l/a", "/s/other/l/b"]
