#!/usr/bin/env bash
# overlay_mount with 100 lower layers of long paths: far past the one page the
# legacy mount(2) takes, mounted and verified exactly, never partially.
set -eux
# shellcheck source-path=SCRIPTDIR source=../common/target.sh
source ../common/target.sh

playbook many_layers.yml
