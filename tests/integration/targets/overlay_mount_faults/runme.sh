#!/usr/bin/env bash
# overlay_mount under faults: fstab's dir full, out of inodes, read-only,
# fstab immutable, the unit dir full during a persist switch, the module
# killed at random points (30 times) and twenty runs on one fstab at once;
# overlay_mounts with a wrong mount among three (wrong_mount.py makes it),
# with a mount the kernel refuses among three, and with its one fstab write
# on a full disk.
# After each: fstab byte-identical or correctly changed, no stray mount,
# created dirs removed, and the next run converges.
set -eux
# shellcheck source-path=SCRIPTDIR source=../common/target.sh
source ../common/target.sh
PYTHONPATH=../common exec "$ANSIBLE_PYTHON_INTERPRETER" faults.py "$@"
