# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The order of mountinfo, and what a lookup of a path crosses: on text, and on the running kernel.

The kernel tests mount in a private mount namespace (``unshare``) under a
temp dir, as root; they are skipped elsewhere.
"""

import os
import shutil
import subprocess

import pytest

from ansible_collections.overlayfs.mounts.plugins.module_utils._compare.live import observe
from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.mountinfo import (
    engine_of,
    latest_on_path,
    listed_position,
    parse,
)
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.overlay_options import defaults_from_parameters

DEFAULTS = defaults_from_parameters({})
TEXT = "\n".join([
    "22 1 254:0 / / rw - ext4 /dev/vda rw",
    "30 22 0:40 / /srv rw - tmpfs tmpfs rw",
    "31 30 0:41 / /srv/data rw - tmpfs d rw",
    "32 31 0:42 / /srv/data/x rw - tmpfs x rw",
    "25 31 0:43 / /srv/data rw - tmpfs later rw",  # on /srv/data, after /srv/data/x: hides it
    "26 30 0:40 /other /srv/other rw,nosuid - tmpfs tmpfs rw",  # /srv/other bound onto itself
]) + "\n"


def test_the_place_in_the_list_not_the_id_tells_the_order():
    entries = parse(TEXT)
    by_id = {e.mount_id: e for e in entries}
    assert [listed_position(entries, by_id[i]) for i in (22, 32, 25, 26)] == [0, 3, 4, 5]
    assert listed_position(parse("1 1 0:1 / /other rw - tmpfs t rw\n"), by_id[22]) == -1


@pytest.mark.parametrize("path, latest", [
    ("/", None),
    ("/srv", 30),
    ("/srv/data/x/deep", 25),  # /srv/data/x is hidden under the later /srv/data
    ("/srv/other/f", 30),  # the bind of /srv/other onto itself shows the same dir: not counted
    ("/elsewhere", None),
])
def test_latest_mount_on_a_path(path, latest):
    entries = parse(TEXT)
    found = latest_on_path(entries, path)
    assert (found.mount_id if found else None) == latest
    assert latest_on_path(entries, path) is found  # the walk is kept for the next lookup


def test_an_engine_is_not_guessed_from_a_name_when_the_filesystem_can_be_asked():
    assert engine_of("/srv/overlay2", lambda path: False) is None
    assert engine_of("/srv/overlay2", lambda path: path == "/srv/image/overlay2") == "docker"
    assert engine_of("/srv/storage/overlay", lambda path: path == "/srv/storage/overlay-layers") == "containers-storage"
    assert engine_of("/srv/overlay2") == "docker"  # no way to ask: the name is all there is


SCRIPT = r"""
set -e
cd "$1"
mkdir -p p1 p2 p3 srv
mount -t tmpfs t1 p1; mount -t tmpfs t2 p2; umount p1; mount -t tmpfs t3 p3
mount -t tmpfs srv srv
mkdir -p srv/a/x srv/l2 srv/bu srv/bw srv/b srv/cu srv/cw srv/c
mount -t overlay overlay -o lowerdir=$PWD/srv/a/x:$PWD/srv/l2,upperdir=$PWD/srv/bu,workdir=$PWD/srv/bw srv/b
mount -t tmpfs later srv/a
mkdir srv/a/x
mount -t overlay overlay -o lowerdir=$PWD/srv/a/x:$PWD/srv/l2,upperdir=$PWD/srv/cu,workdir=$PWD/srv/cw srv/c
cat /proc/self/mountinfo
"""


@pytest.fixture
def kernel_mountinfo(tmp_path):
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare(1) to mount in a private mount namespace")
    done = subprocess.run(["unshare", "--mount", "--propagation", "private", "bash", "-c", SCRIPT, "_", str(tmp_path)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip("cannot mount here: %s" % done.stderr.strip())
    return str(tmp_path.resolve()), parse(done.stdout)


def test_the_kernel_lists_mounts_in_attach_order_while_it_reuses_ids(kernel_mountinfo):
    root, entries = kernel_mountinfo
    p2, p3 = [[e for e in entries if e.mount_point == root + name][0] for name in ("/p2", "/p3")]
    # p3 takes the id p1 left (the lowest free one, unless a mount elsewhere took it first), so its id is
    # usually below p2's; the list keeps the order of attachment whatever the ids.
    srv = [e for e in entries if e.mount_point == root + "/srv"][0]
    assert listed_position(entries, p2) < listed_position(entries, p3) < listed_position(entries, srv)


def test_the_kernel_shows_which_overlay_serves_a_shadowed_layer(kernel_mountinfo):
    root, entries = kernel_mountinfo
    before = observe(root + "/srv/b", entries, DEFAULTS).live
    after = observe(root + "/srv/c", entries, DEFAULTS).live
    assert [(row["field"], row["mount"]["source"]) for row in before.shadowed] == [("lowerdir[0]", "later")]
    assert after.shadowed == []
