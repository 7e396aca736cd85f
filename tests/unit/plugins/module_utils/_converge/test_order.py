# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""overlay_mounts' inheritance and prune decisions (the order is the graph's: test_graph.py)."""

import pytest

from ansible_collections.overlayfs.mounts.plugins.module_utils._converge.order import (
    merged_params,
    prune_targets,
)
from ansible_collections.overlayfs.mounts.plugins.module_utils._persist.fstab_backend import FstabBackend, fstab_line
from ansible_collections.overlayfs.mounts.plugins.module_utils._persist.systemd_backend import SystemdBackend, unit_plan
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.declaration import Declaration
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.spec import INHERITED

# The task-level settings; any inherited setting added later gets a recognisable value.
TASK = {name: "task's " + name for name in INHERITED}
TASK.update({"state": "mounted", "persist": "fstab", "fstab": "/etc/fstab", "unit_dir": "/etc/systemd/system",
             "backup": False, "boot": True, "create_dirs": True})


def entry(path, lowerdir=("/srv/l1", "/srv/l2"), state="mounted", upperdir=None, workdir=None):
    return {"path": path, "lowerdir": list(lowerdir), "upperdir": upperdir, "workdir": workdir, "state": state}


# ---- merged_params ------------------------------------------------------------------

def test_an_entry_without_settings_takes_the_task_ones():
    unset = {name: None for name in INHERITED}
    params = merged_params(dict(entry("/srv/a"), **unset), TASK)
    assert {name: params[name] for name in INHERITED} == TASK
    missing = {k: v for k, v in entry("/srv/a").items() if k not in INHERITED}
    assert {name: merged_params(missing, TASK)[name] for name in INHERITED} == TASK


@pytest.mark.parametrize("name, value", [
    ("state", "absent"), ("persist", "systemd"), ("persist", "none"), ("fstab", "/tmp/fstab"),
    ("unit_dir", "/tmp/units"), ("backup", True), ("boot", False), ("create_dirs", False),
])
def test_an_entry_keeps_its_own_setting_even_when_false(name, value):
    own = dict(entry("/srv/a"), **{name: value})
    assert merged_params(own, dict(TASK, backup=True, boot=True, create_dirs=True))[name] == value


def test_merged_params_copies_and_keeps_other_keys():
    own = dict(entry("/srv/a"), options=["index=off"], boot_options=["nofail"], mode="0750")
    params = merged_params(own, TASK)
    assert params["options"] == ["index=off"] and params["mode"] == "0750"
    assert params is not own and "persist" not in own


# ---- prune ----------------------------------------------------------------------------

def _decl(path, lowerdir=("/srv/l1", "/srv/l2")):
    return Declaration(path, lowerdir)


def fstab_overlays(text):
    return FstabBackend.configs_in([("fstab", text)])


def unit_overlays(units):
    return SystemdBackend.configs_in(units)


def found(fstabs, unit_dirs):
    return {"fstab": fstabs, "systemd": unit_dirs}


FSTAB = "\n".join([
    "UUID=1 / ext4 defaults 0 1",
    fstab_line(_decl("/srv/kept")).text,
    fstab_line(_decl("/srv/old")).text,
    fstab_line(_decl("/srv/old/inner")).text,
    "overlay /srv/hand overlay lowerdir=/srv/h1:/srv/h2 0 0",
]) + "\n"
OTHER_FSTAB = fstab_line(_decl("/srv/old")).text + "\n" + fstab_line(_decl("/srv/elsewhere")).text + "\n"
UNITS = [
    ("/u/srv-kept.mount", unit_plan(_decl("/srv/kept"))[0]),
    ("/u/srv-unit.mount", unit_plan(_decl("/srv/unit"))[0]),
    ("/u/srv-handunit.mount", "[Mount]\nWhat=overlay\nWhere=/srv/handunit\nType=overlay\n"
                              "Options=lowerdir=/a:/b\n"),
]


def test_prune_targets_only_managed_overlays_that_left_the_list():
    targets = prune_targets(
        ["/srv/kept", "/srv/elsewhere/"],
        found({"/etc/fstab": fstab_overlays(FSTAB), "/tmp/fstab": fstab_overlays(OTHER_FSTAB)},
              {"/u": unit_overlays(UNITS)}))
    assert targets == {
        "/srv/old": {"fstab": ["/etc/fstab", "/tmp/fstab"]},
        "/srv/old/inner": {"fstab": ["/etc/fstab"]},
        "/srv/unit": {"systemd": ["/u"]},
    }


def test_a_declared_overlay_is_never_pruned():
    declared = ["/srv/kept", "/srv/old", "/srv/old/inner", "/srv/unit", "/srv/elsewhere"]
    assert prune_targets(declared, found({"/etc/fstab": fstab_overlays(FSTAB), "/tmp/fstab": fstab_overlays(OTHER_FSTAB)},
                                         {"/u": unit_overlays(UNITS)})) == {}


def test_nothing_managed_nothing_pruned():
    hand = "overlay /srv/hand overlay lowerdir=/srv/h1:/srv/h2 0 0\n"
    assert prune_targets([], found({"/etc/fstab": fstab_overlays(hand)}, {"/u": unit_overlays(UNITS[2:])})) == {}
    assert prune_targets([], found({"/etc/fstab": {}}, {})) == {}


def test_prune_targets_when_fstab_and_unit_both_hold_it():
    targets = prune_targets([], found({"/etc/fstab": fstab_overlays(fstab_line(_decl("/srv/unit")).text)},
                                      {"/u": unit_overlays(UNITS)}))
    assert targets["/srv/unit"] == {"fstab": ["/etc/fstab"], "systemd": ["/u"]}


def test_prune_compares_resolved_paths():
    """A managed line spelled through a symlink is the declared overlay it leads to, never one to prune."""
    real = {"/srv/link/old": "/data/old", "/srv/kept": "/data/kept"}
    fstab = fstab_line(_decl("/srv/link/old")).text + "\n" + fstab_line(_decl("/srv/kept")).text + "\n"
    targets = prune_targets(["/data/old"], found({"/etc/fstab": fstab_overlays(fstab)}, {}),
                            lambda path: real.get(path, path))
    assert targets == {"/data/kept": {"fstab": ["/etc/fstab"]}}


def test_prune_targets_merge_spellings_of_one_overlay():
    real = {"/a/x": "/real/x", "/b/x": "/real/x"}
    fstab = fstab_line(_decl("/a/x")).text + "\n" + fstab_line(_decl("/b/x")).text + "\n"
    targets = prune_targets([], found({"/etc/fstab": fstab_overlays(fstab)}, {}), lambda path: real.get(path, path))
    assert targets == {"/real/x": {"fstab": ["/etc/fstab"]}}
