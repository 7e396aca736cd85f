#!/usr/bin/env bash
# The fleet drift report over three inventory hosts (local connection, one
# scratch root each): converge them with the overlay_host role, change web2 by
# hand, run the overlayfs.mounts.drift_report playbook and check drift.json and
# drift.md row by row, and that no host changed while reporting.
set -eux
# shellcheck source-path=SCRIPTDIR source=../common/target.sh
source ../common/target.sh

# Over the inventory's hosts (local connections, one scratch root each).
inventory_playbook() {
    ansible-playbook -i inventory.yml \
        -e ansible_python_interpreter="$ANSIBLE_PYTHON_INTERPRETER" \
        -e test_root="$root" "$@"
}

snapshot() {
    for host in web1 web2 web3; do
        bash ../common/snapshot.sh "$root/$host"
    done
}

inventory_playbook converge.yml
snapshot > "$root/before-report.txt"
inventory_playbook overlayfs.mounts.drift_report -e drift_report_dir="$root/report"
snapshot > "$root/after-report.txt"
# Reporting changed no host: fstab checksums, files, units and mountinfo.
diff -u "$root/before-report.txt" "$root/after-report.txt"
grep -c ' - overlay ' "$root/after-report.txt"
playbook verify.yml
