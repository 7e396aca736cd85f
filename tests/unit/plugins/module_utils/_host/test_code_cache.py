# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The code cache, in real Python processes importing from a zip as AnsiballZ ships a module."""

import json
import os
import pwd
import stat
import subprocess
import sys
import zipfile

import pytest

from ansible_collections.overlayfs.mounts.plugins.module_utils._host import code_cache

PACKAGE_DIR = "ansible_collections/overlayfs/mounts/plugins/module_utils"
SOURCE = os.path.join(os.path.dirname(os.path.abspath(code_cache.__file__)), "code_cache.py")

ALPHA = '''VALUE = %d


def boom():
    raise RuntimeError("boom")
'''

# Imports like a module does: code_cache first, then the rest; prints what the finder did.
DRIVER = '''
import json, sys, traceback
sys.path.insert(0, sys.argv[1])
from ansible_collections.overlayfs.mounts.plugins.module_utils._host import code_cache
from ansible_collections.overlayfs.mounts.plugins.module_utils._demo import beta
from ansible_collections.overlayfs.mounts.plugins.module_utils._demo import alpha
finder = sys.meta_path[0]
try:
    alpha.boom()
except RuntimeError:
    frame = traceback.extract_tb(sys.exc_info()[2])[-1]
print(json.dumps({
    "installed": isinstance(finder, code_cache.CodeCacheFinder),
    "hits": getattr(finder, "hits", None), "misses": getattr(finder, "misses", None),
    "value": beta.DOUBLE, "package": beta.__package__, "demo_path": list(sys.modules[beta.__package__].__path__),
    "file": alpha.__file__, "frame": [frame.filename, frame.lineno, frame.line],
}))
'''


def make_zip(path, value=1):
    """A zip laid out as AnsiballZ lays out a module's payload, with the real code_cache.py and a demo package."""
    with zipfile.ZipFile(str(path), "w", zipfile.ZIP_DEFLATED) as archive:
        parts = PACKAGE_DIR.split("/")
        for depth in range(1, len(parts) + 1):
            archive.writestr("/".join(parts[:depth]) + "/__init__.py", "")
        archive.writestr(PACKAGE_DIR + "/_host/__init__.py", "")
        with open(SOURCE) as handle:
            archive.writestr(PACKAGE_DIR + "/_host/code_cache.py", handle.read())
        archive.writestr(PACKAGE_DIR + "/_demo/__init__.py", "")
        archive.writestr(PACKAGE_DIR + "/_demo/alpha.py", ALPHA % value)
        archive.writestr(PACKAGE_DIR + "/_demo/beta.py",
                         "from ansible_collections.overlayfs.mounts.plugins.module_utils._demo.alpha import VALUE\n\nDOUBLE = 2 * VALUE\n")
    return str(path)


def run(archive, cache, extra=None, setting=None):
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTHON", code_cache.ENV))}
    env[code_cache.ENV] = setting if setting is not None else str(cache)
    env.update(extra or {})
    proc = subprocess.run([sys.executable, "-c", DRIVER, archive], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def entries(cache):
    return sorted(name for name in os.listdir(str(cache)) if not name.startswith("."))


def test_first_run_compiles_and_keeps_the_code_then_runs_load_it(tmp_path):
    archive, cache = make_zip(tmp_path / "payload.zip"), tmp_path / "cache"
    first = run(archive, cache)
    assert first["installed"] and first["value"] == 2
    assert (first["hits"], first["misses"]) == (0, 3)  # _demo, beta, alpha: the modules after code_cache
    assert sorted(name.rsplit(".", 2)[0] for name in entries(cache)) == ["_demo", "_demo.alpha", "_demo.beta"]
    assert stat.S_IMODE(os.stat(str(cache)).st_mode) == 0o700
    assert all(stat.S_IMODE(os.stat(str(cache / name)).st_mode) == 0o600 for name in entries(cache))
    second = run(archive, cache)
    assert (second["hits"], second["misses"], second["value"]) == (3, 0, 2)


def test_a_module_from_the_cache_is_a_normal_module_of_this_run(tmp_path):
    """Its package path, file name and traceback name this run's zip and show the source line."""
    cache = tmp_path / "cache"
    run(make_zip(tmp_path / "one.zip"), cache)
    archive = make_zip(tmp_path / "two.zip")
    found = run(archive, cache)
    assert found["hits"] == 3
    assert found["demo_path"] == [os.path.join(archive, PACKAGE_DIR, "_demo")]
    assert found["file"] == os.path.join(archive, PACKAGE_DIR, "_demo", "alpha.py")
    assert found["frame"] == [found["file"], 5, 'raise RuntimeError("boom")']


def test_changed_source_is_compiled_again_and_replaces_its_old_entry(tmp_path):
    cache = tmp_path / "cache"
    run(make_zip(tmp_path / "v1.zip", value=1), cache)
    before = entries(cache)
    found = run(make_zip(tmp_path / "v2.zip", value=5), cache)
    assert (found["value"], found["hits"], found["misses"]) == (10, 2, 1)
    after = entries(cache)
    assert len(after) == 3 and len(set(after) - set(before)) == 1
    assert [name for name in after if name.startswith("_demo.alpha.")] != [name for name in before if name.startswith("_demo.alpha.")]


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty"])
def test_a_damaged_entry_is_compiled_again_and_rewritten(tmp_path, damage):
    archive, cache = make_zip(tmp_path / "payload.zip"), tmp_path / "cache"
    run(archive, cache)
    path = str(cache / [name for name in entries(cache) if name.startswith("_demo.alpha.")][0])
    with open(path, "rb") as handle:
        data = handle.read()
    data = {"truncate": data[:-7], "flip": data[:-3] + bytes([data[-3] ^ 0xFF]) + data[-2:], "empty": b""}[damage]
    with open(path, "wb") as handle:
        handle.write(data)
    found = run(archive, cache)
    assert (found["hits"], found["misses"], found["value"]) == (2, 1, 2)
    assert run(archive, cache)["hits"] == 3


def test_an_entry_others_could_write_is_not_used(tmp_path):
    archive, cache = make_zip(tmp_path / "payload.zip"), tmp_path / "cache"
    run(archive, cache)
    name = [name for name in entries(cache) if name.startswith("_demo.alpha.")][0]
    os.chmod(str(cache / name), 0o666)
    assert run(archive, cache)["misses"] == 1


def test_a_symlinked_entry_is_not_followed(tmp_path):
    archive, cache = make_zip(tmp_path / "payload.zip"), tmp_path / "cache"
    run(archive, cache)
    name = [name for name in entries(cache) if name.startswith("_demo.alpha.")][0]
    os.rename(str(cache / name), str(tmp_path / "elsewhere"))
    os.symlink(str(tmp_path / "elsewhere"), str(cache / name))
    found = run(archive, cache)
    assert found["misses"] == 1 and not os.path.islink(str(cache / name))


def test_a_directory_others_could_write_is_not_used_at_all(tmp_path):
    archive, cache = make_zip(tmp_path / "payload.zip"), tmp_path / "cache"
    cache.mkdir()
    os.chmod(str(cache), 0o777)
    assert (run(archive, cache)["misses"], run(archive, cache)["misses"]) == (3, 3)
    assert entries(cache) == []


def test_a_cache_dir_that_cannot_be_made_only_costs_the_cache(tmp_path):
    archive = make_zip(tmp_path / "payload.zip")
    (tmp_path / "file").write_text("")
    found = run(archive, tmp_path / "file" / "cache")
    assert (found["installed"], found["misses"], found["value"]) == (True, 3, 2)


def test_dont_write_bytecode_reads_but_never_writes(tmp_path):
    archive, cache = make_zip(tmp_path / "payload.zip"), tmp_path / "cache"
    assert run(archive, cache, {"PYTHONDONTWRITEBYTECODE": "1"})["misses"] == 3
    assert entries(cache) == []
    run(archive, cache)
    assert run(archive, cache, {"PYTHONDONTWRITEBYTECODE": "1"})["hits"] == 3


@pytest.mark.parametrize("setting", ["0", "off", "No", " false "])
def test_turned_off_the_zip_importer_does_everything(tmp_path, setting):
    archive, cache = make_zip(tmp_path / "payload.zip"), tmp_path / "cache"
    found = run(archive, cache, setting=setting)
    assert (found["installed"], found["value"]) == (False, 2)
    assert not cache.exists()


def test_stale_temp_files_are_removed_when_an_entry_is_written(tmp_path):
    archive, cache = make_zip(tmp_path / "payload.zip"), tmp_path / "cache"
    cache.mkdir(mode=0o700)
    for name, age in ((".tmp-old", 7200), (".tmp-new", 10)):
        (cache / name).write_bytes(b"x")
        stamp = os.stat(str(cache / name)).st_mtime - age
        os.utime(str(cache / name), (stamp, stamp))
    run(archive, cache)
    assert sorted(os.listdir(str(cache)))[:1] == [".tmp-new"] and not (cache / ".tmp-old").exists()


def test_cache_dir_setting():
    assert code_cache.cache_dir({code_cache.ENV: "/var/cache/x"}) == "/var/cache/x"
    assert code_cache.cache_dir({code_cache.ENV: "relative/dir"}) is None
    assert code_cache.cache_dir({code_cache.ENV: "OFF"}) is None
    default = code_cache.cache_dir({})
    assert default.endswith(os.path.join(".cache", "overlayfs.mounts", "code", "%s-opt%d" % (sys.implementation.cache_tag, sys.flags.optimize)))
    assert default.startswith(pwd.getpwuid(os.geteuid()).pw_dir + os.sep)  # the password database, not $HOME


def test_not_installed_outside_a_zip():
    assert code_cache.install(code_cache.__loader__, {}) is None
    assert not any(isinstance(finder, code_cache.CodeCacheFinder) for finder in sys.meta_path)


def test_unpack_takes_only_whole_entries_of_the_same_source():
    code = compile("X = 1\n", "x.py", "exec")
    digest = b"d" * 32
    data = code_cache.pack(digest, code)
    assert code_cache.unpack(data, digest) is not None
    assert code_cache.unpack(data, b"e" * 32) is None
    assert code_cache.unpack(data[:len(data) - 1], digest) is None
    assert code_cache.unpack(b"OVFLCODE" + data[8:12], digest) is None
