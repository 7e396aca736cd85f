#!/usr/bin/env bash
# 500 layers through the new mount API and 300 long-path layers through the
# forced short-link fallback: every layer read back from mountinfo, a file of
# the bottom layer read through merged; data-only layers.
set -eux
# shellcheck source-path=SCRIPTDIR source=../common/target.sh
source ../common/target.sh

playbook deep_layers.yml
