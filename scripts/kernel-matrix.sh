#!/usr/bin/env bash
# The kernel matrix (CI stage `kernels`): the collection's modules run as
# root on Debian's own kernels, booted under qemu over this host's root
# filesystem, one guest and one Python process per kernel
# (tests/kernels/guest_matrix.py). Prints one result line per kernel and
# target, a progress line at least every minute, and exits non-zero if any
# target failed.
#
#   scripts/kernel-matrix.sh [--tree DIR] [SUITE...] [-- TARGET...]
#
#   SUITE      bullseye (5.10), bookworm (6.1), trixie (6.12); default all three
#   TARGET     driver targets to run (default all), e.g. live_classic deep_layers_500
#   --tree     collection checkout under test (default: this one)
#
# Installs what it needs from apt when its command is missing (qemu-system-x86,
# squashfs-tools, kmod, busybox-static, file; a busybox that is already there,
# static or not, is kept); virtme-ng comes from requirements-dev.txt.
# Kernels are cached in /var/cache/overlayfs-mounts/kernels (scripts/kernels.sh).

set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# command:package. Checked by command, so that e.g. an installed busybox
# package is not swapped for busybox-static (they conflict).
KERNEL_MATRIX_TOOLS=(
    qemu-system-x86_64:qemu-system-x86 mksquashfs:squashfs-tools
    depmod:kmod modprobe:kmod busybox:busybox-static file:file
)

ensure_tools() {
    local pair missing=()
    for pair in "${KERNEL_MATRIX_TOOLS[@]}"; do
        PATH="$PATH:/usr/sbin:/sbin" command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
    done
    ((${#missing[@]} == 0)) || apt_install_missing "${missing[@]}"
}

main() {
    local tree="$ROOT" suites=() targets=()
    while (($#)); do
        case $1 in
            --tree) tree=$2; shift ;;
            --) shift; targets=("$@"); break ;;
            -h | --help) sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; return 0 ;;
            -*) die "unknown option $1 (see --help)" ;;
            *) suites+=("$1") ;;
        esac
        shift
    done
    ((${#suites[@]})) || suites=(bullseye bookworm trixie)

    local t0=$SECONDS
    ensure_tools
    [[ -x $VENV/bin/virtme-run ]] || die "no virtme-run in $VENV: pip install -r requirements-dev.txt (virtme-ng)"
    "$ROOT/scripts/kernels.sh" "${suites[@]}"

    # A progress line every minute while the guests boot and import (they
    # print nothing meanwhile).
    local ticker
    (
        while sleep 60; do
            printf '==> kernels: still running (%ss)\n' "$((SECONDS - t0))" >&2
        done
    ) &
    ticker=$!
    # shellcheck disable=SC2064  # expand now: the trap must stop this ticker
    trap "kill $ticker 2>/dev/null || true" EXIT

    local suite rc failed=() start
    for suite in "${suites[@]}"; do
        start=$SECONDS
        rc=0
        "$ROOT/scripts/kernel-vm.sh" --tree "$tree" --cwd "$ROOT" "$suite" -- \
            python3 "$ROOT/tests/kernels/guest_matrix.py" "${targets[@]}" || rc=$?
        log "kernels: $suite done in $((SECONDS - start))s (exit $rc)"
        ((rc == 0)) || failed+=("$suite")
    done
    kill "$ticker" 2>/dev/null || true
    if ((${#failed[@]})); then
        log "kernels: failures on ${failed[*]} (total $((SECONDS - t0))s)"
        return 1
    fi
    log "kernels: every target passed on ${suites[*]} (total $((SECONDS - t0))s)"
}

main "$@"
