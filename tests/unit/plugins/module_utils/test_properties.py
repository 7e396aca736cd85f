# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Property-based round trips of every pure encoder and parser.

Deterministic: ``derandomize=True`` derives the examples from the test
itself, so CI and a laptop run the same bounded set; no example database.
"""

import shutil
import subprocess

import pytest

hypothesis = pytest.importorskip("hypothesis")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from ansible_collections.overlayfs.mounts.plugins.module_utils._persist import fstab_backend as _backend_fstab
from ansible_collections.overlayfs.mounts.plugins.module_utils._formats import fstab_syntax as _fstab
from ansible_collections.overlayfs.mounts.plugins.module_utils._formats import mount_data as _optstring
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.layers import requires_mounts_for
from ansible_collections.overlayfs.mounts.plugins.module_utils._formats import unit_syntax as _systemd  # noqa: E402
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.declaration import Declaration  # noqa: E402
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError  # noqa: E402
from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.escape import (  # noqa: E402
    decode_octal,
    encode_octal,
    escape_layer,
    join_layers,
    split_layers,
    split_options,
    unescape_layer,
)
from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.mountinfo import overlay_config, parse  # noqa: E402
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.overlay_options import (  # noqa: E402
    OPTION_VALUES,
    canonical_options,
)

PROPERTY = settings(derandomize=True, max_examples=150, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow])

# Characters that break parsers: separators of every format we write, quotes,
# escapes, blanks, and a few non-ASCII ones.
AWKWARD = " \t,:=\\\"'%#;$\u00e9\u00a0\u2028x-yro"
name_char = st.sampled_from(AWKWARD) | st.characters(
    min_codepoint=0x21, max_codepoint=0x2FF, blacklist_characters="/\x7f")
component = st.text(name_char, min_size=1, max_size=12).filter(lambda c: c not in (".", ".."))
abs_path = st.lists(component, min_size=1, max_size=4).map(lambda parts: "/" + "/".join(parts))
any_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=60)


@PROPERTY
@given(any_text)
def test_layer_escape_round_trip(path):
    assert unescape_layer(escape_layer(path)) == path


@PROPERTY
@given(st.lists(abs_path, min_size=1, max_size=5), st.lists(abs_path, max_size=3))
def test_lower_list_round_trip(lowers, data):
    value = join_layers(lowers) + "".join("::" + escape_layer(d) for d in data)
    assert split_layers(value) == (lowers, data)


@PROPERTY
@given(any_text)
def test_octal_round_trip(text):
    assert decode_octal(encode_octal(text)) == text


@PROPERTY
@given(st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=20))
def test_octal_escapes_are_bytes(text):
    """Every byte written as \\NNN, as the kernel and util-linux do, decodes to the text."""
    escaped = "".join("\\%03o" % b for b in bytearray(text.encode("utf-8")))
    assert decode_octal(escaped) == text


@PROPERTY
@given(st.lists(st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters=","),
                        min_size=1, max_size=15), max_size=6))
def test_split_options_round_trip(options):
    options = [o for o in options if '"' not in o and not o.endswith("\\")]
    assert split_options(",".join(options)) == options


@PROPERTY
@given(st.lists(st.sampled_from([n if v is None else "%s=%s" % (n, v[0])
                                 for n, v in OPTION_VALUES if n != "fsync"]),
                max_size=6, unique_by=lambda o: o.partition("=")[0]))
def test_canonical_options_idempotent(options):
    try:
        once = canonical_options(options)
    except OverlayError:
        return
    assert canonical_options(once) == once
    assert sorted(once) == sorted(canonical_options(list(reversed(options))))


fstab_text = st.lists(
    st.tuples(st.sampled_from(["", "# comment", "UUID=1 / ext4 defaults 0 1", "  tmpfs /tmp tmpfs x 0 0",
                               "bad", "\t/dev/sdb\t/srv\txfs\tnofail", "\\303\\251 /x none bind 0 0"]),
              st.sampled_from(["\n", "\r\n", "\r", ""])),
    max_size=6).map(lambda pairs: "".join(a + b for a, b in pairs))


@PROPERTY
@given(fstab_text | any_text)
def test_fstab_parse_render_exact(text):
    assert _fstab.render(_fstab.parse(text)) == text


DECL = Declaration("/srv/merged", ["/srv/l1", "/srv/l2"], "/srv/u", "/srv/w")


@PROPERTY
@given(fstab_text | any_text.filter(lambda t: "merged" not in t))
def test_fstab_add_then_remove_is_identity(text):
    added, _info = _backend_fstab.edit_fstab(text, DECL, True)
    assert _fstab.find_entries(_fstab.parse(added), DECL.path)
    again, _info = _backend_fstab.edit_fstab(added, DECL, True)
    assert again == added
    removed, info = _backend_fstab.edit_fstab(added, DECL, False)
    assert info["removed"] == 1
    assert removed == text


def _renders(fn, path, lowerdir, upperdir, workdir, options, extra_options):
    """The text ``fn`` (``render_entry``, ``render_unit``) makes of this overlay, or None when refused."""
    try:
        return fn(Declaration(path, lowerdir, upperdir, workdir, options), None, extra_options).text
    except OverlayError:
        return None


@PROPERTY
@given(abs_path, st.lists(abs_path, min_size=2, max_size=3, unique=True), st.booleans())
def test_fstab_entry_round_trip(path, layers, writable):
    upper, work = ("/up/u" + layers[0], "/up/w" + layers[0]) if writable else (None, None)
    line = _renders(_fstab.render_entry, path, layers, upper, work, (), ["nofail"])
    if line is None:
        return
    entry = _fstab.parse(line + "\n")[0].entry
    assert entry.file == path
    parsed = _optstring.parse_overlay_options(entry.mntops)
    assert (parsed["lowerdir"], parsed["upperdir"], parsed["workdir"]) == (layers, upper, work)
    assert parsed["extra_options"] == ["nofail"]
    assert set(parsed["requires_mounts_for"]) == set(requires_mounts_for(layers, upper, work))


@PROPERTY
@given(abs_path, st.lists(abs_path, min_size=2, max_size=3, unique=True))
def test_unit_round_trip(path, layers):
    text = _renders(_systemd.render_unit, path, layers, "/up/u", "/up/w", ["index=off"], ["nofail"])
    if text is None:
        return
    parsed = _systemd.parse_unit(text)
    assert parsed["lowerdir"] == layers
    assert (parsed["upperdir"], parsed["workdir"]) == ("/up/u", "/up/w")
    assert parsed["options"] == ["index=off"] and parsed["extra_options"] == ["nofail"]
    assert parsed["managed"] is True
    assert set(parsed["requires_mounts_for"]) == set(layers + ["/up/u", "/up/w"])


SYSTEMD_ESCAPE = shutil.which("systemd-escape")


@pytest.mark.skipif(SYSTEMD_ESCAPE is None, reason="systemd-escape is not installed")
@settings(derandomize=True, max_examples=25, deadline=None, database=None)
@given(st.lists(abs_path, min_size=1, max_size=20))
def test_unit_names_match_systemd_escape(paths):
    ours = []
    for path in paths:
        try:
            ours.append(_systemd.escape_path(path) + ".mount")  # systemd-escape does not hash long names
        except OverlayError:
            ours.append(None)
    wanted = [p for p, name in zip(paths, ours) if name is not None]
    if not wanted:
        return
    out = subprocess.run([SYSTEMD_ESCAPE, "--path", "--suffix=mount", "--"] + wanted,
                         stdout=subprocess.PIPE, check=True).stdout.decode("utf-8")
    assert out.split() == [n for n in ours if n is not None]


def _kernel_escape(value, specials=" \t\n\\,"):
    """What the kernel's seq_show_option does to an overlay path in mountinfo."""
    return "".join("\\%03o" % ord(c) if c in specials else c for c in value)


@PROPERTY
@given(abs_path, st.lists(abs_path, min_size=1, max_size=3), abs_path, abs_path,
       st.sampled_from(["", ',context="system_u:object_r:x:s0:c1,c2"', ",index=off"]))
def test_mountinfo_overlay_round_trip(target, lowers, upper, work, tail):
    """Layers with quotes, commas and blanks come back as mounted, with the options after them."""
    lower = ":".join(_kernel_escape(escape_layer(p)) for p in lowers)
    line = "%d 1 0:40 / %s rw,relatime shared:1 - overlay overlay rw,lowerdir=%s,upperdir=%s,workdir=%s%s" % (
        77, _kernel_escape(target, " \t\n\\"), lower, _kernel_escape(escape_layer(upper)),
        _kernel_escape(escape_layer(work)), tail)
    entries = parse(line + "\n")
    assert [e.mount_point for e in entries] == [target]
    cfg = overlay_config(entries[0])
    assert (cfg["lowerdir"], cfg["upperdir"], cfg["workdir"]) == (lowers, upper, work)
    assert cfg["options"] == ([tail[1:]] if tail else [])
