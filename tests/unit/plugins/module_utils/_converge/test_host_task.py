# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``host_task.run_task``: the metrics file written whatever the run's outcome, the listing returned only when asked."""

import os

import pytest

from ansible_collections.overlayfs.mounts.plugins.module_utils._converge import host_task
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.spec import batch_spec

ENTRY = {"path": "/srv/m1", "lowerdir": ["/srv/l1"], "upperdir": "/srv/u1", "workdir": "/srv/w1"}
LISTED = [{"path": "/srv/m1", "mounted": True, "engine": None, "drift": []}]


def converged(out, failed=False):
    return lambda module: (dict(out), failed)


@pytest.fixture
def task(ansible_module):
    """``task(converge, **params)``: run_task with a real AnsibleModule given ``params`` and one declared entry."""
    def run(converge, check_mode=False, **params):
        args = dict({"mounts": [ENTRY], "_ansible_check_mode": check_mode}, **params)
        with ansible_module(args, argument_spec=batch_spec(), supports_check_mode=True) as module:
            return host_task.run_task(module, converge)
    return run


def samples(path):
    with open(path) as handle:
        return {line.rsplit(" ", 1)[0]: line.rsplit(" ", 1)[1] for line in handle.read().splitlines()
                if line and not line.startswith("#")}


def test_the_metrics_file_and_no_listing_without_list_overlays(tmp_path, task):
    prom = str(tmp_path / "overlayfs_mounts.prom")
    out, failed = task(converged({"changed": False, "overlays": [{"path": "/srv/m1", "live": {}}], "pruned": [],
                                  "drift": [], "overlay_mounts": LISTED}), check_mode=True, metrics_file=prom)
    assert not failed and "overlay_mounts" not in out
    got = samples(prom)
    assert got['overlayfs_mounts_declared{state="mounted"}'] == "1"
    assert got["overlayfs_mounts_failed"] == "0"
    assert oct(os.stat(prom).st_mode & 0o777) == "0o644"
    assert sorted(os.listdir(str(tmp_path))) == ["overlayfs_mounts.prom"]


def test_list_overlays_keeps_the_listing_and_no_metrics_file_is_written_unless_asked(tmp_path, task):
    out, failed = task(converged({"changed": False, "overlays": [], "pruned": [], "overlay_mounts": LISTED}),
                       list_overlays=True)
    assert (out["overlay_mounts"], failed) == (LISTED, False)
    assert os.listdir(str(tmp_path)) == []


def test_an_unexpected_error_is_raised_once_the_file_says_the_run_failed(tmp_path, task):
    prom = str(tmp_path / "overlayfs_mounts.prom")

    def broken(module):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        task(broken, metrics_file=prom)
    assert samples(prom)["overlayfs_mounts_failed"] == "1"


def test_a_metrics_file_that_cannot_be_written_fails_the_task_and_keeps_the_results(tmp_path, task):
    prom = str(tmp_path / "missing" / "overlayfs_mounts.prom")
    out, failed = task(converged({"changed": True, "overlays": [{"path": "/srv/m1"}], "pruned": [],
                                  "msg": "1 of 1 overlays failed: /srv/m1: no"}, failed=True), metrics_file=prom)
    assert failed and out["changed"] is True and out["overlays"] == [{"path": "/srv/m1"}]
    assert out["msg"].startswith("1 of 1 overlays failed: /srv/m1: no; writing metrics_file ")
    assert str(tmp_path / "missing") in out["msg"]
    assert not os.path.exists(str(tmp_path / "missing"))
