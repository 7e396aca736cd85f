#!/usr/bin/env bash
# overlay_mount refuses bad input, in check mode and in a real run alike,
# with a message naming the field, and changes nothing on disk or in mountinfo.
set -eux

ansible-playbook -i localhost, -c local \
    -e ansible_python_interpreter="$ANSIBLE_PYTHON_INTERPRETER" \
    -e test_root="$OVERLAY_TEST_ROOT" bad_input.yml
