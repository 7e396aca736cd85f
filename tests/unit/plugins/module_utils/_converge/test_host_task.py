# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``host_task.run_task``: the metrics file written whatever the run's outcome, the listing returned only when asked."""

import os

import pytest

from ansible_collections.overlayfs.mounts.plugins.module_utils._converge import host_task
from ansible_collections.overlayfs.mounts.plugins.module_utils._host.kernel_module import MODULES_LOAD_TEXT
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError
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


# ---- load_module: overlayfs loaded first, its boot-time file only for a list that passed its checks ----------

REFUSED = "path: mounts[0] (/srv/m1) and mounts[1] (/srv/m1) declare the same mount point /srv/m1"


def refused(accepted):
    raise OverlayError(REFUSED, duplicates=["mounts[0] (/srv/m1)", "mounts[1] (/srv/m1)"])


def accepted_list(accepted):
    accepted()
    return {"changed": False, "overlays": [], "pruned": [], "order": [], "drift": []}, []


@pytest.fixture
def host_run(ansible_module, monkeypatch, tmp_path):
    """``host_run(batch, loaded=False, check_mode=False)``: converge_host with load_module on and the boot-time
    file at tmp_path/overlay.conf; overlayfs is loaded by this run when ``loaded``; ``batch(accepted)`` stands
    for run_batch (the list refused, or accepted and carried out)."""
    def run(batch, loaded=False, check_mode=False):
        def load(module, modules_load_file):
            return loaded, {"available": not loaded, "loaded": loaded, "modules_load_file": modules_load_file}
        monkeypatch.setattr(host_task, "load_overlay", load)
        monkeypatch.setattr(host_task, "run_batch", lambda module, accepted: batch(accepted))
        args = {"mounts": [ENTRY, ENTRY], "_ansible_check_mode": check_mode, "load_module": True,
                "modules_load_file": str(tmp_path / "overlay.conf")}
        with ansible_module(args, argument_spec=batch_spec(), supports_check_mode=True) as module:
            return host_task.converge_host(module)
    return run


@pytest.mark.parametrize("check_mode", [False, True], ids=["real", "check"])
@pytest.mark.parametrize("loaded", [False, True], ids=["listed", "loaded now"])
def test_a_refused_list_writes_no_boot_time_file(tmp_path, host_run, loaded, check_mode):
    out, failed = host_run(refused, loaded=loaded, check_mode=check_mode)
    assert failed and out["msg"] == REFUSED and out["duplicates"]
    assert out["changed"] is loaded  # loading the kernel module is the one change a refused list can see
    assert out["kernel"] == {"available": not loaded, "loaded": loaded, "modules_load_file": str(tmp_path / "overlay.conf")}
    assert os.listdir(str(tmp_path)) == []


@pytest.mark.parametrize("check_mode", [False, True], ids=["real", "check"])
def test_an_accepted_list_writes_the_boot_time_file(tmp_path, host_run, check_mode):
    out, failed = host_run(accepted_list, check_mode=check_mode)
    assert not failed and out["changed"] is True and out["kernel"]["modules_load_file_changed"] is True
    assert os.listdir(str(tmp_path)) == ([] if check_mode else ["overlay.conf"])
    if not check_mode:
        assert (tmp_path / "overlay.conf").read_text() == MODULES_LOAD_TEXT
        again, _failed = host_run(accepted_list)
        assert again["changed"] is False and "modules_load_file_changed" not in again["kernel"]
