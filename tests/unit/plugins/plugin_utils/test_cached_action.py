# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The modules' action: the payload plan it makes from the task, and that it runs the module as ansible-core does."""

import os

import pytest
from ansible import constants as C
from ansible.plugins.action.normal import ActionModule as NormalAction

from ansible_collections.overlayfs.mounts.plugins.plugin_utils import cached_action, payload_cache

MODULE = "/c/ansible_collections/overlayfs/mounts/plugins/modules/overlay_mounts.py"


class Found(object):
    def __init__(self, path):
        self.resolved = path is not None
        self.plugin_resolved_path = path


class ModuleLoader(object):
    def __init__(self, path):
        self.path = path
        self.asked = []

    def find_plugin_with_context(self, name, suffix, collection_list=None):
        self.asked.append((name, suffix))
        return Found(self.path)


class Task(object):
    action = "overlayfs.mounts.overlay_mounts"
    resolved_action = "overlayfs.mounts.overlay_mounts"
    collections = []
    delegate_to = None


class Loaders(object):
    def __init__(self, path):
        self.module_loader = ModuleLoader(path)


def _action(path=MODULE, delegate_to=None):
    action = object.__new__(cached_action.CachedPayloadAction)
    action._task = Task()
    action._task.delegate_to = delegate_to
    action._shared_loader_obj = Loaders(path)
    return action


@pytest.fixture
def controller(monkeypatch, tmp_path):
    """The controller's settings: ANSIBLE_HOME and the run's temporary dir under tmp_path; compression per vars."""
    monkeypatch.delenv(payload_cache.ENV, raising=False)
    monkeypatch.setattr(C, "ANSIBLE_HOME", str(tmp_path / "home"), raising=False)
    monkeypatch.setattr(C, "DEFAULT_LOCAL_TMP", str(tmp_path / "run"), raising=False)
    seen = []

    def config_value(name, variables=None):
        seen.append((name, variables))
        return (variables or {}).get("compression", "ZIP_DEFLATED")

    monkeypatch.setattr(C.config, "get_config_value", config_value)
    return tmp_path, seen


def test_the_plan_uses_the_resolved_module_and_ansible_home(controller):
    tmp_path, seen = controller
    action = _action()
    plan = action._payload_plan({})
    assert action._shared_loader_obj.module_loader.asked == [("overlayfs.mounts.overlay_mounts", ".py")]
    assert plan.run_file == os.path.join(str(tmp_path / "run"), "ansiballz_cache",
                                         "ansible_collections.overlayfs.mounts.plugins.modules.overlay_mounts-ZIP_DEFLATED-none")
    assert os.path.dirname(plan.entry) == os.path.join(str(tmp_path / "home"), "overlayfs.mounts", "payload")
    assert seen == [("DEFAULT_MODULE_COMPRESSION", {})]


def test_a_delegated_task_takes_the_compression_of_the_host_it_runs_on(controller):
    tmp_path, seen = controller
    task_vars = {"compression": "ZIP_DEFLATED", "ansible_delegated_vars": {"other": {"compression": "ZIP_STORED"}}}
    plan = _action(delegate_to="other")._payload_plan(task_vars)
    assert plan.run_file.endswith("-ZIP_STORED-none")
    assert seen[-1] == ("DEFAULT_MODULE_COMPRESSION", {"compression": "ZIP_STORED"})


def test_no_plan_when_off_or_the_module_is_not_found(controller, monkeypatch):
    assert _action(path=None)._payload_plan({}) is None
    monkeypatch.setenv(payload_cache.ENV, "off")
    assert _action()._payload_plan({}) is None


def test_run_is_ansible_cores_own_through_the_cache(controller, monkeypatch):
    calls = []

    def normal_run(self, tmp=None, task_vars=None):
        calls.append(("module", task_vars))
        return {"changed": False}

    def run_cached(plan, run):
        calls.append(("cache", plan is not None))
        return run()

    monkeypatch.setattr(NormalAction, "run", normal_run)
    monkeypatch.setattr(cached_action, "run_cached", run_cached)
    assert _action().run(task_vars={"a": 1}) == {"changed": False}
    assert calls == [("cache", True), ("module", {"a": 1})]
