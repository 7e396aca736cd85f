# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Name, render and read the systemd .mount unit of an overlay.

Pure text in, text out, no Ansible imports. What a unit file line can carry,
as systemd 252 reads it (checked with ``systemd-analyze verify``):

* Every value is stripped of surrounding whitespace, ``%`` starts a specifier
  (so a literal ``%`` is written ``%%``), and a line that ends in an odd
  number of backslashes continues on the next line. A value that would end in
  whitespace or a lone backslash, or that holds a line break, is refused
  (``:func:`check_unit_value```).
* ``Where=`` and ``Options=`` take the rest of the line literally (no quotes,
  no C escapes); systemd hands ``Options=`` to mount(8) as ``-o``, so it has
  fstab's option syntax (see ``_formats.mount_data.format_mount_options``), and backslashes
  in layer paths work here, unlike in fstab.
* ``RequiresMountsFor=`` is a list of words: whitespace separates them, and
  single or double quotes and backslashes are special. A path with any of
  those is double-quoted, with ``\\`` and ``"`` backslash-escaped inside;
  ``_formats.mount_data.split_unit_words`` reads it back.
"""

import string
import struct
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.facts import HostFacts
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.layers import requires_mounts_for
from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.siphash import siphash24
from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.unit_file import Effective, effective
from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.mount_data import (
    Rendered,
    format_mount_options,
    parse_overlay_options,
)

MANAGED_MARKER = "# Managed by overlayfs.mounts"

# systemd's UNIT_NAME_MAX is 256 bytes including the NUL; a longer name is
# not even a valid file name, so systemd hashes it (unit_name_hash_long).
UNIT_NAME_MAX = 255
# unit_name_hash_long's fixed key (LONG_UNIT_NAME_HASH_KEY in src/basic/unit-name.c).
_LONG_NAME_KEY = bytes(bytearray((0xEC, 0xF2, 0x37, 0xFB, 0x58, 0x32, 0x4A, 0x32,
                                  0x84, 0x9F, 0x06, 0x9B, 0x0D, 0x21, 0xEB, 0x9A)))
_HASH_CHARS = 16
_NAME_MAX = 255  # one path component, as systemd's path_is_valid checks

_UNESCAPED_BYTES = frozenset(bytearray((string.ascii_letters + string.digits + ":_.").encode("ascii")))
_WORD_SPECIALS = frozenset(" \t\"'\\")
_WHITESPACE = " \t\r"  # what systemd strips around keys and values (line breaks aside)


def check_unit_value(field: str, value: str) -> None:
    """Refuse a value a systemd unit file line cannot carry as it is.

    systemd strips whitespace around a value, reads a line that ends in an odd
    number of backslashes as continued on the next one, and ends a line at a
    CR or LF. The generator writes an fstab mount point as ``Where=``, so the
    same rules hold for it.
    """
    if "\n" in value or "\r" in value:
        raise OverlayError("%s: %r contains a line break, which a unit file cannot carry" % (field, value))
    if value != value.strip(" \t"):
        raise OverlayError(
            "%s: %r starts or ends with whitespace, which systemd strips from unit file values"
            % (field, value))
    if (len(value) - len(value.rstrip("\\"))) % 2:
        raise OverlayError(
            "%s: %r ends with a backslash, which systemd reads as a line continuation"
            % (field, value))


def _path_components(path):
    """The components of ``path`` after systemd's path_simplify; refuses what it refuses."""
    if not isinstance(path, str) or not path.startswith("/"):
        raise OverlayError("path: %r is not an absolute path; a mount unit needs one" % (path,))
    components = [c for c in path.split("/") if c not in ("", ".")]
    if ".." in components:
        raise OverlayError("path: %r contains '..'; give the path without it" % path)
    for component in components:
        if len(component.encode("utf-8", "surrogateescape")) > _NAME_MAX:
            raise OverlayError(
                "path: %r has a component longer than %d bytes, which no file system allows"
                % (path, _NAME_MAX))
    return components


def escape_path(path: str) -> str:
    """What ``systemd-escape --path PATH`` prints.

    Repeated and trailing slashes and ``.`` components go; ``/`` becomes ``-``;
    every byte of the UTF-8 form outside ``[A-Za-z0-9:_.]``, and a leading
    ``.``, becomes ``\\xNN``; the root is ``-``. Unlike systemd-escape, which
    only warns, a relative path is refused.
    """
    components = _path_components(path)
    if not components:
        return "-"
    raw = bytearray("/".join(components).encode("utf-8", "surrogateescape"))
    out = []
    for position, byte in enumerate(raw):
        if byte == 0x2F:  # "/"
            out.append("-")
        elif byte in _UNESCAPED_BYTES and not (position == 0 and byte == 0x2E):  # leading "."
            out.append(chr(byte))
        else:
            out.append("\\x%02x" % byte)
    return "".join(out)


def unit_name_for(path: str) -> str:
    """The only name systemd accepts for the mount unit of ``path``, e.g. ``srv-my\\x20dir.mount``.

    Past :data:`UNIT_NAME_MAX` bytes the escaped name is hashed as systemd
    hashes it (:func:`hash_long_name`), so a long mount point still has one
    unit name, the one systemd and its fstab generator use.
    """
    name = escape_path(path) + ".mount"
    if len(name) > UNIT_NAME_MAX:
        return hash_long_name(name)
    return name


def hash_long_name(name: str) -> str:
    """systemd's ``unit_name_hash_long``: a unit name past :data:`UNIT_NAME_MAX` bytes made to fit.

    The name is cut to leave room for ``_``, 16 hex digits and its suffix;
    the digits are the SipHash-2-4 of the whole name and its NUL under a
    fixed key, as the hex of its little-endian bytes. The cut is by bytes,
    even inside a ``\\xNN`` escape, as systemd cuts. Shorter names are
    returned as they are.
    """
    if len(name) <= UNIT_NAME_MAX:
        return name
    stem, dot, suffix = name.rpartition(".")
    if not dot:
        raise OverlayError("unit name %r has no suffix (.mount)" % name)
    digest = struct.pack("<Q", siphash24(_LONG_NAME_KEY, name.encode("ascii") + b"\0")).hex()
    keep = UNIT_NAME_MAX - len(suffix) - _HASH_CHARS - 2  # "_" and "."
    return "%s_%s.%s" % (stem[:keep], digest, suffix)


def is_hashed_name(name: str) -> bool:
    """True when ``name`` has the shape :func:`hash_long_name` gives (it no longer spells the path)."""
    stem, _dot, _suffix = name.rpartition(".")
    tail = stem[-_HASH_CHARS - 1:]
    return len(tail) == _HASH_CHARS + 1 and tail[0] == "_" and all(c in "0123456789abcdef" for c in tail[1:])


def _unit_value(key, value):
    """``value`` ready to follow ``key=`` on a unit file line."""
    check_unit_value(key + "=", value)
    return value.replace("%", "%%")


def _unit_word(path):
    """``path`` as one word of a list setting such as RequiresMountsFor=."""
    if any(c in _WORD_SPECIALS for c in path):
        path = '"%s"' % path.replace("\\", "\\\\").replace('"', '\\"')
    return path.replace("%", "%%")


def render_unit(overlay: Any, facts: Optional[HostFacts] = None, extra_options: Sequence[str] = (),
                description: Optional[str] = None, working_directory: Optional[str] = None,
                requires: Optional[Sequence[str]] = None,
                settings: Optional[Mapping[str, Mapping[str, str]]] = None) -> Rendered:
    """The text of the .mount unit that mounts ``overlay`` (a declaration), and its notes.

    Write it as :func:`unit_name_for` ``(overlay.path)``. ``Where=`` is the
    path simplified the way systemd simplifies it; ``Options=`` is
    ``mount_data.format_mount_options`` of the overlay, ``facts`` and
    ``extra_options``; one
    ``RequiresMountsFor=`` line per lower, data, upper and work dir orders the
    mount after whatever holds them (``requires`` replaces that list).
    With ``working_directory``, the layers may be names relative to it (short
    links), and the unit runs mount(8) there. Raises OverlayError for what a
    unit file cannot carry (see the module docstring).
    """
    where = "/" + "/".join(_path_components(overlay.path))  # refuses what systemd would not take as Where=
    # Where= and Options= first: their errors name the real problem, while the
    # default description would only repeat the path.
    where_value = _unit_value("Where", where)
    options, notes = format_mount_options(overlay, facts, extra_options, relative_layers=working_directory is not None)
    options_value = _unit_value("Options", options)
    settings = settings or {}
    unit = dict(settings.get("Unit") or {})
    declared = unit.pop("Description", None)  # a unit file value already
    if description is not None or declared is None:
        declared = _unit_value("Description", description or "Overlay mount at %s" % where)
    lines = [MANAGED_MARKER, "[Unit]", "Description=" + _setting_lines({"Description": declared})[0].split("=", 1)[1]]
    if requires is None:
        requires = requires_mounts_for(overlay.lowerdir, overlay.upperdir, overlay.workdir, overlay.datadir,
                                       overlay.also_needs)
    lines += ["RequiresMountsFor=" + _unit_word(p) for p in requires]
    lines += _setting_lines(unit)
    lines += [
        "",
        "[Mount]",
        "What=overlay",
        "Where=" + where_value,
        "Type=overlay",
        "Options=" + options_value,
    ]
    if working_directory is not None:
        # mount(8) resolves relative layer names against its working directory.
        lines.append("WorkingDirectory=" + _unit_value("WorkingDirectory", working_directory))
    lines += _setting_lines(settings.get("Mount") or {})
    install = settings.get("Install")
    if install is None:
        install = {"WantedBy": "local-fs.target"}
    if install:
        lines += ["", "[Install]"] + _setting_lines(install)
    return Rendered("\n".join(lines) + "\n", notes)


def _setting_lines(section: Mapping[str, str]) -> List[str]:
    """``Key=value`` lines of settings already in unit file form (``%`` written ``%%``, words quoted)."""
    for key, value in section.items():
        check_unit_value(key + "=", value)
    return ["%s=%s" % (key, value) for key, value in section.items()]


def render_automount(where: str, settings: Optional[Mapping[str, Mapping[str, str]]] = None,
                     description: Optional[str] = None) -> str:
    """The text of the .automount unit that mounts the overlay at ``where`` on first access.

    ``settings``: its ``Automount`` settings (``TimeoutIdleSec``,
    ``DirectoryMode``, ...) and ``Install`` targets (default
    ``WantedBy=local-fs.target``), as unit file values; ``Unit`` settings
    other than ``Description`` stay with the mount unit.
    """
    where = "/" + "/".join(_path_components(where))
    settings = settings or {}
    lines = [MANAGED_MARKER, "[Unit]",
             "Description=" + _unit_value("Description", description or "Automount of the overlay at %s" % where),
             "", "[Automount]", "Where=" + _unit_value("Where", where)]
    lines += _setting_lines(settings.get("Automount") or {})
    install = settings.get("Install") or {"WantedBy": "local-fs.target"}
    lines += ["", "[Install]"] + _setting_lines(install)
    return "\n".join(lines) + "\n"


def parse_unit(text: str, files: Optional[Sequence[Tuple[str, str]]] = None,
               problems: Optional[List[str]] = None) -> Dict[str, Any]:
    """Read a .mount unit back into the arguments :func:`render_unit` took.

    Returns a dict with ``managed`` (the first line of ``text`` is
    :data:`MANAGED_MARKER`), ``description``, ``what``, ``where``, ``type``
    (None when absent), the keys of ``_formats.mount_data.parse_overlay_options``
    for ``Options=``, with ``requires_mounts_for`` taken from
    ``RequiresMountsFor=`` and then from any ``x-systemd.requires-mounts-for``
    in Options= (systemd-fstab-generator writes both), each path once, and
    ``wanted_by``. The files are read as systemd reads them
    (``_formats.unit_file.effective``): ``files`` (``[(path, text)]``, the
    main file ``text`` first, then its drop-ins) give the effective unit.
    ``%%`` is read as ``%``; other specifiers are left as they are. A line
    where systemd stops reading a file ends it; its message goes to
    ``problems`` when given, else OverlayError is raised.
    """
    return unit_fields(effective(files if files is not None else [("", text)], problems=problems), text)


def is_managed(text: str) -> bool:
    """True when a unit file's first line is :data:`MANAGED_MARKER` (this collection wrote it)."""
    return text.split("\n", 1)[0].rstrip(_WHITESPACE) == MANAGED_MARKER


def unit_fields(found: Effective, text: str) -> Dict[str, Any]:
    """:func:`parse_unit`'s fields of an effective unit (``found``) whose main file is ``text``."""
    def value(section, key):
        raw = (found.settings.get(section) or {}).get(key)
        return raw.replace("%%", "%") if raw is not None else None

    result = {
        "managed": is_managed(text),
        "description": value("Unit", "Description"),
        "what": value("Mount", "What"),
        "where": value("Mount", "Where"),
        "type": value("Mount", "Type"),
        "working_directory": value("Mount", "WorkingDirectory"),
        "wanted_by": found.values("Install", "WantedBy"),
    }
    result.update(parse_overlay_options(value("Mount", "Options") or ""))
    # systemd keeps these as a set: a path named in both places counts once.
    required = [path.replace("%%", "%") for path in found.values("Unit", "RequiresMountsFor")]
    result["requires_mounts_for"] = list(dict.fromkeys(required + result["requires_mounts_for"]))
    return result
