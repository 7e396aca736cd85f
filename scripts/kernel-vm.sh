#!/usr/bin/env bash
# Run a command as root in a qemu guest booted with Debian's kernel for a
# suite (fetched by scripts/kernels.sh), over this host's root filesystem:
#
#   scripts/kernel-vm.sh [OPTIONS] SUITE -- CMD [ARG...]
#
#   SUITE            bullseye (5.10), bookworm (6.1) or trixie (6.12)
#   --tree DIR       collection checkout whose code the guest imports as
#                    ansible_collections.overlayfs.mounts (default: this one);
#                    read live, so edits need no rebuild
#   --cwd DIR        working directory of CMD (default: the current one)
#   --cpus N         guest CPUs (default 1: the tests are one Python process)
#   --memory SIZE    guest memory (default 1G)
#   --timeout SEC    kill the guest after SEC seconds (default 1200)
#   --no-squashfs    read Python over 9p instead of the packed image (slower)
#   --boot-log       show the kernel's boot messages too
#   --virtme-init    start the command through virtme-ng's own guest init
#                    (default: kernel-vm-guest.sh is the guest's init, which
#                    skips virtme-ng-init's systemd-tmpfiles pass over 9p,
#                    10-20 s under emulation)
#
# KVM_TRACE=1 in the environment traces the guest's set-up with timestamps.
#
# In the guest: the host's root filesystem read-only (9p), a fresh tmpfs on
# /tmp (writable scratch), the overlay module loaded (`modprobe -d <kernel
# cache> overlay`), Python's standard library and the venv's site-packages
# bind-mounted from an uncompressed squashfs on virtio-blk (Python imports
# over 9p are several times slower under emulation), the venv first on PATH,
# and PYTHONPATH naming a folder where ansible_collections/overlayfs/mounts
# is the --tree. Output is streamed; the exit code is CMD's.
#
# qemu runs without KVM (TCG): /dev/kvm on these machines is a nested
# hypervisor that stock kernels run slower on than plain emulation.

set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KERNEL_CACHE="${OVERLAYFS_KERNEL_CACHE:-/var/cache/overlayfs-mounts/kernels}"
SQUASH_CACHE="${OVERLAYFS_SQUASH_CACHE:-/var/cache/overlayfs-mounts/kernel-vm}"
# Bump when the image's layout changes, so old images are not reused.
SQUASH_LAYOUT=1
EXIT_MARK="@@kernel-vm-exit="

usage() { sed -n '2,33p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

# Python prefix, stdlib dir and venv site-packages the guest bind-mounts.
python_paths() {
    local py="$VENV/bin/python"
    [[ -x $py ]] || die "no $py; run scripts/bootstrap.sh first"
    "$py" -c 'import sys, sysconfig
print(sysconfig.get_path("stdlib"))
print(sysconfig.get_path("purelib"))'
}

# Build (or reuse) the squashfs holding the stdlib and the venv's
# site-packages; print its path. Keyed on every file's path, size and mtime,
# so a pip install or a Python upgrade makes a new one (old ones are removed).
python_squashfs() {
    local stdlib=$1 purelib=$2 key image tmp
    key=$( {
        echo "layout $SQUASH_LAYOUT $stdlib $purelib"
        find "$stdlib" -path "$stdlib/site-packages" -prune -o -path "$stdlib/test" -prune \
            -o -printf '%P\t%s\t%T@\n'
        find "$purelib" -printf '%P\t%s\t%T@\n'
    } | sha256sum | cut -c1-16)
    image="$SQUASH_CACHE/python-$key.squashfs"
    if [[ -f $image ]]; then
        echo "$image"
        return 0
    fi
    command -v mksquashfs >/dev/null || die "mksquashfs not found (apt-get install squashfs-tools)"
    mkdir -p "$SQUASH_CACHE"
    log "packing $stdlib and $purelib into $image"
    tmp=$(mktemp "$SQUASH_CACHE/.build.XXXXXX")
    rm -f "$tmp"
    # Two sources: the image holds python3.11/ (the stdlib, with an empty
    # site-packages/ and without the test suite nobody imports) and
    # site-packages/ (the venv's). Uncompressed: decompression under
    # emulation costs more than the reads it saves.
    mksquashfs "$stdlib" "$purelib" "$tmp" -noI -noId -noD -noF -noX -no-xattrs \
        -quiet -no-progress -wildcards \
        -e "${stdlib##*/}/site-packages/*" "${stdlib##*/}/test" "${stdlib##*/}/idlelib" \
        "${stdlib##*/}/tkinter" "${stdlib##*/}/turtledemo" "${stdlib##*/}/ensurepip" >&2
    find "$SQUASH_CACHE" -maxdepth 1 -name 'python-*.squashfs' -delete
    mv "$tmp" "$image"
    echo "$image"
}

# Guest output arrives on the serial console: stream it line by line (awk
# would buffer its input), drop kernel messages unless asked for them,
# strip carriage returns, and write the exit mark's number to $2.
filter_console() {
    local boot_log=$1 rc_file=$2 line
    while IFS= read -r line || [[ -n $line ]]; do
        line=${line%$'\r'}
        if [[ $line == "$EXIT_MARK"* ]]; then
            printf '%s\n' "${line#"$EXIT_MARK"}" >"$rc_file"
        elif ((boot_log)) || ! [[ $line =~ ^\[\ *[0-9]+\.[0-9]+\]\  || $line =~ ^(Probing\ EDD|Memory\ KASLR|Poking\ KASLR) ]]; then
            printf '%s\n' "$line"
        fi
    done
}

main() {
    local tree="$ROOT" cwd="$PWD" cpus=1 memory=1G timeout=1200 squash=1 boot_log=0 virtme_init=0
    while (($#)); do
        case $1 in
            --tree) tree=$(cd "$2" && pwd); shift ;;
            --cwd) cwd=$(cd "$2" && pwd); shift ;;
            --cpus) cpus=$2; shift ;;
            --memory) memory=$2; shift ;;
            --timeout) timeout=$2; shift ;;
            --no-squashfs) squash=0 ;;
            --boot-log) boot_log=1 ;;
            --virtme-init) virtme_init=1 ;;
            -h | --help) usage; return 0 ;;
            --) die "no SUITE before -- (see --help)" ;;
            -*) die "unknown option $1 (see --help)" ;;
            *) break ;;
        esac
        shift
    done
    if (($# < 2)) || [[ $2 != -- ]]; then
        die "usage: kernel-vm.sh [OPTIONS] SUITE -- CMD [ARG...] (see --help)"
    fi
    local suite=$1
    shift 2
    (($#)) || die "no command after -- (see --help)"
    [[ -f $tree/galaxy.yml && -d $tree/plugins ]] || die "--tree $tree is not a collection checkout (no galaxy.yml and plugins/)"
    local kdir="$KERNEL_CACHE/$suite"
    [[ -f $kdir/version ]] || die "no kernel for '$suite' in $KERNEL_CACHE; run scripts/kernels.sh $suite"
    local kver
    kver=$(cat "$kdir/version")
    for cmd in qemu-system-x86_64 busybox; do
        command -v "$cmd" >/dev/null || die "$cmd not found (apt-get install qemu-system-x86 busybox)"
    done
    local virtme_run="$VENV/bin/virtme-run"
    [[ -x $virtme_run ]] || die "no $virtme_run (pip install -r requirements-dev.txt into $VENV)"
    local paths stdlib purelib image=""
    mapfile -t paths < <(python_paths)
    stdlib=${paths[0]} purelib=${paths[1]}
    if ((squash)); then
        image=$(python_squashfs "$stdlib" "$purelib")
    fi

    # The guest side: runs as root under virtme-ng's init, then prints the
    # exit mark (virtme-ng's own exit code channel needs udev's
    # /dev/virtio-ports links, which a host without udev does not have).
    local guest_script
    guest_script="export KVM_KDIR=$(printf %q "$kdir") KVM_TREE=$(printf %q "$tree")"
    guest_script+=" KVM_CWD=$(printf %q "$cwd") KVM_VENV=$(printf %q "$(cd "$VENV" && pwd -P)")"
    guest_script+=" KVM_STDLIB=$(printf %q "$stdlib") KVM_PURELIB=$(printf %q "$purelib")"
    guest_script+=" KVM_SQUASH=$((squash)) KVM_MARK=$EXIT_MARK;"
    guest_script+=" KVM_TRACE=${KVM_TRACE:-} KVM_RUN=1 exec bash $(printf %q "$ROOT/scripts/kernel-vm-guest.sh")"
    guest_script+="$(printf ' %q' "$@")"

    local args=(
        --kimg "$kdir/boot/vmlinuz-$kver" --mods auto
        --disable-kvm --cpus "$cpus" --memory "$memory"
        --kopt mitigations=off --kopt tsc=reliable
        --show-boot-console
        --script-sh "$guest_script"
    )
    if [[ -n $image ]]; then
        args+=(--qemu-opt=-drive --qemu-opt="file=$image,if=virtio,format=raw,readonly=on")
    fi
    if ((!virtme_init)); then
        # virtme-ng builds the initramfs (virtio and 9p modules, the host's
        # root mounted over 9p) and the qemu command; a second -append,
        # placed after virtme-ng's own, replaces the kernel command line so
        # that the initramfs hands over to kernel-vm-guest.sh as init.
        local encoded cmdline
        encoded=$(printf '%s' "$guest_script" | base64 -w0)
        cmdline="console=ttyS0 earlyprintk=serial,ttyS0,115200 panic=-1 quiet loglevel=1"
        # Top-level dirs read through a caching 9p mount (kernel-vm-guest.sh).
        local cached="/usr" dir top
        for dir in "$(cd "$VENV" && pwd -P)" "$(readlink -f "$VENV/bin/python")" "$ROOT" "$tree" "$cwd"; do
            top=/${dir#/}
            top=${top%"${top#/*/}"}
            top=${top%/}
            [[ -n $top && $top != / && ,$cached, != *,$top,* ]] && cached+=",$top"
        done
        cmdline+=" mitigations=off tsc=reliable kernel_vm.cached=$cached kernel_vm.exec=$encoded"
        # A second share of / (a 9p channel takes one mount only).
        args+=(--qemu-opt=-fsdev --qemu-opt="local,id=kvmcached,path=/,security_model=none,readonly=on,multidevs=remap"
            --qemu-opt=-device --qemu-opt="virtio-9p-pci,fsdev=kvmcached,mount_tag=kvmcached")
        cmdline+=" init=$ROOT/scripts/kernel-vm-guest.sh"
        ((${#cmdline} < 2000)) || die "the command is too long for the kernel command line (${#cmdline} bytes); put it in a script"
        args+=(--qemu-opt=-append --qemu-opt="$cmdline")
    fi
    log "booting $suite ($kver) under qemu (TCG, $cpus CPU, $memory)"
    local rc_file
    rc_file=$(mktemp)
    set +e
    timeout --kill-after=10 "$timeout" "$virtme_run" "${args[@]}" </dev/null 2>&1 \
        | filter_console "$boot_log" "$rc_file"
    local vm_rc=${PIPESTATUS[0]}
    set -e
    local rc
    rc=$(cat "$rc_file")
    rm -f "$rc_file"
    if [[ -z $rc ]]; then
        ((vm_rc == 124 || vm_rc == 137)) && die "guest $suite timed out after ${timeout}s"
        die "guest $suite ended without reporting the command's exit code (virtme-run exit $vm_rc)"
    fi
    return "$rc"
}

main "$@"
