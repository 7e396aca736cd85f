#!/usr/bin/env bash
# The overlay_host role over two hosts (systemd units and fstab by default):
# check mode is a full drift report and changes nothing, apply, a re-run with
# changed=0, prune of an overlay that left the list (upper data stays), the
# modules-load file written to a scratch path, and a list refused as a whole
# (a mount point declared twice) that writes no file.
set -eux
# shellcheck source-path=SCRIPTDIR source=../common/target.sh
source ../common/target.sh

# Over the inventory's hosts (local connections, one scratch root each).
inventory_playbook() {
    ansible-playbook -i inventory.yml \
        -e ansible_python_interpreter="$ANSIBLE_PYTHON_INTERPRETER" \
        -e test_root="$root" "$@"
}

inventory_playbook converge.yml -e phase=check --check
inventory_playbook converge.yml -e phase=apply
inventory_playbook converge.yml -e phase=rerun | tee "$root/rerun.log"
grep -E '^units_host +: ok=[0-9]+ +changed=0 +unreachable=0 +failed=0 ' "$root/rerun.log"
grep -E '^fstab_host +: ok=[0-9]+ +changed=0 +unreachable=0 +failed=0 ' "$root/rerun.log"
# The role is one task a host after ansible-core's check of its variables: any
# other task, even one skipped outside check mode, costs every host a worker
# process on the controller in every run.
role_tasks=$(grep -c '^TASK \[overlayfs.mounts.overlay_host : ' "$root/rerun.log")
[ "$role_tasks" = 2 ] || { grep '^TASK \[overlayfs.mounts.overlay_host : ' "$root/rerun.log"; exit 1; }
inventory_playbook converge.yml -e phase=prune
# A list refused as a whole changes no file, not even the modules-load file.
playbook refused.yml
