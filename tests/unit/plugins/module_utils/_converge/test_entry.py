# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``entry.converge`` on a fake host: what each declared state does with what it finds.

The fakes (``FakeHost``, ``FakeBackend``) and the fixtures are in this
directory's conftest.py.
"""

import pytest

from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError

# The mount point has an engine's layout (``<root>/<id>/merged``, root named
# overlay2), so that one path serves every row, the engine's overlay included
# (with Docker's own mark beside the storage root). Where the collection
# persisted its own overlay at that path (a managed line), the overlay there
# is not taken for the engine's: it is re-layered or unmounted as any other.
P = "/srv/overlay2/web/merged"
LOWER, UPPER, WORK = "/srv/lower", "/srv/upper", "/srv/work"

FOREIGN = "is already a mount point of a tmpfs filesystem, not an overlay"
ENGINE = "is the root filesystem of a container, mounted by Docker"


def stage(host, backend, live, stored, params):
    """The host as a row of the table finds it."""
    for directory in (P, LOWER, UPPER, WORK, "/srv/old"):
        host.add_dir(directory)
    if live == "same":
        host.mount_overlay(P, [LOWER], UPPER, WORK)
    elif live == "layers":
        host.mount_overlay(P, ["/srv/old"], UPPER, WORK)
    elif live == "foreign":
        host.mount_other(P, "tmpfs")
    elif live == "engine":
        host.add_dir("/srv/image/overlay2")
        host.mount_overlay(P, ["/srv/overlay2/l/ABC"], "/srv/overlay2/web/diff", "/srv/overlay2/web/work")
    if stored:
        backend.persist_now(params)


def names(result):
    return [action["action"] for action in result["actions"]]


# state, what is mounted at P, whether the declared overlay is persisted: the actions, or the refusal.
TABLE = [
    ("mounted", "none", True, ["mount"]),
    ("mounted", "none", False, ["write_fake", "mount"]),
    ("mounted", "same", True, []),
    ("mounted", "same", False, ["write_fake"]),
    ("mounted", "layers", True, ["unmount", "mount"]),
    ("mounted", "layers", False, ["write_fake", "unmount", "mount"]),
    ("mounted", "foreign", True, FOREIGN),
    ("mounted", "foreign", False, FOREIGN),
    ("mounted", "engine", True, ["unmount", "mount"]),
    ("mounted", "engine", False, ENGINE),
    ("present", "none", True, []),
    ("present", "none", False, ["write_fake"]),
    ("present", "same", True, []),
    ("present", "same", False, ["write_fake"]),
    ("present", "layers", True, []),
    ("present", "layers", False, ["write_fake"]),
    ("present", "foreign", True, []),
    ("present", "foreign", False, ["write_fake"]),
    ("present", "engine", True, []),
    ("present", "engine", False, ENGINE),
    ("unmounted", "none", True, []),
    ("unmounted", "none", False, []),
    ("unmounted", "same", True, ["unmount"]),
    ("unmounted", "same", False, ["unmount"]),
    ("unmounted", "layers", True, ["unmount"]),
    ("unmounted", "layers", False, ["unmount"]),
    ("unmounted", "foreign", True, []),
    ("unmounted", "foreign", False, []),
    ("unmounted", "engine", True, ["unmount"]),
    ("unmounted", "engine", False, ENGINE),
    ("absent", "none", True, ["write_fake"]),
    ("absent", "none", False, []),
    ("absent", "same", True, ["unmount", "write_fake"]),
    ("absent", "same", False, ["unmount"]),
    ("absent", "layers", True, ["unmount", "write_fake"]),
    ("absent", "layers", False, ["unmount"]),
    ("absent", "foreign", True, ["write_fake"]),
    ("absent", "foreign", False, []),
    ("absent", "engine", True, ["unmount", "write_fake"]),
    ("absent", "engine", False, ENGINE),
]
ACTING = [row for row in TABLE if isinstance(row[3], list)]
REFUSED = [row for row in TABLE if isinstance(row[3], str)]
IDS = ["%s-%s-%s" % (state, live, "stored" if stored else "unstored") for state, live, stored, _outcome in TABLE]


def _ids(rows):
    return [IDS[TABLE.index(row)] for row in rows]


@pytest.fixture
def table_params(overlay_params):
    return lambda state: overlay_params(P, [LOWER], UPPER, WORK, state=state)


@pytest.mark.parametrize("state, live, stored, actions", ACTING, ids=_ids(ACTING))
def test_check_mode_plans_without_changing_anything(host, backend, run_task, table_params, state, live, stored, actions):
    params = table_params(state)
    stage(host, backend, live, stored, params)
    store = dict(backend.store)
    result = run_task(params, check_mode=True)
    assert (names(result), result["changed"]) == (actions, bool(actions))
    assert host.changes() == [] and backend.store == store


@pytest.mark.parametrize("state, live, stored, actions", ACTING, ids=_ids(ACTING))
def test_real_run_carries_out_what_check_mode_planned(host, backend, run_task, table_params, state, live, stored, actions):
    params = table_params(state)
    stage(host, backend, live, stored, params)
    planned = run_task(params, check_mode=True)["actions"]
    result = run_task(params)
    assert result["actions"] == planned and result["changed"] == bool(actions)
    assert host.changes() == ["%s %s" % (action, P) for action in actions]


@pytest.mark.parametrize("state, live, stored, actions", ACTING, ids=_ids(ACTING))
def test_second_run_changes_nothing(host, backend, run_task, table_params, state, live, stored, actions):
    params = table_params(state)
    stage(host, backend, live, stored, params)
    run_task(params)
    done = len(host.changes())
    again = run_task(params)
    assert (again["changed"], again["actions"]) == (False, [])
    assert len(host.changes()) == done


@pytest.mark.parametrize("check_mode", [True, False], ids=["check", "real"])
@pytest.mark.parametrize("state, live, stored, refusal", REFUSED, ids=_ids(REFUSED))
def test_refusals_change_nothing(host, backend, run_task, table_params, state, live, stored, refusal, check_mode):
    params = table_params(state)
    stage(host, backend, live, stored, params)
    store = dict(backend.store)
    with pytest.raises(OverlayError, match=refusal):
        run_task(params, check_mode=check_mode)
    assert host.changes() == [] and backend.store == store


def test_engine_refusal_names_the_engine(host, backend, run_task, table_params):
    stage(host, backend, "engine", False, table_params("unmounted"))
    with pytest.raises(OverlayError) as error:
        run_task(table_params("unmounted"))
    assert error.value.details == {"engine": "docker"}


@pytest.mark.parametrize("state", ["unmounted", "absent"])
def test_foreign_mount_is_left_alone_with_a_warning(host, backend, run_task, table_params, state):
    stage(host, backend, "foreign", False, table_params(state))
    run_task(table_params(state))
    assert run_task.module.warnings == ["%s is a mount point of tmpfs, not an overlay: left alone" % P]
    assert host.stack(P) and host.changes() == []


# Beyond the table ----------------------------------------------------------

@pytest.mark.parametrize("state, live, stored, actions, done", [
    ("mounted", "none", False, ["write_fake", "daemon_reload", "mount"],
     ["write_fake " + P, "systemctl daemon-reload", "mount " + P]),
    ("absent", "same", True, ["unmount", "write_fake", "daemon_reload"],
     ["unmount " + P, "write_fake " + P, "systemctl daemon-reload"]),
    ("mounted", "layers", True, ["unmount", "mount"], ["unmount " + P, "mount " + P]),
])
def test_booted_host_reloads_systemd_after_persisting(host, backend, run_task, table_params, state, live, stored,
                                                      actions, done):
    host.booted = True
    stage(host, backend, live, stored, table_params(state))
    assert names(run_task(table_params(state))) == actions
    assert host.changes() == done


def test_missing_dirs_are_created_before_persisting_and_mounting(host, run_task, overlay_params):
    host.add_dir(LOWER)
    result = run_task(overlay_params("/srv/new/m", [LOWER], "/srv/new/upper", "/srv/new/work"))
    assert [(a["action"], a["path"]) for a in result["actions"]][:3] == [
        ("create_dir", "/srv/new/m"), ("create_dir", "/srv/new/upper"), ("create_dir", "/srv/new/work")]
    assert host.changes() == ["make_dirs /srv/new/m", "make_dirs /srv/new/upper", "make_dirs /srv/new/work",
                              "write_fake /srv/new/m", "mount /srv/new/m"]


def test_missing_lower_layer_is_refused_before_anything_is_done(host, run_task, overlay_params):
    host.add_dir(P)
    with pytest.raises(OverlayError, match="lowerdir\\[0\\]: '/srv/lower' does not exist"):
        run_task(overlay_params(P, [LOWER], UPPER, WORK))
    assert host.changes() == []


def test_every_stacked_overlay_is_unmounted(host, run_task, overlay_params):
    host.mount_overlay(P, ["/srv/a", "/srv/b"])
    host.mount_overlay(P, ["/srv/c", "/srv/d"])
    result = run_task(overlay_params(P, state="unmounted"))
    assert names(result) == ["unmount", "unmount"] and host.stack(P) == []


def test_real_run_reports_what_it_mounted_and_persisted(host, backend, run_task, table_params):
    stage(host, backend, "none", False, table_params("mounted"))
    result = run_task(table_params("mounted"))
    assert result["live"]["lowerdir"] == [LOWER] and result["mount_method"] == "fsconfig"
    assert result["persisted"] == {"fake": backend.stored(P)}
    assert host.live(P) == {"lowerdir": [LOWER], "upperdir": UPPER, "workdir": WORK}


def test_unmounting_reports_nothing_live(host, backend, run_task, table_params):
    stage(host, backend, "same", True, table_params("unmounted"))
    result = run_task(table_params("unmounted"))
    assert result["live"] is None and host.stack(P) == []


def test_persist_none_leaves_persistence_alone(host, backend, run_task, overlay_params):
    stage(host, backend, "none", False, None)
    result = run_task(overlay_params(P, [LOWER], UPPER, WORK, persist="none"))
    assert names(result) == ["mount"] and backend.store == {}


def test_diff_shows_the_live_and_the_declared_layers(host, backend, run_task, table_params):
    stage(host, backend, "layers", True, table_params("mounted"))
    diff = run_task(table_params("mounted"), check_mode=True, diff=True)["diff"][0]
    assert (diff["before"]["lowerdir"], diff["after"]["lowerdir"]) == (["/srv/old"], [LOWER])


def test_busy_relayering_is_refused_in_a_real_run(host, backend, run_task, table_params):
    stage(host, backend, "layers", True, table_params("mounted"))
    host.holders[P] = [{"pid": 42, "command": "sleep", "uses": ["cwd"]}]
    with pytest.raises(OverlayError, match="it is in use: processes pid 42") as error:
        run_task(table_params("mounted"))
    assert error.value.details["holders"] == host.holders[P]
    assert host.changes() == []


def test_busy_relayering_is_refused_in_check_mode_as_in_a_real_run(host, backend, run_task, table_params):
    stage(host, backend, "layers", True, table_params("mounted"))
    host.holders[P] = [{"pid": 42, "command": "sleep", "uses": ["cwd"]}]
    with pytest.raises(OverlayError, match="it is in use: processes pid 42"):
        run_task(table_params("mounted"), check_mode=True)
    assert host.changes() == []


CONTAINER = {"pid": 7, "command": "sleep", "owner": "podman container 0123456789ab",
             "namespace": "mnt:[4026532175]", "mount_point": "/"}


@pytest.mark.parametrize("check_mode", [True, False])
@pytest.mark.parametrize("state", ["unmounted", "absent"])
def test_an_unmount_is_refused_while_a_process_in_another_namespace_uses_it(host, backend, run_task, table_params,
                                                                            state, check_mode):
    stage(host, backend, "same", True, table_params("mounted"))
    host.elsewhere[P] = [CONTAINER]
    host.holders[P] = [{"pid": 7, "command": "sleep", "uses": ["root /"], "owner": CONTAINER["owner"],
                        "namespace": CONTAINER["namespace"]}]
    with pytest.raises(OverlayError, match=r"state: %s needs %s unmounted, but it is in use: processes pid 7 "
                       r"\(sleep, podman container 0123456789ab: root /\) in the mount namespace "
                       r"mnt:\[4026532175\]. Nothing was changed" % (state, P)) as error:
        run_task(table_params(state), check_mode=check_mode)
    assert error.value.details["elsewhere"] == [CONTAINER]
    assert host.changes() == [] and backend.store


@pytest.mark.parametrize("check_mode", [True, False])
def test_an_idle_copy_in_another_namespace_lets_an_unmount_go_with_a_warning(host, backend, run_task, table_params,
                                                                             check_mode):
    stage(host, backend, "same", True, table_params("mounted"))
    host.elsewhere[P] = [dict(CONTAINER, command="systemd-logind", owner="unit systemd-logind.service")]
    result = run_task(table_params("unmounted"), check_mode=check_mode)
    assert names(result) == ["unmount"]
    assert any("stays alive in other mount namespaces: its mount at / in the mount namespace mnt:[4026532175] "
               "of pid 7 (systemd-logind, unit systemd-logind.service)" in w for w in run_task.module.warnings)


def test_a_relayering_is_refused_while_another_namespace_keeps_a_copy(host, backend, run_task, table_params):
    stage(host, backend, "layers", True, table_params("mounted"))
    host.elsewhere[P] = [CONTAINER]
    with pytest.raises(OverlayError, match="must be unmounted and mounted again to apply lowerdir.*its mount at /"):
        run_task(table_params("mounted"))
    assert host.changes() == []


def test_a_mount_is_refused_while_another_namespace_has_an_overlay_on_the_upper(host, backend, run_task,
                                                                                table_params):
    stage(host, backend, "none", False, None)
    host.shared[P] = [dict(CONTAINER, dir=UPPER)]
    with pytest.raises(OverlayError, match="cannot be mounted: another overlay is live on its upper or work dir: "
                       "the overlay at / in the mount namespace .* which uses the same %s" % UPPER):
        run_task(table_params("mounted"), check_mode=True)
    assert host.changes() == []


def test_no_holder_scan_when_nothing_is_unmounted_or_mounted(host, backend, run_task, table_params):
    stage(host, backend, "same", True, table_params("mounted"))
    assert run_task(table_params("mounted"))["changed"] is False
    assert not any(line.startswith("scan_holders") for line in host.journal)


def test_invalid_declaration_fails_before_the_host_is_read(host, run_task, overlay_params):
    with pytest.raises(OverlayError, match="^path: 'srv/m' is a relative path"):
        run_task(overlay_params("srv/m", [LOWER], UPPER, WORK))
    assert host.journal == []


def test_paths_are_planned_as_the_kernel_resolves_them(host, backend, run_task, overlay_params):
    host.symlinks["/data"] = "/srv"
    stage(host, backend, "none", False, None)
    result = run_task(overlay_params("/data/overlay2/web/merged", ["/data/lower"], "/data/upper", "/data/work"))
    assert result["mount"]["path"] == P and result["mount"]["lowerdir"] == [LOWER]
    assert host.changes() == ["write_fake " + P, "mount " + P]


def test_stale_volatile_marker_is_cleared_before_mounting_when_asked(host, backend, run_task, table_params):
    stage(host, backend, "none", True, table_params("mounted"))
    host.upper = dict(host.upper, volatile_marker=WORK + "/work/incompat/volatile")
    params = dict(table_params("mounted"), clear_volatile=True)
    assert names(run_task(params)) == ["clear_volatile", "mount"]
    assert host.changes() == ["clear_volatile_marker %s/work/incompat/volatile" % WORK, "mount " + P]


def test_stale_volatile_marker_is_refused_unless_asked(host, backend, run_task, table_params):
    stage(host, backend, "none", True, table_params("mounted"))
    host.upper = dict(host.upper, volatile_marker=WORK + "/work/incompat/volatile")
    with pytest.raises(OverlayError, match="set clear_volatile: true"):
        run_task(table_params("mounted"))
    assert host.changes() == []


def test_task_writes_a_batched_backend_at_once(host, backend, run_task, table_params):
    backend.batched = True  # its writes wait for a group only in a batch
    stage(host, backend, "none", False, table_params("mounted"))
    run_task(table_params("mounted"))
    assert host.changes() == ["write_fake " + P, "mount " + P]


def test_a_flag_only_change_remounts_without_a_holder_scan(host, backend, run_task, table_params):
    """Nothing is unmounted for new flags: no holder can stop it, so nobody is looked for (a busy mount included)."""
    stage(host, backend, "same", True, table_params("mounted"))
    host.holders[P] = [{"pid": 42, "command": "sleep", "uses": ["cwd"]}]
    host.elsewhere[P] = [CONTAINER]
    result = run_task(dict(table_params("mounted"), options=["nosuid"]))
    assert "remount_flags" in names(result) and "unmount" not in names(result)
    assert not any(line.startswith("scan_holders") for line in host.journal)
