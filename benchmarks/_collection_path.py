# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Make ``ansible_collections.overlayfs.mounts`` importable from this checkout (benchmarks only)."""

import atexit
import os
import shutil
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def importable():
    parts = REPO.split(os.sep)
    if parts[-3:] == ["ansible_collections", "overlayfs", "mounts"]:
        sys.path.insert(0, os.sep.join(parts[:-3]))
        return
    root = tempfile.mkdtemp(prefix="overlayfs-bench-")
    # Not run in forked children: they leave by os._exit.
    atexit.register(shutil.rmtree, root, True)
    os.makedirs(os.path.join(root, "ansible_collections", "overlayfs"))
    os.symlink(REPO, os.path.join(root, "ansible_collections", "overlayfs", "mounts"))
    sys.path.insert(0, root)
