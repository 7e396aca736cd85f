#!/usr/bin/env bash
# The main job: build and install the collection into .venv, then, on this
# host, inside a private mount namespace and under a scratch directory:
#   1. converge the classic overlay (examples/demo.yml) and show where merged/a, b and c
#      come from (lower1, lower1, upper) and that a new file lands in upper,
#   2. run the same play again and show that it reports changed=0,
#   3. change the live mount by hand (swap the layers) and show the drift report
#      (overlayfs.mounts.drift_report, in check mode) that catches it.
# Needs root. Extra arguments go to every ansible-playbook run (e.g. -v).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

"$ROOT/scripts/bootstrap.sh"
"$ROOT/scripts/collection.sh" >/dev/null
use_venv

[[ $(id -u) == 0 ]] || die "the demo mounts overlays: run it as root"
SCRATCH="$(mktemp -d /tmp/overlayfs-demo.XXXXXX)"
log "scratch directory: $SCRATCH"

cd "$ROOT"
# Only our freshly installed collection (plus the extracted ones) on the path.
export ANSIBLE_COLLECTIONS_PATH="$COLLECTIONS_DIR"
export ANSIBLE_NOCOLOR=1

# Everything below runs in one private mount namespace: the mounts of one step
# are there for the next, and all of them vanish with the namespace.
exec unshare --mount --propagation private bash -s -- "$VENV" "$SCRATCH" "$@" <<'INNER'
set -euo pipefail
venv="$1" scratch="$2"; shift 2
play() {
    "$venv/bin/ansible-playbook" -i examples/inventory.yml \
        -e ansible_python_interpreter="$venv/bin/python" -e demo_root="$scratch" "$@"
}

echo "==> 1. converge the classic overlay"
play examples/demo.yml "$@"

echo "==> 2. the same play again: nothing left to change"
play examples/demo.yml "$@" | tee "$scratch/second-run.log"
grep -Eq 'demo +: ok=[0-9]+ +changed=0 ' "$scratch/second-run.log" \
    || { echo "FAILED: the second run changed something"; exit 1; }
echo "second run: changed=0"

echo "==> 3. someone swaps the layers by hand; the drift report catches it"
umount "$scratch/merged"
mount -t overlay overlay \
    -o "lowerdir=$scratch/lower2:$scratch/lower1,upperdir=$scratch/upper,workdir=$scratch/work" "$scratch/merged"
play overlayfs.mounts.drift_report -e drift_report_dir="$scratch/report" "$@" >/dev/null
cat "$scratch/report/drift.md"
echo "(report files: $scratch/report/drift.json, $scratch/report/drift.md)"
INNER
