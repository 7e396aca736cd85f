# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where systemd finds a unit, its drop-ins and the links that enable it; host reads and link writes.

systemd reads a unit as its main file (the first found along the unit
search path) and every drop-in (``NAME.d/*.conf``, the prefix dirs
``srv-.mount.d/`` and the type-wide ``mount.d/``) in every dir of that path:
of drop-ins with the same file name only the one in the dir of highest
precedence counts (a link to ``/dev/null``, or an empty file, masks it), and
the rest apply in the order of their file names. A unit is enabled by a
link in a target's ``.wants/``, ``.requires/`` or ``.upholds/`` dir.

The search path is systemd's own for the system manager (``systemd.unit(5)``).
A ``unit_dir`` systemd does not search stands for ``/etc/systemd/system``
under a root: when it ends in ``/etc/systemd/system`` the whole search path
is read under that root (an image being built), otherwise the dir itself
and its ``.control`` sibling (where masks go) are.
"""

import os
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from ansible_collections.overlayfs.mounts.plugins.module_utils._host import files

ADMIN_DIR = "/etc/systemd/system"
#: The system manager's unit search path, highest precedence first (systemd.unit(5)).
SEARCH_PATH = (
    "/etc/systemd/system.control", "/run/systemd/system.control", "/run/systemd/transient",
    "/run/systemd/generator.early", ADMIN_DIR, "/etc/systemd/system.attached",
    "/run/systemd/system", "/run/systemd/system.attached", "/run/systemd/generator",
    "/usr/local/lib/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system",
    "/run/systemd/generator.late",
)
#: Dirs that only generators write: their links come with fstab lines, not with a unit file.
GENERATOR_DIRS = ("/run/systemd/generator.early", "/run/systemd/generator", "/run/systemd/generator.late")
#: What a link of each kind makes of the unit: ``WantedBy=``, ``RequiredBy=``, ``UpheldBy=``.
LINK_KINDS = ("wants", "requires", "upholds")


class UnitLink(NamedTuple):
    """A link that enables a unit: ``kind`` (``wants``...), ``target`` unit, ``path`` of the link."""

    kind: str
    target: str
    path: str


class DropIn(NamedTuple):
    """A drop-in as systemd applies it: its ``path``, its text (None: masked) and the dir's rank."""

    path: str
    text: Optional[str]
    rank: int


def search_path(unit_dir: str) -> List[str]:
    """The dirs systemd reads units from when ``unit_dir`` holds the unit, highest precedence first."""
    return list(_index(unit_dir).dirs)


def _search_path(unit_dir: str) -> List[str]:
    real = os.path.realpath(unit_dir)
    if real in SEARCH_PATH or unit_dir in SEARCH_PATH:
        return _existing_distinct(SEARCH_PATH)
    root = unit_dir.rstrip("/")
    if root.endswith(ADMIN_DIR):
        root = root[:-len(ADMIN_DIR)]
        return _existing_distinct([root + d for d in SEARCH_PATH])
    return _existing_distinct([root + ".control", root])


def _existing_distinct(dirs: Sequence[str]) -> List[str]:
    """``dirs`` without those that resolve to an earlier one (/lib and /usr/lib on merged /usr)."""
    seen, out = set(), []
    for directory in dirs:
        real = os.path.realpath(directory)
        if real not in seen:
            seen.add(real)
            out.append(directory)
    return out


class _Index:
    """What the unit dirs of one search path hold, listed once: a batch looks up many units in them.

    ``dropins``: ``{(dir, sub dir): [.conf file names]}``; ``links``:
    ``{unit name: [(kind, target, path, made by a generator)]}``.
    """

    def __init__(self, unit_dir: str) -> None:
        self.dirs = _search_path(unit_dir)
        self.dropins: Dict[Tuple[str, str], List[str]] = {}
        self.links: Dict[str, List[Tuple[str, str, str, bool]]] = {}
        for directory in self.dirs:
            generated = any(directory.endswith(g) for g in GENERATOR_DIRS)
            for entry in _listdir(directory):
                if entry.endswith(".d"):
                    names = [n for n in _listdir(os.path.join(directory, entry)) if n.endswith(".conf")]
                    if names:
                        self.dropins[(directory, entry)] = sorted(names)
                    continue
                target, _dot, kind = entry.rpartition(".")
                if kind in LINK_KINDS and target:
                    for name in _listdir(os.path.join(directory, entry)):
                        self.links.setdefault(name, []).append(
                            (kind, target, os.path.join(directory, entry, name), generated))


def _listdir(path: str) -> List[str]:
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []


_INDEXES: Dict[str, _Index] = {}


def _index(unit_dir: str) -> _Index:
    """The :class:`_Index` of ``unit_dir``'s search path, made once until this module changes a link."""
    found = _INDEXES.get(unit_dir)
    if found is None:
        found = _INDEXES[unit_dir] = _Index(unit_dir)
    return found


def forget() -> None:
    """Drop what was listed: the unit dirs changed (a link or mask made or removed here)."""
    _INDEXES.clear()


def mask_dir(unit_dir: str) -> str:
    """Where a mask of a drop-in goes: the dir of highest precedence (``/etc/systemd/system.control``)."""
    return search_path(unit_dir)[0] if search_path(unit_dir) else unit_dir + ".control"


def dropin_dirs(name: str) -> List[str]:
    """The names of the drop-in dirs of unit ``name``, most specific first.

    ``srv-a-b.mount`` reads ``srv-a-b.mount.d``, then the prefix dirs
    ``srv-a-.mount.d`` and ``srv-.mount.d``, then ``mount.d`` (every mount unit).
    """
    stem, _dot, suffix = name.rpartition(".")
    out = [name + ".d"]
    parts = stem.split("-") if stem != "-" else []
    for count in range(len(parts) - 1, 0, -1):
        out.append("-".join(parts[:count]) + "-." + suffix + ".d")
    out.append(suffix + ".d")
    return out


def _read_or_mask(path: str) -> Optional[str]:
    """The drop-in's text; None when it masks (a link to /dev/null, or an empty file)."""
    if os.path.islink(path) and os.path.realpath(path) == "/dev/null":
        return None
    text = files.read_text(path)
    return text if text else None


def drop_ins(unit_dir: str, name: str) -> List[DropIn]:
    """Every drop-in systemd applies to unit ``name``, in the order it applies them, masks included.

    Of several files with one name the one in the dir of highest precedence
    counts; a mask (``text`` None) hides the others and applies nothing.
    """
    index = _index(unit_dir)
    best = {}
    rank = 0
    for directory in index.dirs:
        for sub in dropin_dirs(name):
            for base in index.dropins.get((directory, sub), ()):
                if base not in best:
                    path = os.path.join(directory, sub, base)
                    best[base] = DropIn(path, _read_or_mask(path), rank)
            rank += 1
    return [best[base] for base in sorted(best, key=lambda b: b.encode("utf-8", "surrogateescape"))]


def main_file(unit_dir: str, name: str) -> Optional[str]:
    """The unit file systemd loads for ``name``: the first along the search path (None: none)."""
    for directory in search_path(unit_dir):
        path = os.path.join(directory, name)
        if os.path.lexists(path):
            return path
    return None


def links(unit_dir: str, name: str, generated: bool = False) -> List[UnitLink]:
    """Every link that enables unit ``name`` for a target, in the dirs of the search path.

    Links generators made (for fstab lines) are left out unless ``generated``.
    """
    return [UnitLink(kind, target, path) for kind, target, path, made in _index(unit_dir).links.get(name, ())
            if generated or not made]


def link_path(unit_dir: str, name: str, kind: str, target: str) -> str:
    """Where the link that makes ``target`` ``kind`` (wants, requires) unit ``name`` goes in ``unit_dir``."""
    return os.path.join(unit_dir, "%s.%s" % (target, kind), name)


def make_link(unit_dir: str, name: str, kind: str, target: str) -> Tuple[str, bool]:
    """Link unit ``name`` of ``unit_dir`` into ``target``'s ``kind`` dir, as ``systemctl enable`` does.

    Returns the link's path and whether its dir was made here. Done by hand,
    so that it works in a chroot, an image build and a unit_dir systemd does
    not search.
    """
    forget()
    link = link_path(unit_dir, name, kind, target)
    made_dir = not os.path.isdir(os.path.dirname(link))
    if made_dir:
        os.makedirs(os.path.dirname(link))
    files.remove_file(link)
    os.symlink(os.path.join(unit_dir, name), link)
    return link, made_dir


def remove_link(path: str) -> Optional[str]:
    """Remove one enabling link, and its dir when that is left empty; returns where it pointed."""
    if not os.path.islink(path):
        return None
    forget()
    target = os.readlink(path)
    os.unlink(path)
    try:
        os.rmdir(os.path.dirname(path))
    except OSError:
        pass
    return target


def restore_link(path: str, target: str) -> None:
    """Put back a link :func:`remove_link` removed."""
    forget()
    if not os.path.isdir(os.path.dirname(path)):
        os.makedirs(os.path.dirname(path))
    if not os.path.lexists(path):
        os.symlink(target, path)


def mask_path(unit_dir: str, name: str, drop_in: str) -> str:
    """Where the mask of ``drop_in`` (a path) for unit ``name`` goes."""
    return os.path.join(mask_dir(unit_dir), name + ".d", os.path.basename(drop_in))


def make_mask(path: str) -> bool:
    """Mask a drop-in with a link to /dev/null at ``path``; True when its dir was made here."""
    forget()
    made_dir = not os.path.isdir(os.path.dirname(path))
    if made_dir:
        os.makedirs(os.path.dirname(path))
    os.symlink("/dev/null", path)
    return made_dir
