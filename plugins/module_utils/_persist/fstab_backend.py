# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Persistence backend ``fstab``: one line per overlay in an fstab file.

:func:`edit_fstab` is a pure function of the fstab text, so a task runs it
once to plan (check mode, diff) and again on the text it reads under the
lock, where a concurrent run may have changed other lines meanwhile. Lines of
other mount points are never touched; a line this collection wrote carries
``_formats.fstab_syntax.MANAGED_OPTION``. An existing line for the mount
point that says something else, hand-written or not, is edited as little as
it takes (:func:`adopted_line`), and each change is named
(:func:`line_changes`).
"""

import functools
import os
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from ansible_collections.overlayfs.mounts.plugins.module_utils._formats import fstab_syntax as _fstab
from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.escape import split_options
from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.fstab_order import FstabDraft, Layout
from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.fstab_syntax import MANAGED_OPTION
from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.mount_data import (
    MOUNT_DATA_MAX,
    OVERLAY_OPTION_NAMES,
    REQUIRES_MOUNTS_FOR,
    VALUE_MAX,
    Rendered,
    parse_overlay_options,
    requires_mounts_for_option,
)
from ansible_collections.overlayfs.mounts.plugins.module_utils._host import files
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.declaration import Declaration
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.facts import HostFacts
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.layers import requires_mounts_for
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.mount_flags import (
    GROUP_OF,
    is_flag,
    parse_flags,
    persisted_flags,
    split_flags,
)
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.overlay_options import canonical_options
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.paths import normalize, same_path
from ansible_collections.overlayfs.mounts.plugins.module_utils._persist.backend import Backend, StepContext, Undo, file_diff


def fstab_line(decl: Declaration, facts: Optional[HostFacts] = None) -> Rendered:
    """The fstab line of ``decl`` with its boot options and the managed marker, and its notes.

    ``facts``: the host facts rendering depends on (see
    ``_formats.mount_data.format_mount_options``). Layer, upper and work
    paths are written as declared (``Declaration.as_spelled``), so that a
    boot follows a symlinked layer to wherever it points then.
    """
    return _fstab.render_entry(decl.as_spelled(), facts, list(decl.boot_extras) + [MANAGED_OPTION])


@functools.lru_cache(maxsize=None)
def entry_config(entry: Any) -> Dict[str, Any]:
    """What an fstab overlay entry declares, in the module's terms.

    Cached per line (entries are immutable): a batch reads the same lines for
    every entry. The dict is shared, so callers must not change it.
    """
    parsed = parse_overlay_options(entry.mntops)
    try:
        options = canonical_options(parsed["options"])
    except OverlayError:
        options = list(parsed["options"])
    boot_options, flags = split_flags(parsed["extra_options"])
    return {
        "path": _fstab.normalize_mount_point(entry.file),
        "lowerdir": parsed["lowerdir"],
        "datadir": parsed["datadir"],
        "upperdir": parsed["upperdir"],
        "workdir": parsed["workdir"],
        "options": options,
        "flags": persisted_flags(flags),
        "boot_options": [o for o in boot_options if o not in ("defaults", MANAGED_OPTION)],
        "requires_mounts_for": parsed["requires_mounts_for"],
        "managed": MANAGED_OPTION in parsed["extra_options"],
        "source": entry.spec,
    }


# systemd ignores noauto (and auto) on a line that is an automount (systemd.mount(5)).
_AUTOMOUNT = "x-systemd.automount"
_LOWER_NAMES = ("lowerdir", "lowerdir+", "datadir+")
# The kinds of option that set a layer, upper or work dir: a new one goes beside the others.
_LAYER_KINDS = ("lower", "upperdir", "workdir")


def _kind(option):
    """What ``option`` (one decoded fstab option of an overlay line) sets, for the minimal edit."""
    name = option.partition("=")[0]
    if name in _LOWER_NAMES:
        return "lower"
    if name in ("upperdir", "workdir"):
        return name
    if name == REQUIRES_MOUNTS_FOR:
        return "requires"
    if option in (MANAGED_OPTION, "defaults"):
        return option
    if name in OVERLAY_OPTION_NAMES:
        return "option"
    return "flag" if is_flag(option) else "boot"


def _key(option):
    """Options of one key replace each other in place (a per-mount flag's key is its group)."""
    kind = _kind(option)
    if kind == "flag":
        return "flag:" + GROUP_OF[option.strip()].name
    if kind in ("lower", "requires"):
        return kind
    return option.partition("=")[0]


def _boot_set(options):
    """Boot options compared as a set of meanings: ``noauto`` beside ``x-systemd.automount`` means nothing.

    A declared ``x-systemd.requires-mounts-for=`` is compared with the
    line's requirements instead (:func:`_line_needs`).
    """
    return sorted(o for o in options if not (o == "noauto" and _AUTOMOUNT in options) and _kind(o) != "requires")


def _declared_requires(extras):
    """The paths of the ``x-systemd.requires-mounts-for=`` options among declared boot options."""
    return [p for o in extras if _kind(o) == "requires" for p in parse_overlay_options(o)["requires_mounts_for"]]


def _size(text):
    return len(text.encode("utf-8", "surrogateescape"))


def _mounts_at_boot(mntops, facts):
    """True when mount(8) at boot passes the overlay's part of ``mntops`` whole (``facts``: this host's, or None).

    At most one page of overlay data (mount(2)); with fsconfig(), every
    value within one call (whether mount(8) uses it is asked only when a
    value is longer); ``lowerdir+=`` only where the kernel takes it.
    """
    fits, long_value = _fits(mntops, facts.lowerdir_plus if facts is not None else True)
    return fits and not (long_value and facts is not None and facts.fsconfig)


@functools.lru_cache(maxsize=4096)
def _fits(mntops, lowerdir_plus):
    """Whether ``mntops`` fits mount(2) and the kernel, and whether a value is longer than one fsconfig() value.

    Kept per line: a batch asks it of the same lines for every overlay.
    """
    options = split_options(mntops)
    overlay = [o for o in options if _kind(o) in _LAYER_KINDS + ("option",)]
    if _size(",".join(overlay)) > MOUNT_DATA_MAX:
        return False, False
    if not lowerdir_plus and any(o.partition("=")[0] in _LOWER_NAMES[1:] for o in overlay):
        return False, False
    return True, any(_size(o.partition("=")[2]) > VALUE_MAX for o in options if not o.startswith("x-"))


def _leads_to(spelled, real, resolve):
    """True when the path or paths ``spelled`` lead to ``real`` (resolved) now."""
    if isinstance(spelled, list) and isinstance(real, list):
        return len(spelled) == len(real) and all(_leads_to(a, b, resolve) for a, b in zip(spelled, real))
    if isinstance(spelled, str) and isinstance(real, str):
        return resolve(normalize(spelled)) == real
    return spelled == real


def _means_same_dir(have, decl, field, resolve):
    """True when ``have`` (a dir field of a line) names what ``decl`` declares: spelled apart, or through a symlink."""
    return same_path(have, getattr(decl.as_spelled(), field)) or (
        resolve is not None and _leads_to(have, getattr(decl, field), resolve))


def _line_needs(have, decl, resolve):
    """What a line whose dirs are ``have`` must require for boot to be ``decl``'s line; None if its dirs are others.

    A path spelled otherwise than declared but leading to the same
    directory counts; the line must then require the mounts of its own
    paths and of where they lead.
    """
    spelled = decl.as_spelled()
    declared = _declared_requires(decl.boot_extras)
    if all(same_path(have[key], getattr(spelled, key)) for key in decl.DIR_FIELDS):
        return requires_mounts_for(spelled.lowerdir, spelled.upperdir, spelled.workdir, spelled.datadir,
                                   spelled.also_needs + declared)
    if resolve is not None and all(_leads_to(have[key], getattr(decl, key), resolve) for key in decl.DIR_FIELDS):
        dirs = [normalize(p) for p in have["lowerdir"] + have["datadir"] + [have["upperdir"], have["workdir"]] if p]
        return requires_mounts_for(have["lowerdir"], have["upperdir"], have["workdir"], have["datadir"],
                                   [resolve(p) for p in dirs if resolve(p) != p] + declared)
    return None


def _entry_matches(entry, decl, facts=None, resolve=None):
    """True when an existing fstab entry already says what we would write.

    "Says" as mount(8) and systemd read it: the source field, ``defaults``,
    the order of the options, path spellings that lead to the declared dirs
    (with ``resolve``, where a path leads now) and ``noauto`` beside
    ``x-systemd.automount`` do not count; a nonzero freq or passno does. The
    line must carry the collection's marker and require, for boot, the
    mounts of its dirs (:func:`_line_needs`). A line mount(8) could not mount
    at boot on this host (``facts``: e.g. a lower list over 255 bytes once
    mount(8) uses fsconfig(), written before util-linux was upgraded) does
    not match.
    """
    if entry.freq or entry.passno or not _mounts_at_boot(entry.mntops, facts):
        return False
    have = entry_config(entry)
    want = decl.as_spelled().config()
    if not have["managed"] or any(have[key] != want[key] for key in decl.FIELDS
                                  if key != "path" and key not in decl.DIR_FIELDS):
        return False
    if _boot_set(have["boot_options"]) != _boot_set(decl.boot_extras):
        return False
    needed = _line_needs(have, decl, resolve)
    return needed is not None and {normalize(p) for p in have["requires_mounts_for"]} == {normalize(p) for p in needed}


def _canonical(options):
    """``options`` (overlay options) in canonical form, or None when they are not valid."""
    try:
        return canonical_options(options)
    except OverlayError:
        return None


def _by_kind(options):
    """``{kind: [(index, option)]}`` of ``options``."""
    found: Dict[str, List[Tuple[int, str]]] = {}
    for index, option in enumerate(options):
        found.setdefault(_kind(option), []).append((index, option))
    return found


def _keep_overlay_options(have, want):
    """Indexes of the overlay options ``have`` that stay, and the ``want`` ones to write: one per name."""
    if _canonical([o for _i, o in have]) == _canonical(want):
        return [i for i, _o in have], []
    kept, done = [], set()
    for index, option in have:
        name = option.partition("=")[0]
        match = next((w for w in want if w.partition("=")[0] == name), None)
        if name not in done and match is not None and _canonical([option]) == _canonical([match]):
            kept.append(index)
            done.add(name)
    return kept, [w for w in want if w.partition("=")[0] not in done]


def _keep_flags(have, decl):
    """Indexes of the per-mount flags ``have`` that stay, and the declared flags to write."""
    if persisted_flags([o for _i, o in have]) == decl.flags:
        return [i for i, _o in have], []
    state = parse_flags(decl.flags)
    kept = [i for i, o in have if state[GROUP_OF[o.strip()].name] == o.strip()]
    groups = {GROUP_OF[o.strip()].name for i, o in have if i in kept}
    return kept, [f for f in decl.flags if GROUP_OF[f].name not in groups]


def _keep_boot(have, want):
    """Indexes of the boot options ``have`` that stay, and the ``want`` ones to write (a multiset)."""
    remaining, kept = list(want), []
    neutral = _AUTOMOUNT in want
    for index, option in have:
        if option in remaining:
            remaining.remove(option)
            kept.append(index)
        elif option == "noauto" and neutral:
            kept.append(index)
    return kept, [o for o in remaining if not (o == "noauto" and neutral)]


def _keep_layers(have, wanted, parsed, decl, facts, resolve):
    """Indexes of the layer options that stay, the rendered ones to write, and the dirs of the edited line.

    The lower list (data layers included) stays as written when it names
    the declared layers and mount(8) can pass it at boot; upper and work dir
    each when they name the declared dir.
    """
    spelled = decl.as_spelled()
    lower = have.get("lower", [])
    same = {
        "lower": all((_means_same_dir(parsed["lowerdir"], decl, "lowerdir", resolve),
                      _means_same_dir(parsed["datadir"], decl, "datadir", resolve),
                      _mounts_at_boot(",".join(o for _i, o in lower), facts))),
        "upperdir": _means_same_dir(parsed["upperdir"], decl, "upperdir", resolve),
        "workdir": _means_same_dir(parsed["workdir"], decl, "workdir", resolve),
    }
    kept = [i for kind in _LAYER_KINDS if same[kind] for i, _o in have.get(kind, [])]
    missing = [o for kind in _LAYER_KINDS if not same[kind] for o in wanted.get(kind, [])]
    dirs = {field: parsed[field] if same["lower" if field in ("lowerdir", "datadir") else field] else getattr(spelled, field)
            for field in decl.DIR_FIELDS}
    return kept, missing, dirs


def _keep_requires(have, needed):
    """Indexes of the ``x-systemd.requires-mounts-for=`` options that stay, and the ones to write for ``needed``."""
    need = {normalize(p) for p in needed}
    kept, covered = [], set()
    for index, option in have:
        paths = {normalize(p) for p in parse_overlay_options(option)["requires_mounts_for"]}
        if paths and paths <= need:
            kept.append(index)
            covered |= paths
    missing = []
    for path in needed:
        if normalize(path) not in covered:
            covered.add(normalize(path))
            missing.append(requires_mounts_for_option(normalize(path)))
    return kept, missing


def _kept_options(options, want, entry, decl, facts, resolve):
    """``(indexes of options kept as written, options to write)`` for the minimal edit; (None, None) if none fits."""
    have = _by_kind(options)
    wanted = {kind: [o for _i, o in found] for kind, found in _by_kind(want).items()}
    kept, missing, dirs = _keep_layers(have, wanted, parse_overlay_options(entry.mntops), decl, facts, resolve)
    needed = _line_needs(dirs, decl, resolve)
    if needed is None:
        return None, None
    kept += [i for kind in ("defaults", MANAGED_OPTION) for i, _o in have.get(kind, [])]
    missing += [] if have.get(MANAGED_OPTION) else [MANAGED_OPTION]
    for more, to_write in (_keep_overlay_options(have.get("option", []), wanted.get("option", [])),
                           _keep_flags(have.get("flag", []), decl),
                           _keep_boot(have.get("boot", []), wanted.get("boot", [])),
                           _keep_requires(have.get("requires", []), needed)):
        kept += more
        missing += to_write
    # What is written goes in the order of the rendered line.
    order = {option: n for n, option in reversed(list(enumerate(want)))}
    return kept, sorted(missing, key=lambda o: order.get(o, len(want)))


def _assemble(options, kept, missing, want):
    """``options`` edited: kept ones as they are, one removed and one missing of the same key swapped in place.

    A new lower, upper or work option goes where the first removed one of
    its kind was (a lower list changing form is replaced as a block), else
    after the line's last layer option. Any other goes at the end, but
    before the options that end the line and come after it in the rendered
    line ``want`` (the marker and the requirements of a line the collection
    wrote): such a line edited reads as the rendered one.
    """
    kept = set(kept)
    removed = [i for i in range(len(options)) if i not in kept]
    in_place = {}
    for key in {_key(options[i]) for i in removed}:
        gone = [i for i in removed if _key(options[i]) == key]
        new = [n for n, o in enumerate(missing) if _key(o) == key]
        if len(gone) == 1 and len(new) == 1:
            in_place[gone[0]] = new[0]
    rest = [o for n, o in enumerate(missing) if n not in in_place.values()]
    anchors: Dict[str, int] = {}
    for i in removed:
        if i not in in_place and _kind(options[i]) in _LAYER_KINDS:
            anchors.setdefault(_kind(options[i]), i)
    out = []
    for index, option in enumerate(options):
        if index in in_place:
            out.append(missing[in_place[index]])
        elif index in kept:
            out.append(option)
        out += [o for o in rest if anchors.get(_kind(o)) == index]
    floating = [o for o in rest if _kind(o) in _LAYER_KINDS and _kind(o) not in anchors]
    at = max([n + 1 for n, o in enumerate(out) if _kind(o) in _LAYER_KINDS] or [0])
    out[at:at] = floating
    order = {option: n for n, option in reversed(list(enumerate(want)))}
    for option in rest:
        rank = order.get(option)
        if _kind(option) in _LAYER_KINDS:
            continue
        at = len(out)
        while rank is not None and at and order.get(out[at - 1], -1) > rank:
            at -= 1
        out.insert(at, option)
    return out


def adopted_line(entry: Any, decl: Declaration, rendered: str, facts: Optional[HostFacts] = None,
                 resolve: Optional[Callable[[str], str]] = None) -> Optional[str]:
    """The existing line of ``entry`` edited into ``decl``'s, or None where only ``rendered`` will do.

    The edit keeps what means the same (see :func:`_entry_matches`): the
    source field, the mount point and every field as written, the order of
    the options that stay, ``defaults``, paths spelled apart from (or
    through a symlink to) the declared dirs. It replaces in place an option
    whose value changes, removes what the declaration does not have, and
    appends what is missing, in the rendered line's order and spelling
    (``rendered``: :func:`fstab_line`'s text, whose escaping every new
    option keeps). freq and passno become 0. None when the line's options
    cannot be split and joined back, or the edited line would not be
    ``decl``'s (e.g. it would not mount at boot on this host).
    """
    options = split_options(entry.mntops)
    if split_options(",".join(options)) != options:
        return None
    want = split_options(_fstab.make_line(rendered, "").entry.mntops)
    kept, missing = _kept_options(options, want, entry, decl, facts, resolve)
    if kept is None:
        return None
    edited = _assemble(options, kept, missing, want)
    if split_options(",".join(edited)) != edited:
        return None
    text = _fstab.edit_entry(entry.raw, None if edited == options else edited)
    new = _fstab.make_line(text, "").entry
    if new is None or (new.file, new.vfstype) != (entry.file, "overlay") or not _entry_matches(new, decl, facts, resolve):
        return None
    return text


def _minus(first, second):
    """The items of ``first`` not in ``second``, as multisets, in ``first``'s order."""
    remaining, out = list(second), []
    for item in first:
        if item in remaining:
            remaining.remove(item)
        else:
            out.append(item)
    return out


def line_changes(old: Any, new: Any) -> List[Dict[str, Any]]:
    """What changed from the entry ``old`` to ``new``, one dict per change, in line order.

    ``{"option": OPTION, "change": "added" | "removed"}``; an option whose
    value changed in place (one removed and one added of the same name, or
    of the same per-mount flag group) is ``{"option": NAME, "change":
    "changed", "old": OPTION, "new": OPTION}``; ``{"field": "source" |
    "path" | "freq/passno", "change": "changed", "old": ..., "new": ...}``
    for the other fields.
    """
    changes = [{"field": field, "change": "changed", "old": a, "new": b}
               for field, a, b in (("source", old.spec, new.spec), ("path", old.file, new.file)) if a != b]
    before, after = split_options(old.mntops), split_options(new.mntops)
    removed, added = _minus(before, after), _minus(after, before)
    swapped = {}
    for key in {_key(o) for o in removed}:
        gone, new_ones = [o for o in removed if _key(o) == key], [o for o in added if _key(o) == key]
        if len(gone) == 1 and len(new_ones) == 1:
            swapped[gone[0]] = new_ones[0]
    for option in removed:
        if option in swapped:
            changes.append({"option": swapped[option].partition("=")[0], "change": "changed",
                            "old": option, "new": swapped[option]})
        else:
            changes.append({"option": option, "change": "removed"})
    changes += [{"option": o, "change": "added"} for o in added if o not in swapped.values()]
    if (old.freq, old.passno) != (new.freq, new.passno):
        changes.append({"field": "freq/passno", "change": "changed", "old": "%d %d" % (old.freq, old.passno),
                        "new": "%d %d" % (new.freq, new.passno)})
    return changes


def describe_changes(changes: Sequence[Dict[str, Any]]) -> str:
    """:func:`line_changes` as one phrase: ``added X, removed Y, lowerdir=/a changed to lowerdir=/b``."""
    words = []
    for change in changes:
        if change["change"] == "changed":
            words.append("%s %s changed to %s" % ("" if "option" in change else change["field"], change["old"], change["new"]))
        else:
            words.append("%s %s" % (change["change"], change["option"]))
    return ", ".join(word.strip() for word in words)


def edit_fstab(text: str, decl: Declaration, keep: bool, facts: Optional[HostFacts] = None,
               render: Optional[Callable[[], Rendered]] = None,
               realpath: Optional[Callable[[str], str]] = None) -> Tuple[str, Dict[str, Any]]:
    """The new fstab text for ``decl``: its overlay entry set (``keep``) or removed.

    Returns ``(new_text, info)``; ``info`` has ``duplicates`` (extra entries
    for the same mount point that were collapsed), ``removed``, ``notes``
    (sentences about the line written, shown as warnings), ``changes``
    (what the edit of an existing line changed, :func:`line_changes`) and
    ``adopted`` (that line was not marked as the collection's); ``render``
    returns the line (:func:`fstab_line` by default), when one must be
    written. Lines of other mount points are never changed; the line written
    goes where ``mount -a`` needs it (see :func:`edit_lines`). A non-overlay
    entry for the same mount point is an error when the overlay is to be
    written. ``realpath``: where a path leads now (see :func:`edit_lines`).
    """
    lines = _fstab.parse(text)
    new_lines, info = edit_lines(lines, decl, keep, facts, render, realpath)
    return (text if new_lines is lines else _fstab.render(new_lines)), info


def edit_lines(lines: List[Any], decl: Declaration, keep: bool, facts: Optional[HostFacts] = None,
               render: Optional[Callable[[], Rendered]] = None,
               realpath: Optional[Callable[[str], str]] = None) -> Tuple[List[Any], Dict[str, Any]]:
    """:func:`edit_fstab` on parsed lines: ``(new_lines, info)``, ``lines`` itself when unchanged.

    Lines are found by their mount point as written and, with ``realpath``,
    where it leads (a line spelling the mount point through a symlink is the
    overlay's line). The line written (or kept) comes after every line that
    mounts what it needs and before every line that needs it
    (``_formats.fstab_order``); the other lines keep their order. With
    ``decl.marked_only`` (a prune), only lines carrying the collection's
    marker are removed.
    """
    draft = FstabDraft(lines, layout=layout_of(lines, realpath))
    info = edit_draft(draft, decl, keep, facts, render, realpath)
    return draft.result(), info


_LAYOUTS: Dict[int, Tuple[Any, Any, Layout]] = {}
_RESOLVERS: List[Tuple[Any, Callable[[str], str]]] = []


def host_resolver(realpath: Callable[[str], str]) -> Callable[[str], str]:
    """``files.path_resolver`` over the host's ``realpath``, one per resolver (the session's), kept for the run."""
    for known, resolver in _RESOLVERS:
        if known == realpath:
            return resolver
    resolver = files.path_resolver(realpath)
    _RESOLVERS[:] = [(realpath, resolver)]
    return resolver


def layout_of(lines: Sequence[Any], realpath: Optional[Callable[[str], str]] = None, fresh: bool = False) -> Layout:
    """The :class:`Layout` of ``lines`` with paths resolved by ``realpath``, built once per list.

    Planning looks the same fstab up for every overlay of a batch; the
    paths are resolved once. ``fresh``: build it
    anew, as a write does on the text it read under the lock.
    """
    cached = _LAYOUTS.get(id(lines))
    if not fresh and cached is not None and cached[0] is lines and cached[1] == realpath:
        return cached[2]
    layout = Layout(lines, realpath)
    if len(_LAYOUTS) > 8:
        _LAYOUTS.clear()
    _LAYOUTS[id(lines)] = (lines, realpath, layout)
    return layout


def _decl_needs(decl):
    """The paths the overlay's line needs mounted, as they lead now (the declaration is resolved)."""
    return [path for _field, path in decl.named_dirs()]


def new_info() -> Dict[str, Any]:
    """The ``info`` of an edit that changed nothing (see :func:`edit_fstab`)."""
    return {"duplicates": 0, "removed": 0, "notes": [], "changes": [], "adopted": False}


def edit_draft(draft: FstabDraft, decl: Declaration, keep: bool, facts: Optional[HostFacts] = None,
               render: Optional[Callable[[], Rendered]] = None,
               realpath: Optional[Callable[[str], str]] = None) -> Dict[str, Any]:
    """Make ``decl``'s edit (see :func:`edit_lines`) on ``draft``; returns the ``info`` of :func:`edit_fstab`.

    A batch makes the edits of many overlays on one draft and renders it
    once. Raises OverlayError before changing the draft.
    """
    path = decl.path
    info = new_info()
    if not keep:
        found = [slot for slot, entry in draft.at(path)
                 if not decl.marked_only or entry_config(entry)["managed"]]
        for slot in found:
            draft.remove(slot)
        info["removed"] = len(found)
        return info
    others = [entry for _slot, entry in draft.at(path, vfstype=None) if entry.vfstype != "overlay"]
    if others:
        raise OverlayError(
            "fstab already has a %s entry for %s (%r); an overlay cannot be persisted at the same "
            "mount point: remove that line or choose another path" % (others[0].vfstype, path, others[0].raw))
    entries = draft.at(path)
    if entries and _entry_matches(entries[0][1], decl, facts, realpath):
        # Keep the user's own spelling of an equivalent line; drop duplicates.
        first = entries[0][0]
    else:
        line, info["notes"] = render() if render is not None else fstab_line(decl, facts)
        first = entries[0][0] if entries else None
        if first is None:
            draft.append(line, _decl_needs(decl))
        else:
            # The existing line, edited as little as it takes; every change named.
            old = entries[0][1]
            line = adopted_line(old, decl, line, facts, realpath) or line
            info["changes"] = line_changes(old, _fstab.make_line(line, "").entry)
            info["adopted"] = not entry_config(old)["managed"]
            draft.replace(first, line, _decl_needs(decl))
    for slot, _entry in entries[1:]:
        draft.remove(slot)
    info["duplicates"] = max(len(entries) - 1, 0)
    if first is not None:
        draft.keep(first, _decl_needs(decl))
    return info


def persisted_entries(text: str, path: str, realpath: Optional[Callable[[str], str]] = None) -> List[Dict[str, Any]]:
    """The configs of every overlay fstab entry for ``path`` (as written, or leading there), in file order."""
    lines = _fstab.parse(text)
    found = [lines[n].entry for n in layout_of(lines, realpath).at(path)]
    return [entry_config(e) for e in found if e.vfstype == "overlay"]


def restore_text(module: Any, path: str, written: str, original: Optional[str]) -> None:
    """Put ``path`` back to ``original`` (None: no file) unless it changed since ``written``."""
    if files.read_text(path) != written:
        raise OverlayError("it was changed by another program meanwhile and is left as it is now")
    if original is None:
        files.remove_file(path)
    else:
        files.write_atomic(module, path, original, step="restoring fstab")


def _reload_or_restore(module, path, written, original):
    """systemctl daemon-reload after a group's fstab write; on failure put the file back.

    Returns ``(None, False)``, or the OverlayError to fail the group's
    entries with and whether the file was put back.
    """
    try:
        files.systemctl(module, "daemon-reload")
        return None, False
    except OverlayError as error:
        message = "systemctl daemon-reload after writing %s failed: %s" % (path, error.message)
    restored = False
    try:
        restore_text(module, path, written, original)
        restored = True
        message += "; %s was put back as it was" % path
        files.systemctl(module, "daemon-reload")
    except (OverlayError, OSError) as error:
        message += "; then: %s" % getattr(error, "message", error)
    return OverlayError(message), restored


def _edit_together(current, members):
    """Make each member's edit on the text ``current``: ``(new text, failed, written, excerpt)``.

    The edits are made on one draft of the file's lines, rendered once.
    ``failed`` are ``(entry, OverlayError)`` of edits that failed now;
    ``written`` the ``(entry, backend)`` whose edit changed the text;
    ``excerpt`` what findmnt needs to check the lines written
    (``FstabDraft.excerpt``).
    """
    failed, written, kept = [], [], []
    lines = _fstab.parse(current or "")
    resolve = next((backend.resolve for _entry, backend in members if backend.resolve is not None), None)
    draft = FstabDraft(lines, layout=layout_of(lines, resolve, fresh=True))
    for entry, backend in members:
        if current is None and not backend.keep:
            continue
        edits = draft.edits
        try:
            edit_draft(draft, backend.decl, backend.keep, backend.facts, backend.rendered, backend.resolve)
        except OverlayError as error:
            failed.append((entry, error))
            continue
        (written if draft.edits != edits else kept).append((entry, backend))
    try:
        new_lines = draft.result()
    except OverlayError as error:  # no order of the new lines works: none is written
        return current or "", failed + [(entry, error) for entry, _backend in written + kept], [], None
    if new_lines is lines:
        return current or "", failed, [], None
    return _fstab.render(new_lines), failed, written + kept, draft.excerpt()


def _write_together(module, path, new, current, written, excerpt):
    """Back up (when a member asked), check and write ``new``, then reload systemd.

    Returns ``(backup file or None, None)``, or the OverlayError that fails
    every written member (the file then is as it was, and no backup is left).
    """
    backup_file = None
    text, targets = excerpt

    def check(_tmp):
        # One findmnt run over the new lines and the lines they mount under;
        # a mount point still to be created is no fault here.
        files.findmnt_verify(module, text, targets, missing_ok=True)

    try:
        if current is not None and any(backend.decl.backup for _entry, backend in written):
            backup_file = files.backup(path)
        files.write_atomic(module, path, new, validate=check if targets else None, step="writing fstab")
    except Exception as error:  # whatever went wrong, no member's line was written
        if backup_file:
            files.remove_file(backup_file)
        return None, error if isinstance(error, OverlayError) else OverlayError("writing %s failed: %s" % (path, error))
    if any(backend.facts.booted for _entry, backend in written):
        reason, restored = _reload_or_restore(module, path, new, current)
        if reason is not None:
            if backup_file and restored:
                files.remove_file(backup_file)
            return None, reason
    return backup_file, None


class FstabBackend(Backend):
    """Overlays as lines of an fstab file (``persist: fstab``)."""

    name = "fstab"
    location = "fstab"
    many = True
    batched = True
    batched_step = "write_fstab"

    @classmethod
    def configs_in(cls, sources: Iterable[Tuple[str, Optional[str]]],
                   readlink: Optional[Callable[[str], Optional[str]]] = None) -> Dict[str, List[Dict[str, Any]]]:
        """``{mount point: [configs]}`` of the overlay lines in ``sources``.

        Keyed by each line's mount point as written (normalised), in file
        order: a line spelled through a symlink keeps its spelling here, so a
        caller comparing with resolved paths resolves the keys (two keys may
        then name one mount point). ``managed`` in each config says whether
        the line carries the collection's marker (prune touches no other).
        """
        found = {}
        for _file, text in sources:
            for line in _fstab.parse(text or ""):
                entry = line.entry
                if entry is not None and entry.vfstype == "overlay":
                    found.setdefault(_fstab.normalize_mount_point(entry.file), []).append(entry_config(entry))
        return found

    @classmethod
    def scan(cls, locations: Iterable[str], readlink: Optional[Callable[[str], Optional[str]]] = None) -> Dict[str, List[Dict[str, Any]]]:
        return cls.configs_in([(path, files.read_text(path)) for path in locations], readlink)

    @classmethod
    def boot_drift(cls, conf: Dict[str, Any], persisted: Dict[str, Any], extras: List[str], boot: bool) -> List[Tuple[str, Any, Any]]:
        """Also ``requires_mounts_for`` when the line lacks one its dirs need for boot.

        Those are the line's own lower, data, upper and work dirs, and
        ``conf["also_needs"]`` when given: where its paths lead now (the
        drift report adds it). ``noauto`` beside ``x-systemd.automount`` is
        no boot option drift (systemd ignores it there).
        """
        rows = []
        have = list(conf.get("boot_options") or [])
        if _boot_set(extras) != _boot_set(have):
            rows.append(("boot_options", list(extras), have))
        if not conf.get("managed", True):
            rows.append(("managed", True, False))
        needed = requires_mounts_for(conf.get("lowerdir") or [], conf.get("upperdir"), conf.get("workdir"),
                                     conf.get("datadir") or [], list(conf.get("also_needs") or []) + _declared_requires(extras))
        required = list(conf.get("requires_mounts_for") or [])
        if {normalize(p) for p in needed} - {normalize(p) for p in required}:
            rows.append(("requires_mounts_for", needed, required))
        return rows

    def __init__(self, decl: Declaration, facts: HostFacts, realpath: Optional[Callable[[str], str]] = None) -> None:
        super().__init__(decl, facts, realpath)
        # Many paths of one file are resolved at once: by their parent dirs.
        self.resolve = host_resolver(realpath) if realpath is not None else None
        self.path = decl.fstab
        self.before = self.after = None
        self.info = new_info()
        self._rendered: Optional[Rendered] = None
        self._after_entries: Optional[Tuple[str, List[Dict[str, Any]]]] = None

    def read(self, touch: bool) -> None:
        if touch and not os.path.isdir(os.path.dirname(self.path) or "."):
            raise OverlayError(
                "fstab: the directory of %s does not exist; give an fstab path in an existing "
                "directory" % self.path)
        self.before = self.after = files.read_text_again(self.path)

    def plan(self, keep: bool) -> List[str]:
        self.keep = keep
        if self.before is None and not keep:
            return []
        text = self.before or ""
        lines = _fstab.parse(text)
        draft = FstabDraft(lines, layout=layout_of(lines, self.resolve))
        self.info = edit_draft(draft, self.decl, self.keep, self.facts, self.rendered, self.resolve)
        new_lines = draft.result()
        self.after = text if new_lines is lines else _fstab.render(new_lines)
        # The lines for the mount point after the edit, read off the draft:
        # the new text need not be indexed again for them.
        self._after_entries = (self.after, [entry_config(e) for _slot, e in draft.at(self.decl.path)])
        if self.before is None and self.after == "":
            self.after = None
        return self.info["notes"]

    def plan_warnings(self, check_mode: bool) -> List[str]:
        warnings = []
        if self.info["duplicates"]:
            warnings.append("%s has %d more overlay entries for %s; they %s collapsed into one" % (
                self.path, self.info["duplicates"], self.decl.path, "would be" if check_mode else "were"))
        if self.info["adopted"] and self.info["changes"]:
            warnings.append("%s: the overlay line for %s was not written by this collection; it %s taken over "
                            "with these changes: %s" % (self.path, self.decl.path, "would be" if check_mode else "was",
                                                        describe_changes(self.info["changes"])))
        return warnings

    def adopted_changes(self) -> List[Dict[str, Any]]:
        """What the plan changes in the existing line for the mount point (:func:`line_changes`); [] for none.

        ``self.info["adopted"]`` says whether that line was someone else's
        (hand-written, or written by another tool) before.
        """
        return list(self.info["changes"])

    @property
    def changed(self) -> bool:
        return self.after != self.before

    def actions(self) -> List[Dict[str, Any]]:
        return [{"action": "write_fstab", "path": self.path}] if self.changed else []

    def persisted(self, after: bool = True) -> Dict[str, Any]:
        text = self.after if after else self.before
        known = self._after_entries
        if known is not None and known[0] == (text or ""):
            return {self.name: list(known[1])}
        return {self.name: persisted_entries(text or "", self.decl.path, self.resolve)}

    def diffs(self) -> List[Dict[str, str]]:
        return file_diff(self.path, self.before, self.after) if self.changed else []

    @property
    def steps(self) -> Dict[str, Callable[[StepContext], Optional[Undo]]]:
        return {"write_fstab": self._write}

    def lock_dir(self) -> Optional[str]:
        return os.path.dirname(self.path) or "."

    def stale_file(self) -> Optional[str]:
        return self.path

    def _write(self, ctx):
        """Edit fstab again on the text read now (under the lock), check the line, write it.

        In a batch the edit waits: once the task has carried out all its
        steps, it joins the edits of the batch's other entries to the same
        file, which :meth:`write_together` makes at once after their mounts
        are verified.
        """
        if ctx.defer(self.path, self):
            return None
        current = files.read_text(self.path)
        if current is None and not self.keep:
            return None
        lines = _fstab.parse(current or "")
        draft = FstabDraft(lines, layout=layout_of(lines, self.resolve, fresh=True))
        edit_draft(draft, self.decl, self.keep, self.facts, self.rendered, self.resolve)
        new_lines = draft.result()
        new = current or "" if new_lines is lines else _fstab.render(new_lines)
        if new == (current or ""):
            return None
        backup_file = None
        if self.decl.backup and current is not None:
            ctx.step = "backup"
            backup_file = files.backup(self.path)
            ctx.step = "write_fstab"
        text, targets = draft.excerpt()

        def check(_tmp):
            # The line written and the lines it mounts under: not the whole file.
            files.findmnt_verify(ctx.module, text, targets)

        try:
            files.write_atomic(ctx.module, self.path, new, validate=check if self.keep and targets else None,
                               step="writing fstab")
        except Exception:
            if backup_file:  # fstab did not change: a backup of it would only mislead
                files.remove_file(backup_file)
            raise
        if backup_file:
            ctx.result["backup_file"] = backup_file
        return lambda: self._restore(ctx.module, new, current)

    def rendered(self) -> Rendered:
        """This overlay's fstab line and its notes, rendered once (:func:`fstab_line`)."""
        if self._rendered is None:
            self._rendered = fstab_line(self.decl, self.facts)
        return self._rendered

    def _line(self) -> str:
        return self.rendered().text

    def release(self) -> None:
        self.before = self.after = self._after_entries = None

    @classmethod
    def write_together(cls, module: Any, location: str, members: List[Tuple[Any, "Backend"]]) -> List[Tuple[Any, OverlayError]]:
        """Make the fstab edits of a batch's overlays (``[(entry, backend)]``) in one write.

        Under the lock the file is read afresh and each member's edit is made
        again on it, in order, as :meth:`_write` does for one overlay; a
        member whose edit fails now fails alone. The new lines go where
        ``mount -a`` needs them (an order the file makes impossible fails
        every member), are checked with one findmnt run over them and the
        lines they mount under (a fault fails the write), and the file is written once
        (with one backup when any member asked for it). Where systemd runs,
        ``daemon-reload`` follows, so that its fstab generator sees the new
        lines; if that fails, the file is put back as it was. Returns the
        failed members, ``[(entry, OverlayError)]``: all of them when writing
        or reloading failed.
        """
        path = location
        with files.DirectoryLock(os.path.dirname(path) or "."):
            current = files.read_text(path)
            new, failed, written, excerpt = _edit_together(current, members)
            if not written or new == (current or ""):
                return failed
            backup_file, reason = _write_together(module, path, new, current, written, excerpt)
            if reason is not None:
                return failed + [(entry, reason) for entry, _backend in written]
        for entry, backend in written:
            if backup_file and backend.decl.backup:
                entry.result["backup_file"] = backup_file
        return failed

    def _restore(self, module, written, original):
        restore_text(module, self.path, written, original)
