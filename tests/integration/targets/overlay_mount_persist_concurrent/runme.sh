#!/usr/bin/env bash
# overlay_mount: two ansible-playbook runs at once, each persisting and
# mounting ten overlays of its own in one scratch fstab; none of the twenty
# edits may get lost, and the user's lines stay as they were.
set -eux
# shellcheck source-path=SCRIPTDIR source=../common/target.sh
source ../common/target.sh

# shellcheck source-path=SCRIPTDIR source=../overlay_mount_persist_common/lib.sh
source ../overlay_mount_persist_common/lib.sh

# Run worker.yml as writers a and b at once; record when each started and
# ended in times (start a, end a, start b, end b) so that check.yml can tell
# they overlapped. Each writer's output goes to its own log, shown when it
# fails.
writers() {
    local dir="$OVERLAY_TEST_ROOT/concurrent" rc=0
    (
        date +%s.%N >"$dir/start-a"
        status=0
        PATH="$dir/slow-bin:$PATH" playbook worker.yml -e worker=a >"$dir/a.log" 2>&1 || status=$?
        date +%s.%N >"$dir/end-a"
        exit "$status"
    ) &
    local pid_a=$!
    (
        date +%s.%N >"$dir/start-b"
        status=0
        PATH="$dir/slow-bin:$PATH" playbook worker.yml -e worker=b >"$dir/b.log" 2>&1 || status=$?
        date +%s.%N >"$dir/end-b"
        exit "$status"
    ) &
    local pid_b=$!
    wait "$pid_a" || { cat "$dir/a.log"; rc=1; }
    wait "$pid_b" || { cat "$dir/b.log"; rc=1; }
    cat "$dir/start-a" "$dir/end-a" "$dir/start-b" "$dir/end-b" >"$dir/times"
    return "$rc"
}

# The user's fstab (and a copy to compare with), lower dirs: plain shell is
# much faster than a playbook for this.
dir="$OVERLAY_TEST_ROOT/concurrent"
mkdir -p "$dir/etc" "$dir/lower1" "$dir/lower2" "$dir/slow-bin"
printf '# the user'"'"'s fstab\nproc /proc proc defaults 0 0\n\n# two writers add twenty overlays below\n' >"$dir/etc/fstab"
cp -p "$dir/etc/fstab" "$dir/fstab.orig"

# The writers get a findmnt that takes 0.3 s. The module runs findmnt
# --verify on the new fstab between reading the old one and renaming the new
# one into place, so this widens the window in which two writers without a
# lock would overwrite each other's edits from a few milliseconds to most of
# each run: without the lock, edits get lost nearly every time.
cat >"$dir/slow-bin/findmnt" <<EOF
#!/bin/sh
sleep 0.3
exec $(command -v findmnt) "\$@"
EOF
chmod +x "$dir/slow-bin/findmnt"

writers
playbook check.yml
