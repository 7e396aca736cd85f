#!/usr/bin/env bash
# Import the built collection tarball with galaxy-importer, the tool Galaxy
# and Automation Hub run on every upload: metadata, docs of every plugin
# (ansible-doc), flake8 on the Python and ansible-lint on the roles and
# playbooks that ship. Fails on any ERROR or WARNING line it prints.
#
#   scripts/galaxy-import.sh [TARBALL]   default: the one scripts/collection.sh built
#
# Galaxy requires `repository` in galaxy.yml. The project has no public URL
# yet, so galaxy.yml leaves it out; the import then checks a scratch build of
# the same files whose galaxy.yml alone gains a placeholder repository
# (GALAXY_IMPORT_REPOSITORY), and says so.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PLACEHOLDER_REPOSITORY="${GALAXY_IMPORT_REPOSITORY:-https://example.invalid/overlayfs/mounts}"

# A tarball with a repository: the given one, or a scratch build adding it.
tarball_to_import() {
    local tarball=$1 scratch=$2
    if tar -xzOf "$tarball" MANIFEST.json | python -c \
        'import json, sys; sys.exit(0 if json.load(sys.stdin)["collection_info"].get("repository") else 1)'; then
        echo "$tarball"
        return 0
    fi
    log "galaxy.yml has no repository (needed to upload to Galaxy): importing a scratch build with repository: $PLACEHOLDER_REPOSITORY"
    mkdir -p "$scratch/src" "$scratch/dist"
    tar -xzf "$tarball" -C "$scratch/src"
    # Rebuild from the tarball's own files (so exactly what ships), with a
    # galaxy.yml made from its MANIFEST.json plus the placeholder.
    python - "$scratch/src" "$PLACEHOLDER_REPOSITORY" <<'EOF'
import json, os, sys, yaml
src, repository = sys.argv[1], sys.argv[2]
with open(os.path.join(src, "MANIFEST.json")) as handle:
    info = json.load(handle)["collection_info"]
info = {key: value for key, value in info.items() if value not in (None, [], {}, "")}
info["repository"] = repository
info["dependencies"] = {}
for name in ("MANIFEST.json", "FILES.json"):
    os.unlink(os.path.join(src, name))
with open(os.path.join(src, "galaxy.yml"), "w") as handle:
    yaml.safe_dump(info, handle)
EOF
    ansible-galaxy collection build --output-path "$scratch/dist" "$scratch/src" >/dev/null
    compgen -G "$scratch/dist/overlayfs-mounts-*.tar.gz" | head -n1
}

main() {
    use_venv
    local tarball=${1:-}
    if [[ -z $tarball ]]; then
        tarball="$(compgen -G "$CACHE/dist/overlayfs-mounts-*.tar.gz" | head -n1 || true)"
        [[ -n $tarball ]] || die "no tarball in $CACHE/dist; run scripts/collection.sh"
    fi
    local work="$CACHE/galaxy-import" logfile
    rm -rf "$work"
    mkdir -p "$work/tmp"
    logfile="$work/import.log"
    tarball="$(realpath "$tarball")"
    tarball="$(tarball_to_import "$tarball" "$work/scratch")"

    # Galaxy's own settings, plus flake8 (off by default, on in Automation
    # Hub's certification). ansible-lint runs offline, as Galaxy runs it.
    cat >"$work/galaxy-importer.cfg" <<EOF
[galaxy-importer]
LOG_LEVEL_MAIN = INFO
RUN_ANSIBLE_DOC = True
RUN_ANSIBLE_LINT = True
OFFLINE_ANSIBLE_LINT = True
RUN_FLAKE8 = True
RUN_ANSIBLE_TEST = False
CHECK_CHANGELOG = True
ANSIBLE_LOCAL_TMP = $work/tmp
TMP_ROOT_DIR = $work/tmp
EOF
    log "galaxy-importer $(python -c 'import importlib.metadata as m; print(m.version("galaxy-importer"))') on $(basename "$tarball") (log: $logfile)"
    local rc=0
    # The importer prints one line per plugin; its ansible-lint step is
    # quiet for a minute or more, hence the heartbeat. It writes
    # importer_result.json into the current dir: run it in $work.
    # shellcheck disable=SC2016  # expanded by the inner bash
    GALAXY_IMPORTER_CONFIG="$work/galaxy-importer.cfg" with_heartbeat galaxy-importer \
        bash -o pipefail -c 'cd "$3" && python -m galaxy_importer.main "$1" 2>&1 | sed -u "s/^/    /" | tee "$2"' \
        _ "$tarball" "$logfile" "$work" >&2 || rc=$?
    if ((rc != 0)) || grep -qE '^    (WARNING|ERROR)' "$logfile"; then
        die "galaxy-importer: exit $rc, $(grep -cE '^    (WARNING|ERROR)' "$logfile" || true) ERROR/WARNING line(s) (above)"
    fi
    log "galaxy-importer: imported with no errors and no warnings"
}

main "$@"
