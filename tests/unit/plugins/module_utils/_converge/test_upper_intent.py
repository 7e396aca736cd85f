# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""_converge/upper_intent.py: what an overlay_upper run plans, journals and mounts again (the pure parts)."""

import pytest

from ansible_collections.overlayfs.mounts.plugins.module_utils._converge import upper_intent
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError

SPELLED = {"path": "/srv/m", "lowerdir": ["/srv/l1", "/srv/l2"], "upperdir": "/srv/u", "workdir": "/srv/w",
           "persist": "fstab"}


def _intent(state="committed", mounted=True, backup=None, layer="/srv/layers/one"):
    intent = upper_intent.Intent.__new__(upper_intent.Intent)
    intent.state, intent.mounted, intent.backup = state, mounted, backup
    intent.spelled = dict(SPELLED)
    intent.path, intent.upper, intent.work = "/srv/m", "/srv/u", "/srv/w"
    intent.layer = intent.layer_spelled = layer if state == "committed" else None
    intent.staging = "/srv/.u.overlay-upper"
    intent.identities = {"upperdir": (1, 2), "workdir": (1, 3)}
    intent.new_lowerdir = ([layer] if state == "committed" else []) + SPELLED["lowerdir"]
    intent.live = {"lowerdir": SPELLED["lowerdir"]} if mounted else None
    return intent


def test_partial_of_is_a_hidden_sibling():
    assert upper_intent.partial_of("/srv/layers/one") == "/srv/layers/.one.overlay-commit"
    assert upper_intent.partial_of("/srv/layers/one/") == "/srv/layers/.one.overlay-commit"


def test_planned_actions_of_a_commit_of_a_mounted_overlay():
    steps = [step["action"] for step in _intent().planned_actions()]
    assert steps == ["unmount", "write_layer", "swap_work", "persist", "swap_upper", "mount", "remove_old_upper"]


def test_planned_actions_of_a_reset_with_a_backup_of_an_unmounted_overlay():
    steps = _intent("reset", mounted=False, backup="/srv/keep").planned_actions()
    assert [step["action"] for step in steps] == ["swap_work", "swap_upper", "backup", "remove_old_upper"]
    assert steps[2]["path"] == "/srv/keep"


def test_an_unmounted_commit_persists_the_new_layers():
    steps = [step["action"] for step in _intent(mounted=False).planned_actions()]
    assert "persist" in steps and "mount" not in steps


@pytest.mark.parametrize("state, mounted, persist, mounting, expected", [
    ("committed", True, "fstab", True, "mounted"),
    ("committed", True, "fstab", False, "present"),
    ("committed", False, "fstab", True, None),
    ("committed", False, "fstab", False, "present"),
    ("committed", False, "none", False, None),
    ("reset", True, "systemd", True, "mounted"),
    ("reset", True, "systemd", False, None),
    ("reset", False, "fstab", True, None),
])
def test_after_params(state, mounted, persist, mounting, expected):
    intent = _intent(state, mounted)
    intent.spelled["persist"] = persist
    params = intent.after_params(intent.journal_record(), mounting=mounting)
    if expected is None:
        assert params is None
        return
    assert params["state"] == expected
    assert params["lowerdir"] == intent.new_lowerdir


def test_journal_record_round_trips_through_resumed():
    intent = _intent(backup="/srv/keep")
    record = intent.journal_record()
    assert record["identities"] == {"upperdir": [1, 2], "workdir": [1, 3]}  # as JSON keeps them
    later = _intent("reset", mounted=False)
    again = upper_intent.resumed(None, later, record)
    assert again.state == "committed" and again.mounted and again.backup == "/srv/keep"
    assert again.identities == {"upperdir": (1, 2), "workdir": (1, 3)}
    assert again.new_lowerdir == ["/srv/layers/one", "/srv/l1", "/srv/l2"]


def test_not_as_declared_names_the_fields_and_the_fix():
    intent = _intent()
    intent.live = {"lowerdir": ["/srv/other"], "upperdir": "/srv/u"}
    with pytest.raises(OverlayError) as caught:
        raise OverlayError(upper_intent._not_as_declared(intent, ["lowerdir"]))
    assert "lowerdir ['/srv/other']" in caught.value.message
    assert "overlayfs.mounts.overlay_mount" in caught.value.message
