# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run every integration target as root, each in a private mount namespace.

Each ``targets/<name>/runme.sh`` runs real playbooks against real overlays.
The targets have the shape ``ansible-test integration`` runs (aliases,
hidden helper targets); this runner gives each a fresh scratch directory in
``OVERLAY_TEST_ROOT`` and the installed collection. The runme.sh itself
(through ``targets/common/target.sh``) enters a private mount namespace with
/etc overlaid, so its mounts never reach the host and vanish with the
namespace even when a test fails half-way, and the host's fstab and units
stay untouched.
"""

import os
import shutil
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
TARGETS = os.path.join(HERE, "targets")
REPO = os.path.dirname(os.path.dirname(HERE))


def _targets():
    if not os.path.isdir(TARGETS):
        return []
    return sorted(
        name for name in os.listdir(TARGETS)
        if os.path.isfile(os.path.join(TARGETS, name, "runme.sh"))
    )


def _collections_path():
    """The installed collection (scripts/collection.sh puts it in .cache/collections)."""
    path = os.environ.get("ANSIBLE_COLLECTIONS_PATH") or os.path.join(REPO, ".cache", "collections")
    if not os.path.isdir(os.path.join(path, "ansible_collections", "overlayfs", "mounts")):
        pytest.skip("the collection is not installed in %s: run scripts/collection.sh" % path)
    return path


@pytest.mark.skipif(os.geteuid() != 0, reason="integration targets mount overlays and need root")
@pytest.mark.parametrize("target", _targets())
def test_target(target, tmp_path):
    env = dict(os.environ)
    env["ANSIBLE_COLLECTIONS_PATH"] = _collections_path()
    env["OVERLAY_TEST_ROOT"] = str(tmp_path)
    env["ANSIBLE_PYTHON_INTERPRETER"] = sys.executable
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env.setdefault("ANSIBLE_NOCOLOR", "1")
    env.setdefault("ANSIBLE_FORCE_COLOR", "0")
    env.pop("OVERLAY_TEST_NAMESPACE", None)
    proc = subprocess.run(
        ["bash", "runme.sh"],
        cwd=os.path.join(TARGETS, target), env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=900, check=False,
    )
    output = proc.stdout.decode("utf-8", "replace")
    if proc.returncode != 0:
        pytest.fail("target %s failed (rc=%d):\n%s" % (target, proc.returncode, output[-20000:]))
    shutil.rmtree(str(tmp_path), ignore_errors=True)
