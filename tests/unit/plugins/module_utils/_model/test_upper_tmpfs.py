# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""upper_tmpfs: the checks of the parameters alone, sizes as tmpfs counts them, owners."""

import pytest

from ansible_collections.overlayfs.mounts.plugins.module_utils._model.declaration import Declaration
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.spec import MOUNT_SPEC
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.upper_tmpfs import (
    UpperTmpfs,
    check_size,
    resolve_ids,
    size_bytes,
)


def _params(**given):
    params = {name: option.get("default") for name, option in MOUNT_SPEC.items()}
    params.update(path="/srv/m", lowerdir=["/l"], upperdir="/vol/a/upper", workdir="/vol/a/work")
    params.update(given)
    return params


def _tmpfs(**given):
    out = {"path": None, "size": "64M", "mode": "0755", "owner": "root", "group": "root"}
    out.update(given)
    return out


def test_path_defaults_to_the_common_parent():
    decl = Declaration.from_params(_params(upper_tmpfs=_tmpfs()))
    assert decl.upper_tmpfs == UpperTmpfs("/vol/a", "64M", 0o755, "root", "root")


def test_a_path_given_is_normalised():
    decl = Declaration.from_params(_params(upper_tmpfs=_tmpfs(path="/vol//", mode="1777")))
    assert (decl.upper_tmpfs.path, decl.upper_tmpfs.mode) == ("/vol", 0o1777)


@pytest.mark.parametrize("upper, work, needle", [
    ("/a/upper", "/b/work", "no common parent"),
    ("/upper", "/work", "no common parent"),
])
def test_no_common_parent_is_refused(upper, work, needle):
    with pytest.raises(OverlayError, match=needle):
        Declaration.from_params(_params(upperdir=upper, workdir=work, upper_tmpfs=_tmpfs()))


def test_dirs_outside_the_path_are_refused_naming_the_field():
    with pytest.raises(OverlayError, match="upper_tmpfs.path: workdir '/other/work' does not lie inside"):
        Declaration.from_params(_params(workdir="/other/work", upper_tmpfs=_tmpfs(path="/vol/a")))
    with pytest.raises(OverlayError, match="upperdir '/vol/a/upper' does not lie inside the tmpfs at '/vol/a/upper'"):
        Declaration.from_params(_params(upper_tmpfs=_tmpfs(path="/vol/a/upper")))


def test_without_an_upper_it_is_refused():
    with pytest.raises(OverlayError, match="needs upperdir and workdir"):
        Declaration.from_params(_params(upperdir=None, workdir=None, lowerdir=["/a", "/b"], upper_tmpfs=_tmpfs()))


def test_absent_needs_no_size():
    decl = Declaration.from_params(_params(state="absent", upperdir=None, workdir=None, lowerdir=None,
                                           upper_tmpfs=_tmpfs(path="/vol", size=None)))
    assert decl.upper_tmpfs.path == "/vol"


@pytest.mark.parametrize("size", ["64M", "1G", "10%", "4096", "2k", "1t"])
def test_sizes_tmpfs_takes(size):
    assert check_size(size) == size


@pytest.mark.parametrize("size, needle", [("64MB", "not a tmpfs size"), ("-1M", "not a tmpfs size"), ("", "not a tmpfs size"),
                                          ("0", "no limit"), ("0%", "no limit"), ("1.5G", "not a tmpfs size")])
def test_sizes_refused(size, needle):
    with pytest.raises(OverlayError, match="upper_tmpfs.size: .*" + needle):
        check_size(size)


@pytest.mark.parametrize("size, pages, expected", [
    ("64M", None, 64 << 20),
    ("1000", None, 4096),  # rounded up to a page, as tmpfs does
    ("1G", None, 1 << 30),
    ("10%", 1000, 409600),
    ("10%", None, None),
])
def test_size_bytes(size, pages, expected):
    assert size_bytes(size, pages) == expected


def test_options_and_result():
    tmpfs = UpperTmpfs("/v", "1G", 0o700, "app", "1000")
    assert tmpfs.options(33, 1000) == "size=1G,mode=0700,uid=33,gid=1000"
    assert tmpfs.as_result()["mode"] == "0700"


def test_owner_names_and_numbers():
    users = {"app": 33}
    assert resolve_ids(UpperTmpfs("/v", "1M", owner="app", group="7"), users.__getitem__, {}.__getitem__) == (33, 7)
    with pytest.raises(OverlayError, match="upper_tmpfs.group: there is no group 'nobodyhere'"):
        resolve_ids(UpperTmpfs("/v", "1M", owner="0", group="nobodyhere"), users.__getitem__, {}.__getitem__)


def test_mode_too_large_is_refused():
    with pytest.raises(OverlayError, match="upper_tmpfs.mode"):
        Declaration.from_params(_params(upper_tmpfs=_tmpfs(mode="77777")))
