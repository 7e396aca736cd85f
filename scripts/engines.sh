#!/usr/bin/env bash
# Docker and podman as test subjects: real container overlays of 5, 60 and
# 120 layers, read by overlay_mount_info and compared with `inspect`, with
# the overlay_host role converging its own overlays beside them.
#
#   scripts/engines.sh          set up, run tests/engines, clean up
#   scripts/engines.sh up       set up only (dockerd + 6 containers stay up)
#   scripts/engines.sh down     stop the containers and the dockerd we started
#
# Set-up: installs docker.io, podman and busybox-static; starts dockerd by
# hand (no systemd here) with the overlay2 driver and no networking; builds
# the images once in Docker (a one-layer base imported from a tar holding
# the static busybox, then one small COPY per layer) and moves them into
# podman with `docker save | podman load`. The images stay cached in the
# engines' own stores (/var/lib/docker, /var/lib/containers): a warm run
# builds nothing. An engine that cannot start is skipped with the reason;
# everything else failing fails the stage.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Debian's client: /usr/local/bin/docker may be another one, earlier in PATH.
DOCKER_BIN=${DOCKER_BIN:-/usr/bin/docker}
DOCKERD_BIN=${DOCKERD_BIN:-/usr/sbin/dockerd}
STATE=/run/overlayfs-mounts-engines
DOCKER_SOCK="$STATE/docker.sock"
export DOCKER_HOST="unix://$DOCKER_SOCK"
export DOCKER_BUILDKIT=0
NAME=ofm-engines
IMAGE_REPO=localhost/$NAME/layers
BASE_IMAGE=localhost/$NAME/busybox:base
DEPTHS=(5 60 120)
BUILD_DIR=/var/cache/overlayfs-mounts/engines

docker_() { "$DOCKER_BIN" "$@"; }

# Print a line every 30 s while a long step runs, so CI sees progress.
_TICKER=""
ticker_start() {
    local what=$1 start=$SECONDS
    (while sleep 30; do log "... still $what ($((SECONDS - start))s)"; done) &
    _TICKER=$!
}
ticker_stop() {
    if [[ -n $_TICKER ]]; then
        kill "$_TICKER" 2>/dev/null || true
        wait "$_TICKER" 2>/dev/null || true
        _TICKER=""
    fi
}

install_packages() {
    apt_install_missing docker.io podman runc busybox-static
    ensure_containers_conf
}

dockerd_running() {
    [[ -f $STATE/dockerd.pid ]] && kill -0 "$(cat "$STATE/dockerd.pid")" 2>/dev/null
}

# Starts dockerd in the background; its pid goes to $STATE/dockerd.pid.
# Prints the reason and returns 1 when it cannot start.
start_dockerd() {
    mkdir -p "$STATE"
    if dockerd_running && docker_ version >/dev/null 2>&1; then
        log "dockerd already running (pid $(cat "$STATE/dockerd.pid"))"
        return 0
    fi
    log "starting dockerd (overlay2, --iptables=false --bridge=none, socket $DOCKER_SOCK)"
    setsid "$DOCKERD_BIN" --iptables=false --ip-masq=false --bridge=none --storage-driver=overlay2 \
        --host="$DOCKER_HOST" --pidfile="$STATE/dockerd.pid" --exec-root="$STATE/exec" \
        >"$STATE/dockerd.log" 2>&1 </dev/null &
    local pid=$! i
    for ((i = 0; i < 60; i++)); do
        if docker_ version >/dev/null 2>&1; then
            local driver
            driver=$(docker_ info --format '{{.Driver}}')
            if [[ $driver != overlay2 ]]; then
                echo "dockerd runs the $driver storage driver, not overlay2"
                return 1
            fi
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            local rc=0 said
            wait "$pid" || rc=$?
            said=$(tail -n 3 "$STATE/dockerd.log" | tr '\n' ' ')
            echo "$DOCKERD_BIN exited with status $rc: ${said:-no output} (log: $STATE/dockerd.log)"
            return 1
        fi
        sleep 1
    done
    echo "dockerd did not answer on $DOCKER_SOCK within 60 s: $(tail -n 3 "$STATE/dockerd.log" | tr '\n' ' ')"
    kill "$pid" 2>/dev/null || true
    return 1
}

stop_dockerd() {
    dockerd_running || return 0
    local pid i
    pid=$(cat "$STATE/dockerd.pid")
    log "stopping dockerd (pid $pid)"
    kill "$pid"
    for ((i = 0; i < 60; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 1
    done
    rm -f "$STATE/dockerd.pid"
}

# A one-layer base image: the static busybox and the applets the tests use.
build_base() {
    docker_ image inspect "$BASE_IMAGE" >/dev/null 2>&1 && return 0
    local rootfs applet
    rootfs=$(mktemp -d)
    mkdir -p "$rootfs/bin" "$rootfs/tmp" "$rootfs/proc" "$rootfs/sys" "$rootfs/dev" "$rootfs/etc"
    cp /bin/busybox "$rootfs/bin/busybox"
    for applet in sh sleep cat ls echo touch test mkdir rm; do
        ln -s busybox "$rootfs/bin/$applet"
    done
    log "docker import $BASE_IMAGE"
    tar -C "$rootfs" -c . | docker_ import --change 'CMD ["/bin/sleep", "1000000"]' - "$BASE_IMAGE" >/dev/null
    rm -rf "$rootfs"
}

# localhost/ofm-engines/layers:N: the base plus N-1 layers of one small file each.
build_layers() {
    local depth=$1 image="$IMAGE_REPO:$1" dir i
    docker_ image inspect "$image" >/dev/null 2>&1 && return 0
    dir="$BUILD_DIR/context-$depth"
    rm -rf "$dir"
    mkdir -p "$dir"
    {
        echo "FROM $BASE_IMAGE"
        for ((i = 1; i < depth; i++)); do
            echo "layer $i of $depth" >"$dir/f$i"
            echo "COPY f$i /layers/f$i"
        done
        echo 'CMD ["/bin/sleep", "1000000"]'
    } >"$dir/Dockerfile"
    log "docker build $image ($depth layers)"
    ticker_start "building $image"
    docker_ build --network=none -q -t "$image" "$dir" >/dev/null
    ticker_stop
    rm -rf "$dir"
}

build_images() {
    build_base
    local depth
    for depth in "${DEPTHS[@]}"; do
        build_layers "$depth"
    done
}

# The same images in podman's store, moved over from Docker (a podman build
# of 120 layers takes minutes; a load takes seconds).
load_into_podman() {
    local missing=() depth
    for depth in "${DEPTHS[@]}"; do
        podman image exists "$IMAGE_REPO:$depth" || missing+=("$IMAGE_REPO:$depth")
    done
    ((${#missing[@]})) || return 0
    if ! docker_ version >/dev/null 2>&1; then
        echo "the images are not in podman's store and dockerd is not up to export them"
        return 1
    fi
    log "docker save | podman load: ${missing[*]}"
    ticker_start "loading images into podman"
    docker_ save "${missing[@]}" | podman load -q >/dev/null
    ticker_stop
}

remove_containers() {
    local depth
    for depth in "${DEPTHS[@]}"; do
        if docker_ version >/dev/null 2>&1; then
            docker_ rm -f "$NAME-d$depth" >/dev/null 2>&1 || true
        fi
        podman rm -f -t 0 "$NAME-p$depth" >/dev/null 2>&1 || true
    done
}

run_containers() {
    local engine=$1 depth
    for depth in "${DEPTHS[@]}"; do
        if [[ $engine == docker ]]; then
            docker_ rm -f "$NAME-d$depth" >/dev/null 2>&1 || true
            docker_ run -d --network=none --name "$NAME-d$depth" "$IMAGE_REPO:$depth" >/dev/null
        else
            podman rm -f -t 0 "$NAME-p$depth" >/dev/null 2>&1 || true
            podman run -d --network=none --name "$NAME-p$depth" "$IMAGE_REPO:$depth" >/dev/null
        fi
    done
}

# Writes $STATE/engines.env: which engines are up, and why one is not.
up() {
    mkdir -p "$STATE" "$BUILD_DIR"
    install_packages
    local docker_reason="" podman_reason=""
    docker_reason=$(start_dockerd) || true
    if dockerd_running && docker_ version >/dev/null 2>&1; then
        docker_reason=""
        build_images
    else
        docker_reason=${docker_reason:-dockerd did not start}
        log "SKIP docker: $docker_reason"
    fi
    if ! podman_reason=$(podman info --format '{{.Store.GraphDriverName}}' 2>&1); then
        podman_reason="podman info failed: $(echo "$podman_reason" | tail -n 2 | tr '\n' ' ')"
    elif [[ $podman_reason != overlay ]]; then
        podman_reason="podman's storage driver is $podman_reason, not overlay"
    else
        podman_reason=$(load_into_podman) || true
    fi
    if [[ -n $podman_reason ]]; then
        log "SKIP podman: $podman_reason"
    fi
    if [[ -z $docker_reason ]]; then
        log "docker: starting ${#DEPTHS[@]} containers"
        run_containers docker
    fi
    if [[ -z $podman_reason ]]; then
        log "podman: starting ${#DEPTHS[@]} containers"
        if ! out=$(run_containers podman 2>&1); then
            podman_reason="podman run failed: $(echo "$out" | tail -n 2 | tr '\n' ' ')"
            log "SKIP podman: $podman_reason"
        fi
    fi
    {
        printf 'ENGINES_DOCKER_SKIP=%q\n' "$docker_reason"
        printf 'ENGINES_PODMAN_SKIP=%q\n' "$podman_reason"
        printf 'ENGINES_NAME=%q\n' "$NAME"
        printf 'ENGINES_DEPTHS=%q\n' "${DEPTHS[*]}"
        printf 'DOCKER_HOST=%q\n' "$DOCKER_HOST"
    } >"$STATE/engines.env"
}

down() {
    log "removing the test containers"
    remove_containers
    stop_dockerd
}

run_tests() {
    # shellcheck disable=SC1091
    source "$STATE/engines.env"
    export ENGINES_DOCKER_SKIP ENGINES_PODMAN_SKIP ENGINES_NAME ENGINES_DEPTHS DOCKER_HOST DOCKER_BIN
    if [[ -n $ENGINES_DOCKER_SKIP && -n $ENGINES_PODMAN_SKIP ]]; then
        log "SKIP the engine tests: neither engine could start (docker: $ENGINES_DOCKER_SKIP; podman: $ENGINES_PODMAN_SKIP)"
        return 0
    fi
    cd "$ROOT"
    export PYTHONPATH="$CACHE/pythonpath${PYTHONPATH:+:$PYTHONPATH}"
    export ANSIBLE_COLLECTIONS_PATH="$COLLECTIONS_DIR"
    # -rs: a skipped engine prints its reason. The role test alone takes
    # over a minute: the ticker keeps the log moving.
    ticker_start "running tests/engines"
    local rc=0
    pytest -q -rs tests/engines || rc=$?
    ticker_stop
    return "$rc"
}

main() {
    case "${1:-all}" in
        up) up ;;
        down) down ;;
        all)
            trap 'ticker_stop; down' EXIT
            up
            run_tests
            ;;
        *) die "usage: $0 [up|down]" ;;
    esac
}

main "$@"
