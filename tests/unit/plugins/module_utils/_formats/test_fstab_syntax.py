# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

import json
import os
import random
import re
import shutil
import subprocess

import pytest

from ansible_collections.overlayfs.mounts.plugins.module_utils._model.facts import HostFacts
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.declaration import Declaration
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError
from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.fstab_syntax import (
    FstabEntry,
    append_entry,
    edit_entry,
    find_entries,
    mount_uses_fsconfig,
    normalize_mount_point,
    parse,
    remove_entries,
    render,
    render_entry,
    replace_entry,
    set_entry,
)
from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.mountinfo import (
    overlay_config,
    parse as parse_mountinfo,
    mounts_at,
)
from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.mount_data import (
    MOUNT_DATA_MAX,
    format_mount_options,
    parse_overlay_options,
)
from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.unit_syntax import (
    parse_unit,
    unit_name_for,
)

UGLY_FSTABS = {
    "empty": "",
    "one newline": "\n",
    "debian": (
        "# /etc/fstab: static file system information.\n"
        "#\n"
        "# <file system> <mount point>   <type>  <options>       <dump>  <pass>\n"
        "UUID=0a1b-2c3d /               ext4    errors=remount-ro 0       1\n"
        "/swapfile                                 none            swap    sw              0       0\n"
    ),
    "no final newline": "proc /proc proc defaults 0 0\ntmpfs /tmp tmpfs defaults",
    "tabs and trailing blanks": "tmpfs\t\t/tmp  \t tmpfs\tdefaults,size=1G\t0\t0   \n",
    "octal escapes": "//srv/share /mnt/my\\040share cifs credentials=/root/c\\040d,uid=1 0 0\n",
    "three to seven fields": "a /b c\na /b c d\na /b c d 1\na /b c d 1 2\na /b c d 1 2 extra # junk\n",
    "crlf": "tmpfs /t tmpfs defaults 0 0\r\n# comment\r\n",
    "mixed endings": "a /b c\r\nd /e f\n\r\n\n",
    "blank lines": "\n   \n\t\n\n",
    "indented comment": "   # a comment\n\t#another\n",
    "malformed": "onlyone\ntwo fields\nx /y z d notanumber 0\n",
    "lone cr at end": "a /b c d 0 0\r",
    "cr inside": "a\rb /c d\n",
    "vertical tab in a field": "a\x0bb /c d\n",
    "unicode": "overlay /srv/\u00fc overlay lowerdir=/\u00e4:/\u00f6 0 0\n",
    "backslashes": "x /a\\\\b t \\134 0 0\n",
    "only a comment, no newline": "# only a comment",
    "overlay with every escape": (
        "overlay /srv/my\\040dir overlay lowerdir=/l/a\\134,b:/l/t\\011ab,upperdir=/u,workdir=/w,"
        "x-systemd.requires-mounts-for=\"/l/a\\134,b\" 0 0"
    ),
}


def entry_text(path, lowerdir, upperdir=None, workdir=None, options=(), extra_options=(), datadir=(), freq=0,
               passno=0):
    """The fstab line ``render_entry`` makes of the overlay these arguments describe."""
    return render_entry(Declaration(path, lowerdir, upperdir, workdir, options, datadir), None, extra_options,
                        freq, passno).text


@pytest.mark.parametrize("text", list(UGLY_FSTABS.values()), ids=list(UGLY_FSTABS))
def test_parse_render_round_trip(text):
    assert render(parse(text)) == text


def test_round_trip_random_texts():
    alphabet = ["a", "/", " ", "\t", "\r", "\n", "#", "\\", "\\040", "0", ",", "=", "\u00fc", "\x0b", "overlay "]
    rng = random.Random(20240611)
    for _attempt in range(3000):
        text = "".join(rng.choice(alphabet) for _char in range(rng.randint(0, 40)))
        assert render(parse(text)) == text, repr(text)


@pytest.mark.parametrize("line, expected", [
    ("tmpfs /tmp tmpfs defaults 0 0", ("tmpfs", "/tmp", "tmpfs", "defaults", 0, 0)),
    ("  UUID=x\t/  ext4 errors=remount-ro 0 1  ", ("UUID=x", "/", "ext4", "errors=remount-ro", 0, 1)),
    ("a /b c", ("a", "/b", "c", "defaults", 0, 0)),
    ("a /b c d", ("a", "/b", "c", "d", 0, 0)),
    ("a /b c d 3", ("a", "/b", "c", "d", 3, 0)),
    ("a /b c d 1 2 ignored fields", ("a", "/b", "c", "d", 1, 2)),
    ("a /b c d 0 0\r", ("a", "/b", "c", "d", 0, 0)),
    ("//h/s /mnt/my\\040share cifs user=a\\134b 0 0", ("//h/s", "/mnt/my share", "cifs", "user=a\\b", 0, 0)),
    ("o /m\\011t\\012n overlay x 0 0", ("o", "/m\tt\nn", "overlay", "x", 0, 0)),
    ("a\x0bb /c d", ("a\x0bb", "/c", "d", "defaults", 0, 0)),
    ("# tmpfs /tmp tmpfs defaults 0 0", None),
    ("   ", None),
    ("", None),
    ("a /b", None),
    ("a /b c d x 0", None),
    ("a /b c d 0 y", None),
])
def test_entry_fields(line, expected):
    entry = parse(line)[0].entry if line else None
    if expected is None:
        assert entry is None
    else:
        assert entry == FstabEntry(*(expected + (line,)))


@pytest.mark.parametrize("path, expected", [
    ("/srv/m", "/srv/m"),
    ("/srv/m/", "/srv/m"),
    ("//srv//m//", "/srv/m"),
    ("/srv/./m", "/srv/m"),
    ("/srv/x/../m", "/srv/m"),
    ("/", "/"),
    ("none", "none"),
    ("", ""),
])
def test_normalize_mount_point(path, expected):
    assert normalize_mount_point(path) == expected


FIND_TEXT = (
    "overlay /srv/m overlay lowerdir=/a:/b 0 0\n"
    "tmpfs /srv/m tmpfs defaults 0 0\n"
    "overlay /srv/m/ overlay lowerdir=/c:/d 0 0\n"
    "overlay //srv//m overlay lowerdir=/e:/f 0 0\n"
    "overlay /srv/m2 overlay lowerdir=/g:/h 0 0\n"
    "# overlay /srv/m overlay lowerdir=/commented:/out 0 0\n"
    "overlay /srv/with\\040space overlay lowerdir=/i:/j 0 0\n"
)


@pytest.mark.parametrize("mount_point, vfstype, expected_options", [
    ("/srv/m", "overlay", ["lowerdir=/a:/b", "lowerdir=/c:/d", "lowerdir=/e:/f"]),
    ("/srv/m/", "overlay", ["lowerdir=/a:/b", "lowerdir=/c:/d", "lowerdir=/e:/f"]),
    ("/srv/m", None, ["lowerdir=/a:/b", "defaults", "lowerdir=/c:/d", "lowerdir=/e:/f"]),
    ("/srv/m", "tmpfs", ["defaults"]),
    ("/srv/m2", "overlay", ["lowerdir=/g:/h"]),
    ("/srv/with space", "overlay", ["lowerdir=/i:/j"]),
    ("/srv/other", "overlay", []),
])
def test_find_entries(mount_point, vfstype, expected_options):
    found = find_entries(parse(FIND_TEXT), mount_point, vfstype)
    assert [entry.mntops for entry in found] == expected_options


NEW = "overlay /m overlay lowerdir=/new1:/new2 0 0"


@pytest.mark.parametrize("text, expected, expected_count", [
    ("# head\noverlay /m overlay lowerdir=/old 0 0\ntmpfs /t tmpfs defaults 0 0\n"
     "overlay /m/ overlay lowerdir=/dup 0 0\n# tail",
     "# head\n" + NEW + "\ntmpfs /t tmpfs defaults 0 0\n# tail", 1),
    ("a /b c\noverlay /m overlay lowerdir=/old 0 0", "a /b c\n" + NEW, 0),
    ("overlay /m overlay x 0 0\r\nkeep /k t\r\n", NEW + "\r\nkeep /k t\r\n", 0),
    ("overlay /m overlay a 0 0\noverlay /m overlay b 0 0\noverlay /m overlay c 0 0\n", NEW + "\n", 2),
    ("tmpfs /m tmpfs d 0 0\noverlay /m overlay a 0 0\n", "tmpfs /m tmpfs d 0 0\n" + NEW + "\n", 0),
], ids=["duplicates collapsed", "last line without newline", "crlf", "three copies", "other type kept"])
def test_replace_entry(text, expected, expected_count):
    lines, collapsed = replace_entry(parse(text), "/m", NEW)
    assert (render(lines), collapsed) == (expected, expected_count)


def test_replace_entry_without_match_fails():
    with pytest.raises(OverlayError, match="no overlay entry for /m"):
        replace_entry(parse("tmpfs /m tmpfs d 0 0\n"), "/m", NEW)


@pytest.mark.parametrize("text, expected", [
    ("", NEW + "\n"),
    ("a /b c\n", "a /b c\n" + NEW + "\n"),
    ("a /b c", "a /b c\n" + NEW),
    ("# comment only", "# comment only\n" + NEW),
    ("a /b c\r\n", "a /b c\r\n" + NEW + "\r\n"),
    ("a /b c\r\nd /e f", "a /b c\r\nd /e f\r\n" + NEW),
    ("\n\n", "\n\n" + NEW + "\n"),
], ids=["empty", "newline", "no final newline", "comment without newline", "crlf",
        "crlf without final newline", "blank lines"])
def test_append_entry(text, expected):
    lines = append_entry(parse(text), NEW)
    assert render(lines) == expected
    assert lines[-1].entry.mntops == "lowerdir=/new1:/new2"


@pytest.mark.parametrize("text, expected, expected_count", [
    ("a /b c\n", "a /b c\n" + NEW + "\n", 0),
    ("a /b c\noverlay /m/ overlay old 0 0\noverlay /m overlay dup 0 0\n", "a /b c\n" + NEW + "\n", 1),
])
def test_set_entry(text, expected, expected_count):
    lines, collapsed = set_entry(parse(text), "/m", NEW)
    assert (render(lines), collapsed) == (expected, expected_count)


@pytest.mark.parametrize("text, expected, expected_count", [
    ("overlay /m overlay a 0 0\n# keep\noverlay /m/ overlay b 0 0\n", "# keep\n", 2),
    ("# keep\ntmpfs /m tmpfs d 0 0\n", "# keep\ntmpfs /m tmpfs d 0 0\n", 0),
    ("a /b c\noverlay /m overlay a 0 0", "a /b c", 1),
    ("", "", 0),
])
def test_remove_entries(text, expected, expected_count):
    lines, removed = remove_entries(parse(text), "/m")
    assert (render(lines), removed) == (expected, expected_count)


@pytest.mark.parametrize("text", ["a /b c", "a /b c\n", "# c\r\na /b c", "", "x /y z\n# tail"])
def test_append_then_remove_gives_back_the_same_bytes(text):
    lines = append_entry(parse(text), NEW)
    back, removed = remove_entries(lines, "/m")
    assert removed == 1 and render(back) == text


RENDER_CASES = [
    (dict(path="/srv/m", lowerdir=["/l1", "/l2"]),
     "overlay /srv/m overlay lowerdir=/l1:/l2,x-systemd.requires-mounts-for=/l1,"
     "x-systemd.requires-mounts-for=/l2 0 0"),
    (dict(path="/srv/m", lowerdir=["/l1"], upperdir="/u", workdir="/w",
          options=["index=off", "volatile"], extra_options=["nofail", "x-systemd.automount"]),
     "overlay /srv/m overlay lowerdir=/l1,upperdir=/u,workdir=/w,index=off,volatile,nofail,"
     "x-systemd.automount,x-systemd.requires-mounts-for=/l1,x-systemd.requires-mounts-for=/u,"
     "x-systemd.requires-mounts-for=/w 0 0"),
    (dict(path="/srv/my dir", lowerdir=["/l/a,b", "/l/c:d", "/l/t\tab", "/l/it's"], upperdir="/u p",
          workdir="/w"),
     "overlay /srv/my\\040dir overlay lowerdir=/l/a\\134,b:/l/c\\134:d:/l/t\\011ab:/l/it's,"
     "upperdir=/u\\040p,workdir=/w,x-systemd.requires-mounts-for=\"/l/a\\134,b\","
     "x-systemd.requires-mounts-for=/l/c:d,x-systemd.requires-mounts-for=\"/l/t\\011ab\","
     "x-systemd.requires-mounts-for=\"/l/it's\",x-systemd.requires-mounts-for=\"/u\\040p\","
     "x-systemd.requires-mounts-for=/w 0 0"),
    (dict(path="/m", lowerdir=["/l"], datadir=["/d1", "/d2"], options=["metacopy=on", "redirect_dir=on"]),
     "overlay /m overlay lowerdir=/l::/d1::/d2,metacopy=on,redirect_dir=on,"
     "x-systemd.requires-mounts-for=/l,x-systemd.requires-mounts-for=/d1,"
     "x-systemd.requires-mounts-for=/d2 0 0"),
    (dict(path="/m", lowerdir=["/a", "/a"], freq=1, passno=2),
     "overlay /m overlay lowerdir=/a:/a,x-systemd.requires-mounts-for=/a 1 2"),
    (dict(path="/srv/a\\b\"c,d", lowerdir=["/\u00e4", "/%n"], extra_options=['context="u:r:t:s0:c1,c2"']),
     "overlay /srv/a\\134b\"c,d overlay lowerdir=/\u00e4:/%n,context=\"u:r:t:s0:c1,c2\","
     "x-systemd.requires-mounts-for=/\u00e4,x-systemd.requires-mounts-for=/%n 0 0"),
]


@pytest.mark.parametrize("kwargs, expected", RENDER_CASES)
def test_render_entry(kwargs, expected):
    assert entry_text(**kwargs) == expected


@pytest.mark.parametrize("kwargs, _line", RENDER_CASES)
def test_render_entry_round_trip(kwargs, _line):
    entry = parse(entry_text(**kwargs))[0].entry
    assert (entry.spec, entry.file, entry.vfstype) == ("overlay", kwargs["path"], "overlay")
    assert (entry.freq, entry.passno) == (kwargs.get("freq", 0), kwargs.get("passno", 0))
    assert parse_overlay_options(entry.mntops) == _expected_options(**kwargs)


def _expected_options(path, lowerdir, upperdir=None, workdir=None, options=(), extra_options=(),
                      datadir=(), freq=0, passno=0):
    required = list(lowerdir) + list(datadir) + [p for p in (upperdir, workdir) if p]
    return {
        "lowerdir": list(lowerdir), "datadir": list(datadir), "upperdir": upperdir, "workdir": workdir,
        "options": list(options), "extra_options": list(extra_options),
        "requires_mounts_for": sorted(set(required), key=required.index),
    }


@pytest.mark.parametrize("kwargs, message", [
    (dict(path="srv/m", lowerdir=["/a"]), "path: 'srv/m' is not an absolute path"),
    (dict(path="/srv/m", lowerdir=[]), "lowerdir: at least one"),
    (dict(path="/srv/m", lowerdir=["a", "/b"]), "lowerdir\\[0\\]: 'a' is not an absolute path"),
    (dict(path="/srv/m", lowerdir=["/a"], upperdir="/u"), "upperdir and workdir go together"),
    (dict(path="/srv/m\n", lowerdir=["/a"]), "path: .* line break"),
    (dict(path="/srv/m ", lowerdir=["/a"]), "path: .* ends with whitespace"),
    (dict(path="/srv/m\\", lowerdir=["/a"]), "path: .* line continuation"),
    (dict(path="/srv/m", lowerdir=["/a", "/b\nc"]), "lowerdir\\[1\\]: .* line break"),
    (dict(path="/srv/m", lowerdir=["/a\rb"]), "line break"),
    (dict(path="/srv/m", lowerdir=["/a"], upperdir="/u\\x", workdir="/w"), "upperdir: .* backslash"),
    (dict(path="/srv/m", lowerdir=["/a"], datadir=["/d\\"]), "datadir\\[0\\]: .* backslash"),
    (dict(path="/srv/m", lowerdir=['/q"uote']), "double quote"),
    (dict(path="/srv/m", lowerdir=["/a"], options=["ro"]), "'ro' is not an overlay mount option"),
    (dict(path="/srv/m", lowerdir=["/a"], options=["index=off,upperdir=/evil"]), "not one mount option"),
    (dict(path="/srv/m", lowerdir=["/a"], extra_options=["nofail,upperdir=/evil"]), "not one mount option"),
    (dict(path="/srv/m", lowerdir=["/a"], extra_options=[""]), "not one mount option"),
    (dict(path="/srv/m", lowerdir=["/a"], extra_options=["index=on"]), "its own parameter"),
    (dict(path="/srv/m", lowerdir=["/a"], extra_options=["lowerdir=/x"]), "its own parameter"),
    (dict(path="/srv/m", lowerdir=["/a"], extra_options=["x-systemd.requires-mounts-for=/x"]),
     "its own parameter"),
    (dict(path="/srv/m", lowerdir=["/" + "l" * 100 + str(i) for i in range(40)]), "silently drops"),
])
def test_render_entry_refuses(kwargs, message):
    with pytest.raises(OverlayError, match=message):
        entry_text(**kwargs)


@pytest.mark.parametrize("layer_count, fits", [(1, True), (2, False)])
def test_mount_data_limit_is_exact(layer_count, fits):
    # "lowerdir=" (9 bytes) + one layer of 4086 bytes is exactly the limit.
    layers = ["/" + "x" * 4085] + ["/y"] * (layer_count - 1)
    if fits:
        assert len(format_mount_options(Declaration("/m", layers)).text) == MOUNT_DATA_MAX
    else:
        with pytest.raises(OverlayError):
            format_mount_options(Declaration("/m", layers)).text


@pytest.mark.parametrize("mntops, expected", [
    ("", {}),
    ("lowerdir=/a:/b,upperdir=/u,workdir=/w", dict(lowerdir=["/a", "/b"], upperdir="/u", workdir="/w")),
    ("lowerdir=/a\\:b:/c\\,d,upperdir=/u\\,v,workdir=/w\\\\x",
     dict(lowerdir=["/a:b", "/c,d"], upperdir="/u,v", workdir="/w\\x")),
    ("lowerdir=/a::/d1::/d2", dict(lowerdir=["/a"], datadir=["/d1", "/d2"])),
    ("defaults,ro,noatime,index=off,xino=auto",
     dict(options=["index=off", "xino=auto"], extra_options=["defaults", "ro", "noatime"])),
    ('lowerdir=/a,context="system_u:object_r:x:s0:c1,c2",nofail',
     dict(lowerdir=["/a"], extra_options=['context="system_u:object_r:x:s0:c1,c2"', "nofail"])),
    ("x-systemd.requires-mounts-for=/a /b", dict(requires_mounts_for=["/a", "/b"])),
    ('x-systemd.requires-mounts-for="/a b"', dict(requires_mounts_for=["/a b"])),
    ("x-systemd.requires-mounts-for=/a\\,b", dict(requires_mounts_for=["/a,b"])),
    ("x-systemd.requires-mounts-for='/a b',x-systemd.requires-mounts-for=/c",
     dict(requires_mounts_for=["/a b", "/c"])),
    ('x-systemd.requires-mounts-for="/unbalanced', {}),
])
def test_parse_overlay_options(mntops, expected):
    full = {
        "lowerdir": [], "datadir": [], "upperdir": None, "workdir": None,
        "options": [], "extra_options": [], "requires_mounts_for": [],
    }
    full.update(expected)
    assert parse_overlay_options(mntops) == full


# Directory names that are awkward for fstab, the kernel or systemd, but allowed here.
AWKWARD_LAYERS = ["sp ace", "t\tab", "co,mma", "co:lon", "it's", "\u00fcn\u00efc\u00f6de", "per%cent", "eq=ual"]


def _awkward_tree(root):
    """Layers, upper, work and a mount point with awkward names under ``root``."""
    layers = [os.path.join(root, "lower", name) for name in AWKWARD_LAYERS]
    upper = os.path.join(root, "rw dir", "up,per")
    work = os.path.join(root, "rw dir", "wo:rk")
    merged = os.path.join(root, 'mer ged\\with"quote,and:colon')
    for path in layers + [upper, work, merged]:
        os.makedirs(path)
    return merged, layers, upper, work


@pytest.mark.skipif(shutil.which("findmnt") is None, reason="findmnt (util-linux) is not installed")
def test_findmnt_reads_rendered_lines_back(tmp_path):
    merged, layers, upper, work = _awkward_tree(str(tmp_path))
    read_only = os.path.join(str(tmp_path), "read only")
    os.makedirs(read_only)
    entries = [
        dict(path=merged, lowerdir=layers, upperdir=upper, workdir=work, options=["index=off"],
             extra_options=["nofail", "x-systemd.device-timeout=5s"]),
        dict(path=read_only, lowerdir=layers[:2]),
    ]
    fstab = tmp_path / "fstab"
    fstab.write_text("# user's own line\ntmpfs /tmp tmpfs defaults 0 0\n"
                     + "".join(entry_text(**e) + "\n" for e in entries))

    verify = subprocess.run(["findmnt", "--verify", "--tab-file", str(fstab)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False)
    assert verify.returncode == 0, verify.stdout
    assert "0 parse errors" in verify.stdout or "no errors or warnings" in verify.stdout

    listed = subprocess.run(["findmnt", "--tab-file", str(fstab), "--json", "-o", "SOURCE,TARGET,FSTYPE,OPTIONS"],
                            stdout=subprocess.PIPE, check=True, universal_newlines=True)
    filesystems = json.loads(listed.stdout)["filesystems"]
    assert [fs["target"] for fs in filesystems] == ["/tmp", merged, read_only]
    for fs, entry in zip(filesystems[1:], entries):
        assert (fs["source"], fs["fstype"]) == ("overlay", "overlay")
        assert parse_overlay_options(fs["options"]) == _expected_options(**entry)


def _fstab_generator():
    for directory in ("/usr/lib/systemd/system-generators", "/lib/systemd/system-generators"):
        path = os.path.join(directory, "systemd-fstab-generator")
        if os.access(path, os.X_OK):
            return path
    return None


@pytest.mark.skipif(_fstab_generator() is None or shutil.which("systemd-analyze") is None,
                    reason="systemd-fstab-generator or systemd-analyze is not installed")
def test_systemd_fstab_generator_reads_rendered_lines_back(tmp_path):
    merged, layers, upper, work = _awkward_tree(str(tmp_path))
    fstab = tmp_path / "fstab"
    fstab.write_text(render_entry(Declaration(merged, layers, upper, work, ["index=off"]), None, ["nofail"]).text + "\n")
    out = tmp_path / "generated"
    out.mkdir()
    env = dict(os.environ, SYSTEMD_FSTAB=str(fstab), SYSTEMD_LOG_LEVEL="warning")
    subprocess.run([_fstab_generator()] + [str(out)] * 3, env=env, check=True)

    unit = out / unit_name_for(merged)
    parsed = parse_unit(unit.read_text())
    assert parsed["where"] == merged
    expected = _expected_options(merged, layers, upper, work, ["index=off"], ["nofail"])
    assert {key: parsed[key] for key in expected} == expected

    # Prove systemd itself reads each RequiresMountsFor= path whole: a unit
    # that RequiresMountsFor a path loads the mount unit named after that
    # path, and a deliberately broken one there reports itself by name.
    checked = tmp_path / "verify"
    checked.mkdir()
    canaries = [unit_name_for(path) for path in expected["requires_mounts_for"]]
    for name in canaries:
        (checked / name).write_text("[Mount]\nWhat=none\nWhere=/canary-where-does-not-match\nType=none\n")
    # verify reads "FILE:NAME" as FILE loaded under NAME: the only way to
    # pass a name with ':'. The canaries are then found through the unit path.
    (checked / "under-test.mount").write_text(unit.read_text())
    verify = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", "%s:%s" % (checked / "under-test.mount", unit.name)],
        env=dict(os.environ, SYSTEMD_UNIT_PATH="%s:" % checked),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False)
    assert "%s has a bad unit file setting" % unit.name not in verify.stdout, verify.stdout
    for name in canaries:
        assert "%s: Where= setting doesn't match unit name" % name in verify.stdout, verify.stdout


def test_mount_reads_rendered_line_as_the_kernel_needs(tmp_path, private_mount):
    merged, layers, upper, work = _awkward_tree(str(tmp_path))
    for index, layer in enumerate(layers):
        (tmp_path / "lower" / os.path.basename(layer) / ("from-layer-%d" % index)).write_text("x")
    fstab = tmp_path / "fstab"
    fstab.write_text(render_entry(Declaration(merged, layers, upper, work, ["index=off"]), None, ["nofail"]).text + "\n")
    # A private mount namespace: the mount disappears with the shell.
    script = 'mount --fstab "$1" "$2" && touch "$2/written" && cat /proc/self/mountinfo'
    live = overlay_config(mounts_at(parse_mountinfo(private_mount(script, fstab, merged)), merged)[-1])
    assert (live["lowerdir"], live["upperdir"], live["workdir"]) == (layers, upper, work)
    assert os.path.exists(os.path.join(upper, "written"))


# What `mount -V` printed in the Debian 11, 12 and 13 images of the molecule
# persist scenario, and a mount(8) that is not util-linux's.
@pytest.mark.parametrize("output, expected", [
    ("mount from util-linux 2.36.1 (libmount 2.36.1: selinux, smack, btrfs, namespaces, assert, debug)\n",
     False),
    ("mount from util-linux 2.38.1 (libmount 2.38.1: selinux, smack, btrfs, verity, namespaces, assert, debug)\n",
     False),
    ("mount from util-linux 2.41.5 (libmount 2.41.5: selinux, smack, btrfs, verity, namespaces, idmapping, "
     "fd-based-mount, statmount, statx, assert, debug)\n", True),
    ("mount from util-linux 2.39 (libmount 2.39.0: btrfs, namespaces, idmapping, fd-based-mount, assert, debug)",
     True),
    ("BusyBox v1.35.0 (Debian 1:1.35.0-4+b3) multi-call binary.\n", None),
    ("", None),
])
def test_mount_uses_fsconfig(output, expected):
    assert mount_uses_fsconfig(output) is expected


# 16 layers of about 100 bytes: the lower list fits a page, not one fsconfig value.
LONG_LAYERS = ["/srv/" + "x" * 90 + "/layer-%d" % i for i in range(16)]
COMMA_LAYERS = LONG_LAYERS[:3] + ["/srv/with,comma"] + LONG_LAYERS[3:]


@pytest.mark.parametrize("fsconfig", [None, False, True])
def test_long_lists_take_lowerdir_plus_on_every_userland(fsconfig):
    text = format_mount_options(Declaration("/m", LONG_LAYERS, "/u", "/w"), HostFacts(True, fsconfig, False)).text
    assert text.startswith("lowerdir+=%s,lowerdir+=" % LONG_LAYERS[0])


@pytest.mark.parametrize("fsconfig, note", [
    (None, "2.38 and older only$"),
    (False, "which uses mount\\(2\\)\\); after an upgrade to util-linux 2.39 or later, run this task again$"),
])
def test_the_one_page_form_is_kept_where_mount_uses_mount2(fsconfig, note):
    # A comma rules lowerdir+ out (mount(8) would split the value).
    text, notes = format_mount_options(Declaration("/m", COMMA_LAYERS, "/u", "/w"), HostFacts(True, fsconfig, False))
    assert text.startswith("lowerdir=%s:" % LONG_LAYERS[0])
    assert "/srv/with\\,comma:" in text
    assert len(notes) == 1 and re.search(note, notes[0])


@pytest.mark.parametrize("layers, lowerdir_plus, why", [
    (COMMA_LAYERS, True, "a layer path holds a comma"),
    (LONG_LAYERS, False, "this kernel has no lowerdir\\+"),
])
def test_the_one_page_form_is_refused_where_mount_uses_fsconfig(layers, lowerdir_plus, why):
    # util-linux 2.41 (Debian 13) fails to mount such a line: fsconfig() EINVAL.
    with pytest.raises(OverlayError, match="each option value through fsconfig\\(\\).*" + why) as caught:
        format_mount_options(Declaration("/m", layers, "/u", "/w"), HostFacts(lowerdir_plus, True, False)).text
    assert caught.value.details["option_bytes"] > 255


def test_a_form_can_still_be_forced_where_mount_uses_fsconfig():
    assert format_mount_options(Declaration("/m", COMMA_LAYERS, "/u", "/w"), HostFacts(True, True, False), lowerdir_form="legacy").text.startswith(
        "lowerdir=")


@pytest.mark.parametrize("field", ["upperdir", "workdir"])
def test_an_upper_or_work_path_over_one_value_is_refused_where_mount_uses_fsconfig(field):
    dirs = {"upperdir": "/u", "workdir": "/w"}
    dirs[field] = "/" + "d" * 255
    with pytest.raises(OverlayError, match="^%s: .* takes 256 bytes" % field):
        format_mount_options(Declaration("/m", ["/a"], **dirs), HostFacts(True, True, False))
    assert format_mount_options(Declaration("/m", ["/a"], **dirs), HostFacts(True, False, False)).text


# Issue 9: lines the boot must be able to read ------------------------------

def test_octal_escapes_are_decoded_per_byte():
    """A UTF-8 mount point written byte by byte, as util-linux writes it, is recognised."""
    lines = parse("overlay /srv/caf\\303\\251 overlay lowerdir=/a:/b 0 0\n")
    assert [e.file for e in find_entries(lines, u"/srv/caf\u00e9")] == [u"/srv/caf\u00e9"]


@pytest.mark.parametrize("path", ["/srv/a,x-y", "/srv/u,ro", "/srv/a,comment=z", "/srv/a,X-q",
                                  "/srv/a,nofail", "/srv/a,,b", "/srv/a,context=foo"])
@pytest.mark.parametrize("field", ["lowerdir[0]", "upperdir", "workdir"])
def test_comma_pieces_mount_would_take_are_refused(path, field):
    layers = {"lowerdir[0]": [path, "/srv/l2"]}.get(field, ["/srv/l1", "/srv/l2"])
    upper = path if field == "upperdir" else "/up/u"
    work = path if field == "workdir" else "/up/w"
    with pytest.raises(OverlayError) as error:
        render_entry(Declaration("/srv/m", layers, upper, work)).text
    assert error.value.message.startswith(field + ":")
    assert "mount(8)" in error.value.message and "Rename the directory" in error.value.message


@pytest.mark.parametrize("path", ["/srv/a,b", "/srv/a,b/c", "/srv/rw-data,v2"])
def test_plain_comma_pieces_are_kept(path):
    line = render_entry(Declaration("/srv/m", [path, "/srv/l2"], "/up/u", "/up/w")).text
    assert parse_overlay_options(parse(line)[0].entry.mntops)["lowerdir"] == [path, "/srv/l2"]


def test_lookups_stay_right_across_many_edited_lists():
    """The per-list index of find_entries never answers for another list."""
    text = "UUID=1 / ext4 defaults 0 1\n"
    for i in range(40):
        lines = parse(text)
        assert find_entries(lines, "/srv/m%d" % i) == []
        lines, _dups = set_entry(lines, "/srv/m%d" % i, "overlay /srv/m%d overlay lowerdir=/a:/b 0 0" % i)
        assert [e.file for e in find_entries(lines, "/srv//m%d/" % i)] == ["/srv/m%d" % i]
        text = render(lines)
    lines, removed = remove_entries(parse(text), "/srv/m7")
    assert removed == 1 and find_entries(lines, "/srv/m7") == [] and len(find_entries(lines, "/srv/m8")) == 1
    assert len([line for line in parse(text) if line.entry is not None]) == 41


@pytest.mark.parametrize("text", ["a b c d 0 0\n", "a b c d 0 0\r\n", "a b c d 0 0\r", "x\r\ny\r", ""])
def test_a_rendered_text_parses_as_a_fresh_read_would(text):
    lines, _dups = set_entry(parse(text), "/srv/m", "overlay /srv/m overlay lowerdir=/a:/b 0 0")
    rendered = render(lines)
    assert parse(rendered) == _fresh_parse(rendered)
    assert render(remove_entries(parse(rendered), "/srv/m")[0]) == render(remove_entries(_fresh_parse(rendered), "/srv/m")[0])


def _fresh_parse(text):
    from ansible_collections.overlayfs.mounts.plugins.module_utils._formats import fstab_syntax as _fstab
    return _fstab._parse_lines(text)


@pytest.mark.parametrize("text, options, expected", [
    ("none /srv/m overlay defaults 0 2", ["defaults", "lowerdir=/a"], "none /srv/m overlay defaults,lowerdir=/a 0 0"),
    # Blanks, a CR libmount ignores and anything after the sixth field stay as written.
    ("  none\t/srv/m/\toverlay\tdefaults\t1\t2  extra\r", ["x"], "  none\t/srv/m/\toverlay\tx\t0\t0  extra\r"),
    ("none /srv/m overlay", ["lowerdir=/a"], "none /srv/m overlay lowerdir=/a"),
    ("none /srv/m overlay defaults +0 -0", None, "none /srv/m overlay defaults +0 -0"),
    ("none /srv/m overlay defaults 3", None, "none /srv/m overlay defaults 0"),
    # New options are escaped as render_entry escapes a field.
    ("a\\040b /srv/m overlay defaults 0 0", ["lowerdir=/my dir\\x", 'x-systemd.requires-mounts-for="/my dir"'],
     'a\\040b /srv/m overlay lowerdir=/my\\040dir\\134x,x-systemd.requires-mounts-for="/my\\040dir" 0 0'),
])
def test_edit_entry_changes_the_options_and_the_numbers_only(text, options, expected):
    edited = edit_entry(text, options)
    assert edited == expected
    entry = parse(edited + "\n")[0].entry
    assert (entry.freq, entry.passno) == (0, 0)
    if options is not None:
        assert entry.mntops == ",".join(options)


def test_edit_entry_refuses_a_line_that_is_no_entry():
    with pytest.raises(OverlayError, match="not an entry line"):
        edit_entry("none /srv/m", ["x"])
