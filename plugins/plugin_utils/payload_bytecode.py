# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Put compiled code of ansible-core's own module_utils beside their sources in a module payload.

On the host, a module runs from the zip archive ansible-core sends
(AnsiballZ). Python's zip importer never writes bytecode, so every module
run compiles each of ansible-core's module_utils it imports (``basic`` and
about fifty more) before any of the module's own code runs: about 50 ms of
a module process's 210 ms of CPU on a 2-CPU machine, paid on every host for
every task. This collection's own module_utils are cached on the host
(``_host/code_cache``), but ansible-core's are imported by its loader first,
so only the payload can carry them.

The zip importer looks for ``name.pyc`` beside ``name.py`` in the archive
before it compiles the source. Each ``.pyc`` added here is a hash-based pyc
(PEP 552) checked against its source: Python reads the source from the
archive and uses the compiled code only when the source's hash matches;
a Python of another version (another magic number) ignores the file and
compiles the source as before. Only hosts of the controller's Python minor
version gain the time, so the payload cache sends the larger archive (about
210 KB more, compressed) only to hosts that reported the controller's
bytecode (``payload_cache``).

Only members under ``ansible/`` get one. The collection's own members keep
their sources alone, for the host's code cache and for tools that map
file names back to the collection (coverage, deprecation attribution).
The compiled code names its file ``/ansible_<module>_payload.zip/<member>``,
a path that exists on no host, where a run would name the archive in a
temporary directory: tracebacks still show each line, read from the archive.
"""

import importlib.util
import io
import marshal
import struct
import zipfile
from typing import Optional

#: Members that get compiled code: ansible-core's own package.
PREFIX = "ansible/"
#: PEP 552 flags: the pyc is hash-based, and the hash is checked against the source.
CHECKED_HASH = 0b11


def pyc(source: bytes, filename: str) -> bytes:
    """A checked hash-based pyc of ``source`` for this Python, its code naming ``filename``."""
    code = compile(source, filename, "exec", dont_inherit=True, optimize=0)
    header = importlib.util.MAGIC_NUMBER + struct.pack("<I", CHECKED_HASH) + importlib.util.source_hash(source)
    return header + marshal.dumps(code)


def with_bytecode(archive: bytes, module: str) -> Optional[bytes]:
    """``archive`` with a pyc beside each ``ansible/`` source, members otherwise as they were; None when one fails to compile."""
    out = io.BytesIO()
    try:
        with zipfile.ZipFile(io.BytesIO(archive)) as source, zipfile.ZipFile(out, "w") as target:
            names = set(source.namelist())
            for info in source.infolist():
                data = source.read(info)
                target.writestr(info, data)
                compiled = info.filename[:-len(".py")] + ".pyc"
                if info.filename.startswith(PREFIX) and info.filename.endswith(".py") and compiled not in names:
                    member = zipfile.ZipInfo(compiled, date_time=info.date_time)
                    member.compress_type = info.compress_type
                    member.external_attr = info.external_attr
                    target.writestr(member, pyc(data, "/ansible_%s_payload.zip/%s" % (module, info.filename)))
    except (zipfile.BadZipFile, SyntaxError, ValueError, OSError, EOFError, RecursionError):
        return None
    return out.getvalue()
