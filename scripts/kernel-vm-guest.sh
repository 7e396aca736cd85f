#!/usr/bin/env bash
# Guest half of scripts/kernel-vm.sh: runs as root (pid 1's child) in the
# qemu guest, sets the guest up, runs the command, prints the exit mark.
# Environment from kernel-vm.sh: KVM_KDIR (kernel cache dir), KVM_TREE,
# KVM_CWD, KVM_VENV, KVM_STDLIB, KVM_PURELIB, KVM_SQUASH (1/0), KVM_MARK.

set -u
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

setup_fail() {
    echo "kernel-vm guest: $*" >&2
    echo "${KVM_MARK}125"
    exit 125
}

setup() {
    local run=/run/kernel-vm
    # Writable scratch: the host's root is read-only here.
    mount -t tmpfs -o mode=1777,size=75% tmpfs /tmp || setup_fail "cannot mount a tmpfs on /tmp"
    mkdir -p "$run" || setup_fail "cannot create $run"
    mountpoint -q "$run" || mount -t tmpfs -o mode=755 tmpfs "$run" || setup_fail "cannot mount a tmpfs on $run"

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
}

setup
"$@"
echo "${KVM_MARK}$?"
