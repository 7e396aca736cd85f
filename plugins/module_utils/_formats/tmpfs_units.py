# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What persists a volatile upper for boot: the tmpfs line or unit, and the service that makes the dirs. Pure.

At boot the tmpfs is fresh and empty, and the kernel refuses an overlay whose
upper or work dir does not exist. So beside the tmpfs (a ``tmpfs`` line in
fstab, or a ``Type=tmpfs`` mount unit) the collection writes a oneshot service,
``overlayfs-upper-<escaped mount point>.service``: it requires the tmpfs
(``RequiresMountsFor=``), makes the upper and work dirs with their mode and
owner, and the overlay requires it (``x-systemd.requires=`` in fstab,
``Requires=`` and ``After=`` in a unit).
"""

import re
from typing import Any, Dict, List, Optional, Tuple

from ansible_collections.overlayfs.mounts.plugins.module_utils._formats import fstab_syntax as _fstab
from ansible_collections.overlayfs.mounts.plugins.module_utils._formats import unit_syntax as _systemd
from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.escape import encode_octal
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.upper_tmpfs import UpperTmpfs

SERVICE_PREFIX = "overlayfs-upper-"
#: Where the dirs service finds install(1) (coreutils; /bin/install on a merged /usr too).
INSTALL = "/usr/bin/install"


def service_name(overlay_path: str) -> str:
    """The name of the service that makes the upper and work dirs of the overlay at ``overlay_path``.

    Past 255 bytes (a long mount point) it is shortened and hashed as systemd
    does with unit names, so that it stays a file name.
    """
    return _systemd.hash_long_name(SERVICE_PREFIX + _systemd.escape_path(overlay_path) + ".service")


def requires_option(overlay_path: str) -> str:
    """The fstab option that makes the overlay at ``overlay_path`` require its dirs service."""
    return "x-systemd.requires=" + service_name(overlay_path)


def _exec_word(path: str) -> str:
    """``path`` as one word of an ``ExecStart=`` line: quoted as systemd splits it, ``%`` and ``$`` escaped."""
    word = path
    if any(c in " \t\"'\\" for c in word):
        word = '"%s"' % word.replace("\\", "\\\\").replace('"', '\\"')
    return word.replace("%", "%%").replace("$", "$$")


def render_service(overlay_path: str, tmpfs: UpperTmpfs, dirs: List[str], mode: int, uid: int, gid: int) -> str:
    """The oneshot service that makes ``dirs`` (upper and work) on the fresh tmpfs, before the overlay mounts."""
    overlay_unit = _systemd.unit_name_for(overlay_path)
    words = " ".join(_exec_word(d) for d in dirs)
    return "\n".join([
        _systemd.MANAGED_MARKER,
        "[Unit]",
        "Description=Upper and work dirs of the volatile overlay at %s" % overlay_path.replace("%", "%%"),
        "DefaultDependencies=no",
        "RequiresMountsFor=%s" % _exec_word(tmpfs.path).replace("$$", "$"),
        "Before=%s" % overlay_unit,
        "Conflicts=umount.target",
        "Before=umount.target",
        "",
        "[Service]",
        "Type=oneshot",
        "RemainAfterExit=yes",
        "ExecStart=%s -d -m %04o -o %d -g %d %s" % (INSTALL, mode, uid, gid, words),
        "",
    ])


def render_mount_unit(overlay_path: str, tmpfs: UpperTmpfs, uid: int, gid: int, boot: bool = True) -> str:
    """The ``Type=tmpfs`` mount unit of a volatile upper (``persist: systemd``)."""
    lines = [
        _systemd.MANAGED_MARKER,
        "[Unit]",
        "Description=Volatile upper of the overlay at %s" % overlay_path.replace("%", "%%"),
        "",
        "[Mount]",
        "What=tmpfs",
        "Where=%s" % tmpfs.path.replace("%", "%%"),
        "Type=tmpfs",
        "Options=%s" % tmpfs.options(uid, gid),
        "",
    ]
    if boot:
        lines += ["[Install]", "WantedBy=local-fs.target", ""]
    return "\n".join(lines)


def fstab_line(tmpfs: UpperTmpfs, uid: int, gid: int, boot: bool = True) -> str:
    """The fstab line of a volatile upper's tmpfs (``persist: fstab``), marked as the collection's."""
    options = tmpfs.options(uid, gid).split(",") + [_fstab.MANAGED_OPTION]
    if not boot:
        options.insert(0, "noauto")
    return "tmpfs %s tmpfs %s 0 0" % (encode_octal(tmpfs.path), encode_octal(",".join(options)))


def _tmpfs_indexes(lines: List[Any], path: str, marked_only: bool) -> List[int]:
    found = []
    for number, line in enumerate(lines):
        entry = line.entry
        if entry is None or entry.vfstype != "tmpfs" or _fstab.normalize_mount_point(entry.file) != path:
            continue
        if marked_only and _fstab.MANAGED_OPTION not in entry.mntops.split(","):
            continue
        found.append(number)
    return found


def _is_overlay_at(entry: Any, overlay_path: str) -> bool:
    """Whether the fstab ``entry`` (None for a comment or blank line) is an overlay at ``overlay_path``."""
    return entry is not None and entry.vfstype == "overlay" and _fstab.normalize_mount_point(entry.file) == overlay_path


def edit_fstab(text: str, tmpfs_path: str, line: Optional[str], overlay_path: str) -> str:
    """``text`` with the tmpfs line for ``tmpfs_path`` set to ``line`` (None: its marked lines removed).

    A line already in place before the overlay's line (or with no overlay line)
    and equal to ``line`` stays; otherwise the tmpfs lines there go and ``line``
    is put just before the first overlay line of ``overlay_path`` (at the end
    when there is none): ``mount -a`` mounts in file order. Every other line
    stays as it is.
    """
    lines = _fstab.parse(text)
    mine = _tmpfs_indexes(lines, tmpfs_path, marked_only=line is None)
    overlay = next((n for n, l in enumerate(lines) if _is_overlay_at(l.entry, overlay_path)), None)
    if line is not None and len(mine) == 1 and lines[mine[0]].text == line and (overlay is None or mine[0] < overlay):
        return text
    if line is None and not mine:
        return text
    kept = [l for n, l in enumerate(lines) if n not in set(mine)]
    if line is None:
        if kept and lines and not lines[-1].ending and kept[-1].ending:
            kept[-1] = kept[-1]._replace(ending="")  # the file had no final newline: it keeps that convention
        return _fstab.render(kept)
    if overlay is None:
        return _fstab.render(_fstab.append_entry(kept, line))
    position = overlay - len([n for n in mine if n < overlay])
    ending = kept[position].ending or "\n"
    return _fstab.render(kept[:position] + [_fstab.make_line(line, ending)] + kept[position:])


def fstab_tmpfs(text: Optional[str], tmpfs_path: str) -> Optional[Dict[str, Any]]:
    """The tmpfs line for ``tmpfs_path`` in ``text``: ``{line, options, managed}`` (None: there is none)."""
    lines = _fstab.parse(text or "")
    found = _tmpfs_indexes(lines, tmpfs_path, marked_only=False)
    if not found:
        return None
    entry = lines[found[0]].entry
    options = entry.mntops.split(",")
    return {"line": entry.raw, "options": [o for o in options if o != _fstab.MANAGED_OPTION],
            "managed": _fstab.MANAGED_OPTION in options}


_REQUIRES = re.compile(r"^RequiresMountsFor=(.*)$", re.M)


def service_tmpfs(text: Optional[str]) -> Optional[str]:
    """The tmpfs mount point a dirs service written by the collection requires (None: no such service)."""
    if text is None or not _systemd.is_managed(text):
        return None
    match = _REQUIRES.search(text)
    if match is None:
        return None
    word = match.group(1).strip()
    if word.startswith('"') and word.endswith('"'):
        word = word[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return word.replace("%%", "%")


def mount_unit_options(text: Optional[str]) -> Optional[Tuple[str, List[str]]]:
    """``(Where=, [Options=])`` of a ``Type=tmpfs`` unit written by the collection (None: no such unit)."""
    if text is None or not _systemd.is_managed(text) or "\nType=tmpfs\n" not in text:
        return None
    where = re.search(r"^Where=(.*)$", text, re.M)
    options = re.search(r"^Options=(.*)$", text, re.M)
    return (where.group(1).replace("%%", "%") if where else "", options.group(1).split(",") if options else [])
