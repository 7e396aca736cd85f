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
  (see ``_systemd``) carries them fine.
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

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import posixpath
import re
import shlex
from collections import namedtuple

from ansible_collections.overlayfs.mounts.plugins.module_utils._errors import OverlayError
from ansible_collections.overlayfs.mounts.plugins.module_utils._escape import (
    decode_octal,
    encode_octal,
    escape_layer,
    join_layers,
    split_layers,
    split_options,
    unescape_layer,
)
from ansible_collections.overlayfs.mounts.plugins.module_utils._options import OPTION_VALUES

REQUIRES_MOUNTS_FOR = "x-systemd.requires-mounts-for"

# Legacy mount(2), which util-linux 2.38 uses, copies one page of option data
# (NUL included) and silently drops the rest: layers, upper and work included.
MOUNT_DATA_MAX = 4095

# util-linux 2.39+ hands each option to fsconfig(), which copies at most 256
# bytes of a value, NUL included.
VALUE_MAX = 255

# What libmount lists in ``mount -V`` when it mounts through the new mount API
# (fsopen/fsconfig/fsmount; util-linux 2.39 and later, when built with it).
FSCONFIG_FEATURE = "fd-based-mount"
_LIBMOUNT_FEATURES = re.compile(r"\(libmount [^:()]*:([^()]*)\)")

_OVERLAY_OPTION_NAMES = frozenset(name for name, _values in OPTION_VALUES)
_PATH_KEYS = ("lowerdir", "upperdir", "workdir")

# libmount separates fields with blanks only (a \v or \f is part of a field)
# and ignores blanks, and a CR, at both ends of a line.
_FIELD_SEPARATOR = re.compile(r"[ \t]+")
_LINE_BLANKS = " \t\r"
_NUMBER = re.compile(r"^[+-]?[0-9]+$")

# Escapes the generator consumes in an option value before using it.
_GENERATOR_ESCAPE = re.compile(r"\\([,\\])")

FstabEntry = namedtuple("FstabEntry", ["spec", "file", "vfstype", "mntops", "freq", "passno", "raw"])
FstabEntry.__doc__ = """One mount line: decoded fields, and ``raw``, the line as written."""

FstabLine = namedtuple("FstabLine", ["text", "ending", "entry"])
FstabLine.__doc__ = """One line: ``text`` without its ``ending`` ('\\n', '\\r\\n', or '' at
the end of a file without a final newline); ``entry`` is an FstabEntry, or None
for a comment, a blank line or a line libmount would reject."""


_PARSED = {}


def parse(text):
    """Split an fstab text into FstabLine objects; :func:`render` joins them back exactly.

    The lines are immutable and the list is never changed in place by this
    module, so the result for one text is kept and shared: a batch of
    overlays reads the same fstab many times.

    For a byte-exact file, read it with ``newline=""`` (Python's default
    newline handling would turn CRLF into LF) and ``errors="surrogateescape"``,
    and write it back the same way.
    """
    lines = _PARSED.get(text)
    if lines is None:
        if len(_PARSED) > 8:
            _PARSED.clear()
        lines = _PARSED[text] = _parse_lines(text)
    return list(lines)


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


def render(lines):
    """The text of ``lines``, byte for byte what :func:`parse` read."""
    return "".join(line.text + line.ending for line in lines)


def _line(text, ending):
    if "\n" in text:
        raise OverlayError("an fstab line cannot contain a line break: %r" % text)
    return FstabLine(text, ending, _parse_entry(text))


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


def normalize_mount_point(path):
    """``path`` with repeated and trailing slashes and ``.``/``..`` steps folded."""
    if not path:
        return path
    return posixpath.normpath(re.sub("/+", "/", path))


def _matching_indexes(lines, mount_point, vfstype):
    wanted = normalize_mount_point(mount_point)
    return [
        index for index, line in enumerate(lines)
        if line.entry is not None
        and (vfstype is None or line.entry.vfstype == vfstype)
        and normalize_mount_point(line.entry.file) == wanted
    ]


def find_entries(lines, mount_point, vfstype="overlay"):
    """Entries for ``mount_point`` (compared normalised) in file order.

    ``vfstype=None`` finds entries of any type, e.g. to spot a conflicting one.
    """
    return [lines[index].entry for index in _matching_indexes(lines, mount_point, vfstype)]


def replace_entry(lines, mount_point, text, vfstype="overlay"):
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


def append_entry(lines, text):
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
    return result


def set_entry(lines, mount_point, text, vfstype="overlay"):
    """Replace the entry for ``mount_point`` (collapsing duplicates) or append one.

    Returns ``(new_lines, duplicates_removed)``.
    """
    if _matching_indexes(lines, mount_point, vfstype):
        return replace_entry(lines, mount_point, text, vfstype)
    return append_entry(lines, text), 0


def remove_entries(lines, mount_point, vfstype="overlay"):
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


def _check_path(field, path, relative_ok=False):
    """Checks every overlay path needs, in fstab and in a unit file alike."""
    if not isinstance(path, str) or not (path.startswith("/") or (relative_ok and path)):
        raise OverlayError("%s: %r is not an absolute path" % (field, path))
    if "\n" in path or "\r" in path:
        raise OverlayError(
            "%s: %r contains a line break, which neither fstab (through "
            "systemd-fstab-generator) nor a unit file can carry: rename the directory"
            % (field, path))


def check_unit_value(field, value):
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


# Option names libmount takes for itself (VFS flags, userspace options) and
# removes from what it passes on to the kernel. A path piece after a comma
# that looks like one of them, or like x-*/X-* or name=value, is taken out of
# the layer path by mount(8): the line passes findmnt --verify but never mounts.
_LIBMOUNT_OPTION_NAMES = frozenset((
    "ro", "rw", "exec", "noexec", "suid", "nosuid", "dev", "nodev", "sync", "async", "dirsync",
    "remount", "bind", "rbind", "move", "mand", "nomand", "atime", "noatime", "iversion",
    "noiversion", "diratime", "nodiratime", "relatime", "norelatime", "strictatime",
    "nostrictatime", "lazytime", "nolazytime", "symfollow", "nosymfollow", "silent", "loud",
    "unbindable", "runbindable", "private", "rprivate", "slave", "rslave", "shared", "rshared",
    "defaults", "auto", "noauto", "user", "nouser", "users", "nousers", "owner", "noowner",
    "group", "nogroup", "_netdev", "nofail", "loop", "offset", "sizelimit", "encryption",
    "comment", "uhelper", "helper", "seclabel", "context", "fscontext", "defcontext", "rootcontext",
))


def check_comma_pieces(field, path):
    """Refuse a path whose comma-separated pieces mount(8) would read as its own options.

    mount(8) splits the option string at every comma (a backslash does not
    protect it), keeps the pieces it knows, and joins the others back for the
    kernel. A path piece such as ``x-y``, ``ro`` or ``comment=z`` is taken out,
    and the kernel gets a broken path: the line cannot be mounted at boot.
    """
    if "," not in path:
        return
    for piece in path.split(",")[1:]:
        name = piece.partition("=")[0]
        if (not piece or "=" in piece or name.lower().startswith("x-")
                or name in _LIBMOUNT_OPTION_NAMES):
            raise OverlayError(
                "%s: %r has the piece %r after a comma, which mount(8) would take as a mount "
                "option of its own (it splits options at every comma): the persisted overlay "
                "could not be mounted at boot. Rename the directory (no comma, or a comma "
                "followed by a plain name), or use persist: none" % (field, path, piece))


# Keys that name a layer, upper or work dir: only the module's own parameters set them.
LAYER_KEYS = ("lowerdir", "lowerdir+", "datadir+", "upperdir", "workdir")


def check_boot_option(option, field="boot_options"):
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
    if name in _OVERLAY_OPTION_NAMES:
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
    _check_single_option(field, option)


def _open_quote_count(option):
    return option.replace('\\"', "").count('"')


def _check_single_option(field, option):
    """Refuse an option that would parse back as something else (or inject options)."""
    if not isinstance(option, str) or split_options(option) != [option] or "\n" in option:
        raise OverlayError(
            "%s: %r is not one mount option; give each option as its own list item, "
            "without a comma outside double quotes" % (field, option))


def named_layers(lowerdir, upperdir=None, workdir=None, datadir=()):
    """``[(field, path)]`` for every layer, upper and work dir, top layer first."""
    named = [("lowerdir[%d]" % i, p) for i, p in enumerate(lowerdir)]
    named += [("datadir[%d]" % i, p) for i, p in enumerate(datadir)]
    named += [(field, p) for field, p in (("upperdir", upperdir), ("workdir", workdir)) if p is not None]
    return named


def requires_mounts_for(lowerdir, upperdir=None, workdir=None, datadir=()):
    """Every directory the overlay needs mounted first, each once, top layer first."""
    return list(dict.fromkeys(p for _field, p in named_layers(lowerdir, upperdir, workdir, datadir)))


def mount_uses_fsconfig(version_output):
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


def format_mount_options(lowerdir, upperdir=None, workdir=None, options=(), extra_options=(),
                         datadir=(), lowerdir_form="auto", lowerdir_plus=True, notes=None,
                         relative_layers=False, fsconfig=None):
    """The mount(8) option string of an overlay, as fstab's 4th field and a unit's Options= hold it.

    Layer paths are escaped for the kernel (``\\``, ``:`` and ``,`` get a
    backslash); ``datadir`` (data-only layers) follow ``::``. ``options`` are
    overlay options (``index=off``, ``volatile``), ``extra_options`` everything
    else (``nofail``, ``noauto``, ``x-systemd.automount``), written after them.

    The string must mount at boot with util-linux 2.38 (legacy mount(2): one
    page, :data:`MOUNT_DATA_MAX` bytes, in all) and with 2.39+ (one fsconfig()
    call per option: :data:`VALUE_MAX` bytes per value). ``lowerdir_form``:
    ``auto`` takes ``lowerdir=a:b`` when it fits both, else one ``lowerdir+=``
    per layer (when ``lowerdir_plus``: the kernel has it, 6.8+; no commas in
    the paths then), else ``legacy``: ``lowerdir=a:b`` checked against the
    page limit only, which util-linux 2.39+ cannot mount; a sentence saying so
    is appended to ``notes``. ``lowerdir``, ``lowerdir+`` and ``legacy``
    force one form. ``relative_layers`` allows layer paths relative to the
    working directory of mount(8) (a unit's short links).

    ``fsconfig`` is what :func:`mount_uses_fsconfig` found on the host (None:
    unknown). True: its mount(8) could not mount ``legacy``, so ``auto``
    never takes it, and an upper or work path over :data:`VALUE_MAX` bytes is
    refused. False: its mount(8) uses mount(2), so ``legacy`` mounts here;
    the note then says so.

    Raises OverlayError for a path or option that would not come back as given
    (a double quote in a path makes mount(8) fail), and when no form fits.
    """
    if not lowerdir:
        raise OverlayError("lowerdir: at least one lower directory is required")
    if (upperdir is None) != (workdir is None):
        raise OverlayError(
            "upperdir and workdir go together: give both for a writable overlay, "
            "or neither for a read-only one")
    for field, path in named_layers(lowerdir, upperdir, workdir, datadir):
        _check_path(field, path, relative_layers and field.startswith(("lowerdir", "datadir")))
        if '"' in path:
            raise OverlayError(
                "%s: %r contains a double quote; mount(8) reads it as the start of a quoted "
                "option value and the mount fails: rename the directory" % (field, path))
        if not (relative_layers and field.startswith(("lowerdir", "datadir"))):
            check_comma_pieces(field, path)
    for option in options:
        _check_single_option("options", option)
        if option.partition("=")[0] not in _OVERLAY_OPTION_NAMES:
            raise OverlayError("options: %r is not an overlay mount option" % option)
    for option in extra_options:
        _check_single_option("extra_options", option)
        name = option.partition("=")[0]
        if name in _OVERLAY_OPTION_NAMES or name in _PATH_KEYS or name == REQUIRES_MOUNTS_FOR:
            raise OverlayError(
                "extra_options: %r is set through its own parameter, not as an extra option" % option)

    tail = []
    if upperdir is not None:
        tail += ["upperdir=" + escape_layer(upperdir), "workdir=" + escape_layer(workdir)]
    tail += list(options)
    plain_value = join_layers(lowerdir) + "".join("::" + escape_layer(d) for d in datadir)
    plain = ",".join(["lowerdir=" + plain_value] + tail)
    added = ",".join(["lowerdir+=" + p for p in lowerdir] + ["datadir+=" + d for d in datadir] + tail)
    forms = {
        "lowerdir": (plain, _size(plain) <= MOUNT_DATA_MAX and _size(plain_value) <= VALUE_MAX),
        "lowerdir+": (added, _size(added) <= MOUNT_DATA_MAX
                      and all(_size(p) <= VALUE_MAX and "," not in p for p in list(lowerdir) + list(datadir))),
    }
    # util-linux before 2.39 only: one page in all, no limit per value.
    forms["legacy"] = (plain, _size(plain) <= MOUNT_DATA_MAX)
    if lowerdir_form == "auto":
        order = ["lowerdir", "lowerdir+", "legacy"] if lowerdir_plus else ["lowerdir", "legacy"]
    elif lowerdir_form in forms:
        order = [lowerdir_form]
    else:
        raise OverlayError("lowerdir_form must be auto, lowerdir, lowerdir+ or legacy, not %r" % lowerdir_form)
    if fsconfig:
        if lowerdir_form == "auto":
            order.remove("legacy")
        for field, path in (("upperdir", upperdir), ("workdir", workdir)):
            if path is not None and _size(escape_layer(path)) > VALUE_MAX:
                raise OverlayError(
                    "%s: %r takes %d bytes; this host's mount(8) passes each option value through "
                    "fsconfig(), which takes at most %d, so it could not mount the overlay at boot: "
                    "use a shorter path" % (field, path, _size(escape_layer(path)), VALUE_MAX))
    for form in order:
        text, fits = forms[form]
        if fits:
            if form == "legacy" and notes is not None:
                notes.append(
                    "the lower list takes %d bytes, more than the %d that util-linux 2.39 and later "
                    "pass in one option value%s: this persisted overlay mounts at boot with util-linux "
                    "2.38 and older only%s" % (
                        _size(plain_value), VALUE_MAX,
                        "" if lowerdir_plus else " (and this kernel has no lowerdir+)",
                        " (as this host's mount(8), which uses mount(2)); after an upgrade to util-linux "
                        "2.39 or later, run this task again" if fsconfig is False else ""))
            return ",".join([text] + list(extra_options))
    if fsconfig and lowerdir_form == "auto" and _size(plain) <= MOUNT_DATA_MAX:
        raise OverlayError(
            "lowerdir: the lower list takes %d bytes; this host's mount(8) passes each option value "
            "through fsconfig(), which takes at most %d, so it could not mount the overlay at boot, "
            "and one lowerdir+= per layer is not possible (%s): use fewer or shorter paths, "
            "or persist: systemd, which mounts through short links to the layers"
            % (_size(plain_value), VALUE_MAX,
               "this kernel has no lowerdir+" if not lowerdir_plus else
               "a layer path holds a comma or is longer than %d bytes" % VALUE_MAX),
            option_bytes=_size(plain))
    raise OverlayError(
        "lowerdir: the layer, upper and work paths and options take %d bytes (the lower list %d); "
        "mount(8) at boot passes at most %d in all (util-linux 2.38, which silently drops the "
        "rest) and at most %d per option value (util-linux 2.39 and later): use fewer or shorter "
        "paths, or persist: systemd, which mounts through short links to the layers"
        % (_size(plain), _size(plain_value), MOUNT_DATA_MAX, VALUE_MAX), option_bytes=_size(plain))


def _size(text):
    return len(text.encode("utf-8", "surrogateescape"))


def _requires_mounts_for_option(path):
    if any(c in path for c in " \t,'"):
        return '%s="%s"' % (REQUIRES_MOUNTS_FOR, path.replace(",", "\\,"))
    return "%s=%s" % (REQUIRES_MOUNTS_FOR, path)


def _requires_mounts_for_paths(value):
    """The paths systemd reads from one ``x-systemd.requires-mounts-for=`` value.

    As the generator does: drop the comma escapes, then split words the way
    ``RequiresMountsFor=`` does (whitespace, quotes, backslash escapes).
    """
    return split_unit_words(_GENERATOR_ESCAPE.sub(r"\1", value))


def split_unit_words(value):
    """The words systemd reads from a unit list setting such as ``RequiresMountsFor=``.

    shlex's POSIX rules match systemd's for every quoting this collection
    writes (whitespace, single and double quotes, ``\\\\`` and ``\\"``). A value
    with an unbalanced quote is ignored by systemd, so it yields no words.
    """
    if not any(c in value for c in "\"'\\ \t\n"):
        return [value] if value else []  # the common case, without shlex
    try:
        return shlex.split(value)
    except ValueError:
        return []


def render_entry(path, lowerdir, upperdir=None, workdir=None, options=(), extra_options=(),
                 datadir=(), freq=0, passno=0, lowerdir_plus=True, notes=None, fsconfig=None):
    """One fstab line (no line ending) for an overlay mounted at ``path``.

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
    _check_path("path", path)
    check_unit_value("path", path)
    mntops = format_mount_options(lowerdir, upperdir, workdir, options, extra_options, datadir,
                                  lowerdir_plus=lowerdir_plus, notes=notes, fsconfig=fsconfig)
    for field, layer in named_layers(lowerdir, upperdir, workdir, datadir):
        if "\\" in layer:
            raise OverlayError(
                "%s: %r contains a backslash; systemd-fstab-generator turns '\\\\' into '\\' in "
                "fstab options, so the overlay would get a different path at boot: use a systemd "
                "mount unit instead, or rename the directory" % (field, layer))
    required = requires_mounts_for(lowerdir, upperdir, workdir, datadir)
    mntops = ",".join([mntops] + [_requires_mounts_for_option(p) for p in required])
    return " ".join(encode_octal(field) for field in
                    ("overlay", path, "overlay", mntops, str(int(freq)), str(int(passno))))


def parse_overlay_options(mntops):
    """Split a decoded overlay option string into the parts :func:`render_entry` takes.

    Returns a dict: ``lowerdir`` (top first) and ``datadir`` lists,
    ``upperdir`` and ``workdir`` (None when absent), ``options`` (overlay
    options), ``extra_options`` (every other option, in order) and
    ``requires_mounts_for`` (the paths of all ``x-systemd.requires-mounts-for=``
    options, as systemd reads them).
    """
    result = {
        "lowerdir": [], "datadir": [], "upperdir": None, "workdir": None,
        "options": [], "extra_options": [], "requires_mounts_for": [],
    }
    for option in split_options(mntops):
        name, _sep, value = option.partition("=")
        if name == "lowerdir":
            result["lowerdir"], result["datadir"] = split_layers(value)
        elif name in ("lowerdir+", "datadir+"):
            result["lowerdir" if name == "lowerdir+" else "datadir"].append(value)
        elif name in ("upperdir", "workdir"):
            result[name] = unescape_layer(value)
        elif name == REQUIRES_MOUNTS_FOR:
            result["requires_mounts_for"].extend(_requires_mounts_for_paths(value))
        elif name in _OVERLAY_OPTION_NAMES:
            result["options"].append(option)
        else:
            result["extra_options"].append(option)
    return result
