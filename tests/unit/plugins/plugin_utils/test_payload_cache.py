# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The controller's payload cache: entries, their checks, and the hand-over to ansible-core's per-run cache."""

import base64
import fcntl
import hashlib
import io
import json
import os
import pickle
import subprocess
import sys
import zipfile

import ansible
import pytest

from ansible_collections.overlayfs.mounts.plugins.plugin_utils import payload_cache as pc

FQN = "ansible_collections.overlayfs.mounts.plugins.modules.overlay_mounts"


class Built(object):
    """Stands for ansible-core's pickled payload: the zip, base64-encoded."""

    def __init__(self, zip_data):
        self.zip_data = zip_data


def _tree(tmp_path):
    """An ansible package dir and a collections dir with one module and one module_utils file."""
    ansible_dir = tmp_path / "site" / "ansible"
    (ansible_dir / "module_utils").mkdir(parents=True)
    (ansible_dir / "module_utils" / "basic.py").write_text("BASIC = 1\n")
    coll = tmp_path / "colls" / "ansible_collections" / "overlayfs" / "mounts" / "plugins"
    (coll / "modules").mkdir(parents=True)
    (coll / "module_utils").mkdir()
    (coll / "modules" / "overlay_mounts.py").write_text("import x\n")
    (coll / "module_utils" / "util.py").write_text("UTIL = 1\n")
    return str(ansible_dir), str(tmp_path / "colls")


def _payload(members, encode=True):
    """ansible-core's per-run file for a zip of ``members`` (name: bytes)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    data = buffer.getvalue()
    return pickle.dumps(Built(base64.b64encode(data) if encode else data))


MEMBERS = {
    "ansible/__init__.py": b"__version__ = 'x'\n",
    "ansible/module_utils/__init__.py": b"",
    "ansible/module_utils/basic.py": b"BASIC = 1\n",
    "ansible_collections/__init__.py": b"",
    "ansible_collections/overlayfs/mounts/plugins/modules/overlay_mounts.py": b"import x\n",
    "ansible_collections/overlayfs/mounts/plugins/module_utils/util.py": b"UTIL = 1\n",
}


def _plan(tmp_path, ansible_dir, colls, bytecode=False):
    module = os.path.join(colls, "ansible_collections", "overlayfs", "mounts", "plugins", "modules", "overlay_mounts.py")
    return pc.make_plan(str(tmp_path / "cache"), module, str(tmp_path / "run"), "ZIP_DEFLATED", "2.19.0", ansible_dir,
                        [str(tmp_path / "nowhere"), os.path.join(ansible_dir, "module_utils")], bytecode)


@pytest.mark.parametrize("environ, expected", [
    ({}, "/home/u/.ansible/overlayfs.mounts/payload"),
    ({pc.ENV: "/srv/cache"}, "/srv/cache"),
    ({pc.ENV: "relative/dir"}, None),
    ({pc.ENV: "0"}, None),
    ({pc.ENV: " Off "}, None),
    ({pc.ENV: "false"}, None),
])
def test_cache_dir_defaults_under_ansible_home_and_obeys_the_setting(environ, expected):
    assert pc.cache_dir(environ, "/home/u/.ansible") == expected


@pytest.mark.parametrize("environ, expected", [
    ({}, True), ({pc.BYTECODE_ENV: "1"}, True), ({pc.BYTECODE_ENV: " OFF"}, False), ({pc.BYTECODE_ENV: "no"}, False),
])
def test_compiled_code_is_added_unless_the_setting_says_off(environ, expected):
    assert pc.bytecode_wanted(environ) is expected


def test_entry_key_changes_with_every_input():
    base = ("2.19.0", "/c/m.py", "ZIP_DEFLATED", ["/a/module_utils"], b'{"file_manifest_file": {"chksum_sha256": "1"}}', False)
    keys = {pc.entry_key(*base)}
    others = ("2.19.1", "/d/m.py", "ZIP_STORED", ["/b/module_utils"], b'{"file_manifest_file": {"chksum_sha256": "2"}}', True)
    for index, other in enumerate(others):
        changed = list(base)
        changed[index] = other
        keys.add(pc.entry_key(*changed))
    assert len(keys) == 7
    assert pc.entry_key(*base) == pc.entry_key(*base)


def test_an_installed_collections_manifest_names_its_entries(tmp_path):
    ansible_dir, colls = _tree(tmp_path)
    source_tree = _plan(tmp_path, ansible_dir, colls).entry
    manifest = os.path.join(colls, "ansible_collections", "overlayfs", "mounts", "MANIFEST.json")
    with open(manifest, "w") as handle:
        handle.write('{"file_manifest_file": {"chksum_sha256": "aaaa"}}')
    release = _plan(tmp_path, ansible_dir, colls).entry
    with open(manifest, "w") as handle:
        handle.write('{"file_manifest_file": {"chksum_sha256": "bbbb"}}')
    other_release = _plan(tmp_path, ansible_dir, colls).entry
    assert len({source_tree, release, other_release}) == 3
    assert pc.read_manifest(str(tmp_path / "nowhere")) == b""


def test_an_entry_round_trips_and_any_damage_is_refused():
    data = pc.pack([("/a", 1, 2)], b"payload\nbytes")
    assert pc.unpack(data) == ([["/a", 1, 2]], {}, b"payload\nbytes")
    assert pc.unpack(pc.pack([], b"p", b'{"zip": "UEs="}')) == ([], {"zip": "UEs="}, b"p")
    assert pc.unpack(pc.pack([], b"p", b"[]")) is None
    flipped = bytearray(data)
    flipped[-3] ^= 1
    assert pc.unpack(bytes(flipped)) is None
    assert pc.unpack(data[:-1]) is None
    assert pc.unpack(b"OTHER01\n" + data[8:]) is None
    assert pc.unpack(b"") is None


def test_current_sees_a_changed_size_or_time_and_a_file_that_appeared(tmp_path):
    path = tmp_path / "f.py"
    path.write_text("A = 1\n")
    absent = str(tmp_path / "__init__.py")
    manifest = [list(pc.identity(str(path))), list(pc.identity(absent))]
    assert manifest[1] == [absent, -1, -1]
    assert pc.current(manifest)
    info = os.stat(str(path))
    os.utime(str(path), ns=(info.st_atime_ns, info.st_mtime_ns + 1))
    assert not pc.current(manifest)
    manifest[0] = list(pc.identity(str(path)))
    assert pc.current(manifest)
    path.write_text("A = 22\n")
    os.utime(str(path), ns=(info.st_atime_ns, manifest[0][2]))
    assert not pc.current(manifest)
    manifest[0] = list(pc.identity(str(path)))
    open(absent, "w").close()
    assert not pc.current(manifest)
    assert not pc.current([["/x", "bad"]])


def test_the_manifest_is_proven_byte_for_byte_against_the_built_zip(tmp_path):
    ansible_dir, colls = _tree(tmp_path)
    manifest = pc.manifest_for(_payload(MEMBERS), ansible_dir, colls)
    paths = [item[0] for item in manifest]
    assert os.path.join(ansible_dir, "module_utils", "basic.py") in paths
    assert os.path.join(colls, "ansible_collections", "__init__.py") in paths
    assert not any(path.endswith(os.path.join("ansible", "__init__.py")) for path in paths)
    assert dict((item[0], item[1]) for item in manifest)[os.path.join(colls, "ansible_collections", "__init__.py")] == -1
    assert pc.manifest_for(_payload(MEMBERS, encode=False), ansible_dir, colls) == manifest


@pytest.mark.parametrize("name, data", [
    ("ansible_collections/overlayfs/mounts/plugins/module_utils/util.py", b"UTIL = 2\n"),
    ("ansible_collections/overlayfs/mounts/plugins/module_utils/missing.py", b"X = 1\n"),
    ("ansible_collections/overlayfs/mounts/plugins/module_utils/__init__.py", b"X = 1\n"),
    ("elsewhere/thing.py", b""),
])
def test_no_manifest_when_a_member_differs_is_missing_or_unknown(tmp_path, name, data):
    ansible_dir, colls = _tree(tmp_path)
    members = dict(MEMBERS)
    members[name] = data
    assert pc.manifest_for(_payload(members), ansible_dir, colls) is None


def test_no_manifest_from_a_file_of_another_layout(tmp_path):
    ansible_dir, colls = _tree(tmp_path)
    assert pc.manifest_for(pickle.dumps({"zip": b""}), ansible_dir, colls) is None
    assert pc.manifest_for(b"not a pickle", ansible_dir, colls) is None


def test_make_plan_names_the_per_run_file_and_the_entry(tmp_path):
    ansible_dir, colls = _tree(tmp_path)
    plan = _plan(tmp_path, ansible_dir, colls)
    assert plan.run_file == str(tmp_path / "run" / "ansiballz_cache" / (FQN + "-ZIP_DEFLATED-none"))
    assert plan.collections_dir == colls
    assert os.path.dirname(plan.entry) == str(tmp_path / "cache")
    assert os.path.basename(plan.entry).startswith("overlay_mounts.")
    assert plan.entry.endswith(pc.SUFFIX)


def test_no_plan_when_off_outside_a_collection_or_with_module_utils_of_the_users_own(tmp_path):
    ansible_dir, colls = _tree(tmp_path)
    module = os.path.join(colls, "ansible_collections", "overlayfs", "mounts", "plugins", "modules", "overlay_mounts.py")
    own = os.path.join(ansible_dir, "module_utils")
    assert pc.make_plan(None, module, "/run", "ZIP_DEFLATED", "v", ansible_dir, [own]) is None
    assert pc.make_plan("/c", "/srv/library/overlay_mounts.py", "/run", "ZIP_DEFLATED", "v", ansible_dir, [own]) is None
    assert pc.make_plan("/c", module, "", "ZIP_DEFLATED", "v", ansible_dir, [own]) is None
    assert pc.make_plan("/c", module, "/run", "ZIP_DEFLATED", "v", ansible_dir, [str(tmp_path), own]) is None
    assert pc.make_plan("/c", module, "/run", "ZIP_DEFLATED", "v", ansible_dir, [str(tmp_path / "absent"), own]) is not None


def _cold_then_warm(tmp_path):
    """A plan, and a run that does what ansible-core does: uses the per-run file, or builds it."""
    ansible_dir, colls = _tree(tmp_path)
    plan = _plan(tmp_path, ansible_dir, colls)
    built = []

    def run():
        if not os.path.exists(plan.run_file):
            os.makedirs(os.path.dirname(plan.run_file), exist_ok=True)
            with open(plan.run_file, "wb") as handle:
                handle.write(_payload(MEMBERS))
            built.append(plan.run_file)
        with open(plan.run_file, "rb") as handle:
            return handle.read()

    return plan, run, built


def test_a_built_payload_is_kept_and_handed_to_the_next_run(tmp_path):
    plan, run, built = _cold_then_warm(tmp_path)
    first = pc.run_cached(plan, run)
    assert len(built) == 1 and os.path.isfile(plan.entry)
    assert oct(os.stat(plan.entry).st_mode & 0o777) == "0o600"
    assert oct(os.stat(os.path.dirname(plan.entry)).st_mode & 0o777) == "0o700"
    inode = os.stat(plan.entry).st_ino
    os.unlink(plan.run_file)  # the next run starts with an empty per-run cache
    assert pc.run_cached(plan, run) == first
    assert len(built) == 1
    assert os.stat(plan.entry).st_ino == inode


def test_a_stale_or_damaged_entry_is_built_again_and_replaced(tmp_path):
    plan, run, built = _cold_then_warm(tmp_path)
    pc.run_cached(plan, run)
    util = os.path.join(plan.collections_dir, "ansible_collections/overlayfs/mounts/plugins/module_utils/util.py")
    info = os.stat(util)
    os.utime(util, ns=(info.st_atime_ns, info.st_mtime_ns + 1000))
    os.unlink(plan.run_file)
    pc.run_cached(plan, run)
    assert len(built) == 2
    assert pc.read_entry(plan.entry) is not None
    with open(plan.entry, "r+b") as handle:
        handle.seek(200)
        handle.write(b"#")
    os.unlink(plan.run_file)
    pc.run_cached(plan, run)
    assert len(built) == 3
    assert pc.read_entry(plan.entry) is not None


@pytest.mark.parametrize("spoil", ["file_mode", "dir_mode", "symlink"])
def test_an_entry_others_may_write_or_a_symlink_is_never_read(tmp_path, spoil):
    plan, run, built = _cold_then_warm(tmp_path)
    pc.run_cached(plan, run)
    if spoil == "file_mode":
        os.chmod(plan.entry, 0o620)
    elif spoil == "dir_mode":
        os.chmod(os.path.dirname(plan.entry), 0o777)
    else:
        real = plan.entry + ".real"
        os.rename(plan.entry, real)
        os.symlink(real, plan.entry)
    assert pc.read_entry(plan.entry) is None
    os.unlink(plan.run_file)
    assert not pc.place(plan.entry, plan.run_file)


def test_keeping_removes_the_modules_older_entries_and_old_temp_files_only(tmp_path):
    plan, run, built = _cold_then_warm(tmp_path)
    directory = str(tmp_path / "cache")
    os.makedirs(directory, mode=0o700)
    names = ["overlay_mounts.0000.payload", "overlay_mount.1111.payload", ".tmp-old", ".tmp-new"]
    for name in names:
        open(os.path.join(directory, name), "w").close()
    os.utime(os.path.join(directory, ".tmp-old"), (1, 1))
    pc.run_cached(plan, run)
    assert sorted(os.listdir(directory)) == sorted([".tmp-new", "overlay_mount.1111.payload", os.path.basename(plan.entry),
                                                    ".lock-overlay_mounts"])


def test_one_worker_keeps_an_entry_the_others_leave_it_to_the_one_holding_the_lock(tmp_path):
    plan, run, built = _cold_then_warm(tmp_path)
    run()
    os.makedirs(plan.directory, mode=0o700)
    lock = os.path.join(plan.directory, ".lock-overlay_mounts")
    with open(lock, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        assert not pc.keep(plan.run_file, plan.directory, plan.entry, plan.ansible_dir, plan.collections_dir)
        assert not os.path.exists(plan.entry)
    assert pc.keep(plan.run_file, plan.directory, plan.entry, plan.ansible_dir, plan.collections_dir)
    os.unlink(plan.entry)
    os.unlink(lock)
    os.symlink(str(tmp_path / "elsewhere"), lock)
    assert not pc.keep(plan.run_file, plan.directory, plan.entry, plan.ansible_dir, plan.collections_dir)
    assert not os.path.exists(plan.entry) and not os.path.exists(str(tmp_path / "elsewhere"))


def _archive_names(text):
    with zipfile.ZipFile(io.BytesIO(base64.b64decode(text))) as archive:
        return sorted(archive.namelist())


def test_with_bytecode_the_entry_also_holds_the_archive_with_compiled_code(tmp_path):
    ansible_dir, colls = _tree(tmp_path)
    plan = _plan(tmp_path, ansible_dir, colls, bytecode=True)
    assert plan.bytecode_for == "overlay_mounts" and plan.entry != _plan(tmp_path, ansible_dir, colls).entry
    os.makedirs(os.path.dirname(plan.run_file))
    with open(plan.run_file, "wb") as handle:
        handle.write(_payload(MEMBERS))
    assert pc.keep(plan.run_file, plan.directory, plan.entry, ansible_dir, colls, plan.bytecode_for)
    manifest, record, payload = pc.unpack(open(plan.entry, "rb").read())
    assert all(path.endswith(".py") for path, size, mtime in manifest)
    assert payload == _payload(MEMBERS)  # the payload ansible-core uses is its own
    plain = pickle.loads(payload).zip_data
    assert record["magic"] == pc.MAGIC and record["plain"] == hashlib.sha256(plain).hexdigest()
    assert [name for name in _archive_names(record["zip"]) if name.endswith(".pyc")] == [
        "ansible/__init__.pyc", "ansible/module_utils/__init__.pyc", "ansible/module_utils/basic.pyc"]
    os.unlink(plan.run_file)
    assert pc.read_compiled(plan.run_file) is None
    assert pc.place(plan.entry, plan.run_file)
    assert open(plan.run_file, "rb").read() == payload
    assert pc.read_compiled(plan.run_file) == (record["plain"], record["zip"].encode("ascii"))


@pytest.mark.parametrize("payload", [
    _payload({"ansible/module_utils/basic.py": b"def (:\n"}), _payload(MEMBERS, encode=False), b"not a pickle"])
def test_no_compiled_archive_for_a_payload_that_does_not_compile_or_is_of_another_layout(payload):
    assert pc.compiled_record(payload, "overlay_mounts") == b"{}"


def test_an_entry_of_another_controller_python_has_no_compiled_archive_to_give(tmp_path):
    ansible_dir, colls = _tree(tmp_path)
    plan = _plan(tmp_path, ansible_dir, colls, bytecode=True)
    os.makedirs(plan.directory, mode=0o700)
    manifest = pc.manifest_for(_payload(MEMBERS), ansible_dir, colls)
    with open(plan.entry, "wb") as handle:
        handle.write(pc.pack(manifest, _payload(MEMBERS), b'{"magic": "00000000", "plain": "x", "zip": "UEs="}'))
    os.chmod(plan.entry, 0o600)
    assert pc.read_entry(plan.entry) == _payload(MEMBERS)
    assert pc.place(plan.entry, plan.run_file)
    assert pc.read_compiled(plan.run_file) is None


def _wrapper(text):
    return b"#!/usr/bin/python3\ncode = 1\n_ansiballz_main(\nansible_module='m',\nzip_data='" + text + b"',\n)\n"


def test_the_wrapper_carries_the_compiled_archive_only_in_place_of_the_one_recorded():
    compiled = (hashlib.sha256(b"UEsPLAIN").hexdigest(), b"UEsCOMPILED")
    assert pc.with_compiled(_wrapper(b"UEsPLAIN"), compiled) == _wrapper(b"UEsCOMPILED")
    assert pc.with_compiled(_wrapper(b"UEsOTHER"), compiled) is None
    assert pc.with_compiled(_wrapper(b"UEsPLAIN") + b"zip_data='UEsPLAIN'", compiled) is None
    assert pc.with_compiled(b"no archive here", compiled) is None


def test_a_host_is_recorded_per_connection_address_port_and_interpreter(tmp_path):
    base = ("ssh", "10.0.0.1", 22, "#!/usr/bin/python3")
    files = {pc.host_file(str(tmp_path), base)}
    for index, other in enumerate(("local", "10.0.0.2", 2222, "#!/usr/bin/python3.12")):
        changed = list(base)
        changed[index] = other
        files.add(pc.host_file(str(tmp_path), changed))
    assert len(files) == 5 and all(os.path.dirname(path) == str(tmp_path / "hosts") for path in files)


def test_a_reported_bytecode_is_recorded_once_and_anything_else_is_ignored(tmp_path):
    path = pc.host_file(str(tmp_path / "cache"), ("ssh", "h", 22, "py"))
    assert pc.host_magic(path) == ""
    for reported in (None, 3, "a7 d0 0d", "A70D0D0A", "a70d0d0a0"):
        assert not pc.remember_host(path, reported)
    assert not os.path.exists(path)
    assert pc.remember_host(path, "a70d0d0a") and pc.host_magic(path) == "a70d0d0a"
    assert oct(os.stat(os.path.dirname(path)).st_mode & 0o777) == "0o700"
    inode = os.stat(path).st_ino
    assert not pc.remember_host(path, "a70d0d0a") and os.stat(path).st_ino == inode
    assert pc.remember_host(path, "cb0d0d0a") and pc.host_magic(path) == "cb0d0d0a"
    os.unlink(path)
    os.symlink(str(tmp_path / "planted"), path)
    (tmp_path / "planted").write_text(pc.MAGIC)
    assert pc.host_magic(path) == ""


def test_without_a_plan_the_task_just_runs(tmp_path):
    assert pc.run_cached(None, lambda: "ran") == "ran"


def test_a_file_already_placed_in_this_run_is_left_alone(tmp_path):
    plan, run, built = _cold_then_warm(tmp_path)
    os.makedirs(os.path.dirname(plan.run_file))
    with open(plan.run_file, "wb") as handle:
        handle.write(b"ansible-core's own")
    assert pc.place(plan.entry, plan.run_file)
    with open(plan.run_file, "rb") as handle:
        assert handle.read() == b"ansible-core's own"


def test_an_unwritable_cache_dir_costs_nothing_but_the_build(tmp_path):
    plan, run, built = _cold_then_warm(tmp_path)
    open(str(tmp_path / "cache"), "w").close()  # a file where the directory should be
    assert pc.run_cached(plan, run)
    assert len(built) == 1
    assert not pc.keep(plan.run_file, plan.directory, plan.entry, plan.ansible_dir, plan.collections_dir)


# Runs in a child process: installs ansible-core's collection loader, which must not leak into other tests.
AGAINST_ANSIBLE_CORE = r'''
import base64, io, json, os, re, subprocess, sys, zipfile
root, work, bytecode = sys.argv[1], sys.argv[2], sys.argv[3] == "bytecode"
from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder
_AnsibleCollectionFinder(paths=[root])._install()
import ansible
from ansible import constants as C
from ansible.executor import module_common
from ansible.parsing.dataloader import DataLoader
from ansible.release import __version__
from ansible.template import Templar
from ansible_collections.overlayfs.mounts.plugins.plugin_utils import payload_cache as pc

module = os.path.join(root, "ansible_collections", "overlayfs", "mounts", "plugins", "modules", "overlay_mount_info.py")
ansible_dir = os.path.dirname(ansible.__file__)

def build(run_tmp):
    C.DEFAULT_LOCAL_TMP = run_tmp
    return module_common.modify_module(module_name="overlayfs.mounts.overlay_mount_info", module_path=module, module_args={},
                                       templar=Templar(loader=DataLoader()), task_vars={"ansible_python_interpreter": sys.executable},
                                       module_compression="ZIP_DEFLATED")

def plan(run_tmp):
    return pc.make_plan(os.path.join(work, "cache"), module, run_tmp, "ZIP_DEFLATED", __version__, ansible_dir, [], bytecode)

first = plan(os.path.join(work, "run1"))
built = build(os.path.join(work, "run1")).b_module_data
with open(first.run_file, "rb") as handle:
    manifest = pc.manifest_for(handle.read(), ansible_dir, root)
kept = pc.keep(first.run_file, first.directory, first.entry, ansible_dir, root, first.bytecode_for)
second = plan(os.path.join(work, "run2"))
placed = pc.place(second.entry, second.run_file)

def no_build(*args, **kwargs):
    raise AssertionError("ansible-core built the payload again")

module_common.recursive_finder = no_build
stamp = re.compile(rb"date_time=datetime[.]datetime[(][^)]*[)]")  # the wrapper's own time of building
again = build(os.path.join(work, "run2")).b_module_data
seen = {"files": [item[0] for item in manifest or []], "kept": kept, "placed": placed,
        "same": stamp.sub(b"", again) == stamp.sub(b"", built)}
if bytecode:  # the wrapper as sent to a host of this Python: run it as a host would, and see what the zip importer used
    sent = pc.with_compiled(again, pc.read_compiled(second.run_file) or ("", b""))
    seen["swapped"] = sent is not None
    archive = zipfile.ZipFile(io.BytesIO(base64.b64decode(re.search(rb"zip_data='([^']*)'", sent).group(1))))
    seen["names"] = archive.namelist()
    script = os.path.join(work, "module.py")
    with open(script, "wb") as handle:
        handle.write(sent)
    env = dict(os.environ, PYTHONVERBOSE="2", OVERLAYFS_MOUNTS_CODE_CACHE="off")
    run = subprocess.run([sys.executable, script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, check=False)
    seen["result"] = json.loads(run.stdout.decode().strip().splitlines()[-1])
    seen["tried"] = [line.split("payload.zip/", 1)[1] for line in run.stderr.decode().splitlines()
                     if line.startswith("# trying ") and "/ansible/module_utils/basic." in line]
print(json.dumps(seen))
'''


def _against_ansible_core(tmp_path, bytecode):
    package = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(pc.__file__))))
    root = os.path.dirname(os.path.dirname(os.path.dirname(package)))
    proc = subprocess.run([sys.executable, "-c", AGAINST_ANSIBLE_CORE, root, str(tmp_path), bytecode],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return package, json.loads(proc.stdout.strip().splitlines()[-1])


def test_against_this_ansible_core_a_payload_with_compiled_code_runs_it_on_a_host_of_the_same_python(tmp_path):
    package, seen = _against_ansible_core(tmp_path, "bytecode")
    assert seen["kept"] and seen["placed"] and seen["same"] and seen["swapped"]
    assert "ansible/module_utils/basic.pyc" in seen["names"]
    assert not [name for name in seen["names"] if name.startswith("ansible_collections/") and name.endswith(".pyc")]
    assert "overlay_mounts" in seen["result"] and not seen["result"].get("failed"), seen["result"]
    assert "ansible/module_utils/basic.pyc" in seen["tried"] and "ansible/module_utils/basic.py" not in seen["tried"]


def test_against_this_ansible_core_its_per_run_file_is_proven_kept_and_used_again(tmp_path):
    package, seen = _against_ansible_core(tmp_path, "plain")
    assert seen["kept"] and seen["placed"] and seen["same"]
    files = seen["files"]
    assert os.path.join(os.path.dirname(ansible.__file__), "module_utils", "basic.py") in files
    assert os.path.join(package, "plugins", "modules", "overlay_mount_info.py") in files
    assert any(path.endswith(os.path.join("_host", "code_cache.py")) for path in files)
