# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parse /proc/self/mountinfo, keeping the super options that hold an overlay's layers.

Pure text in, plain objects out. A container host has hundreds of overlay
mounts, so one pass over the lines does all the work and the overlay options
are only split for the entries that are overlays.
"""

import posixpath
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence

from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.escape import (
    decode_octal,
    split_layers,
    split_options,
    unescape_layer,
)
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.paths import inside


class MountEntry:
    """One line of mountinfo; text fields are already unescaped."""

    __slots__ = (
        "mount_id", "parent_id", "device", "root", "mount_point", "mount_options",
        "optional", "fstype", "source", "super_options", "derived",
    )

    def __init__(self, mount_id: int, parent_id: int, device: str, root: str, mount_point: str,
                 mount_options: List[str], optional: List[str], fstype: str, source: str,
                 super_options: str) -> None:
        self.mount_id = mount_id
        self.parent_id = parent_id
        self.device = device
        self.root = root
        self.mount_point = mount_point
        self.mount_options = mount_options
        self.optional = optional
        self.fstype = fstype
        self.source = source
        self.super_options = super_options
        # What pure functions of this line computed from it, kept for the
        # next read of mountinfo (``parse`` hands out the same entry for
        # the same line); None until one keeps something.
        self.derived = None

    @property
    def is_overlay(self) -> bool:
        """True for an overlay mount."""
        return self.fstype == "overlay"

    def __repr__(self) -> str:
        return "MountEntry(%d, %r, %r)" % (self.mount_id, self.mount_point, self.fstype)


def parse_line(line: str) -> Optional[MountEntry]:
    """Parse one mountinfo line; return None for a line that is not one."""
    fields = line.split(" ")
    try:
        sep = fields.index("-", 6)
        # Positional arguments: this runs once per line of a busy host's mountinfo.
        return MountEntry(
            int(fields[0]), int(fields[1]), fields[2], decode_octal(fields[3]),
            decode_octal(fields[4]), fields[5].split(","), fields[6:sep], fields[sep + 1],
            decode_octal(fields[sep + 2]),
            # Left escaped: a path's comma shows as \054 and must not split.
            " ".join(fields[sep + 3:]),
        )
    except (ValueError, IndexError):
        return None


# Entries already parsed, by their line. A batch reads mountinfo again after
# every overlay it mounts, and all but the new lines were seen before: a
# line's entry depends on nothing but its text (and entries are never
# changed), so each line is parsed once per run.
_PARSED_LINES = {}
_PARSED_LINES_LIMIT = 100000


def parse(text: str) -> List[MountEntry]:
    """All entries of a mountinfo text, in file order (later mounts last)."""
    entries = []
    append = entries.append
    known = _PARSED_LINES
    if len(known) > _PARSED_LINES_LIMIT:
        known.clear()
    for line in text.split("\n"):
        entry = known.get(line)
        if entry is None:
            if not line:
                continue
            entry = parse_line(line)
            if entry is None:
                continue
            known[line] = entry
        append(entry)
    return entries


# A '"' in these values is part of a path, never the start of a quoted value.
_LAYER_KEYS = ("lowerdir", "lowerdir+", "datadir+", "upperdir", "workdir")


def overlay_config(entry: MountEntry) -> Dict[str, Any]:
    """Split an overlay entry's super options into layers, upper, work and options.

    Returns a dict with ``lowerdir`` (top layer first), ``datadir`` (data-only
    layers), ``upperdir``, ``workdir`` (or None), ``options`` (the remaining
    overlay options, in mountinfo order), ``vfs`` (``rw``/``ro`` from the super
    options) and ``form``: ``lowerdir`` for the legacy ``lowerdir=a:b`` form,
    ``lowerdir+`` for one entry per layer.
    """
    lowerdir, datadir, options = [], [], []
    upperdir = workdir = None
    form = None
    vfs = None
    for raw in split_options(entry.super_options, _LAYER_KEYS):
        key, sep, value = raw.partition("=")
        if key == "lowerdir":
            # Shown as given to the kernel: still holds its \: \, \\ escapes.
            lowerdir, datadir = split_layers(decode_octal(value))
            form = "lowerdir"
        elif key == "lowerdir+":
            lowerdir.append(decode_octal(value))
            form = "lowerdir+"
        elif key == "datadir+":
            datadir.append(decode_octal(value))
        elif key == "upperdir":
            upperdir = unescape_layer(decode_octal(value))
        elif key == "workdir":
            workdir = unescape_layer(decode_octal(value))
        elif key in ("rw", "ro") and not sep:
            vfs = key
        else:
            options.append(decode_octal(raw))
    return {
        "lowerdir": lowerdir,
        "datadir": datadir,
        "upperdir": upperdir,
        "workdir": workdir,
        "options": options,
        "vfs": vfs,
        "form": form,
    }


# What an overlay entry of the inventory belongs to (``engine``).
ENGINE_DOCKER = "docker"
ENGINE_CONTAINERS_STORAGE = "containers-storage"
ENGINE_COLLECTION = "overlayfs.mounts"
ENGINE_NONE = "none"
CONTAINER_ENGINES = (ENGINE_DOCKER, ENGINE_CONTAINERS_STORAGE)
# Overlays the operating system itself mounts (see system_overlay).
ENGINE_SYSEXT = "systemd-sysext"
ENGINE_CONFEXT = "systemd-confext"
ENGINE_COMPOSEFS = "composefs"
SYSTEM_OVERLAYS = (ENGINE_SYSEXT, ENGINE_CONFEXT, ENGINE_COMPOSEFS)
# A FUSE filesystem, not a kernel overlay: mountinfo shows none of its layers.
ENGINE_FUSE_OVERLAYFS = "fuse-overlayfs"
FUSE_OVERLAYFS_TYPE = "fuse.fuse-overlayfs"
# Whose mounts this collection never mounts over, re-layers, unmounts or prunes.
HANDS_OFF_ENGINES = CONTAINER_ENGINES + SYSTEM_OVERLAYS + (ENGINE_FUSE_OVERLAYFS,)

# Directory names of the two engines' overlay storage roots, and the
# directories their stores keep next to that root.
#: The name of each engine's overlay dir in its store (Docker's overlay2, containers/storage's overlay).
ENGINE_ROOT_NAMES = {"overlay2": ENGINE_DOCKER, "overlay": ENGINE_CONTAINERS_STORAGE}
_ENGINE_MARKERS = (("/image/overlay2", ENGINE_DOCKER), ("/overlay-layers", ENGINE_CONTAINERS_STORAGE))


def _parent(path):
    # String splits, not posixpath: this runs for every mount of a busy host.
    return path.rstrip("/").rsplit("/", 1)[0] or "/"


def _is_relative(path):
    return path is not None and path[:1] != "/"


def relative_layer_bases(upperdir: Optional[str], workdir: Optional[str],
                         mount_point: Optional[str] = None) -> List[str]:
    """Directories a relative layer, upper or work path is most likely relative to.

    The kernel keeps a relative path exactly as the mounting process gave it,
    relative to that process's working directory, which mountinfo does not
    record. Docker's overlay2 and containers/storage mount a container at
    ``<root>/<id>/merged`` after a chdir into their storage root, with
    ``l/<short id>`` layers and, when even those would not fit in a page,
    ``<id>/diff`` and ``<id>/work`` as upper and work dir. So the mount
    point's grandparent comes first; then the directories two and one levels
    above an absolute upper or work dir (``<root>/<id>/diff``).
    """
    bases = []
    if mount_point and mount_point[0] == "/":
        bases.append(_parent(_parent(mount_point)))
    for anchor in (upperdir, workdir):
        if anchor and anchor[0] == "/":
            parent = _parent(anchor)
            for base in (_parent(parent), parent):
                if base not in bases:
                    bases.append(base)
    return bases


def _join(base, path):
    joined = base.rstrip("/") + "/" + path
    if "/." in "/" + path or "//" in path:
        return posixpath.normpath(joined)
    return joined


def common_base(paths: Iterable[str], bases: Iterable[str], exists: Callable[[str], bool]) -> Optional[str]:
    """The first of ``bases`` under which every relative path of ``paths`` exists, or None."""
    for base in bases:
        for path in paths:
            if not exists(_join(base, path)):
                break
        else:
            return base
    return None


def resolve_paths(cfg: Mapping[str, Any], mount_point: Optional[str], exists: Optional[Callable[[str], bool]],
                  bases: Iterable[str] = ()) -> Dict[str, Any]:
    """The layers, upper and work dir of one overlay with relative paths made absolute.

    ``cfg`` is an ``overlay_config``. Every relative path of one mount was
    given relative to one working directory, the mounting process's, so one
    base serves them all: the first candidate (``bases``, then
    relative_layer_bases) under which the first relative layer and a
    relative upper and work dir all exist. Returns a dict with ``lowerdir``,
    ``datadir``, ``upperdir``, ``workdir``, ``base`` (None when nothing was
    relative or nothing held the paths) and ``resolved``: False when a path
    stays relative because no base holds it (or ``exists`` is None), so it
    must not be taken for a real directory.
    """
    lowerdir, datadir = cfg["lowerdir"], cfg["datadir"]
    upperdir, workdir = cfg["upperdir"], cfg["workdir"]
    probe = []
    first = next((p for p in lowerdir if p[:1] != "/"), None)
    if first is None:
        first = next((p for p in datadir if p[:1] != "/"), None)
    if first is not None:
        probe.append(first)
    probe += [p for p in (upperdir, workdir) if _is_relative(p)]
    out = {"lowerdir": lowerdir, "datadir": datadir, "upperdir": upperdir, "workdir": workdir,
           "base": None, "resolved": True}
    if not probe:
        return out  # the common case: every path absolute
    base = None
    if exists is not None:
        candidates = list(bases)
        for candidate in relative_layer_bases(upperdir, workdir, mount_point):
            if candidate not in candidates:
                candidates.append(candidate)
        base = common_base(probe, candidates, exists)
    if base is None:
        out["resolved"] = False
        return out

    def absolute(paths):
        return [p if p[:1] == "/" else _join(base, p) for p in paths]

    out.update(
        lowerdir=absolute(lowerdir), datadir=absolute(datadir),
        upperdir=_join(base, upperdir) if _is_relative(upperdir) else upperdir,
        workdir=_join(base, workdir) if _is_relative(workdir) else workdir,
        base=base)
    return out


def engine_layout(mount_point: str, paths: Mapping[str, Any]) -> Optional[str]:
    """The storage root when an overlay is laid out as a container engine's, else None.

    Docker's overlay2 and containers/storage both mount ``<root>/<id>/merged``
    over ``<root>/<id>/diff`` (upper) and ``<root>/<id>/work``, with layers
    named ``<root>/l/<short id>`` or ``<root>/<layer id>/diff``. ``paths``
    is a resolve_paths result (absolute where they could be resolved).
    """
    if not mount_point.endswith("/merged") or not paths["lowerdir"]:
        return None
    layer_dir = mount_point[:-7]
    root = _parent(layer_dir)
    upper = paths["upperdir"]
    if upper is not None and (upper != layer_dir + "/diff" or paths["workdir"] != layer_dir + "/work"):
        return None
    first = paths["lowerdir"][0]
    if not inside(first, root):
        return None
    rest = first[len(root.rstrip("/")) + 1:]
    if rest.startswith("l/") or (rest.endswith("/diff") and rest.count("/") == 1):
        return root
    return None


def engine_of(root: Optional[str], exists: Optional[Callable[[str], bool]] = None) -> Optional[str]:
    """``docker``, ``containers-storage`` or None for an engine's storage root.

    Told apart by what each store keeps beside its overlay root (Docker's
    ``image/overlay2``, containers/storage's ``overlay-layers``) when
    ``exists`` is given: a root without either is no engine's, whatever its
    name (an overlay laid out the same way by hand, or by this collection,
    is not a container). Only when the filesystem cannot be asked
    (``exists`` None) does the root's name (``overlay2``, ``overlay``) tell.
    """
    if root is None:
        return None
    if exists is not None:
        store = _parent(root)
        for marker, engine in _ENGINE_MARKERS:
            if exists(store.rstrip("/") + marker):
                return engine
        return None
    return ENGINE_ROOT_NAMES.get(root.rstrip("/").rsplit("/", 1)[-1])


# The mount source each system tool gives its overlay (``mount -t overlay SOURCE``).
_SYSTEM_SOURCES = {"sysext": ENGINE_SYSEXT, "confext": ENGINE_CONFEXT, "composefs": ENGINE_COMPOSEFS}
# libcomposefs mounts its EROFS image on a temporary ``/tmp/.composefs.XXXXXX``
# and detaches it once the overlay holds it: the name stays in the lowerdir.
_COMPOSEFS_IMAGE_DIR = "/.composefs."


def system_overlay(entry: MountEntry, cfg: Mapping[str, Any], entries: Sequence[MountEntry] = (),
                   own: bool = False) -> Optional[str]:
    """``systemd-sysext``, ``systemd-confext``, ``composefs`` or None for an overlay entry.

    systemd-sysext and systemd-confext mount their overlays (``/usr``,
    ``/opt``; ``/etc``) with the source ``sysext`` or ``confext``;
    libcomposefs with the source ``composefs``. An overlay of another source
    is composefs's when it has data-only layers (which need metacopy) under
    libcomposefs's temporary image dir, or, unless the mount point carries
    this collection's own marks (``own``: a managed fstab line or unit, for
    the composefs layout it mounts itself), under a top layer that is an
    EROFS mount (among ``entries``, the mountinfo read). ``cfg`` is the
    entry's ``overlay_config``.
    """
    known = _SYSTEM_SOURCES.get(entry.source)
    if known is not None:
        return known
    if cfg["datadir"] and cfg["lowerdir"]:
        top = cfg["lowerdir"][0]
        if _COMPOSEFS_IMAGE_DIR in top or (not own and any(e.fstype == "erofs" for e in mounts_at(entries, top))):
            return ENGINE_COMPOSEFS
    return None


class RealPaths:
    """``os.path.realpath`` for many paths that share directories, each resolved once.

    A container host's layers are hundreds of ``<root>/l/<id>`` links to
    ``../<id>/diff``: realpath would lstat every component of every one.
    Here each directory is resolved once, and a directory asked about more
    than once is listed once (``symlinks_in``) instead of probing each name
    in it, so a layer costs one ``readlink`` of its link and one of the
    ``diff`` dir it points to. ``readlink`` returns a link's target, or None
    when the path is not a symlink (or is missing); ``symlinks_in`` returns
    the names of the symlinks in a directory, or None when it cannot be
    listed. For absolute paths the result is ``os.path.realpath``'s, ``..``
    after a symlink included; a symlink loop leaves the path as it is.

    ``link_time``, when given, returns a symlink's change time: :meth:`newest`
    then tells the newest one among the symlinks a path was resolved through.
    """

    _MAX_LINKS = 40
    #: What :meth:`newest` says of a path whose symlinks loop: newer than anything.
    LOOP = 1 << 62

    def __init__(self, readlink: Callable[[str], Optional[str]],
                 symlinks_in: Optional[Callable[[str], Optional[Iterable[str]]]] = None,
                 link_time: Optional[Callable[[str], int]] = None) -> None:
        self._readlink = readlink
        self._symlinks_in = symlinks_in
        self._link_time = link_time
        self._known = {"/": "/", "": "/"}
        self._newest: Dict[str, int] = {}
        self._listings = {}
        self._asked = {}

    def __call__(self, path: str) -> str:
        known = self._known.get(path)
        if known is not None:
            return known
        try:
            return self._resolve(path, 0)
        except _LinkLoop:
            self._newest[path] = self.LOOP
            return path

    def newest(self, path: str) -> Optional[int]:
        """The newest ``link_time`` of the symlinks ``path`` went through when resolved (None: none)."""
        return self._newest.get(path)

    def _target(self, directory, name):
        """The target of ``directory/name`` if it is a symlink, else None."""
        listing = self._listings.get(directory)
        if listing is None and self._symlinks_in is not None:
            asked = self._asked.get(directory, 0) + 1
            self._asked[directory] = asked
            if asked == 2:
                found = self._symlinks_in(directory)
                listing = self._listings[directory] = frozenset(found) if found is not None else False
        if listing is not None and listing is not False and name not in listing:
            return None
        return self._readlink(directory.rstrip("/") + "/" + name)

    def _resolve(self, path, links):
        known = self._known.get(path)
        if known is not None:
            return known
        parent, _sep, name = path.rpartition("/")
        real_parent = self._resolve(parent, links)
        times = [self._newest.get(parent)]
        if name in ("", "."):
            result = real_parent
        elif name == "..":
            result = real_parent.rsplit("/", 1)[0] or "/"
        else:
            target = self._target(real_parent, name)
            if target is None:
                result = real_parent.rstrip("/") + "/" + name
            else:
                if links >= self._MAX_LINKS:
                    raise _LinkLoop()
                joined = target if target[:1] == "/" else real_parent.rstrip("/") + "/" + target
                result = self._resolve(joined, links + 1)
                if self._link_time is not None:
                    times += [self._link_time(real_parent.rstrip("/") + "/" + name), self._newest.get(joined)]
        self._known[path] = result
        times = [t for t in times if t is not None]
        if times:
            self._newest[path] = max(times)
        return result


class _LinkLoop(Exception):
    pass


_POINTS = {}


def _by_mount_point(entries):
    """``{mount point: [entries, oldest first]}``, built once per entries list.

    Kept (with the list, so that its id stays its own) for the last few
    lists: a batch looks up many paths in one read of mountinfo.
    """
    cached = _POINTS.get(id(entries))
    if cached is not None and cached[0] is entries:
        return cached[1]
    index = {}
    for entry in entries:
        index.setdefault(entry.mount_point, []).append(entry)
    if len(_POINTS) > 8:
        _POINTS.clear()
    _POINTS[id(entries)] = (entries, index)
    return index


def mounts_at(entries: Sequence[MountEntry], mount_point: str) -> List[MountEntry]:
    """Every entry stacked on ``mount_point``, oldest first."""
    return list(_by_mount_point(entries).get(mount_point, ()))


def mount_containing(entries: Sequence[MountEntry], path: str) -> Optional[MountEntry]:
    """The entry of the mount that holds ``path`` (an absolute, canonical path).

    The longest mount point that is ``path`` or one of its parents; among
    mounts stacked on one point, the last one is the visible one.
    """
    index = _by_mount_point(entries)
    path = path.rstrip("/") or "/"
    while True:
        stacked = index.get(path)
        if stacked:
            return stacked[-1]
        parent = posixpath.dirname(path.rstrip("/")) or "/"
        if parent == path:
            return None
        path = parent


def submounts(entries: Iterable[MountEntry], mount_point: str) -> List[MountEntry]:
    """Entries mounted strictly below ``mount_point``."""
    return [e for e in entries if inside(e.mount_point, mount_point)]


# What a walk down a path meets, per mountinfo list: ``(entries, {id(entry): position}, {path: step})``.
_WALKS = {}


def _walk_cache(entries):
    cached = _WALKS.get(id(entries))
    if cached is not None and cached[0] is entries:
        return cached
    positions = {id(entry): number for number, entry in enumerate(entries)}
    if len(_WALKS) > 8:
        _WALKS.clear()
    cached = _WALKS[id(entries)] = (entries, positions, {})
    return cached


def listed_position(entries: Sequence[MountEntry], entry: MountEntry) -> int:
    """Where ``entry`` is listed among ``entries`` (0 first), or -1 when it is not there.

    The kernel lists a mount namespace's mounts in the order they were
    attached (by their 64-bit unique id since 6.8; the short mount ids are
    reused and say nothing of age): a mount listed later was attached later.
    The mounts a namespace was copied with when it was made (``unshare``, a
    container) are the exception: they are listed in the order of the mount
    tree, as the copy walked it.
    """
    return _walk_cache(entries)[1].get(id(entry), -1)


def _shows_same_dir(mount, below, point):
    """True when ``mount`` at ``point`` shows the very directory ``below`` showed there (a bind onto itself)."""
    if mount.device != below.device:
        return False
    if below.mount_point == point:
        return mount.root == below.root
    rest = point[len(below.mount_point.rstrip("/")):]
    return mount.root.rstrip("/") == below.root.rstrip("/") + rest


def latest_on_path(entries: Sequence[MountEntry], path: str) -> Optional[MountEntry]:
    """The mount listed last among those a lookup of ``path`` (absolute, canonical) crosses now, or None.

    The lookup starts at the root mount and, at each directory of the path,
    steps onto the visible mount attached there (a mount hidden under a
    later one at a parent dir is not crossed). A mount that shows exactly
    the directory it covers (a bind mount of a directory onto itself, as
    systemd's sandboxing makes) changes nothing a path names and is not
    counted. Used with :func:`listed_position`: a mount on the path that is
    listed after an overlay was attached after it, so the overlay, which
    keeps the directory the path named at its own mount time, serves a
    directory the path no longer shows (shadowed).
    """
    _entries, positions, steps = _walk_cache(entries)
    index = _by_mount_point(entries)
    path = path.rstrip("/") or "/"
    known = steps.get(path)
    if known is not None:
        return known[1]
    if path == "/":
        start = index.get("/") or ()
        current = start[0] if start else None
        latest = None
        parent = None
    else:
        parent = posixpath.dirname(path) or "/"
        latest_on_path(entries, parent)
        current, latest = steps[parent]
    if current is not None:
        for mount in index.get(path, ()):
            if mount.parent_id == current.mount_id and mount is not current:
                if not _shows_same_dir(mount, current, path) and (
                        latest is None or positions[id(mount)] > positions[id(latest)]):
                    latest = mount
                current = mount
    steps[path] = (current, latest)
    return latest
