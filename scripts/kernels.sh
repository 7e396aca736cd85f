#!/usr/bin/env bash
# Fetch Debian's kernel for each suite given (default: bullseye bookworm
# trixie) into a machine-level cache, without installing anything on the host:
#
#   /var/cache/overlayfs-mounts/kernels/<suite>/
#       boot/vmlinuz-<ver>          the kernel image
#       lib/modules/<ver>/...       only the modules a guest needs (overlay,
#                                   9p, virtio, squashfs and what they need)
#       version                     <ver>, e.g. 6.1.0-41-amd64
#       package                     the .deb it came from
#
# The package lists are read with a private apt state (its own sources file
# and lists dir, same mirror as the host with another suite), the newest
# linux-image-<ver>-amd64 is found through the suite's linux-image-amd64
# meta package, fetched with `apt-get download` and unpacked with
# `dpkg-deb -x`. A warm run (cache filled, same suites) only checks the cache.
#
#   scripts/kernels.sh [--refresh] [SUITE...]
#
#   --refresh   re-read the package lists and fetch a newer kernel if the
#               suite has one (without it, a filled cache is used as is)
#
# Environment: OVERLAYFS_KERNEL_CACHE (default /var/cache/overlayfs-mounts/kernels)

set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KERNEL_CACHE="${OVERLAYFS_KERNEL_CACHE:-/var/cache/overlayfs-mounts/kernels}"

# Modules the guest needs: overlay for the tests, 9p/virtiofs for the root
# filesystem virtme-ng shares, virtio for its devices, squashfs for the
# packed Python tree (kernel-vm.sh). Their dependencies (netfs, fscache, ...)
# are added by modprobe --show-depends; names built into a kernel are skipped.
GUEST_MODULES=(
    overlay squashfs loop
    9p 9pnet 9pnet_virtio virtiofs fuse netfs fscache
    virtio virtio_ring virtio_pci virtio_pci_modern_dev virtio_pci_legacy_dev
    virtio_mmio virtio_blk virtio_console virtio_net virtio_rng virtio_scsi
    i8042 atkbd
)

# apt-get/apt-cache with a private state for one suite: nothing the host's
# apt knows changes.
suite_apt() {
    local tool=$1 state=$2
    shift 2
    "$tool" -q \
        -o Dir::State="$state" \
        -o Dir::State::Lists="$state/lists" \
        -o Dir::State::status=/dev/null \
        -o Dir::Etc::SourceList="$state/sources.list" \
        -o Dir::Etc::SourceParts=/dev/null \
        -o Dir::Etc::Preferences=/dev/null \
        -o Dir::Etc::PreferencesParts=/dev/null \
        -o Dir::Cache="$state/cache" \
        -o APT::Architecture=amd64 \
        -o APT::Architectures::=amd64 \
        -o APT::Sandbox::User=root \
        -o Acquire::Languages=none \
        "$@"
}

write_sources() {
    local suite=$1 file=$2 mirror security
    mirror=$(host_mirror main)
    security=$(host_mirror security)
    {
        echo "deb $mirror $suite main"
        echo "deb $mirror $suite-updates main"
        echo "deb $security $suite-security main"
    } >"$file"
}

# linux-image-<ver>-amd64 that the suite's linux-image-amd64 depends on.
resolve_image_package() {
    local state=$1 pkg
    pkg=$(suite_apt apt-cache "$state" depends linux-image-amd64 \
        | awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9].*-amd64$/ { print $2; exit }')
    [[ -n $pkg ]] || die "linux-image-amd64 in $state/sources.list depends on no linux-image-<ver>-amd64"
    echo "$pkg"
}

# Keep the kernel image and the closure of GUEST_MODULES out of an unpacked
# package in $1; write the trimmed tree to $2.
trim_kernel() {
    local full=$1 out=$2 kver moddir mod dep rel
    moddir=$(find "$full/lib/modules" "$full/usr/lib/modules" -mindepth 1 -maxdepth 1 -type d 2>/dev/null | head -n 1 || true)
    [[ -n $moddir ]] || die "no lib/modules/<ver> in the package unpacked at $full"
    kver=${moddir##*/}
    # The package ships no modules.dep (its postinst runs depmod).
    depmod -a -b "${moddir%/lib/modules/*}" "$kver"
    mkdir -p "$out/boot" "$out/lib/modules/$kver"
    cp "$full/boot/vmlinuz-$kver" "$out/boot/"
    cp "$full/boot/config-$kver" "$out/boot/" 2>/dev/null || true
    for mod in "${GUEST_MODULES[@]}"; do
        # "builtin NAME" for built-in ones, "insmod PATH" for loadable ones;
        # an error for names this kernel does not have at all.
        while read -r kind dep _; do
            [[ $kind == insmod ]] || continue
            rel=${dep#"$moddir"/}
            mkdir -p "$out/lib/modules/$kver/$(dirname "$rel")"
            cp -n "$dep" "$out/lib/modules/$kver/$rel"
        done < <(modprobe -d "${moddir%/lib/modules/*}" -S "$kver" --show-depends "$mod" 2>/dev/null || true)
    done
    for f in modules.builtin modules.builtin.modinfo modules.order; do
        [[ -f $moddir/$f ]] && cp "$moddir/$f" "$out/lib/modules/$kver/"
    done
    depmod -a -b "$out" "$kver"
    [[ -n $(find "$out/lib/modules/$kver" -name 'overlay.ko*' -print -quit) ]] \
        || grep -q '/overlay.ko' "$out/lib/modules/$kver/modules.builtin" 2>/dev/null \
        || die "kernel $kver has no overlay module"
    echo "$kver" >"$out/version"
}

fetch_suite() {
    local suite=$1 refresh=$2
    local dest="$KERNEL_CACHE/$suite" state pkg scratch t0=$SECONDS
    if [[ $refresh == 0 && -f $dest/version && -f $dest/package ]]; then
        log "kernel $suite: cached $(cat "$dest/version") ($(cat "$dest/package"))"
        return 0
    fi
    state="$KERNEL_CACHE/.apt/$suite"
    mkdir -p "$state/lists/partial" "$state/cache/archives/partial"
    write_sources "$suite" "$state/sources.list"
    log "kernel $suite: reading package lists ($(head -n 1 "$state/sources.list"))"
    suite_apt apt-get "$state" update >/dev/null
    pkg=$(resolve_image_package "$state")
    local deb_version
    deb_version=$(suite_apt apt-cache "$state" policy "$pkg" | awk '$1 == "Candidate:" { print $2 }')
    if [[ -f $dest/package && "$(cat "$dest/package")" == "$pkg $deb_version" ]]; then
        log "kernel $suite: $pkg $deb_version is cached and current"
        return 0
    fi
    scratch=$(mktemp -d "$KERNEL_CACHE/.scratch-$suite.XXXXXX")
    SCRATCH=$scratch
    log "kernel $suite: apt-get download $pkg ($deb_version)"
    (cd "$scratch" && suite_apt apt-get "$state" download "$pkg" >/dev/null)
    dpkg-deb -x "$scratch"/*.deb "$scratch/full"
    trim_kernel "$scratch/full" "$scratch/kernel"
    echo "$pkg $deb_version" >"$scratch/kernel/package"
    rm -rf "$dest.old"
    [[ -e $dest ]] && mv "$dest" "$dest.old"
    mv "$scratch/kernel" "$dest"
    rm -rf "$dest.old" "$scratch"
    SCRATCH=""
    log "kernel $suite: $(cat "$dest/version") cached in $dest ($(du -sh "$dest" | cut -f1), $((SECONDS - t0))s)"
}

SCRATCH=""
cleanup() { [[ -z $SCRATCH ]] || rm -rf "$SCRATCH"; }
trap cleanup EXIT

main() {
    local refresh=0 suites=()
    while (($#)); do
        case $1 in
            --refresh) refresh=1 ;;
            -h | --help) sed -n '2,24p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; return 0 ;;
            -*) die "unknown option $1 (see --help)" ;;
            *) suites+=("$1") ;;
        esac
        shift
    done
    ((${#suites[@]})) || suites=(bullseye bookworm trixie)
    for cmd in apt-get apt-cache dpkg-deb depmod modprobe; do
        command -v "$cmd" >/dev/null || die "$cmd not found (Debian host expected)"
    done
    mkdir -p "$KERNEL_CACHE"
    local suite
    for suite in "${suites[@]}"; do
        [[ $suite =~ ^[a-z]+$ ]] || die "suite '$suite' is not a Debian code name (e.g. bookworm)"
        fetch_suite "$suite" "$refresh"
    done
}

main "$@"
