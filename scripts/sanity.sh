#!/usr/bin/env bash
# ansible-test sanity on a fresh copy of the work tree, offline, with no
# ignore files. Exits non-zero on any failure, and also when a test was
# silently skipped because a program it needs is missing.
#
#   scripts/sanity.sh                  all tests (minus SKIP_TESTS below)
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

main() {
    use_venv
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
    log="$CACHE/sanity.log"

    # --local: run from this venv. Measured warm: --local ~19 s, --venv ~23 s
    # (it rebuilds a delegation venv each run); both work offline given the
    # pip shim. --requirements is not needed: the venv already has what the
    # controller needs, and ansible-test always builds its own pinned venv
    # per sanity test. The sed drops pip's noise about the machine's
    # file:// extra indexes, which ansible-test's pip runs echo.
    log "ansible-test sanity in $ANSIBLE_TEST_ROOT (log: $log)"
    (cd "$ANSIBLE_TEST_ROOT" && ansible-test sanity --python 3.11 --local --color no "${skips[@]}" "$@") 2>&1 \
        | sed -u "/^WARNING: Location 'file:/d" | tee "$log"

    # A test whose program is missing counts as skipped, and ansible-test
    # exits 0. Treat that as a failure so a fresh machine cannot pass by
    # accident.
    if grep -E 'WARNING: (Required program|Skipping)' "$log"; then
        die "a sanity test was skipped; install what it needs or add it to SKIP_TESTS with a reason"
    fi
}

main "$@"
