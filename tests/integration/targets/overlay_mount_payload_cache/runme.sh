#!/usr/bin/env bash
# The payload cache on the controller: a run keeps ansible-core's built
# payload of each module, the next run uses it instead of building, a
# changed source file, a damaged entry, a directory others may write, a
# custom module_utils directory and the opt-out each make ansible-core
# build as usual, and the payload that runs is always the current code.
set -eux
# shellcheck source-path=SCRIPTDIR source=../common/target.sh
source ../common/target.sh

# A copy of the installed collection's plugins (followed through a symlinked
# install, never changing the original), so that its files can be changed here.
installed="$ANSIBLE_COLLECTIONS_PATH/ansible_collections/overlayfs/mounts"
mkdir -p "$root/coll/ansible_collections/overlayfs/mounts"
cp -rL "$installed/plugins" "$installed/meta" "$root/coll/ansible_collections/overlayfs/mounts/"
export ANSIBLE_COLLECTIONS_PATH="$root/coll" ANSIBLE_HOME="$root/home"
cache="$root/home/overlayfs.mounts/payload"
utils="$root/coll/ansible_collections/overlayfs/mounts/plugins/module_utils"

run() {  # run NAME [ENV...]: the playbook with ansible-core's debug log in $root/NAME.log
    local name=$1
    shift
    env ANSIBLE_DEBUG=1 "$@" ansible-playbook -i localhost, -c local \
        -e ansible_python_interpreter="$ANSIBLE_PYTHON_INTERPRETER" payload_cache.yml > "$root/$name.log" 2>&1 \
        || { tail -50 "$root/$name.log"; exit 1; }
}
builds() { grep -c "ANSIBALLZ: Creating module" "$root/$1.log" || true; }
inodes() { stat -c '%n %i' "$cache"/*.payload | sort; }

# 1. A first run builds both payloads and keeps them: 0600 files in a 0700 directory.
run first
[ "$(builds first)" = 2 ]
[ "$(find "$cache" -name '*.payload' | wc -l)" = 2 ]
[ "$(stat -c %a "$cache")" = 700 ]
[ "$(stat -c %a "$cache"/*.payload | sort -u)" = 600 ]
before=$(inodes)

# 2. The next run builds nothing and rewrites nothing.
run second
[ "$(builds second)" = 0 ]
[ "$(inodes)" = "$before" ]

# 2b. A host that reported the controller's bytecode (the runs above) gets
#     compiled code of ansible-core's module_utils, and the module process
#     runs it: the payload as sent (kept on the "host" with
#     ANSIBLE_KEEP_REMOTE_FILES), run again with the same Python, loads
#     basic.pyc from the zip and never compiles basic.py. A host recorded
#     with another bytecode, or the setting off, gets ansible-core's own.
sent() {  # sent NAME [ENV...]: run NAME keeping the module files; print the zip importer's tries for basic
    local name=$1
    shift
    rm -rf "$root/remote"
    run "$name" ANSIBLE_KEEP_REMOTE_FILES=1 ANSIBLE_REMOTE_TMP="$root/remote" "$@"
    module=$(find "$root/remote" -name 'AnsiballZ_overlay_mount_info.py' | head -1)
    [ -n "$module" ]
    PYTHONVERBOSE=2 OVERLAYFS_MOUNTS_CODE_CACHE=off "$ANSIBLE_PYTHON_INTERPRETER" "$module" 2>&1 >/dev/null \
        | sed -n 's|^# trying .*_payload[.]zip/\(ansible/module_utils/basic[.]py[c]*\)$|\1|p' | sort -u
}
[ "$(find "$cache/hosts" -type f | wc -l)" = 1 ]
[ "$(sent kept_sent)" = "ansible/module_utils/basic.pyc" ]
[ "$(builds kept_sent)" = 0 ]
host=$(find "$cache/hosts" -type f)
printf '00000000' > "$host"
[ "$(sent other_python)" = "ansible/module_utils/basic.py
ansible/module_utils/basic.pyc" ]
[ "$(cat "$host")" != 00000000 ]  # the module's report put it right
[ "$(sent plain_sent OVERLAYFS_MOUNTS_PAYLOAD_BYTECODE=off)" = "ansible/module_utils/basic.py
ansible/module_utils/basic.pyc" ]
[ "$(builds plain_sent)" = 2 ]
run with_bytecode_again
[ "$(builds with_bytecode_again)" = 2 ]
before=$(inodes)

# 3. A changed module_utils file: that module's payload is built again and
#    replaced, and the new code is what runs, then and in the next run.
mark="$root/marker"
printf '\nimport os as _o\nif _o.environ.get("PAYLOAD_MARK"):\n    open(_o.environ["PAYLOAD_MARK"], "a").close()\n' >> "$utils/_model/errors.py"
run changed PAYLOAD_MARK="$mark"
[ "$(builds changed)" = 2 ]
[ -e "$mark" ]
[ "$(find "$cache" -name '*.payload' | wc -l)" = 2 ]
rm "$mark"
after=$(inodes)
run changed_again PAYLOAD_MARK="$mark"
[ "$(builds changed_again)" = 0 ]
[ -e "$mark" ]
[ "$(inodes)" = "$after" ]

# 4. A damaged entry is not used: built again, and the entry replaced.
entry=$(find "$cache" -name 'overlay_mount_info.*.payload')
printf 'X' | dd of="$entry" bs=1 seek=2000 conv=notrunc status=none
run damaged
[ "$(builds damaged)" = 1 ]
run repaired
[ "$(builds repaired)" = 0 ]

# 5. An entry in a directory others may write is never used, and nothing is written there.
chmod 0777 "$cache"
run open_dir
[ "$(builds open_dir)" = 2 ]
chmod 0700 "$cache"

# 6. A module_utils directory of the user's own (it may shadow ansible-core's) turns the cache off.
mkdir -p "$root/module_utils"
run custom_utils ANSIBLE_MODULE_UTILS="$root/module_utils"
[ "$(builds custom_utils)" = 2 ]

# 7. An installed release is told apart by its MANIFEST.json (the checksum
#    of every file's checksum), even where its files keep their times.
manifest="$root/coll/ansible_collections/overlayfs/mounts/MANIFEST.json"
printf '{"file_manifest_file": {"chksum_sha256": "1111"}}\n' > "$manifest"
run release_one
[ "$(builds release_one)" = 2 ]
run release_one_again
[ "$(builds release_one_again)" = 0 ]
touch -r "$manifest" "$root/stamp"
printf '{"file_manifest_file": {"chksum_sha256": "2222"}}\n' > "$manifest"
touch -r "$root/stamp" "$manifest"
run release_two
[ "$(builds release_two)" = 2 ]
[ "$(find "$cache" -name '*.payload' | wc -l)" = 2 ]

# 8. Turned off: every run builds, and no directory is made.
rm -rf "$cache"
run off OVERLAYFS_MOUNTS_PAYLOAD_CACHE=0
[ "$(builds off)" = 2 ]
[ ! -e "$cache" ]
