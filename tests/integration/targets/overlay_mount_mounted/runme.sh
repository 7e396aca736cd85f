#!/usr/bin/env bash
# overlay_mount state=mounted: the classic example, a read-only overlay,
# overlay options and awkward path names, each through check mode, apply,
# idempotent re-run and diff, checked on the live host (main.yml imports the
# four playbooks, so ansible-playbook starts once).
set -eux
# shellcheck source-path=SCRIPTDIR source=../common/target.sh
source ../common/target.sh

playbook main.yml
