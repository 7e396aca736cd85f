#!/usr/bin/env bash
# A host's overlays as one graph: a batch listed backwards (one dependency
# spelled through a symlink) is mounted in dependency order and persisted in
# that order; a cycle, a mount point declared twice (once through a symlink),
# a live upper used as a lower, a new overlay over another's upper and work
# dir, two entries sharing an upper and a stopped podman container's layer dir
# as upper are refused before anything changes, in check mode as in the real
# run; prune compares resolved paths.
set -eux
# shellcheck source-path=SCRIPTDIR source=../common/target.sh
source ../common/target.sh

command -v podman >/dev/null || { echo "podman is missing: run scripts/bootstrap.sh --system"; exit 1; }
[ -x /bin/busybox ] || { echo "/bin/busybox is missing: run scripts/bootstrap.sh --system"; exit 1; }

# A container engine's store of its own, with one image and one stopped
# container: its layer dirs are real, and no container runs on them. That
# podman shares nothing with the host's: its own store, run and tmp dirs,
# and (this target's mount namespace being private) its own /dev/shm, where
# podman keeps its lock segment.
store="$root/engine"
mkdir -p "$store/image/bin"
cp /bin/busybox "$store/image/bin/busybox"
run_root="$(mktemp -d /tmp/ofm-graph.XXXXXX)"  # podman wants a short runroot
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
engine=(podman --root "$store/storage" --runroot "$run_root/run" --tmpdir "$run_root/tmp" --storage-driver overlay)
cleanup() {
    "${engine[@]}" rm -af >/dev/null 2>&1 || true
    rm -rf "$run_root"
}
trap cleanup EXIT
tar -C "$store/image" -c . | "${engine[@]}" import - localhost/ofm-graph:1 >/dev/null
"${engine[@]}" create --name ofm-graph-stopped --network none localhost/ofm-graph:1 /bin/busybox true >/dev/null
layer_diff="$("${engine[@]}" inspect --format '{{.GraphDriver.Data.UpperDir}}' ofm-graph-stopped)"
[ -d "$layer_diff" ]

playbook graph.yml -e layer_diff="$layer_diff"
