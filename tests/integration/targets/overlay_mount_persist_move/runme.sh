#!/usr/bin/env bash
# overlay_mount: moving an overlay between fstab and a systemd unit, and
# persist=none through every state.
set -eux
# shellcheck source-path=SCRIPTDIR source=../common/target.sh
source ../common/target.sh

# shellcheck source-path=SCRIPTDIR source=../overlay_mount_persist_common/lib.sh
source ../overlay_mount_persist_common/lib.sh

playbooks_in_parallel moves.yml none.yml
