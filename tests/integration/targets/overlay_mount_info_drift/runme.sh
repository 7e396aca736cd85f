#!/usr/bin/env bash
# overlay_mount_info and overlay_mount's drift: drift made by hand (other
# layers mounted with mount(8), a hand-edited fstab line, a deleted unit, an
# unmount, other options) and the exact rows both modules report; then what
# overlay_mount_info reads from lowerdir+ and legacy mounts, docker-style
# relative short-link layers and escaped spaces.
set -eux
# shellcheck source-path=SCRIPTDIR source=../common/target.sh
source ../common/target.sh


playbook drift.yml
playbook info.yml
