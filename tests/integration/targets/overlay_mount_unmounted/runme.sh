#!/usr/bin/env bash
# overlay_mount state=unmounted: check mode, apply, re-run, diff; nothing
# mounted; a non-overlay mount left alone; overlays stacked on one point.
set -eux
# shellcheck source-path=SCRIPTDIR source=../common/target.sh
source ../common/target.sh

playbook unmounted.yml
