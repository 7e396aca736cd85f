#!/usr/bin/env bash
# What must not change while only checking: the fstab (checksum), every file,
# dir and link below the scratch root (names, types, link targets) and the
# overlay lines of mountinfo below it (ids, layers, options).
# Usage: snapshot.sh ROOT [FSTAB]
set -euo pipefail
root=$1
fstab=${2:-$root/fstab}
if [ -e "$fstab" ]; then sha1sum "$fstab"; else echo "no $fstab"; fi
(cd "$root" && find . -printf '%p %y %l\n' | LC_ALL=C sort)
# mountinfo escapes a space in a mount point as \040.
escaped=${root// /\\040}
grep -F -- " - overlay " /proc/self/mountinfo | grep -F -- " $escaped/" || true
