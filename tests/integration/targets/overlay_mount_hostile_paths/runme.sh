#!/usr/bin/env bash
# overlay_mount against hostile paths: links planted as nobody (setpriv) in a
# sticky world-writable dir, in a user's home and in links_dir, each refused
# with the victim untouched; work dirs holding data; paths with quotes and
# commas, a symlinked fstab and fstab lines the boot must read (checked by
# mounting them with mount(8)).
set -eux
# shellcheck source-path=SCRIPTDIR source=../common/target.sh
source ../common/target.sh
# A private tmpfs on /mnt (this runs in its own mount namespace) gives nobody
# a path it can reach without opening the test root to everyone.
mount -t tmpfs -o mode=755 tmpfs /mnt
PYTHONPATH="../common:$ANSIBLE_COLLECTIONS_PATH" exec "$ANSIBLE_PYTHON_INTERPRETER" hostile.py /mnt
