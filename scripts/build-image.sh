#!/usr/bin/env bash
# Build the local podman images molecule's scenarios boot (no image registry
# is reachable): Debian 11, 12 and 13 with systemd as PID 1, made offline with
# debootstrap from this machine's Debian mirror and `podman import`.
#
#   scripts/build-image.sh [OPTIONS] [RELEASE...]   RELEASE: 11, 12, 13 (default: all)
#     --verify    also boot an image that exists already
#     --rebuild   build again even if the image is up to date
#
# Each image (localhost/debian-systemd:RELEASE) carries a hash of its recipe
# (suite, packages, the build steps) in the label overlayfs-mounts.recipe. A
# build is skipped while an image with the same hash exists, and redone when
# the recipe changes. Downloaded packages are kept in
# /var/cache/overlayfs-mounts/debootstrap/SUITE so a rebuild fetches nothing.
#
# Cold: ~65 s debootstrap + ~10 s import + ~2 s boot check per release;
# cached: under a second per release.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

IMAGE_REPO="${IMAGE_REPO:-localhost/debian-systemd}"
RECIPE_LABEL=overlayfs-mounts.recipe
MACHINE_CACHE="${OVERLAYFS_MACHINE_CACHE:-/var/cache/overlayfs-mounts}"
INCLUDE_PACKAGES=systemd,systemd-sysv,python3,dbus
# Print a progress line at least this often while a step is silent.
PROGRESS_EVERY=30

suite_of() {
    case $1 in
        11) echo bullseye ;;
        12) echo bookworm ;;
        13) echo trixie ;;
        *) die "unknown Debian release '$1': use 11, 12 or 13" ;;
    esac
}

# The recipe: what debootstrap installs and what is changed afterwards.
# Its hash (comments do not count: `declare -f` drops them) decides whether
# an existing image is still current.
customize_rootfs() {
    local rootfs=$1
    # An empty machine-id makes systemd generate a fresh one at each boot,
    # so containers don't share the id baked into the image.
    : >"$rootfs/etc/machine-id"
    rm -f "$rootfs/var/lib/dbus/machine-id"
    # Smaller image: downloaded packages and apt lists are not needed.
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
}

recipe_hash() {
    local release=$1
    {
        echo "suite=$(suite_of "$release") include=$INCLUDE_PACKAGES variant=minbase"
        echo "import: CMD /sbin/init, STOPSIGNAL SIGRTMIN+3"
        declare -f customize_rootfs
    } | sha256sum | cut -c1-16
}

# Run "$@" with its output in LOGFILE, printing the latest debootstrap step
# ("I: ..." line) every PROGRESS_EVERY seconds, so CI sees progress.
with_progress() {
    local what=$1 logfile=$2
    shift 2
    "$@" >"$logfile" 2>&1 &
    local pid=$! start=$SECONDS next=$((SECONDS + PROGRESS_EVERY)) rc=0
    while kill -0 "$pid" 2>/dev/null; do
        if ((SECONDS >= next)); then
            log "$what: $((SECONDS - start))s, $(grep -E '^[IWE]: ' "$logfile" | tail -n1 || true)"
            next=$((SECONDS + PROGRESS_EVERY))
        fi
        sleep 1
    done
    wait "$pid" || rc=$?
    return "$rc"
}

build() {
    local release=$1 image=$2 hash=$3 suite mirror rootfs start debs logfile
    suite="$(suite_of "$release")"
    mirror="$(host_mirror main)"
    rootfs="$(mktemp -d "/var/tmp/debian-systemd-$release-rootfs.XXXXXX")"
    # shellcheck disable=SC2064  # expand now: rootfs is local
    trap "rm -rf '$rootfs'" EXIT
    debs="$MACHINE_CACHE/debootstrap/$suite"
    mkdir -p "$debs"
    logfile="$CACHE/debootstrap-$suite.log"

    start=$SECONDS
    log "debootstrap $suite from $mirror (log: $logfile)"
    with_progress "debootstrap $suite" "$logfile" \
        debootstrap --variant=minbase --include="$INCLUDE_PACKAGES" --cache-dir="$debs" \
        "$suite" "$rootfs" "$mirror" \
        || { tail -n 30 "$logfile" >&2; die "debootstrap $suite failed (log: $logfile)"; }
    log "debootstrap $suite took $((SECONDS - start))s"

    customize_rootfs "$rootfs"

    start=$SECONDS
    log "podman import $image"
    local old_id
    old_id="$(podman image inspect -f '{{.Id}}' "$image" 2>/dev/null || true)"
    tar -C "$rootfs" -c . | podman import -q \
        --change 'CMD ["/sbin/init"]' --change 'STOPSIGNAL SIGRTMIN+3' \
        --change "LABEL $RECIPE_LABEL=$hash" - "$image" >/dev/null
    # Drop the image the tag used to point at.
    if [[ -n $old_id && $old_id != "$(podman image inspect -f '{{.Id}}' "$image")" ]]; then
        podman rmi "$old_id" >/dev/null 2>&1 || log "old image ${old_id:0:12} is still in use by a container; left in place"
    fi
    log "import took $((SECONDS - start))s"
    rm -rf "$rootfs"
    trap - EXIT
}

# Boot the image with systemd as PID 1 (as molecule will), wait for systemd
# to finish starting up ("running", or "degraded" if some unit that does not
# matter in a container failed), and print the userland versions under test.
verify() {
    local image=$1 cid state versions start=$SECONDS
    cid="$(podman run -d --privileged --systemd=always --tmpfs=/srv:rw,mode=755 "$image" /sbin/init)"
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
    versions="$(podman exec "$cid" sh -c \
        'echo "util-linux $(mount -V | grep -oE "[0-9]+\.[0-9]+(\.[0-9]+)?" | head -n1),"
         echo "systemd $(systemctl --version | awk "NR==1{print \$2}"),"
         python3 -c "import platform; print(\"Python\", platform.python_version())"' 2>/dev/null | tr '\n' ' ' || true)"
    podman rm -f "$cid" >/dev/null
    trap - EXIT
    case $state in
        running | degraded) log "$image boots: systemd $state after $((SECONDS - start))s; ${versions% }" ;;
        *) die "$image did not boot: systemd state '${state:-unknown}'" ;;
    esac
}

ensure_image() {
    local release=$1 verify_existing=$2 rebuild=$3 image hash have
    image="$IMAGE_REPO:$release"
    hash="$(recipe_hash "$release")"
    have="$(podman image inspect -f "{{index .Labels \"$RECIPE_LABEL\"}}" "$image" 2>/dev/null || true)"
    if [[ $rebuild == 0 && $have == "$hash" ]]; then
        log "$image exists (recipe $hash)"
        [[ $verify_existing == 1 ]] && verify "$image"
        return 0
    fi
    if [[ -n $have || $rebuild == 1 ]] || podman image exists "$image"; then
        log "$image: recipe ${have:-unlabelled} -> $hash: rebuilding"
    fi
    build "$release" "$image" "$hash"
    verify "$image"
}

main() {
    local verify_existing=0 rebuild=0 releases=() release
    while (($#)); do
        case $1 in
            --verify) verify_existing=1 ;;
            --rebuild) rebuild=1 ;;
            11 | 12 | 13) releases+=("$1") ;;
            *) die "unknown argument: $1 (expected --verify, --rebuild, 11, 12 or 13)" ;;
        esac
        shift
    done
    ((${#releases[@]})) || releases=(11 12 13)
    ensure_system
    mkdir -p "$CACHE"
    for release in "${releases[@]}"; do
        ensure_image "$release" "$verify_existing" "$rebuild"
    done
}

main "$@"
