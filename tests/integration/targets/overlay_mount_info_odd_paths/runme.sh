#!/usr/bin/env bash
# Mount points named by someone else, and mount points spelled through a
# symlink: overlay_mount_info lists overlays mounted by hand on directories
# whose names are not UTF-8, hold control characters or a backslash before
# octal digits, escaped as documented (and reversible); overlay_mount
# converges beside them; a path through a symlink is one entry. Then the
# drift_report playbook over a host declaring an overlay through a symlink,
# with such names in its fstab: one set of rows per overlay, and no control
# character reaches drift.md or the console raw.
set -eux
# shellcheck source-path=SCRIPTDIR source=../common/target.sh
source ../common/target.sh

odd=$root/odd
mkdir -p "$root/layers/l1" "$root/layers/l2" "$root/data/real" "$odd/units" "$root/srv" "$root/odd1/units"
echo l1 > "$root/layers/l1/l1"
echo l2 > "$root/layers/l2/l2"
ln -sfn "$root/data/real" "$root/srv/link"

# Overlays mounted by hand, by no one this collection knows.
foreign() {
    local name=$1 n=$2
    mkdir -p "$odd/$name" "$odd/state/u$n" "$odd/state/w$n"
    mount -t overlay overlay \
        -o "lowerdir=$root/layers/l1:$root/layers/l2,upperdir=$odd/state/u$n,workdir=$odd/state/w$n" "$odd/$name"
}
foreign $'bad\xff\xfe' 1
foreign $'esc\e[31mred\rcr|pipe`tick\x7f' 2
foreign 'a\101' 3

playbook odd.yml

# The fleet report over one host that declares an overlay through a symlink.
inventory_playbook() {
    ansible-playbook -i inventory.yml \
        -e ansible_python_interpreter="$ANSIBLE_PYTHON_INTERPRETER" \
        -e test_root="$root" "$@"
}
inventory_playbook converge.yml
inventory_playbook overlayfs.mounts.drift_report -e drift_report_dir="$root/report" | tee "$root/report.log"
# No control character but tab and line feed, raw, in the console output or in drift.md
# (C0, DEL, and C1 as UTF-8).
for file in "$root/report.log" "$root/report/drift.md"; do
    if LC_ALL=C grep -naP '[\x00-\x08\x0b-\x1f\x7f]|\xc2[\x80-\x9f]' "$file"; then
        echo "raw control characters in $file" >&2
        exit 1
    fi
done
grep -F 'odd1: ' "$root/report.log"
playbook verify.yml
