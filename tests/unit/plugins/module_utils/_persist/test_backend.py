# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

import pytest

from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError
from ansible_collections.overlayfs.mounts.plugins.module_utils._persist.backend import boot_extras


@pytest.mark.parametrize("boot, options, expected", [
    (True, [], []),
    (False, [], ["noauto"]),
    (True, ["nofail", "nofail", " _netdev "], ["nofail", "_netdev"]),
    (False, ["x-systemd.device-timeout=5s"], ["noauto", "x-systemd.device-timeout=5s"]),
])
def test_boot_extras(boot, options, expected):
    assert boot_extras(boot, options) == expected


@pytest.mark.parametrize("options", [["noauto"], ["auto"], [""], ["x-overlayfs.managed"]])
def test_boot_extras_refuses_what_boot_owns(options):
    with pytest.raises(OverlayError, match="^boot_options:"):
        boot_extras(True, options)


@pytest.mark.parametrize("option", ["lowerdir+=/x", "datadir+=/x", "lowerdir=/x", "upperdir=/x", "workdir=/x",
                                    "index=off", "x-systemd.requires-mounts-for=/x",
                                    'x-opt="unbalanced', "x-opt=a\\", "a,b"])
def test_boot_options_refused(option):
    with pytest.raises(OverlayError) as error:
        boot_extras(True, [option])
    assert error.value.message.startswith("boot_options:")


def test_boot_option_quotes_balanced_and_escaped_backslash_accepted():
    assert boot_extras(True, ['x-opt="a b"', "x-two=c\\\\"]) == ['x-opt="a b"', "x-two=c\\\\"]
