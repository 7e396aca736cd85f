#!/usr/bin/env bash
# The whole test suite in one command, also on a fresh machine (.ci/run
# executes this). Stops at the first failing stage.
#
#   bootstrap   .venv, .venv-newest, ansible-test's pip shims, podman/runc/debootstrap/shellcheck
#   collection  build + install the collection tarball, copy the tree for ansible-test
#   sanity      ansible-test sanity, no ignore files (ansible-core 2.19, Python 3.11)
#   newest      ansible-test sanity and the unit tests on the newest ansible-core
#               (Python 3.13)
#   targets     ansible-test's compile and import tests on Python 3.12 and 3.13;
#               the modules compiled with Debian 11's Python 3.9 (its podman image)
#   lint        ansible-lint (production profile) on roles/ examples/ playbooks/
#               extensions/ tests/integration/targets/ (those holding YAML)
#   galaxy      galaxy-importer on the built tarball (ansible-lint and flake8 on)
#   changelog   antsibull-changelog lint
#   docsite     antsibull-docs lint (strict references) and the HTML docsite in
#               build/docsite
#   ee          ansible-builder introspect/create; the AWX wrapper of the drift
#               report under ansible-runner, its job events checked
#   integration two integration targets run by `ansible-test integration`
#   molecule    molecule test --all per scenario folder (only if any exist)
#   kernels     the modules on Debian's 5.10, 6.1 and 6.12 kernels under qemu
#               (scripts/kernel-matrix.sh, docs/kernels.md)
#   pytest      tests/unit and tests/integration; LAST, so the final line of
#               output is pytest's own summary

# shellcheck disable=SC2317  # (file-wide) the run_* functions are called via `stage`
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

run_bootstrap() {
    "$ROOT/scripts/bootstrap.sh" --system
}

run_collection() {
    "$ROOT/scripts/collection.sh"
}

run_sanity() {
    # collection.sh has just refreshed the ansible-test copy.
    OVERLAYFS_FRESH_COPY=1 "$ROOT/scripts/sanity.sh"
}

run_newest() {
    OVERLAYFS_FRESH_COPY=1 "$ROOT/scripts/sanity.sh" --newest
    "$ROOT/scripts/units.sh" --newest
}

run_targets() {
    OVERLAYFS_FRESH_COPY=1 "$ROOT/scripts/sanity.sh" --targets
    "$ROOT/scripts/compile-py39.sh"
}

run_galaxy() {
    "$ROOT/scripts/galaxy-import.sh"
}

run_changelog() {
    log "antsibull-changelog lint"
    (cd "$ROOT" && antsibull-changelog lint && antsibull-changelog lint-changelog-yaml changelogs/changelog.yaml)
    log "changelog fragments and changelogs/changelog.yaml are valid"
}

run_docsite() {
    "$ROOT/scripts/docsite.sh"
}

run_ee() {
    "$ROOT/scripts/ee.sh"
}

# Two targets through ansible-test itself (in its copy of the tree), to show
# that the targets have the shape it runs; pytest runs them all below.
INTEGRATION_SAMPLE=(overlay_mount_unsafe_upper overlay_mount_persist_failure)
run_integration() {
    log "ansible-test integration ${INTEGRATION_SAMPLE[*]}"
    (cd "$ANSIBLE_TEST_ROOT" && ansible-test integration --local --python 3.11 --color no --allow-destructive \
        "${INTEGRATION_SAMPLE[@]}") >"$CACHE/ansible-test-integration.log" 2>&1 &
    local pid=$! rc=0
    with_heartbeat "ansible-test integration" wait "$pid" || rc=$?
    grep -E '^(Running .* integration test|localhost +: ok=|FATAL|ERROR)' "$CACHE/ansible-test-integration.log" >&2 || true
    ((rc == 0)) || { tail -n 40 "$CACHE/ansible-test-integration.log" >&2; die "ansible-test integration failed (log: $CACHE/ansible-test-integration.log)"; }
}

run_lint() {
    local d targets=()
    for d in roles examples playbooks extensions tests/integration/targets; do
        if [[ -d $ROOT/$d ]] && [[ -n "$(find "$ROOT/$d" -type f \( -name '*.yml' -o -name '*.yaml' \) -print -quit)" ]]; then
            targets+=("$d")
        fi
    done
    if ((${#targets[@]} == 0)); then
        log "no YAML under roles/ examples/ playbooks/: nothing to lint"
        return 0
    fi
    log "ansible-lint ${targets[*]}"
    # --offline: don't try to install requirements from Galaxy (unreachable).
    # The scenarios use containers.podman, extracted into .cache/collections.
    # It prints nothing until it has read everything (minutes on a busy
    # machine), hence the heartbeat.
    (cd "$ROOT" && ANSIBLE_COLLECTIONS_PATH="$COLLECTIONS_DIR" with_heartbeat ansible-lint \
        ansible-lint --offline "${targets[@]}")
}

# Folders holding molecule scenarios: extensions/ and roles/*/ with
# molecule/*/molecule.yml.
molecule_dirs() {
    local d
    for d in "$ROOT/extensions" "$ROOT"/roles/*/; do
        d="${d%/}"
        if compgen -G "$d/molecule/*/molecule.yml" >/dev/null; then
            echo "$d"
        fi
    done
}

run_engines() {
    "$ROOT/scripts/engines.sh"
}

run_molecule() {
    local dirs d
    mapfile -t dirs < <(molecule_dirs)
    if ((${#dirs[@]} == 0)); then
        log "no molecule scenarios: nothing to run"
        return 0
    fi
    # The scenarios run in booted-systemd containers from local images of
    # Debian 11, 12 and 13 (no registry is reachable): persist on all three,
    # the others on 12. Built once, then cached by podman until their recipe
    # changes.
    "$ROOT/scripts/build-image.sh"
    # molecule's prerun builds this collection and installs it into
    # $ANSIBLE_HOME/collections (default ~/.ansible), where it would outlive
    # the run and shadow .cache/collections for every later ansible command.
    # Keep that copy, and molecule's other state, under .cache instead.
    export ANSIBLE_HOME="$CACHE/molecule-ansible-home"
    for d in "${dirs[@]}"; do
        log "molecule test --all in ${d#"$ROOT"/}"
        (cd "$d" && molecule test --all)
    done
}

# Test files pytest would collect. If there are none at all, its exit code 5
# ("no tests collected") is the truth, not a failure; with test files present,
# 5 means collection went wrong and must fail.
have_pytest_files() {
    local d
    for d in "$ROOT/tests/unit" "$ROOT/tests/integration"; do
        [[ -d $d ]] || continue
        if [[ -n "$(find "$d" -type f \( -name 'test_*.py' -o -name '*_test.py' \) -print -quit)" ]]; then
            return 0
        fi
    done
    return 1
}

run_kernels() {
    "$ROOT/scripts/kernel-matrix.sh"
}

run_pytest() {
    local paths=() d
    for d in tests/unit tests/integration; do
        [[ -d $ROOT/$d ]] && paths+=("$d")
    done
    cd "$ROOT"
    # `import ansible_collections.overlayfs.mounts...` resolves to the live
    # work tree through the symlink collection.sh made in .cache/pythonpath.
    export PYTHONPATH="$CACHE/pythonpath${PYTHONPATH:+:$PYTHONPATH}"
    if have_pytest_files; then
        exec pytest -q "${paths[@]}"
    fi
    log "no test files under tests/unit or tests/integration (pytest exit 5 accepted)"
    local rc=0
    pytest -q "${paths[@]}" || rc=$?
    if ((rc == 5)); then exit 0; fi
    exit "$rc"
}

main() {
    local t0=$SECONDS
    # Plain logs when not on a terminal (CI): rich-based tools (molecule,
    # ansible-lint) otherwise write colour codes even into a file.
    if [[ ! -t 1 ]]; then
        export NO_COLOR=1 PY_COLORS=0 ANSIBLE_NOCOLOR=1
    fi
    stage bootstrap run_bootstrap
    use_venv
    stage collection run_collection
    stage sanity run_sanity
    stage newest run_newest
    stage targets run_targets
    stage ansible-lint run_lint
    stage galaxy-importer run_galaxy
    stage changelog run_changelog
    stage docsite run_docsite
    stage ee run_ee
    stage ansible-test-integration run_integration
    stage molecule run_molecule
    stage engines run_engines
    stage kernels run_kernels
    # Nothing may print after pytest: its summary must be the last line.
    printf '\n==================== pytest (total so far %ss) ====================\n' \
        "$((SECONDS - t0))" >&2
    run_pytest
}

main "$@"
