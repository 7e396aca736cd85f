# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""_model/upper_spec.py: overlay_upper's options."""

import pytest

from ansible_collections.overlayfs.mounts.plugins.module_utils._model import spec, upper_spec
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError


@pytest.mark.parametrize("value, expected", [
    (True, True), (False, False), ("yes", True), ("False", False), ("", False),
    ("/srv/backups/kiosk", "/srv/backups/kiosk"), ("/srv/backups/kiosk/", "/srv/backups/kiosk"),
])
def test_backup_choice(value, expected):
    assert upper_spec.backup_choice(value) == expected


@pytest.mark.parametrize("value", ["relative/dir", 3, ["/a"], None])
def test_backup_choice_refuses_what_is_neither_a_bool_nor_a_path(value):
    with pytest.raises(OverlayError) as caught:
        upper_spec.backup_choice(value)
    assert caught.value.message.startswith("backup:")


def test_declaration_keys_are_overlay_mounts_own():
    for name in upper_spec.DECLARATION_KEYS:
        if name in ("persist", "boot"):
            assert "default" not in upper_spec.UPPER_SPEC[name]
            continue
        assert upper_spec.UPPER_SPEC[name] == spec.MOUNT_SPEC[name], name
    assert upper_spec.UPPER_SPEC["backup"] == dict(type="raw", default=False)
    assert upper_spec.UPPER_SPEC["state"]["choices"] == ["reset", "committed"]


def test_declaration_params_leaves_out_the_upper_options():
    params = dict((name, None) for name in upper_spec.UPPER_SPEC)
    params.update(path="/srv/m", state="reset", layer="/l", backup=True)
    declared = upper_spec.declaration_params(params)
    assert declared["path"] == "/srv/m"
    assert "state" not in declared and "layer" not in declared and "backup" not in declared
