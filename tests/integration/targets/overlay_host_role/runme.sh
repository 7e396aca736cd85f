#!/usr/bin/env bash
# The overlay_host role over two hosts (systemd units and fstab by default):
# check mode is a full drift report and changes nothing, apply, a re-run with
# changed=0, prune of an overlay that left the list (upper data stays), the
# modules-load file written to a scratch path.
set -eux

root=$(realpath "$OVERLAY_TEST_ROOT")

playbook() {
    ansible-playbook -i inventory.yml \
        -e ansible_python_interpreter="$ANSIBLE_PYTHON_INTERPRETER" \
        -e test_root="$root" "$@"
}

playbook converge.yml -e phase=check --check
playbook converge.yml -e phase=apply
playbook converge.yml -e phase=rerun | tee "$root/rerun.log"
grep -E '^units_host +: ok=[0-9]+ +changed=0 +unreachable=0 +failed=0 ' "$root/rerun.log"
grep -E '^fstab_host +: ok=[0-9]+ +changed=0 +unreachable=0 +failed=0 ' "$root/rerun.log"
playbook converge.yml -e phase=prune
