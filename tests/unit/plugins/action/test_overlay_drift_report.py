# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The overlayfs.mounts.overlay_drift_report action: the report from the play's facts, written on the controller."""

import json
import os
from unittest import mock

import pytest

from ansible.errors import AnsibleActionFail
from ansible.playbook.task import Task

from ansible_collections.overlayfs.mounts.plugins.action import overlay_drift_report as action
from ansible_collections.overlayfs.mounts.plugins.filter.drift_report import drift_report

DRIFTED = {"status": "ok", "msg": None, "declared_paths": ["/srv/m"], "overlays": [],
           "declared": [{"path": "/srv/m", "field": "mounted", "declared": True, "live": False, "persisted": True}]}
IN_SYNC = {"status": "ok", "msg": None, "declared": [], "declared_paths": ["/srv/m"],
           "overlays": [{"path": "/srv/m", "drift": []}]}
DOWN = {"status": "unreachable", "msg": "Failed to connect to the host via ssh: Connection refused",
        "overlays": None, "declared": None}


def _hostvars(**facts):
    return {host: ({"overlay_drift": data} if data is not None else {"inventory_hostname": host})
            for host, data in facts.items()}


def _run(tmp_path, args, hostvars, check_mode=False, hosts=None):
    task = Task()
    task.args = dict(args)
    task.check_mode = check_mode
    plugin = action.ActionModule(task, mock.MagicMock(), mock.MagicMock(), loader=None, templar=None,
                                 shared_loader_obj=None)
    task_vars = {"hostvars": hostvars, "ansible_play_hosts_all": hosts or sorted(hostvars)}
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        return plugin.run(task_vars=task_vars)
    finally:
        os.chdir(cwd)


def test_per_host_reads_each_hosts_fact_and_none_where_it_is_missing():
    hostvars = _hostvars(web1=IN_SYNC, web2=None)
    assert action.per_host(hostvars, ["web1", "web2", "gone"], "overlay_drift") == {
        "web1": IN_SYNC, "web2": None, "gone": None}


def test_per_host_makes_each_hosts_data_from_its_registered_result():
    hostvars = {"web1": {"overlay_drift_read": {"overlay_mounts": []}, "overlay_drift": IN_SYNC},
                "down": {"overlay_drift_read": {"unreachable": True, "msg": "Connection refused"}},
                "never": {"inventory_hostname": "never"}}
    assert action.per_host(hostvars, ["web1", "down", "never", "gone"], "overlay_drift", "overlay_drift_read") == {
        "web1": {"status": "ok", "msg": None, "overlays": [], "declared": None, "declared_paths": [],
                 "declared_mount_points": {}, "errors": []},
        "down": {"status": "unreachable", "msg": "Connection refused"}, "never": None, "gone": None}


class _HostVars(dict):
    """Ansible's hostvars as the action sees them: item access templates (here: refused), ``raw_get`` does not."""

    def __getitem__(self, host):
        raise AssertionError("hostvars[%s] templates the host's whole vars" % host)

    def get(self, host, default=None):
        return self[host]

    def raw_get(self, host):
        return dict.__getitem__(self, host)


def test_per_host_reads_registered_results_as_stored_without_templating_them():
    hostvars = _HostVars(web1={"overlay_drift_read": {"overlay_mounts": [], "drift": []}},
                         down={"overlay_drift_read": {"unreachable": True, "msg": "Connection refused"}})
    data = action.per_host(hostvars, ["web1", "down", "gone"], "overlay_drift", "overlay_drift_read")
    assert (data["web1"]["status"], data["down"]["status"], data["gone"]) == ("ok", "unreachable", None)
    with pytest.raises(AssertionError, match="templates"):  # a fact is read as a playbook reads it
        action.per_host(hostvars, ["web1"], "overlay_drift")


def test_a_report_from_registered_results(tmp_path):
    hostvars = {"web1": {"read": {"overlay_mounts": [{"path": "/srv/m", "drift": []}], "drift": [],
                                  "overlays": [{"path": "/srv/m", "mount": {"path": "/srv/m"}}]}},
                "down": {"read": {"unreachable": True, "msg": "Connection refused"}}}
    result = _run(tmp_path, {"result": "read", "fail_on": ["unreachable"]}, hostvars)
    assert result["failed"] and result["msg"] == "1 host(s) unreachable: down"
    assert result["summary"]["in_sync"] == 1 and result["summary"]["unreachable"] == 1
    with open(tmp_path / "drift.json", encoding="utf-8") as handle:
        assert [(h["host"], h["status"], h["declared"]) for h in json.load(handle)["hosts"]] == [
            ("down", "unreachable", None), ("web1", "ok", 1)]


def test_a_result_that_is_not_a_modules_names_the_option(tmp_path):
    result = _run(tmp_path, {"result": "read"}, {"web1": {"read": {"overlay_mounts": [{"drift": []}]}}})
    assert result["failed"] and result["msg"].startswith("overlay_drift_report: the result read of a host is not")
    assert not os.listdir(tmp_path)


def test_the_files_are_what_the_filter_renders(tmp_path):
    hostvars = _hostvars(web1=IN_SYNC, web2=DRIFTED, down=DOWN)
    result = _run(tmp_path, {}, hostvars)
    assert not result.get("failed"), result
    per_host = {host: facts.get("overlay_drift") for host, facts in hostvars.items()}
    report = drift_report(per_host)
    with open(tmp_path / "drift.json", encoding="utf-8") as handle:
        assert json.load(handle) == report
    assert (tmp_path / "drift.md").read_text(encoding="utf-8") == drift_report(report, output="markdown")
    assert "<!DOCTYPE html>" in (tmp_path / "drift.html").read_text(encoding="utf-8")
    assert result["changed"] is True
    assert result["dir"] == str(tmp_path)
    assert result["lines"] == drift_report(report, output="lines")
    assert result["summary"] == {"hosts": 3, "in_sync": 1, "drifted": 1, "unreachable": 1, "failed": 0,
                                 "overlays": 1, "drifted_overlays": 1, "drifted_fields": 1}
    assert result["gate"] == []
    assert sorted(os.listdir(tmp_path)) == ["drift.html", "drift.json", "drift.md"]
    for name in ("drift.json", "drift.md", "drift.html"):
        assert oct(os.stat(tmp_path / name).st_mode & 0o7777) == "0o644"


def test_a_host_of_the_play_without_the_fact_is_failed_and_hosts_limits_the_report(tmp_path):
    result = _run(tmp_path, {"dir": "out"}, _hostvars(web1=IN_SYNC, web2=None))
    assert result["summary"]["failed"] == 1 and result["summary"]["hosts"] == 2
    assert result["dir"] == str(tmp_path / "out")
    only = _run(tmp_path, {"dir": "only", "hosts": ["web1"]}, _hostvars(web1=IN_SYNC, web2=None))
    assert only["summary"]["hosts"] == 1 and only["summary"]["in_sync"] == 1


def test_unchanged_files_are_left_alone(tmp_path):
    hostvars = _hostvars(web1=IN_SYNC)
    _run(tmp_path, {}, hostvars)
    before = os.stat(tmp_path / "drift.json").st_ino
    again = _run(tmp_path, {}, hostvars)
    assert os.stat(tmp_path / "drift.json").st_ino == before
    assert str(tmp_path / "drift.json") not in again["written"]
    assert str(tmp_path / "drift.md") not in again["written"]


def test_check_mode_writes_nothing_and_says_what_would_change(tmp_path):
    result = _run(tmp_path, {"dir": "report"}, _hostvars(web1=IN_SYNC), check_mode=True)
    assert result["changed"] is True
    assert len(result["written"]) == 3
    assert not (tmp_path / "report").exists()


@pytest.mark.parametrize("fail_on, reason", [(["drift"], "web2"), (["unreachable"], "down")])
def test_fail_on_fails_after_the_files_are_written(tmp_path, fail_on, reason):
    result = _run(tmp_path, {"fail_on": fail_on}, _hostvars(web1=IN_SYNC, web2=DRIFTED, down=DOWN))
    assert result["failed"] is True
    assert reason in result["msg"] and result["gate"]
    assert (tmp_path / "drift.json").exists() and result["lines"]


def test_fail_on_with_nothing_found_passes(tmp_path):
    result = _run(tmp_path, {"fail_on": ["drift", "unreachable", "failed"]}, _hostvars(web1=IN_SYNC))
    assert not result.get("failed") and result["gate"] == []


def test_a_wrong_fail_on_names_the_field_and_writes_nothing(tmp_path):
    with pytest.raises(AnsibleActionFail, match="fail_on.*drifts"):
        _run(tmp_path, {"fail_on": ["drifts"]}, _hostvars(web1=IN_SYNC))
    assert os.listdir(tmp_path) == []


def test_engines_keeps_only_those_engines(tmp_path):
    container = {"status": "ok", "msg": None, "declared": None, "declared_paths": [],
                 "overlays": [{"path": "/var/lib/docker/overlay2/x/merged", "engine": "docker", "drift": [
                     {"field": "mounted", "live": False, "persisted": True}]}]}
    result = _run(tmp_path, {"engines": ["overlayfs.mounts", "none"]}, _hostvars(web1=container))
    assert result["summary"]["drifted_fields"] == 0


def test_a_failed_write_fails_the_task_and_leaves_the_old_file_and_no_hidden_one(tmp_path):
    (tmp_path / "drift.md").write_text("old\n", encoding="utf-8")
    with mock.patch("os.replace", side_effect=OSError(28, "No space left on device")):
        result = _run(tmp_path, {}, _hostvars(web1=IN_SYNC))
    assert result["failed"] is True
    assert "drift" in result["msg"] and "No space left on device" in result["msg"]
    assert os.listdir(tmp_path) == ["drift.md"]
    assert (tmp_path / "drift.md").read_text(encoding="utf-8") == "old\n"
