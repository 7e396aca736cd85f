# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The modules' action: the payload plan it makes from the task, and that it runs the module as ansible-core does."""

import dataclasses
import hashlib
import os

import pytest
from ansible import constants as C
from ansible.plugins.action.normal import ActionModule as NormalAction

from ansible_collections.overlayfs.mounts.plugins.module_utils._host.code_cache import BYTECODE_KEY
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


@dataclasses.dataclass(frozen=True)
class BuiltModule(object):
    """Stands for ansible-core's built module: the wrapper script and its interpreter line."""

    b_module_data: bytes
    shebang: str = "#!/usr/bin/python3"


class PlayContext(object):
    connection = "ssh"
    remote_addr = "10.0.0.7"
    port = 22


WRAPPER = b"_ansiballz_main(\nzip_data='UEsPLAIN',\n)\n"


@pytest.fixture
def compiled_entry(controller, monkeypatch):
    """An action whose plan has a kept entry with a compiled archive in place of ``UEsPLAIN``."""
    tmp_path, seen = controller
    plan = payload_cache.Plan(str(tmp_path / "cache"), str(tmp_path / "cache" / "m.payload"), str(tmp_path / "run" / "m"), "", "",
                              "overlay_mounts")
    compiled = (hashlib.sha256(b"UEsPLAIN").hexdigest(), b"UEsCOMPILED")
    monkeypatch.setattr(cached_action, "read_compiled", lambda run_file: compiled if run_file == plan.run_file else None)
    monkeypatch.setattr(NormalAction, "_configure_module", lambda self, **kwargs: (BuiltModule(WRAPPER), "/m.py"))
    action = _action()
    action._payload = plan
    action._play_context = PlayContext()
    return action, plan


def test_a_host_gets_the_compiled_archive_once_it_reported_this_controllers_bytecode(compiled_entry):
    action, plan = compiled_entry
    built, path = action._configure_module(module_name="overlayfs.mounts.overlay_mounts", module_args={}, task_vars={})
    assert built.b_module_data == WRAPPER and path == "/m.py"  # not heard from yet
    assert action._host_file == payload_cache.host_file(plan.directory, ("ssh", "10.0.0.7", 22, "#!/usr/bin/python3"))
    assert payload_cache.remember_host(action._host_file, payload_cache.MAGIC)
    action._host_file = ""
    built, path = action._configure_module(module_name="overlayfs.mounts.overlay_mounts", module_args={}, task_vars={})
    assert built.b_module_data == WRAPPER.replace(b"UEsPLAIN", b"UEsCOMPILED") and built.shebang == "#!/usr/bin/python3"


def test_a_host_of_another_bytecode_or_without_the_setting_gets_ansible_cores_payload(compiled_entry):
    action, plan = compiled_entry
    host = payload_cache.host_file(plan.directory, ("ssh", "10.0.0.7", 22, "#!/usr/bin/python3"))
    other = "00000000" if payload_cache.MAGIC != "00000000" else "11111111"
    assert payload_cache.remember_host(host, other)
    assert action._configure_module(module_name="m", module_args={}, task_vars={})[0].b_module_data == WRAPPER
    assert payload_cache.remember_host(host, payload_cache.MAGIC)
    action._host_file = ""
    action._payload = payload_cache.Plan(plan.directory, plan.entry, plan.run_file, "", "", "")
    assert action._configure_module(module_name="m", module_args={}, task_vars={})[0].b_module_data == WRAPPER
    assert action._host_file == ""


def test_the_reported_bytecode_is_taken_out_of_the_result_and_recorded(controller, monkeypatch, tmp_path):
    host = str(tmp_path / "hosts" / "h")

    def normal_run(self, tmp=None, task_vars=None):
        self._host_file = task_vars.get("host_file", "")  # what _configure_module sets when it builds the module
        return {"changed": False, BYTECODE_KEY: "a70d0d0a"}

    monkeypatch.setattr(NormalAction, "run", normal_run)
    monkeypatch.setattr(cached_action, "run_cached", lambda plan, run: run())
    assert _action().run(task_vars={}) == {"changed": False}
    assert not os.path.exists(host)
    assert _action().run(task_vars={"host_file": host}) == {"changed": False}
    assert payload_cache.host_magic(host) == "a70d0d0a"
