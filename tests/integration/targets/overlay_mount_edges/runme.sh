#!/usr/bin/env bash
# overlay_mount at the edges: a mount point whose unit name systemd hashes,
# an upper dir longer than one fsconfig() value, paths past PATH_MAX,
# absent after short links and an enabled unit, and short links on a full
# file system. Each case against real mounts (edges.py says what each checks).
set -eux
# shellcheck source-path=SCRIPTDIR source=../common/target.sh
source ../common/target.sh
PYTHONPATH=../common exec "$ANSIBLE_PYTHON_INTERPRETER" edges.py "$@"
