# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

import pytest

from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.mountinfo import (
    common_base,
    mount_containing,
    mounts_at,
    overlay_config,
    parse,
    parse_line,
    relative_layer_bases,
    submounts,
)

# Lines as the kernel 6.18 on our machines writes them.
ROOT = "22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,errors=remount-ro"
TMPFS = "31 22 0:27 / /srv/t\\040mp rw,nosuid,nodev shared:12 master:3 - tmpfs tmpfs\\040x rw,size=1024k,mode=755"
LEGACY = (
    "67 43 0:39 / /tmp/exp/mer\\040ged rw,relatime - overlay overlay rw,"
    "lowerdir=/tmp/exp/l1:/tmp/exp/l\\0402\\134\\054x\\134:y:/tmp/exp/l3\\134\\134b=c,"
    "upperdir=/tmp/exp/up\\040per\\134\\0541,workdir=/tmp/exp/wo\\134:rk,uuid=on"
)
NEW_API = (
    "67 43 0:39 / /tmp/exp/mer\\040ged rw,relatime - overlay overlay rw,"
    "lowerdir+=/tmp/exp/l1,lowerdir+=/tmp/exp/l\\0402\\054x:y,lowerdir+=/tmp/exp/l3\\134b=c,"
    "datadir+=/tmp/exp/data,upperdir=/tmp/exp/up\\040per\\134\\0541,workdir=/tmp/exp/wo\\134:rk,uuid=on"
)
DOCKER = (
    "1602 29 0:412 / /var/lib/docker/overlay2/9f2c/merged rw,relatime shared:801 - overlay overlay "
    'rw,context="system_u:object_r:container_file_t:s0:c88,c409",'
    "lowerdir=/var/lib/docker/overlay2/l/6QXGFKGV5GQH7CMU2P5UT6I4:"
    "/var/lib/docker/overlay2/l/XB2O3UFG7FMXIGLSLIAV6MH2ZK,"
    "upperdir=/var/lib/docker/overlay2/9f2c/diff,workdir=/var/lib/docker/overlay2/9f2c/work,index=off,xino=off"
)
PODMAN = (
    "912 860 0:95 / /var/lib/containers/storage/overlay/77ab/merged rw,nodev,relatime - overlay overlay "
    "rw,lowerdir=l/IQSJ6YKNG3Z3:l/T2XKPZ5LGQ2M,upperdir=/var/lib/containers/storage/overlay/77ab/diff,"
    "workdir=/var/lib/containers/storage/overlay/77ab/work,redirect_dir=nofollow,metacopy=on,volatile"
)
READ_ONLY = "88 43 0:50 / /srv/ro ro,relatime - overlay overlay ro,lowerdir=/srv/a:/srv/b"


def test_parse_plain_line():
    entry = parse_line(TMPFS)
    assert entry.mount_id == 31
    assert entry.parent_id == 22
    assert entry.device == "0:27"
    assert entry.mount_point == "/srv/t mp"
    assert entry.mount_options == ["rw", "nosuid", "nodev"]
    assert entry.optional == ["shared:12", "master:3"]
    assert entry.fstype == "tmpfs"
    assert entry.source == "tmpfs x"
    assert not entry.is_overlay


def test_legacy_form_with_every_escape():
    entry = parse_line(LEGACY)
    assert entry.mount_point == "/tmp/exp/mer ged"
    cfg = overlay_config(entry)
    assert cfg["form"] == "lowerdir"
    assert cfg["lowerdir"] == ["/tmp/exp/l1", "/tmp/exp/l 2,x:y", "/tmp/exp/l3\\b=c"]
    assert cfg["upperdir"] == "/tmp/exp/up per,1"
    assert cfg["workdir"] == "/tmp/exp/wo:rk"
    assert cfg["options"] == ["uuid=on"]
    assert cfg["vfs"] == "rw"


def test_lowerdir_plus_form_matches_legacy():
    legacy = overlay_config(parse_line(LEGACY))
    new = overlay_config(parse_line(NEW_API))
    assert new["form"] == "lowerdir+"
    assert new["lowerdir"] == legacy["lowerdir"]
    assert new["datadir"] == ["/tmp/exp/data"]
    assert new["upperdir"] == legacy["upperdir"]
    assert new["workdir"] == legacy["workdir"]


def test_docker_line_with_selinux_context():
    cfg = overlay_config(parse_line(DOCKER))
    assert cfg["lowerdir"] == [
        "/var/lib/docker/overlay2/l/6QXGFKGV5GQH7CMU2P5UT6I4",
        "/var/lib/docker/overlay2/l/XB2O3UFG7FMXIGLSLIAV6MH2ZK",
    ]
    assert cfg["options"] == [
        'context="system_u:object_r:container_file_t:s0:c88,c409"', "index=off", "xino=off"]


def test_podman_relative_layers_resolve_against_storage_root():
    cfg = overlay_config(parse_line(PODMAN))
    assert cfg["lowerdir"] == ["l/IQSJ6YKNG3Z3", "l/T2XKPZ5LGQ2M"]
    bases = relative_layer_bases(cfg["upperdir"], cfg["workdir"])
    assert bases[0] == "/var/lib/containers/storage/overlay"
    existing = {"/var/lib/containers/storage/overlay/l/IQSJ6YKNG3Z3"}
    assert common_base(["l/IQSJ6YKNG3Z3"], bases, existing.__contains__) == "/var/lib/containers/storage/overlay"
    # Unknown: left as it is rather than guessed.
    assert common_base(["l/IQSJ6YKNG3Z3", "l/T2XKPZ5LGQ2M"], bases, existing.__contains__) is None
    assert cfg["options"] == ["redirect_dir=nofollow", "metacopy=on", "volatile"]


def test_read_only_overlay():
    entry = parse_line(READ_ONLY)
    cfg = overlay_config(entry)
    assert cfg["upperdir"] is None and cfg["workdir"] is None
    assert cfg["vfs"] == "ro"
    assert "ro" in entry.mount_options


@pytest.mark.parametrize("line", ["", "garbage", "1 2 3", "x y 0:1 / /a rw - ext4"])
def test_malformed_lines_are_skipped(line):
    assert parse_line(line) is None or line == ""
    assert parse(line) == []


def test_parse_keeps_order_and_finds_stacked_mounts():
    over = "99 67 0:60 / /tmp/exp/mer\\040ged rw - tmpfs tmpfs rw"
    entries = parse("\n".join([ROOT, TMPFS, LEGACY, over]) + "\n")
    assert [e.mount_id for e in entries] == [22, 31, 67, 99]
    assert [e.mount_id for e in mounts_at(entries, "/tmp/exp/mer ged")] == [67, 99]
    assert mounts_at(entries, "/tmp/exp/mer ged")[-1].fstype == "tmpfs"
    assert mounts_at(entries, "/nowhere") == []


@pytest.mark.parametrize("path, mount_id", [
    ("/", 22),
    ("/srv", 22),
    ("/srv/t mp", 31),
    ("/srv/t mp/deep/er", 31),
    ("/srv/t mpx", 22),
    ("/tmp/exp/mer ged/upper", 67),
])
def test_mount_containing(path, mount_id):
    entries = parse("\n".join([ROOT, TMPFS, LEGACY]))
    assert mount_containing(entries, path).mount_id == mount_id


def test_submounts():
    entries = parse("\n".join([ROOT, TMPFS, LEGACY, "70 67 0:61 / /tmp/exp/mer\\040ged/proc rw - proc proc rw"]))
    assert [e.mount_point for e in submounts(entries, "/tmp/exp/mer ged")] == ["/tmp/exp/mer ged/proc"]
    assert submounts(entries, "/tmp/exp/mer") == []


def test_many_lines_parse_linearly():
    lines = [ROOT] + [DOCKER.replace("1602", str(2000 + i)).replace("9f2c", "id%d" % i) for i in range(2000)]
    entries = parse("\n".join(lines))
    assert len(entries) == 2001
    overlays = [overlay_config(e) for e in entries if e.is_overlay]
    assert len(overlays) == 2000
    assert overlays[-1]["upperdir"] == "/var/lib/docker/overlay2/id1999/diff"


def test_reading_again_parses_only_new_lines(monkeypatch):
    """A batch reads mountinfo after every mount: the lines seen before are not parsed again."""
    from ansible_collections.overlayfs.mounts.plugins.module_utils._formats import mountinfo as _mountinfo
    monkeypatch.setattr(_mountinfo, "_PARSED_LINES", {})
    parsed = []
    real = _mountinfo.parse_line

    def counting(line):
        parsed.append(line)
        return real(line)
    monkeypatch.setattr(_mountinfo, "parse_line", counting)
    first = parse("\n".join([ROOT, TMPFS, "garbage"]) + "\n")
    second = parse("\n".join([ROOT, TMPFS, "garbage", LEGACY]) + "\n")
    assert parsed == [ROOT, TMPFS, "garbage", "garbage", LEGACY]  # a bad line is never kept
    assert [e.mount_id for e in second] == [22, 31, 67]
    assert second[:2] == first
    assert overlay_config(second[2]) == overlay_config(real(LEGACY))


def test_parsed_lines_are_forgotten_past_the_limit(monkeypatch):
    from ansible_collections.overlayfs.mounts.plugins.module_utils._formats import mountinfo as _mountinfo
    monkeypatch.setattr(_mountinfo, "_PARSED_LINES", {})
    monkeypatch.setattr(_mountinfo, "_PARSED_LINES_LIMIT", 2)
    parse("\n".join([ROOT, TMPFS, LEGACY]))
    assert len(_mountinfo._PARSED_LINES) == 3
    assert [e.mount_id for e in parse(READ_ONLY)] == [88]
    assert list(_mountinfo._PARSED_LINES) == [READ_ONLY]


def test_only_newline_ends_a_line():
    # The kernel escapes space, tab, newline and backslash, nothing else:
    # a vertical tab or form feed in a path reaches us raw.
    line = "80 22 0:70 / /srv/odd\x0bname\x0c rw - tmpfs tmpfs rw"
    entries = parse(ROOT + "\n" + line + "\n")
    assert [e.mount_point for e in entries] == ["/", "/srv/odd\x0bname\x0c"]


# Issue 9: a double quote in another overlay's path hides nothing -------------

def test_quote_in_layer_path_does_not_hide_upper():
    line = ('90 1 0:50 / /srv/m rw - overlay overlay rw,lowerdir=/srv/l"1:/srv/l2,'
            'upperdir=/srv/"up,workdir=/srv/work,index=off\n')
    cfg = overlay_config(parse(line)[0])
    assert cfg["lowerdir"] == ['/srv/l"1', "/srv/l2"]
    assert (cfg["upperdir"], cfg["workdir"], cfg["options"]) == ('/srv/"up', "/srv/work", ["index=off"])


def test_quoted_selinux_context_still_kept_whole():
    line = ('90 1 0:50 / /srv/m rw - overlay overlay rw,context="system_u:object_r:x:s0:c1,c2",'
            'lowerdir=/a:/b,upperdir=/u"q,workdir=/w\n')
    cfg = overlay_config(parse(line)[0])
    assert cfg["options"] == ['context="system_u:object_r:x:s0:c1,c2"']
    assert (cfg["upperdir"], cfg["workdir"]) == ('/u"q', "/w")
