#!/usr/bin/env bash
# overlay_mount persist=systemd as people write units: drop-ins in /etc and
# /run (refused, masked, kept), any target, declared unit settings, a real
# .automount unit, adoption of a hand-written unit, and boot behaviour carried
# between fstab and units. The unit_dir is <base>/etc/systemd/system, so the
# module reads the whole unit search path under <base>, as under a root.
set -eux
# shellcheck source-path=SCRIPTDIR source=../common/target.sh
source ../common/target.sh

# shellcheck source-path=SCRIPTDIR source=../overlay_mount_persist_common/lib.sh
source ../overlay_mount_persist_common/lib.sh

# UNITS_PLAYBOOKS="a.yml b.yml" runs only those (by hand, while working on one).
read -r -a books <<<"${UNITS_PLAYBOOKS:-drop_ins.yml settings.yml automount.yml adopt.yml batch.yml}"
playbooks_in_parallel "${books[@]}"
