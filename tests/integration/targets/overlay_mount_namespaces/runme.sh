#!/usr/bin/env bash
# overlay_mount beside other mount namespaces, with the real things: a podman
# container running on an overlay the module made (its own namespace keeps
# the overlay's superblock), and a process in a child namespace that our
# unmount reaches but that keeps its copy busy. Re-layering, unmounting and
# absent are refused with the holder named, in check mode and for real; the
# upper is never used by two live overlays (every namespace's mountinfo is
# read); once the holders are gone the same tasks go through. Last, a layer
# declared through a symlink is flipped while a container runs on it: the
# re-layer the flip calls for is refused, then made once the container stops;
# and an idle process in a private namespace (a copy nobody uses) lets an
# unmount go with a warning, but no overlay on the same upper meanwhile.
set -eux
# shellcheck source-path=SCRIPTDIR source=../common/target.sh
source ../common/target.sh

container="ofm-namespaces-$$"
cleanup() {
    podman rm -f -t 0 "$container" "$container-flip" >/dev/null 2>&1 || true
    for pidfile in "$root"/ns/*.pid; do
        if [ -f "$pidfile" ]; then
            kill "$(cat "$pidfile")" 2>/dev/null || true
        fi
    done
}
trap cleanup EXIT

command -v podman >/dev/null || { echo "podman is missing: run scripts/bootstrap.sh --system"; exit 1; }
[ -x /bin/busybox ] || { echo "/bin/busybox is missing: run scripts/bootstrap.sh --system"; exit 1; }

# Mounts below the scratch dir propagate to namespaces made from this one (as
# on a host booted with systemd, where / is shared): a child namespace's copy
# of our overlay is then a slave, which our unmount reaches.
mount --bind "$root" "$root"
mount --make-shared "$root"

playbook namespaces.yml -e container="$container"
