# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

import pytest

from ansible_collections.overlayfs.mounts.plugins.module_utils._model.declaration import Declaration
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError
from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.mountinfo import parse_line
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.overlay_options import defaults_from_parameters
from ansible_collections.overlayfs.mounts.plugins.module_utils._converge.plan import make_plan
from ansible_collections.overlayfs.mounts.plugins.module_utils._compare.live import Observed, live_state

DEFAULTS = defaults_from_parameters({})
DECL = {"path": "/srv/m", "lowerdir": ["/srv/l1", "/srv/l2"], "upperdir": "/srv/u", "workdir": "/srv/w",
        "options": []}


def plan_for(state, live=None, stacked=None, to_create=(), persist=(), upper_check=None, via=None, foreign=None,
             decl=None):
    """make_plan for DECL (or ``decl``, a dict of fields) in ``state``; ``stacked`` defaults to 1 when live."""
    declared = Declaration(**dict(decl or DECL, state=state))
    seen = Observed(live, (1 if live is not None else 0) if stacked is None else stacked, foreign)
    return make_plan(declared, seen, DEFAULTS, to_create, persist, upper_check, via)


def _live(super_options, mount_point="/srv/m"):
    line = "70 22 0:50 / %s rw,relatime - overlay overlay rw,%s" % (mount_point, super_options)
    return live_state(parse_line(line), DEFAULTS)


SAME = "lowerdir+=/srv/l1,lowerdir+=/srv/l2,upperdir=/srv/u,workdir=/srv/w,uuid=on"
SAME_LEGACY = "lowerdir=/srv/l1:/srv/l2,upperdir=/srv/u,workdir=/srv/w"


@pytest.mark.parametrize("super_options", [SAME, SAME_LEGACY])
def test_converged_mount_plans_nothing(super_options):
    plan = plan_for("mounted", _live(super_options), 1, [])
    assert plan["changed"] is False
    assert plan["actions"] == [] and plan["differences"] == []
    assert plan["diff"]["before"] == plan["diff"]["after"]


def test_missing_mount_creates_dirs_then_mounts():
    plan = plan_for("mounted", None, 0, ["/srv/u", "/srv/w"])
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
    plan = plan_for("mounted", _live(super_options), 1, [])
    assert plan["changed"] and plan["relayer"]
    assert [d["field"] for d in plan["differences"]] == fields
    assert [a["action"] for a in plan["actions"]] == ["unmount", "mount"]


def test_unmounted_unmounts_every_stacked_overlay():
    plan = plan_for("unmounted", _live(SAME), 2, [])
    assert [a["action"] for a in plan["actions"]] == ["unmount", "unmount"]
    assert plan["diff"]["after"] == {}


def test_unmounted_when_nothing_is_mounted():
    plan = plan_for("unmounted", None, 0, [])
    assert plan["changed"] is False and plan["actions"] == []


def test_foreign_filesystem_at_path_is_refused():
    with pytest.raises(OverlayError, match="tmpfs filesystem, not an overlay"):
        plan_for("mounted", foreign="tmpfs")


def test_kernel_added_uuid_is_not_drift_nor_diff_noise():
    live = _live(SAME)
    assert live["shown_options"] == ["uuid=on"]
    plan = plan_for("mounted", live, 1, [])
    assert plan["diff"]["before"]["options"] == [] == plan["diff"]["after"]["options"]


# ---- the converge decisions: state x live x persisted -> actions ---------------------------

RELAYERED = "lowerdir=/srv/l2:/srv/l1,upperdir=/srv/u,workdir=/srv/w"
WRITE = [{"action": "write_fstab", "path": "/etc/fstab"}, {"action": "daemon_reload", "path": "/etc/systemd/system"}]
REMOVE = [{"action": "write_fstab", "path": "/etc/fstab"}]
DIRS = ["/srv/m", "/srv/u"]
CLEAR = [{"action": "clear_volatile", "path": "/srv/w/work/incompat/volatile"}]

# (id, state, live (super options or None), stacked, dirs to create, persistence steps, upper_check steps,
#  expected actions, as "action" or "action:via")
DECISIONS = [
    ("mounted, nothing there", "mounted", None, 0, DIRS, WRITE, [],
     ["create_dir", "create_dir", "write_fstab", "daemon_reload", "mount"]),
    ("mounted, nothing to persist", "mounted", None, 0, [], [], [], ["mount"]),
    ("mounted, in sync", "mounted", SAME, 1, [], [], [], []),
    ("mounted, in sync, fstab line missing", "mounted", SAME, 1, [], WRITE, [], ["write_fstab", "daemon_reload"]),
    ("mounted, other layers: persist, unmount, mount", "mounted", RELAYERED, 1, [], WRITE, [],
     ["write_fstab", "daemon_reload", "unmount", "mount"]),
    ("mounted, stale volatile marker: cleared right before mounting", "mounted", None, 0, [], [], CLEAR,
     ["clear_volatile", "mount"]),
    ("mounted, re-layered with a stale marker", "mounted", RELAYERED, 1, [], [], CLEAR,
     ["unmount", "clear_volatile", "mount"]),
    ("present leaves the live mount alone", "present", RELAYERED, 1, [], WRITE, [], ["write_fstab", "daemon_reload"]),
    ("present, nothing live, dirs missing", "present", None, 0, DIRS, WRITE, [],
     ["create_dir", "create_dir", "write_fstab", "daemon_reload"]),
    ("present, in sync", "present", SAME, 1, [], [], [], []),
    ("unmounted, two stacked", "unmounted", SAME, 2, [], [], [], ["unmount", "unmount"]),
    ("unmounted, nothing there", "unmounted", None, 0, [], [], [], []),
    ("absent: unmount before unpersisting", "absent", SAME, 1, [], REMOVE, [], ["unmount", "write_fstab"]),
    ("absent, only persisted", "absent", None, 0, [], REMOVE, [], ["write_fstab"]),
    ("absent, nothing anywhere", "absent", None, 0, [], [], [], []),
]


@pytest.mark.parametrize("state, super_options, stacked, dirs, persist, remedies, expected",
                         [case[1:] for case in DECISIONS], ids=[case[0] for case in DECISIONS])
def test_converge_decisions(state, super_options, stacked, dirs, persist, remedies, expected):
    live = _live(super_options) if super_options else None
    plan = plan_for(state, live, stacked, dirs, persist, upper_check=lambda: remedies)
    assert [a["action"] for a in plan["actions"]] == expected
    assert plan["changed"] is bool(expected)
    assert plan["relayer"] is (state == "mounted" and "unmount" in expected)


def test_upper_check_runs_only_when_a_mount_is_planned():
    def refuse():
        raise OverlayError("upperdir: unsafe")

    for state in ("present", "unmounted", "absent"):
        plan_for(state, _live(SAME), upper_check=refuse)
    plan_for("mounted", _live(SAME), upper_check=refuse)  # in sync: no mount
    with pytest.raises(OverlayError, match="^upperdir: unsafe"):
        plan_for("mounted", None, upper_check=refuse)


def test_a_backend_that_mounts_itself_is_named_on_the_mount_step():
    plan = plan_for("mounted", None, persist=WRITE, via="systemd")
    assert plan["actions"][-1] == {"action": "mount", "path": "/srv/m", "via": "systemd"}
    assert "via" not in plan_for("mounted", None)["actions"][-1]


def test_a_relayer_names_what_changed():
    plan = plan_for("mounted", _live(RELAYERED))
    assert plan["actions"][0] == {"action": "unmount", "path": "/srv/m", "reason": "change of lowerdir"}


@pytest.mark.parametrize("state", ["mounted", "present", "unmounted", "absent"])
def test_a_container_engines_overlay_is_refused_in_every_state(state):
    line = ("70 22 0:50 / /var/lib/docker/overlay2/3f1e/merged rw - overlay overlay rw,"
            "lowerdir=/var/lib/docker/overlay2/l/AB,upperdir=/var/lib/docker/overlay2/3f1e/diff,"
            "workdir=/var/lib/docker/overlay2/3f1e/work")
    root = "/var/lib/docker/overlay2"
    live = live_state(parse_line(line), DEFAULTS, exists=lambda p: p in (root + "/l/AB", "/var/lib/docker/image/overlay2"))
    assert live["engine"] == "docker"
    decl = dict(DECL, path="/var/lib/docker/overlay2/3f1e/merged")
    with pytest.raises(OverlayError, match="container"):
        plan_for(state, live, decl=decl)


def test_a_foreign_mount_is_left_alone_when_unmounting():
    assert plan_for("unmounted", foreign="tmpfs")["actions"] == []
    assert plan_for("absent", persist=REMOVE, foreign="tmpfs")["actions"] == REMOVE


def test_present_shows_no_mount_diff():
    assert plan_for("present", _live(RELAYERED))["diff"] == {"before": {}, "after": {}}


def _live_flags(mount_options, super_options=SAME, sb="rw"):
    line = "70 22 0:50 / /srv/m %s - overlay overlay %s,%s" % (mount_options, sb, super_options)
    return live_state(parse_line(line), DEFAULTS)


def test_a_change_of_flags_alone_is_a_remount_not_a_relayering():
    plan = plan_for("mounted", _live_flags("rw,nodev,relatime"), decl=dict(DECL, flags=["ro", "nosuid"]))
    assert plan["relayer"] is False
    assert plan["actions"] == [{"action": "remount_flags", "path": "/srv/m",
                                "reason": "change of flags.ro, flags.suid, flags.dev"}]
    assert (plan["diff"]["before"]["flags"], plan["diff"]["after"]["flags"]) == (["nodev"], ["ro", "nosuid"])


def test_a_read_only_superblock_is_made_writable_by_the_remount():
    plan = plan_for("mounted", _live_flags("ro,relatime", sb="ro"))
    assert plan["actions"] == [{"action": "remount_flags", "path": "/srv/m", "reason": "change of flags.ro, superblock",
                                "superblock": "rw"}]
    assert (plan["diff"]["before"]["superblock"], plan["diff"]["after"]["superblock"]) == ("ro", "rw")


def test_flags_that_change_with_the_layers_come_with_the_new_mount():
    plan = plan_for("mounted", _live_flags("rw,relatime", "lowerdir=/srv/l2:/srv/l1,upperdir=/srv/u,workdir=/srv/w"),
                    decl=dict(DECL, flags=["nosuid"]))
    assert [a["action"] for a in plan["actions"]] == ["unmount", "mount"]
    assert plan["actions"][0]["reason"] == "change of lowerdir, flags.suid"


# Another mount on top of the declared overlay, or a later mount over one of its dirs.

COVER = {"type": "tmpfs", "source": "scratch", "mount_id": 41, "path": "/srv/m"}


def _covered(super_options=SAME, foreign="tmpfs", cover=None):
    live = _live(super_options)
    live.covered = dict(cover or COVER)
    return Observed(live, 1, foreign, live.covered)


@pytest.mark.parametrize("foreign", ["tmpfs", None, "fuse.fuse-overlayfs"])
def test_a_covered_overlay_is_left_alone_with_a_warning(foreign):
    plan = make_plan(Declaration(**dict(DECL, state="mounted")), _covered(foreign=foreign), DEFAULTS,
                     persist=[{"action": "write_fake", "path": "/etc/fstab"}])
    assert [a["action"] for a in plan["actions"]] == ["write_fake"]  # persisting goes on; no unmount, no mount
    assert plan["relayer"] is False and [d["field"] for d in plan["differences"]] == ["covered"]
    assert len(plan["warnings"]) == 1 and "tmpfs mount (source 'scratch', mount id 41)" in plan["warnings"][0]
    plan = make_plan(Declaration(**dict(DECL, state="mounted")), _covered(foreign=foreign), DEFAULTS)
    assert plan["changed"] is False and plan["actions"] == []


def test_a_covered_overlay_whose_layers_changed_is_not_relayered():
    plan = make_plan(Declaration(**dict(DECL, state="mounted")), _covered(RELAYERED), DEFAULTS)
    assert plan["actions"] == [] and [d["field"] for d in plan["differences"]] == ["covered", "lowerdir"]


@pytest.mark.parametrize("state", ["unmounted", "absent"])
def test_taking_down_a_covered_overlay_is_refused_naming_the_cover(state):
    with pytest.raises(OverlayError, match="mount id 41") as error:
        make_plan(Declaration(**dict(DECL, state=state)), _covered(), DEFAULTS)
    assert error.value.details == {"covered": COVER} and "state: %s" % state in error.value.message


def test_present_leaves_a_covered_overlay_alone():
    assert make_plan(Declaration(**dict(DECL, state="present")), _covered(), DEFAULTS)["actions"] == []


def test_a_shadowed_dir_relayers():
    live = _live(SAME)
    mount = {"type": "overlay", "source": "overlay", "mount_id": 45, "path": "/srv"}
    live.shadowed = [{"field": "lowerdir[0]", "path": "/srv/l1", "mount": mount, "reason": "..."}]
    plan = plan_for("mounted", live)
    assert [a["action"] for a in plan["actions"]] == ["unmount", "mount"] and plan["relayer"] is True
    assert plan["actions"][0]["reason"] == "change of shadowed"
