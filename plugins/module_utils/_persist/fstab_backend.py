# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Persistence backend ``fstab``: one line per overlay in an fstab file.

:func:`edit_fstab` is a pure function of the fstab text, so a task runs it
once to plan (check mode, diff) and again on the text it reads under the
lock, where a concurrent run may have changed other lines meanwhile. Lines of
other mount points are never touched; a line this collection wrote carries
``_formats.fstab_syntax.MANAGED_OPTION``.
"""

import functools
import os
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from ansible_collections.overlayfs.mounts.plugins.module_utils._formats import fstab_syntax as _fstab
from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.escape import split_options
from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.fstab_order import FstabDraft, Layout
from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.fstab_syntax import MANAGED_OPTION
from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.mount_data import (
    VALUE_MAX,
    Rendered,
    parse_overlay_options,
)
from ansible_collections.overlayfs.mounts.plugins.module_utils._host import files
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.declaration import Declaration
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.facts import HostFacts
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.layers import requires_mounts_for
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.mount_flags import persisted_flags, split_flags
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


def _fits_fsconfig(mntops):
    """True when every option value of ``mntops`` fits one fsconfig() call."""
    return all(len(option.partition("=")[2].encode("utf-8", "surrogateescape")) <= VALUE_MAX
               for option in split_options(mntops) if not option.startswith("x-"))


def _leads_to(spelled, real, resolve):
    """True when the path or paths ``spelled`` lead to ``real`` (resolved) now."""
    if isinstance(spelled, list) and isinstance(real, list):
        return len(spelled) == len(real) and all(_leads_to(a, b, resolve) for a, b in zip(spelled, real))
    if isinstance(spelled, str) and isinstance(real, str):
        return resolve(normalize(spelled)) == real
    return spelled == real


def _entry_matches(entry, decl, fsconfig=None, resolve=None):
    """True when an existing fstab entry already says what we would write.

    On a host whose mount(8) uses fsconfig(), a line written for mount(2) (a
    lower list over 255 bytes, e.g. before util-linux was upgraded) would not
    mount at boot, so it does not count as matching. With ``resolve`` (where
    a path leads now), a layer, upper or work path spelled otherwise than
    declared matches when it leads to the same directory; the line must then
    require, for boot, the mounts of its own paths and of where they lead.
    """
    if entry.spec != "overlay" or entry.freq or entry.passno:
        return False
    if fsconfig and not _fits_fsconfig(entry.mntops):
        return False
    have = entry_config(entry)
    spelled = decl.as_spelled()
    want = spelled.config()
    if not have["managed"] or any(have[key] != want[key] for key in decl.FIELDS
                                  if key != "path" and key not in decl.DIR_FIELDS):
        return False
    if sorted(have["boot_options"]) != sorted(decl.boot_extras):
        return False
    # Paths compare as paths: a line spelling /srv/l1/ or /srv//l1 is adopted as it is.
    if all(same_path(have[key], want[key]) for key in decl.DIR_FIELDS):
        required = requires_mounts_for(spelled.lowerdir, spelled.upperdir, spelled.workdir, spelled.datadir,
                                       spelled.also_needs)
    elif resolve is not None and all(_leads_to(have[key], getattr(decl, key), resolve) for key in decl.DIR_FIELDS):
        dirs = [normalize(p) for p in have["lowerdir"] + have["datadir"] + [have["upperdir"], have["workdir"]] if p]
        required = requires_mounts_for(have["lowerdir"], have["upperdir"], have["workdir"], have["datadir"],
                                       [resolve(p) for p in dirs if resolve(p) != p])
    else:
        return False
    return {normalize(p) for p in have["requires_mounts_for"]} == {normalize(p) for p in required}


def edit_fstab(text: str, decl: Declaration, keep: bool, facts: Optional[HostFacts] = None,
               render: Optional[Callable[[], Rendered]] = None,
               realpath: Optional[Callable[[str], str]] = None) -> Tuple[str, Dict[str, Any]]:
    """The new fstab text for ``decl``: its overlay entry set (``keep``) or removed.

    Returns ``(new_text, info)``; ``info`` has ``duplicates`` (extra entries
    for the same mount point that were collapsed), ``removed`` and ``notes``
    (sentences about the line written, shown as warnings); ``render``
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


def edit_draft(draft: FstabDraft, decl: Declaration, keep: bool, facts: Optional[HostFacts] = None,
               render: Optional[Callable[[], Rendered]] = None,
               realpath: Optional[Callable[[str], str]] = None) -> Dict[str, Any]:
    """Make ``decl``'s edit (see :func:`edit_lines`) on ``draft``; returns the ``info`` of :func:`edit_fstab`.

    A batch makes the edits of many overlays on one draft and renders it
    once. Raises OverlayError before changing the draft.
    """
    path = decl.path
    info: Dict[str, Any] = {"duplicates": 0, "removed": 0, "notes": []}
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
    if entries and _entry_matches(entries[0][1], decl, facts.fsconfig if facts else None, realpath):
        # Keep the user's own spelling of an equivalent line; drop duplicates.
        first = entries[0][0]
    else:
        line, info["notes"] = render() if render is not None else fstab_line(decl, facts)
        first = entries[0][0] if entries else None
        if first is None:
            draft.append(line, _decl_needs(decl))
        else:
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
        rows = []
        have = list(conf.get("boot_options") or [])
        if sorted(extras) != sorted(have):
            rows.append(("boot_options", list(extras), have))
        if not conf.get("managed", True):
            rows.append(("managed", True, False))
        return rows

    def __init__(self, decl: Declaration, facts: HostFacts, realpath: Optional[Callable[[str], str]] = None) -> None:
        super().__init__(decl, facts, realpath)
        # Many paths of one file are resolved at once: by their parent dirs.
        self.resolve = host_resolver(realpath) if realpath is not None else None
        self.path = decl.fstab
        self.before = self.after = None
        self.info = {"duplicates": 0, "removed": 0, "notes": []}
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
        if not self.info["duplicates"]:
            return []
        return ["%s has %d more overlay entries for %s; they %s collapsed into one" % (
            self.path, self.info["duplicates"], self.decl.path, "would be" if check_mode else "were")]

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
