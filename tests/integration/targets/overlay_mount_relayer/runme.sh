#!/usr/bin/env bash
# overlay_mount re-layering an idle overlay: added, reordered layers, a new
# upper dir, changed options; and a failed re-mount that puts the old one back.
set -eux
# shellcheck source-path=SCRIPTDIR source=../common/target.sh
source ../common/target.sh

playbook relayer.yml
