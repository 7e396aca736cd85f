#!/usr/bin/env bash
# overlay_mount persist=systemd: every state through check mode, apply,
# idempotent re-run and diff, with a scratch unit_dir and fstab.
set -eux
# shellcheck source-path=SCRIPTDIR source=../common/target.sh
source ../common/target.sh

# shellcheck source-path=SCRIPTDIR source=../overlay_mount_persist_common/lib.sh
source ../overlay_mount_persist_common/lib.sh

playbook states.yml
