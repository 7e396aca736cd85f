# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""refuse_hands_off: one refusal per owner, each saying how that owner changes its mount."""

import pytest

from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.refusals import refuse_hands_off


@pytest.mark.parametrize("path, engine, says", [
    ("/usr", "systemd-sysext", ["systemd-sysext overlay", "'systemd-sysext unmerge'", "'systemd-sysext refresh'",
                                "/var/lib/extensions"]),
    ("/etc", "systemd-confext", ["systemd-confext overlay", "'systemd-confext unmerge'", "/var/lib/confexts"]),
    ("/sysroot", "composefs", ["composefs image", "EROFS", "ostree, bootc"]),
    ("/home/u/m", "fuse-overlayfs", ["not a kernel overlay", "'fusermount3 -u'"]),
])
def test_each_system_overlay_has_its_own_reason(path, engine, says):
    with pytest.raises(OverlayError) as caught:
        refuse_hands_off(path, engine)
    message = caught.value.message
    assert message.startswith("path: '%s' is " % path)
    assert all(part in message for part in says), message
    assert "never mounts over, re-layers, unmounts or prunes it" in message
    assert caught.value.details == {"engine": engine}


def test_a_container_engine_keeps_its_own_refusal():
    with pytest.raises(OverlayError, match="root filesystem of a container, mounted by Docker") as caught:
        refuse_hands_off("/var/lib/docker/overlay2/x/merged", "docker")
    assert caught.value.details == {"engine": "docker"}
