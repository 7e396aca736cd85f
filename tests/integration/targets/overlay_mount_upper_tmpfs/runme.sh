#!/usr/bin/env bash
# overlay_mount upper_tmpfs: a volatile upper on a tmpfs the module mounts.
# Check mode, apply, idempotent re-run and diff for persist=fstab and
# persist=systemd; a size change in place; drift and overlay_mount_info;
# the fstab lines checked with findmnt --verify, the units with
# systemd-analyze verify and the fstab generator; unmounted and absent.
set -eux
# shellcheck source-path=SCRIPTDIR source=../common/target.sh
source ../common/target.sh
export ANSIBLE_PIPELINING=1

playbook fstab.yml
playbook units.yml
playbook batch.yml
