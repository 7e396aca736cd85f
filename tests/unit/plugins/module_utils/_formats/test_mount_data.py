# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The overlay's mount option string (_formats.mount_data): escaping, checks, limits, read-back. Pure."""

import re

import pytest

from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.declaration import Declaration
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.facts import HostFacts
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.layers import requires_mounts_for
from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.mount_data import (
    MOUNT_DATA_MAX,
    REQUIRES_MOUNTS_FOR,
    VALUE_MAX,
    check_path,
    format_mount_options,
    lower_list,
    overlay_data,
    parse_overlay_options,
    requires_mounts_for_option,
    split_unit_words,
)


def rendered(lowerdir, upperdir=None, workdir=None, options=(), extra_options=(), datadir=(), lowerdir_form="auto",
             lowerdir_plus=True, relative_layers=False, fsconfig=None):
    """``format_mount_options`` of the overlay these arguments describe, on a host with these facts."""
    return format_mount_options(Declaration("/m", lowerdir, upperdir, workdir, options, datadir),
                                HostFacts(lowerdir_plus, fsconfig, False), extra_options, lowerdir_form,
                                relative_layers)


def fmt(*args, **kwargs):
    """The option string alone of :func:`rendered`."""
    return rendered(*args, **kwargs).text


def _size(text):
    return len(text.encode("utf-8", "surrogateescape"))


def _layers(count, length, stem="/l"):
    """``count`` distinct absolute layer paths of exactly ``length`` bytes each."""
    return [("%s%04d" % (stem, i)).ljust(length, "x") for i in range(count)]


# Escaping --------------------------------------------------------------------

@pytest.mark.parametrize("lowerdir, datadir, expected", [
    (["/a", "/b"], [], "/a:/b"),
    (["/a:b"], [], "/a\\:b"),
    (["/c,d"], [], "/c\\,d"),
    (["/e\\f"], [], "/e\\\\f"),
    (["/a:b", "/c,d", "/e\\f"], [], "/a\\:b:/c\\,d:/e\\\\f"),
    (["/a"], ["/d1"], "/a::/d1"),
    (["/a"], ["/d1", "/d:2"], "/a::/d1::/d\\:2"),
    (["/sp ace", "/café"], [], "/sp ace:/café"),
])
def test_lower_list_escapes_backslash_colon_and_comma(lowerdir, datadir, expected):
    assert lower_list(lowerdir, datadir) == expected


@pytest.mark.parametrize("args, kwargs, expected", [
    ((["/a", "/b"],), {}, "lowerdir=/a:/b"),
    ((["/a"], "/u", "/w"), {}, "lowerdir=/a,upperdir=/u,workdir=/w"),
    ((["/a"], "/u:1", "/w,2", ["index=off", "volatile"]), {},
     "lowerdir=/a,upperdir=/u\\:1,workdir=/w\\,2,index=off,volatile"),
    ((["/a"], None, None, ["redirect_dir=on"], ["/d"]), {}, "lowerdir=/a::/d,redirect_dir=on"),
    # One value per layer: taken literally, so nothing in a layer is escaped.
    ((["/a:b", "/c,d"], "/u:1", "/w"), {"datadir": ["/d:2"], "one_by_one": True},
     "lowerdir+=/a:b,lowerdir+=/c,d,datadir+=/d:2,upperdir=/u\\:1,workdir=/w"),
    ((["/a"],), {"one_by_one": True}, "lowerdir+=/a"),
])
def test_overlay_data_writes_both_forms(args, kwargs, expected):
    assert overlay_data(*args, **kwargs) == expected


# Checks that name the field --------------------------------------------------

@pytest.mark.parametrize("field, path, relative_ok, error", [
    ("path", "/srv/ok", False, None),
    ("lowerdir[0]", "rel/x", True, None),
    ("path", 5, False, "^path: 5 is not an absolute path$"),
    ("upperdir", None, False, "^upperdir: None is not an absolute path$"),
    ("lowerdir[0]", "rel/x", False, "^lowerdir\\[0\\]: 'rel/x' is not an absolute path$"),
    ("lowerdir[2]", "", True, "^lowerdir\\[2\\]: '' is not an absolute path$"),
    ("workdir", "/a\nb", False, "^workdir: '/a\\\\nb' contains a line break"),
    ("datadir[0]", "rel\rb", True, "^datadir\\[0\\]: 'rel\\\\rb' contains a line break"),
])
def test_check_path(field, path, relative_ok, error):
    if error is None:
        check_path(field, path, relative_ok)
    else:
        with pytest.raises(OverlayError, match=error):
            check_path(field, path, relative_ok)


@pytest.mark.parametrize("kwargs, error", [
    ({"lowerdir": []}, "^lowerdir: at least one lower directory is required"),
    ({"upperdir": "/u"}, "^upperdir and workdir go together"),
    ({"workdir": "/w"}, "^upperdir and workdir go together"),
    ({"lowerdir": ["/a", "b"]}, "^lowerdir\\[1\\]: 'b' is not an absolute path"),
    ({"datadir": ["/d", "x"]}, "^datadir\\[1\\]: 'x' is not an absolute path"),
    ({"upperdir": "u", "workdir": "/w"}, "^upperdir: 'u' is not an absolute path"),
    ({"lowerdir": ["/a\nb"]}, "^lowerdir\\[0\\]: .* contains a line break"),
    ({"lowerdir": ['/a"b']}, "^lowerdir\\[0\\]: .* contains a double quote"),
    ({"upperdir": '/u"', "workdir": "/w"}, "^upperdir: .* contains a double quote"),
    ({"lowerdir": ["/a,ro"]}, "^lowerdir\\[0\\]: '/a,ro' has the piece 'ro' after a comma"),
    ({"lowerdir": ["/a,"]}, "^lowerdir\\[0\\]: '/a,' has the piece '' after a comma"),
    ({"datadir": ["/d,nofail"]}, "^datadir\\[0\\]: .* the piece 'nofail'"),
    ({"upperdir": "/u,a=b", "workdir": "/w"}, "^upperdir: .* the piece 'a=b'"),
    ({"upperdir": "/u", "workdir": "/w,X-Foo"}, "^workdir: .* the piece 'X-Foo'"),
    ({"options": ["nofail"]}, "^options: 'nofail' is not an overlay mount option"),
    ({"options": ["index=off,metacopy=on"]}, "^options: 'index=off,metacopy=on' is not one mount option"),
    ({"options": [5]}, "^options: 5 is not one mount option"),
    ({"extra_options": ["index=off"]}, "^extra_options: 'index=off' is set through its own parameter"),
    ({"extra_options": ["volatile"]}, "^extra_options: 'volatile' is set through its own parameter"),
    ({"extra_options": ["lowerdir=/x"]}, "^extra_options: 'lowerdir=/x' is set through its own parameter"),
    ({"extra_options": ["workdir=/x"]}, "^extra_options: 'workdir=/x' is set through its own parameter"),
    ({"extra_options": [REQUIRES_MOUNTS_FOR + "=/x"]}, "^extra_options: .* is set through its own parameter"),
    ({"extra_options": ["a,b"]}, "^extra_options: 'a,b' is not one mount option"),
    ({"extra_options": ["a\nb"]}, "^extra_options: .* is not one mount option"),
    ({"lowerdir_form": "fancy"}, "^lowerdir_form must be auto, lowerdir, lowerdir\\+ or legacy, not 'fancy'"),
])
def test_format_mount_options_refuses_and_names_the_field(kwargs, error):
    args = {"lowerdir": ["/a"]}
    args.update(kwargs)
    with pytest.raises(OverlayError, match=error):
        fmt(**args)


@pytest.mark.parametrize("kwargs, expected", [
    # A comma followed by a plain name is a path libmount gives back whole.
    ({"lowerdir": ["/a,plain", "/b"]}, "lowerdir=/a\\,plain:/b"),
    ({"lowerdir": ["/a,RO"]}, "lowerdir=/a\\,RO"),
    # Short links of a unit: relative, and never split by a comma check.
    ({"lowerdir": ["0", "1"], "datadir": ["2"], "relative_layers": True}, "lowerdir=0:1::2"),
    ({"lowerdir": ["0,ro"], "relative_layers": True}, "lowerdir=0\\,ro"),
    ({"upperdir": "/u", "workdir": "/w", "options": ["index=off"], "extra_options": ["nofail", "noauto"]},
     "lowerdir=/a,upperdir=/u,workdir=/w,index=off,nofail,noauto"),
    ({"extra_options": ['context="system_u:object_r:x:s0:c1,c2"']},
     'lowerdir=/a,context="system_u:object_r:x:s0:c1,c2"'),
])
def test_format_mount_options_accepts(kwargs, expected):
    args = {"lowerdir": ["/a"]}
    args.update(kwargs)
    assert fmt(**args) == expected


def test_relative_layers_still_need_an_absolute_upper_dir():
    with pytest.raises(OverlayError, match="^upperdir: 'u' is not an absolute path"):
        fmt(["0"], "u", "/w", relative_layers=True)


# The one-page and per-value limits -------------------------------------------

# 61 layers of 66 bytes: "lowerdir=" (9) + 61 * 66 + 60 colons = 4095 bytes, one page exactly.
PAGE = _layers(61, 66)
OVER_PAGE = PAGE[:-1] + [PAGE[-1] + "x"]


def test_the_page_layers_are_sized_as_intended():
    assert _size(overlay_data(PAGE)) == MOUNT_DATA_MAX
    assert _size(overlay_data(OVER_PAGE)) == MOUNT_DATA_MAX + 1


@pytest.mark.parametrize("lowerdir, kwargs, form, note", [
    # The lower list within one fsconfig() value: the plain form.
    (["/" + "x" * 254], {}, "lowerdir=", None),
    (["/" + "é" * 127], {}, "lowerdir=", None),                           # 255 bytes, 128 characters
    # One byte more: one value per layer, where the kernel has lowerdir+.
    (["/" + "x" * 127, "/" + "y" * 126], {}, "lowerdir+=", None),          # 128 + 1 + 127 = 256 bytes
    (["/" + "é" * 127 + "x"], {"lowerdir_plus": False}, "lowerdir=", "2.38 and older only$"),
    # A layer over one value: no lowerdir+ either; the one-page form, with a note.
    (["/" + "x" * 255], {}, "lowerdir=", "2.38 and older only$"),
    (["/" + "x" * 255], {"fsconfig": False}, "lowerdir=", "uses mount\\(2\\)\\); after an upgrade .* run this task"),
    (PAGE, {"lowerdir_plus": False}, "lowerdir=", "this kernel has no lowerdir\\+\\): .*2.38 and older only$"),
    # A comma in a path rules lowerdir+ out (mount(8) would split the value there).
    (_layers(3, 100) + ["/a,b"], {}, "lowerdir=", "2.38 and older only$"),
    # Forced forms.
    (["/a", "/b"], {"lowerdir_form": "lowerdir+"}, "lowerdir+=/a,lowerdir+=/b", None),
    (["/" + "x" * 255], {"lowerdir_form": "legacy", "fsconfig": True}, "lowerdir=", "2.38 and older only$"),
])
def test_the_form_that_fits(lowerdir, kwargs, form, note):
    text, notes = rendered(lowerdir, **kwargs)
    assert text.startswith(form)
    assert _size(text) <= MOUNT_DATA_MAX
    if note is None:
        assert notes == []
    else:
        assert len(notes) == 1 and re.search(note, notes[0]), notes


def test_a_legacy_form_comes_with_its_note():
    text, notes = rendered(["/" + "x" * 255])
    assert text.startswith("lowerdir=") and len(notes) == 1


def test_the_legacy_note_counts_bytes():
    _text, notes = rendered(["/" + "é" * 200])
    assert notes[0].startswith("the lower list takes 401 bytes, more than the %d" % VALUE_MAX)


@pytest.mark.parametrize("lowerdir, kwargs, error", [
    # Over one page in every form.
    (OVER_PAGE, {"lowerdir_plus": False}, "take 4096 bytes \\(the lower list 4087\\).*at most 4095 in all"),
    (_layers(40, 250), {}, "^lowerdir: the layer, upper and work paths and options take"),
    # A forced form that does not fit.
    (["/" + "x" * 255], {"lowerdir_form": "lowerdir"}, "^lowerdir: the layer, upper and work paths"),
    (["/" + "x" * 255], {"lowerdir_form": "lowerdir+"}, "^lowerdir: the layer, upper and work paths"),
    # mount(8) with fsconfig() cannot take the one-page form.
    (["/" + "x" * 255], {"fsconfig": True}, "through fsconfig\\(\\).*a layer path holds a comma or is longer"),
    (PAGE, {"fsconfig": True, "lowerdir_plus": False}, "through fsconfig\\(\\).*this kernel has no lowerdir\\+"),
    (OVER_PAGE, {"fsconfig": True, "lowerdir_plus": False}, "^lowerdir: the layer, upper and work paths"),
])
def test_no_form_fits(lowerdir, kwargs, error):
    with pytest.raises(OverlayError, match=error) as caught:
        fmt(lowerdir, **kwargs)
    assert caught.value.details["option_bytes"] == _size(overlay_data(lowerdir))


@pytest.mark.parametrize("fsconfig, length, error", [
    (True, 255, None),
    (True, 256, "takes 256 bytes; this host's mount\\(8\\) passes each option value through fsconfig"),
    (None, 256, None),
    (False, 300, None),
])
@pytest.mark.parametrize("field", ["upperdir", "workdir"])
def test_upper_and_work_paths_within_one_value_where_mount_uses_fsconfig(field, fsconfig, length, error):
    dirs = {"upperdir": "/u", "workdir": "/w"}
    dirs[field] = "/" + "d" * (length - 1)
    if error is None:
        assert fmt(["/a"], fsconfig=fsconfig, **dirs).startswith("lowerdir=/a,upperdir=")
    else:
        with pytest.raises(OverlayError, match="^%s: .*%s" % (field, error)):
            fmt(["/a"], fsconfig=fsconfig, **dirs)


def test_an_escaped_upper_path_is_measured_escaped():
    # 254 bytes, 255 once its colon is escaped, 256 with two.
    assert fmt(["/a"], "/u:" + "d" * 251, "/w", fsconfig=True)
    with pytest.raises(OverlayError, match="^upperdir: .* takes 256 bytes"):
        fmt(["/a"], "/u::" + "d" * 250, "/w", fsconfig=True)


# Reading an option string back -----------------------------------------------

@pytest.mark.parametrize("lowerdir, upperdir, workdir, options, extra_options, datadir, form", [
    (["/a", "/b"], "/u", "/w", ["index=off"], ["nofail"], [], "auto"),
    (["/a:x", "/b,c", "/e\\f"], "/u:1", "/w,2", [], [], ["/d:1"], "auto"),
    (["/a"], None, None, ["redirect_dir=nofollow"], ["x-systemd.automount", "noauto"], [], "auto"),
    (["/a:x", "/e\\f", "/sp ace"], "/u", "/w", ["volatile"], [], ["/d"], "lowerdir+"),
    (["/café", "/ü"], "/ü/u", "/ü/w", ["metacopy=on", "redirect_dir=on"], [], [], "auto"),
    (["/" + "x" * 255, "/b:c"], "/u", "/w", [], ["nofail"], [], "auto"),                 # legacy
    (_layers(20, 30), "/u", "/w", ["uuid=off"], [], ["/d1", "/d2"], "auto"),            # lowerdir+
    (["/a"], None, None, [], ['context="system_u:object_r:x:s0:c1,c2"', "ro"], [], "auto"),
])
def test_parse_overlay_options_reads_back_what_was_written(lowerdir, upperdir, workdir, options, extra_options,
                                                           datadir, form):
    text = fmt(lowerdir, upperdir, workdir, options, extra_options, datadir, lowerdir_form=form)
    assert parse_overlay_options(text) == {
        "lowerdir": lowerdir, "datadir": datadir, "upperdir": upperdir, "workdir": workdir,
        "options": options, "extra_options": extra_options, "requires_mounts_for": [],
    }


def test_parse_overlay_options_of_nothing():
    assert parse_overlay_options("") == {
        "lowerdir": [], "datadir": [], "upperdir": None, "workdir": None,
        "options": [], "extra_options": [], "requires_mounts_for": [],
    }


# The mounts an overlay needs first -------------------------------------------

@pytest.mark.parametrize("path, option", [
    ("/plain", REQUIRES_MOUNTS_FOR + "=/plain"),
    ("/sp ace", REQUIRES_MOUNTS_FOR + '="/sp ace"'),
    ("/a,b", REQUIRES_MOUNTS_FOR + '="/a\\,b"'),
    ("/it's", REQUIRES_MOUNTS_FOR + '="/it\'s"'),
    ("/tab\there", REQUIRES_MOUNTS_FOR + '="/tab\there"'),
    ("/café", REQUIRES_MOUNTS_FOR + "=/café"),
])
def test_requires_mounts_for_option_reads_back_as_one_path(path, option):
    assert requires_mounts_for_option(path) == option
    assert parse_overlay_options("lowerdir=/a," + option)["requires_mounts_for"] == [path]


def test_requires_mounts_for_options_round_trip_with_the_layers():
    lowerdir, upperdir, workdir = ["/l 1", "/l,2"], "/u", "/w"
    text = ",".join([fmt(lowerdir, upperdir, workdir)]
                    + [requires_mounts_for_option(p) for p in requires_mounts_for(lowerdir, upperdir, workdir)])
    parsed = parse_overlay_options(text)
    assert parsed["requires_mounts_for"] == ["/l 1", "/l,2", "/u", "/w"]
    assert parsed["lowerdir"] == lowerdir and parsed["extra_options"] == []


@pytest.mark.parametrize("value, words", [
    ("", []),
    ("/a", ["/a"]),
    ("/a /b", ["/a", "/b"]),
    ('"/a b" /c', ["/a b", "/c"]),
    ("'/a b'", ["/a b"]),
    ('"/a\\"b"', ['/a"b']),
    ('"/unbalanced', []),
])
def test_split_unit_words(value, words):
    assert split_unit_words(value) == words


@pytest.mark.parametrize("lowerdir, upperdir, answer, asked, expected", [
    # Every form fits both mount(2) and fsconfig(): mount -V is never run.
    (["/l1", "/l2"], "/u", True, 0, "^lowerdir=/l1:/l2,upperdir=/u,workdir=/w$"),
    # An upper path longer than one fsconfig() value: asked, and refused where it is used.
    (["/l1"], "/" + "u" * 255, True, 1, "takes 256 bytes; this host's mount\\(8\\) passes each option value"),
    (["/l1"], "/" + "u" * 255, False, 1, "^lowerdir=/l1,upperdir=/u+,workdir=/w$"),
    # A lower list that only the one-page form carries (no lowerdir+ in this kernel): asked.
    (["/" + "x" * 255], "/u", False, 1, "^lowerdir=/x+,upperdir=/u,workdir=/w$"),
    (["/" + "x" * 255], "/u", True, 1, "through fsconfig\\(\\).*this kernel has no lowerdir\\+"),
])
def test_whether_mount_uses_fsconfig_is_asked_only_where_it_decides(lowerdir, upperdir, answer, asked, expected,
                                                                    counted_read):
    reader = counted_read(answer)
    decl = Declaration("/m", lowerdir, upperdir, "/w", [], [])
    try:
        text = format_mount_options(decl, HostFacts(False, reader, False)).text
    except OverlayError as error:
        text = str(error)
    assert re.search(expected, text), text
    assert reader.calls == asked
