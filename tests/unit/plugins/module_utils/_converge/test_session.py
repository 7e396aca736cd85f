# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``session``: the host lock's life and the cached host reads, on a fake host (fakes in conftest.py)."""

import pytest

from ansible_collections.overlayfs.mounts.plugins.module_utils._converge.entry import converge
from ansible_collections.overlayfs.mounts.plugins.module_utils._converge.session import BatchSession, TaskSession
from ansible_collections.overlayfs.mounts.plugins.module_utils._host.port import Host
from ansible_collections.overlayfs.mounts.plugins.module_utils._persist import registry

READS = {
    "mountinfo": lambda session: session.mountinfo(),
    "defaults": lambda session: session.defaults(),
    "facts": lambda session: session.facts(),
    "realpath": lambda session: session.realpath("/srv/m"),
    "resolve_safely": lambda session: session.resolve_safely("path", "/srv/m"),
}


@pytest.fixture
def session(host, make_module):
    return TaskSession(make_module(), host, ())


@pytest.fixture
def realpaths(host):
    """The paths the session asked the host to resolve (realpath and resolve_safely alike)."""
    asked = []
    resolve = host.realpath
    host.realpath = lambda path: asked.append(path) or resolve(path)
    return asked


def test_fake_host_replaces_every_host_method(host):
    names = [name for name in vars(Host) if not name.startswith("_")]
    assert names and [name for name in names if name not in vars(type(host))] == []


def test_default_backends_are_the_registered_ones(host, make_module):
    assert TaskSession(make_module(), host).backends == registry.BACKENDS


# The host lock -------------------------------------------------------------

def test_no_lock_before_the_first_read(host, session):
    assert host.journal == []
    session.close()
    assert host.journal == []


@pytest.mark.parametrize("read", sorted(READS))
def test_first_read_of_any_kind_takes_the_lock(host, session, read):
    READS[read](session)
    assert host.journal[0] == "lock exclusive" and len(host.locks) == 1


@pytest.mark.parametrize("check_mode, mode", [(False, "exclusive"), (True, "shared")])
def test_lock_held_from_first_read_to_close(host, make_module, check_mode, mode):
    with TaskSession(make_module(check_mode=check_mode), host, ()) as session:
        session.mountinfo()
        session.defaults()
        session.changed()
        session.mountinfo()
    assert host.journal == ["lock " + mode, "read_mountinfo", "read_defaults", "read_mountinfo", "release " + mode]


def test_lock_released_once_when_closed_twice(host, session):
    session.mountinfo()
    session.close()
    session.close()
    assert host.locks[0].released == 1


def test_lock_released_when_the_run_fails(host, session):
    with pytest.raises(RuntimeError):
        with session:
            session.mountinfo()
            raise RuntimeError("a step failed")
    assert host.journal[-1] == "release exclusive"


@pytest.mark.parametrize("check_mode, mode", [(False, "exclusive"), (True, "shared")])
def test_converge_holds_the_lock_around_every_read_and_change(host, backend, run_task, overlay_params, check_mode,
                                                              mode):
    for directory in ("/srv/m", "/srv/a", "/srv/b"):
        host.add_dir(directory)
    run_task(overlay_params("/srv/m", ["/srv/a", "/srv/b"]), check_mode=check_mode)
    assert host.journal[0] == "lock " + mode and host.journal[-1] == "release " + mode
    assert len(host.locks) == 1


def test_single_shares_the_lock_without_releasing_it(host, session):
    session.mountinfo()
    single = session.single()
    single.mountinfo()
    single.close()
    assert host.journal == ["lock exclusive", "read_mountinfo", "read_mountinfo"]
    session.close()
    assert host.journal[-1] == "release exclusive" and host.locks[0].released == 1


def test_single_before_any_read_takes_the_lock_for_both(host, session):
    single = session.single()
    single.close()
    session.close()
    assert host.journal == ["lock exclusive", "release exclusive"]


def test_single_acts_at_once_with_the_same_host_and_backends(host, backend, make_module):
    with BatchSession(make_module(), lambda session: None, host, (backend,)) as batch:
        single = batch.single()
        assert (type(single), single.grouped, single.host, single.backends) == (TaskSession, False, host, (backend,))


def test_batch_settles_before_it_releases_the_lock(host, make_module):
    batch = BatchSession(make_module(), lambda session: host.journal.append("settle"), host, ())
    batch.mountinfo()
    batch.close()
    assert host.journal == ["lock exclusive", "read_mountinfo", "settle", "release exclusive"]


def test_batch_releases_the_lock_when_settling_fails(host, make_module):
    def settle(_session):
        raise RuntimeError("write failed")
    batch = BatchSession(make_module(), settle, host, ())
    batch.mountinfo()
    with pytest.raises(RuntimeError):
        batch.close()
    assert host.journal[-1] == "release exclusive"


# Cached reads --------------------------------------------------------------

def test_mountinfo_read_once_until_the_host_changes(host, session):
    first = session.mountinfo()
    assert session.mountinfo() is first and host.count("read_mountinfo") == 1
    session.changed()
    assert session.mountinfo() is not first and host.count("read_mountinfo") == 2


def test_changed_keeps_a_read_made_after_the_change(host, session):
    session.changed(mountinfo=["after"])
    assert session.mountinfo() == ["after"] and host.count("read_mountinfo") == 0


def test_defaults_and_facts_are_read_once_per_session(host, session):
    host.booted = True
    session.defaults()
    facts = session.facts()
    session.changed()
    session.defaults()
    assert session.facts() is facts and facts.booted and host.count("read_defaults") == 1


def test_mount_and_systemd_versions_are_read_only_when_a_rendering_asks(host, session):
    asked = []
    host.mount_fsconfig = lambda module: asked.append("mount -V") or True
    host.systemd_version = lambda module: asked.append("systemctl --version") or 252
    facts = session.facts()
    assert asked == []  # a run whose overlays need neither starts neither program
    assert (facts.fsconfig, facts.systemd_version, facts.fsconfig, facts.systemd_version) == (True, 252, True, 252)
    assert asked == ["mount -V", "systemctl --version"]


def test_paths_resolved_once_until_the_host_changes(session, realpaths):
    for _time in range(2):
        session.realpath("/srv/m")
        session.resolve_safely("path", "/srv/m")
    assert realpaths == ["/srv/m", "/srv/m"]  # once each: realpath and resolve_safely are kept apart
    session.changed()
    session.realpath("/srv/m")
    assert realpaths == ["/srv/m"] * 3


@pytest.mark.parametrize("where, kept", [
    ("/srv/other", True),  # a change beside the path: its resolution stands
    ("/srv/m/deeper", True),  # below it: the dirs along the path are the same
    ("/srv/m", False),  # at it (a mount there)
    ("/srv", False),  # above it (a dir created, a mount on a parent)
    ("/", False),
])
def test_a_change_drops_the_resolutions_at_or_below_it(session, realpaths, where, kept):
    session.realpath("/srv/m")
    session.resolve_safely("path", "/srv/m")
    session.changed(paths=[where])
    session.realpath("/srv/m")
    session.resolve_safely("path", "/srv/m")
    assert realpaths == ["/srv/m", "/srv/m"] * (1 if kept else 2)


def test_a_resolution_through_a_symlink_is_dropped_at_every_change(host, session, realpaths):
    host.symlinks["/srv/current"] = "/data/rel/v1"
    assert session.realpath("/srv/current/layer") == "/data/rel/v1/layer"
    session.realpath("/srv/plain")
    session.changed(paths=["/elsewhere"])
    session.realpath("/srv/current/layer")
    session.realpath("/srv/plain")
    assert realpaths == ["/srv/current/layer", "/srv/plain", "/srv/current/layer"]


def test_a_resolution_that_raised_is_made_again(host, session):
    calls = []

    def resolve(field, path):
        calls.append(path)
        raise OSError("no such file")
    host.resolve_safely = resolve
    for _time in range(2):
        with pytest.raises(OSError):
            session.resolve_safely("path", "/srv/m")
    assert calls == ["/srv/m", "/srv/m"]


def test_saw_keeps_what_was_seen_for_the_next_read(host, session):
    session.saw(["seen"])
    assert session.mountinfo() == ["seen"] and host.count("read_mountinfo") == 0


def test_saw_nothing_keeps_the_read(host, session):
    first = session.mountinfo()
    session.saw(None)
    assert session.mountinfo() is first


def test_saw_unless_read_keeps_a_read_made_since(host, session):
    first = session.mountinfo()
    session.saw(["older"], unless_read=True)
    assert session.mountinfo() is first


def test_saw_unless_read_fills_in_when_nothing_was_read_since(host, session):
    session.mountinfo()
    session.changed()
    session.saw(["older"], unless_read=True)
    assert session.mountinfo() == ["older"] and host.count("read_mountinfo") == 1


def test_a_task_verifies_at_once_and_joins_no_group(host, session):
    assert session.grouped is False and session.wait_for(["/srv/a"], ["/srv/m"]) is False
    with pytest.raises(NotImplementedError):
        session.join(object(), True)


def test_next_entry_plans_on_the_read_made_after_a_mount(host, backend, make_module, overlay_params):
    for directory in ("/srv/m", "/srv/n", "/srv/a", "/srv/b"):
        host.add_dir(directory)
    with TaskSession(make_module(), host, (backend,)) as session:
        converge(session, overlay_params("/srv/m", ["/srv/a", "/srv/b"]))
        converge(session, overlay_params("/srv/n", ["/srv/a", "/srv/b"]))
    reads = [entry for entry in host.journal if entry.startswith(("read_mountinfo", "mount"))]
    assert reads == ["read_mountinfo", "mount /srv/m", "read_mountinfo", "mount /srv/n", "read_mountinfo"]


def test_stale_temps_are_cleaned_once_per_file_and_run(host, session):
    for path in ("/etc/fstab", "/etc/fstab", None, "/etc/systemd/system/srv-m.mount"):
        session.clean_stale(path)
    assert [e for e in host.journal if e.startswith("clean_stale_temps")] == [
        "clean_stale_temps /etc/fstab", "clean_stale_temps /etc/systemd/system/srv-m.mount"]
