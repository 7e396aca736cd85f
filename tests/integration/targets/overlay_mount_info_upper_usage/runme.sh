#!/usr/bin/env bash
# overlay_mount_info upper_usage: what the kernel writes to an upper dir
# (files, whiteouts, an opaque dir, a renamed dir, a metadata-only copy),
# counted from a live overlay's upper.
set -eux
# shellcheck source-path=SCRIPTDIR source=../common/target.sh
source ../common/target.sh

playbook usage.yml
