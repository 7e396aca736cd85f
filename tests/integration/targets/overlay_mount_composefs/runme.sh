#!/usr/bin/env bash
# The composefs layout: a read-only overlay of ONE lower dir (the metadata
# tree) over data-only layers (datadir), no upper. Data-only layers count
# towards the two layers a read-only overlay needs (Linux 6.5+). The kernel
# is asked whether it has data-only layers (a probe mount, not a version
# number); without them only the refusal is checked.
set -eux
# shellcheck source-path=SCRIPTDIR source=../common/target.sh
source ../common/target.sh

base="$root/composefs"
mkdir -p "$base/probe/l" "$base/probe/d" "$base/probe/m"
if mount -t overlay overlay -o "lowerdir=$base/probe/l::$base/probe/d,metacopy=on,redirect_dir=follow" "$base/probe/m"; then
    umount "$base/probe/m"
    data_only_layers=true
else
    data_only_layers=false
    set +x
    echo "SKIP: this kernel ($(uname -r)) has no data-only overlay layers: the probe mount of" \
         "lowerdir=L::D was refused; only the module's refusal is checked"
    set -x
fi
rm -rf "$base/probe"

mkdir -p "$base/meta" "$base/data"
if [ "$data_only_layers" = true ]; then
    "$ANSIBLE_PYTHON_INTERPRETER" build_tree.py "$base"
fi
# The metadata tree as composefs ships it: an EROFS image, mounted, as the one lower dir.
erofs_image=false
if [ "$data_only_layers" = true ] && command -v mkfs.erofs >/dev/null; then
    mkdir -p "$base/image"
    if mkfs.erofs --quiet "$base/meta.erofs" "$base/meta" && mount -t erofs -o loop,ro "$base/meta.erofs" "$base/image"; then
        erofs_image=true
    fi
fi
playbook composefs.yml -e data_only_layers="$data_only_layers" -e erofs_image="$erofs_image"
