#!/usr/bin/env bash
# Layers declared through symlinks (the "current release" layout): mounted as
# their targets, persisted as spelled (fstab and unit), re-layered after the
# link moves; a hand mount through a moved link is reported unknown; persisted
# paths spelled differently are adopted; short links in a custom links_dir are
# read back by overlay_mount_info as the real layers.
set -eux
# shellcheck source-path=SCRIPTDIR source=../common/target.sh
source ../common/target.sh

playbook symlinked.yml
