# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Holders in every mount namespace (_host.namespaces): cgroup owners, propagation, shared dirs, the scan.

The scan runs over a /proc made of plain files and symlinks in a temp dir:
its ``cwd``, ``root`` and ``exe`` links lead to real dirs, whose real mount
IDs the scan reads back, so no root and no second namespace is needed.
"""

import os

import pytest

from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.mountinfo import parse_line
from ansible_collections.overlayfs.mounts.plugins.module_utils._host import namespaces
from ansible_collections.overlayfs.mounts.plugins.module_utils._host.namespaces import (
    HostView,
    Namespace,
    cgroup_owner,
    describe,
    reached,
    scan_holders,
    shares_dirs,
)

PODMAN_ID = "69802ccab6051e0e377c099a22122a2d8c496dcc2cd1c212dd52629efd0a3a4d"


@pytest.mark.parametrize("text, owner", [
    ("0::/libpod_parent/libpod-%s\n" % PODMAN_ID, "podman container 69802ccab605"),
    ("9:name=systemd:/libpod_parent/libpod-%s\n1:cpu:/x\n0::/\n" % PODMAN_ID, "podman container 69802ccab605"),
    ("0::/machine.slice/libpod-%s.scope/container\n" % PODMAN_ID, "podman container 69802ccab605"),
    ("0::/system.slice/docker-%s.scope\n" % PODMAN_ID, "docker container 69802ccab605"),
    ("12:pids:/docker/%s\n" % PODMAN_ID, "docker container 69802ccab605"),
    ("0::/lxc.payload.web/init.scope\n", "lxc container web"),
    ("0::/machine.slice/machine-build\\x2dbox.scope/payload\n", "machine build-box"),
    ("0::/system.slice/app.service\n", "unit app.service"),
    ("0::/system.slice/docker-%s.scope/app.service\n" % PODMAN_ID, "unit app.service in docker container 69802ccab605"),
    ("0::/libpod_parent/libpod-%s/system.slice/ofm-holder.service\n" % PODMAN_ID,
     "unit ofm-holder.service in podman container 69802ccab605"),
    ("0::/user.slice/user-0.slice/session-3.scope\n", None),
    ("0::/\n", None),
    ("", None),
])
def test_cgroup_owner_names_the_unit_and_the_container_it_runs_in(text, owner):
    assert cgroup_owner(text) == owner


def _line(mount_id, parent, device, point, optional="", fstype="overlay", opts="lowerdir=/l1:/l2,upperdir=/u,workdir=/w"):
    fields = "%d %d %s / %s rw %s- %s overlay rw,%s" % (mount_id, parent, device, point,
                                                        optional + " " if optional else "", fstype, opts)
    return parse_line(fields)


HOST = [_line(1, 0, "254:0", "/", "shared:1", fstype="ext4", opts="errors=remount-ro"),
        _line(50, 1, "0:40", "/srv/m", "shared:9")]


@pytest.mark.parametrize("parent_optional, copy_reached", [
    ("master:1", True),    # a PrivateTmp service: slave of the host's root
    ("shared:1", True),    # a peer of it
    ("shared:4 master:1", True),
    ("", False),           # a private copy (podman --rootfs): our unmount never reaches it
    ("master:7", False),
])
def test_reached_follows_the_parents_propagation(parent_optional, copy_reached):
    theirs = [_line(200, 199, "254:0", "/", parent_optional, fstype="ext4", opts="x"),
              _line(201, 200, "0:40", "/srv/m", "master:9")]
    assert reached(theirs[1], theirs, HOST[1], HOST) is copy_reached


def test_shares_dirs_keys_reachable_dirs_by_identity_and_the_others_by_path():
    entry = _line(300, 1, "0:41", "/c", opts="lowerdir=/x,upperdir=/srv/u,workdir=/srv//w")
    assert shares_dirs(entry, lambda path: (1, 10) if path == "/srv/u" else None) == [
        ((1, 10), "/srv/u"), ("/srv/w", "/srv//w")]


def test_describe_names_processes_copies_and_shared_overlays():
    found = {
        "processes": [{"pid": 5, "command": "sleep", "uses": ["cwd /srv/m"]},
                      {"pid": 7, "command": "sh", "owner": "unit app.service", "uses": ["cwd /srv/m/x"],
                       "namespace": "mnt:[2]"}],
        "elsewhere": [{"pid": 9, "command": "sleep", "owner": "podman container abc", "namespace": "mnt:[3]",
                       "mount_point": "/"}],
        "shared": [{"pid": 11, "command": "init", "namespace": "mnt:[4]", "mount_point": "/c", "dir": "/srv/u"}],
    }
    assert describe(found) == (
        "processes pid 5 (sleep: cwd /srv/m), pid 7 (sh, unit app.service: cwd /srv/m/x) in the mount namespace "
        "mnt:[2]; its mount at / in the mount namespace mnt:[3] of pid 9 (sleep, podman container abc), which an "
        "unmount here does not reach; the overlay at /c in the mount namespace mnt:[4] of pid 11 (init), which "
        "uses the same /srv/u")
    assert describe({"processes": [], "elsewhere": [], "shared": []}) == ""


def _real_mount_id(path):
    fd = os.open(path, os.O_PATH)
    try:
        with open("/proc/self/fdinfo/%d" % fd) as handle:
            return next(int(line.split()[1]) for line in handle if line.startswith("mnt_id:"))
    finally:
        os.close(fd)


def _process(proc, pid, ns, cwd, fds=(), comm="sleep", cgroup="0::/\n", maps=""):
    base = proc / str(pid)
    (base / "ns").mkdir(parents=True)
    (base / "fd").mkdir()
    (base / "fdinfo").mkdir()
    os.symlink(ns, str(base / "ns" / "mnt"))
    os.symlink("/proc", str(base / "root"))  # another mount than the temp dir's, whatever holds that
    os.symlink(cwd, str(base / "cwd"))
    os.symlink("/proc/version", str(base / "exe"))
    for fd, (target, mount_id) in enumerate(fds, start=3):
        os.symlink(target, str(base / "fd" / str(fd)))
        (base / "fdinfo" / str(fd)).write_text("pos:\t0\nflags:\t02\nmnt_id:\t%d\n" % mount_id)
    (base / "comm").write_text(comm + "\n")
    (base / "cgroup").write_text(cgroup)
    (base / "maps").write_text(maps)


def test_scan_finds_processes_by_mount_id_in_every_namespace(tmp_path):
    merged = tmp_path / "merged"
    (merged / "sub").mkdir(parents=True)
    here = _real_mount_id(str(merged))
    proc = tmp_path / "proc"
    _process(proc, 10, "mnt:[1]", str(merged / "sub"))                      # ours: cwd on the mount
    _process(proc, 11, "mnt:[1]", "/proc", fds=[(str(merged / "f"), here), ("/etc/x", here + 1000)])
    _process(proc, 12, "mnt:[1]", "/proc", fds=[("socket:[5]", here)])          # a socket is never a file
    _process(proc, 20, "mnt:[2]", "/proc", fds=[("/srv/m/log", here)], cgroup="0::/system.slice/app.service\n")
    _process(proc, 21, "mnt:[2]", "/proc", maps="7f-8f r-xp 0 00:28 12 /srv/m/lib.so\n")
    point = str(merged)
    st = os.stat(point)
    device = "%d:%d" % (os.major(st.st_dev), os.minor(st.st_dev))  # the real one: dirs are ruled out by it
    ours = [_line(1, 0, "7:99", "/", "shared:1", fstype="ext4", opts="x"),
            _line(here, 1, device, point, "shared:9")]
    theirs = [_line(100, 99, "7:99", "/", "master:1", fstype="ext4", opts="x"),
              _line(here, 100, device, "/srv/m", "master:9")]  # the copy: the same ID stands in for it
    view = HostView("mnt:[1]", {"mnt:[1]": [10, 11, 12], "mnt:[2]": [20, 21]},
                    [Namespace("mnt:[2]", [20, 21], 20, theirs)])
    found = scan_holders(point, ours, ours[1], proc=str(proc), view=view)
    assert found["elsewhere"] == []  # the service's copy is a slave: our unmount reaches it
    assert found["processes"] == [
        {"pid": 10, "command": "sleep", "uses": ["cwd %s/sub" % point]},
        {"pid": 11, "command": "sleep", "uses": ["fd 3 %s/f" % point]},
        {"pid": 20, "command": "sleep", "owner": "unit app.service", "uses": ["fd 3 /srv/m/log"],
         "namespace": "mnt:[2]"},
        {"pid": 21, "command": "sleep", "uses": ["map /srv/m/lib.so"], "namespace": "mnt:[2]"},
    ]


def test_scan_names_a_private_copy_and_an_overlay_on_our_upper(tmp_path):
    proc = tmp_path / "proc"
    _process(proc, 30, "mnt:[3]", "/proc", comm="sleep", cgroup="0::/libpod_parent/libpod-%s\n" % PODMAN_ID)
    ours = HOST
    theirs = [_line(300, 299, "0:40", "/", ""),  # the container's root: our overlay, private
              _line(301, 299, "0:41", "/old", "", opts="lowerdir=/l,upperdir=/srv/u2,workdir=/srv/w2")]
    view = HostView("mnt:[1]", {"mnt:[1]": [], "mnt:[3]": [30]}, [Namespace("mnt:[3]", [30], 30, theirs)])
    mine = {"/srv/u2": (1, 1), "/srv/w2": (1, 2)}
    found = scan_holders("/srv/m", ours, ours[1], mine, proc=str(proc), view=view)
    container = {"pid": 30, "command": "sleep", "owner": "podman container 69802ccab605", "namespace": "mnt:[3]"}
    assert found["elsewhere"] == [dict(container, mount_point="/")]
    assert found["shared"] == [dict(container, mount_point="/old", dir="/srv/u2")]


def test_read_view_groups_this_hosts_processes_by_namespace():
    view = namespaces.read_view()
    assert view.own is not None and os.getpid() in view.members[view.own]
    assert all(ns.ident != view.own and ns.reader in ns.pids for ns in view.others)


def _host_root(tmp_path, name):
    """A root dir of another host (its own scratch at the same path as ours): /srv/u2 and /srv/w2 in it."""
    root = tmp_path / name
    (root / "srv" / "u2").mkdir(parents=True)
    (root / "srv" / "w2").mkdir()
    return root


def _theirs_on_u2():
    return [_line(400, 399, "0:41", "/srv/m2", "", opts="lowerdir=/l,upperdir=/srv/u2,workdir=/srv/w2")]


def test_an_overlay_at_the_same_path_on_another_filesystem_is_not_shared(tmp_path):
    """The namespace's first process ended before its dirs were looked at; a later one still sees another fs."""
    proc = tmp_path / "proc"
    _process(proc, 41, "mnt:[4]", "/proc", comm="sshd")
    os.unlink(str(proc / "41" / "root"))
    os.symlink(str(_host_root(tmp_path, "other-host")), str(proc / "41" / "root"))
    mine = {"/srv/u2": namespaces.stat_identity(str(_host_root(tmp_path, "this-host") / "srv" / "u2")),
            "/srv/w2": None}
    # pid 40, the reader, is gone: no /proc/40 at all.
    view = HostView("mnt:[1]", {"mnt:[1]": [], "mnt:[4]": [40, 41]}, [Namespace("mnt:[4]", [40, 41], 40, _theirs_on_u2())])
    found = scan_holders("/srv/m", HOST, HOST[1], mine, proc=str(proc), view=view)
    assert found["shared"] == []


def test_an_overlay_on_our_upper_seen_through_a_later_process_is_shared_and_named_by_it(tmp_path):
    proc = tmp_path / "proc"
    ours = _host_root(tmp_path, "shared-root")
    _process(proc, 41, "mnt:[4]", "/proc", comm="sshd")
    os.unlink(str(proc / "41" / "root"))
    os.symlink(str(ours), str(proc / "41" / "root"))
    mine = {"/srv/u2": namespaces.stat_identity(str(ours / "srv" / "u2")), "/srv/w2": None}
    view = HostView("mnt:[1]", {"mnt:[1]": [], "mnt:[4]": [40, 41]}, [Namespace("mnt:[4]", [40, 41], 40, _theirs_on_u2())])
    found = scan_holders("/srv/m", HOST, HOST[1], mine, proc=str(proc), view=view)
    assert found["shared"] == [{"pid": 41, "command": "sshd", "namespace": "mnt:[4]", "mount_point": "/srv/m2",
                                "dir": "/srv/u2"}]


def test_an_overlay_of_a_namespace_no_process_holds_any_more_is_left_out(tmp_path):
    proc = tmp_path / "proc"
    proc.mkdir()
    mine = {"/srv/u2": (1, 1), "/srv/w2": (1, 2)}
    view = HostView("mnt:[1]", {"mnt:[1]": [], "mnt:[4]": [40]}, [Namespace("mnt:[4]", [40], 40, _theirs_on_u2())])
    assert namespaces.overlay_dirs(view, str(proc)) == {}
    assert scan_holders("/srv/m", HOST, HOST[1], mine, proc=str(proc), view=view)["shared"] == []


def test_a_dir_a_live_process_cannot_reach_is_keyed_by_its_path(tmp_path):
    """A container's overlay mounted before its root was: the path is all there is to compare."""
    proc = tmp_path / "proc"
    _process(proc, 40, "mnt:[4]", "/proc", comm="conmon")
    os.unlink(str(proc / "40" / "root"))
    os.symlink(str(tmp_path / "empty-root"), str(proc / "40" / "root"))
    view = HostView("mnt:[1]", {"mnt:[1]": [], "mnt:[4]": [40]}, [Namespace("mnt:[4]", [40], 40, _theirs_on_u2())])
    index = namespaces.overlay_dirs(view, str(proc))
    assert sorted(index) == ["/srv/u2", "/srv/w2"]
