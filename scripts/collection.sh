#!/usr/bin/env bash
# Build and install this collection, offline, and lay out the copies tests use:
#   .cache/dist/overlayfs-mounts-VER.tar.gz           the built tarball
#   .cache/collections/ansible_collections/overlayfs/mounts
#                                                     installed from it (put .cache/collections
#                                                     on ANSIBLE_COLLECTIONS_PATH)
#   .cache/ansible-test/ansible_collections/overlayfs/mounts
#                                                     a plain copy of the work tree (tracked and
#                                                     untracked, not ignored files) for ansible-test,
#                                                     which wants that path suffix and no symlinked root
#   .cache/pythonpath/ansible_collections/overlayfs/mounts -> repo root
#                                                     for pytest: with .cache/pythonpath on PYTHONPATH,
#                                                     `import ansible_collections.overlayfs.mounts...`
#                                                     loads the live work tree
#
# Run it, or source it to also get COLLECTION_TARBALL, ANSIBLE_TEST_ROOT,
# PYTHONPATH, PATH and ANSIBLE_COLLECTIONS_PATH set in your shell.
# Needs scripts/bootstrap.sh to have run (.venv).

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DIST_DIR="$CACHE/dist"
PYTHONPATH_DIR="$CACHE/pythonpath"

_collection_version() {
    "$VENV/bin/python" -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["version"])' \
        "$ROOT/galaxy.yml"
}

# Files of the work tree as git sees them: tracked + untracked, minus ignored,
# minus tracked files deleted in the work tree. NUL-separated.
_tree_files() {
    if git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        local f
        git -C "$ROOT" ls-files -z -co --exclude-standard | while IFS= read -r -d '' f; do
            if [[ -e $ROOT/$f || -L $ROOT/$f ]]; then printf '%s\0' "$f"; fi
        done
    else
        # Not a git checkout: everything but the usual build and VCS folders.
        (cd "$ROOT" && find . \( -name .git -o -name .venv -o -name .cache -o -name __pycache__ \
            -o -path ./tests/output \) -prune -o \( -type f -o -type l \) -print0)
    fi
}

_collection_build() {
    use_venv
    rm -rf "$DIST_DIR"
    mkdir -p "$DIST_DIR" "$COLLECTIONS_DIR"

    log "ansible-galaxy collection build"
    ansible-galaxy collection build --force --output-path "$DIST_DIR" "$ROOT" >/dev/null
    local tarball
    tarball="$DIST_DIR/overlayfs-mounts-$(_collection_version).tar.gz"
    [[ -f $tarball ]] || die "build did not produce $tarball"

    log "ansible-galaxy collection install"
    # --offline: never ask Galaxy (unreachable here) about dependencies.
    ansible-galaxy collection install --offline --force -p "$COLLECTIONS_DIR" "$tarball" >/dev/null

    log "copying the work tree for ansible-test"
    rm -rf "$ANSIBLE_TEST_ROOT"
    mkdir -p "$ANSIBLE_TEST_ROOT"
    _tree_files | tar -C "$ROOT" --null -T - -cf - | tar -C "$ANSIBLE_TEST_ROOT" -xf -
    # ansible-test lists files with git when it finds a .git in the path or
    # above it. Above it is this repo, where .cache/ is ignored, so it would
    # see no files at all. An empty repo here stops that walk; every copied
    # file is then "untracked, not ignored" and so in scope.
    git -C "$ANSIBLE_TEST_ROOT" init -q

    mkdir -p "$PYTHONPATH_DIR/ansible_collections/overlayfs"
    ln -sfn "$ROOT" "$PYTHONPATH_DIR/ansible_collections/overlayfs/mounts"

    printf '%s\n' \
        "tarball:        $tarball" \
        "installed:      $COLLECTIONS_DIR/ansible_collections/overlayfs/mounts" \
        "ansible-test:   $ANSIBLE_TEST_ROOT" \
        "pythonpath:     $PYTHONPATH_DIR" \
        "ANSIBLE_COLLECTIONS_PATH=$COLLECTIONS_DIR"
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    set -euo pipefail
    _collection_build
else
    # Sourced: build in a child bash (the executed branch above, with strict
    # mode) so a failure stops the build without exiting the caller's shell.
    # Not `if (set -e; ...)`: bash ignores -e inside an if condition.
    if bash "${BASH_SOURCE[0]}"; then
        use_venv
        COLLECTION_TARBALL="$(compgen -G "$DIST_DIR/overlayfs-mounts-*.tar.gz" | head -n1)"
        export COLLECTION_TARBALL ANSIBLE_TEST_ROOT
        export PYTHONPATH="$PYTHONPATH_DIR${PYTHONPATH:+:$PYTHONPATH}"
    else
        log "collection build failed"
        false
    fi
fi
