# shellcheck shell=bash
# Shared helpers for the scripts in this folder. Source it, don't run it.
# Everything here must work offline: only PyPI and Debian apt are reachable.

# Repo root == collection root (galaxy.yml lives there).
# shellcheck disable=SC2034  # (file-wide) globals here are used by the scripts that source this file
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
# The newest ansible-core on Python 3.13, for sanity and unit tests on it.
VENV_NEWEST="$ROOT/.venv-newest"
CACHE="$ROOT/.cache"
# Collections we install (ours) or extract (containers.podman, ansible.posix).
COLLECTIONS_DIR="$CACHE/collections"
# ansible-test insists on a path ending in ansible_collections/NS/NAME and
# refuses a symlinked root, so sanity runs in a real copy of the tree.
ANSIBLE_TEST_ROOT="$CACHE/ansible-test/ansible_collections/overlayfs/mounts"

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

# Put the venv first on PATH and our collections on the Ansible search path.
use_venv() {
    [[ -x "$VENV/bin/python" ]] || die "no $VENV; run scripts/bootstrap.sh first"
    export PATH="$VENV/bin:$PATH"
    export ANSIBLE_COLLECTIONS_PATH="$COLLECTIONS_DIR${ANSIBLE_COLLECTIONS_PATH:+:$ANSIBLE_COLLECTIONS_PATH}"
}

# Install the Debian packages given that are not installed yet; runs
# apt-get update only when something is missing, so a warm run costs ~0 s.
apt_install_missing() {
    local missing=() pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' \
            || missing+=("$pkg")
    done
    ((${#missing[@]})) || return 0
    [[ $EUID -eq 0 ]] || die "need root to install: ${missing[*]}"
    log "apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
}

# Podman as shipped fails here: its default nofile ulimit is above this VM's
# hard limit, and crun refuses the hybrid cgroup layout; the settings below fix both.
CONTAINERS_CONF_CONTENT='# Written by overlayfs.mounts scripts/bootstrap.sh (see scripts/lib.sh).
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"
'

ensure_containers_conf() {
    local conf=/etc/containers/containers.conf
    if [[ -f $conf ]] && [[ "$(cat "$conf")" == "$(printf '%s' "$CONTAINERS_CONF_CONTENT")" ]]; then
        return 0
    fi
    mkdir -p /etc/containers
    if [[ -e $conf ]]; then
        local backup
        backup="$conf.bak.$(date +%Y%m%d%H%M%S)"
        log "backing up existing $conf to $backup"
        cp -p "$conf" "$backup"
    fi
    log "writing $conf"
    printf '%s' "$CONTAINERS_CONF_CONTENT" >"$conf"
}

# Debian packages the test suite needs on the host: podman/runc/debootstrap
# for molecule's booted-systemd containers, the program of ansible-test's
# sanity test named after it (shellcheck), the static busybox that the
# containers run on overlays in integration targets, and fuse-overlayfs for
# the target that checks its mounts are left alone.
SYSTEM_PACKAGES=(podman runc debootstrap shellcheck busybox-static fuse-overlayfs
    prometheus prometheus-node-exporter  # promtool and a real node_exporter for the metrics target
    chromium chromium-driver python3-selenium openssh-client)  # the drift report page in a real browser; an unreachable host

ensure_system() {
    apt_install_missing "${SYSTEM_PACKAGES[@]}"
    ensure_containers_conf
}

# Run "$@" as a named stage and report its wall time. The command is not run
# in a condition (no `|| rc=$?`), because bash would then switch off errexit
# inside it; a failure is reported by the EXIT trap instead.
_STAGE_NAME=""
_STAGE_START=0
_stage_exit_trap() {
    local rc=$?
    if [[ $rc -ne 0 && -n $_STAGE_NAME ]]; then
        printf -- '---- %s: FAILED (exit %s) after %ss\n' "$_STAGE_NAME" "$rc" "$((SECONDS - _STAGE_START))" >&2
    fi
}
stage() {
    _STAGE_NAME=$1
    shift
    trap _stage_exit_trap EXIT
    printf '\n==================== %s ====================\n' "$_STAGE_NAME" >&2
    _STAGE_START=$SECONDS
    "$@"
    printf -- '---- %s: ok in %ss\n' "$_STAGE_NAME" "$((SECONDS - _STAGE_START))" >&2
    _STAGE_NAME=""
}

# Run "$@" and, while it runs, print "... LABEL: still running (Ns)" every
# HEARTBEAT_SECONDS (default 30), so that a long quiet step (ansible-lint,
# debootstrap, an import) never leaves the log silent for a minute. Returns
# the command's exit status.
with_heartbeat() {
    local label=$1 every=${HEARTBEAT_SECONDS:-30} rc=0 ticker start=$SECONDS
    shift
    (
        while sleep "$every"; do
            printf '... %s: still running (%ss)\n' "$label" "$((SECONDS - start))" >&2
        done
    ) &
    ticker=$!
    "$@" || rc=$?
    kill "$ticker" 2>/dev/null || true
    wait "$ticker" 2>/dev/null || true
    return "$rc"
}

# The Debian mirror this machine's apt uses, read from its configuration
# (no mirror's host name is written into the project). `host_mirror main`
# gives the URI of the first enabled `deb` source for this release's own
# suite (or its -updates) with component main, `host_mirror security` that of
# its -security suite: deb822 files in /etc/apt/sources.list.d/ first, then
# one-line entries in /etc/apt/sources.list and sources.list.d/*.list. Other
# repositories (a vendor's, with another suite or component) never match.
# None found is an error naming the files read.
host_mirror() {
    local want=$1 codename file uri
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    [[ -n $codename ]] || die "no VERSION_CODENAME in /etc/os-release: cannot tell which apt source is Debian's"
    for file in /etc/apt/sources.list.d/*.sources; do
        [[ -f $file ]] || continue
        uri=$(awk -v want="$want" -v codename="$codename" -f <(_mirror_awk_deb822) "$file")
        [[ -n $uri ]] && { echo "$uri"; return 0; }
    done
    for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -f $file ]] || continue
        uri=$(awk -v want="$want" -v codename="$codename" -f <(_mirror_awk_oneline) "$file")
        [[ -n $uri ]] && { echo "$uri"; return 0; }
    done
    die "no Debian $want mirror for $codename found in /etc/apt/sources.list.d/*.sources, /etc/apt/sources.list or /etc/apt/sources.list.d/*.list: add the machine's Debian source there"
}

# awk: is suite $1 the one wanted (main: CODENAME or CODENAME-updates; security: CODENAME-security)?
_mirror_awk_suite() {
    cat <<'AWK'
function wanted(suite) {
    if (want == "security") return suite == codename "-security"
    return suite == codename || suite == codename "-updates"
}
AWK
}

_mirror_awk_deb822() {
    _mirror_awk_suite
    cat <<'AWK'
function stanza_end() {
    if (types ~ /(^| )deb( |$)/ && enabled !~ /^(no|false)$/ && comps ~ /(^| )main( |$)/)
        for (i = 1; i <= n; i++) if (wanted(suites[i])) { print uri; found = 1; exit }
    types = ""; enabled = ""; comps = ""; uri = ""; n = 0
}
/^[ \t]*$/ { stanza_end(); next }
/^#/ { next }
/^Types:/ { types = substr($0, 7) }
/^Enabled:/ { enabled = tolower($2) }
/^Components:/ { comps = substr($0, 12) }
/^URIs:/ { uri = $2 }
/^Suites:/ { n = 0; for (i = 2; i <= NF; i++) suites[++n] = $i }
END { if (!found) stanza_end() }
AWK
}

_mirror_awk_oneline() {
    _mirror_awk_suite
    cat <<'AWK'
$1 == "deb" {
    f = 2
    if ($f ~ /^\[/) { while (f <= NF && $f !~ /\]$/) f++; f++ }
    main = 0
    for (i = f + 2; i <= NF; i++) if ($i == "main") main = 1
    if (main && wanted($(f + 1))) { print $f; exit }
}
AWK
}
