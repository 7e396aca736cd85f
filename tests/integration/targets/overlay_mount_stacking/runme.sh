#!/usr/bin/env bash
# overlay_mount among other mounts: another mount on top of a declared
# overlay is left alone (reported as covered), an overlay serving a
# directory a later mount shadows is re-layered, and an overlay the
# collection mounted in an engine-like layout stays the collection's.
set -eux
# shellcheck source-path=SCRIPTDIR source=../common/target.sh
source ../common/target.sh

playbook stacking.yml
