#!/usr/bin/env bash
# overlay_mount persist=fstab: every state through check mode, apply,
# idempotent re-run and diff on a scratch fstab, then duplicates, backup and
# the default /etc/fstab (the runner overlays /etc, so the host's stays), and
# a hand-written line taken over with a minimal edit.
set -eux
# shellcheck source-path=SCRIPTDIR source=../common/target.sh
source ../common/target.sh

# shellcheck source-path=SCRIPTDIR source=../overlay_mount_persist_common/lib.sh
source ../overlay_mount_persist_common/lib.sh

playbooks_in_parallel states.yml edits.yml adopt.yml
