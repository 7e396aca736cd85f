# shellcheck shell=bash
# Sourced by the runme.sh of the overlay_mount_persist_* targets, after
# ../common/target.sh (which gives playbook).

# Each module run costs an ansible-core start-up; pipelining saves writing
# the module to a temporary file first.
export ANSIBLE_PIPELINING=1

# Run independent playbooks in one ansible-playbook process each, all at
# once (module runs are CPU-bound; they use separate dirs and fstab files),
# then show their output one after the other. Fails if any failed.
playbooks_in_parallel() {
    local logs="$OVERLAY_TEST_ROOT/logs" book rc=0 i=0
    local -a pids=()
    mkdir -p "$logs"
    for book in "$@"; do
        playbook "$book" >"$logs/$book.log" 2>&1 &
        pids+=("$!")
    done
    for book in "$@"; do
        if wait "${pids[$i]}"; then
            echo "===== $book: passed"
        else
            echo "===== $book: FAILED"
            rc=1
        fi
        cat "$logs/$book.log"
        i=$((i + 1))
    done
    return "$rc"
}
