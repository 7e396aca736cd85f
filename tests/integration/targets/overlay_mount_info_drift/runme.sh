#!/usr/bin/env bash
# overlay_mount_info and overlay_mount's drift: drift made by hand (other
# layers mounted with mount(8), a hand-edited fstab line, a deleted unit, an
# unmount, other options) and the exact rows both modules report; then what
# overlay_mount_info reads from lowerdir+ and legacy mounts, docker-style
# relative short-link layers and escaped spaces.
set -eux

# Expected paths are compared with what the modules canonicalise.
root=$(realpath "$OVERLAY_TEST_ROOT")

playbook() {
    ansible-playbook -i localhost, -c local \
        -e ansible_python_interpreter="$ANSIBLE_PYTHON_INTERPRETER" \
        -e test_root="$root" "$@"
}

playbook drift.yml
playbook info.yml
