# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Build a small composefs-like tree under BASE: a metadata tree over a data-only layer.

``BASE/data/objects/3f/motd`` holds the file data, as composefs keeps it
under a digest name. ``BASE/meta/etc/motd`` is a metacopy file made by the
kernel itself: a writable overlay with ``metacopy=on`` over a scratch lower
that holds the same file, where a chmod copies up the metadata only. Its
``trusted.overlay.redirect`` then names the data file by its absolute path
in the data-only layer, as mkcomposefs writes it. The scratch lower goes
away, so the data a merged view serves can only come from the data layer.
"""

import os
import shutil
import subprocess
import sys

TEXT = b"served from the data-only layer\n"


def main(base):
    scratch = os.path.join(base, "scratch")
    for sub in ("data/objects/3f", "meta", "scratch/lower/etc", "scratch/work", "scratch/merged"):
        os.makedirs(os.path.join(base, sub), exist_ok=True)
    for path in (os.path.join(base, "data/objects/3f/motd"), os.path.join(scratch, "lower/etc/motd")):
        with open(path, "wb") as out:
            out.write(TEXT)
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                    "lowerdir=%s/lower,upperdir=%s/meta,workdir=%s/work,metacopy=on,redirect_dir=on"
                    % (scratch, base, scratch), os.path.join(scratch, "merged")], check=True)
    try:
        os.chmod(os.path.join(scratch, "merged/etc/motd"), 0o600)
    finally:
        subprocess.run(["umount", os.path.join(scratch, "merged")], check=True)
    motd = os.path.join(base, "meta/etc/motd")
    if "trusted.overlay.metacopy" not in os.listxattr(motd):
        sys.exit("%s: the kernel made no metacopy file (chmod copied the data up)" % motd)
    os.setxattr(motd, "trusted.overlay.redirect", b"/objects/3f/motd")
    os.removexattr(motd, "trusted.overlay.origin")  # points into the scratch lower, which goes away
    shutil.rmtree(scratch)


if __name__ == "__main__":
    main(sys.argv[1])
