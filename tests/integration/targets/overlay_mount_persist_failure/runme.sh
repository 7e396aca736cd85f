#!/usr/bin/env bash
# overlay_mount: a mount the kernel refuses after fstab or the unit was written
# leaves them exactly as they were.
set -eux
# shellcheck source-path=SCRIPTDIR source=../common/target.sh
source ../common/target.sh

# shellcheck source-path=SCRIPTDIR source=../overlay_mount_persist_common/lib.sh
source ../overlay_mount_persist_common/lib.sh

playbook failure.yml
