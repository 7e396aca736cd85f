#!/usr/bin/env bash
# 500 layers through the new mount API and 300 long-path layers through the
# forced short-link fallback: every layer read back from mountinfo, a file of
# the bottom layer read through merged; data-only layers.
set -eux

ansible-playbook -i localhost, -c local \
    -e ansible_python_interpreter="$ANSIBLE_PYTHON_INTERPRETER" \
    -e test_root="$OVERLAY_TEST_ROOT" deep_layers.yml
