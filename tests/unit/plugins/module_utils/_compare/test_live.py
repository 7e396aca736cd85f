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
