# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The argument specs of the collection's modules, in one place.

One spec for an overlay, so that an entry of ``overlay_mounts`` is checked
exactly as an ``overlay_mount`` task is: same types, choices, defaults and
constraints. The modules' DOCUMENTATION (with its doc fragments) and the
overlay_host role's meta/argument_specs.yml say the same; the unit test
test_spec.py checks that they do.
"""

import copy
from typing import Any, Dict

STATES = ["mounted", "present", "unmounted", "absent"]
PERSIST = ["fstab", "systemd", "none"]

MOUNT_SPEC = dict(
    path=dict(type="path", required=True, aliases=["name"]),
    lowerdir=dict(type="list", elements="path"),
    datadir=dict(type="list", elements="path"),
    upperdir=dict(type="path"),
    workdir=dict(type="path"),
    options=dict(type="list", elements="str", default=[]),
    state=dict(type="str", choices=STATES, default="mounted"),
    persist=dict(type="str", choices=PERSIST, default="fstab"),
    fstab=dict(type="path", default="/etc/fstab"),
    unit_dir=dict(type="path", default="/etc/systemd/system"),
    backup=dict(type="bool", default=False),
    boot=dict(type="bool", default=True),
    boot_options=dict(type="list", elements="str", default=[]),
    create_dirs=dict(type="bool", default=True),
    method=dict(type="str", choices=["auto", "fsconfig", "mount2", "symlinks"], default="auto"),
    links_dir=dict(type="path", default="/var/lib/overlayfs-mounts/links"),
    clear_volatile=dict(type="bool", default=False),
    mode=dict(type="raw"),
    owner=dict(type="str"),
    group=dict(type="str"),
    unit_settings=dict(type="dict"),
    drop_ins=dict(type="str", choices=["refuse", "mask"], default="refuse"),
    upper_tmpfs=dict(type="dict", options=dict(
        path=dict(type="path"),
        size=dict(type="str", required=True),
        mode=dict(type="raw", default="0755"),
        owner=dict(type="str", default="root"),
        group=dict(type="str", default="root"),
    )),
)

MOUNT_REQUIRED_IF = [("state", "mounted", ["lowerdir"]), ("state", "present", ["lowerdir"])]
MOUNT_REQUIRED_TOGETHER = [("upperdir", "workdir")]

# Settings an overlay_mounts entry inherits from the task when it does not say.
INHERITED = ("state", "persist", "fstab", "unit_dir", "backup", "boot", "create_dirs", "method", "links_dir", "drop_ins")


def entry_spec() -> Dict[str, Dict[str, Any]]:
    """MOUNT_SPEC for one entry of a batch: inherited settings default to None."""
    spec = copy.deepcopy(MOUNT_SPEC)
    for name in INHERITED:
        spec[name].pop("default", None)
    return spec


# overlay_mounts' own task options, beside the INHERITED ones.
BATCH_OPTIONS = dict(
    prune=dict(type="bool", default=False),
    list_overlays=dict(type="bool", default=False),
    metrics_file=dict(type="path"),
    load_module=dict(type="bool", default=False),
    modules_load_file=dict(type="path", default="/etc/modules-load.d/overlay.conf"),
)


def batch_spec() -> Dict[str, Dict[str, Any]]:
    """overlay_mounts' argument spec: the entries, the defaults of their INHERITED settings, its own options."""
    spec = {name: copy.deepcopy(MOUNT_SPEC[name]) for name in INHERITED}
    spec.update(copy.deepcopy(BATCH_OPTIONS))
    spec["mounts"] = dict(type="list", elements="dict", required=True, options=entry_spec(),
                          required_if=MOUNT_REQUIRED_IF, required_together=MOUNT_REQUIRED_TOGETHER)
    return spec


def invocation(params: Dict[str, Any]) -> Dict[str, Any]:
    """overlay_mounts' ``invocation``: its arguments, each entry without the keys left at their default.

    Ansible returns a module's checked arguments with its result and then
    copies, scrubs and decodes them on both sides. Each entry of a batch
    came back with every one of its keys, most of them null: about a sixth
    of a re-run's result (270 of 1,730 bytes per overlay). What is left
    shows what every entry declared; the task's own options stay whole.
    """
    defaults = {name: option.get("default") for name, option in entry_spec().items()}
    args = dict(params)
    args["mounts"] = [{key: value for key, value in entry.items() if value != defaults.get(key)}
                      for entry in params["mounts"]]
    return {"module_args": args}


INFO_SPEC = dict(
    path=dict(type="list", elements="path", aliases=["name"]),
    fstab=dict(type="path", default="/etc/fstab"),
    unit_dir=dict(type="list", elements="path", default=["/etc/systemd/system"]),
    resolve_layers=dict(type="bool", default=False),
    upper_usage=dict(type="bool", default=False),
)
