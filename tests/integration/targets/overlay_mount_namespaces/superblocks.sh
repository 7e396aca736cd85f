#!/usr/bin/env bash
# Print the distinct superblocks (mountinfo's major:minor) of the overlays
# whose upperdir is $1, over the mountinfo of every mount namespace on the host.
set -euo pipefail
upper=$1
declare -A seen=()
for ns in /proc/[0-9]*/ns/mnt; do
    pid=${ns#/proc/}
    pid=${pid%%/*}
    id=$(readlink "$ns" 2>/dev/null) || continue
    [[ -n ${seen[$id]:-} ]] && continue
    seen[$id]=$pid
    awk -v u="upperdir=$upper," 'index($0, u) && / - overlay / { print $3 }' "/proc/$pid/mountinfo" 2>/dev/null || true
done | sort -u
