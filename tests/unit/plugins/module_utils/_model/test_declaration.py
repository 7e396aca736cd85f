# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

import pytest

from ansible_collections.overlayfs.mounts.plugins.module_utils._model.declaration import (
    Declaration,
    dir_attributes,
)
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError

GOOD = dict(path="/srv/merged", lowerdir=["/srv/l1", "/srv/l2"], upperdir="/srv/upper",
            workdir="/srv/work", options=[], state="mounted")


def from_params(**params):
    return Declaration.from_params(params)


def _decl(**changes):
    params = dict(GOOD)
    params.update(changes)
    return from_params(**params)


def test_normalises_paths_and_options():
    decl = _decl(path="/srv//merged/", lowerdir=["/srv/./l1", "/srv/l2/"], options=["volatile", "index=off"])
    assert decl.as_result() == {"path": "/srv/merged", "lowerdir": ["/srv/l1", "/srv/l2"], "upperdir": "/srv/upper",
                                "workdir": "/srv/work", "options": ["index=off", "volatile"]}
    assert decl.datadir == [] and decl.layers == decl.lowerdir and decl.writable


@pytest.mark.parametrize("changes, field, fragment", [
    ({"path": "srv/merged"}, "path", "relative path"),
    ({"lowerdir": ["/srv/l1", "l2"]}, "lowerdir[1]", "relative path"),
    ({"upperdir": "upper"}, "upperdir", "relative path"),
    ({"workdir": "./work"}, "workdir", "relative path"),
    ({"lowerdir": ["/srv/l1", "/srv/new\nline"]}, "lowerdir[1]", "newline"),
    ({"path": ""}, "path", "empty path"),
    ({"upperdir": None}, "upperdir and workdir", "go together"),
    ({"lowerdir": []}, "lowerdir", "at least one lower"),
    ({"lowerdir": ["/srv/l1"], "upperdir": None, "workdir": None}, "lowerdir", "at least two lower"),
    ({"lowerdir": ["/l%d" % i for i in range(501)]}, "lowerdir", "at most 500"),
    ({"options": ["bogus"]}, "options", "not an overlay mount option"),
])
def test_from_params_errors(changes, field, fragment):
    with pytest.raises(OverlayError) as info:
        _decl(**changes)
    assert info.value.message.startswith(field)
    assert fragment in info.value.message


# ---- read-only overlays: data-only layers count (the composefs layout) -------------------

READ_ONLY = dict(upperdir=None, workdir=None, options=["metacopy=on", "redirect_dir=follow"])


@pytest.mark.parametrize("lowerdir, datadir", [
    (["/srv/meta"], ["/srv/data"]),
    (["/srv/meta"], ["/srv/d1", "/srv/d2"]),
    (["/srv/l1", "/srv/l2"], ["/srv/data"]),
    (["/srv/l1", "/srv/l2"], []),
])
@pytest.mark.parametrize("state", ["mounted", "present"])
def test_read_only_overlay_counts_data_only_layers(lowerdir, datadir, state):
    decl = _decl(lowerdir=lowerdir, datadir=datadir, state=state, **READ_ONLY)
    assert not decl.writable
    assert (decl.lowerdir, decl.datadir) == (lowerdir, datadir)
    assert decl.layers == lowerdir + datadir


@pytest.mark.parametrize("lowerdir, datadir, fragments", [
    (["/srv/meta"], [], ["at least two lower directories", "data-only layers (datadir) included",
                         "add a layer to lowerdir or datadir, or give upperdir and workdir"]),
    ([], ["/srv/data"], ["only data-only layers (datadir)", "at least one regular lower directory", "give lowerdir"]),
    ([], ["/srv/d1", "/srv/d2"], ["only data-only layers (datadir)", "give lowerdir"]),
    ([], [], ["at least one lower directory"]),
])
def test_read_only_overlay_needs_two_layers_and_one_regular_lower(lowerdir, datadir, fragments):
    with pytest.raises(OverlayError) as info:
        _decl(lowerdir=lowerdir, datadir=datadir, **READ_ONLY)
    assert info.value.message.startswith("lowerdir:")
    for fragment in fragments:
        assert fragment in info.value.message


def test_data_only_layers_alone_are_refused_with_an_upper_too():
    with pytest.raises(OverlayError) as info:
        _decl(lowerdir=[], datadir=["/srv/data"])
    assert info.value.message.startswith("lowerdir:") and "regular lower directory" in info.value.message


def test_one_lower_with_an_upper_needs_no_data_layer():
    decl = _decl(lowerdir=["/srv/l1"], datadir=[])
    assert decl.writable and decl.layers == ["/srv/l1"]


def test_data_only_layers_count_towards_the_layer_limit():
    with pytest.raises(OverlayError) as info:
        _decl(lowerdir=["/srv/meta"], datadir=["/d%d" % i for i in range(500)], **READ_ONLY)
    assert info.value.message.startswith("lowerdir: 501 layers given")


def test_the_layer_count_is_not_checked_when_taking_down():
    decl = _decl(lowerdir=[], datadir=["/srv/data"], state="absent", **READ_ONLY)
    assert decl.lowerdir == [] and decl.datadir == ["/srv/data"]


def test_unmounted_needs_only_a_path():
    decl = from_params(path="/srv/m", lowerdir=None, upperdir=None, workdir=None, options=[], state="unmounted")
    assert decl.path == "/srv/m" and decl.lowerdir == [] and not decl.writable


def test_injection_through_a_path_stays_a_path():
    decl = _decl(lowerdir=["/srv/l1,upperdir=/etc", "/srv/l2"])
    assert decl.lowerdir[0] == "/srv/l1,upperdir=/etc"


@pytest.mark.parametrize("field", ["path", "upperdir", "lowerdir"])
def test_non_utf8_path_refused(field):
    bad = b"/srv/caf\xe9".decode("utf-8", "surrogateescape")
    args = dict(GOOD)
    args[field] = [bad, "/srv/l2"] if field == "lowerdir" else bad
    with pytest.raises(OverlayError) as error:
        from_params(**args)
    assert "not valid UTF-8" in error.value.message
    assert error.value.message.startswith(field)


# ---- the Declaration object --------------------------------------------------------------

def test_canonical_resolves_every_path_and_keeps_the_rest():
    decl = Declaration("/m", ["/l1", "/l2"], "/u", "/w", ["index=off"], ["/d"], state="present")
    real = decl.canonical(lambda p: "/real" + p)
    assert real.all_paths() == ["/real/m", "/real/l1", "/real/l2", "/real/d", "/real/u", "/real/w"]
    assert (real.options, real.state) == (["index=off"], "present")
    assert real.named_dirs()[2] == ("datadir[0]", "/real/d")
    assert real.as_result()["datadir"] == ["/real/d"]
    assert real != decl and real == decl.canonical(lambda p: "/real" + p)


@pytest.mark.parametrize("mode, owner, group, expected", [
    (None, None, None, (None, None, None)),
    ("0750", "0", "0", (0o750, 0, 0)),
    (0o700, "root", "root", (0o700, 0, 0)),
])
def test_dir_attributes(mode, owner, group, expected):
    assert dir_attributes(mode, owner, group) == expected


@pytest.mark.parametrize("args, field", [
    (("rwx", None, None), "mode"),
    ((None, "no-such-user-here", None), "owner"),
    ((None, None, "no-such-group-here"), "group"),
])
def test_dir_attributes_errors_name_the_field(args, field):
    with pytest.raises(OverlayError) as error:
        dir_attributes(*args)
    assert error.value.message.startswith(field + ":")


def test_canonical_keeps_the_spelling_for_persistence():
    links = {"/srv/current": "/srv/rel/v1"}
    decl = _decl(lowerdir=["/srv/current/", "/srv/l2"]).canonical(lambda p: links.get(p, p))
    assert decl.lowerdir == ["/srv/rel/v1", "/srv/l2"]
    assert decl.symlinked
    assert decl.spelled_differences() == {"lowerdir": ["/srv/current", "/srv/l2"]}
    assert decl.as_spelled().lowerdir == ["/srv/current", "/srv/l2"]
    assert decl.as_result()["declared_as"] == {"lowerdir": ["/srv/current", "/srv/l2"]}
    again = decl.canonical(lambda p: links.get(p, p))
    assert again.spelled == decl.spelled  # the first spelling stays


def test_a_declaration_without_symlinks_has_no_second_spelling():
    decl = _decl().canonical(lambda p: p)
    assert not decl.symlinked and "declared_as" not in decl.as_result()
    assert decl.as_spelled().config() == decl.config()


def test_a_leading_double_slash_is_one():
    assert _decl(lowerdir=["//srv/l1", "/srv/l2"]).lowerdir[0] == "/srv/l1"
