#!/usr/bin/env bash
# The fleet drift report over three inventory hosts (local connection, one
# scratch root each) and two that cannot be read (inventory_down.yml: one
# unreachable over SSH, one where a task fails): converge the three with the
# overlay_host role, change web2 by hand, run the overlayfs.mounts.drift_report
# playbook from the report directory (its default) and check drift.json,
# drift.md, drift.html and the console row by row, that no host changed while
# reporting, and that drift_report_fail_on fails the play after the report.
set -eux
# shellcheck source-path=SCRIPTDIR source=../common/target.sh
source ../common/target.sh

here=$PWD

# Over the inventory's hosts (local connections, one scratch root each).
inventory_playbook() {
    ansible-playbook -i "$here/inventory.yml" \
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
# From the report directory, with no drift_report_dir: the report is written where ansible-playbook runs.
mkdir "$root/report"
(cd "$root/report" && inventory_playbook -i "$here/inventory_down.yml" overlayfs.mounts.drift_report) \
    > "$root/report.log" 2>&1 || { cat "$root/report.log"; exit 1; }
cat "$root/report.log"
snapshot > "$root/after-report.txt"
# Reporting changed no host: fstab checksums, files, units and mountinfo.
diff -u "$root/before-report.txt" "$root/after-report.txt"
grep -c ' - overlay ' "$root/after-report.txt"
playbook verify.yml -e report_log="$root/report.log"

# drift_report_fail_on: the play fails once the report is written, naming what it found.
for fail_on in unreachable drift failed; do
    rc=0
    inventory_playbook -i inventory_down.yml overlayfs.mounts.drift_report -e drift_report_dir="$root/gate-$fail_on" \
        -e "{\"drift_report_fail_on\": [\"$fail_on\"]}" > "$root/gate.log" 2>&1 || rc=$?
    [ "$rc" = 2 ] || { cat "$root/gate.log"; echo "drift_report_fail_on=[$fail_on]: rc $rc, not 2" >&2; exit 1; }
    test -s "$root/gate-$fail_on/drift.json" && test -s "$root/gate-$fail_on/drift.html"
    grep -E "fatal: .*(1 host\(s\) $fail_on: (down|broken)|drift on 2 host\(s\): web2, web3)" "$root/gate.log"
done
# Only the reachable, in-sync host, gated on everything: the play passes.
inventory_playbook overlayfs.mounts.drift_report --limit web1 -e drift_report_dir="$root/gate-none" \
    -e '{"drift_report_fail_on": ["drift", "unreachable", "failed"]}'
# A wrong value fails before any host is read, and writes no report.
rc=0
inventory_playbook overlayfs.mounts.drift_report -e drift_report_dir="$root/gate-wrong" \
    -e '{"drift_report_fail_on": ["drifts"]}' > "$root/gate.log" 2>&1 || rc=$?
if [ "$rc" != 2 ] || [ -e "$root/gate-wrong" ]; then
    cat "$root/gate.log"
    exit 1
fi
grep -F "drift_report_fail_on must be a list of drift, unreachable, failed, not ['drifts']" "$root/gate.log"
