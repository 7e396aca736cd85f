# shellcheck shell=bash
# Sourced first by every target's runme.sh, so that a target runs the same
# under tests/integration/test_targets.py (pytest), under
# `ansible-test integration`, or by hand (`cd TARGET && bash runme.sh`):
#
# - as root, inside a private mount namespace (entered here, once) in which
#   /etc is overlaid by a throw-away upper dir: the target's mounts never
#   reach the host and vanish with it, and a write to /etc/fstab or
#   /etc/systemd/system (on purpose or by mistake) never changes the host's;
#   the collection's own state dir /var/lib/overlayfs-mounts (short links
#   and the pointers to links dirs elsewhere) is an empty tmpfs there;
# - OVERLAY_TEST_ROOT: the target's scratch dir (pytest passes one; otherwise
#   a fresh one under /tmp, removed afterwards), and `root`, its real path;
# - ANSIBLE_PYTHON_INTERPRETER: the Python the modules run with (given, or
#   ansible-test's, or python3);
# - ANSIBLE_COLLECTIONS_PATH: where overlayfs.mounts is found (given, as
#   ansible-test and pytest do, or this clone's .cache/collections);
# - playbook ARGS: ansible-playbook against localhost over a local
#   connection, with test_root set.

if [ -z "${OVERLAY_TEST_NAMESPACE:-}" ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "integration targets mount overlays: run them as root" >&2
        exit 1
    fi
    _own_root=
    if [ -z "${OVERLAY_TEST_ROOT:-}" ]; then
        OVERLAY_TEST_ROOT="$(mktemp -d /tmp/overlayfs-target.XXXXXX)"
        _own_root=1
    fi
    export OVERLAY_TEST_ROOT OVERLAY_TEST_NAMESPACE=1
    mkdir -p "$OVERLAY_TEST_ROOT/.etc-shield/upper" "$OVERLAY_TEST_ROOT/.etc-shield/work"
    _rc=0
    # shellcheck disable=SC2016  # expanded by the inner bash
    unshare --mount --propagation private bash -c '
        mount -t overlay overlay -o "lowerdir=/etc,upperdir=$1/upper,workdir=$1/work" /etc
        mkdir -p /var/lib/overlayfs-mounts
        mount -t tmpfs -o mode=0755 tmpfs /var/lib/overlayfs-mounts
        shift
        exec bash "$@"' _ "$OVERLAY_TEST_ROOT/.etc-shield" "$0" "$@" || _rc=$?
    if [ -n "$_own_root" ]; then
        rm -rf "$OVERLAY_TEST_ROOT"
    fi
    exit "$_rc"
fi

root=$(realpath "$OVERLAY_TEST_ROOT")
# ansible-test names its Python in ANSIBLE_TEST_PYTHON_INTERPRETER and sets
# ANSIBLE_PYTHON_INTERPRETER to a placeholder that must not be used.
if [ -n "${ANSIBLE_TEST_PYTHON_INTERPRETER:-}" ]; then
    ANSIBLE_PYTHON_INTERPRETER=$ANSIBLE_TEST_PYTHON_INTERPRETER
elif [ ! -x "${ANSIBLE_PYTHON_INTERPRETER:-}" ]; then
    ANSIBLE_PYTHON_INTERPRETER="$(command -v python3)"
fi
export ANSIBLE_PYTHON_INTERPRETER
if [ -z "${ANSIBLE_COLLECTIONS_PATH:-}" ]; then
    ANSIBLE_COLLECTIONS_PATH="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../../.." && pwd)/.cache/collections"
fi
export ANSIBLE_COLLECTIONS_PATH
export ANSIBLE_NOCOLOR="${ANSIBLE_NOCOLOR:-1}"

playbook() {
    ansible-playbook -i localhost, -c local \
        -e ansible_python_interpreter="$ANSIBLE_PYTHON_INTERPRETER" \
        -e test_root="$root" "$@"
}
