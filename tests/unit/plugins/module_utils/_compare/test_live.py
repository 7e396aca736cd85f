# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from ansible_collections.overlayfs.mounts.plugins.module_utils._compare.live import differences, live_state, public_live
from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.mountinfo import parse_line
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.declaration import Declaration
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.overlay_options import defaults_from_parameters

DEFAULTS = defaults_from_parameters({})
DECL = {"path": "/srv/m", "lowerdir": ["/srv/l1", "/srv/l2"]}
SAME = "lowerdir+=/srv/l1,lowerdir+=/srv/l2,upperdir=/srv/u,workdir=/srv/w,uuid=on"


def _live(super_options, mount_point="/srv/m"):
    line = "70 22 0:50 / %s rw,relatime - overlay overlay rw,%s" % (mount_point, super_options)
    return live_state(parse_line(line), DEFAULTS)


def test_live_state_is_public_without_private_keys():
    live = public_live(_live(SAME))
    assert isinstance(live, dict) and not hasattr(live, "effective")
    assert live["form"] == "lowerdir+" and live["mount_id"] == 70


def test_read_only_overlay_matches_its_declaration():
    decl = Declaration(DECL["path"], DECL["lowerdir"])
    live = _live("lowerdir=/srv/l1:/srv/l2,redirect_dir=on")
    assert live["read_only"] is False
    assert differences(decl, live, DEFAULTS) == []


def test_relative_layers_with_dotdot_resolve_against_the_matching_base():
    line = ("71 22 0:51 / /s/root/c/merged rw - overlay overlay rw,lowerdir=../other/l/a:../other/l/b,"
            "upperdir=/s/root/c/diff,workdir=/s/root/c/work")
    existing = {"/s/other/l/a"}
    live = live_state(parse_line(line), DEFAULTS, exists=existing.__contains__)
    assert live["lowerdir"] == ["/s/other/l/a", "/s/other/l/b"]


class _Links:
    """A LinkTimes stand-in: ``links`` {path: (target, ctime)}, mount time ``since``."""

    follow = True

    def __init__(self, links, since=100, own=None):
        self.links, self.since, self.own = links, since, own or {}

    def trace(self, path):
        for link, (target, ctime) in self.links.items():
            if path == link or path.startswith(link + "/"):
                return target + path[len(link):], ctime
        return path.rstrip("/"), None

    def own_link(self, path):
        return self.own.get(path)

    def mount_time(self, _workdir):
        return self.since


def _live_with(super_options, links, bases=(), exists=None):
    line = "70 22 0:50 / /srv/m rw,relatime - overlay overlay rw,%s" % super_options
    return live_state(parse_line(line), DEFAULTS, exists=exists, bases=bases, links=links)


def test_a_symlink_older_than_the_mount_is_followed():
    live = _live_with("lowerdir=/srv/current:/srv/l2", _Links({"/srv/current": ("/srv/rel/v1", 50)}))
    assert live["lowerdir"] == ["/srv/rel/v1", "/srv/l2"] and live["unknown"] == []


def test_a_symlink_changed_since_the_mount_is_unknown_not_its_new_target():
    live = _live_with("lowerdir=/srv/current:/srv/l2", _Links({"/srv/current": ("/srv/rel/v2", 100)}))
    assert live["lowerdir"] == ["/srv/current", "/srv/l2"]
    assert [row["field"] for row in live["unknown"]] == ["lowerdir[0]"]
    assert "cannot be known" in live["unknown"][0]["reason"]
    decl = Declaration("/srv/m", ["/srv/current", "/srv/l2"]).canonical(lambda p: p)
    assert [d["field"] for d in differences(decl, live, DEFAULTS)] == ["lowerdir"]


def test_an_unknown_layer_differs_even_when_spelled_as_declared():
    live = _live_with("lowerdir=/srv/current:/srv/l2", _Links({"/srv/current": ("/srv/rel/v2", 200)}))
    decl = Declaration("/srv/m", ["/srv/current", "/srv/l2"])
    assert [d["field"] for d in differences(decl, live, DEFAULTS)] == ["lowerdir"]


def test_own_short_links_are_followed_wherever_they_point():
    base = "/var/lib/overlayfs-mounts/links/srv-m-abc"
    own = {base + "/0": "/srv/l1", base + "/1": "/srv/l2"}
    live = _live_with("lowerdir=0:1", _Links({}, own=own), bases=[base], exists=lambda p: p in own)
    assert live["lowerdir"] == ["/srv/l1", "/srv/l2"] and live["resolved"] and live["unknown"] == []


def test_relative_layers_under_a_foreign_base_are_not_own_links():
    base = "/var/lib/docker/overlay2"
    links = _Links({base + "/l/a": (base + "/x/diff", 10)})
    line = ("70 22 0:50 / %s/m/merged rw - overlay overlay rw,lowerdir=l/a,upperdir=%s/m/diff,workdir=%s/m/work"
            % (base, base, base))
    live = live_state(parse_line(line), DEFAULTS, exists=lambda p: p.startswith(base), links=links)
    assert live["lowerdir"] == [base + "/x/diff"]


def test_realpath_alone_cannot_tell_a_links_age():
    line = "70 22 0:50 / /srv/m rw - overlay overlay rw,lowerdir=/srv/current:/srv/l2"
    live = live_state(parse_line(line), DEFAULTS, realpath=lambda p: p.replace("current", "rel/v1"))
    assert live["lowerdir"] == ["/srv/current", "/srv/l2"] and len(live["unknown"]) == 1


def _flagged(mount_options, super_options=SAME, sb="rw"):
    line = "70 22 0:50 / /srv/m %s - overlay overlay %s,%s" % (mount_options, sb, super_options)
    return live_state(parse_line(line), DEFAULTS)


def test_live_state_shows_the_per_mount_flags_and_the_superblock():
    live = _flagged("ro,nosuid,nodev,noatime")
    assert (live["flags"], live["superblock"], live["read_only"]) == (["ro", "nosuid", "nodev", "noatime"], "rw", True)


def test_per_mount_flags_are_compared_with_the_declaration():
    decl = Declaration("/srv/m", ["/srv/l1", "/srv/l2"], "/srv/u", "/srv/w", flags=["nosuid", "noatime"])
    assert differences(decl, _flagged("rw,nosuid,noatime"), DEFAULTS) == []
    assert differences(decl, _flagged("rw,relatime"), DEFAULTS) == [
        {"field": "flags.suid", "declared": "nosuid", "live": "suid"},
        {"field": "flags.atime", "declared": "noatime", "live": "relatime"}]


def test_a_read_only_superblock_differs_unless_declared_ro():
    writable = Declaration("/srv/m", ["/srv/l1", "/srv/l2"], "/srv/u", "/srv/w")
    assert [d["field"] for d in differences(writable, _flagged("ro,relatime", sb="ro"), DEFAULTS)] == ["flags.ro", "superblock"]
    declared_ro = Declaration("/srv/m", ["/srv/l1", "/srv/l2"], "/srv/u", "/srv/w", flags=["ro"])
    assert differences(declared_ro, _flagged("ro,relatime", sb="ro"), DEFAULTS) == []
    assert differences(declared_ro, _flagged("ro,relatime"), DEFAULTS) == []
