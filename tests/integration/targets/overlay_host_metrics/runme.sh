#!/usr/bin/env bash
# The overlay_host role with overlay_host_metrics_dir: the textfile-collector
# file after a check-mode run (the drift report), an apply, a re-run with
# changed=0, and a drift made by hand (an overlay unmounted) that the next
# check reports, and a run that fails (an entry the collection refuses) and
# still writes it. Each file is checked by check_metrics.py: the values, then
# `promtool check metrics`, then a real node_exporter scraping it (each
# skipped with the reason when not installed).
set -eux
# shellcheck source-path=SCRIPTDIR source=../common/target.sh
source ../common/target.sh

metrics_dir="$root/textfile"
mkdir -p "$metrics_dir"
run() {
    playbook converge.yml -e metrics_dir="$metrics_dir" "$@"
}

run -e phase=check --check
run -e phase=apply
run -e phase=rerun | tee "$root/rerun.log"
grep -E '^localhost +: ok=[0-9]+ +changed=0 +unreachable=0 +failed=0 ' "$root/rerun.log"
run -e phase=drift --check
run -e phase=broken --check | tee "$root/broken.log"
grep -E "^localhost +: .* failed=0 .* rescued=1 " "$root/broken.log"
# Nothing but the file itself is left in the dir (no staging file).
[ "$(ls -A "$metrics_dir")" = overlayfs_mounts.prom ]
