#!/usr/bin/env bash
# overlay_mounts: a host's list of overlays (one stacked on another's merged
# dir, one read-only, one as a systemd unit) converged in one task: check mode,
# apply, idempotent re-run, diff; a failing entry next to working ones; prune
# of managed overlays that left the list, next to a hand-written fstab line.
set -eux

root=$(realpath "$OVERLAY_TEST_ROOT")

ansible-playbook -i localhost, -c local \
    -e ansible_python_interpreter="$ANSIBLE_PYTHON_INTERPRETER" \
    -e test_root="$root" batch.yml
