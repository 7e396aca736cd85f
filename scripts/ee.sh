#!/usr/bin/env bash
# How AWX and Automation Controller would run the collection, checked here:
#
#   1. ansible-builder introspect: the system packages an execution environment
#      gets from meta/execution-environment.yml and bindep.txt;
#   2. ansible-builder create: an EE build context with this collection
#      (the image itself is not built: no base image can be pulled here);
#   3. ansible-runner runs examples/awx/drift_report.yml, the job template's
#      wrapper of overlayfs.mounts.drift_report, the way AWX runs a job
#      (a private data dir with project/, inventory/ and env/), against this
#      host inside a private mount namespace where an overlay was re-layered
#      by hand; its job events are then checked: runner_on_ok for each report
#      task, no failure, and the drift row in drift.json.
#
# Needs root (step 3 mounts), scripts/bootstrap.sh and scripts/collection.sh.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

WORK="$CACHE/ee"

check_introspect() {
    log "ansible-builder introspect $COLLECTIONS_DIR"
    local out="$WORK/introspect.yml"
    ansible-builder introspect --sanitize "$COLLECTIONS_DIR" >"$out"
    sed 's/^/    /' "$out" >&2
    local want
    for want in util-linux 'mount \[platform:dpkg\]' kmod systemd; do
        grep -Eq "^- '$want +# from collection overlayfs\.mounts'" "$out" \
            || die "introspect lists no '$want' from overlayfs.mounts"
    done
}

check_create() {
    local tarball ctx="$WORK/context"
    tarball="$(compgen -G "$CACHE/dist/overlayfs-mounts-*.tar.gz" | head -n1 || true)"
    [[ -n $tarball ]] || die "no tarball in $CACHE/dist; run scripts/collection.sh"
    cp "$tarball" "$WORK/"
    cat >"$WORK/requirements.yml" <<EOF
---
collections:
  - name: $(basename "$tarball")
    type: file
EOF
    cat >"$WORK/execution-environment.yml" <<EOF
---
version: 3
images:
  base_image:
    name: quay.io/fedora/fedora-minimal:40
dependencies:
  ansible_core:
    package_pip: ansible-core==$(python -c 'import ansible; print(ansible.__version__)')
  ansible_runner:
    package_pip: ansible-runner==$(python -c 'import importlib.metadata as m; print(m.version("ansible-runner"))')
  galaxy: requirements.yml
additional_build_files:
  - src: $(basename "$tarball")
    dest: collections
additional_build_steps:
  prepend_galaxy:
    - COPY _build/collections/ /build/
options:
  package_manager_path: /usr/bin/microdnf
EOF
    log "ansible-builder create (context: $ctx)"
    rm -rf "$ctx"
    (cd "$WORK" && ansible-builder create -f execution-environment.yml -c "$ctx" -v 1) >&2
    local f
    for f in "$ctx/Containerfile" "$ctx/_build/requirements.yml" "$ctx/_build/collections/$(basename "$tarball")"; do
        [[ -f $f ]] || die "ansible-builder create wrote no $f"
    done
    # The build runs introspect over the installed collections and installs
    # what it finds with bindep: the steps that pick up bindep.txt.
    grep -q 'introspect' "$ctx/Containerfile" || die "the Containerfile does not introspect the collections"
    grep -q 'install-from-bindep' "$ctx/Containerfile" || die "the Containerfile does not install bindep packages"
    log "context written: Containerfile introspects the collections and installs their bindep packages"
}

# The AWX job: a private data dir laid out as AWX lays it out.
run_awx_job() {
    [[ $EUID -eq 0 ]] || die "the AWX job check mounts an overlay: run it as root"
    local pdd="$WORK/awx" scratch
    rm -rf "$pdd"
    mkdir -p "$pdd/project" "$pdd/inventory" "$pdd/env"
    cp -r "$ROOT/examples/awx/." "$pdd/project/"
    scratch="$(mktemp -d "$WORK/host.XXXXXX")"
    cat >"$pdd/inventory/hosts.yml" <<EOF
---
all:
  hosts:
    node1:
      ansible_connection: local
      ansible_python_interpreter: $VENV/bin/python
      overlay_host_fstab: $scratch/fstab
      overlay_host_unit_dir: $scratch/units
      overlay_host_mounts:
        - path: $scratch/merged
          lowerdir: [$scratch/lower1, $scratch/lower2]
          upperdir: $scratch/upper
          workdir: $scratch/work
EOF
    printf -- '---\ndrift_report_dir: %s/report\n' "$scratch" >"$pdd/env/extravars"
    # Collections come from this checkout's build (AWX would install them from
    # the project's collections/requirements.yml, from Galaxy or a hub).
    printf -- '---\nANSIBLE_COLLECTIONS_PATH: %s\nANSIBLE_NOCOLOR: "1"\n' "$COLLECTIONS_DIR" >"$pdd/env/envvars"
    log "ansible-runner run $pdd -p drift_report.yml (an overlay re-layered by hand, in a private mount namespace)"
    # shellcheck disable=SC2016  # expanded by the inner bash
    unshare --mount --propagation private bash -euc '
        s=$1; pdd=$2
        mkdir -p "$s/lower1" "$s/lower2" "$s/upper" "$s/work" "$s/merged" "$s/units"
        : >"$s/fstab"
        # Declared: lower1 above lower2. Live: swapped.
        mount -t overlay overlay -o "lowerdir=$s/lower2:$s/lower1,upperdir=$s/upper,workdir=$s/work" "$s/merged"
        ansible-runner run "$pdd" -p drift_report.yml --ident job1
    ' _ "$scratch" "$pdd" >&2
    python - "$pdd/artifacts/job1" "$scratch" <<'EOF'
import glob, json, os, sys
art, scratch = sys.argv[1], sys.argv[2]
events = []
for path in glob.glob(os.path.join(art, "job_events", "*.json")):
    with open(path) as handle:
        events.append(json.load(handle))
events.sort(key=lambda e: e["counter"])
ok = [e["event_data"].get("task") for e in events if e["event"] == "runner_on_ok"]
bad = [e for e in events if e["event"] in ("runner_on_failed", "runner_on_unreachable")]
want = ["Compare the declared overlays with the host, and read every overlay",
        "Write drift.json, drift.md and drift.html", "Show the summary"]
missing = [t for t in want if t not in ok]
stats = [e for e in events if e["event"] == "playbook_on_stats"]
status = open(os.path.join(art, "status")).read().strip()
print("    %d job events; runner_on_ok for: %s" % (len(events), ", ".join(ok)))
if missing or bad or status != "successful" or not stats:
    sys.exit("job events: missing runner_on_ok for %s; %d failed/unreachable; status %s"
             % (missing, len(bad), status))
report = json.load(open(os.path.join(scratch, "report", "drift.json")))
rows = [r for r in report["rows"] if r["field"] == "lowerdir" and r["path"] == scratch + "/merged"]
if len(rows) != 1:
    sys.exit("drift.json holds no lowerdir row for %s/merged: %s" % (scratch, json.dumps(report)[:2000]))
print("    drift.json: %s/merged lowerdir declared %s, live %s" % (scratch, rows[0]["declared"], rows[0]["live"]))
EOF
    rm -rf "$scratch"
}

main() {
    use_venv
    rm -rf "$WORK"
    mkdir -p "$WORK"
    check_introspect
    check_create
    run_awx_job
    log "execution environment and AWX job checks passed"
}

main "$@"
