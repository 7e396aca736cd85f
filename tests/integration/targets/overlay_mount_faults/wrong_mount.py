# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run overlay_mounts with a mount that succeeds but mounts the wrong thing.

``python wrong_mount.py ARGS.json``: the first mount of each overlay whose
mount point contains ``$WRONG_MOUNT`` is made with its lower layers in
reverse order, as a mount helper that mangles the layer list, or a process
racing the module, would leave it. The mount call itself succeeds; only the
module's check of mountinfo after the mount can find out. Later mounts of
the same path (putting back a re-layered overlay) are made as asked.

With ``$WRONG_MOUNT_FAILS`` set, that first mount is instead asked of the
kernel with a lower layer that was removed after the module checked it, so
the kernel itself refuses the mount (a race with another process).
"""

import os
import runpy
import sys

from ansible_collections.overlayfs.mounts.plugins.module_utils._host import system as _host
from moduledriver import MODULES

REAL_MOUNT = _host.mount
MANGLED = set()


def wrong_mount(decl, *args, **kwargs):
    if os.environ["WRONG_MOUNT"] in decl.path and decl.path not in MANGLED:
        MANGLED.add(decl.path)
        lowers = list(reversed(decl.lowerdir))
        if os.environ.get("WRONG_MOUNT_FAILS"):
            lowers = [decl.lowerdir[0] + ".removed-meanwhile"] + decl.lowerdir[1:]
        decl = decl.__class__(decl.path, lowers, decl.upperdir, decl.workdir,
                              decl.options, decl.datadir, decl.state)
    return REAL_MOUNT(decl, *args, **kwargs)


if __name__ == "__main__":
    _host.mount = wrong_mount
    module = os.path.join(MODULES, "overlay_mounts.py")
    sys.argv[0] = module
    runpy.run_path(module, run_name="__main__")
