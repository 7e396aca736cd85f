# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Load this collection's module_utils on a managed host from compiled code kept between runs.

Ansible ships a module to the host as a zip of Python sources (AnsiballZ),
and Python's zip importer compiles every imported source on every run, and
(up to Python 3.12) twice: once to learn the file name, once to run it. For
this collection that is about 650 KB of source, most of the module's time
on the host. Imported first by every module, this file puts a finder in
front of ``sys.meta_path`` for the collection's module_utils (only when they
are imported from such a zip; nothing changes elsewhere), which compiles each
source once and keeps the code object in a cache directory:

* ``~/.cache/overlayfs.mounts/code/<python tag>`` of the user the module runs
  as (read from the password database, not ``$HOME``), made mode 0700;
  ``OVERLAYFS_MOUNTS_CODE_CACHE`` set to an absolute path puts it there, set
  to ``0``, ``off``, ``no`` or ``false`` turns the finder off;
* an entry is used only when it is a regular file (not a symlink) owned by
  that user and not writable by group or others, in a directory that is the
  same, and when it names the SHA-256 of the very source being imported and
  of its own payload; anything else is compiled afresh, as Python would;
* entries are keyed by the source's digest, so a new collection version
  never runs old code; writing an entry removes the module's older ones;
* with ``PYTHONDONTWRITEBYTECODE`` (``sys.dont_write_bytecode``) nothing is
  written; an entry that cannot be written (read-only or full disk) is skipped.

It imports nothing of the collection (it loads before the rest, compiled by
the zip importer), so its ownership checks are its own rather than
``safe_paths``'.
"""

import hashlib
import importlib.machinery
import importlib.util
import marshal
import os
import stat
import sys
import tempfile
import time
import zipimport
from typing import Dict, List, Optional, Tuple

try:
    from _imp import _fix_co_filename
except ImportError:  # pragma: no cover - CPython has had it since 3.4
    _fix_co_filename = None

ENV = "OVERLAYFS_MOUNTS_CODE_CACHE"
OFF = ("0", "off", "no", "false")
#: Every module under this package goes through the finder.
PACKAGE = __name__.rsplit(".", 2)[0]
_HEADER = b"OVFLCODE" + importlib.util.MAGIC_NUMBER
_SUFFIX = ".code"
#: The result entry naming the bytecode this host's Python runs; the module's action on the controller takes it out.
BYTECODE_KEY = "_overlayfs_mounts_bytecode"


def host_bytecode() -> Dict[str, str]:
    """The result entry naming this Python's bytecode (its magic number, in hex).

    The controller's payload cache sends a host compiled code of
    ansible-core's module_utils only once the host has said its Python runs
    the controller's bytecode (see ``plugins/plugin_utils/payload_cache``).
    """
    return {BYTECODE_KEY: importlib.util.MAGIC_NUMBER.hex()}


def cache_dir(environ: Dict[str, str]) -> Optional[str]:
    """Where compiled code is kept, or None when the cache is off or has no home."""
    setting = environ.get(ENV, "").strip()
    if setting.lower() in OFF:
        return None
    if setting:
        return setting if os.path.isabs(setting) else None
    try:
        import pwd
        home = pwd.getpwuid(os.geteuid()).pw_dir
    except (ImportError, KeyError):
        return None
    tag = "%s-opt%d" % (sys.implementation.cache_tag, sys.flags.optimize)
    return os.path.join(home, ".cache", "overlayfs.mounts", "code", tag)


def trusted(info: os.stat_result, kind: int) -> bool:
    """True for a ``kind`` (stat.S_IFDIR or S_IFREG) owned by this user and not writable by group or others."""
    return stat.S_IFMT(info.st_mode) == kind and info.st_uid == os.geteuid() and not info.st_mode & 0o022


def usable_dir(path: str) -> bool:
    """True when ``path`` is (or now is, made 0700) a directory the cache may read from."""
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        return trusted(os.lstat(path), stat.S_IFDIR)
    except OSError:
        return False


def entry_name(name: str, digest: bytes) -> str:
    """The file of module ``name`` (relative to :data:`PACKAGE`) compiled from a source of ``digest``."""
    return "%s.%s%s" % (name, digest.hex()[:40], _SUFFIX)


def pack(digest: bytes, code) -> bytes:
    """An entry: header, source digest, payload digest, marshalled code."""
    payload = marshal.dumps(code)
    return _HEADER + digest + hashlib.sha256(payload).digest() + payload


def unpack(data: bytes, digest: bytes):
    """The code object in entry ``data`` when it was made from a source of ``digest`` and is whole, else None."""
    start = len(_HEADER)
    if data[:start] != _HEADER or data[start:start + 32] != digest:
        return None
    payload = data[start + 64:]
    if hashlib.sha256(payload).digest() != data[start + 32:start + 64]:
        return None
    try:
        return marshal.loads(payload)
    except (EOFError, ValueError, TypeError):
        return None


def read_entry(path: str, digest: bytes):
    """The code object kept at ``path`` for a source of ``digest``, or None (absent, untrusted, damaged)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        if not trusted(os.fstat(fd), stat.S_IFREG):
            return None
        return unpack(handle.read(), digest)


def write_entry(directory: str, name: str, digest: bytes, code) -> None:
    """Keep ``code`` for module ``name``, replacing any entry of it for another source; errors are ignored."""
    if sys.dont_write_bytecode:
        return
    path = os.path.join(directory, entry_name(name, digest))
    if not replace_file(directory, path, pack(digest, code)):
        return
    for other in _stale(directory, name, os.path.basename(path)):
        remove_quietly(os.path.join(directory, other))


def replace_file(directory: str, path: str, data: bytes) -> bool:
    """Replace ``path`` (in ``directory``) with ``data`` through a 0600 temp file there; False when that failed.

    The temp file's name starts with ``.tmp-``: one a killed run leaves is
    found by :func:`old_temp_files`.
    """
    try:
        fd, temp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    except OSError:
        return False
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temp, path)
    except OSError:
        remove_quietly(temp)
        return False
    return True


def _stale(directory: str, name: str, keep: str) -> List[str]:
    """Entries of module ``name`` other than ``keep``, and temp files a killed run left over an hour ago."""
    prefix = name + "."
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    old = [n for n in names if n != keep and n.startswith(prefix) and n.endswith(_SUFFIX) and "." not in n[len(prefix):-len(_SUFFIX)]]
    return old + old_temp_files(directory, names)


def old_temp_files(directory: str, names: List[str]) -> List[str]:
    """The temp files among ``names`` (in ``directory``) that a killed run left over an hour ago."""
    return [name for name in names if name.startswith(".tmp-") and _age(os.path.join(directory, name)) > 3600]


def _age(path: str) -> float:
    try:
        return time.time() - os.lstat(path).st_mtime
    except OSError:
        return 0.0


def remove_quietly(path: str) -> None:
    """Remove the file ``path``; an error (already gone, no permission) is ignored."""
    try:
        os.unlink(path)
    except OSError:
        pass


class CachedSourceLoader(object):
    """Loads one module of :data:`PACKAGE` from its source in the zip, through the cache."""

    def __init__(self, finder: "CodeCacheFinder", fullname: str, source: str, filename: str, package: bool) -> None:
        self.finder = finder
        self.fullname = fullname
        self.source = source
        self.filename = filename
        self.package = package

    def create_module(self, spec):
        return None

    def exec_module(self, module) -> None:
        exec(self.get_code(module.__name__), module.__dict__)  # pylint: disable=exec-used

    def get_code(self, fullname: str):
        return self.finder.code(fullname[len(PACKAGE) + 1:], self.source, self.filename)

    def get_source(self, fullname: str) -> str:
        return self.source

    def get_filename(self, fullname: str) -> str:
        return self.filename

    def is_package(self, fullname: str) -> bool:
        return self.package


class CodeCacheFinder(object):
    """A meta path finder for :data:`PACKAGE`'s modules in a zip; counts its ``hits`` and ``misses``."""

    def __init__(self, directory: Optional[str]) -> None:
        self.directory = directory if directory and usable_dir(directory) else None
        self.hits = 0
        self.misses = 0
        self._importers = {}

    def find_spec(self, fullname: str, path=None, target=None):
        if not fullname.startswith(PACKAGE + ".") or not path:
            return None
        for entry in path:
            found = self._find(entry, fullname)
            if found:
                source, filename, package = found
                loader = CachedSourceLoader(self, fullname, source, filename, package)
                spec = importlib.machinery.ModuleSpec(fullname, loader, origin=filename, is_package=package)
                spec.has_location = True
                if package:
                    spec.submodule_search_locations = [os.path.dirname(filename)]
                return spec
        return None

    def _find(self, entry: str, fullname: str) -> Optional[Tuple[str, str, bool]]:
        """``(source, file name, is package)`` of ``fullname`` in the zip directory ``entry``, or None."""
        importer = self._importer(entry)
        if importer is None:
            return None
        try:
            package = importer.is_package(fullname)
            source = importer.get_source(fullname)
        except zipimport.ZipImportError:
            return None
        if source is None:
            return None
        tail = fullname.rpartition(".")[2]
        filename = os.path.join(entry, tail, "__init__.py") if package else os.path.join(entry, tail + ".py")
        return source, filename, package

    def _importer(self, entry: str):
        if entry not in self._importers:
            try:
                self._importers[entry] = zipimport.zipimporter(entry)
            except zipimport.ZipImportError:
                self._importers[entry] = None
        return self._importers[entry]

    def code(self, name: str, source: str, filename: str):
        """The code object of module ``name`` from ``source``: kept from an earlier run, or compiled and kept."""
        digest = hashlib.sha256(source.encode("utf-8", "surrogateescape")).digest()
        if self.directory:
            code = read_entry(os.path.join(self.directory, entry_name(name, digest)), digest)
            if code is not None:
                self.hits += 1
                if _fix_co_filename is not None:
                    _fix_co_filename(code, filename)
                return code
        self.misses += 1
        code = compile(source, filename, "exec", dont_inherit=True)
        if self.directory:
            write_entry(self.directory, name, digest, code)
        return code


def install(loader=None, environ: Optional[Dict[str, str]] = None) -> Optional[CodeCacheFinder]:
    """Put the finder first on ``sys.meta_path`` when ``loader`` (this file's) is a zip importer; returns it."""
    environ = os.environ if environ is None else environ
    if not isinstance(loader, zipimport.zipimporter) or environ.get(ENV, "").strip().lower() in OFF:
        return None
    for finder in sys.meta_path:
        if isinstance(finder, CodeCacheFinder):
            return finder
    finder = CodeCacheFinder(cache_dir(environ))
    sys.meta_path.insert(0, finder)
    return finder


install(globals().get("__loader__"))
