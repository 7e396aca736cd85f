# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Keep this collection's built module payloads on the controller between runs.

Before a Python module runs on a host, ansible-core builds its payload
(AnsiballZ): it parses the module and every module_utils file it imports,
recursively, and zips them. It keeps the result only for the current run,
in the run's own temporary directory. This collection's modules import
about 700 KB of module_utils, so the build costs each run 0.3 to 0.5 s of
controller CPU, and the run's first task using the module waits for it on
every host.

The modules' action plugins use this file to keep ansible-core's built
payload after a run and hand it back to the next run, in the place where
ansible-core looks for its own. An entry is used only when all of these
hold; otherwise ansible-core builds the payload as usual and the entry is
replaced:

* it was made by the same ansible-core version and controller Python, for
  the same module file at the same path, with the same compression, and,
  for an installed collection, with the same MANIFEST.json (the checksum of
  every file's checksum);
* every source file ansible-core put into the payload still has the size
  and modification time (nanoseconds) it had when the entry was made, the
  check Python itself uses for its bytecode cache;
* no module_utils directory other than ansible-core's own is configured or
  next to the playbook or role (such a directory may shadow
  ``ansible.module_utils`` files, and new files in it would go unseen);
* the entry is whole (its SHA-256 is checked) and is a regular file, not a
  symlink, owned by the controller user and writable by no one else, in a
  directory that is the same.

Entries live in ``<ANSIBLE_HOME>/overlayfs.mounts/payload`` (made mode
0700), or where ``OVERLAYFS_MOUNTS_PAYLOAD_CACHE`` (an absolute path) says;
set to ``0``, ``off``, ``no`` or ``false`` it turns the cache off.

An entry also holds the payload's archive with compiled code of
ansible-core's module_utils for this controller's Python (see
``payload_bytecode``). Each module run reports which bytecode its host's
Python runs (``code_cache.BYTECODE_KEY``, taken out of the result by the
action); the controller keeps that per host and interpreter in
``hosts/``, and a host whose Python runs the controller's bytecode gets
the archive with compiled code from then on, which spares it compiling
ansible-core's module_utils on every module run. Any other host, or one
not heard from yet, gets ansible-core's payload as built. A record that is
wrong costs time, never correctness: the host's Python checks each
compiled file's version and its source's hash before using it.
``OVERLAYFS_MOUNTS_PAYLOAD_BYTECODE`` set to ``0``, ``off``, ``no`` or
``false`` turns the compiled code off.
"""

import base64
import fcntl
import hashlib
import importlib.util
import io
import json
import os
import pickle
import stat
import sys
import zipfile
from typing import Any, Callable, List, Mapping, Optional, Sequence, Tuple, TypeVar

from ansible_collections.overlayfs.mounts.plugins.module_utils._host.code_cache import (
    OFF, old_temp_files, remove_quietly, replace_file, trusted, usable_dir)
from ansible_collections.overlayfs.mounts.plugins.plugin_utils.payload_bytecode import with_bytecode

ENV = "OVERLAYFS_MOUNTS_PAYLOAD_CACHE"
BYTECODE_ENV = "OVERLAYFS_MOUNTS_PAYLOAD_BYTECODE"
FORMAT = b"OVFLAZ2\n"
#: This controller's bytecode, as a host reports its own.
MAGIC = importlib.util.MAGIC_NUMBER.hex()
#: How ansible-core's wrapper passes the payload's archive (base64 text) to the host.
ZIP_ARGUMENT = b"zip_data='"
NO_COMPILED = b"{}"
SUFFIX = ".payload"
#: A file's identity in a manifest: path, size, modification time in nanoseconds.
Source = Tuple[str, int, int]
T = TypeVar("T")


def cache_dir(environ: Mapping[str, str], ansible_home: str) -> Optional[str]:
    """Where payloads are kept, or None when the cache is off."""
    setting = environ.get(ENV, "").strip()
    if setting.lower() in OFF:
        return None
    if setting:
        return setting if os.path.isabs(setting) else None
    return os.path.join(ansible_home, "overlayfs.mounts", "payload") if ansible_home else None


def bytecode_wanted(environ: Mapping[str, str]) -> bool:
    """Whether kept payloads carry compiled code of ansible-core's module_utils (on unless the setting says off)."""
    return environ.get(BYTECODE_ENV, "").strip().lower() not in OFF


def entry_key(ansible_version: str, module_path: str, compression: str, module_utils_dirs: Sequence[str],
              collection_manifest: bytes = b"", bytecode: bool = False) -> str:
    """The name part that changes with anything the payload is built from, other than its source files' times.

    ``collection_manifest`` is the installed collection's MANIFEST.json,
    which holds the checksum of the list of every file's checksum: an
    installed release whose files keep their times (a package built
    reproducibly) still gets a key of its own.
    """
    parts = [FORMAT.decode("ascii"), ansible_version, sys.version, module_path, compression] + list(module_utils_dirs)
    parts.append(hashlib.sha256(collection_manifest).hexdigest())
    if bytecode:
        parts.append("bytecode")
    return hashlib.sha256(json.dumps(parts).encode("utf-8", "surrogateescape")).hexdigest()[:40]


def read_manifest(collection_root: str) -> bytes:
    """The collection's MANIFEST.json (written when it is built for installing), or nothing for a source tree."""
    try:
        with open(os.path.join(collection_root, "MANIFEST.json"), "rb") as handle:
            return handle.read()
    except OSError:
        return b""


def entry_path(directory: str, module: str, key: str) -> str:
    """The file of ``module``'s payload under ``key``."""
    return os.path.join(directory, "%s.%s%s" % (module, key, SUFFIX))


def identity(path: str) -> Source:
    """``path``'s identity now; size and time -1 when there is no such file."""
    try:
        info = os.stat(path)
    except OSError:
        return (path, -1, -1)
    return (path, info.st_size, info.st_mtime_ns)


def current(manifest: Sequence[Sequence[Any]]) -> bool:
    """True when every file of ``manifest`` is still as it was recorded (and each absent one still absent)."""
    try:
        return all(identity(str(path)) == (path, size, mtime) for path, size, mtime in manifest)
    except (TypeError, ValueError):
        return False


def pack(manifest: Sequence[Source], payload: bytes, compiled: bytes = NO_COMPILED) -> bytes:
    """An entry: format line, SHA-256 of the rest, the manifest as one JSON line, the compiled archive as one, the payload."""
    body = json.dumps([list(item) for item in manifest]).encode("utf-8", "surrogateescape") + b"\n" + compiled + b"\n" + payload
    return FORMAT + hashlib.sha256(body).hexdigest().encode("ascii") + b"\n" + body


def unpack(data: bytes) -> Optional[Tuple[list, dict, bytes]]:
    """``(manifest, compiled archive record, payload)`` of a whole entry, else None."""
    head = len(FORMAT)
    if data[:head] != FORMAT or data[head + 64:head + 65] != b"\n":
        return None
    body = data[head + 65:]
    if hashlib.sha256(body).hexdigest().encode("ascii") != data[head:head + 64]:
        return None
    line, _sep, rest = body.partition(b"\n")
    compiled, _sep, payload = rest.partition(b"\n")
    try:
        manifest = json.loads(line.decode("utf-8", "surrogateescape"))
        record = json.loads(compiled.decode("ascii"))
    except ValueError:
        return None
    return (manifest, record, payload) if isinstance(manifest, list) and isinstance(record, dict) else None


def _read(path: str) -> Optional[Tuple[list, dict, bytes]]:
    """The entry at ``path`` when it is trusted, whole and current, else None."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        if not trusted(os.fstat(fd), stat.S_IFREG) or not _trusted_dir(os.path.dirname(path)):
            return None
        entry = unpack(handle.read())
    return entry if entry is not None and current(entry[0]) else None


def read_entry(path: str) -> Optional[bytes]:
    """The payload kept at ``path`` when the entry is trusted, whole and current, else None."""
    entry = _read(path)
    return None if entry is None else entry[2]


def place(entry: str, run_file: str) -> bool:
    """Put the payload kept in ``entry`` where this run's ansible-core looks for it; True when it is there now.

    The entry's compiled archive, when made by this controller's Python, goes
    beside it first (``compiled_file``), for the run's workers to read as
    ansible-core's read its own file: once checked here, in the run's
    private directory.
    """
    if os.path.exists(run_file):
        return True
    entry_data = _read(entry)
    if entry_data is None:
        return False
    directory = os.path.dirname(run_file)
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
    except OSError:
        return False
    record = entry_data[1]
    if record.get("magic") == MAGIC and isinstance(record.get("plain"), str) and isinstance(record.get("zip"), str):
        replace_file(directory, compiled_file(run_file), (record["plain"] + "\n" + record["zip"]).encode("ascii"))
    return replace_file(directory, run_file, entry_data[2])


def compiled_file(run_file: str) -> str:
    """Where this run keeps the compiled archive of the payload at ``run_file``."""
    return run_file + ".overlayfs-compiled"


def read_compiled(run_file: str) -> Optional[Tuple[str, bytes]]:
    """``(SHA-256 of the plain archive, compiled archive)`` placed beside ``run_file`` this run, as base64 text; None when there is none."""
    try:
        with open(compiled_file(run_file), "rb") as handle:
            plain, _sep, archive = handle.read().partition(b"\n")
    except OSError:
        return None
    return (plain.decode("ascii", "replace"), archive) if archive else None


#: Members ansible-core writes itself, whose content is fixed by its version.
SYNTHESIZED = ("ansible/__init__.py", "ansible/module_utils/__init__.py")


def member_file(member: str, ansible_dir: str, collections_dir: str) -> Optional[str]:
    """The controller file a payload member ``member`` was read from: None for ansible-core's own stubs, "" when unknown."""
    if member in SYNTHESIZED:
        return None
    if member.startswith("ansible/"):
        return os.path.join(ansible_dir, member[len("ansible/"):])
    if member.startswith("ansible_collections/"):
        return os.path.join(collections_dir, member)
    return ""


def _proven_identity(path: str, content: bytes) -> Optional[Source]:
    """``path``'s identity when it holds exactly ``content`` (or is absent and ``content`` an empty package stub)."""
    try:
        before = os.stat(path)
    except OSError:
        ok = path.endswith("__init__.py") and not content.strip()
        return (path, -1, -1) if ok else None
    try:
        with open(path, "rb") as handle:
            same = handle.read() == content
        after = os.stat(path)
    except OSError:
        return None
    if not same or (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns):
        return None
    return (path, after.st_size, after.st_mtime_ns)


def manifest_for(payload: bytes, ansible_dir: str, collections_dir: str) -> Optional[List[Source]]:
    """The identity of every file in a payload ansible-core built, each checked byte for byte; None when one differs."""
    # ansible-core's own file, in this run's private temporary directory; any other layout keeps nothing.
    try:
        built = pickle.loads(payload)  # nosec
        archive = zipfile.ZipFile(io.BytesIO(_zip_bytes(getattr(built, "zip_data"))))
    except Exception:  # pylint: disable=broad-except
        return None
    manifest = []
    with archive:
        for info in archive.infolist():
            path = None if info.is_dir() else member_file(info.filename, ansible_dir, collections_dir)
            if path == "":
                return None
            if path is not None:
                proven = _proven_identity(path, archive.read(info))
                if proven is None:
                    return None
                manifest.append(proven)
    return sorted(manifest)


def _zip_text(data: Any) -> bytes:
    """A payload's ``zip_data`` as bytes: base64 text, as ansible-core keeps it and its wrapper carries it."""
    return data.encode("ascii") if isinstance(data, str) else bytes(data)


def _zip_bytes(data: Any) -> bytes:
    """The zip archive of a payload: ansible-core keeps it base64-encoded."""
    data = _zip_text(data)
    return data if data.startswith(b"PK") else base64.b64decode(data, validate=True)


def compiled_record(payload: bytes, module: str) -> bytes:
    """The entry's line for ``payload``: its archive with compiled code added, and what it replaces; ``{}`` when none is made.

    A JSON object: ``magic`` (this controller's bytecode), ``plain`` (the
    SHA-256 of the archive as ansible-core's wrapper carries it, base64
    text) and ``zip`` (the archive with compiled code, base64 text).
    """
    try:
        text = _zip_text(getattr(pickle.loads(payload), "zip_data"))  # nosec
        archive = with_bytecode(base64.b64decode(text, validate=True), module)
    except Exception:  # pylint: disable=broad-except
        return NO_COMPILED
    if archive is None:
        return NO_COMPILED
    record = {"magic": MAGIC, "plain": hashlib.sha256(text).hexdigest(), "zip": base64.b64encode(archive).decode("ascii")}
    return json.dumps(record).encode("ascii")


def with_compiled(module_data: bytes, compiled: Tuple[str, bytes]) -> Optional[bytes]:
    """ansible-core's wrapper ``module_data`` carrying the compiled archive instead of the plain one; None when it carries another.

    ``compiled`` is ``(SHA-256 of the plain archive, compiled archive)``,
    both as the wrapper carries them (base64 text).
    """
    start = module_data.find(ZIP_ARGUMENT)
    if start < 0 or module_data.find(ZIP_ARGUMENT, start + 1) >= 0:
        return None
    start += len(ZIP_ARGUMENT)
    end = module_data.find(b"'", start)
    if end < 0 or hashlib.sha256(module_data[start:end]).hexdigest() != compiled[0]:
        return None
    return module_data[:start] + compiled[1] + module_data[end:]


def host_file(directory: str, host: Sequence[Any]) -> str:
    """Where the bytecode of ``host`` (its connection, address, port and interpreter) is recorded."""
    name = hashlib.sha256(json.dumps([str(part) for part in host]).encode("utf-8", "surrogateescape")).hexdigest()[:40]
    return os.path.join(directory, "hosts", name)


def host_magic(path: str) -> str:
    """The bytecode recorded at ``path``, or ""."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return ""
    with os.fdopen(fd, "rb") as handle:
        return handle.read(64).decode("ascii", "replace").strip()


def remember_host(path: str, magic: Any) -> bool:
    """Record ``magic`` (as a module reported it) at ``path`` unless it is already there; True when written."""
    if not isinstance(magic, str) or len(magic) != 8 or magic.strip("0123456789abcdef") or host_magic(path) == magic:
        return False
    directory = os.path.dirname(path)
    return usable_dir(os.path.dirname(directory)) and usable_dir(directory) and replace_file(directory, path, magic.encode("ascii"))


def keep(run_file: str, directory: str, entry: str, ansible_dir: str, collections_dir: str, bytecode_for: str = "") -> bool:
    """Keep the payload this run built in ``entry``, replacing the module's other entries; True when kept.

    With ``bytecode_for`` (the module's name) the entry also holds the
    archive with compiled code (``compiled_record``). One worker process keeps an entry:
    the run's other workers, which finish the same task at the same time,
    leave it to the one holding the module's lock.
    """
    if not usable_dir(directory) or read_entry(entry) is not None:
        return False
    module = os.path.basename(entry).split(".", 1)[0]
    lock = _lock(directory, module)
    if lock is None:
        return False
    try:
        return read_entry(entry) is None and _keep_locked(run_file, entry, module, (ansible_dir, collections_dir), bytecode_for)
    finally:
        os.close(lock)


def _lock(directory: str, module: str) -> Optional[int]:
    """An open descriptor holding ``module``'s keeping lock in ``directory``, or None when another process holds it."""
    try:
        fd = os.open(os.path.join(directory, ".lock-" + module), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), 0o600)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def _keep_locked(run_file: str, entry: str, module: str, sources: Tuple[str, str], bytecode_for: str) -> bool:
    """:func:`keep`'s work once it holds ``module``'s lock; ``sources`` are the ansible and collections dirs."""
    directory = os.path.dirname(entry)
    try:
        with open(run_file, "rb") as handle:
            payload = handle.read()
    except OSError:
        return False
    manifest = manifest_for(payload, *sources)
    if manifest is None:
        return False
    record = compiled_record(payload, bytecode_for) if bytecode_for else NO_COMPILED
    if not replace_file(directory, entry, pack(manifest, payload, record)):
        return False
    names = os.listdir(directory)
    older = [name for name in names if name.startswith(module + ".") and name.endswith(SUFFIX) and name != os.path.basename(entry)]
    for name in older + old_temp_files(directory, names):
        remove_quietly(os.path.join(directory, name))
    return True


def _trusted_dir(path: str) -> bool:
    try:
        return trusted(os.lstat(path or "."), stat.S_IFDIR)
    except OSError:
        return False


class Plan(object):
    """Where one module's payload is kept between runs, and where this run's ansible-core looks for it."""

    __slots__ = ("directory", "entry", "run_file", "ansible_dir", "collections_dir", "bytecode_for")

    def __init__(self, directory: str, entry: str, run_file: str, ansible_dir: str, collections_dir: str, bytecode_for: str = "") -> None:
        self.directory = directory
        self.entry = entry
        self.run_file = run_file
        self.ansible_dir = ansible_dir
        self.collections_dir = collections_dir
        self.bytecode_for = bytecode_for


def make_plan(directory: Optional[str], module_path: str, run_tmp: str, compression: str, ansible_version: str,
              ansible_dir: str, module_utils_dirs: Sequence[str], bytecode: bool = False) -> Optional[Plan]:
    """The plan for the module at ``module_path``, or None when its payload must be built as usual.

    None when the cache is off, the module is not in a collection, or a
    module_utils directory other than ansible-core's own exists
    (``module_utils_dirs`` is the loader's search path). With ``bytecode``
    the kept payload carries compiled code (an entry of its own).
    """
    parts = module_path.split(os.sep)
    if not directory or not run_tmp or "ansible_collections" not in parts or not module_path.endswith(".py"):
        return None
    own = os.path.join(ansible_dir, "module_utils")
    existing = [path for path in module_utils_dirs if path and os.path.isdir(path)]
    if any(os.path.realpath(path) != os.path.realpath(own) for path in existing):
        return None
    start = len(parts) - 1 - parts[::-1].index("ansible_collections")
    collections_dir = os.sep.join(parts[:start]) or os.sep
    fqn = ".".join(parts[start:])[:-len(".py")]
    key = entry_key(ansible_version, module_path, compression, existing, read_manifest(os.sep.join(parts[:start + 3])), bytecode)
    run_file = os.path.join(run_tmp, "ansiballz_cache", "-".join((fqn, compression, "none")))
    name = fqn.rsplit(".", 1)[-1]
    return Plan(directory, entry_path(directory, name, key), run_file, ansible_dir, collections_dir, name if bytecode else "")


def run_cached(plan: Optional[Plan], run: Callable[[], T]) -> T:
    """``run()`` (the task) with the payload handed over from the last run, and this run's kept when it built one."""
    if plan is None:
        return run()
    placed = place(plan.entry, plan.run_file)
    result = run()
    if not placed and os.path.exists(plan.run_file):
        keep(plan.run_file, plan.directory, plan.entry, plan.ansible_dir, plan.collections_dir, plan.bytecode_for)
    return result
