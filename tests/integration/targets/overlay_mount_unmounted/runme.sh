#!/usr/bin/env bash
# overlay_mount state=unmounted: check mode, apply, re-run, diff; nothing
# mounted; a non-overlay mount left alone; overlays stacked on one point.
set -eux

ansible-playbook -i localhost, -c local \
    -e ansible_python_interpreter="$ANSIBLE_PYTHON_INTERPRETER" \
    -e test_root="$OVERLAY_TEST_ROOT" unmounted.yml
