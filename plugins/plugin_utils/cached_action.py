# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The action of this collection's modules: ansible-core's own, with the module's payload kept between runs."""

import dataclasses
import os
from typing import Any, Dict, Mapping, Optional

import ansible
from ansible import constants as C
from ansible.plugins.action.normal import ActionModule as NormalAction
from ansible.plugins.loader import module_utils_loader
from ansible.release import __version__ as ansible_version

from ansible_collections.overlayfs.mounts.plugins.module_utils._host.code_cache import BYTECODE_KEY
from ansible_collections.overlayfs.mounts.plugins.plugin_utils.payload_cache import (
    MAGIC, Plan, bytecode_wanted, cache_dir, host_file, host_magic, make_plan, read_compiled, remember_host, run_cached,
    with_compiled)


class CachedPayloadAction(NormalAction):
    """Runs the task's module as ansible-core does (check mode, async, temporary files), through the payload cache."""

    _payload: Optional[Plan] = None
    _host_file = ""

    def run(self, tmp: Optional[str] = None, task_vars: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        task_vars = task_vars or {}
        self._payload = self._payload_plan(task_vars)
        result = run_cached(self._payload, lambda: super(CachedPayloadAction, self).run(tmp, task_vars))
        reported = result.pop(BYTECODE_KEY, None)
        if self._host_file:
            remember_host(self._host_file, reported)
        return result

    def _configure_module(self, module_name: str, module_args: Dict[str, Any], task_vars: Dict[str, Any]) -> Any:
        """ansible-core's payload for this host, with compiled code where the host's Python is known to run this controller's."""
        configured = super(CachedPayloadAction, self)._configure_module(module_name=module_name, module_args=module_args,
                                                                        task_vars=task_vars)
        plan = self._payload
        built = configured[0] if isinstance(configured, tuple) and len(configured) == 2 else None
        if plan is None or not plan.bytecode_for or self._host_file or not isinstance(getattr(built, "b_module_data", None), bytes):
            return configured
        context = self._play_context
        self._host_file = host_file(plan.directory, (context.connection, context.remote_addr, context.port, getattr(built, "shebang", "")))
        compiled = read_compiled(plan.run_file) if host_magic(self._host_file) == MAGIC else None
        data = with_compiled(built.b_module_data, compiled) if compiled else None
        if data is None or not dataclasses.is_dataclass(built):
            return configured
        return dataclasses.replace(built, b_module_data=data), configured[1]

    def _payload_plan(self, task_vars: Mapping[str, Any]) -> Optional[Plan]:
        """Where this task's module payload is kept, or None (cache off, or not known how this ansible-core keeps it)."""
        directory = cache_dir(os.environ, getattr(C, "ANSIBLE_HOME", ""))
        run_tmp = getattr(C, "DEFAULT_LOCAL_TMP", "")
        if directory is None or not run_tmp:
            return None
        use_vars = task_vars
        if self._task.delegate_to:
            use_vars = (task_vars.get("ansible_delegated_vars") or {}).get(self._task.delegate_to, task_vars)
        found = self._shared_loader_obj.module_loader.find_plugin_with_context(
            self._task.resolved_action or self._task.action, ".py", collection_list=self._task.collections)
        if not found.resolved or not found.plugin_resolved_path:
            return None
        compression = C.config.get_config_value("DEFAULT_MODULE_COMPRESSION", variables=use_vars)
        return make_plan(directory, os.path.abspath(found.plugin_resolved_path), run_tmp, str(compression), ansible_version,
                         os.path.dirname(ansible.__file__), module_utils_loader.print_paths().split(os.pathsep),
                         bytecode_wanted(os.environ))
