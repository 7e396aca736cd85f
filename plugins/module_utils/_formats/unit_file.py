# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A unit as systemd reads it: the main file, then its drop-ins. Pure.

:func:`parse_assignments` reads one file the way systemd's config parser
does (src/shared/conf-parser.c, read_line() in src/basic/fileio.c):

* A line ends at ``\\n``, ``\\r``, ``\\r\\n``, ``\\n\\r`` or a NUL, as
  read_line() ends it (not at the other breaks str.splitlines() knows).
* A line whose first non-blank character is ``#`` or ``;`` is a comment,
  also inside a continuation, where it is skipped.
* A line that ends in an odd number of backslashes continues on the next
  one; the last backslash becomes a space.
* ``[Section]`` starts a section; assignments outside a section, or in a
  section outside ``sections`` when given, are ignored, as is a line
  without ``=``. Key and value lose surrounding blanks; the value is kept
  as written (``%%`` and other specifiers untouched).
* A section header without its ``]`` or with control characters or quotes
  in its name, and a line that is not UTF-8, make systemd stop reading the
  file (and refuse the unit, when it is the main file): they raise
  OverlayError.

:func:`effective` applies the assignments of several files in order, as
systemd does: a later assignment of a single-valued key wins; a list key
(:data:`LIST_KEYS`) gathers the values of every assignment. An empty
assignment resets most lists, but not the dependencies (``After=``,
``Requires=``, ...), ``RequiresMountsFor=``, ``WantsMountsFor=`` and
``Also=``, which systemd only ever adds to; an empty ``Condition...=``
resets every condition, an empty ``Assert...=`` every assertion.
:func:`drop_in_order` puts drop-ins in the order systemd reads them.
"""

import posixpath
import re
from dataclasses import dataclass, field
from typing import Collection, Dict, List, NamedTuple, Optional, Sequence, Tuple

from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError
from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.mount_data import split_unit_words

# What systemd strips around lines, keys and values (WHITESPACE in its sources).
_BLANKS = " \t\n\r"
_BOM = "\ufeff"
# One line ending as read_line() sees it: each of \n, \r at most once, a NUL ends it.
_LINE_END = re.compile("(?:\r\n|\n\r|\r|\n)\0?|\0")
_SEPARATORS = re.compile("[ \t\n\r]+")
# string_is_safe(): no control characters, no quotes, no backslash.
_UNSAFE_SECTION = re.compile("[\x00-\x1f\x7f\"'\\\\]")
_WORD_SPECIALS = frozenset(" \t\"'\\")

# The conditions and assertions of systemd.unit(5) (systemd 257); each
# assignment is one more condition, an empty one resets them all.
CONDITIONS = (
    "PathExists", "PathExistsGlob", "PathIsDirectory", "PathIsSymbolicLink", "PathIsMountPoint",
    "PathIsReadWrite", "PathIsEncrypted", "DirectoryNotEmpty", "FileNotEmpty", "FileIsExecutable",
    "NeedsUpdate", "FirstBoot", "Architecture", "Firmware", "Virtualization", "Host",
    "KernelCommandLine", "KernelVersion", "Credential", "Security", "Capability", "ACPower", "Memory",
    "CPUFeature", "CPUs", "Environment", "User", "Group", "ControlGroupController", "OSRelease",
    "MemoryPressure", "CPUPressure", "IOPressure",
)
# systemd has no AssertFirmware=.
ASSERTS = tuple(name for name in CONDITIONS if name != "Firmware")

# How a list key splits its value: unit names on blanks (backslashes are part
# of the name), words with quotes and escapes (paths, URLs, VAR=value), or
# the whole value as one item (a condition, an environment file).
UNITS = "units"
WORDS = "words"
WHOLE = "whole"


class _Rule(NamedTuple):
    split: str
    resets: bool  # whether an empty assignment empties the list


def _rules(split, resets, section, names):
    return {(section, name): _Rule(split, resets) for name in names.split()}


_LIST_RULES = {}
# Dependencies: systemd only ever adds to them (an empty value is a no-op).
_LIST_RULES.update(_rules(UNITS, False, "Unit", (
    "After Before Requires Wants Requisite BindsTo PartOf Upholds Conflicts OnFailure OnSuccess "
    "PropagatesReloadTo ReloadPropagatedFrom PropagatesStopTo StopPropagatedFrom JoinsNamespaceOf")))
_LIST_RULES.update(_rules(WORDS, False, "Unit", "RequiresMountsFor WantsMountsFor"))
_LIST_RULES.update(_rules(WORDS, True, "Unit", "Documentation"))
_LIST_RULES.update(_rules(WHOLE, True, "Unit", " ".join(
    ["Condition" + name for name in CONDITIONS] + ["Assert" + name for name in ASSERTS])))
_LIST_RULES.update(_rules(UNITS, True, "Install", "WantedBy RequiredBy UpheldBy Alias"))
_LIST_RULES.update(_rules(UNITS, False, "Install", "Also"))
# The exec and resource-control lists a mount unit may carry (systemd.exec(5),
# systemd.resource-control(5)); an automount unit has none.
_LIST_RULES.update(_rules(WORDS, True, "Mount", (
    "Environment PassEnvironment UnsetEnvironment SupplementaryGroups IPAddressAllow IPAddressDeny")))
_LIST_RULES.update(_rules(WHOLE, True, "Mount", "EnvironmentFile"))

LIST_KEYS = frozenset(_LIST_RULES)


class Assignment(NamedTuple):
    """One ``key=value`` line of a unit file, after continuations are joined."""

    section: str
    key: str
    value: str
    path: str


def parse_assignments(text: str, path: str, sections: Optional[Collection[str]] = None,
                      problems: Optional[List[str]] = None) -> List[Assignment]:
    """The assignments of one unit file (``text``, read from ``path``), in order.

    With ``sections`` (e.g. ``("Unit", "Mount", "Install")`` for a mount
    unit), assignments in other sections are ignored, as systemd ignores an
    unknown section. Raises OverlayError, naming the file and line, where
    systemd would stop reading the file; with ``problems`` (a list), the
    message goes there instead and the file ends at that line, as for systemd.
    """
    assignments: List[Assignment] = []
    try:
        _parse_into(assignments, text, path, sections)
    except OverlayError as error:
        if problems is None:
            raise
        problems.append(error.message)
    return assignments


def _parse_into(assignments, text, path, sections):
    section = None
    for number, line in _logical_lines(text):
        line = line.strip(_BLANKS)
        if not line:
            continue
        _check_utf8(line, path, number)
        if line.startswith("["):
            name = _section_name(line, path, number)
            section = name if sections is None or name in sections else None
            continue
        key, sep, value = line.partition("=")
        if section is None or not sep or not key:
            continue  # outside a section, no "=", or no key: systemd ignores the line
        assignments.append(Assignment(section, key.strip(_BLANKS), value.strip(_BLANKS), path))


def _physical_lines(text):
    lines = _LINE_END.split(text)
    if lines and lines[-1] == "":
        lines.pop()  # the end of the text, not one more empty line
    return lines


def _logical_lines(text):
    """``(line number, line)`` with continuations joined and comments dropped."""
    continuation = None
    bom_seen = False
    number = 0
    for number, line in enumerate(_physical_lines(text), 1):
        if line.lstrip(_BLANKS)[:1] in ("#", ";"):
            continue  # a comment, even inside a continuation
        if not bom_seen and line.startswith(_BOM):
            line = line[1:]
            bom_seen = True
        if continuation is not None:
            line = continuation + line
        if (len(line) - len(line.rstrip("\\"))) % 2:
            continuation = line[:-1] + " "
            continue
        continuation = None
        yield number, line
    if continuation is not None:
        yield number, continuation


def _check_utf8(line, path, number):
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        raise OverlayError(
            "%s, line %d: the line is not valid UTF-8; systemd stops reading the file there "
            "(and refuses the unit when it is the main file): fix or remove the line" % (path, number)) from None


def _section_name(line, path, number):
    if not line.endswith("]"):
        raise OverlayError(
            "%s, line %d: invalid section header %r (no closing ']'); systemd stops reading the file "
            "there (and refuses the unit when it is the main file): fix or remove the line"
            % (path, number, line))
    name = line[1:-1]
    if _UNSAFE_SECTION.search(name):
        raise OverlayError(
            "%s, line %d: section header %r has control characters, quotes or backslashes; systemd "
            "stops reading the file there: fix or remove the line" % (path, number, line))
    return name


def quote_word(word: str) -> str:
    """``word`` as one item of a quoted list such as ``RequiresMountsFor=``, as written (no ``%`` escaping).

    Blanks, quotes or backslashes make it double-quoted, with ``\\`` and
    ``"`` backslash-escaped inside; anything else stays as it is.
    """
    if any(c in _WORD_SPECIALS for c in word):
        return '"%s"' % word.replace("\\", "\\\\").replace('"', '\\"')
    return word


def split_value(section: str, key: str, value: str) -> List[str]:
    """The items systemd reads from one assignment of a list key (``[value]`` for any other key).

    Unit names split at blanks and keep their backslashes; quoted lists
    (paths, URLs, environment) are unquoted; a condition or an environment
    file is one item. Empty values give no items.
    """
    rule = _LIST_RULES.get((section, key))
    if not value:
        return []
    if rule is None or rule.split == WHOLE:
        return [value]
    if rule.split == UNITS:
        return [word for word in _SEPARATORS.split(value) if word]
    return split_unit_words(value)


def join_values(section: str, key: str, items: Sequence[str]) -> str:
    """The one-line value of a list key that holds ``items`` (:func:`split_value` reverses it)."""
    rule = _LIST_RULES.get((section, key))
    if rule is not None and rule.split == WORDS:
        return " ".join(quote_word(item) for item in items)
    return " ".join(items)


@dataclass
class Effective:
    """What a unit's files add up to: see :func:`effective`.

    ``settings`` maps section -> key -> the effective value as written in
    the files (a list key: its items once each, in order, joined by
    :func:`join_values`; a key whose last word was an empty assignment is
    left out). ``files`` are the files read, ``assignments`` every
    assignment of them, in the order systemd applies them.
    """

    settings: Dict[str, Dict[str, str]] = field(default_factory=dict)
    files: List[str] = field(default_factory=list)
    assignments: List[Assignment] = field(default_factory=list)
    origins: Dict[Tuple[str, str], str] = field(default_factory=dict)
    items: Dict[Tuple[str, str], List[str]] = field(default_factory=dict)

    def origin(self, section: str, key: str) -> Optional[str]:
        """The file whose assignment decided ``key``: for a list, the last that added to or reset it."""
        return self.origins.get((section, key))

    def from_file(self, section: str, key: str, path: str) -> bool:
        """Whether ``path`` decided ``key`` (see :meth:`origin`)."""
        return self.origins.get((section, key)) == path

    def values(self, section: str, key: str) -> List[str]:
        """The items of a list key (each condition apart), or ``[value]`` of a single key; [] when unset."""
        if (section, key) in LIST_KEYS:
            return list(self.items.get((section, key), ()))
        value = self.settings.get(section, {}).get(key)
        return [value] if value is not None else []


def effective(files: Sequence[Tuple[str, str]], sections: Optional[Collection[str]] = None,
              problems: Optional[List[str]] = None) -> Effective:
    """The effective unit of ``files``: ``[(path, text)]``, the main file first, then the drop-ins in
    :func:`drop_in_order`. ``sections`` and ``problems`` as for :func:`parse_assignments`."""
    result = Effective(files=[path for path, _text in files])
    for path, text in files:
        result.assignments.extend(parse_assignments(text, path, sections, problems))
    singles = {}
    order = {}
    for assignment in result.assignments:
        name = (assignment.section, assignment.key)
        order.setdefault(name, None)
        if name in LIST_KEYS:
            _apply_list(result, assignment)
        else:
            singles[name] = assignment.value
            result.origins[name] = assignment.path
    for section, key in order:
        value = singles.get((section, key))
        if (section, key) in LIST_KEYS:
            items = result.items.get((section, key))
            value = join_values(section, key, items) if items else None
        if value:
            result.settings.setdefault(section, {})[key] = value
    return result


def _family(section, key):
    """The keys one empty assignment of ``key`` resets: all conditions, all assertions, or itself."""
    if section == "Unit":
        for prefix, names in (("Condition", CONDITIONS), ("Assert", ASSERTS)):
            if key.startswith(prefix) and key[len(prefix):] in names:
                return [(section, prefix + name) for name in names]
    return [(section, key)]


def _apply_list(result, assignment):
    name = (assignment.section, assignment.key)
    rule = _LIST_RULES[name]
    if not assignment.value:
        if rule.resets:
            for member in _family(*name):
                if member in result.items or member == name:
                    result.items[member] = []
                    result.origins[member] = assignment.path
        return
    items = result.items.setdefault(name, [])
    for item in split_value(assignment.section, assignment.key, assignment.value):
        if item not in items:
            items.append(item)
    result.origins[name] = assignment.path


def drop_in_order(found: Sequence[Tuple]) -> List[Tuple[int, str]]:
    """The drop-ins systemd applies, in its order, from ``found``: ``[(rank, path)]`` or ``[(rank, path, masked)]``.

    ``rank`` is the position of the file's directory in systemd's search
    order (lower wins); ``masked`` marks a file that masks its name (a
    symlink to /dev/null, or an empty file). Of the files that share a
    name only the best ranked counts (the first given on a tie); a masked
    one adds nothing but still hides the others. Names that are hidden
    (leading ``.``) or do not end in ``.conf`` are skipped, as systemd
    skips them. The result is ``[(rank, path)]`` sorted by name, compared
    as bytes (strcmp).
    """
    best = {}
    for entry in found:
        rank, path = entry[0], entry[1]
        masked = bool(entry[2]) if len(entry) > 2 else False
        name = posixpath.basename(path)
        if name.startswith(".") or not name.endswith(".conf"):
            continue
        if name not in best or rank < best[name][0]:
            best[name] = (rank, path, masked)
    chosen = [(rank, path) for rank, path, masked in best.values() if not masked]
    return sorted(chosen, key=lambda item: posixpath.basename(item[1]).encode("utf-8", "surrogateescape"))
