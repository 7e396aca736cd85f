# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""_spec.py is the one argument spec: the modules, their docs and the role's spec agree with it.

Each module's spec is taken from its own main() (AnsibleModule is replaced
by a stand-in that records its arguments), its documented options from
DOCUMENTATION with the doc fragments merged by ansible's own add_fragments,
and the role's from meta/argument_specs.yml and tasks/main.yml.
"""

import copy
import importlib
import os

import pytest
import yaml

from ansible.utils.plugin_docs import add_fragments

from ansible_collections.overlayfs.mounts.plugins.module_utils._model import spec as _spec
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.overlay_options import OPTIONS
from ansible_collections.overlayfs.mounts.plugins.module_utils._model import upper_spec as _upper_spec
from ansible_collections.overlayfs.mounts.plugins.modules import overlay_mount, overlay_mount_info, overlay_mounts, overlay_upper

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", ".."))
ROLE = os.path.join(REPO, "roles", "overlay_host")
ROLE_ONLY = ("overlay_host_metrics_dir",)
FRAGMENTS = "ansible_collections.overlayfs.mounts.plugins.doc_fragments."

# What each module's main() must hand AnsibleModule.
SPECS = {
    overlay_mount: dict(argument_spec=_spec.MOUNT_SPEC, required_if=_spec.MOUNT_REQUIRED_IF,
                        required_together=_spec.MOUNT_REQUIRED_TOGETHER),
    overlay_mounts: dict(argument_spec=_spec.batch_spec()),
    overlay_mount_info: dict(argument_spec=_spec.INFO_SPEC),
    overlay_upper: dict(argument_spec=_upper_spec.UPPER_SPEC, required_if=_upper_spec.UPPER_REQUIRED_IF,
                        required_together=_upper_spec.UPPER_REQUIRED_TOGETHER, required_by=_upper_spec.UPPER_REQUIRED_BY),
}


class _Captured(Exception):
    pass


def _module_arguments(module, monkeypatch):
    """The keyword arguments module.main() gives AnsibleModule."""
    def record(**kwargs):
        raise _Captured(kwargs)

    monkeypatch.setattr(module, "AnsibleModule", record)
    with pytest.raises(_Captured) as caught:
        module.main()
    return caught.value.args[0]


class _FragmentLoader(object):
    """The one call add_fragments makes of ansible's fragment loader, for this collection's fragments."""

    def get(self, name):
        if not name.startswith("overlayfs.mounts."):
            return None
        try:
            fragment = importlib.import_module(FRAGMENTS + name[len("overlayfs.mounts."):]).ModuleDocFragment
        except ImportError:
            return None
        fragment.ansible_name = name
        return fragment


def _documented(module):
    doc = yaml.safe_load(module.DOCUMENTATION)
    add_fragments(doc, module.__file__, _FragmentLoader(), is_module=True)
    return doc


def _shape(options, sub_key):
    """Option name -> the fields docs and specs share, absent ones at their implied values."""
    out = {}
    for name, option in options.items():
        out[name] = {
            "type": option.get("type", "str"),
            "elements": option.get("elements"),
            "choices": option.get("choices"),
            "default": option.get("default"),
            "aliases": option.get("aliases", []),
            "required": option.get("required", False),
            "options": _shape(option[sub_key], sub_key) if option.get(sub_key) else None,
        }
    return out


def _spec_shape(spec):
    return _shape(spec, "options")


def _doc_shape(options):
    return _shape(options, "suboptions")


@pytest.mark.parametrize("module", sorted(SPECS, key=lambda m: m.__name__), ids=lambda m: m.__name__.rsplit(".")[-1])
def test_main_uses_the_spec(module, monkeypatch):
    arguments = _module_arguments(module, monkeypatch)
    arguments.pop("supports_check_mode")
    assert arguments == SPECS[module]


@pytest.mark.parametrize("module", sorted(SPECS, key=lambda m: m.__name__), ids=lambda m: m.__name__.rsplit(".")[-1])
def test_documentation_matches_the_spec(module):
    assert _doc_shape(_documented(module)["options"]) == _spec_shape(SPECS[module]["argument_spec"])


def test_entries_are_documented_like_overlay_mount():
    """Option for option, an overlay_mounts entry is an overlay_mount task, minus the INHERITED defaults."""
    single = _doc_shape(_documented(overlay_mount)["options"])
    entry = _doc_shape(_documented(overlay_mounts)["options"])["mounts"]["options"]
    for name in _spec.INHERITED:
        single[name]["default"] = None
    assert entry == single


def test_shape_sees_every_field():
    """The comparison above would notice a change in any field it claims to compare."""
    base = _spec_shape(_spec.MOUNT_SPEC)
    for field, value in (("type", "raw"), ("elements", "str"), ("choices", ["x"]), ("default", "x"),
                         ("aliases", ["x"]), ("required", True)):
        changed = copy.deepcopy(_spec.MOUNT_SPEC)
        changed["owner"][field] = value
        assert _spec_shape(changed) != base, field


def _load(*parts):
    with open(os.path.join(ROLE, *parts)) as handle:
        return yaml.safe_load(handle)


def _role_options():
    return _load("meta", "argument_specs.yml")["argument_specs"]["main"]["options"]


def _role_task_arguments():
    """``{overlay_mounts option: role variable}`` from the role's overlay_mounts task."""
    tasks = [t for top in _load("tasks", "main.yml") for t in top.get("block", [top])
             if "overlayfs.mounts.overlay_mounts" in t]
    assert len(tasks) == 1
    out = {}
    for option, value in tasks[0]["overlayfs.mounts.overlay_mounts"].items():
        if option == "metrics_file":
            # Not a variable of its own: the file in overlay_host_metrics_dir, when that is set.
            assert value == "{{ overlay_host_metrics_dir ~ '/overlayfs_mounts.prom' if overlay_host_metrics_dir else omit }}"
            continue
        assert value.startswith("{{ ") and value.endswith(" }}"), (option, value)
        out[option] = value[3:-3]
    return out


def test_role_entries_match_the_spec():
    entry = _spec.entry_spec()
    # ansible-lint's schema for meta/argument_specs.yml has no aliases (and the
    # role spec format does not document them): the role takes path, not name.
    del entry["path"]["aliases"]
    role = _role_options()["overlay_host_mounts"]
    assert (role["type"], role["elements"]) == ("list", "dict")
    assert _spec_shape(role["options"]) == _spec_shape(entry)


def test_role_variables_match_the_task_options():
    role = _role_options()
    passed = _role_task_arguments()
    # The role's own variables, which no overlay_mounts option takes.
    assert sorted(passed.values()) == sorted(set(role) - set(ROLE_ONLY))
    batch = _spec_shape(_spec.batch_spec())
    role_shape = _spec_shape(role)
    defaults = _load("defaults", "main.yml")
    for option, variable in passed.items():
        mine, theirs = role_shape[variable], batch[option]
        assert mine["default"] == defaults[variable], variable
        if option == "mounts":
            continue  # the list itself: test_role_entries_match_the_spec
        for field in ("type", "elements", "choices", "aliases", "required"):
            assert mine[field] == theirs[field], (variable, field)
        if option == "load_module":
            # The role makes sure the kernel has overlayfs unless told not to.
            assert (mine["default"], theirs["default"]) == (True, False)
        else:
            assert mine["default"] == theirs["default"], variable


def test_every_overlay_option_is_documented():
    """overlay_mount's O(options) lists each option of the table with its values."""
    text = " ".join(_documented(overlay_mount)["options"]["options"]["description"])
    for option in OPTIONS:
        written = option.name if option.values is None else "%s=%s" % (option.name, "|".join(option.values))
        assert "C(%s)" % written in text, written


def test_invocation_keeps_what_each_entry_declared(ansible_module):
    given = [
        {"path": "/srv/a", "lowerdir": ["/l/a", "/l/base"], "upperdir": "/u/a", "workdir": "/w/a"},
        {"name": "/srv/b", "lowerdir": ["/l/b"], "options": ["index=on"], "persist": "none",
         "clear_volatile": True, "mode": "0750", "state": "present"},
        {"path": "/srv/c", "state": "absent", "persist": "fstab", "boot": True, "options": []},
    ]
    args = {"mounts": given, "fstab": "/tmp/fstab", "prune": True}
    with ansible_module(args, argument_spec=_spec.batch_spec(), supports_check_mode=True) as checked:
        params = checked.params
    shown = _spec.invocation(params)["module_args"]
    assert shown["mounts"] == [
        {"path": "/srv/a", "lowerdir": ["/l/a", "/l/base"], "upperdir": "/u/a", "workdir": "/w/a"},
        # As in ansible's own invocation, an alias shows beside the option it names.
        {"name": "/srv/b", "path": "/srv/b", "lowerdir": ["/l/b"], "options": ["index=on"], "persist": "none",
         "clear_volatile": True, "mode": "0750", "state": "present"},
        # An inherited setting an entry states is kept even when it equals overlay_mount's default.
        {"path": "/srv/c", "state": "absent", "persist": "fstab", "boot": True},
    ]
    # The task's own options stay whole, defaults included; params are not changed.
    assert dict(shown, mounts=None) == dict(params, mounts=None)
    assert len(params["mounts"][0]) == len(_spec.entry_spec())
