#!/usr/bin/env bash
# overlay_mount re-layering an idle overlay: added, reordered layers, a new
# upper dir, changed options; and a failed re-mount that puts the old one back.
set -eux

ansible-playbook -i localhost, -c local \
    -e ansible_python_interpreter="$ANSIBLE_PYTHON_INTERPRETER" \
    -e test_root="$OVERLAY_TEST_ROOT" relayer.yml
