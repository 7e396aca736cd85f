# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

import os
import shutil
import subprocess

import pytest

from ansible_collections.overlayfs.mounts.plugins.module_utils._model.declaration import Declaration
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError
from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.mountinfo import (
    overlay_config,
    parse as parse_mountinfo,
    mounts_at,
)
from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.unit_syntax import (
    MANAGED_MARKER,
    UNIT_NAME_MAX,
    escape_path,
    hash_long_name,
    is_hashed_name,
    parse_unit,
    render_unit,
    unit_name_for,
)

# Printed by `systemd-escape --path --suffix=mount PATH` (systemd 252).
ESCAPED = [
    ("/", "-.mount"),
    ("//", "-.mount"),
    ("/srv", "srv.mount"),
    ("/srv/", "srv.mount"),
    ("/srv//a//b/", "srv-a-b.mount"),
    ("/srv/./a", "srv-a.mount"),
    ("/./srv/.", "srv.mount"),
    ("/srv/my dir/m", "srv-my\\x20dir-m.mount"),
    ("/srv/a-b", "srv-a\\x2db.mount"),
    ("/srv/-", "srv-\\x2d.mount"),
    ("/srv/--x--", "srv-\\x2d\\x2dx\\x2d\\x2d.mount"),
    ("/srv/a.b", "srv-a.b.mount"),
    ("/.hidden", "\\x2ehidden.mount"),
    ("/srv/.hidden", "srv-.hidden.mount"),
    ("/.hidden/.x", "\\x2ehidden-.x.mount"),
    ("/srv/\u00fc", "srv-\\xc3\\xbc.mount"),
    ("/srv/\u65e5\u672c", "srv-\\xe6\\x97\\xa5\\xe6\\x9c\\xac.mount"),
    ("/srv/emoji\U0001f600", "srv-emoji\\xf0\\x9f\\x98\\x80.mount"),
    ("/srv/a\\b", "srv-a\\x5cb.mount"),
    ("/srv/x:y", "srv-x:y.mount"),
    ("/srv/x,y", "srv-x\\x2cy.mount"),
    ("/srv/t\tab", "srv-t\\x09ab.mount"),
    ("/srv/n\nl", "srv-n\\x0al.mount"),
    ("/srv/%n", "srv-\\x25n.mount"),
    ("/srv/~user", "srv-\\x7euser.mount"),
    ("/srv/a_b", "srv-a_b.mount"),
    ("/srv/@{x}", "srv-\\x40\\x7bx\\x7d.mount"),
    ("/srv/'q'\"", "srv-\\x27q\\x27\\x22.mount"),
    ("/a b/c d/", "a\\x20b-c\\x20d.mount"),
    ("/srv/UPPER9", "srv-UPPER9.mount"),
    ("/srv/a+b=c", "srv-a\\x2bb\\x3dc.mount"),
    ("/srv/ x ", "srv-\\x20x\\x20.mount"),
    ("/srv/\x7f\x01", "srv-\\x7f\\x01.mount"),
    ("/srv/not-utf8-\udcff", "srv-not\\x2dutf8\\x2d\\xff.mount"),  # the byte 0xff, via os.fsdecode
]


def unit_text(path, lowerdir, upperdir=None, workdir=None, options=(), extra_options=(), datadir=(),
              description=None, working_directory=None, requires=None):
    """The unit ``render_unit`` makes of the overlay these arguments describe."""
    return render_unit(Declaration(path, lowerdir, upperdir, workdir, options, datadir), None, extra_options,
                       description, working_directory, requires).text


@pytest.mark.parametrize("path, expected", ESCAPED)
def test_unit_name_for(path, expected):
    assert unit_name_for(path) == expected
    assert escape_path(path) + ".mount" == expected


@pytest.mark.skipif(shutil.which("systemd-escape") is None, reason="systemd-escape is not installed")
@pytest.mark.parametrize("path", [path for path, _name in ESCAPED] + [
    "/" + "a" * 249, "/" + "b" * 255, "/x/" + "-" * 60, "/\u00e9t\u00e9/\u00df",
])
def test_unit_name_matches_systemd_escape(path):
    printed = subprocess.run(["systemd-escape", "--path", "--suffix=mount", "--", os.fsencode(path)],
                             stdout=subprocess.PIPE, check=True).stdout
    # systemd-escape prints the escaped path whole; unit_name_for hashes a long one, as systemd names it.
    assert escape_path(path) + ".mount" == os.fsdecode(printed).rstrip("\n")


@pytest.mark.parametrize("path, message", [
    ("srv/m", "not an absolute path"),
    ("", "not an absolute path"),
    ("/srv/../m", "contains '..'"),
    ("/..", "contains '..'"),
    ("/" + "a" * 256, "longer than 255 bytes"),
])
def test_unit_name_for_refuses(path, message):
    with pytest.raises(OverlayError, match=message):
        unit_name_for(path)


# Names past 255 bytes, as systemd 252 names them: each row is what
# systemd-fstab-generator wrote for an fstab line with that mount point
# (SYSTEMD_FSTAB=FILE /lib/systemd/system-generators/systemd-fstab-generator
# OUT OUT OUT, the unit file's name matched to its Where=). systemd-escape
# does not hash; the generator, like PID 1, names units through
# unit_name_from_path, which hashes (unit_name_hash_long).
HASHED = [
    ("/" + "a" * 248, "a" * 248 + ".mount"),
    ("/" + "a" * 249, "a" * 249 + ".mount"),  # 255 bytes: the longest name kept
    ("/" + "a" * 250, "a" * 232 + "_506d9c632ced75cd.mount"),
    ("/" + "a" * 251, "a" * 232 + "_4732d5d167ca55ca.mount"),
    ("/" + "a" * 255, "a" * 232 + "_5c89213ca648204e.mount"),
    ("/srv/" + "d" * 120 + "/" + "e" * 120, "srv-" + "d" * 120 + "-" + "e" * 120 + ".mount"),
    ("/srv/my dir/" + "x" * 240, "srv-my\\x20dir-" + "x" * 218 + "_e0a01fc592ade12b.mount"),
    ("/" + "b" * 229 + " tail", "b" * 229 + "\\x20tail.mount"),
    ("/" + "c" * 230 + " tail", "c" * 230 + "\\x20tail.mount"),
    # Cut by bytes, inside an escape: "\xc3\" and then the hash.
    ("/.hidden/" + "\u00e9" * 100, "\\x2ehidden-" + "\\xc3\\xa9" * 27 + "\\xc3\\_57518463cddd775c.mount"),
    ("/.h/" + "f" * 250, "\\x2eh-" + "f" * 226 + "_95ce7340cfbd4443.mount"),
    ("/" + "-" * 63, "\\x2d" * 58 + "_54a904bdcdf00dfa.mount"),
    ("/" + "-" * 100, "\\x2d" * 58 + "_d1eb11afd5cf9411.mount"),
    ("/srv/" + "%" * 80, "srv-" + "\\x25" * 57 + "_f4e5a26b39690785.mount"),
    ("/" + "x" * 200 + "\\" + "y" * 40, "x" * 200 + "\\x5c" + "y" * 40 + ".mount"),
    ("/" + "g" * 231 + "/\u65e5", "g" * 231 + "-\\xe6\\x97\\xa5.mount"),
    ("/" + "h" * 226 + "\u65e5\u672c", "h" * 226 + "\\xe6\\x_eae9a285b97623b6.mount"),
    ("/" + "i" * 255 + "/" + "j" * 255, "i" * 232 + "_d1f2e135c4683a21.mount"),
    ("/" + "/".join(["k" * 200] * 20), "k" * 200 + "-" + "k" * 31 + "_518aa307853ebc02.mount"),
]


@pytest.mark.parametrize("path, expected", HASHED)
def test_unit_name_for_hashes_long_names_as_systemd(path, expected):
    name = unit_name_for(path)
    assert name == expected
    assert len(name) <= UNIT_NAME_MAX
    assert is_hashed_name(name) == (len(escape_path(path) + ".mount") > UNIT_NAME_MAX)


def _fstab_generator():
    for directory in ("/usr/lib/systemd/system-generators", "/lib/systemd/system-generators"):
        path = os.path.join(directory, "systemd-fstab-generator")
        if os.access(path, os.X_OK):
            return path
    return None


def _generator_names(tmp_path, paths):
    """``{Where=: unit file name}`` of what the real fstab generator makes of an fstab with ``paths``."""
    out = tmp_path / "out"
    out.mkdir()
    fstab = tmp_path / "fstab"
    escaped = [p.replace("\\", "\\134").replace(" ", "\\040").replace("\t", "\\011") for p in paths]
    fstab.write_bytes("".join("overlay %s overlay lowerdir=/x:/y 0 0\n" % p for p in escaped).encode("utf-8"))
    subprocess.run([_fstab_generator(), str(out), str(out), str(out)], check=True,
                   env=dict(os.environ, SYSTEMD_FSTAB=str(fstab)), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    names = {}
    for unit in out.glob("*.mount"):
        for line in unit.read_text(encoding="utf-8").splitlines():
            if line.startswith("Where="):
                names[line[len("Where="):].replace("%%", "%")] = unit.name
    return names


@pytest.mark.skipif(_fstab_generator() is None, reason="systemd-fstab-generator is not installed")
def test_unit_names_match_the_fstab_generator(tmp_path):
    """The table above, and more lengths around the limit, against the installed systemd."""
    paths = [path for path, _name in HASHED if "//" not in path]
    paths += ["/srv/" + "n" * n for n in range(240, 256)] + ["/srv/" + "\u00fc" * n for n in range(35, 45)]
    paths += ["/srv/s p/" + "q" * n + " r" for n in range(220, 240, 3)]
    names = _generator_names(tmp_path, paths)
    assert {path: unit_name_for(path) for path in paths} == {path: names.get(path) for path in paths}


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_accepts_a_hashed_unit(tmp_path):
    """systemd checks that a mount unit's name is the one its Where= gives: a hashed one passes."""
    merged = "/srv/" + "m" * 250
    name = unit_name_for(merged)
    assert is_hashed_name(name)
    unit = tmp_path / name
    unit.write_text(render_unit(Declaration(merged, ["/a", "/b"])).text)
    verify = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False)
    assert "doesn't match unit name" not in verify.stdout and "bad unit file setting" not in verify.stdout, verify.stdout
    wrong = tmp_path / (escape_path(merged)[:200] + ".mount")
    wrong.write_text(unit.read_text())
    verify = subprocess.run(["systemd-analyze", "verify", "--man=no", str(wrong)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False)
    assert "Where= setting doesn't match unit name" in verify.stdout, verify.stdout


def test_hash_long_name_keeps_short_names():
    assert hash_long_name("srv.mount") == "srv.mount"
    assert not is_hashed_name("srv-x_0123456789abcdeg.mount")
    assert is_hashed_name("a" * 232 + "_506d9c632ced75cd.mount")


def test_render_unit_text():
    assert render_unit(Declaration("/srv/my dir/m/", ["/l/top", "/l/it's", "/l/a,b"], "/rw/up per", "/rw/work", ["index=off"]), None, ["nofail"]).text == (
        MANAGED_MARKER + "\n"
        "[Unit]\n"
        "Description=Overlay mount at /srv/my dir/m\n"
        "RequiresMountsFor=/l/top\n"
        "RequiresMountsFor=\"/l/it's\"\n"
        "RequiresMountsFor=/l/a,b\n"
        "RequiresMountsFor=\"/rw/up per\"\n"
        "RequiresMountsFor=/rw/work\n"
        "\n"
        "[Mount]\n"
        "What=overlay\n"
        "Where=/srv/my dir/m\n"
        "Type=overlay\n"
        "Options=lowerdir=/l/top:/l/it's:/l/a\\,b,upperdir=/rw/up per,workdir=/rw/work,index=off,nofail\n"
        "\n"
        "[Install]\n"
        "WantedBy=local-fs.target\n"
    )


ROUND_TRIPS = [
    dict(path="/srv/m", lowerdir=["/a", "/b"]),
    dict(path="/srv/m", lowerdir=["/a"], upperdir="/u", workdir="/w", options=["index=off", "volatile"],
         extra_options=["nofail", "x-systemd.device-timeout=5s"]),
    dict(path="/srv/my dir-\u00fc", lowerdir=["/sp ace", "/t\tab", "/co,mma", "/co:lon", "/it's", "/b\\s",
                                              "/pct%n", "/end\\"],
         upperdir="/u p\\", workdir="/w%%", description="Layers 50% done: \"quoted\" \\ back"),
    dict(path="/m", lowerdir=["/l"], datadir=["/d1", "/d 2"], options=["metacopy=on", "redirect_dir=on"]),
    dict(path="/m", lowerdir=["/a", "/a"], extra_options=['context="u:r:t:s0:c1,c2"']),
    dict(path="/srv/nb\u00a0sp", lowerdir=["/v\x0btab", "/nb\u00a0sp\u00a0", "/ls\u2028ep"]),
]


@pytest.mark.parametrize("kwargs", ROUND_TRIPS)
def test_parse_unit_round_trip(kwargs):
    parsed = parse_unit(unit_text(**kwargs))
    layers = list(kwargs["lowerdir"]) + list(kwargs.get("datadir", ())) + [
        p for p in (kwargs.get("upperdir"), kwargs.get("workdir")) if p]
    assert parsed == {
        "managed": True,
        "description": kwargs.get("description", "Overlay mount at %s" % kwargs["path"]),
        "what": "overlay",
        "where": kwargs["path"],
        "type": "overlay",
        "working_directory": None,
        "wanted_by": ["local-fs.target"],
        "lowerdir": kwargs["lowerdir"],
        "datadir": kwargs.get("datadir", []),
        "upperdir": kwargs.get("upperdir"),
        "workdir": kwargs.get("workdir"),
        "options": kwargs.get("options", []),
        "extra_options": kwargs.get("extra_options", []),
        "requires_mounts_for": sorted(set(layers), key=layers.index),
    }


def test_a_drop_in_overrides_the_main_file_and_a_broken_line_ends_its_file():
    main = MANAGED_MARKER + "\n[Mount]\nWhere=/m\nType=overlay\nOptions=lowerdir=/a:/b\n"
    drop_in = "[Mount]\nOptions=lowerdir=/c:/d\n[Broken\nOptions=lowerdir=/e:/f\n"
    problems = []
    parsed = parse_unit(main, [("/u/m.mount", main), ("/u/m.mount.d/x.conf", drop_in)], problems)
    assert parsed["managed"] and parsed["lowerdir"] == ["/c", "/d"]
    assert len(problems) == 1 and problems[0].startswith("/u/m.mount.d/x.conf, line 3:")
    with pytest.raises(OverlayError, match="line 3"):
        parse_unit(main, [("/u/m.mount", main), ("/u/m.mount.d/x.conf", drop_in)])


@pytest.mark.parametrize("text, expected", [
    ("", dict(managed=False)),
    ("[Mount]\nWhat=overlay\nWhere=/m\nOptions=lowerdir=/a:/b\n",
     dict(managed=False, what="overlay", where="/m", lowerdir=["/a", "/b"])),
    (MANAGED_MARKER + "\r\n[Unit]\r\nDescription=x\r\n", dict(managed=True, description="x")),
    ("# Managed by someone else\n[Unit]\n", dict(managed=False)),
    ("[Unit]\n; comment\n# comment\nRequiresMountsFor=/a \"/b c\"\nRequiresMountsFor=/d\n",
     dict(requires_mounts_for=["/a", "/b c", "/d"])),
    # systemd's config_parse_unit_requires_mounts_for only adds: an empty assignment resets nothing.
    ("[Unit]\nRequiresMountsFor=/a\nRequiresMountsFor=\nRequiresMountsFor=/b\n", dict(requires_mounts_for=["/a", "/b"])),
    ("[Unit]\nRequiresMountsFor=\"/unbalanced\n", dict()),
    ("[Unit]\nRequiresMountsFor=/a\n[Mount]\nOptions=lowerdir=/a,x-systemd.requires-mounts-for=/a "
     "/z\n", dict(lowerdir=["/a"], requires_mounts_for=["/a", "/z"])),
    ("[Mount]\nWhere=/one\nWhere=/two%%\n  Type = overlay  \n", dict(where="/two%", type="overlay")),
    ("[Install]\nWantedBy=a.target b.target\nWantedBy=c.target\n",
     dict(wanted_by=["a.target", "b.target", "c.target"])),
    ("Where=/outside/any/section\n", dict()),
    ("[Mount]\nOptions=lowerdir+=0,lowerdir+=1\nWorkingDirectory=/var/lib/links\n",
     dict(lowerdir=["0", "1"], working_directory="/var/lib/links")),
])
def test_parse_unit_hand_written(text, expected):
    full = {
        "managed": False, "description": None, "what": None, "where": None, "type": None, "wanted_by": [],
        "working_directory": None,
        "lowerdir": [], "datadir": [], "upperdir": None, "workdir": None, "options": [],
        "extra_options": [], "requires_mounts_for": [],
    }
    full.update(expected)
    assert parse_unit(text) == full


@pytest.mark.parametrize("kwargs, message", [
    (dict(path="relative", lowerdir=["/a", "/b"]), "not an absolute path"),
    (dict(path="/srv/m ", lowerdir=["/a", "/b"]), "Where=: .* ends with whitespace"),
    (dict(path="/srv/m\\", lowerdir=["/a", "/b"]), "Where=: .* backslash"),
    (dict(path="/srv/m\n", lowerdir=["/a", "/b"]), "line break"),
    (dict(path="/srv/m", lowerdir=["/a", "/b\nc"]), "lowerdir\\[1\\]: .* line break"),
    (dict(path="/srv/m", lowerdir=["/a", '/b"c']), "double quote"),
    (dict(path="/srv/m", lowerdir=["/a", "/b "]), "Options=: .* ends with whitespace"),
    (dict(path="/srv/m", lowerdir=["/a"], extra_options=["x\\"]), "Options=: .* backslash"),
    (dict(path="/srv/m", lowerdir=["/a", "/b"], description=" padded"), "Description=: .* whitespace"),
    (dict(path="/srv/m", lowerdir=["/a", "/b"], description="two\nlines"), "Description=: .* line break"),
    (dict(path="/srv/m", lowerdir=["/a"], options=["nofail"]), "not an overlay mount option"),
])
def test_render_unit_refuses(kwargs, message):
    with pytest.raises(OverlayError, match=message):
        unit_text(**kwargs)


# Awkward, but allowed in a unit (a backslash is fine here, unlike in fstab).
AWKWARD_LAYERS = ["sp ace", "t\tab", "co,mma", "co:lon", "it's", "back\\slash", "\u00fcn\u00efc\u00f6de",
                  "per%cent%n", "eq=ual", "v\x0btab", "nb\u00a0sp\u00a0", "trailing-back\\"]
AWKWARD_MOUNT_POINTS = ["merged", "mer ged-dash", "d\u00e9j\u00e0 vu", "co:lon,comma", "back\\slash%n",
                        ".hidden", "q\"uote"]


def _awkward_tree(root, mount_point):
    layers = [os.path.join(root, "lower", name) for name in AWKWARD_LAYERS]
    upper = os.path.join(root, "rw dir", "up,per")
    work = os.path.join(root, "rw dir", "wo:rk")
    merged = os.path.join(root, "mnt", mount_point)
    for path in layers + [upper, work, merged]:
        os.makedirs(path)
    return merged, layers, upper, work


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
@pytest.mark.parametrize("mount_point", AWKWARD_MOUNT_POINTS)
def test_systemd_analyze_verify_accepts_rendered_unit(tmp_path, mount_point):
    merged, layers, upper, work = _awkward_tree(str(tmp_path), mount_point)
    name = unit_name_for(merged)
    units = tmp_path / "units"
    units.mkdir()
    # A unit that RequiresMountsFor a path loads the mount unit named after
    # that path: a deliberately broken one there proves systemd read the path
    # whole, because it then reports itself by name.
    canaries = [unit_name_for(path) for path in layers + [upper, work]]
    for canary in canaries:
        (units / canary).write_text("[Mount]\nWhat=none\nWhere=/canary-where-does-not-match\nType=none\n")
    # verify reads "FILE:NAME" as FILE loaded under NAME: the only way to
    # pass a name with ':'. The canaries are then found through the unit path.
    (units / "under-test.mount").write_text(
        render_unit(Declaration(merged, layers, upper, work, ["index=off"]), None, ["nofail"]).text)
    verify = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", "%s:%s" % (units / "under-test.mount", name)],
        env=dict(os.environ, SYSTEMD_UNIT_PATH="%s:" % units),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False)
    # Where= read differently from the name would be "a bad unit file setting".
    assert "%s has a bad unit file setting" % name not in verify.stdout, verify.stdout
    for canary in canaries:
        assert "%s: Where= setting doesn't match unit name" % canary in verify.stdout, verify.stdout


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verify_catches_a_wrong_name(tmp_path):
    """The check above would catch a unit name systemd disagrees with."""
    unit = tmp_path / "srv-other.mount"
    unit.write_text(render_unit(Declaration("/srv/m", ["/a", "/b"])).text)
    verify = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False)
    assert "srv-other.mount has a bad unit file setting" in verify.stdout


def test_mount_reads_unit_options_as_the_kernel_needs(tmp_path, private_mount):
    """Run what systemd runs for the unit: mount What Where -t Type -o Options."""
    merged, layers, upper, work = _awkward_tree(str(tmp_path), "mer ged")
    # mountinfo shows a \v raw, and _mountinfo.parse splits lines at it.
    layers = [layer for layer in layers if "\x0b" not in layer]
    text = render_unit(Declaration(merged, layers, upper, work, ["index=off"])).text
    unit = parse_unit(text)
    # Options= exactly as written, with the one thing systemd resolves: %% is %.
    options = next(line for line in text.split("\n") if line.startswith("Options="))
    options = options[len("Options="):].replace("%%", "%")
    script = 'mount "$1" "$2" -t "$3" -o "$4" && cat /proc/self/mountinfo'
    mountinfo = private_mount(script, unit["what"], unit["where"], unit["type"], options)
    live = overlay_config(mounts_at(parse_mountinfo(mountinfo), merged)[-1])
    assert (live["lowerdir"], live["upperdir"], live["workdir"]) == (layers, upper, work)
