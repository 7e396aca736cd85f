#!/usr/bin/env bash
# Runs at the same time behave as one after the other: several
# ansible-playbook processes start together (each waits at a barrier, then
# converges) with the same overlay, with two overlays on one upper, and with
# two lists that share an entry. Each host read and change happens under the
# host lock, so exactly one overlay is mounted per mount point, the upper
# serves one overlay, and the loser of a shared upper is refused.
set -eux
# shellcheck source-path=SCRIPTDIR source=../common/target.sh
source ../common/target.sh

base="$root/concurrency"
mkdir -p "$base/l1" "$base/l2" "$base/out"
echo one > "$base/l1/f"
echo two > "$base/l2/f"

# Start every run of one round at once: each blocks on a fifo until all exist.
round() {
    local name=$1
    shift
    local fifo="$base/$name.go"
    mkfifo "$fifo"
    local pids=() i=0
    for args in "$@"; do
        i=$((i + 1))
        # shellcheck disable=SC2086  # each args string is several -e options
        (exec 3<"$fifo"; playbook run.yml -e out="$base/out/$name-$i.json" $args >"$base/out/$name-$i.log" 2>&1) &
        pids+=("$!")
    done
    sleep 1
    exec 4>"$fifo"  # opens the fifo for writing: every reader starts now
    exec 4>&-
    for pid in "${pids[@]}"; do
        wait "$pid"
    done
}

same="-e @$base/same.json"
cat > "$base/same.json" <<JSON
{"mounts": [{"path": "$base/m1", "lowerdir": ["$base/l1", "$base/l2"], "upperdir": "$base/u1", "workdir": "$base/w1"}]}
JSON
round same "$same" "$same" "$same" "$same"

cat > "$base/share-a.json" <<JSON
{"mounts": [{"path": "$base/s1", "lowerdir": ["$base/l1", "$base/l2"], "upperdir": "$base/su", "workdir": "$base/sw"}]}
JSON
cat > "$base/share-b.json" <<JSON
{"mounts": [{"path": "$base/s2", "lowerdir": ["$base/l2", "$base/l1"], "upperdir": "$base/su", "workdir": "$base/sw"}]}
JSON
round share "-e @$base/share-a.json" "-e @$base/share-b.json"

cat > "$base/list-a.json" <<JSON
{"mounts": [{"path": "$base/a", "lowerdir": ["$base/l1", "$base/l2"]}, {"path": "$base/b", "lowerdir": ["$base/a", "$base/l2"]}], "batch": true}
JSON
cat > "$base/list-b.json" <<JSON
{"mounts": [{"path": "$base/b", "lowerdir": ["$base/a", "$base/l2"]}, {"path": "$base/c", "lowerdir": ["$base/l2", "$base/l1"]}, {"path": "$base/a", "lowerdir": ["$base/l1", "$base/l2"]}], "batch": true}
JSON
round lists "-e @$base/list-a.json" "-e @$base/list-b.json"

playbook check.yml -e base="$base"
