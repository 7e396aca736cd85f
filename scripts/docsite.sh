#!/usr/bin/env bash
# The collection's docsite, built with antsibull-docs the way the Ansible
# documentation builds collection docs:
#
#   scripts/docsite.sh            check that docs/docsite/rst/ matches docs/*.md,
#                                 lint (strict references), build HTML into
#                                 build/docsite/html (index.html)
#   scripts/docsite.sh --update   regenerate docs/docsite/rst/NAME.rst from
#                                 docs/NAME.md (after editing a guide)
#
# The guides are written in Markdown (docs/*.md); antsibull-docs takes extra
# docs as RST only, so each gets an RST twin, made by pandoc (the pinned
# pypandoc-binary wheel) and checked in, so that the docs of an installed
# collection carry them too.
# Needs scripts/bootstrap.sh and scripts/collection.sh.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RST_DIR="$ROOT/docs/docsite/rst"
DOCSITE="$ROOT/build/docsite"

# Write docs/*.md as RST into $1.
render() {
    local out=$1 md name pandoc
    pandoc="$(python -c 'import pypandoc; print(pypandoc.get_pandoc_path())')"
    mkdir -p "$out"
    for md in "$ROOT"/docs/*.md; do
        name="$(basename "$md" .md)"
        {
            printf '..\n  Generated from docs/%s.md by scripts/docsite.sh --update: edit that file, not this one.\n\n' "$name"
            printf '.. _ansible_collections.overlayfs.mounts.docsite.%s:\n\n' "$name"
            # A fenced block without a language is plain text (Sphinx would
            # highlight it as YAML+Jinja, the docsite's default).
            python -c '
import re, sys
inside = False
for line in open(sys.argv[1], encoding="utf-8"):
    fence = re.match(r"^(\s*)```(.*)$", line)
    if fence:
        if not inside and not fence.group(2).strip():
            line = fence.group(1) + "```text\n"
        inside = not inside
    sys.stdout.write(line)
' "$md" | "$pandoc" --from gfm-gfm_auto_identifiers --to rst --wrap=preserve
        } >"$out/$name.rst"
    done
}

update() {
    rm -rf "$RST_DIR"
    render "$RST_DIR"
    log "wrote $(find "$RST_DIR" -name '*.rst' | wc -l) files into ${RST_DIR#"$ROOT"/}"
}

check_current() {
    local tmp="$CACHE/docsite-rst"
    rm -rf "$tmp"
    render "$tmp"
    if ! diff -ru "$RST_DIR" "$tmp" >"$CACHE/docsite-rst.diff"; then
        head -n 40 "$CACHE/docsite-rst.diff" >&2
        die "docs/docsite/rst/ is not what docs/*.md gives: run scripts/docsite.sh --update and commit"
    fi
    # Every guide must be on the site: listed in extra-docs.yml.
    local name missing=()
    for md in "$ROOT"/docs/*.md; do
        name="$(basename "$md" .md)"
        grep -Eq "^ +- $name\$" "$ROOT/docs/docsite/extra-docs.yml" || missing+=("$name")
    done
    ((${#missing[@]} == 0)) || die "not in docs/docsite/extra-docs.yml: ${missing[*]}"
    log "docs/docsite/rst/ matches docs/*.md ($(find "$RST_DIR" -name '*.rst' | wc -l) guides, all in extra-docs.yml)"
}

lint() {
    local installed="$COLLECTIONS_DIR/ansible_collections/overlayfs/mounts"
    [[ -d $installed ]] || die "no $installed; run scripts/collection.sh"
    log "antsibull-docs lint-collection-docs --plugin-docs, strict references (the installed collection)"
    ANSIBLE_COLLECTIONS_PATH="$COLLECTIONS_DIR" antsibull-docs lint-collection-docs \
        --plugin-docs --validate-collection-refs all --disallow-unknown-collection-refs \
        --check-extra-docs-refs "$installed"
}

build() {
    rm -rf "$DOCSITE"
    # sphinx-init wants an existing directory that only its owner can write.
    mkdir -p "$DOCSITE"
    chmod 755 "$DOCSITE"
    log "antsibull-docs sphinx-init (into ${DOCSITE#"$ROOT"/})"
    # No intersphinx: the Ansible docs' inventories cannot be fetched offline.
    antsibull-docs sphinx-init --use-current --fail-on-error --dest-dir "$DOCSITE" \
        --project overlayfs.mounts --title "overlayfs.mounts" overlayfs.mounts >/dev/null
    # Offline: no intersphinx inventories (docs.ansible.com, docs.python.org)
    # can be fetched, so none are asked for.
    printf '\n# scripts/docsite.sh: offline build, no inventories to fetch.\nintersphinx_mapping = {}\n' \
        >>"$DOCSITE/conf.py"
    # build.sh's two steps, with Sphinx's warnings kept in a file.
    log "antsibull-docs collection (RST of the installed collection)"
    mkdir -p "$DOCSITE/rst"
    chmod og-w "$DOCSITE/rst"
    (cd "$DOCSITE" && ANSIBLE_COLLECTIONS_PATH="$COLLECTIONS_DIR" antsibull-docs --config-file antsibull-docs.cfg \
        collection --cleanup everything --fail-on-error --use-current --dest-dir rst overlayfs.mounts) >/dev/null
    log "sphinx-build html"
    local warnings="$DOCSITE/sphinx-warnings.log"
    (cd "$DOCSITE" && with_heartbeat sphinx-build sphinx-build -M html rst build -c . -q --keep-going -w "$warnings") \
        2>/dev/null || true
    # The only warnings allowed: links into ansible-core's own docs (its return values,
    # its configuration, its page on action plugins, which an action's module page links to), which
    # resolve through the intersphinx inventory that cannot be fetched here.
    local unexpected
    unexpected="$(grep -F 'WARNING' "$warnings" \
        | grep -vE "undefined label: '(common_return_values|ansible_configuration_settings|action_plugins)' \[ref\.ref\]$" || true)"
    if [[ -n $unexpected ]]; then
        printf '%s\n' "$unexpected" >&2
        die "sphinx-build warned (above; all in $warnings)"
    fi
    log "sphinx-build: $(grep -c 'WARNING' "$warnings" || true) warning(s), all links into ansible-core's docs (no inventory offline)"
    local html="$DOCSITE/build/html" page missing=()
    for page in index.html \
        collections/overlayfs/mounts/index.html \
        collections/overlayfs/mounts/overlay_mount_module.html \
        collections/overlayfs/mounts/overlay_mounts_module.html \
        collections/overlayfs/mounts/overlay_mount_info_module.html \
        collections/overlayfs/mounts/drift_report_filter.html \
        collections/overlayfs/mounts/overlay_host_role.html \
        collections/overlayfs/mounts/docsite/overlay_mount.html \
        collections/overlayfs/mounts/docsite/security.html \
        collections/overlayfs/mounts/docsite/drift_report_playbook.html; do
        [[ -s $html/$page ]] || missing+=("$page")
    done
    ((${#missing[@]} == 0)) || die "the docsite lacks: ${missing[*]}"
    log "docsite: $(find "$html" -name '*.html' | wc -l) pages, open ${html#"$ROOT"/}/index.html"
}

main() {
    use_venv
    case ${1:-} in
        --update) update ;;
        "") check_current; lint; build ;;
        *) die "usage: scripts/docsite.sh [--update]" ;;
    esac
}

main "$@"
