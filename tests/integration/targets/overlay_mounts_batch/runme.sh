#!/usr/bin/env bash
# overlay_mounts: a host's list of overlays (one stacked on another's merged
# dir, one read-only, one as a systemd unit) converged in one task: check mode,
# apply, idempotent re-run, diff; a failing entry next to working ones; prune
# of managed overlays that left the list, next to a hand-written fstab line;
# paths below a mount point that an earlier entry mounts (below_a_mount.yml);
# the invocation it returns, read from the module process (invocation.py).
set -eux
# shellcheck source-path=SCRIPTDIR source=../common/target.sh
source ../common/target.sh

playbook batch.yml
playbook below_a_mount.yml
PYTHONPATH="../common:$ANSIBLE_COLLECTIONS_PATH" "$ANSIBLE_PYTHON_INTERPRETER" invocation.py
