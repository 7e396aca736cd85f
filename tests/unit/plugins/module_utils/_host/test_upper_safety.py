# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Upper and work dirs the kernel would refuse or misuse (_host.upper_safety), from plain facts. Pure."""

import posixpath
from types import SimpleNamespace

import pytest

from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError
from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.mountinfo import parse_line
from ansible_collections.overlayfs.mounts.plugins.module_utils._host.upper_safety import (
    UNSUITABLE_UPPER_FS,
    VOLATILE_MARKER,
    check_upper,
    find_shared,
    parse_origin,
)

MARKER = posixpath.join("/srv/w", *VOLATILE_MARKER)


def _decl(writable=True, upperdir="/srv/u", workdir="/srv/w", lowerdir=("/srv/l1", "/srv/l2")):
    """What check_upper reads of a declaration."""
    return SimpleNamespace(writable=writable, upperdir=upperdir if writable else None,
                           workdir=workdir if writable else None, lowerdir=list(lowerdir))


# check_upper -------------------------------------------------------------------

@pytest.mark.parametrize("facts, index_on, clear_volatile, remedies", [
    ({}, False, False, []),
    ({"upper_fstype": "ext4"}, True, False, []),
    ({"upper_fstype": "xfs", "origin": (1, b"ab"), "lower_handle": (1, b"ab")}, True, False, []),
    # A mismatched origin only matters with index=on.
    ({"upper_fstype": "tmpfs", "origin": (1, b"ab"), "lower_handle": (1, b"cd")}, False, False, []),
    # Nothing to compare with: the kernel will say.
    ({"origin": (1, b"ab"), "lower_handle": None}, True, False, []),
    ({"origin": None, "lower_handle": (1, b"ab")}, True, False, []),
    ({"shared": None, "volatile_marker": None}, True, True, []),
    # The volatile marker goes only when asked to.
    ({"volatile_marker": MARKER}, False, True, [{"action": "clear_volatile", "path": MARKER}]),
    ({"volatile_marker": MARKER, "upper_fstype": "btrfs"}, True, True,
     [{"action": "clear_volatile", "path": MARKER}]),
])
def test_check_upper_accepts(facts, index_on, clear_volatile, remedies):
    assert check_upper(_decl(), facts, index_on, clear_volatile) == remedies


@pytest.mark.parametrize("facts", [
    {"shared": {"path": "/srv/other", "mount_id": 70, "engine": "docker"}},
    {"shared": {"path": "/srv/other", "mount_id": 70, "engine": None}},
    {"upper_fstype": "vfat"},
    {"volatile_marker": MARKER},
    {"origin": (1, b"ab"), "lower_handle": (1, b"cd")},
])
def test_a_read_only_overlay_has_nothing_to_check(facts):
    assert check_upper(_decl(writable=False), facts, True, False) == []


@pytest.mark.parametrize("facts, index_on, clear_volatile, message, details", [
    ({"shared": {"path": "/var/lib/docker/overlay2/ab/merged", "mount_id": 70, "engine": "docker"}},
     False, False,
     "^upperdir: /srv/u \\(or workdir /srv/w\\) is a layer dir of the container mounted at "
     "/var/lib/docker/overlay2/ab/merged by docker, in use now",
     {"shared_with": "/var/lib/docker/overlay2/ab/merged", "engine": "docker"}),
    ({"shared": {"path": "/srv/other", "mount_id": 70, "engine": None}, "upper_fstype": "ext4"},
     False, True,
     "^upperdir: /srv/u \\(or workdir /srv/w\\) is already used by the overlay mounted at /srv/other; "
     ".*give this overlay its own upper and work dirs$",
     {"shared_with": "/srv/other"}),
    # Sharing is reported before anything else.
    ({"shared": {"path": "/srv/other", "mount_id": 70, "engine": None}, "upper_fstype": "vfat",
      "volatile_marker": MARKER}, False, False, "is already used by the overlay mounted at /srv/other", None),
    ({"upper_fstype": "vfat"}, False, False,
     "^upperdir: /srv/u is on a vfat filesystem, which lacks the extended attributes or d_type", {}),
    ({"upper_fstype": "nfs4"}, False, False, "^upperdir: /srv/u is on a nfs4 filesystem", {}),
    ({"upper_fstype": "fuse.sshfs"}, False, False, "is on a fuse.sshfs filesystem", {}),
    ({"upper_fstype": "fuseblk"}, False, False, "is on a fuseblk filesystem", {}),
    ({"upper_fstype": "squashfs"}, False, False, "is on a squashfs filesystem", {}),
    ({"volatile_marker": MARKER}, False, False,
     "^workdir: /srv/w holds the marker %s left by a mount with the volatile option; .*"
     "set clear_volatile: true to remove the marker" % MARKER, {}),
    ({"volatile_marker": MARKER, "origin": (1, b"ab"), "lower_handle": (1, b"cd")}, True, False,
     "^workdir: /srv/w holds the marker", {}),
    ({"origin": (1, b"ab"), "lower_handle": (1, b"cd")}, True, False,
     "^upperdir: /srv/u was used with index=on over other lower layers: its recorded origin does not match "
     "the top lower layer /srv/l1, and the kernel would refuse the mount \\(ESTALE\\)", {}),
    ({"origin": (1, b"ab"), "lower_handle": (2, b"ab")}, True, True, "recorded origin does not match", {}),
])
def test_check_upper_refuses(facts, index_on, clear_volatile, message, details):
    with pytest.raises(OverlayError, match=message) as caught:
        check_upper(_decl(), facts, index_on, clear_volatile)
    if details is not None:
        assert caught.value.details == details


def test_the_origin_refusal_without_lower_layers_says_so():
    with pytest.raises(OverlayError, match="the top lower layer \\?"):
        check_upper(_decl(lowerdir=()), {"origin": (1, b"a"), "lower_handle": (1, b"b")}, True, False)


def test_a_marker_left_in_place_is_not_removed_by_check_upper():
    """The remedy is only named: check_upper changes nothing (clear_volatile_marker does)."""
    facts = {"volatile_marker": MARKER}
    assert check_upper(_decl(), facts, False, True) == [{"action": "clear_volatile", "path": MARKER}]
    assert facts == {"volatile_marker": MARKER}


@pytest.mark.parametrize("fstype", sorted(UNSUITABLE_UPPER_FS))
def test_every_unsuitable_filesystem_is_refused(fstype):
    with pytest.raises(OverlayError, match="^upperdir: /srv/u is on a %s filesystem" % fstype):
        check_upper(_decl(), {"upper_fstype": fstype}, False, False)


# find_shared -------------------------------------------------------------------

DOCKER = "/var/lib/docker/overlay2"
PODMAN = "/var/lib/containers/storage/overlay"


def _line(mount_id, mount_point, super_options, fstype="overlay"):
    return "%d 22 0:%d / %s rw,relatime - %s overlay %s" % (mount_id, mount_id, mount_point, fstype, super_options)


def _entries(*lines):
    # parse_line, not parse: a fresh entry per test, so nothing is kept between cases.
    return [parse_line(line) for line in lines]


PLAIN = _line(70, "/srv/m", "rw,lowerdir=/srv/l,upperdir=/srv/u,workdir=/srv/w")
READ_ONLY = _line(71, "/srv/ro", "ro,lowerdir=/srv/u:/srv/w")
NOT_OVERLAY = _line(72, "/srv/t", "rw,size=10k", fstype="tmpfs")
CONTAINER = _line(80, DOCKER + "/ab/merged",
                  "rw,lowerdir=%s/l/AAA:%s/l/BBB,upperdir=%s/ab/diff,workdir=%s/ab/work"
                  % (DOCKER, DOCKER, DOCKER, DOCKER))
RELATIVE = _line(81, PODMAN + "/cd/merged", "rw,lowerdir=l/CCC,upperdir=cd/diff,workdir=cd/work")
# The engine's short links, as realpath would follow them.
LINKS = {DOCKER + "/l/AAA": DOCKER + "/layer1/diff", DOCKER + "/l/BBB": DOCKER + "/layer2/diff",
         PODMAN + "/l/CCC": PODMAN + "/layer3/diff"}
# With containers/storage's own mark beside the storage root, which tells the engine.
PODMAN_PATHS = {PODMAN + "/l/CCC", PODMAN + "/cd/diff", PODMAN + "/cd/work", "/var/lib/containers/storage/overlay-layers"}


def _realpath(path):
    return LINKS.get(path, path)


@pytest.mark.parametrize("lines, mine, own, exists, realpath, expected", [
    # The same upper or work dir as a live overlay, however it is written.
    ([PLAIN], ["/srv/u", "/srv/x"], (), None, None, {"path": "/srv/m", "mount_id": 70, "engine": None}),
    ([PLAIN], ["/srv/x", "/srv/w"], (), None, None, {"path": "/srv/m", "mount_id": 70, "engine": None}),
    ([PLAIN], ["/srv//u/", "/srv/x"], (), None, None, {"path": "/srv/m", "mount_id": 70, "engine": None}),
    ([PLAIN], [None, "/srv/w"], (), None, None, {"path": "/srv/m", "mount_id": 70, "engine": None}),
    # Ours (by mount id), other dirs, layers of a plain overlay, other filesystems: not shared.
    ([PLAIN], ["/srv/u", "/srv/w"], (70,), None, None, None),
    ([PLAIN], ["/srv/u2", "/srv/w2"], (), None, None, None),
    ([PLAIN], ["/srv/l", "/srv/x"], (), None, None, None),
    ([READ_ONLY], ["/srv/u", "/srv/w"], (), None, None, None),
    ([NOT_OVERLAY], ["/srv/t", "/srv/x"], (), None, None, None),
    ([], ["/srv/u", "/srv/w"], (), None, None, None),
    # The first overlay that shares wins.
    ([NOT_OVERLAY, PLAIN, PLAIN.replace("70 22", "73 22").replace("/srv/m", "/srv/m2")],
     ["/srv/u", "/srv/w"], (), None, None, {"path": "/srv/m", "mount_id": 70, "engine": None}),
    ([PLAIN, PLAIN.replace("70 22", "73 22").replace("/srv/m", "/srv/m2")],
     ["/srv/u", "/srv/w"], (70,), None, None, {"path": "/srv/m2", "mount_id": 73, "engine": None}),
    # A container's own layer dir, anywhere inside it.
    ([CONTAINER], [DOCKER + "/ab/diff", "/srv/w"], (), None, None,
     {"path": DOCKER + "/ab/merged", "mount_id": 80, "engine": "docker"}),
    ([CONTAINER], [DOCKER + "/ab/other", "/srv/w"], (), None, None,
     {"path": DOCKER + "/ab/merged", "mount_id": 80, "engine": "docker"}),
    # One of its lower layers: found through the engine's short links only.
    ([CONTAINER], [DOCKER + "/layer2/diff/sub", "/srv/w"], (), None, _realpath,
     {"path": DOCKER + "/ab/merged", "mount_id": 80, "engine": "docker"}),
    ([CONTAINER], [DOCKER + "/layer2/diff/sub", "/srv/w"], (), None, None, None),
    # Another dir of the storage root is not in use by this container.
    ([CONTAINER], [DOCKER + "/zz/diff", DOCKER + "/zz/work"], (), None, _realpath, None),
    ([CONTAINER], [DOCKER + "/ab/diff", "/srv/w"], (80,), None, _realpath, None),
    # Relative paths resolve against the storage root while they exist there.
    ([RELATIVE], [PODMAN + "/cd/diff", "/srv/w"], (), PODMAN_PATHS.__contains__, None,
     {"path": PODMAN + "/cd/merged", "mount_id": 81, "engine": "containers-storage"}),
    ([RELATIVE], [PODMAN + "/layer3/diff", "/srv/w"], (), PODMAN_PATHS.__contains__, _realpath,
     {"path": PODMAN + "/cd/merged", "mount_id": 81, "engine": "containers-storage"}),
    ([RELATIVE], [PODMAN + "/cd/diff", "/srv/w"], (), None, None, None),
    ([RELATIVE], [PODMAN + "/cd/diff", "/srv/w"], (), set().__contains__, None, None),
])
def test_find_shared(lines, mine, own, exists, realpath, expected):
    assert find_shared(mine, _entries(*lines), own, exists, realpath) == expected


def test_the_engine_is_told_by_the_store_markers_when_exists_is_given():
    root = "/data/store/ov"
    line = _line(90, root + "/ab/merged", "rw,lowerdir=%s/l/A,upperdir=%s/ab/diff,workdir=%s/ab/work"
                 % (root, root, root))
    mine = [root + "/ab/diff", "/srv/w"]
    assert find_shared(mine, _entries(line))["engine"] is None
    markers = {"/data/store/overlay-layers"}
    assert find_shared(mine, _entries(line), (), markers.__contains__)["engine"] == "containers-storage"


def test_facts_of_an_absolute_overlay_are_kept_on_its_entry():
    entries = _entries(PLAIN, RELATIVE)
    assert find_shared(["/srv/x", "/srv/y"], entries, (), PODMAN_PATHS.__contains__) is None
    assert "shared" in entries[0].derived
    assert entries[1].derived is None


# parse_origin --------------------------------------------------------------------

UUID = bytes(range(16))


def _origin(handle_type, handle, length=None, magic=0xFB):
    data = bytes([0, magic, 0, 0, handle_type]) + UUID + handle
    length = len(data) if length is None else length
    return data[:2] + bytes([length]) + data[3:]


@pytest.mark.parametrize("raw, expected", [
    (None, None),
    (b"", None),
    (_origin(1, b"")[:20], None),                                  # shorter than the header
    (_origin(1, b"\x01\x02", magic=0xFA), None),                   # not ovl_fb
    (_origin(1, b"\x01\x02", length=30), None),                    # claims more than it holds
    (_origin(1, b""), (1, b"")),
    (_origin(7, b"\x01\x02\x03\x04"), (7, b"\x01\x02\x03\x04")),
    (_origin(0xFF, b"\xaa" * 8), (0xFF, b"\xaa" * 8)),
    (_origin(1, b"\x01\x02\x03\x04", length=23), (1, b"\x01\x02")),  # the length says where it ends
    (bytearray(_origin(2, b"\x09")), (2, b"\x09")),
])
def test_parse_origin(raw, expected):
    assert parse_origin(raw) == expected


@pytest.mark.parametrize("clear_volatile", [False, True])
def test_an_interrupted_commit_is_refused_with_what_finishes_it(clear_volatile):
    pending = "/srv/work/work/incompat/overlayfs-mounts-pending"
    with pytest.raises(OverlayError) as caught:
        check_upper(_decl(), {"pending_marker": pending, "volatile_marker": MARKER}, False, clear_volatile)
    assert caught.value.message.startswith("workdir: ")
    assert "overlay_upper" in caught.value.message and pending in caught.value.message
    assert caught.value.details == {"pending": pending}
