#!/usr/bin/env bash
# overlay_mount on a busy overlay: processes (cwd, open file) and a submount
# hold it; a re-layering and state=unmounted must fail, name the holders and
# leave the mount intact.
set -eux
# shellcheck source-path=SCRIPTDIR source=../common/target.sh
source ../common/target.sh

# The playbook kills its holders; should it fail half-way, kill them here (by
# the PIDs they wrote), so no process outlives the test.
cleanup() {
    for pidfile in "$OVERLAY_TEST_ROOT"/busy/*.pid; do
        if [ -f "$pidfile" ]; then
            kill "$(cat "$pidfile")" 2>/dev/null || true
        fi
    done
}
trap cleanup EXIT

playbook busy.yml
