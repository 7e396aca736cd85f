#!/usr/bin/env bash
# overlay_mount state=mounted: the classic example, a read-only overlay,
# overlay options and awkward path names, each through check mode, apply,
# idempotent re-run and diff, checked on the live host (main.yml imports the
# four playbooks, so ansible-playbook starts once).
set -eux

ansible-playbook -i localhost, -c local \
    -e ansible_python_interpreter="$ANSIBLE_PYTHON_INTERPRETER" \
    -e test_root="$OVERLAY_TEST_ROOT" main.yml
