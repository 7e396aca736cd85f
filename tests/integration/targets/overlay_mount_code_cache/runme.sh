#!/usr/bin/env bash
# The code cache of the collection's modules on a host: real module runs
# (AnsiballZ, as over SSH) fill it, later runs load from it without writing,
# a damaged entry is compiled again, and a directory others may write is not
# used.
set -eux
# shellcheck source-path=SCRIPTDIR source=../common/target.sh
source ../common/target.sh

playbook code_cache.yml
