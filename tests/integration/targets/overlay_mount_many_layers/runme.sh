#!/usr/bin/env bash
# overlay_mount with 100 lower layers of long paths: far past the one page the
# legacy mount(2) takes, mounted and verified exactly, never partially.
set -eux

ansible-playbook -i localhost, -c local \
    -e ansible_python_interpreter="$ANSIBLE_PYTHON_INTERPRETER" \
    -e test_root="$OVERLAY_TEST_ROOT" many_layers.yml
