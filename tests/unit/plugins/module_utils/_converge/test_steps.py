# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``steps``: act, verify and roll back, on a fake host (fakes in conftest.py).

The plan under test re-layers the overlay at ``/srv/m`` onto new, missing
upper and work dirs on a host where systemd runs, so that it has every kind
of step and every kind of undo::

    create_dir /srv/upper, create_dir /srv/work, write_fake, daemon_reload, unmount, mount

Each step fails in turn; the journal shows which undos ran, in which order:
persistence first (with a daemon-reload), then the old overlay put back,
then the created dirs removed (last created first).
"""

import pytest

from ansible_collections.overlayfs.mounts.plugins.module_utils._converge import steps
from ansible_collections.overlayfs.mounts.plugins.module_utils._converge.session import TaskSession
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError
from ansible_collections.overlayfs.mounts.plugins.module_utils._persist import registry

P = "/srv/m"
OLD = {"lowerdir": ["/srv/old"], "upperdir": "/srv/old-upper", "workdir": "/srv/old-work"}

DIRS = ["make_dirs /srv/upper", "make_dirs /srv/work"]
PERSIST = ["write_fake " + P, "systemctl daemon-reload"]
UNDO_PERSIST = ["undo write_fake " + P, "systemctl daemon-reload"]
UNDO_DIRS = ["remove_empty_dirs /srv/work", "remove_empty_dirs /srv/upper"]
RESTORED = "fstab and unit files were restored"
PUT_BACK = "the previous overlay was mounted again"


@pytest.fixture
def relayer(host, backend, overlay_params):
    """The re-layering described in the module docstring, staged; returns its params."""
    host.booted = True
    for directory in (P, "/srv/lower", "/srv/old", "/srv/old-upper", "/srv/old-work"):
        host.add_dir(directory)
    host.mount_overlay(P, **OLD)
    return overlay_params(P, ["/srv/lower"], "/srv/upper", "/srv/work")


def fail_write(host, backend):
    backend.failing["write_fake"] = 1


# what fails, the journal of changes, the parts of the error message (in order)
FAILURES = [
    ("create_dir", lambda host, backend: host.fail("make_dirs", "/srv/work"),
     ["make_dirs /srv/upper", "make_dirs /srv/work FAILED", "remove_empty_dirs /srv/upper"],
     ["step create_dir failed: make_dirs /srv/work failed (fake)"]),
    ("write_fake", fail_write,
     DIRS + ["write_fake %s FAILED" % P] + UNDO_DIRS,
     ["step write_fake failed: writing /etc/fstab failed (fake)"]),
    ("daemon_reload", lambda host, backend: host.fail("systemctl", "daemon-reload"),
     DIRS + ["write_fake " + P, "systemctl daemon-reload FAILED"] + UNDO_PERSIST + UNDO_DIRS,
     ["step daemon_reload failed: systemctl daemon-reload failed (fake)", RESTORED]),
    ("unmount", lambda host, backend: host.fail("unmount", P),
     DIRS + PERSIST + ["unmount %s FAILED" % P] + UNDO_PERSIST + UNDO_DIRS,
     ["step unmount failed: unmount /srv/m failed (fake)", RESTORED]),
    ("mount", lambda host, backend: host.fail("mount", P),
     DIRS + PERSIST + ["unmount " + P, "mount %s FAILED" % P] + UNDO_PERSIST + ["mount " + P] + UNDO_DIRS,
     ["mount /srv/m failed (fake)", RESTORED, PUT_BACK]),
    ("verify", lambda host, backend: host.mount_instead(P, lowerdir=["/srv/other"]),
     DIRS + PERSIST + ["unmount " + P, "mount " + P, "umount2 " + P] + UNDO_PERSIST + ["mount " + P] + UNDO_DIRS,
     ["the kernel mounted something other than what was declared at /srv/m (lowerdir: declared "
      "['/srv/lower'], mounted ['/srv/other']); it was unmounted again", RESTORED, PUT_BACK]),
]


@pytest.mark.parametrize("failing, make_fail, journal, message", FAILURES, ids=[row[0] for row in FAILURES])
def test_failing_step_undoes_persist_then_mount_then_dirs(host, backend, run_task, relayer, failing, make_fail,
                                                          journal, message):
    make_fail(host, backend)
    with pytest.raises(OverlayError) as error:
        run_task(relayer)
    assert host.changes() == journal
    assert error.value.message == "; ".join(message)


@pytest.mark.parametrize("failing, make_fail, journal, message", FAILURES, ids=[row[0] for row in FAILURES])
def test_failing_step_leaves_the_host_as_it_was(host, backend, run_task, relayer, failing, make_fail, journal,
                                                message):
    make_fail(host, backend)
    with pytest.raises(OverlayError):
        run_task(relayer)
    assert host.live(P) == OLD and len(host.stack(P)) == 1
    assert host.path_kind("/srv/upper") == host.path_kind("/srv/work") == "missing"
    assert backend.store == {}


def test_rollback_reloads_systemd_only_where_it_runs(host, backend, run_task, relayer):
    host.booted = False
    host.fail("mount", P)
    with pytest.raises(OverlayError, match="; %s; %s$" % (RESTORED, PUT_BACK)):
        run_task(relayer)
    assert host.count("systemctl") == 0


def test_new_mount_failing_puts_nothing_back(host, backend, run_task, overlay_params):
    for directory in (P, "/srv/lower"):
        host.add_dir(directory)
    host.fail("mount", P)
    with pytest.raises(OverlayError, match="^mount /srv/m failed \\(fake\\); %s$" % RESTORED):
        run_task(overlay_params(P, ["/srv/lower"], "/srv/upper", "/srv/work"))
    assert host.changes()[-4:] == ["mount %s FAILED" % P, "undo write_fake " + P] + UNDO_DIRS
    assert host.stack(P) == []


def test_previous_overlay_failing_to_come_back_is_said(host, backend, run_task, relayer):
    host.fail("mount", P, times=2)
    with pytest.raises(OverlayError) as error:
        run_task(relayer)
    assert error.value.message.endswith("; putting back the previous overlay also failed: mount /srv/m failed (fake)")
    assert host.stack(P) == []


def test_wrong_mount_that_cannot_be_unmounted_says_so(host, backend, run_task, relayer):
    host.mount_instead(P, lowerdir=["/srv/other"])
    host.fail("umount2", P)
    with pytest.raises(OverlayError, match="unmounting it again failed \\(umount2 /srv/m failed \\(fake\\)\\): "
                                           "unmount it by hand"):
        run_task(relayer)


def test_failing_persistence_undo_is_said_and_skips_the_reload(host, backend, run_task, relayer):
    host.fail("unmount", P)
    backend.failing["undo write_fake"] = 1
    with pytest.raises(OverlayError) as error:
        run_task(relayer)
    assert error.value.message == ("step unmount failed: unmount /srv/m failed (fake); undoing a persistence step "
                                   "failed: restoring /etc/fstab failed (fake)")
    assert host.changes()[-3:] == ["undo write_fake %s FAILED" % P] + UNDO_DIRS


def test_unmounting_for_absent_is_not_undone(host, backend, run_task, overlay_params):
    params = overlay_params(P, state="absent")
    host.mount_overlay(P, **OLD)
    backend.persist_now(params)
    backend.failing["write_fake"] = 1
    with pytest.raises(OverlayError, match="^step write_fake failed: writing /etc/fstab failed \\(fake\\)$"):
        run_task(params)
    assert host.changes() == ["unmount " + P, "write_fake %s FAILED" % P] and host.stack(P) == []


def test_own_volatile_marker_is_cleared_after_unmounting(host, run_task, overlay_params):
    host.mount_overlay(P, ["/srv/lower"], "/srv/upper", "/srv/work", options=["volatile"])
    host.add_dir("/srv/work/work/incompat/volatile")
    run_task(overlay_params(P, state="unmounted"))
    assert host.changes() == ["unmount " + P, "clear_volatile_marker /srv/work/work/incompat/volatile"]


def test_verify_refuses_a_mount_that_is_not_there(host, backend, make_module, overlay_params):
    decl = registry.declare(overlay_params(P, ["/srv/a", "/srv/b"]), (backend,))
    with TaskSession(make_module(), host, (backend,)) as session:
        with pytest.raises(OverlayError, match="reported success but mountinfo shows nothing mounted"):
            steps.verify(session, decl)


def test_verify_refuses_a_foreign_mount(host, backend, make_module, overlay_params):
    host.mount_other(P, "ext4")
    decl = registry.declare(overlay_params(P, ["/srv/a", "/srv/b"]), (backend,))
    with TaskSession(make_module(), host, (backend,)) as session:
        with pytest.raises(OverlayError, match="reported success but mountinfo shows a ext4 filesystem"):
            steps.verify(session, decl)
    assert host.stack(P)  # not ours: left mounted


def test_verify_returns_the_live_overlay_and_the_read(host, backend, make_module, overlay_params):
    host.mount_overlay(P, ["/srv/a", "/srv/b"])
    decl = registry.declare(overlay_params(P, ["/srv/a", "/srv/b"]), (backend,))
    with TaskSession(make_module(), host, (backend,)) as session:
        live, entries = steps.verify(session, decl)
    assert live["lowerdir"] == ["/srv/a", "/srv/b"] and [e.mount_point for e in entries] == ["/", P]


# Per-mount flags: changed in place ----------------------------------------

@pytest.fixture
def flagged(host, overlay_params):
    """An overlay mounted with nodev at /srv/m; params that declare it ro and nosuid instead."""
    for directory in (P, "/srv/lower", "/srv/upper", "/srv/work"):
        host.add_dir(directory)
    host.mount_overlay(P, ["/srv/lower"], "/srv/upper", "/srv/work", flags=["nodev"])
    return overlay_params(P, ["/srv/lower"], "/srv/upper", "/srv/work", options=["ro", "nosuid"])


def test_a_flag_change_remounts_in_place_and_a_rerun_changes_nothing(host, backend, run_task, flagged):
    mount_id = host.mounted[0][0]
    result = run_task(flagged)
    assert host.changes() == ["write_fake " + P, "remount_flags %s ro,nosuid" % P]
    assert result["live"]["flags"] == ["ro", "nosuid"] and result["live"]["mount_id"] == mount_id
    assert [d["field"] for d in result["drift"]] == ["flags.ro", "flags.suid", "flags.dev"]
    again = run_task(flagged)
    assert again["changed"] is False and again["actions"] == []


def test_check_mode_predicts_the_remount_and_changes_nothing(host, backend, run_task, flagged):
    result = run_task(flagged, check_mode=True, diff=True)
    assert [a["action"] for a in result["actions"]] == ["write_fake", "remount_flags"]
    assert result["diff"][0]["after"]["flags"] == ["ro", "nosuid"] and result["diff"][0]["before"]["flags"] == ["nodev"]
    assert host.changes() == []


def test_a_failed_remount_puts_the_flags_and_the_files_back(host, backend, run_task, flagged):
    host.fail("remount_flags", P)
    with pytest.raises(OverlayError) as error:
        run_task(flagged)
    assert host.changes() == ["write_fake " + P, "remount_flags %s FAILED" % P, "remount_flags %s nodev" % P,
                              "undo write_fake " + P]
    assert error.value.message.startswith("step remount_flags failed: remount_flags /srv/m failed (fake); the mount's "
                                          "flags were put back (nodev)")
    assert backend.store == {}


def test_the_flags_come_with_a_new_mount_and_a_relayering(host, backend, run_task, overlay_params):
    for directory in (P, "/srv/lower", "/srv/upper", "/srv/work"):
        host.add_dir(directory)
    host.mount_overlay(P, **OLD, flags=["nosuid", "nodev", "noexec"])
    result = run_task(overlay_params(P, ["/srv/lower"], "/srv/upper", "/srv/work", boot_options=["nosuid", "nodev", "noexec"]))
    assert [a["action"] for a in result["actions"]] == ["write_fake", "unmount", "mount"]
    assert result["live"]["flags"] == ["nosuid", "nodev", "noexec"]
    assert run_task.module.warnings == ["%s: boot_options: nosuid, nodev, noexec are per-mount flags, applied to the "
                                        "live mount as well as persisted; move them to options" % P]


# Paths the kernel cannot take, and dirs made half-way ---------------------

DEEP = "/srv/" + "/".join(["d" * 200] * 21)  # 4225 bytes: past PATH_MAX


@pytest.mark.parametrize("field, params", [
    ("path", dict(path=DEEP, lowerdir=["/srv/lower"], upperdir="/srv/upper", workdir="/srv/work")),
    ("upperdir", dict(path=P, lowerdir=["/srv/lower"], upperdir=DEEP + "/up", workdir="/srv/work")),
    ("workdir", dict(path=P, lowerdir=["/srv/lower"], upperdir="/srv/upper", workdir=DEEP + "/wo")),
    ("links_dir", dict(path=P, lowerdir=["/srv/lower"], upperdir="/srv/upper", workdir="/srv/work",
                       links_dir=DEEP[:4080])),
])
def test_a_path_past_path_max_is_refused_before_anything_is_made(host, backend, run_task, overlay_params, field, params):
    host.add_dir("/srv/lower")
    with pytest.raises(OverlayError) as error:
        run_task(overlay_params(params.pop("path"), params.pop("lowerdir"), params.pop("upperdir"),
                                params.pop("workdir"), **params))
    assert error.value.message.startswith("%s: the path " % field)
    assert "Linux takes at most 4095 bytes in a path" in error.value.message
    assert error.value.details["field"] == field and error.value.details["path_bytes"] > 4095
    assert host.changes() == []


def test_made_paths_names_what_the_entry_may_make(host, backend, run_task, overlay_params):
    host.add_dir("/srv/lower")
    seen = []
    real = steps.made_paths

    def spy(entry):
        seen.extend(real(entry))
        return seen
    steps.made_paths, saved = spy, steps.made_paths
    try:
        run_task(overlay_params(P, ["/srv/lower"], "/srv/upper", "/srv/work", links_dir="/run/l"))
    finally:
        steps.made_paths = saved
    fields = [field for field, _path in seen]
    assert fields[:4] == ["path", "lowerdir[0]", "upperdir", "workdir"]
    assert "links_dir" in fields and any(p.startswith("/run/l/srv-m-") for _f, p in seen)


def test_a_dir_creation_failing_half_way_removes_the_dirs_it_made(host, backend, run_task, overlay_params):
    """mkdir fails deep down (a full disk): the parents this step made go again."""
    host.add_dir("/srv/lower")
    real = host.make_dirs

    def make_dirs(path, mode=None, uid=None, gid=None, field="path"):
        if path == "/srv/a/b/c/upper":
            real("/srv/a/b")  # made, then the disk is full
            raise OSError(28, "No space left on device", "/srv/a/b/c")
        return real(path, mode, uid, gid, field)
    host.make_dirs = make_dirs
    with pytest.raises(OverlayError) as error:
        run_task(overlay_params(P, ["/srv/lower"], "/srv/a/b/c/upper", "/srv/work"))
    assert "upperdir: cannot create /srv/a/b/c: No space left on device" in error.value.message
    assert host.path_kind("/srv/a") == host.path_kind("/srv/m") == "missing"
    assert "remove_empty_dirs /srv/a,/srv/a/b" in host.changes()
