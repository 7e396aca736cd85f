# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

import pytest

from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.mountinfo import parse
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.declaration import Declaration
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.refusals import (
    busy_message,
    check_datadir,
    check_host,
    check_layout,
    check_workdir,
    refuse_dangling_mount_point,
    refuse_engine,
    refuse_foreign,
)

GOOD = dict(path="/srv/merged", lowerdir=["/srv/l1", "/srv/l2"], upperdir="/srv/upper",
            workdir="/srv/work", options=[], state="mounted")


def _decl(**changes):
    return Declaration.from_params(dict(GOOD, **changes))


@pytest.mark.parametrize("changes, field, fragment", [
    ({"lowerdir": ["/srv/l1", "/srv/l1"]}, "lowerdir[1]", "same directory as lowerdir[0]"),
    ({"lowerdir": ["/srv/l1", "/srv/upper"]}, "upperdir", "same directory as lowerdir[1]"),
    ({"workdir": "/srv/upper"}, "workdir", "same directory as upperdir"),
    ({"workdir": "/srv/upper/work"}, "workdir", "inside upperdir"),
    ({"upperdir": "/srv/work/upper"}, "upperdir", "inside workdir"),
    ({"upperdir": "/srv/merged"}, "upperdir", "inside the mount point"),
    ({"workdir": "/srv/merged/w"}, "workdir", "inside the mount point"),
    ({"upperdir": "/srv/l1/upper"}, "upperdir", "overlaps lowerdir[0]"),
    ({"lowerdir": ["/srv/upper/x", "/srv/l2"]}, "upperdir", "overlaps lowerdir[0]"),
])
def test_layout_errors(changes, field, fragment):
    with pytest.raises(OverlayError) as info:
        check_layout(_decl(**changes))
    assert info.value.message.startswith(field)
    assert fragment in info.value.message


def test_mounting_over_a_lower_is_allowed():
    check_layout(_decl(path="/srv/l1"))


MOUNTS = parse("\n".join([
    "22 1 254:0 / / rw - ext4 /dev/vda rw",
    "30 22 0:30 / /srv/t rw - tmpfs tmpfs rw",
    "40 22 0:40 / /srv/ov rw - overlay overlay rw,lowerdir=/a:/b",
]))
ROOT_MOUNT, TMPFS_MOUNT, OVERLAY_MOUNT = MOUNTS


def _kinds(**changes):
    kinds = {"/srv/merged": "dir", "/srv/l1": "dir", "/srv/l2": "dir", "/srv/upper": "dir", "/srv/work": "dir"}
    kinds.update({k.replace("_", "/"): v for k, v in changes.items()})
    return kinds


def test_check_host_lists_dirs_to_create():
    kinds = _kinds()
    kinds["/srv/merged"] = kinds["/srv/upper"] = "missing"
    assert check_host(_decl(), kinds, ROOT_MOUNT, ROOT_MOUNT, True) == ["/srv/merged", "/srv/upper"]


@pytest.mark.parametrize("path, kind, create, upper_m, work_m, field, fragment", [
    ("/srv/l2", "missing", True, ROOT_MOUNT, ROOT_MOUNT, "lowerdir[1]", "never created"),
    ("/srv/l1", "regular file", True, ROOT_MOUNT, ROOT_MOUNT, "lowerdir[0]", "not a directory"),
    ("/srv/merged", "regular file", True, ROOT_MOUNT, ROOT_MOUNT, "path", "mount point must be a directory"),
    ("/srv/upper", "missing", False, ROOT_MOUNT, ROOT_MOUNT, "upperdir", "create_dirs"),
    (None, None, True, OVERLAY_MOUNT, OVERLAY_MOUNT, "upperdir", "cannot use an overlay"),
    (None, None, True, ROOT_MOUNT, TMPFS_MOUNT, "workdir", "same mount"),
])
def test_check_host_errors(path, kind, create, upper_m, work_m, field, fragment):
    kinds = _kinds()
    if path:
        kinds[path] = kind
    with pytest.raises(OverlayError) as info:
        check_host(_decl(), kinds, upper_m, work_m, create)
    assert info.value.message.startswith(field)
    assert fragment in info.value.message


# A work dir holding data is refused -------------------------------------------

@pytest.mark.parametrize("listing", [
    {},
    {"": []},
    {"": ["work"], "work": []},
    {"": ["work", "index"], "work": ["#1a2b", "incompat"], "index": ["00fb1d0001", "#3c"]},
])
def test_kernels_own_work_dir_content_accepted(listing):
    check_workdir("/srv/work", listing)


@pytest.mark.parametrize("listing, shown", [
    ({"": ["work"], "work": ["precious.db"]}, "work/precious.db"),
    ({"": ["etc", "home", "work"], "work": []}, "etc, home"),
    ({"": ["work"], "not_dirs": ["work"]}, "work"),
    ({"": ["index"], "index": ["notes.txt"]}, "index/notes.txt"),
    ({"": ["f%d" % i for i in range(9)]}, "f0, f1, f2, f3, f4 and 4 more"),
])
def test_foreign_work_dir_content_refused(listing, shown):
    with pytest.raises(OverlayError) as error:
        check_workdir("/srv/work", listing)
    message = error.value.message
    assert message.startswith("workdir: '/srv/work' holds %s," % shown)
    assert "swapped" in message and "move the files away" in message


# The mount point, data-only layers, what is mounted there, a busy mount -------------

def test_a_dangling_mount_point_is_refused_and_a_missing_one_is_not():
    refuse_dangling_mount_point("/srv/m", "missing")
    refuse_dangling_mount_point("/srv/m", "dir")
    with pytest.raises(OverlayError, match="^path: '/srv/m' is a symlink to nothing; .*remove the link"):
        refuse_dangling_mount_point("/srv/m", "dangling symlink")


@pytest.mark.parametrize("datadir, metacopy, refused", [
    ([], "off", False), (["/d"], "on", False), (["/d"], "off", True),
])
def test_data_only_layers_need_metacopy(datadir, metacopy, refused):
    if not refused:
        check_datadir(datadir, metacopy)
        return
    with pytest.raises(OverlayError, match="^datadir: data-only lower layers need metacopy=on"):
        check_datadir(datadir, metacopy)


def test_a_foreign_mount_and_an_engines_overlay_are_refused_by_name():
    with pytest.raises(OverlayError, match="^path: '/srv/m' is already a mount point of a tmpfs filesystem"):
        refuse_foreign("/srv/m", "tmpfs")
    with pytest.raises(OverlayError, match="mounted by Docker") as caught:
        refuse_engine("/srv/m", "docker")
    assert caught.value.details == {"engine": "docker"}


def test_a_busy_mount_names_what_must_change_and_who_holds_it():
    message = busy_message("/srv/m", ["lowerdir", "options.index"], "processes pid 7 (sh: cwd)")
    assert message.startswith("/srv/m must be unmounted and mounted again to apply lowerdir, options.index")
    assert message.endswith("in use: processes pid 7 (sh: cwd). Stop those users, then run again")
