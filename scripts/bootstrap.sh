#!/usr/bin/env bash
# Prepare a machine for this collection's tests. Idempotent, and a warm run
# takes about a second. Works with only PyPI and Debian apt reachable.
#
#   scripts/bootstrap.sh            .venv, .venv-newest, ansible-test's pip cache, collections
#   scripts/bootstrap.sh --system   also apt packages + /etc/containers/containers.conf
#                                   (same as BOOTSTRAP_SYSTEM=1)
#
# Steps:
#   1. .venv with requirements-dev.txt (skipped while the stamp matches its sha256)
#   2. .venv-newest: Python 3.13 with requirements-newest.txt (the newest
#      ansible-core that installs here), for sanity and unit tests on it
#   3. ~/.ansible/test/cache: the pip wheel + get_pip_<ver>.py shim for each
#      ansible-test in use (2.19 wants pip 24.2, 2.21 pip 25.2), because
#      ansible-test otherwise downloads get-pip.py from a host we cannot reach
#   4. containers.podman and ansible.posix under .cache/collections, taken from
#      the `ansible` wheel on PyPI (Galaxy is unreachable)
#   5. (--system) podman, runc, debootstrap, shellcheck; containers.conf
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# ansible 12.x is the last line that still supports Python 3.11 (ansible-core 2.19).
ANSIBLE_PKG_VERSION="${ANSIBLE_PKG_VERSION:-12.3.0}"
# The pip versions ansible-test bootstraps its venvs with: 2.19 (.venv) and
# 2.21 (.venv-newest).
ANSIBLE_TEST_PIP_VERSIONS=(24.2 25.2)
# The second venv's Python: the newest that pyenv carries here.
NEWEST_PYTHON="${NEWEST_PYTHON:-/root/.pyenv/versions/3.13.0/bin/python3}"
ANSIBLE_TEST_CACHE="$HOME/.ansible/test/cache"

pick_python() {
    local py=/root/.pyenv/versions/3.11.7/bin/python3
    if [[ -n ${BOOTSTRAP_PYTHON:-} ]]; then
        echo "$BOOTSTRAP_PYTHON"
    elif [[ -x $py ]]; then
        # Not the pyenv shim: a shim can pick another version per directory.
        echo "$py"
    else
        command -v python3
    fi
}

# ensure_venv DIR REQUIREMENTS PYTHON: DIR holds REQUIREMENTS (skipped while
# the stamp matches their sha256).
ensure_venv() {
    local venv=$1 req=$2 py=$3 name
    name="$(basename "$venv")"
    local stamp="$venv/.requirements.sha256" want
    want="$(sha256sum "$req" | cut -d' ' -f1)"
    if [[ -x $venv/bin/python ]] && "$venv/bin/python" -c 'import sys' 2>/dev/null; then
        if [[ -f $stamp && "$(cat "$stamp")" == "$want" ]]; then
            log "$name up to date"
            return 0
        fi
    else
        log "creating $name with $py ($("$py" --version 2>&1))"
        rm -rf "$venv"
        "$py" -m venv "$venv"
    fi
    log "$name: pip install -r $(basename "$req")"
    # pip's complaints about the machine's file:// extra indexes are noise.
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$req" 2>&1 \
        | { grep -v "^WARNING: Location 'file:" || true; } >&2
    echo "$want" >"$stamp"
}

# ansible-test runs ~/.ansible/test/cache/get_pip_<ver>.py (downloading it
# first if missing) as `python get_pip.py <pip install args> --no-setuptools
# --no-wheel`. Our shim runs pip from the wheel instead, dropping the two
# flags that pip 24.2 rejects.
ensure_ansible_test_cache() {
    local version
    for version in "${ANSIBLE_TEST_PIP_VERSIONS[@]}"; do
        ensure_pip_shim "$version"
    done
}

ensure_pip_shim() {
    local version=$1
    local wheel="$ANSIBLE_TEST_CACHE/pip-$version-py3-none-any.whl"
    local shim="$ANSIBLE_TEST_CACHE/get_pip_${version//./_}.py"
    mkdir -p "$ANSIBLE_TEST_CACHE"
    if [[ ! -f $wheel ]]; then
        log "downloading pip $version wheel for ansible-test"
        "$VENV/bin/python" -m pip download -q --disable-pip-version-check --no-deps \
            --only-binary=:all: "pip==$version" -d "$ANSIBLE_TEST_CACHE" 2>&1 \
            | { grep -v "^WARNING: Location 'file:" || true; } >&2
    fi
    [[ -f $wheel ]] || die "expected $wheel"
    cat >"$shim.tmp" <<EOF
# Offline stand-in for get-pip.py, written by overlayfs.mounts scripts/bootstrap.sh.
import sys
sys.path.insert(0, "$wheel")
from pip._internal.cli.main import main
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
sys.exit(main(["install", "--upgrade", "--force-reinstall"] + args))
EOF
    if cmp -s "$shim.tmp" "$shim"; then rm -f "$shim.tmp"; else mv "$shim.tmp" "$shim"; fi
}

# Galaxy is unreachable, but the `ansible` package on PyPI ships the
# collections we need. Extract just those two from its wheel.
ensure_collections() {
    local dest="$COLLECTIONS_DIR/ansible_collections" want=(containers/podman ansible/posix) c absent=0
    for c in "${want[@]}"; do
        [[ -f $dest/$c/MANIFEST.json ]] || absent=1
    done
    if ((absent == 0)); then
        log "containers.podman and ansible.posix present"
        return 0
    fi
    local dl="$CACHE/downloads" wheel
    mkdir -p "$dl" "$dest"
    wheel="$(compgen -G "$dl/ansible-$ANSIBLE_PKG_VERSION-*.whl" | head -n1 || true)"
    if [[ -z $wheel ]]; then
        log "downloading ansible==$ANSIBLE_PKG_VERSION wheel (for its bundled collections)"
        "$VENV/bin/python" -m pip download -q --disable-pip-version-check --no-deps \
            --only-binary=:all: "ansible==$ANSIBLE_PKG_VERSION" -d "$dl"
        wheel="$(compgen -G "$dl/ansible-$ANSIBLE_PKG_VERSION-*.whl" | head -n1)"
    fi
    log "extracting ${want[*]} from $(basename "$wheel")"
    for c in "${want[@]}"; do rm -rf "${dest:?}/$c"; done
    # Python's zipfile rather than unzip(1): one less package on a fresh machine.
    "$VENV/bin/python" - "$wheel" "$COLLECTIONS_DIR" "${want[@]}" <<'EOF'
import sys, zipfile
wheel, dest, wanted = sys.argv[1], sys.argv[2], sys.argv[3:]
prefixes = tuple("ansible_collections/%s/" % w for w in wanted)
with zipfile.ZipFile(wheel) as zf:
    names = [n for n in zf.namelist() if n.startswith(prefixes)]
    zf.extractall(dest, names)
print("extracted %d files" % len(names))
EOF
    for c in "${want[@]}"; do
        [[ -f $dest/$c/MANIFEST.json ]] || die "$c missing from $wheel"
    done
}

# pythonX.Y links to pyenv's interpreters in .cache/pythons, for
# ansible-test's compile and import tests on each (scripts/sanity.sh --targets).
ensure_python_links() {
    local dir="$CACHE/pythons" py v
    mkdir -p "$dir"
    for py in /root/.pyenv/versions/3.1[23].*/bin/python3.1[23]; do
        [[ -x $py ]] || continue
        v="$(basename "$py")"
        ln -sfn "$py" "$dir/$v"
    done
    log "Pythons for compile/import: $(cd "$dir" && echo python*)"
}

main() {
    local system=${BOOTSTRAP_SYSTEM:-0}
    while (($#)); do
        case $1 in
            --system) system=1 ;;
            -h | --help) sed -n '2,15p' "${BASH_SOURCE[0]}"; exit 0 ;;
            *) die "unknown argument: $1" ;;
        esac
        shift
    done
    [[ $system == 1 ]] && ensure_system
    ensure_venv "$VENV" "$ROOT/requirements-dev.txt" "$(pick_python)"
    [[ -x $NEWEST_PYTHON ]] || die "no $NEWEST_PYTHON for .venv-newest (set NEWEST_PYTHON)"
    ensure_venv "$VENV_NEWEST" "$ROOT/requirements-newest.txt" "$NEWEST_PYTHON"
    ensure_ansible_test_cache
    ensure_python_links
    ensure_collections
    log "bootstrap done: $VENV"
}

# Run only when executed, so other scripts can source this file for its functions.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    main "$@"
fi
