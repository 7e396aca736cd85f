#!/usr/bin/env bash
# Guest half of scripts/kernel-vm.sh, in one of two roles:
# - the guest's init (pid 1, started by virtme-ng's initramfs once the
#   host's root is mounted over 9p): mounts /proc, /sys, /dev, /run, reads
#   the command from kernel_vm.exec= on the kernel command line, runs it,
#   powers off;
# - the command's wrapper (KVM_RUN=1, environment from kernel-vm.sh:
#   KVM_KDIR (kernel cache dir), KVM_TREE, KVM_CWD, KVM_VENV, KVM_STDLIB,
#   KVM_PURELIB, KVM_SQUASH (1/0), KVM_MARK): sets the guest up, runs the
#   command, prints the exit mark.

set -u
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

setup_fail() {
    echo "kernel-vm guest: $*" >&2
    echo "${KVM_MARK}125"
    exit 125
}

setup() {
    [[ -n ${KVM_TRACE:-} ]] && { PS4='+ $(cut -d" " -f1 /proc/uptime) '; set -x; }
    local run=/run/kernel-vm dir
    mkdir -p "$run" || setup_fail "cannot create $run"
    mountpoint -q "$run" || mount -t tmpfs -o mode=755 tmpfs "$run" || setup_fail "cannot mount a tmpfs on $run"
    # Writable scratch: the host's root is read-only here. A checkout or venv
    # that lives under the host's /tmp (CI may clone there) stays reachable
    # at its own path through a bind of the host's /tmp made first.
    mkdir -p "$run/host-tmp"
    mount --rbind /tmp "$run/host-tmp" || setup_fail "cannot bind the host's /tmp to $run/host-tmp"
    mount -t tmpfs -o mode=1777,size=75% tmpfs /tmp || setup_fail "cannot mount a tmpfs on /tmp"
    # shellcheck disable=SC2153  # KVM_TREE comes from kernel-vm.sh
    for dir in "$KVM_TREE" "$KVM_VENV" "$KVM_CWD"; do
        [[ $dir == /tmp/* ]] || continue
        mkdir -p "$dir" || setup_fail "cannot create $dir under the guest's /tmp"
        mount --rbind "$run/host-tmp${dir#/tmp}" "$dir" || setup_fail "cannot keep $dir reachable under the guest's /tmp"
    done

    # virtme-ng's init puts empty tmpfs over some host dirs (/var/cache
    # among them) to make them writable; a plain bind of / shows the host's.
    mkdir -p "$run/host"
    mount --bind / "$run/host" || setup_fail "cannot bind / to $run/host"
    local kdir="$run/host$KVM_KDIR"
    modprobe -d "$kdir" overlay || setup_fail "modprobe -d $kdir overlay failed"

    if [[ $KVM_SQUASH == 1 ]]; then
        modprobe -d "$kdir" virtio_blk 2>/dev/null
        modprobe -d "$kdir" squashfs || setup_fail "modprobe -d $kdir squashfs failed"
        local dev=/dev/vda _
        for _ in $(seq 50); do
            [[ -b $dev ]] && break
            sleep 0.1
        done
        [[ -b $dev ]] || setup_fail "no $dev (the squashfs disk)"
        mkdir -p "$run/python"
        mount -t squashfs -o ro "$dev" "$run/python" || setup_fail "cannot mount the squashfs from $dev"
        mount --bind "$run/python/${KVM_STDLIB##*/}" "$KVM_STDLIB" || setup_fail "cannot bind the stdlib over $KVM_STDLIB"
        mount --bind "$run/python/site-packages" "$KVM_PURELIB" || setup_fail "cannot bind site-packages over $KVM_PURELIB"
    fi

    # ansible_collections.overlayfs.mounts -> the tree under test, live.
    mkdir -p "$run/pythonpath/ansible_collections/overlayfs"
    # shellcheck disable=SC2153  # KVM_TREE comes from kernel-vm.sh
    ln -sfn "$KVM_TREE" "$run/pythonpath/ansible_collections/overlayfs/mounts"

    mkdir -p /tmp/home
    export HOME=/tmp/home
    export PATH="$KVM_VENV/bin:$PATH"
    export VIRTUAL_ENV="$KVM_VENV"
    export PYTHONPATH="$run/pythonpath${PYTHONPATH:+:$PYTHONPATH}"
    # Read the .pyc files that are there, write none (read-only root).
    export PYTHONDONTWRITEBYTECODE=1
    export OVERLAYFS_TREE="$KVM_TREE"
    export OVERLAYFS_KERNEL_DIR="$KVM_KDIR"
    cd "$KVM_CWD" || setup_fail "cannot cd to $KVM_CWD"
    echo "kernel-vm: $(uname -r) ready at $(uptime_s)s (guest uptime)"
}

uptime_s() { cut -d' ' -f1 /proc/uptime; }

# The host's root comes over 9p without caching: every exec and every
# read goes to the host again, which costs a second per process on 5.10
# under emulation. A second share of the host's / (kvmcached, added by
# kernel-vm.sh) mounted with cache=loose (the host's files do not change
# under a test run) goes over the dirs named in kernel_vm.cached= (/usr and
# those holding Python, the venv and the trees).
cache_host_dirs() {
    local dirs=$1 dir
    mkdir -p /run/kernel-vm-cached
    mount -t 9p -o ro,version=9p2000.L,trans=virtio,access=any,msize=524288,cache=loose \
        kvmcached /run/kernel-vm-cached || return 0
    for dir in ${dirs//,/ }; do
        [[ -d /run/kernel-vm-cached$dir ]] && mount --bind "/run/kernel-vm-cached$dir" "$dir"
    done
}

as_init() {
    mount -t proc -o nosuid,noexec,nodev proc /proc
    mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run
    local arg encoded="" cached=""
    # shellcheck disable=SC2013  # the command line is one line of words
    for arg in $(</proc/cmdline); do
        case $arg in
            kernel_vm.exec=*) encoded=${arg#kernel_vm.exec=} ;;
            kernel_vm.cached=*) cached=${arg#kernel_vm.cached=} ;;
        esac
    done
    [[ -z $cached ]] || cache_host_dirs "$cached"
    echo "kernel-vm: $(uname -r) init started at $(uptime_s)s"
    mount -t sysfs -o nosuid,noexec,nodev sysfs /sys
    mount -t devtmpfs -o mode=0755 devtmpfs /dev 2>/dev/null
    mkdir -p /dev/pts /dev/shm
    mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
    mount -t tmpfs -o mode=1777 tmpfs /dev/shm
    ln -sfn /proc/self/fd /dev/fd
    ln -sfn /proc/self/fd/0 /dev/stdin
    ln -sfn /proc/self/fd/1 /dev/stdout
    ln -sfn /proc/self/fd/2 /dev/stderr
    hostname kernel-vm 2>/dev/null
    if [[ -z $encoded ]]; then
        echo "kernel-vm guest: no kernel_vm.exec= on the kernel command line" >&2
    else
        bash -c "$(printf '%s' "$encoded" | base64 -d)" </dev/null
    fi
    sync
    echo o >/proc/sysrq-trigger
    sleep 10
}

if [[ ${KVM_RUN:-0} == 1 ]]; then
    setup
    "$@"
    echo "${KVM_MARK}$?"
elif (($$ == 1)); then
    as_init
else
    echo "kernel-vm-guest.sh runs in a guest started by scripts/kernel-vm.sh" >&2
    exit 2
fi
