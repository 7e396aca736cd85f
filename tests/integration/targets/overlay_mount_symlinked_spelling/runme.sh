#!/usr/bin/env bash
# Paths are identities, not strings: a mount point and layers spelled
# through symlinks are the overlay they lead to, in the converge, in fstab
# and units, in prune, in drift and in overlay_mount_info.
set -eux
# shellcheck source-path=SCRIPTDIR source=../common/target.sh
source ../common/target.sh

playbook spelling.yml
