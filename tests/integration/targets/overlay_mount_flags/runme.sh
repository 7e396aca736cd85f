#!/usr/bin/env bash
# Per-mount flags (ro, nosuid, nodev, noexec, atime) declared in options:
# mounted with them, changed in place by a remount (same mount ID), read back
# from mountinfo, persisted, and reported as drift when changed by hand.
set -eux
# shellcheck source-path=SCRIPTDIR source=../common/target.sh
source ../common/target.sh

playbook flags.yml
playbook methods.yml
