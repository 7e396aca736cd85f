# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Let plain pytest import the collection as ``ansible_collections.overlayfs.mounts``.

ansible-test does this by running from a tree that ends in
``ansible_collections/overlayfs/mounts``; from a plain checkout we point a
symlink at the repository from a temporary ``ansible_collections`` tree.
"""

from __future__ import absolute_import, division, print_function

import os
import sys
import tempfile

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
