# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Let plain pytest import the collection as ``ansible_collections.overlayfs.mounts``.

ansible-test does this by running from a tree that ends in
``ansible_collections/overlayfs/mounts``; from a plain checkout we point a
symlink at the repository from a temporary ``ansible_collections`` tree.
"""

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _make_importable():
    parts = REPO.split(os.sep)
    if parts[-3:] == ["ansible_collections", "overlayfs", "mounts"]:
        root = os.sep.join(parts[:-3])
    else:
        root = tempfile.mkdtemp(prefix="overlayfs-mounts-unit-")
        namespace = os.path.join(root, "ansible_collections", "overlayfs")
        os.makedirs(namespace)
        os.symlink(REPO, os.path.join(namespace, "mounts"))
    if root not in sys.path:
        sys.path.insert(0, root)


_make_importable()


@pytest.fixture
def private_mount():
    """``private_mount(script, *args)``: run ``sh -c script`` in a private mount namespace.

    The script mounts something and ends with ``cat /proc/self/mountinfo``;
    the fixture returns that output (the mounts vanish with the shell). The
    test is skipped without root, unshare and mount, or overlay support.
    """
    if not (hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("unshare") and shutil.which("mount")):
        pytest.skip("needs root, unshare and mount")

    def run(script, *args):
        result = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh"]
                                + [str(a) for a in args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                universal_newlines=True, check=False)
        if result.returncode != 0 and "unknown filesystem type" in result.stderr:
            pytest.skip("the kernel has no overlay support: %s" % result.stderr)
        assert result.returncode == 0, result.stderr
        return result.stdout
    return run


@contextlib.contextmanager
def _ansible_module(args, **spec):
    """A real ``AnsibleModule(**spec)`` given ``args``, checked as in a module process."""
    from ansible.module_utils import basic
    saved = basic._ANSIBLE_ARGS, getattr(basic, "_ANSIBLE_PROFILE", None)
    basic._ANSIBLE_ARGS = json.dumps({"ANSIBLE_MODULE_ARGS": args}).encode("utf-8")
    basic._ANSIBLE_PROFILE = "legacy"
    try:
        yield basic.AnsibleModule(**spec)
    finally:
        basic._ANSIBLE_ARGS, basic._ANSIBLE_PROFILE = saved


@pytest.fixture
def module():
    """A real AnsibleModule, for its real atomic_move."""
    with _ansible_module({}, argument_spec={}) as real:
        yield real


@pytest.fixture
def ansible_module():
    """``ansible_module(args, **spec)``: a context giving a real AnsibleModule that checked ``args``."""
    return _ansible_module


class CountedRead(object):
    """A host read for facts read on first ask: answers ``answer`` and counts in ``calls`` how often it ran."""

    def __init__(self, answer):
        self.answer, self.calls = answer, 0

    def __call__(self):
        self.calls += 1
        return self.answer


@pytest.fixture
def counted_read():
    """:class:`CountedRead`, to build one per answer: ``counted_read(True)``."""
    return CountedRead
