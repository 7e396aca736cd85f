# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The order mount(8) needs among fstab lines, and the edits of many lines at once.

A host without systemd mounts fstab with ``mount -a``, in file order. A line
must therefore come after every line it needs: a line whose mount point is
at or above one of its overlay dirs (lower, upper, work, data), its bind
source or an ``x-systemd.requires-mounts-for=`` path, and a line whose mount
point lies above its own mount point. Paths are compared as given
(normalised) and as ``resolve`` says they lead now, so a layer spelled
through a symlink into another overlay counts.

:class:`Layout` indexes a parsed fstab once by those paths. :class:`FstabDraft`
collects edits (replace, remove, append, keep) on it and renders the new
lines once, moving only the lines it wrote or kept: each to a place after
what it needs and before what needs it; the user's other lines keep their
order. When the file makes that impossible, OverlayError says which lines
to reorder. Every step is linear in the number of lines (one pass to index,
one to assemble), so a batch that edits many lines of a large fstab does
not grow with their product.
"""

import bisect
import re
import heapq
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Set, Tuple

from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.paths import ancestors, normalize
from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.escape import encode_octal, split_options
from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.fstab_syntax import MANAGED_OPTION, make_line
from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.mount_data import REQUIRES_MOUNTS_FOR, parse_overlay_options

_FIELDS = re.compile(r"[ \t]+")

# Options that make a line a bind mount, whose source must be mounted first.
_BIND = ("bind", "rbind")


def line_needs(entry: Any) -> List[str]:
    """The absolute paths (normalised) ``entry`` needs mounted before it, in no particular order.

    An overlay's lower, data, upper and work dirs; a bind mount's source; and
    every ``x-systemd.requires-mounts-for=`` path of any line.
    """
    found = []
    if entry.vfstype == "overlay":
        parsed = parse_overlay_options(entry.mntops)
        found += parsed["lowerdir"] + parsed["datadir"] + [parsed["upperdir"], parsed["workdir"]]
        found += parsed["requires_mounts_for"]
    elif REQUIRES_MOUNTS_FOR in entry.mntops or any(flag in entry.mntops for flag in _BIND):
        options = split_options(entry.mntops)
        if any(option in _BIND for option in options):
            found.append(entry.spec)
        for option in options:
            name, _sep, value = option.partition("=")
            if name == REQUIRES_MOUNTS_FOR:
                found += parse_overlay_options(option)["requires_mounts_for"] or [value]
    return [normalize(path) for path in found if isinstance(path, str) and path[:1] == "/"]


def _marked(entry):
    """True for an overlay line this collection wrote (it carries the marker)."""
    return entry is not None and entry.vfstype == "overlay" and MANAGED_OPTION in split_options(entry.mntops)


class Layout:
    """A parsed fstab indexed by paths: where each line mounts, and which lines need what.

    ``points``: ``{path: [line numbers]}`` of the lines mounted there;
    ``under``: ``{path: [line numbers]}`` of the lines that need something
    at or below ``path`` (see the module docstring). Both hold each mount
    point and needed path as written (normalised) and as ``resolve`` leads
    it; without ``resolve`` only as written.
    """

    def __init__(self, lines: Sequence[Any], resolve: Optional[Callable[[str], str]] = None) -> None:
        self.lines = lines
        self.resolve = resolve
        self.points: Dict[str, List[int]] = {}
        self.under: Dict[str, List[int]] = {}
        self._above: Dict[str, List[str]] = {}
        points_index, under_index = self.points, self.under
        for number, line in enumerate(lines):
            entry = line.entry
            if entry is None:
                continue
            points = self.keys(entry.file)
            for key in points:
                points_index.setdefault(key, []).append(number)
            for key in self.need_keys(points, self.paths(line_needs(entry))):
                under_index.setdefault(key, []).append(number)

    def keys(self, path: str) -> List[str]:
        """``path`` as written (normalised) and where it leads; [] for a path that is not absolute."""
        if path[:1] != "/":
            return []
        return self.paths([normalize(path)])

    def paths(self, paths: Iterable[str]) -> List[str]:
        """Each of ``paths`` (normalised, absolute) and, where it differs, where it leads."""
        found = []
        for path in paths:
            found.append(path)
            if self.resolve is not None:
                real = self.resolve(path)
                if real != path:
                    found.append(real)
        return found

    def _parents(self, path):
        """The dirs above ``path`` (not ``/``), from the nearest; kept per parent dir (lines share a few)."""
        cut = path.rfind("/")
        parent = path[:cut]
        found = self._above.get(parent)
        if found is None:
            found = self._above[parent] = [p for p in ancestors(parent) if p != "/"] if parent else []
        return found

    def need_keys(self, points: Sequence[str], needs: Sequence[str]) -> Set[str]:
        """The mount points a line at ``points`` that needs ``needs`` must come after.

        ``/`` is never one: it is mounted before mount -a runs (and findmnt's
        order check skips it too).
        """
        keys = set()
        for path in needs:
            if path != "/":
                keys.add(path)
                keys.update(self._parents(path))
        for point in points:
            keys.update(self._parents(point))
        return keys

    def at(self, path: str) -> List[int]:
        """The numbers of the lines mounted at ``path`` (as written or where it leads), in file order."""
        found = set()
        for key in self.keys(path):
            found.update(self.points.get(key, ()))
        return sorted(found)


class _Moving:
    """A line the draft wrote or kept, and may move: where it mounts, what it needs, where it was."""

    def __init__(self, line, points, need_keys, origin):
        self.line = line
        self.points = points
        self.need_keys = need_keys
        self.origin = origin  # its number in the old lines, or len(old lines) + k for the k-th new line


def order_error(line: Any, after: Any, before: Any) -> OverlayError:
    """The error for a line that must come after ``after`` and before ``before``, which the file orders the other way."""
    return OverlayError(
        "fstab: the line for %s must come after the line for %s (which mounts what it needs) and before "
        "the line for %s (which needs it), but the file has those two the other way round, so mount -a "
        "would mount them in the wrong order: reorder or remove those lines by hand"
        % (line.entry.file, after.entry.file, before.entry.file))


class FstabDraft:
    """Edits of a parsed fstab (``lines``), made one after another and rendered once by :meth:`result`.

    Lines are named by slots: ``("old", number)`` for a line of ``lines``,
    ``("new", k)`` for the k-th appended one.
    """

    def __init__(self, lines: Sequence[Any], resolve: Optional[Callable[[str], str]] = None,
                 layout: Optional[Layout] = None) -> None:
        self.old = lines
        self.layout = layout if layout is not None else Layout(lines, resolve)
        self.replaced: Dict[int, Any] = {}
        self.removed: Set[int] = set()
        self.appended: List[Any] = []
        self.moving: Dict[Tuple[str, int], List[str]] = {}
        #: How many lines were replaced, removed or appended so far.
        self.edits = 0

    @property
    def edited(self) -> bool:
        """True when a line was replaced, removed or appended."""
        return bool(self.replaced or self.removed or self.appended)

    def line(self, slot: Tuple[str, int]) -> Any:
        kind, number = slot
        if kind == "new":
            return self.appended[number]
        return self.replaced.get(number, self.old[number])

    def at(self, path: str, vfstype: Optional[str] = "overlay") -> List[Tuple[Tuple[str, int], Any]]:
        """``[(slot, entry)]`` of the lines now mounted at ``path``, in file order; ``vfstype=None``: any type."""
        slots = [("old", n) for n in self.layout.at(path) if n not in self.removed]
        keys = set(self.layout.keys(path))
        slots += [("new", k) for k, line in enumerate(self.appended)
                  if line is not None and keys.intersection(self.layout.keys(line.entry.file))]
        found = [(slot, self.line(slot).entry) for slot in slots]
        return [(slot, entry) for slot, entry in found if vfstype in (None, entry.vfstype)]

    def replace(self, slot: Tuple[str, int], text: str, needs: Sequence[str] = ()) -> None:
        """Put ``text`` in place of the line at ``slot`` (keeping its line ending); it may move."""
        old = self.line(slot)
        line = make_line(text, old.ending)
        self.edits += 1
        if slot[0] == "new":
            self.appended[slot[1]] = line
        else:
            self.replaced[slot[1]] = line
        self.keep(slot, needs)

    def append(self, text: str, needs: Sequence[str] = ()) -> None:
        """Add ``text`` as a new line (at the end, unless its order says otherwise)."""
        self.appended.append(make_line(text, None))  # the file's line ending, given by result()
        self.edits += 1
        self.keep(("new", len(self.appended) - 1), needs)

    def remove(self, slot: Tuple[str, int]) -> None:
        """Drop the line at ``slot``."""
        self.edits += 1
        if slot[0] == "new":
            self.appended[slot[1]] = None
        else:
            self.removed.add(slot[1])
            self.replaced.pop(slot[1], None)
        self.moving.pop(slot, None)

    def keep(self, slot: Tuple[str, int], needs: Sequence[str] = ()) -> None:
        """Let the line at ``slot`` move to where its order wants it; ``needs``: paths it needs besides its own."""
        self.moving[slot] = list(needs)

    def result(self) -> Sequence[Any]:
        """The new lines: ``lines`` itself when no edit was made and no kept line had to move."""
        moving = self._moving()
        if not moving and not self.edited:
            return self.old
        skip = self.removed | {number for kind, number in self.moving if kind == "old"}
        fixed = [n for n in range(len(self.old)) if n not in skip] if skip else list(range(len(self.old)))
        try:
            topo, gaps = _place(self, moving, fixed)
        except OverlayError:
            # The collection's own lines may move too (never the user's): an
            # overlay added between two it wrote earlier in the other order.
            ours = [n for n in fixed if _marked(self.old[n].entry)]
            if not ours:
                raise
            for number in ours:
                self.keep(("old", number))
            moving = self._moving()
            fixed = [n for n in fixed if n not in set(ours)]
            topo, gaps = _place(self, moving, fixed)
        new, where = _assemble(self, topo, fixed, gaps)
        self._done = (new, topo, where, fixed)
        if not self.edited and len(new) == len(self.old) and all(a is b for a, b in zip(new, self.old)):
            return self.old
        return new

    def excerpt(self) -> Tuple[str, List[str]]:
        """``(text, targets)``: what findmnt --verify needs to judge the lines :meth:`result` wrote or moved.

        Those lines and every line mounted at or above one of their mount
        points (findmnt's order check), in their new order, each with its
        target as it leads now (so that findmnt may run without
        canonicalizing); ``targets`` are those of the written lines.
        """
        new, topo, where, fixed = self._done
        fixed_set = set(fixed)
        picks: Dict[int, str] = {}
        targets = []
        for m in topo:
            target = self.layout.keys(m.line.entry.file)[-1]
            picks[where(m)] = target
            targets.append(target)
            for key in m.points:
                for parent in ancestors(key):
                    for number in self.layout.points.get(parent, ()):
                        if number in fixed_set:
                            picks[where(number)] = self.layout.keys(self.old[number].entry.file)[-1]
        text = "".join(_with_target(new[position], target) + "\n" for position, target in sorted(picks.items()))
        return text, targets

    def _moving(self):
        found = []
        for slot, extra in self.moving.items():
            line = self.line(slot)
            points = self.layout.keys(line.entry.file)
            needs = self.layout.paths(set(line_needs(line.entry)) | {normalize(p) for p in extra})
            origin = slot[1] if slot[0] == "old" else len(self.old) + slot[1]
            found.append(_Moving(line, points, self.layout.need_keys(points, needs), origin))
        return sorted(found, key=lambda m: m.origin)


def _place(draft, moving, fixed):
    """``(moving lines in dependency order, {id(line): gap})``.

    The gap a moving line goes in: before the g-th fixed line, or at the end
    (``len(fixed)``).
    """
    rank = {number: r for r, number in enumerate(fixed)}
    layout, count = draft.layout, len(fixed)
    by_point: Dict[str, List[_Moving]] = {}
    for m in moving:
        for key in m.points:
            by_point.setdefault(key, []).append(m)
    lows, highs, needs_of = {}, {}, {}
    for m in moving:
        deps = {n for key in m.need_keys for n in layout.points.get(key, ()) if n in rank and n != m.origin}
        users = {n for key in m.points for n in layout.under.get(key, ()) if n in rank and n != m.origin}
        low = max(deps, key=rank.get) if deps else None
        high = min(users, key=rank.get) if users else None
        lows[id(m)] = (rank[low] + 1, draft.old[low]) if low is not None else (0, None)
        highs[id(m)] = (rank[high], draft.old[high]) if high is not None else (count, None)
        needs_of[id(m)] = [o for key in m.need_keys for o in by_point.get(key, ()) if o is not m]
    topo = _topological(moving, needs_of)
    for m in topo:  # earliest: after what it needs, and after the moving lines it needs
        for other in needs_of[id(m)]:
            if lows[id(other)][0] > lows[id(m)][0]:
                lows[id(m)] = lows[id(other)]
    for m in reversed(topo):  # latest: before what needs it
        for other in needs_of[id(m)]:
            if highs[id(m)][0] < highs[id(other)][0]:
                highs[id(other)] = highs[id(m)]
    gaps = {}
    for m in topo:
        (low, after), (high, before) = lows[id(m)], highs[id(m)]
        if low > high:
            raise order_error(m.line, after, before)
        start = max([low] + [gaps[id(o)] for o in needs_of[id(m)]])
        # Where it is now (a new line: at the end) when its order allows.
        preferred = bisect.bisect_left(fixed, m.origin)
        gaps[id(m)] = min(max(preferred, start), high)
    return topo, gaps


def _topological(moving, needs_of):
    """The moving lines, each after the moving lines it needs (ties: file order); a cycle raises."""
    waiting = {id(m): len(set(map(id, needs_of[id(m)]))) for m in moving}
    users: Dict[int, List[_Moving]] = {}
    for m in moving:
        for other in {id(o): o for o in needs_of[id(m)]}.values():
            users.setdefault(id(other), []).append(m)
    ready = [(m.origin, id(m), m) for m in moving if not waiting[id(m)]]
    heapq.heapify(ready)
    done = []
    while ready:
        m = heapq.heappop(ready)[2]
        done.append(m)
        for user in users.get(id(m), ()):
            waiting[id(user)] -= 1
            if not waiting[id(user)]:
                heapq.heappush(ready, (user.origin, id(user), user))
    if len(done) < len(moving):
        stuck = [m for m in moving if waiting[id(m)]]
        raise OverlayError(
            "fstab: the lines for %s need each other's mounts (a cycle), so no order of them can be "
            "mounted by mount -a: change the layers so that none lies under the other's mount point"
            % " and ".join(m.line.entry.file for m in stuck[:2]))
    return done


def _assemble(draft, topo, fixed, gaps):
    """``(new lines, where)``: the fixed lines in their order, each moving line in its gap, endings made whole.

    ``where(line)``: the position in the new lines of a moving line (given
    as itself) or of a fixed one (given by its old number).
    """
    by_gap: Dict[int, List[_Moving]] = {}
    for m in topo:  # within a gap, in dependency order
        by_gap.setdefault(gaps[id(m)], []).append(m)
    fixed_lines = [draft.old[number] for number in fixed]
    new: List[Any] = []
    placed: Dict[int, int] = {}
    start = 0
    for gap in sorted(by_gap):
        new += fixed_lines[start:gap]
        for m in by_gap[gap]:
            placed[id(m)] = len(new)
            new.append(m.line)
        start = gap
    new += fixed_lines[start:]
    moved_gaps = sorted(gaps.values())
    rank = {}

    def where(item):
        if isinstance(item, _Moving):
            return placed[id(item)]
        if not rank:
            rank.update((number, r) for r, number in enumerate(fixed))
        r = rank[item]
        return r + bisect.bisect_right(moved_gaps, r)

    last_old = draft.old[-1] if draft.old else None
    check = set(placed.values()) | {len(new) - 1}
    if last_old is not None and (len(draft.old) - 1) in set(fixed[-1:]):
        check.add(where(len(draft.old) - 1))
    return _endings(draft.old, new, sorted(i for i in check if 0 <= i < len(new))), where


def _with_target(line, target):
    """``line``'s text with ``target`` as its mount point (fields joined by single spaces)."""
    fields = _FIELDS.split(line.text.strip(" \t\r"))
    fields[1] = encode_octal(target)
    return " ".join(fields)


def _endings(old, new, positions):
    """Give every line but the last an ending, and the last one the file's convention (ending or not).

    Only the lines at ``positions`` can lack one: the lines written or
    moved, the old last line and the new last line.
    """
    convention = next((line.ending for line in reversed(old) if line.ending), "\n")
    unterminated = bool(old) and not old[-1].ending
    for index in positions:
        line = new[index]
        ending = line.ending
        if index == len(new) - 1 and unterminated:
            if line is old[-1]:
                continue
            # The file ends without a newline, and keeps that (a new line
            # takes the convention first, so that a bare CR stays).
            ending = convention if ending is None else ending
            ours = next((other.ending for other in reversed(new[:-1]) if other.ending), "\n")
            ending = ending[:-len(ours)] if ending.endswith(ours) else ""
        elif not ending:
            ending = convention
        if ending != line.ending:
            new[index] = line._replace(ending=ending)
    return new
