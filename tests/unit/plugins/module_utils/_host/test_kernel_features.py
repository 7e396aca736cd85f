# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

import os

import pytest

from ansible_collections.overlayfs.mounts.plugins.module_utils._host import kernel_features as _features
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError
from ansible_collections.overlayfs.mounts.plugins.module_utils._host.kernel_features import Features, check_support

OLD = Features("6.1.0-28-amd64", new_api=True, native_params=False)
NEW = Features("6.12.0", new_api=True, native_params=True, lowerdir_plus=True)


def test_describe_says_what_the_kernel_offers():
    assert OLD.describe() == (
        "Linux 6.1.0-28-amd64: new mount API yes, overlay options parsed one by one no (otherwise all share "
        "one page), lowerdir+ no")
    assert "has no overlay filesystem" in Features("5.10", overlay=False).describe()


def test_an_option_the_kernel_refuses_is_an_error_naming_options():
    def ask(option, _feats):
        return (False, ['overlayfs: unrecognized mount option "uuid=auto" or missing value']) \
            if option == "uuid=auto" else (True, [])
    check_support(["index=off"], feats=OLD, ask=ask)
    with pytest.raises(OverlayError) as caught:
        check_support(["index=off", "uuid=auto"], feats=OLD, ask=ask)
    message = caught.value.message
    assert message.startswith("options: the running kernel does not take 'uuid=auto'")
    assert "unrecognized mount option" in message and "Linux 6.1.0-28-amd64" in message


def test_datadir_needs_overlayfs_own_option_parser():
    with pytest.raises(OverlayError, match="^datadir: this kernel has no data-only lower layers"):
        check_support([], ["/srv/data"], feats=OLD, ask=lambda o, f: (True, []))
    check_support(["metacopy=on"], ["/srv/data"], feats=NEW, ask=lambda o, f: (True, []))


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="fsopen() needs CAP_SYS_ADMIN")


@needs_root
def test_the_running_kernel_is_probed_without_mounting():
    before = open("/proc/self/mountinfo").read()
    feats = _features.features(refresh=True)
    assert feats.overlay and feats.new_api
    if feats.native_params:
        # A kernel that parses options itself refuses what it does not know, at once.
        assert _features.accepts("no_such_option")[0] is False
    assert _features.accepts("index=off")[0] is True
    assert _features.accepts("uuid=sometimes")[0] is False
    assert open("/proc/self/mountinfo").read() == before


@needs_root
def test_the_create_probe_answers_like_the_kernel_and_leaves_nothing():
    # The probe older kernels need: create (never mount) a read-only overlay.
    before = sorted(os.listdir("/run"))
    assert _features._create_probe("index", "off") == (True, [])
    ok, log = _features._create_probe("xino", "sideways")
    assert ok is False and log
    assert sorted(os.listdir("/run")) == before
