#!/usr/bin/env bash
# ansible-test sanity on a fresh copy of the work tree, offline, with no
# ignore files. Exits non-zero on any failure, and also when a test was
# silently skipped because a program it needs is missing.
#
#   scripts/sanity.sh                  all tests (minus SKIP_TESTS below), ansible-core
#                                      2.19 on Python 3.11 (.venv)
#   scripts/sanity.sh --newest         the same with the newest ansible-core on
#                                      Python 3.13 (.venv-newest)
#   scripts/sanity.sh --targets        compile and import with ansible-core 2.19 on
#                                      each other Python found here (3.12, 3.13)
#   scripts/sanity.sh --test pylint    extra arguments go to ansible-test
#
# Needs scripts/bootstrap.sh (the pip shim in ~/.ansible/test/cache is what
# lets ansible-test build its per-test venvs without its download host).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Tests that cannot run on this machine, and why:
#   pslint: needs PowerShell (pwsh), which neither PyPI nor Debian ships.
#           The collection has no .ps1/.psm1 files, so nothing goes unchecked.
SKIP_TESTS=(pslint)
# The other Pythons compile and import run on (besides 3.11): pyenv's.
TARGET_PYTHONS=(3.12 3.13)

# Lines of the pip runs by which ansible-test builds its per-test venvs.
PIP_NOISE="^(WARNING: Location 'file:|Requirement already satisfied|Collecting |Downloading |Using cached |Installing collected|Successfully installed|Obtaining |Looking in |  (Downloading|Using cached|Attempting|Found existing|Uninstalling|Successfully)|Processing |Preparing |Building wheel|  Building|  Created wheel|  Stored in|Attempting uninstall|Found existing installation|Uninstalling|Successfully uninstalled|Ignoring |DEPRECATION|\\[notice\\]|     ━)"

main() {
    local python=3.11
    use_venv
    if [[ ${1:-} == --targets ]]; then
        shift
        local v
        # pyenv's interpreters, by version name, first on PATH (ansible-test
        # looks for pythonX.Y there).
        export PATH="$CACHE/pythons:$PATH"
        for v in "${TARGET_PYTHONS[@]}"; do
            [[ -x $CACHE/pythons/python$v ]] || die "no python$v in $CACHE/pythons; run scripts/bootstrap.sh"
            SANITY_PYTHON=$v main --test compile --test import "$@"
        done
        return 0
    fi
    python=${SANITY_PYTHON:-$python}
    if [[ ${1:-} == --newest ]]; then
        shift
        [[ -x $VENV_NEWEST/bin/ansible-test ]] || die "no $VENV_NEWEST; run scripts/bootstrap.sh"
        python="$("$VENV_NEWEST/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
        export PATH="$VENV_NEWEST/bin:$PATH"
    fi
    # We want empty ignores: every sanity finding gets fixed, not ignored.
    local ignores
    ignores="$(compgen -G "$ROOT/tests/sanity/ignore-*.txt" || true)"
    [[ -z $ignores ]] || die "remove these, fix the findings instead: $ignores"

    # ansible-test skips its shellcheck test (with only a warning) when the
    # program is missing. Cheap to install, so make sure it is there.
    apt_install_missing shellcheck

    # test.sh has just run collection.sh; standalone, refresh the copy here.
    if [[ ${OVERLAYFS_FRESH_COPY:-0} != 1 ]]; then
        "$ROOT/scripts/collection.sh" >/dev/null
    fi
    [[ -d $ANSIBLE_TEST_ROOT ]] || die "no $ANSIBLE_TEST_ROOT; run scripts/collection.sh"

    local skips=() t log
    for t in "${SKIP_TESTS[@]}"; do skips+=(--skip-test "$t"); done
    local core
    core="$(ansible-test --version | awk '{print $NF}')"
    log="$CACHE/sanity-$core-py$python.log"

    # --local: run from this venv. Measured warm: --local ~19 s, --venv ~23 s
    # (it rebuilds a delegation venv each run); both work offline given the
    # pip shim. --requirements is not needed: the venv already has what the
    # controller needs, and ansible-test always builds its own pinned venv
    # per sanity test.
    log "ansible-test $core sanity on Python $python in $ANSIBLE_TEST_ROOT (log: $log)"
    # The full output goes to the log; the terminal gets ansible-test's own
    # lines (one "Running sanity test ..." a test, findings, the summary),
    # without the output of the pip runs that set up each test's venv.
    if ! (cd "$ANSIBLE_TEST_ROOT" && ansible-test sanity --python "$python" --local --color no "${skips[@]}" "$@") 2>&1 \
        | tee "$log" | { grep --line-buffered -vE "$PIP_NOISE" || true; }; then
        die "ansible-test sanity failed on Python $python (full log: $log)"
    fi

    # A test whose program is missing counts as skipped, and ansible-test
    # exits 0. Treat that as a failure so a fresh machine cannot pass by
    # accident.
    if grep -E 'WARNING: (Required program|Skipping)' "$log"; then
        die "a sanity test was skipped; install what it needs or add it to SKIP_TESTS with a reason"
    fi
}

main "$@"
