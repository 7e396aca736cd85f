#!/usr/bin/env bash
# overlay_mount refuses bad input, in check mode and in a real run alike,
# with a message naming the field, and changes nothing on disk or in mountinfo.
set -eux
# shellcheck source-path=SCRIPTDIR source=../common/target.sh
source ../common/target.sh

playbook bad_input.yml
