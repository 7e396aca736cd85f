#!/usr/bin/env bash
# Build the local podman image molecule's scenarios boot (no image registry is
# reachable): Debian 12 with systemd as PID 1. Skipped when the image exists.
#
#   scripts/build-image.sh            build if missing (and then check it boots)
#   scripts/build-image.sh --verify   also check an existing image boots
#   scripts/build-image.sh --rebuild  build again even if it exists
#
# Takes ~1.5 min to build (debootstrap is most of it), ~2 s to verify.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

IMAGE="${IMAGE:-localhost/debian-systemd:12}"
SUITE=bookworm

# The Debian mirror this machine's apt uses: the first deb.debian.org/debian
# URI in the deb822 sources (other hosts are unreachable), else sources.list.
debian_mirror() {
    local uri
    uri="$(grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null \
        | grep -oE 'https?://deb\.debian\.org/debian/?( |$)' | head -n1 | tr -d ' ' || true)"
    if [[ -z $uri ]]; then
        uri="$(grep -hE '^deb ' /etc/apt/sources.list 2>/dev/null \
            | awk '{print $2}' | grep -E '/debian/?$' | head -n1 || true)"
    fi
    echo "${uri:-http://deb.debian.org/debian}"
}

build() {
    local mirror rootfs start
    mirror="$(debian_mirror)"
    rootfs="$(mktemp -d /var/tmp/debian-systemd-rootfs.XXXXXX)"
    # shellcheck disable=SC2064  # expand now: rootfs is local
    trap "rm -rf '$rootfs'" EXIT

    start=$SECONDS
    log "debootstrap $SUITE from $mirror"
    debootstrap --variant=minbase --include=systemd,systemd-sysv,python3,dbus \
        "$SUITE" "$rootfs" "$mirror" >"$CACHE/debootstrap.log" 2>&1 \
        || { tail -n 30 "$CACHE/debootstrap.log" >&2; die "debootstrap failed (log: $CACHE/debootstrap.log)"; }
    log "debootstrap took $((SECONDS - start))s"

    # An empty machine-id makes systemd generate a fresh one at each boot,
    # so containers don't share the id baked into the image.
    : >"$rootfs/etc/machine-id"
    rm -f "$rootfs/var/lib/dbus/machine-id"
    # Smaller image: downloaded packages and apt lists are not needed.
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*

    start=$SECONDS
    log "podman import $IMAGE"
    local old_id
    old_id="$(podman image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null || true)"
    tar -C "$rootfs" -c . | podman import -q \
        --change 'CMD ["/sbin/init"]' --change 'STOPSIGNAL SIGRTMIN+3' - "$IMAGE" >/dev/null
    # On --rebuild, drop the image the tag used to point at.
    if [[ -n $old_id && $old_id != "$(podman image inspect -f '{{.Id}}' "$IMAGE")" ]]; then
        podman rmi "$old_id" >/dev/null 2>&1 || log "old image ${old_id:0:12} is still in use by a container; left in place"
    fi
    log "import took $((SECONDS - start))s"
    rm -rf "$rootfs"
    trap - EXIT
}

# Boot the image with systemd as PID 1 (as molecule will) and wait for
# systemd to finish starting up: "running", or "degraded" if some unit that
# does not matter in a container failed.
verify() {
    local cid state start=$SECONDS
    cid="$(podman run -d --privileged --systemd=always --tmpfs=/srv:rw,mode=755 "$IMAGE" /sbin/init)"
    # shellcheck disable=SC2064  # expand now: cid is local
    trap "podman rm -f '$cid' >/dev/null 2>&1 || true" EXIT
    # Right after start, systemctl cannot reach systemd's bus yet ("Failed to
    # connect to bus"): retry until it answers, then --wait for the boot.
    local deadline=$((SECONDS + 120))
    while :; do
        state="$(timeout 120 podman exec "$cid" systemctl is-system-running --wait 2>/dev/null || true)"
        [[ -n $state || $SECONDS -ge $deadline ]] && break
        sleep 0.5
    done
    podman rm -f "$cid" >/dev/null
    trap - EXIT
    case $state in
        running | degraded) log "$IMAGE boots: systemd $state after $((SECONDS - start))s" ;;
        *) die "$IMAGE did not boot: systemd state '${state:-unknown}'" ;;
    esac
}

main() {
    local verify_existing=0 rebuild=0
    while (($#)); do
        case $1 in
            --verify) verify_existing=1 ;;
            --rebuild) rebuild=1 ;;
            *) die "unknown argument: $1" ;;
        esac
        shift
    done
    ensure_system
    mkdir -p "$CACHE"
    if [[ $rebuild == 0 ]] && podman image exists "$IMAGE"; then
        log "$IMAGE exists"
        [[ $verify_existing == 1 ]] && verify
        return 0
    fi
    build
    verify
}

main "$@"
