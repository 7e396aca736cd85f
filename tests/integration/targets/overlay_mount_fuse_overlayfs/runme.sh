#!/usr/bin/env bash
# A fuse-overlayfs mount (Debian package fuse-overlayfs, installed by
# scripts/bootstrap.sh --system): overlay_mount_info lists it as not a kernel
# overlay, overlay_mount refuses every state on it, and it stays mounted.
set -eux
# shellcheck source-path=SCRIPTDIR source=../common/target.sh
source ../common/target.sh

command -v fuse-overlayfs >/dev/null || { echo "fuse-overlayfs is not installed: run scripts/bootstrap.sh --system" >&2; exit 1; }
base="$root/fuse"
mkdir -p "$base/l1" "$base/l2" "$base/upper" "$base/work" "$base/merged"
echo "from l1" >"$base/l1/file"
fuse-overlayfs -o "lowerdir=$base/l1:$base/l2,upperdir=$base/upper,workdir=$base/work" "$base/merged"
# The FUSE daemon lives on in the background: unmount it whatever happens.
trap 'fusermount3 -u "$base/merged" 2>/dev/null || umount -l "$base/merged" || true' EXIT
playbook fuse_overlayfs.yml -e fuse_base="$base"
