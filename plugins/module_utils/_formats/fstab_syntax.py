# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read, edit and write /etc/fstab overlay entries without touching the user's lines.

Pure text in, text out, no Ansible imports. :func:`parse` keeps every line
exactly as it was (comments, blank lines, spacing, tabs, CRLF endings, a last
line without a newline), so ``render(parse(text)) == text`` for any text, and
the editing functions only ever replace, drop or append whole lines.

An overlay line is read by two programs, and both must get the same paths:

* mount(8) / libmount (``mount -a``, ``findmnt``): decodes the octal escapes
  of each field, then splits the options on commas outside double quotes. It
  does not treat a backslash as an escape, but passes ``\\,`` on to the kernel
  intact, so a layer path's comma escaped for the kernel survives it.
* systemd-fstab-generator (every boot and daemon-reload on a systemd host):
  decodes the fields the same way, then splits the options on commas not
  preceded by a backslash and turns ``\\,`` into ``,`` and ``\\\\`` into
  ``\\``; it ignores double quotes. It copies the options into the unit's
  ``Options=`` (re-escaping commas only) and each
  ``x-systemd.requires-mounts-for=`` value into ``RequiresMountsFor=``, where
  whitespace separates paths unless they are quoted.

Measured on util-linux 2.38.1 / systemd 252, what follows from that:

* A backslash in a layer path cannot be written for both: libmount passes
  ``\\\\`` to the kernel (which reads one ``\\``), the generator turns it into
  ``\\`` (which the kernel drops). Such paths are refused; a systemd mount unit
  (see ``_formats.unit_syntax``) carries them fine.
* A double quote in a layer path makes mount(8) fail; refused.
* A line break cannot be carried by the generated unit; refused everywhere.
  Nor can a mount point that ends in whitespace or a backslash (the
  generator writes it as ``Where=``, see :func:`check_unit_value`).
* ``x-systemd.requires-mounts-for=`` values with whitespace, a comma or a
  single quote are written double-quoted with ``\\,`` for the comma: libmount
  then keeps the option whole, and the generator writes
  ``RequiresMountsFor="/a,b c"``, which systemd reads as one path.
* ``%`` needs nothing here: the generator escapes specifiers itself.
"""

import posixpath
import re
from collections import namedtuple
from typing import Any, List, Optional, Sequence, Tuple

from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.facts import HostFacts
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.layers import requires_mounts_for
from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.escape import (
    decode_octal,
    encode_octal,
)
from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.mount_data import (
    OVERLAY_OPTION_NAMES,
    REQUIRES_MOUNTS_FOR,
    Rendered,
    check_path,
    check_single_option,
    format_mount_options,
    requires_mounts_for_option,
)
from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.unit_syntax import check_unit_value

# A userspace mount option (libmount and systemd pass x-* options by, the kernel
# never sees them) that marks an fstab line written by this collection, as
# _systemd.MANAGED_MARKER marks a unit.
MANAGED_OPTION = "x-overlayfs.managed"

# What libmount lists in ``mount -V`` when it mounts through the new mount API
# (fsopen/fsconfig/fsmount; util-linux 2.39 and later, when built with it).
FSCONFIG_FEATURE = "fd-based-mount"
_LIBMOUNT_FEATURES = re.compile(r"\(libmount [^:()]*:([^()]*)\)")


# libmount separates fields with blanks only (a \v or \f is part of a field)
# and ignores blanks, and a CR, at both ends of a line.
_FIELD_SEPARATOR = re.compile(r"[ \t]+")
_LINE_BLANKS = " \t\r"
_NUMBER = re.compile(r"^[+-]?[0-9]+$")

FstabEntry = namedtuple("FstabEntry", ["spec", "file", "vfstype", "mntops", "freq", "passno", "raw"])
FstabEntry.__doc__ = """One mount line: decoded fields, and ``raw``, the line as written."""

FstabLine = namedtuple("FstabLine", ["text", "ending", "entry"])
FstabLine.__doc__ = """One line: ``text`` without its ``ending`` ('\\n', '\\r\\n', or '' at
the end of a file without a final newline); ``entry`` is an FstabEntry, or None
for a comment, a blank line or a line libmount would reject."""


_PARSED = {}


def parse(text: str) -> List[FstabLine]:
    """Split an fstab text into FstabLine objects; :func:`render` joins them back exactly.

    The lines are immutable and the list is never changed in place (callers
    must not change it either), so the result for one text is kept and
    shared: a batch of overlays reads the same fstab many times, and the
    index :func:`find_entries` builds for a list is kept with it.

    For a byte-exact file, read it with ``newline=""`` (Python's default
    newline handling would turn CRLF into LF) and ``errors="surrogateescape"``,
    and write it back the same way.
    """
    lines = _PARSED.get(text)
    if lines is None:
        if len(_PARSED) > 8:
            _PARSED.clear()
        lines = _PARSED[text] = _parse_lines(text)
    return lines


def _parse_lines(text):
    pieces = text.split("\n")
    last = pieces.pop()  # "" when the text ends with a newline
    lines = []
    for piece in pieces:
        if piece.endswith("\r"):
            lines.append(_line(piece[:-1], "\r\n"))
        else:
            lines.append(_line(piece, "\n"))
    if last:
        lines.append(_line(last, ""))
    return lines


def render(lines: Sequence[FstabLine]) -> str:
    """The text of ``lines``, byte for byte what :func:`parse` read.

    The lines are kept as the parse of that text: the text is what the
    next :func:`parse` of the file written from it (by the next overlay of a
    batch) reads back.
    """
    text = "".join([line.text + line.ending for line in lines])
    # A line ending in a bare CR reads back differently (as a CRLF line): parse that text anew.
    if text not in _PARSED and not any(line.text.endswith("\r") for line in lines):
        if len(_PARSED) > 8:
            _PARSED.clear()
        _PARSED[text] = lines if isinstance(lines, list) else list(lines)
    return text


_ENTRIES = {}


def make_line(text: str, ending: Optional[str]) -> FstabLine:
    """One FstabLine for ``text`` (no line break in it) and ``ending``; its entry parsed as :func:`parse` does."""
    return _line(text, ending)


def _line(text, ending):
    if "\n" in text:
        raise OverlayError("an fstab line cannot contain a line break: %r" % text)
    entry = _ENTRIES.get(text)
    if entry is None:
        if len(_ENTRIES) > 100000:
            _ENTRIES.clear()
        entry = _ENTRIES[text] = (_parse_entry(text),)
    return FstabLine(text, ending, entry[0])


def _parse_entry(text):
    """The entry on one line, or None where libmount sees none (or a parse error)."""
    stripped = text.strip(_LINE_BLANKS)
    if not stripped or stripped.startswith("#"):
        return None
    fields = _FIELD_SEPARATOR.split(stripped)
    # libmount reads six fields and ignores anything after them.
    numbers = fields[4:6]
    if len(fields) < 3 or not all(_NUMBER.match(number) for number in numbers):
        return None
    freq, passno = ([int(number) for number in numbers] + [0, 0])[:2]
    # fstab(5): a missing options field means the defaults.
    mntops = decode_octal(fields[3]) if len(fields) > 3 else "defaults"
    return FstabEntry(
        decode_octal(fields[0]), decode_octal(fields[1]), decode_octal(fields[2]),
        mntops, freq, passno, text)


_NORMALIZED = {}


def normalize_mount_point(path: str) -> str:
    """``path`` with repeated and trailing slashes and ``.``/``..`` steps folded."""
    if not path:
        return path
    found = _NORMALIZED.get(path)
    if found is None:
        if len(_NORMALIZED) > 100000:
            _NORMALIZED.clear()
        found = _NORMALIZED[path] = posixpath.normpath(re.sub("/+", "/", path))
    return found


_INDEXES = {}


def _index(lines):
    """``{normalised mount point: [line indexes]}`` of ``lines``, built once per list.

    Kept (with the list, so that its id stays its own) for the last few
    lists: one fstab text is looked up several times per overlay.
    """
    cached = _INDEXES.get(id(lines))
    if cached is not None and cached[0] is lines:
        return cached[1]
    index = {}
    for number, line in enumerate(lines):
        if line.entry is not None:
            index.setdefault(normalize_mount_point(line.entry.file), []).append(number)
    _keep_index(lines, index)
    return index


def _keep_index(lines, index):
    if len(_INDEXES) > 16:
        _INDEXES.clear()
    _INDEXES[id(lines)] = (lines, index)


def _matching_indexes(lines, mount_point, vfstype):
    found = _index(lines).get(normalize_mount_point(mount_point), ())
    return [number for number in found if vfstype in (None, lines[number].entry.vfstype)]


def find_entries(lines: Sequence[FstabLine], mount_point: str, vfstype: Optional[str] = "overlay") -> List[FstabEntry]:
    """Entries for ``mount_point`` (compared normalised) in file order.

    ``vfstype=None`` finds entries of any type, e.g. to spot a conflicting one.
    """
    return [lines[index].entry for index in _matching_indexes(lines, mount_point, vfstype)]


def replace_entry(lines: Sequence[FstabLine], mount_point: str, text: str,
                  vfstype: Optional[str] = "overlay") -> Tuple[List[FstabLine], int]:
    """Put ``text`` in place of the first entry for ``mount_point``; drop the others.

    The replaced line keeps its position and line ending. Returns
    ``(new_lines, duplicates_removed)``; raises OverlayError if there is no
    such entry.
    """
    indexes = _matching_indexes(lines, mount_point, vfstype)
    if not indexes:
        raise OverlayError("fstab has no %s for %s to replace"
                           % ("%s entry" % vfstype if vfstype else "entry", mount_point))
    first, duplicates = indexes[0], set(indexes[1:])
    result = []
    for index, line in enumerate(lines):
        if index == first:
            result.append(_line(text, line.ending))
        elif index not in duplicates:
            result.append(line)
    return result, len(duplicates)


def edit_entry(text: str, options: Optional[Sequence[str]] = None) -> str:
    """The entry line ``text`` with its options set to ``options`` and its freq and passno set to 0.

    ``options`` are decoded options, one per item (None: the field as it
    is); they are joined with commas and octal-escaped as :func:`render_entry`
    writes a field. Every other byte of the line stays: the other fields as
    written (the source, the mount point's spelling), the blanks between
    them, anything after the sixth field. A missing freq or passno already
    means 0 and stays missing. Raises OverlayError for a line that is no
    entry (fewer than three fields).
    """
    lead = len(text) - len(text.lstrip(_LINE_BLANKS))
    stripped = text.strip(_LINE_BLANKS)
    tail = text[lead + len(stripped):]
    parts = re.split(r"([ \t]+)", stripped)  # fields at even indexes, the blanks between them at odd ones
    if len(parts) < 5:
        raise OverlayError("fstab: %r is not an entry line (fewer than three fields)" % text)
    if options is not None:
        field = encode_octal(",".join(options)) or "defaults"
        if len(parts) > 6:
            parts[6] = field
        else:
            parts += [" ", field]
    for index in (8, 10):  # freq, passno
        if len(parts) > index and _NUMBER.match(parts[index]) and int(parts[index]):
            parts[index] = "0"
    return text[:lead] + "".join(parts) + tail


def append_entry(lines: Sequence[FstabLine], text: str) -> List[FstabLine]:
    """``lines`` with ``text`` added as a new last line.

    The new line takes the file's convention: it ends with the file's own line
    ending (that of its last terminated line; ``\n`` for a new file), or with
    none when the file did not end with a newline, in which case the old last
    line gets the ending so that it stays intact.
    """
    ending = next((line.ending for line in reversed(lines) if line.ending), "\n")
    result = list(lines)
    last_ending = ending
    if result and not result[-1].ending:
        result[-1] = result[-1]._replace(ending=ending)
        last_ending = ""
    result.append(_line(text, last_ending))
    cached = _INDEXES.get(id(lines))
    if cached is not None and cached[0] is lines and result[-1].entry is not None:
        # The old index and one more line: no need to read every line again.
        index = dict(cached[1])
        point = normalize_mount_point(result[-1].entry.file)
        index[point] = index.get(point, []) + [len(result) - 1]
        _keep_index(result, index)
    return result


def set_entry(lines: Sequence[FstabLine], mount_point: str, text: str,
              vfstype: Optional[str] = "overlay") -> Tuple[List[FstabLine], int]:
    """Replace the entry for ``mount_point`` (collapsing duplicates) or append one.

    Returns ``(new_lines, duplicates_removed)``.
    """
    if _matching_indexes(lines, mount_point, vfstype):
        return replace_entry(lines, mount_point, text, vfstype)
    return append_entry(lines, text), 0


def remove_entries(lines: Sequence[FstabLine], mount_point: str,
                   vfstype: Optional[str] = "overlay") -> Tuple[List[FstabLine], int]:
    """Drop every entry for ``mount_point``; return ``(new_lines, removed_count)``.

    When the file's last line goes and it had no line ending, the new last
    line loses its ending too, so the file keeps its convention.
    """
    indexes = set(_matching_indexes(lines, mount_point, vfstype))
    result = [line for index, line in enumerate(lines) if index not in indexes]
    if lines and result and not lines[-1].ending and result[-1].ending:
        # Take back the ending append_entry gave it: the file's convention,
        # so a bare CR that ended the file ("...\r" + "\n") stays.
        convention = next((line.ending for line in reversed(result[:-1]) if line.ending), "\n")
        ending = result[-1].ending
        ending = ending[:-len(convention)] if ending.endswith(convention) else ""
        result[-1] = result[-1]._replace(ending=ending)
    return result, len(indexes)


# Keys that name a layer, upper or work dir: only the module's own parameters set them.
LAYER_KEYS = ("lowerdir", "lowerdir+", "datadir+", "upperdir", "workdir")


def check_boot_option(option: str, field: str = "boot_options") -> None:
    """Refuse a boot option that would not stay one option, or that sets a layer.

    A stray double quote or a trailing backslash joins the option with the
    ones written after it (the collection's marker and the
    requires-mounts-for list), so the line would look unmanaged and its
    mounts come up out of order.
    """
    name = option.partition("=")[0]
    if name in LAYER_KEYS:
        raise OverlayError(
            "%s: %r sets a layer path; layers, upper and work dir are set by lowerdir, datadir, "
            "upperdir and workdir only: remove it from %s" % (field, option, field))
    if name in OVERLAY_OPTION_NAMES:
        raise OverlayError(
            "%s: %r is an overlay option; give it in options, not %s" % (field, option, field))
    if name == REQUIRES_MOUNTS_FOR:
        raise OverlayError(
            "%s: %r is written by this collection for every layer, upper and work dir; "
            "remove it from %s" % (field, option, field))
    if _open_quote_count(option) % 2:
        raise OverlayError(
            "%s: %r has an unbalanced double quote, which would swallow the options written "
            "after it; close the quote or remove it" % (field, option))
    if (len(option) - len(option.rstrip("\\"))) % 2:
        raise OverlayError(
            "%s: %r ends with a backslash, which would join it with the next option; remove "
            "the backslash" % (field, option))
    check_single_option(field, option)


def _open_quote_count(option):
    return option.replace('\\"', "").count('"')


def mount_uses_fsconfig(version_output: Optional[str]) -> Optional[bool]:
    """Whether the mount(8) that printed ``version_output`` (``mount -V``) uses fsconfig().

    libmount lists its build features after its version, e.g. ``mount from
    util-linux 2.41 (libmount 2.41.0: selinux, ..., fd-based-mount, ...)``;
    ``fd-based-mount`` means it mounts through the new mount API, one
    fsconfig() call per option, each value at most :data:`VALUE_MAX` bytes.
    None when the output has no feature list (another mount(8)).
    """
    match = _LIBMOUNT_FEATURES.search(version_output or "")
    if match is None:
        return None
    return FSCONFIG_FEATURE in [feature.strip() for feature in match.group(1).split(",")]


def render_entry(overlay: Any, facts: Optional[HostFacts] = None, extra_options: Sequence[str] = (),
                 freq: int = 0, passno: int = 0) -> Rendered:
    """One fstab line (no line ending) for ``overlay`` (a declaration), and its notes.

    ``overlay <path> overlay <options> <freq> <passno>``, where the options are
    :func:`format_mount_options` followed by one ``x-systemd.requires-mounts-for=``
    per lower, data, upper and work dir, so that systemd mounts whatever holds
    them first. Fields are octal-escaped (space, tab, newline, backslash).

    Paths that cannot be written so that both mount(8) and
    systemd-fstab-generator read them back unchanged raise OverlayError: a
    backslash, double quote or line break in a layer, upper or work path, and
    in ``path`` a line break, or whitespace or a backslash at the end (see the
    module docstring).
    """
    path = overlay.path
    check_path("path", path)
    check_unit_value("path", path)
    mntops, notes = format_mount_options(overlay, facts, extra_options)
    for field, layer in overlay.named_dirs():
        if "\\" in layer:
            raise OverlayError(
                "%s: %r contains a backslash; systemd-fstab-generator turns '\\\\' into '\\' in "
                "fstab options, so the overlay would get a different path at boot: use a systemd "
                "mount unit instead, or rename the directory" % (field, layer))
    required = requires_mounts_for(overlay.lowerdir, overlay.upperdir, overlay.workdir, overlay.datadir,
                                   overlay.also_needs)
    mntops = ",".join([mntops] + [requires_mounts_for_option(p) for p in required])
    return Rendered(" ".join(encode_octal(field) for field in
                             ("overlay", path, "overlay", mntops, str(int(freq)), str(int(passno)))), notes)
