# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Relative layer, upper and work paths of container engines' mounts, resolved.

The fixtures are what Docker 20.10 (overlay2) and podman 4.3
(containers-storage) really wrote on a test host for containers of images
with 5, 60 and 120 layers (tests/engines/capture_fixtures.py): the mountinfo
line, ``inspect``'s GraphDriver.Data, and the short links the layers name.
The shallow mounts name absolute ``<root>/l/<id>`` layers; the deep ones,
whose option string would pass a page, relative ``l/<id>`` layers with a
relative ``<id>/diff`` upper and ``<id>/work`` work dir.
"""

import json
import os
import posixpath

import pytest

from ansible_collections.overlayfs.mounts.plugins.module_utils._model.declaration import Declaration
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError
from ansible_collections.overlayfs.mounts.plugins.module_utils._report.inventory import gather
from ansible_collections.overlayfs.mounts.plugins.module_utils._host.system import readlink, symlinks_in
from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.mountinfo import (
    common_base,
    engine_layout,
    engine_of,
    overlay_config,
    parse,
    parse_line,
    RealPaths,
    relative_layer_bases,
    resolve_paths,
)
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.overlay_options import defaults_from_parameters
from ansible_collections.overlayfs.mounts.plugins.module_utils._compare.live import Observed, live_state, realpath_links
from ansible_collections.overlayfs.mounts.plugins.module_utils._converge.plan import make_plan
from ansible_collections.overlayfs.mounts.plugins.module_utils._host.upper_safety import check_upper, find_shared

DEFAULTS = defaults_from_parameters({})
with open(os.path.join(os.path.dirname(__file__), "fixtures", "engines.json")) as _handle:
    CONTAINERS = json.load(_handle)
IDS = ["%s-%d" % (c["engine"], c["depth"]) for c in CONTAINERS]


class Storage(object):
    """The part of a host's filesystem a captured container mount names."""

    def __init__(self, container):
        data = container["inspect"]
        self.root = posixpath.dirname(posixpath.dirname(data["MergedDir"]))
        self.links = {self.root + "/" + k: v for k, v in container["links"].items()}
        store = posixpath.dirname(self.root)
        self.paths = set(self.links)
        self.paths.update(data["LowerDir"].split(":"))
        self.paths.update([data["UpperDir"], data["WorkDir"], data["MergedDir"], self.root + "/l"])
        self.paths.update(store + "/" + m for m in container["markers"])

    def exists(self, path):
        return path in self.paths

    def realpath(self, path):
        target = self.links.get(path)
        return path if target is None else posixpath.normpath(posixpath.join(posixpath.dirname(path), target))


def _relative(line):
    cfg = overlay_config(parse_line(line))
    return [p for p in cfg["lowerdir"] + [cfg["upperdir"], cfg["workdir"]] if not p.startswith("/")]


def test_fixtures_hold_shallow_and_deep_mounts_of_both_engines():
    shapes = {i: bool(_relative(c["line"])) for i, c in zip(IDS, CONTAINERS)}
    # Docker switches to relative paths at about 75 layers, podman already at 60.
    assert shapes == {"docker-5": False, "docker-60": False, "docker-120": True,
                      "containers-storage-5": False, "containers-storage-60": True,
                      "containers-storage-120": True}
    for container in CONTAINERS:
        if _relative(container["line"]):
            cfg = overlay_config(parse_line(container["line"]))
            assert all(p.startswith("l/") for p in cfg["lowerdir"])
            assert not cfg["upperdir"].startswith("/") and cfg["upperdir"].endswith("/diff")


@pytest.mark.parametrize("container", CONTAINERS, ids=IDS)
def test_resolve_layers_gives_exactly_what_inspect_reports(container):
    fs = Storage(container)
    data = container["inspect"]
    live = live_state(parse_line(container["line"]), DEFAULTS, exists=fs.exists, links=realpath_links(fs.realpath, trusted=True))
    assert live["path"] == data["MergedDir"]
    assert live["lowerdir"] == data["LowerDir"].split(":")
    assert live["upperdir"] == data["UpperDir"]
    assert live["workdir"] == data["WorkDir"]
    assert live["resolved"] is True
    assert live["engine"] == container["engine"]


@pytest.mark.parametrize("container", CONTAINERS, ids=IDS)
def test_without_resolve_layers_the_short_links_are_absolute(container):
    fs = Storage(container)
    data = container["inspect"]
    live = live_state(parse_line(container["line"]), DEFAULTS, exists=fs.exists)
    assert all(p.startswith(fs.root + "/l/") for p in live["lowerdir"])
    assert [fs.realpath(p) for p in live["lowerdir"]] == data["LowerDir"].split(":")
    assert (live["upperdir"], live["workdir"]) == (data["UpperDir"], data["WorkDir"])
    assert live["resolved"] is True
    assert live["relative_to"] == (fs.root if _relative(container["line"]) else None)


@pytest.mark.parametrize("container", [c for c in CONTAINERS if _relative(c["line"])],
                         ids=[i for i, c in zip(IDS, CONTAINERS) if _relative(c["line"])])
def test_deep_mount_that_nothing_holds_says_so(container):
    for exists in (None, lambda path: False):
        live = live_state(parse_line(container["line"]), DEFAULTS, exists=exists, realpath=lambda p: p + "!")
        cfg = overlay_config(parse_line(container["line"]))
        assert live["resolved"] is False
        assert live["relative_to"] is None
        # Shown as the kernel shows them, not dressed up as real directories.
        assert live["lowerdir"] == cfg["lowerdir"]
        assert (live["upperdir"], live["workdir"]) == (cfg["upperdir"], cfg["workdir"])


def test_the_mount_points_grandparent_is_the_first_base():
    deep = [c for c in CONTAINERS if c["engine"] == "docker" and c["depth"] == 120][0]
    merged = deep["inspect"]["MergedDir"]
    root = posixpath.dirname(posixpath.dirname(merged))
    assert relative_layer_bases("x/diff", "x/work", merged) == [root]
    assert relative_layer_bases("/s/r/i/diff", "/s/r/i/work", "/m/i/merged") == ["/m", "/s/r", "/s/r/i"]
    assert relative_layer_bases(None, None, None) == []


def test_every_path_of_one_mount_against_the_same_base():
    # /a holds the first layer but not the upper and work dir; /b holds all three.
    have = {"/a/l/X", "/b/l/X", "/b/id/diff", "/b/id/work"}
    assert common_base(["l/X", "id/diff", "id/work"], ["/a", "/b"], have.__contains__) == "/b"
    line = ("9 1 0:9 / /a/id/merged rw - overlay overlay rw,lowerdir=l/X:l/Y,"
            "upperdir=id/diff,workdir=id/work")
    paths = resolve_paths(overlay_config(parse_line(line)), "/a/id/merged", have.__contains__, ["/b"])
    assert paths == {"lowerdir": ["/b/l/X", "/b/l/Y"], "datadir": [], "upperdir": "/b/id/diff",
                     "workdir": "/b/id/work", "base": "/b", "resolved": True}


def test_relative_layers_with_dot_dot_are_normalised():
    have = {"/s/r/id/diff", "/s/r/id/work", "/s/shared/l1"}
    line = ("9 1 0:9 / /s/r/id/merged rw - overlay overlay rw,lowerdir=../shared/l1:../shared/l2,"
            "upperdir=id/diff,workdir=id/work")
    paths = resolve_paths(overlay_config(parse_line(line)), "/s/r/id/merged", have.__contains__)
    assert paths["lowerdir"] == ["/s/shared/l1", "/s/shared/l2"]
    assert paths["base"] == "/s/r"


@pytest.mark.parametrize("container", CONTAINERS, ids=IDS)
def test_engine_from_the_layout_alone(container):
    fs = Storage(container)
    paths = resolve_paths(overlay_config(parse_line(container["line"])), container["inspect"]["MergedDir"],
                          fs.exists)
    root = engine_layout(container["inspect"]["MergedDir"], paths)
    assert root == fs.root
    # By the marker beside the storage root; by the root's name only when the filesystem cannot be asked.
    assert engine_of(root, fs.exists) == container["engine"]
    assert engine_of(root) == container["engine"]
    assert engine_of(root, lambda path: False) is None


@pytest.mark.parametrize("line", [
    # Not mounted on <root>/<id>/merged.
    "9 1 0:9 / /srv/m rw - overlay overlay rw,lowerdir=/r/l/A,upperdir=/r/i/diff,workdir=/r/i/work",
    # Upper dir not the mount's sibling diff.
    "9 1 0:9 / /r/i/merged rw - overlay overlay rw,lowerdir=/r/l/A,upperdir=/r/j/diff,workdir=/r/i/work",
    # Layers outside the storage root.
    "9 1 0:9 / /r/i/merged rw - overlay overlay rw,lowerdir=/srv/l1,upperdir=/r/i/diff,workdir=/r/i/work",
    # A plain overlay.
    "9 1 0:9 / /srv/merged rw - overlay overlay rw,lowerdir=/srv/l1:/srv/l2",
])
def test_other_layouts_are_no_engine(line):
    entry = parse_line(line)
    paths = resolve_paths(overlay_config(entry), entry.mount_point, lambda path: True)
    assert engine_layout(entry.mount_point, paths) is None
    assert live_state(entry, DEFAULTS, exists=lambda path: True)["engine"] is None


def test_an_engine_root_of_another_name_without_markers_is_unknown():
    assert engine_of("/srv/storage") is None
    assert engine_of("/var/lib/docker/overlay2") == "docker"
    assert engine_of("/home/u/.local/share/containers/storage/overlay") == "containers-storage"


def test_whole_host_inventory_of_both_engines():
    lines = [c["line"] for c in CONTAINERS]
    own = ("77 22 0:80 / /srv/own rw,relatime - overlay overlay rw,lowerdir=0:1,"
           "upperdir=/srv/u,workdir=/srv/w")
    links = "/var/lib/overlayfs-mounts/links"
    fs = [Storage(c) for c in CONTAINERS]
    own_dir = [links + "/srv-own-"]

    def exists(path):
        if any(path.startswith(d) and path.endswith("/0") for d in own_dir):
            return True
        return any(f.exists(path) for f in fs)

    def realpath(path):
        for f in fs:
            if path in f.links:
                return f.realpath(path)
        return path

    records = gather(parse("\n".join(lines + [own])), DEFAULTS, {}, exists=exists, realpath=realpath,
                     links_root=links)
    by_path = {r["path"]: r for r in records}
    assert len(records) == 7
    for container in CONTAINERS:
        record = by_path[container["inspect"]["MergedDir"]]
        assert record["engine"] == container["engine"]
        assert record["resolved"] is True
        assert record["lowerdir"] == container["inspect"]["LowerDir"].split(":")
        assert record["drift"] == [] and record["persisted"] == "none" and not record["managed"]
    mine = by_path["/srv/own"]
    assert mine["engine"] == "overlayfs.mounts"
    assert mine["lowerdir"][0].startswith(links + "/srv-own-") and mine["lowerdir"][0].endswith("/0")


# ---- the role and overlay_mount never touch an engine's mount -----------------------

def _shared(container, mine):
    fs = Storage(container)
    entries = parse(container["line"])
    return find_shared(mine, entries, (), fs.exists, fs.realpath)


@pytest.mark.parametrize("container", CONTAINERS, ids=IDS)
def test_an_upper_in_a_containers_layer_dir_is_shared(container):
    data = container["inspect"]
    merged = data["MergedDir"]
    for mine in ([data["UpperDir"], "/srv/w"],                      # its upper dir
                 ["/srv/u", data["WorkDir"]],                       # its work dir
                 [data["LowerDir"].split(":")[-1], "/srv/w"],       # its bottom layer
                 [data["LowerDir"].split(":")[0] + "/sub", "/srv/w"]):  # inside its top layer
        assert _shared(container, mine) == {"path": merged, "mount_id": parse_line(container["line"]).mount_id,
                                            "engine": container["engine"]}, mine


@pytest.mark.parametrize("container", CONTAINERS, ids=IDS)
def test_other_dirs_of_the_storage_root_are_not_shared(container):
    root = posixpath.dirname(posixpath.dirname(container["inspect"]["MergedDir"]))
    assert _shared(container, [root + "/0123abc/diff", root + "/0123abc/work"]) is None
    assert _shared(container, ["/srv/u", "/srv/w"]) is None


def test_shared_facts_are_kept_only_where_no_path_is_relative():
    """find_shared keeps an overlay's facts on its entry for the next check, unless ``exists`` shaped them."""
    absolute = ("70 22 0:60 / /srv/m rw - overlay overlay rw,lowerdir=/srv/l,"
                "upperdir=/srv/u,workdir=/srv/w")
    relative = ("71 22 0:61 / /srv/store/ab/merged rw - overlay overlay rw,lowerdir=l/X,"
                "upperdir=u,workdir=w")
    entries = parse(absolute + "\n" + relative)
    here = set(["/srv/store/l/X", "/srv/store/u", "/srv/store/w"])
    assert find_shared(["/srv/u", "/srv/x"], entries, (), here.__contains__)["mount_id"] == 70
    assert entries[0].derived is not None and entries[1].derived is None
    # The relative one resolves against /srv/store (the mount point's grandparent) while its dirs exist there, not after.
    assert find_shared(["/srv/store/u", "/srv/x"], entries, (), here.__contains__)["mount_id"] == 71
    assert find_shared(["/srv/store/u", "/srv/x"], entries, (), set().__contains__) is None
    # Kept facts give the same answers, and ours (by mount id) is still skipped.
    again = parse(absolute + "\n" + relative)
    assert again[0] is entries[0]
    assert find_shared(["/srv/w"], again, (), here.__contains__)["mount_id"] == 70
    assert find_shared(["/srv/w"], again, set([70]), here.__contains__) is None


def test_the_refusal_names_the_container_and_the_engine():
    container = [c for c in CONTAINERS if c["engine"] == "docker" and c["depth"] == 120][0]
    data = container["inspect"]
    decl = Declaration("/srv/m", ["/srv/l"], data["LowerDir"].split(":")[3], "/srv/w")
    with pytest.raises(OverlayError) as caught:
        check_upper(decl, {"shared": _shared(container, [decl.upperdir, "/srv/w"])}, False, False)
    assert "layer dir of the container mounted at %s by docker" % data["MergedDir"] in caught.value.message
    assert caught.value.details == {"shared_with": data["MergedDir"], "engine": "docker"}


@pytest.mark.parametrize("state", ["mounted", "unmounted", "absent", "present"])
@pytest.mark.parametrize("container", CONTAINERS, ids=IDS)
def test_overlay_mount_refuses_an_engines_mount_point(container, state):
    fs = Storage(container)
    live = live_state(parse_line(container["line"]), DEFAULTS, exists=fs.exists, links=realpath_links(fs.realpath, trusted=True))
    decl = Declaration(live["path"], live["lowerdir"], live["upperdir"], live["workdir"], state=state)
    with pytest.raises(OverlayError) as caught:
        make_plan(decl, Observed(live, 1, None), DEFAULTS)
    assert "root filesystem of a container" in caught.value.message
    assert caught.value.details == {"engine": container["engine"]}


# ---- RealPaths: realpath for hundreds of short links, on a real tree -----------------


@pytest.mark.parametrize("listing", [None, symlinks_in], ids=["probing", "listing"])
def test_real_paths_match_os_realpath(tmp_path, listing):
    root = str(tmp_path)
    os.makedirs(os.path.join(root, "store", "overlay", "abc", "diff", "sub"))
    os.makedirs(os.path.join(root, "store", "overlay", "l"))
    os.makedirs(os.path.join(root, "elsewhere", "deep"))
    links = {
        "store/overlay/l/SHORT": "../abc/diff",                 # the engines' short link
        "store/overlay/l/ABS": os.path.join(root, "store/overlay/abc/diff"),
        "store/overlay/l/CHAIN": "SHORT",                       # a link to a link
        "store/overlay/l/UPDOT": "../../../elsewhere/deep/..",  # '..' after real dirs
        "elsewhere/deep/toroot": "/",
        "store/alias": "overlay",                               # a linked directory in the middle
        "store/overlay/l/LOOP1": "LOOP2",
        "store/overlay/l/LOOP2": "LOOP1",
        "store/overlay/l/DANGLING": "../missing/diff",
        "elsewhere/up": "deep/../..",
    }
    for name, target in links.items():
        os.symlink(target, os.path.join(root, name))
    paths = [os.path.join(root, p) for p in (
        "store/overlay/l/SHORT", "store/overlay/l/ABS", "store/overlay/l/CHAIN", "store/overlay/l/UPDOT",
        "store/overlay/l/SHORT/sub", "store/overlay/l/SHORT/../diff/sub", "store/alias/l/SHORT",
        "store/alias/l/CHAIN/sub/..", "elsewhere/deep/toroot", "elsewhere/deep/toroot/tmp",
        "store/overlay/l/DANGLING", "store/overlay/nothing/here", "elsewhere/up", "elsewhere/up/store",
        "store//overlay/./l/SHORT/", "store/overlay/l/SHORT/..",
    )] + ["/", "/proc/self/..", "/tmp"]
    real = RealPaths(readlink, listing)
    for path in paths * 2:  # the second round comes from the cache
        assert real(path) == os.path.realpath(path), path
    # A loop: os.path.realpath gives up in its own way; we leave the path as it is.
    loop = os.path.join(root, "store/overlay/l/LOOP1")
    assert real(loop) == loop
    assert RealPaths(readlink, listing)(loop) == loop


def test_real_paths_keep_the_newest_link_time_of_each_path():
    links = {"/srv/current": "rel/v1", "/srv/rel/v1/up": "/data/up", "/data/loop": "/data/loop"}
    times = {"/srv/current": 10, "/srv/rel/v1/up": 30, "/data/loop": 5}
    real = RealPaths(links.get, link_time=times.__getitem__)
    assert (real("/srv/plain/x"), real.newest("/srv/plain/x")) == ("/srv/plain/x", None)
    assert (real("/srv/current/a"), real.newest("/srv/current/a")) == ("/srv/rel/v1/a", 10)
    assert (real("/srv/current/up/b"), real.newest("/srv/current/up/b")) == ("/data/up/b", 30)  # the newer of two
    assert real.newest("/srv/current/up/b") == 30  # from the cache
    assert (real("/data/loop"), real.newest("/data/loop")) == ("/data/loop", RealPaths.LOOP)
    assert RealPaths(links.get)("/srv/current/a") == "/srv/rel/v1/a"  # without link_time: no times kept


@pytest.mark.parametrize("container", CONTAINERS, ids=IDS)
def test_real_paths_follow_the_engines_links(container):
    fs = Storage(container)

    def readlink(path):
        return container["links"].get(path[len(fs.root) + 1:]) if path.startswith(fs.root + "/") else None

    real = RealPaths(readlink)
    live = live_state(parse_line(container["line"]), DEFAULTS, exists=fs.exists, links=realpath_links(real, trusted=True))
    assert live["lowerdir"] == container["inspect"]["LowerDir"].split(":")
