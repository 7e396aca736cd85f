#!/usr/bin/env bash
# Cut a release from the changelog fragments:
#
#   scripts/release.sh 1.0.0
#
#   1. galaxy.yml's version becomes VERSION;
#   2. on the first release, every plugin's version_added must be VERSION:
#      antsibull-changelog lists a plugin as new by that field alone;
#   3. antsibull-changelog lint, then `antsibull-changelog release`: the
#      fragments become VERSION's section of changelogs/changelog.yaml and
#      CHANGELOG.rst is written (the fragments are removed);
#   4. the result is linted again and shown.
#
# Nothing is committed: review `git diff`, then commit.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

main() {
    (($# == 1)) || die "usage: scripts/release.sh VERSION (for example 1.0.0)"
    local version=$1
    [[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "VERSION must be X.Y.Z, not $version"
    use_venv
    cd "$ROOT"

    log "galaxy.yml: version $version"
    sed -i -E "s/^version: .*/version: $version/" galaxy.yml
    grep -qx "version: $version" galaxy.yml || die "could not set the version in galaxy.yml"

    if python -c 'import sys, yaml; sys.exit(1 if (yaml.safe_load(open(sys.argv[1])).get("releases") or {}) else 0)' \
        changelogs/changelog.yaml; then
        log "first release: checking version_added of every plugin"
        python - "$version" <<'PY'
import ast, glob, sys, yaml
version, wrong = sys.argv[1], []
for path in sorted(glob.glob("plugins/*/*.py")):
    if "/module_utils/" in path or path.endswith("__init__.py"):
        continue
    tree = ast.parse(open(path).read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "DOCUMENTATION" for t in node.targets):
            doc = yaml.safe_load(node.value.value) or {}
            if str(doc.get("version_added")) != version:
                wrong.append("%s: version_added %s" % (path, doc.get("version_added")))
if wrong:
    sys.exit("these would not be listed as new in %s; set version_added: %s in them:\n  %s"
             % (version, version, "\n  ".join(wrong)))
PY
    fi

    log "antsibull-changelog lint"
    antsibull-changelog lint
    log "antsibull-changelog release --version $version"
    # It reads the plugins' docs through ansible-doc, from the installed copy.
    ANSIBLE_COLLECTIONS_PATH="$COLLECTIONS_DIR" antsibull-changelog release --version "$version"
    antsibull-changelog lint-changelog-yaml changelogs/changelog.yaml
    log "written: changelogs/changelog.yaml, CHANGELOG.rst; now review git diff and commit"
    git --no-pager diff --stat
}

main "$@"
