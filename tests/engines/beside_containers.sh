#!/usr/bin/env bash
# Runs inside `unshare --mount --propagation private` (see test_engines.py):
# the namespace starts with a copy of every mount of the host, the
# containers' overlays included. Converges this collection's overlays beside
# them with the overlay_host role, checks a re-run changes nothing, prunes,
# has overlay_mount refuse to touch the containers, runs the fleet drift
# report, and checks that the containers' overlays are exactly as before.
#
#   beside_containers.sh ROOT CONTAINERS_JSON MERGED_DIR...
set -euo pipefail

root=$1
containers=$2
shift 2
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# /etc gets a throw-away overlay of itself: nothing here may change the host's files.
mkdir -p "$root/.etc/upper" "$root/.etc/work"
mount -t overlay overlay -o "lowerdir=/etc,upperdir=$root/.etc/upper,workdir=$root/.etc/work" /etc

# Mount point and super options of each container's overlay, in mountinfo.
container_mounts() {
    local merged
    for merged in "$@"; do
        awk -v m="$merged" '$5 == m { for (i = 7; i <= NF; i++) if ($i == "-") break; print $5, $(i + 3) }' \
            /proc/self/mountinfo
    done
}
container_mounts "$@" >"$root/containers-before.txt"
[[ $(wc -l <"$root/containers-before.txt") -eq $# ]] || { echo "not every container is mounted"; exit 1; }

playbook() {
    ansible-playbook -i "$here/inventory.yml" -e ansible_python_interpreter="$ANSIBLE_PYTHON_INTERPRETER" \
        -e root="$root" -e "@$containers" "$@"
}

echo "== role: converge"
playbook "$here/role.yml" -e phase=converge
echo "== role: re-run"
playbook "$here/role.yml" -e phase=rerun | tee "$root/rerun.log"
grep -E '^engine_host +: ok=[0-9]+ +changed=0 +unreachable=0 +failed=0 ' "$root/rerun.log"
echo "== drift report"
playbook overlayfs.mounts.drift_report -e phase=rerun -e drift_report_dir="$root/report"
cp "$root/report/drift.json" "$root/drift.json"
echo "== overlay_mount refuses the containers' mounts and layers"
playbook "$here/role.yml" -e phase=refuse
echo "== role: prune"
playbook "$here/role.yml" -e phase=prune

container_mounts "$@" >"$root/containers-after.txt"
diff -u "$root/containers-before.txt" "$root/containers-after.txt"
# This collection's overlays: the app one stays, the pruned one is gone.
findmnt -rn -o TARGET "$root/app/merged"
if findmnt -rn -o TARGET "$root/gone/merged"; then echo "pruned overlay still mounted"; exit 1; fi
echo "== the containers' overlays are as they were"
