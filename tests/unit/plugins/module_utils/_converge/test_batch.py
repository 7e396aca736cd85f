# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``batch.run_batch`` on a fake host: groups verified with one read, writes made once, prune (fakes in conftest.py)."""

import pytest

from ansible_collections.overlayfs.mounts.plugins.module_utils._converge.batch import run_batch
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError


def overlay(n, **more):
    """Entry ``n``: mounted at /srv/m<n> over /srv/l<n>, with /srv/u<n> and /srv/w<n>."""
    return dict({"path": "/srv/m%d" % n, "lowerdir": ["/srv/l%d" % n], "upperdir": "/srv/u%d" % n,
                 "workdir": "/srv/w%d" % n}, **more)


@pytest.fixture
def batch(host, backend, make_module, batch_params):
    """``batch(entries, check_mode=False, accepted=None, **task)``: run overlay_mounts on the fake host; ``(out, failed)``.

    The dirs of every entry exist unless the entry's path starts with /srv/new.
    """
    def run(entries, check_mode=False, accepted=None, **task):
        for entry in entries:
            for directory in [entry["path"], entry.get("upperdir"), entry.get("workdir")] + entry.get("lowerdir", []):
                if directory and not directory.startswith("/srv/new"):
                    host.add_dir(directory)
        module = make_module(check_mode=check_mode, params=batch_params(entries, **task))
        return run_batch(module, host, (backend,), accepted)
    return run


def reads_and_mounts(host):
    return [entry for entry in host.journal if entry.split(" ")[0] in ("read_mountinfo", "mount")]


@pytest.mark.parametrize("batched", [False, True], ids=["each", "batched"])
def test_group_of_mounts_is_verified_with_one_read(host, backend, batch, batched):
    backend.batched = batched
    out, failed = batch([overlay(1), overlay(2), overlay(3)])
    assert reads_and_mounts(host) == ["read_mountinfo", "mount /srv/m1", "mount /srv/m2", "mount /srv/m3",
                                      "read_mountinfo"]
    assert failed == [] and [r["live"]["lowerdir"] for r in out["overlays"]] == [["/srv/l1"], ["/srv/l2"], ["/srv/l3"]]


def test_entry_on_an_unverified_mount_waits_for_the_group(host, batch):
    out, failed = batch([overlay(1), overlay(2, lowerdir=["/srv/m1"])])
    assert reads_and_mounts(host) == ["read_mountinfo", "mount /srv/m1", "read_mountinfo", "mount /srv/m2",
                                      "read_mountinfo"]
    assert failed == [] and out["order"] == ["/srv/m1", "/srv/m2"]


def test_entries_are_carried_out_in_dependency_order(host, batch):
    out, failed = batch([overlay(2, lowerdir=["/srv/m1"]), overlay(1)])
    assert failed == [] and out["order"] == ["/srv/m1", "/srv/m2"]
    assert [r["path"] for r in out["overlays"]] == ["/srv/m2", "/srv/m1"]  # results stay in list order


@pytest.mark.parametrize("batched", [False, True], ids=["each", "batched"])
def test_wrong_mount_fails_only_its_own_entry(host, backend, batch, batched):
    backend.batched = batched
    host.mount_instead("/srv/m2", lowerdir=["/srv/other"])
    out, failed = batch([overlay(1), overlay(2), overlay(3)])
    assert [r["path"] for r in failed] == ["/srv/m2"]
    assert failed[0]["msg"].startswith("the kernel mounted something other than what was declared at /srv/m2")
    assert [r.get("failed", False) for r in out["overlays"]] == [False, True, False]
    assert sorted(path for _where, path in backend.store) == ["/srv/m1", "/srv/m3"]


@pytest.mark.parametrize("batched, rolled_back, said", [
    (False, ["umount2 /srv/m2", "undo write_fake /srv/m2", "remove_empty_dirs /srv/new2/w",
             "remove_empty_dirs /srv/new2,/srv/new2/u"], "; it was unmounted again; fstab and unit files were restored"),
    (True, ["umount2 /srv/m2", "remove_empty_dirs /srv/new2/w", "remove_empty_dirs /srv/new2,/srv/new2/u",
            "write_together /etc/fstab: /srv/m1 /srv/m3"], "; it was unmounted again; /etc/fstab was not changed"),
], ids=["each", "batched"])
def test_wrong_mount_in_a_group_is_rolled_back(host, backend, batch, batched, rolled_back, said):
    backend.batched = batched
    host.mount_instead("/srv/m2", lowerdir=["/srv/other"])
    _out, failed = batch([overlay(1), overlay(2, upperdir="/srv/new2/u", workdir="/srv/new2/w"), overlay(3)])
    changes = host.changes()
    assert changes[changes.index("umount2 /srv/m2"):] == rolled_back
    assert failed[0]["msg"].endswith(said)
    assert host.stack("/srv/m2") == [] and host.path_kind("/srv/new2") == "missing"


def test_batched_writes_are_made_once_per_group(host, backend, batch):
    backend.batched = True
    out, _failed = batch([overlay(1), overlay(2), overlay(3)])
    writes = [entry for entry in host.changes() if entry.startswith(("write", "mount"))]
    assert writes == ["mount /srv/m1", "mount /srv/m2", "mount /srv/m3",
                      "write_together /etc/fstab: /srv/m1 /srv/m2 /srv/m3"]
    assert [r["persisted"]["fake"]["path"] for r in out["overlays"]] == ["/srv/m1", "/srv/m2", "/srv/m3"]
    assert len(backend.store) == 3


def test_batched_writes_are_made_once_per_file(host, backend, batch):
    backend.batched = True
    batch([overlay(1, fstab="/etc/b/fstab"), overlay(2, fstab="/etc/a/fstab"), overlay(3, fstab="/etc/b/fstab")])
    assert [entry for entry in host.journal if entry.startswith("write")] == [
        "write_together /etc/a/fstab: /srv/m2", "write_together /etc/b/fstab: /srv/m1 /srv/m3"]


def test_group_waits_for_a_stacked_entry_then_writes_both_groups(host, backend, batch):
    backend.batched = True
    batch([overlay(1), overlay(2, lowerdir=["/srv/m1"])])
    assert [entry for entry in host.journal if entry.startswith(("write", "mount", "read_mountinfo"))] == [
        "read_mountinfo", "mount /srv/m1", "read_mountinfo", "write_together /etc/fstab: /srv/m1",
        "mount /srv/m2", "read_mountinfo", "write_together /etc/fstab: /srv/m2"]


def test_failing_group_write_fails_all_its_members(host, backend, batch):
    backend.batched = True
    backend.failing["write_together"] = 1
    out, failed = batch([overlay(1), overlay(2)])
    assert [r["msg"] for r in failed] == [
        "step write_fake failed: writing /etc/fstab failed (fake); /srv/%s was unmounted again; "
        "/etc/fstab was not changed" % name for name in ("m1", "m2")]
    assert host.changes()[-2:] == ["umount2 /srv/m1", "umount2 /srv/m2"]
    assert host.stack("/srv/m1") == host.stack("/srv/m2") == [] and backend.store == {}
    assert out["changed"] is False


def test_failing_group_write_names_the_backends_own_step(host, backend, batch):
    backend.batched = True
    backend.failing["write_together"] = 1
    _out, failed = batch([overlay(1)])
    assert failed[0]["msg"].startswith("step write_fake failed:")


def test_batched_backend_leaves_the_reload_to_the_group_write(host, backend, batch):
    host.booted = True
    backend.batched = True
    out, _failed = batch([overlay(1)])
    assert [a["action"] for a in out["overlays"][0]["actions"]] == ["write_fake", "daemon_reload", "mount"]
    assert host.count("systemctl") == 0 and host.count("write_together") == 1


def test_unbatched_backend_reloads_after_each_write(host, backend, batch):
    host.booted = True
    batch([overlay(1), overlay(2)])
    assert host.changes() == ["write_fake /srv/m1", "systemctl daemon-reload", "mount /srv/m1",
                              "write_fake /srv/m2", "systemctl daemon-reload", "mount /srv/m2"]


def test_failing_entry_fails_alone_and_the_batch_goes_on(host, backend, batch):
    host.fail("mount", "/srv/m1")
    out, failed = batch([overlay(1), overlay(2)])
    assert [r["path"] for r in failed] == ["/srv/m1"] and failed[0]["changed"] is False
    assert out["changed"] is True and host.stack("/srv/m2")


@pytest.mark.parametrize("batched", [False, True], ids=["each", "batched"])
def test_check_mode_changes_nothing_and_plans_what_a_real_run_does(host, backend, batch, batched):
    backend.batched = batched
    entries = [overlay(1), overlay(2, lowerdir=["/srv/m1"], upperdir="/srv/new2/u", workdir="/srv/new2/w")]
    planned, failed = batch(entries, check_mode=True)
    assert failed == [] and host.changes() == [] and host.journal[0] == "lock shared"
    done, _failed = batch(entries)
    assert [r["actions"] for r in planned["overlays"]] == [r["actions"] for r in done["overlays"]]


def test_second_batch_changes_nothing(host, backend, batch):
    batch([overlay(1), overlay(2, lowerdir=["/srv/m1"])])
    again, failed = batch([overlay(1), overlay(2, lowerdir=["/srv/m1"])])
    assert failed == [] and again["changed"] is False


def test_check_mode_counts_mount_points_earlier_entries_provide(host, backend, batch):
    entries = [overlay(1, path="/srv/new1/m"), overlay(2, lowerdir=["/srv/new1/m"])]
    planned, failed = batch(entries, check_mode=True)
    assert failed == [] and [a["action"] for a in planned["overlays"][1]["actions"]] == ["write_fake", "mount"]


STACKED_THROUGH_A_LINK = [overlay(1, path="/srv/new/link/m1"), overlay(2, lowerdir=["/srv/new/link/m1"])]


def test_real_run_mounts_on_an_earlier_mount_point_given_through_a_symlink(host, backend, batch):
    host.symlinks["/srv/new/link"] = "/srv/new/real"
    _done, failed = batch(STACKED_THROUGH_A_LINK)
    assert failed == [] and host.live("/srv/m2")["lowerdir"] == ["/srv/new/real/m1"]


def test_check_mode_sees_an_earlier_mount_point_given_through_a_symlink(host, backend, batch):
    host.symlinks["/srv/new/link"] = "/srv/new/real"
    _planned, failed = batch(STACKED_THROUGH_A_LINK, check_mode=True)
    assert failed == []


# Prune ---------------------------------------------------------------------

@pytest.fixture
def gone(host, backend, overlay_params):
    """A managed overlay that left the list: persisted and mounted at /srv/gone."""
    host.mount_overlay("/srv/gone", ["/srv/g1", "/srv/g2"])
    backend.persist_now(overlay_params("/srv/gone", ["/srv/g1", "/srv/g2"]))


def test_prune_runs_after_the_batch_under_the_same_lock(host, backend, batch, gone):
    out, failed = batch([overlay(1)], prune=True)
    assert failed == [] and [(r["path"], r["changed"]) for r in out["pruned"]] == [("/srv/gone", True)]
    assert host.journal[0] == "lock exclusive" and host.journal[-1] == "release exclusive" and len(host.locks) == 1
    kinds = ("read_mountinfo", "mount", "unmount", "write_fake")
    steps = [entry for entry in host.journal if entry.split(" ")[0] in kinds]
    assert steps == ["read_mountinfo", "write_fake /srv/m1", "mount /srv/m1", "read_mountinfo",  # the group
                     "read_mountinfo", "unmount /srv/gone", "write_fake /srv/gone"]  # then prune
    assert out["order"] == ["/srv/m1", "/srv/gone"] and backend.stored("/srv/gone") is None


def test_prune_keeps_what_the_list_declares(host, backend, batch, gone):
    out, _failed = batch([overlay(1), {"path": "/srv/gone", "lowerdir": ["/srv/g1", "/srv/g2"]}], prune=True)
    assert out["pruned"] == [] and host.stack("/srv/gone")


def test_prune_in_check_mode_changes_nothing(host, backend, batch, gone):
    out, _failed = batch([overlay(1)], prune=True, check_mode=True)
    assert [a["action"] for a in out["pruned"][0]["actions"]] == ["unmount", "write_fake"]
    assert host.changes() == [] and host.locks[0].mode == "shared"


def test_prune_finds_what_the_sessions_backends_persist(host, backend, batch, gone):
    out, _failed = batch([overlay(1)], prune=True)
    assert [r["path"] for r in out["pruned"]] == ["/srv/gone"]


# ---- the list as one graph ---------------------------------------------------------------

@pytest.mark.parametrize("check_mode", [True, False], ids=["check", "real"])
@pytest.mark.parametrize("entries, words", [
    ([overlay(1, lowerdir=["/srv/m2/x"]), overlay(2, lowerdir=["/srv/m1/x"])], "cycle"),
    ([overlay(1), overlay(2, path="/srv/m1")], "mounts[0] (/srv/m1) and mounts[1] (/srv/m1) declare the same mount point"),
    ([overlay(1), overlay(2, upperdir="/srv/u1")], "mounts[0] (/srv/m1) upperdir /srv/u1 is mounts[1] (/srv/m2)'s upperdir"),
    ([overlay(1), overlay(2, upperdir="/srv/m1/u", workdir="/srv/m1/w")],
     "mounts[0] (/srv/m1), mounted at /srv/m1, would hide mounts[1] (/srv/m2)'s upperdir /srv/m1/u"),
    ([overlay(3, lowerdir=["/srv/m2/x"]), overlay(2, lowerdir=["/srv/m1/x"]), overlay(1)], "would be stacked 3 overlays deep"),
], ids=["cycle", "twice", "shared upper", "upper on a listed overlay", "three deep"])
def test_a_list_the_graph_rules_out_is_refused_before_anything_changes(host, batch, entries, words, check_mode):
    calls = []
    with pytest.raises(OverlayError) as caught:
        batch(entries, check_mode=check_mode, accepted=lambda: calls.append(1))
    assert words in caught.value.message
    assert host.changes() == []
    assert calls == []  # the caller's step for an accepted list (the boot-time file) never ran


@pytest.mark.parametrize("check_mode", [True, False], ids=["check", "real"])
def test_an_accepted_list_is_announced_once_before_its_first_change(host, batch, check_mode):
    changes_then = []
    out, failed = batch([overlay(1), overlay(2)], check_mode=check_mode, accepted=lambda: changes_then.append(list(host.changes())))
    assert failed == [] and out["changed"]
    assert changes_then == [[]]
    assert (host.changes() == []) is check_mode


def test_a_live_dependent_is_taken_down_first_and_mounted_again_in_a_list(host, batch):
    host.mount_overlay("/srv/m1", ["/srv/l1"], "/srv/u1", "/srv/w1")
    host.mount_overlay("/srv/m2", ["/srv/m1/x"], "/srv/u2", "/srv/w2")
    host.add_dir("/srv/m1/x")
    host.add_dir("/srv/l9")
    out, failed = batch([overlay(2, lowerdir=["/srv/m1/x"]), overlay(1, lowerdir=["/srv/l9"])])
    assert failed == [] and out["order"] == ["/srv/m1", "/srv/m2"]
    actions = [step["action"] for step in out["overlays"][1]["actions"] if "mount" in step["action"]]
    assert actions == ["unmount_dependent", "unmount", "mount"]
    assert [step["action"] for step in out["overlays"][0]["actions"] if "mount" in step["action"]] == ["mount"]


@pytest.mark.parametrize("check_mode", [True, False], ids=["check", "real"])
@pytest.mark.parametrize("change, words", [
    ({"lowerdir": ["/srv/l9"], "upperdir": "/srv/u1", "workdir": "/srv/w1"}, "/srv/m1 cannot be re-layered while"),
    ({"state": "unmounted"}, "/srv/m1 cannot be unmounted (state: unmounted) while"),
], ids=["re-layer", "unmount"])
def test_one_task_never_unmounts_an_overlay_a_live_one_depends_on(host, run_task, overlay_params, change, words, check_mode):
    host.mount_overlay("/srv/m1", ["/srv/l1"], "/srv/u1", "/srv/w1")
    host.mount_overlay("/srv/m2", ["/srv/m1/x"], "/srv/u2", "/srv/w2")
    for directory in ("/srv/m1", "/srv/m1/x", "/srv/l9", "/srv/u1", "/srv/w1"):
        host.add_dir(directory)
    with pytest.raises(OverlayError) as caught:
        run_task(overlay_params("/srv/m1", **change), check_mode=check_mode)
    assert words in caught.value.message
    assert "the overlay mounted at /srv/m2 has lowerdir[0] /srv/m1/x inside it" in caught.value.message
    assert host.changes() == []
