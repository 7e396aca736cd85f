# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Compiled code beside ansible-core's sources in a payload, and what Python's zip importer makes of it."""

import importlib.util
import io
import json
import marshal
import struct
import subprocess
import sys
import zipfile

from ansible_collections.overlayfs.mounts.plugins.plugin_utils import payload_bytecode as pb

THING = b"import sys\nVALUE = 1\n\n\ndef fail():\n    raise RuntimeError('from the thing')\n"
MEMBERS = {
    "ansible/__init__.py": b"",
    "ansible/module_utils/__init__.py": b"",
    "ansible/module_utils/thing.py": THING,
    "ansible_collections/__init__.py": b"",
    "ansible_collections/ns/coll/plugins/modules/mod.py": b"VALUE = 2\n",
}
FILENAME = "/ansible_mod_payload.zip/ansible/module_utils/thing.py"


def _zip(members, compression=zipfile.ZIP_DEFLATED):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _members(archive):
    with zipfile.ZipFile(io.BytesIO(archive)) as opened:
        return {info.filename: (opened.read(info), info.compress_type) for info in opened.infolist()}


# Imports ansible.module_utils.thing from the archive given, as a module run does; prints what it found.
IMPORT = r'''
import json, sys, traceback
sys.path.insert(0, sys.argv[1])
from ansible.module_utils import thing
try:
    thing.fail()
except RuntimeError:
    shown = traceback.format_exc()
print(json.dumps({"origin": thing.__spec__.origin, "value": thing.VALUE, "filename": thing.fail.__code__.co_filename,
                  "shown": shown}))
'''


def _import(tmp_path, archive):
    path = tmp_path / "payload.zip"
    path.write_bytes(archive)
    proc = subprocess.run([sys.executable, "-c", IMPORT, str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_a_pyc_is_hash_based_checked_for_this_python_and_names_the_file_given():
    data = pb.pyc(THING, FILENAME)
    assert data[:4] == importlib.util.MAGIC_NUMBER
    assert struct.unpack("<I", data[4:8])[0] == 0b11
    assert data[8:16] == importlib.util.source_hash(THING)
    code = marshal.loads(data[16:])
    assert code.co_filename == FILENAME
    namespace = {}
    exec(code, namespace)  # pylint: disable=exec-used
    assert namespace["VALUE"] == 1


def test_only_ansible_core_sources_get_compiled_code_and_every_member_is_kept_as_it_was():
    archive = pb.with_bytecode(_zip(MEMBERS), "mod")
    found = _members(archive)
    before = _members(_zip(MEMBERS))
    assert {name: found[name] for name in before} == before
    added = sorted(set(found) - set(before))
    assert added == ["ansible/__init__.pyc", "ansible/module_utils/__init__.pyc", "ansible/module_utils/thing.pyc"]
    assert found["ansible/module_utils/thing.pyc"] == (pb.pyc(THING, FILENAME), zipfile.ZIP_DEFLATED)
    stored = _members(pb.with_bytecode(_zip(MEMBERS, zipfile.ZIP_STORED), "mod"))
    assert stored["ansible/module_utils/thing.pyc"][1] == zipfile.ZIP_STORED


def test_a_pyc_already_in_the_archive_is_not_written_twice():
    members = dict(MEMBERS, **{"ansible/module_utils/thing.pyc": b"theirs"})
    found = _members(pb.with_bytecode(_zip(members), "mod"))
    assert found["ansible/module_utils/thing.pyc"][0] == b"theirs"


def test_nothing_when_a_source_does_not_compile_or_the_archive_is_not_one():
    broken = dict(MEMBERS, **{"ansible/module_utils/broken.py": b"def (:\n"})
    assert pb.with_bytecode(_zip(broken), "mod") is None
    assert pb.with_bytecode(b"not a zip", "mod") is None


def test_pythons_zip_importer_runs_the_compiled_code_and_still_shows_the_source_line(tmp_path):
    seen = _import(tmp_path, pb.with_bytecode(_zip(MEMBERS), "mod"))
    assert seen["origin"].endswith("payload.zip/ansible/module_utils/thing.pyc")
    assert seen["value"] == 1 and seen["filename"] == FILENAME
    assert "raise RuntimeError('from the thing')" in seen["shown"]


def test_another_python_or_a_changed_source_compiles_the_source_as_before(tmp_path):
    archive = pb.with_bytecode(_zip(MEMBERS), "mod")
    found = {name: data for name, (data, compression) in _members(archive).items()}
    other_python = dict(found, **{"ansible/module_utils/thing.pyc": b"\x00\x00\r\n" + found["ansible/module_utils/thing.pyc"][4:]})
    seen = _import(tmp_path, _zip(other_python))
    assert seen["origin"].endswith("thing.py") and seen["value"] == 1
    changed = dict(found, **{"ansible/module_utils/thing.py": THING.replace(b"VALUE = 1", b"VALUE = 3")})
    seen = _import(tmp_path, _zip(changed))
    assert seen["origin"].endswith("thing.py") and seen["value"] == 3
