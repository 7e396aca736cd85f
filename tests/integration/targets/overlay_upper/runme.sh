#!/usr/bin/env bash
# overlay_upper: reset and commit an upper dir the kernel wrote (whiteouts,
# opaque and renamed dirs, metadata-only copies, odd names), the merged view
# compared by manifest before and after; holders in this and other mount
# namespaces refused; check mode, idempotence, a declaration given by path.
set -eux
# shellcheck source-path=SCRIPTDIR source=../common/target.sh
source ../common/target.sh

for book in ${UPPER_PLAYBOOKS:-reset.yml commit.yml holders.yml volatile.yml}; do
    playbook "$book"
done
