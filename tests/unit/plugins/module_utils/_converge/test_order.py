# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""overlay_mounts' ordering, inheritance and prune decisions."""

import pytest

from ansible_collections.overlayfs.mounts.plugins.module_utils._converge.order import (
    apply_order,
    merged_params,
    prune_order,
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


def paths(entries):
    return [entries[i]["path"] for i in apply_order(entries)]


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


# ---- apply_order ----------------------------------------------------------------------

ORDER_CASES = [
    ("independent: input order",
     [entry("/srv/c"), entry("/srv/a"), entry("/srv/b")], ["/srv/c", "/srv/a", "/srv/b"]),
    ("stacked listed first comes after its base",
     [entry("/srv/top", ["/srv/base/sub", "/srv/l"]), entry("/srv/base")], ["/srv/base", "/srv/top"]),
    ("stacked on the merged dir itself",
     [entry("/srv/top", ["/srv/base", "/srv/l"]), entry("/srv/other"), entry("/srv/base")],
     ["/srv/other", "/srv/base", "/srv/top"]),
    ("a chain of three listed backwards",
     [entry("/c", ["/b/x", "/l"]), entry("/b", ["/a/x", "/l"]), entry("/a")], ["/a", "/b", "/c"]),
    ("upper and work dirs count too",
     [entry("/srv/top", ["/srv/l1"], upperdir="/srv/base/u", workdir="/srv/base/w"), entry("/srv/base")],
     ["/srv/base", "/srv/top"]),
    ("a name prefix is no dependency",
     [entry("/srv/application", ["/srv/app2/x", "/srv/l"]), entry("/srv/app")],
     ["/srv/application", "/srv/app"]),
    ("paths are normalised",
     [entry("/srv/top/", ["/srv/base/./x/", "/srv/l"]), entry("/srv/base/")], ["/srv/base/", "/srv/top/"]),
    ("an overlay stacked on its own mount point depends on nothing",
     [entry("/srv/stack", ["/srv/s3", "/srv/stack"]), entry("/srv/x")], ["/srv/stack", "/srv/x"]),
    ("a cycle keeps the input order",
     [entry("/a", ["/b/x", "/l"]), entry("/b", ["/a/x", "/l"]), entry("/c")], ["/c", "/a", "/b"]),
    ("a pure cycle keeps the input order",
     [entry("/b", ["/a/x", "/l"]), entry("/a", ["/b/x", "/l"])], ["/b", "/a"]),
    ("teardown: the overlay on top comes down first",
     [entry("/srv/base", state="absent"), entry("/srv/top", ["/srv/base/x", "/srv/l"], state="unmounted")],
     ["/srv/top", "/srv/base"]),
    ("teardown of independent entries runs in reverse",
     [entry("/a", state="absent"), entry("/b", state="absent")], ["/b", "/a"]),
    ("set-up first, then teardown",
     [entry("/gone", state="absent"), entry("/srv/top", ["/srv/base/x", "/srv/l"]),
      entry("/srv/base", state="present"), entry("/off", state="unmounted")],
     ["/srv/base", "/srv/top", "/off", "/gone"]),
    ("a set-up entry never waits for a teardown one",
     [entry("/srv/top", ["/srv/base/x", "/srv/l"]), entry("/srv/base", state="absent")],
     ["/srv/top", "/srv/base"]),
]


@pytest.mark.parametrize("entries, expected", [c[1:] for c in ORDER_CASES], ids=[c[0] for c in ORDER_CASES])
def test_apply_order(entries, expected):
    assert paths(entries) == expected


def test_apply_order_keeps_every_index_once():
    entries = [entry("/m%d" % i, ["/m%d/x" % (i + 1), "/l"]) for i in range(30)]
    order = apply_order(entries)
    assert sorted(order) == list(range(30))
    assert order == list(reversed(range(30)))


def test_empty_list():
    assert apply_order([]) == []


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


@pytest.mark.parametrize("given, expected", [
    (["/a", "/a/b/c", "/a/b", "/z"], ["/a/b/c", "/a/b", "/a", "/z"]),
    (["/srv/b", "/srv/a"], ["/srv/a", "/srv/b"]),
    ({"/x/y": {}, "/x": {}}, ["/x/y", "/x"]),
    ([], []),
])
def test_prune_order_deepest_first(given, expected):
    assert prune_order(given) == expected


def test_order_of_invalid_paths_ends():
    """Relative or empty paths (refused later, per entry) do not hang the ordering."""
    entries = [entry("rel/m", ["rel/m2/x", ""]), entry("rel/m2", ["a", "/"])]
    assert sorted(apply_order(entries)) == [0, 1]


def test_order_of_a_thousand_independent_overlays_keeps_the_input_order():
    entries = [entry("/srv/m%d" % i, ["/srv/l%d" % i, "/srv/base"]) for i in range(1000)]
    assert apply_order(entries) == list(range(1000))
