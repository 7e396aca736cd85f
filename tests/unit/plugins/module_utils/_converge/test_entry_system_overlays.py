# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""systemd-sysext, systemd-confext, composefs and fuse-overlayfs mounts are never touched.

On the fake host (conftest.py) with the mountinfo lines captured from the
real tools (``_formats/fixtures/system_overlays.json``): every state at
their mount points is refused with the reason, in check mode and in a real
run, before anything changes; ``overlay_mounts`` with ``prune`` leaves them
alone.
"""

import json
import os

import pytest

from ansible_collections.overlayfs.mounts.plugins.module_utils._converge.batch import run_batch
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(__file__)), "_formats", "fixtures", "system_overlays.json")
with open(FIXTURES) as handle:
    LINES = json.load(handle)
FUSE_POINT = "/tmp/sysov-capture/fz/m"

# fixture line, mount point, engine, what the refusal must say.
SUBJECTS = [
    ("sysext_usr", "/usr", "systemd-sysext", "systemd-sysext unmerge"),
    ("sysext_usr_mutable", "/usr", "systemd-sysext", "systemd-sysext refresh"),
    ("sysext_opt", "/opt", "systemd-sysext", "mount source 'sysext'"),
    ("confext_etc", "/etc", "systemd-confext", "systemd-confext unmerge"),
    ("composefs", "/srv/m", "composefs", "a composefs image"),
    ("fuse_overlayfs", FUSE_POINT, "fuse-overlayfs", "fusermount3 -u"),
]
STATES = ["mounted", "present", "unmounted", "absent"]


def add_real_mount(host, key, path):
    """Put the captured line on the fake host, and the dirs it names."""
    host.add_dir(path)
    host.mounted.append((int(LINES[key].split(" ", 1)[0]), path, LINES[key]))


def params_for(overlay_params, path, state):
    return overlay_params(path, ["/srv/a", "/srv/b"], "/srv/up", "/srv/wk", state=state)


@pytest.mark.parametrize("check_mode", [True, False], ids=["check", "real"])
@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("key, path, engine, reason", SUBJECTS, ids=[s[0] for s in SUBJECTS])
def test_every_state_is_refused_with_the_reason(host, backend, run_task, overlay_params, key, path, engine, reason,
                                                state, check_mode):
    for directory in ("/srv/a", "/srv/b", "/srv/up", "/srv/wk"):
        host.add_dir(directory)
    add_real_mount(host, key, path)
    params = params_for(overlay_params, path, state)
    backend.persist_now(params)  # even an overlay this collection persisted there stays
    store, mounted = dict(backend.store), list(host.mounted)
    with pytest.raises(OverlayError, match=reason) as error:
        run_task(params, check_mode=check_mode)
    assert error.value.details == {"engine": engine}
    assert "never mounts over, re-layers, unmounts or prunes it" in error.value.message
    assert host.changes() == [] and backend.store == store and host.mounted == mounted


def test_the_refusal_comes_before_any_other_refusal(host, backend, run_task, overlay_params):
    """Missing lower dirs would be refused too; the sysext overlay is the reason given."""
    add_real_mount(host, "sysext_usr", "/usr")
    with pytest.raises(OverlayError, match="systemd-sysext"):
        run_task(params_for(overlay_params, "/usr", "mounted"), check_mode=True)


def test_an_ordinary_tmpfs_is_still_left_alone_with_a_warning(host, backend, run_task, overlay_params):
    host.mount_other("/srv/t", "tmpfs")
    result = run_task(overlay_params("/srv/t", state="unmounted"))
    assert result["changed"] is False and host.stack("/srv/t")


@pytest.fixture
def batch(host, backend, make_module, batch_params):
    def run(entries, check_mode=False, **task):
        module = make_module(check_mode=check_mode, params=batch_params(entries, **task))
        return run_batch(module, host, (backend,))
    return run


def test_prune_leaves_the_system_overlays_alone(host, backend, batch, overlay_params):
    for key, path, _engine, _reason in SUBJECTS[:1] + SUBJECTS[3:]:
        add_real_mount(host, key, path)
    host.add_dir("/srv/l1")
    host.add_dir("/srv/l2")
    mounted = list(host.mounted)
    out, failed = batch([{"path": "/srv/mine", "lowerdir": ["/srv/l1", "/srv/l2"]}], prune=True)
    assert failed == [] and out["pruned"] == []
    assert [line for line in host.mounted if line in mounted] == mounted


def test_a_managed_line_left_on_a_sysext_point_is_not_pruned_through_it(host, backend, batch, overlay_params):
    add_real_mount(host, "sysext_usr", "/usr")
    backend.persist_now(overlay_params("/usr", ["/srv/a", "/srv/b"]))
    store, mounted = dict(backend.store), list(host.mounted)
    out, failed = batch([], prune=True)
    assert [r["path"] for r in out["pruned"]] == ["/usr"] and out["pruned"][0]["failed"]
    assert "systemd-sysext unmerge" in out["pruned"][0]["msg"]
    assert backend.store == store and host.mounted == mounted and failed


def test_an_explicit_entry_in_a_list_fails_alone(host, backend, batch):
    add_real_mount(host, "confext_etc", "/etc")
    host.add_dir("/srv/l1")
    host.add_dir("/srv/l2")
    out, failed = batch([{"path": "/etc", "state": "unmounted"},
                         {"path": "/srv/mine", "lowerdir": ["/srv/l1", "/srv/l2"]}])
    results = {r["path"]: r for r in out["overlays"]}
    assert results["/etc"]["failed"] and "systemd-confext unmerge" in results["/etc"]["msg"]
    assert not results["/srv/mine"].get("failed") and host.stack("/etc") == [LINES["confext_etc"]]
    assert len(failed) == 1
