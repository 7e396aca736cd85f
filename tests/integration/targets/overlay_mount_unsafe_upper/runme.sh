#!/usr/bin/env bash
# Upper and work dirs the kernel would refuse or misuse, refused in plain
# words before anything is touched; the safe remedy (clear_volatile).
set -eux
# shellcheck source-path=SCRIPTDIR source=../common/target.sh
source ../common/target.sh

playbook unsafe_upper.yml
