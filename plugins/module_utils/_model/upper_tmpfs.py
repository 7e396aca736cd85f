# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A volatile upper: the ``upper_tmpfs`` option, checked as far as the parameters alone show. Pure.

The upper and work dirs of an overlay live on a tmpfs the collection mounts
with a declared size, mode and owner (the systemd.volatile style). The tmpfs
is mounted before the overlay and unmounted after it; what was written to the
overlay is gone with it.
"""

import dataclasses
import posixpath
import re
from typing import Any, Callable, Mapping, Optional

from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.paths import inside

PAGE_SIZE = 4096
#: What tmpfs takes as ``size=``: a number with an optional binary suffix, or a percentage of RAM.
_SIZE = re.compile(r"^([0-9]+)([kKmMgGtTpPeE]?)$")
_PERCENT = re.compile(r"^([0-9]+)%$")
_SHIFT = {"": 0, "k": 10, "m": 20, "g": 30, "t": 40, "p": 50, "e": 60}
DEFAULT_MODE = 0o755


@dataclasses.dataclass(frozen=True)
class UpperTmpfs:
    """The declared tmpfs of a volatile upper: its mount point, size (as written), root mode, owner and group.

    ``owner`` and ``group`` are kept as given (a name or a number); the host
    resolves them (:func:`resolve_ids`).
    """

    path: str
    size: str
    mode: int = DEFAULT_MODE
    owner: str = "root"
    group: str = "root"

    def options(self, uid: int, gid: int) -> str:
        """The tmpfs mount options, as written in fstab and a unit's ``Options=``."""
        return "size=%s,mode=%04o,uid=%d,gid=%d" % (self.size, self.mode, uid, gid)

    def as_result(self) -> dict:
        return {"path": self.path, "size": self.size, "mode": "%04o" % self.mode, "owner": self.owner, "group": self.group}


def check_size(size: Any) -> str:
    """``size`` as tmpfs takes it; refuse anything else (and 0, which tmpfs reads as no limit)."""
    text = str(size).strip() if size is not None else ""
    match = _SIZE.match(text) or _PERCENT.match(text)
    if match is None:
        raise OverlayError("upper_tmpfs.size: '%s' is not a tmpfs size; write a number of bytes with an optional "
                           "suffix k, m, g or t (such as 64M or 1G), or a percentage of RAM (such as 10%%)" % text)
    if int(match.group(1)) == 0:
        raise OverlayError("upper_tmpfs.size: %s means no limit to tmpfs, so writes could fill the host's memory; "
                           "give a size such as 64M, 1G or 10%%" % text)
    return text


def size_bytes(size: str, total_pages: Optional[int]) -> Optional[int]:
    """The size limit the kernel sets for ``size``, in bytes (rounded up to whole pages as tmpfs does).

    A percentage is of the host's RAM (``total_pages``, MemTotal / 4 KiB); None
    when it is unknown.
    """
    match = _SIZE.match(size)
    if match is not None:
        raw = int(match.group(1)) << _SHIFT[match.group(2).lower()]
    else:
        if total_pages is None:
            return None
        raw = (int(_PERCENT.match(size).group(1)) * PAGE_SIZE * total_pages) // 100
    return -(-raw // PAGE_SIZE) * PAGE_SIZE


def from_params(value: Optional[Mapping[str, Any]], upperdir: Optional[str], workdir: Optional[str], state: str,
                check_path: Callable[[Any, str], str], parse_mode: Callable[[Any], Optional[int]]) -> Optional[UpperTmpfs]:
    """The checked ``upper_tmpfs`` (None when not given).

    ``upperdir``/``workdir`` are the checked, normalised paths (None when not
    given); ``check_path`` and ``parse_mode`` are the declaration's own checks.
    """
    if value is None:
        return None
    writes = state in ("mounted", "present")
    if upperdir is None and writes:
        raise OverlayError("upper_tmpfs: a volatile upper needs upperdir and workdir inside the tmpfs; "
                           "give both, or remove upper_tmpfs")
    path = value.get("path")
    if path is None:
        path = _common_parent(upperdir, workdir)
    path = check_path(path, "upper_tmpfs.path")
    if upperdir is not None:
        for field, directory in (("upperdir", upperdir), ("workdir", workdir)):
            if not inside(directory, path):
                raise OverlayError(
                    "upper_tmpfs.path: %s '%s' does not lie inside the tmpfs at '%s'; put upperdir and workdir "
                    "below upper_tmpfs.path (such as %s/upper and %s/work)" % (field, directory, path, path, path))
    mode = parse_mode(value.get("mode") if value.get("mode") is not None else "0755")
    if mode > 0o7777:
        raise OverlayError("upper_tmpfs.mode: %o is not a mode; give at most four octal digits such as '0755'" % mode)
    size = check_size(value.get("size")) if writes or value.get("size") is not None else ""
    return UpperTmpfs(path, size, mode, str(value.get("owner") or "root"), str(value.get("group") or "root"))


def _common_parent(upperdir: Optional[str], workdir: Optional[str]) -> str:
    if upperdir is None or workdir is None:
        raise OverlayError("upper_tmpfs.path: without upperdir and workdir there is no directory to mount the tmpfs "
                           "on; give upper_tmpfs.path")
    parent = posixpath.commonpath([upperdir, workdir])
    if parent in ("/", upperdir, workdir):
        raise OverlayError(
            "upper_tmpfs.path: upperdir '%s' and workdir '%s' have no common parent directory to mount the tmpfs on "
            "(other than /); put them side by side in one directory (such as /var/lib/volatile/upper and "
            "/var/lib/volatile/work), or give upper_tmpfs.path" % (upperdir, workdir))
    return parent


def resolve_ids(tmpfs: UpperTmpfs, user: Callable[[str], int], group: Callable[[str], int]) -> Any:
    """``(uid, gid)`` of the declared owner and group: numbers as they are, names through ``user``/``group``."""
    ids = []
    for field, value, lookup, what in (("owner", tmpfs.owner, user, "user"), ("group", tmpfs.group, group, "group")):
        if value.isdigit():
            ids.append(int(value))
            continue
        try:
            ids.append(lookup(value))
        except KeyError:
            raise OverlayError("upper_tmpfs.%s: there is no %s '%s' on this host" % (field, what, value))
    return tuple(ids)
