# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The overlayfs.mounts.prometheus_metrics filter, as the overlay_host role calls it."""

import time

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.overlayfs.mounts.plugins.filter.prometheus_metrics import FilterModule, prometheus_metrics

RESULT = {"overlays": [{"path": "/srv/m", "mount": {"path": "/srv/m"}, "drift": []}], "pruned": [],
          "drift": [{"path": "/srv/m", "field": "mounted", "declared": True, "live": False, "persisted": True}]}


def test_the_filter_is_registered():
    assert FilterModule().filters() == {"prometheus_metrics": prometheus_metrics}


def test_the_role_call():
    text = prometheus_metrics(RESULT, declared=[{"path": "/srv/m"}], overlays=[{"path": "/srv/m", "mounted": False}],
                              check_mode=True, timestamp=12.5)
    assert 'overlayfs_mounts_drift{engine="overlayfs.mounts",mount_point="/srv/m",field="mounted"} 1\n' in text
    assert text.endswith("overlayfs_mounts_last_check_timestamp_seconds 12.5\n")


def test_the_timestamp_defaults_to_now():
    before = time.time()
    text = prometheus_metrics(RESULT)
    stamp = float(text.rsplit(" ", 1)[1])
    assert before <= stamp <= time.time()


@pytest.mark.parametrize("args, message", [
    (("not a result",), "registered result"),
    ((RESULT, "x"), "declared must be a list"),
    ((RESULT, None, [1]), "overlays must be a list"),
    ((RESULT, None, None, "yes"), "check_mode must be true or false"),
    ((RESULT, None, None, False, "soon"), "timestamp must be seconds"),
])
def test_bad_arguments(args, message):
    with pytest.raises(AnsibleFilterError, match=message):
        prometheus_metrics(*args)
