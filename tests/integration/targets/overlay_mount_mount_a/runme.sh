#!/usr/bin/env bash
# fstab lines in the order mount -a needs: overlays whose layers lie under
# another overlay's mount point (one of them through a symlink), declared in
# the wrong order as separate tasks, then mounted by the real `mount -a`.
set -eux
# shellcheck source-path=SCRIPTDIR source=../common/target.sh
source ../common/target.sh

playbook mount_a.yml
