#!/usr/bin/env bash
# Upper and work dirs the kernel would refuse or misuse, refused in plain
# words before anything is touched; the safe remedy (clear_volatile).
set -eux

ansible-playbook -i localhost, -c local \
    -e ansible_python_interpreter="$ANSIBLE_PYTHON_INTERPRETER" \
    -e test_root="$OVERLAY_TEST_ROOT" unsafe_upper.yml
