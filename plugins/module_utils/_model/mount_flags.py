# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Per-mount flags: ``ro``, ``nosuid``, ``nodev``, ``noexec`` and the atime flags. Pure.

These belong to one mount of the overlay, not to the overlay itself: the
kernel keeps them beside the mount (mountinfo's field 6), not in the
superblock's options. Users write them among the overlay options, as
mount(8) takes them, so ``options`` accepts them and they are split off
here.

A mount's flags are one value per :data:`GROUPS` row (``ro`` or ``rw``,
``nosuid`` or ``suid``, ...). The canonical form of a set of flags is the
list of the values that differ from a fresh mount's (``rw``, ``suid``,
``dev``, ``exec``, ``relatime``, ``diratime``), in the order of the table:
a declaration, what is persisted and the live mount all come down to it,
so ``['rw', 'relatime']`` and ``[]`` are the same declaration.
"""

from collections import namedtuple
from typing import Dict, Iterable, List, Mapping, Sequence, Tuple

from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError


class FlagGroup(namedtuple("FlagGroup", "name values default what")):
    """One per-mount setting: its name (the drift field is ``flags.<name>``), the flags
    that set it, the value of a fresh mount, and what it decides (for messages)."""

    __slots__ = ()


GROUPS = (
    FlagGroup("ro", ("ro", "rw"), "rw", "whether the mount is read-only"),
    FlagGroup("suid", ("nosuid", "suid"), "suid", "whether set-user-ID bits count"),
    FlagGroup("dev", ("nodev", "dev"), "dev", "whether device files can be opened"),
    FlagGroup("exec", ("noexec", "exec"), "exec", "whether programs can be run"),
    FlagGroup("atime", ("noatime", "relatime", "strictatime"), "relatime", "how access times are updated"),
    FlagGroup("diratime", ("nodiratime", "diratime"), "diratime", "whether directory access times are updated"),
)

#: Every flag name, mapped to its group.
GROUP_OF = {value: group for group in GROUPS for value in group.values}
#: What a fresh mount has: ``{group name: value}``.
DEFAULTS = {group.name: group.default for group in GROUPS}


def is_flag(option: str) -> bool:
    """True when ``option`` is one of the per-mount flags (written alone, no ``=``)."""
    return option.strip() in GROUP_OF


def split_flags(options: Iterable[str]) -> Tuple[List[str], List[str]]:
    """``(other options, flags)`` of an option list, each in the order given."""
    others, flags = [], []
    for option in options or ():
        (flags if isinstance(option, str) and is_flag(option) else others).append(option)
    return others, [flag.strip() for flag in flags]


def parse_flags(flags: Iterable[str], field: str = "options") -> Dict[str, str]:
    """``{group name: value}`` of every group, defaults for those not given.

    Two flags of one group that disagree (``ro`` and ``rw``, ``noatime`` and
    ``strictatime``) are refused, naming ``field`` and the fix.
    """
    chosen: Dict[str, str] = {}
    for flag in flags:
        flag = flag.strip()
        group = GROUP_OF.get(flag)
        if group is None:
            raise OverlayError("%s: '%s' is not a per-mount flag; valid flags are %s" % (field, flag, ", ".join(GROUP_OF)))
        if chosen.get(group.name, flag) != flag:
            raise OverlayError(
                "%s: '%s' and '%s' contradict each other (both set %s); keep one of them"
                % (field, chosen[group.name], flag, group.what))
        chosen[group.name] = flag
    return dict(DEFAULTS, **chosen)


def canonical(state: Mapping[str, str]) -> List[str]:
    """The canonical flags of a ``{group: value}`` state: the non-default values, in table order."""
    return [state[group.name] for group in GROUPS if state.get(group.name, group.default) != group.default]


def canonical_flags(flags: Iterable[str], field: str = "options") -> List[str]:
    """Declared flags in canonical form (see the module docstring); contradictions refused."""
    return canonical(parse_flags(flags, field))


def merge_flags(declared: Sequence[str], more: Sequence[str], field: str, other_field: str) -> List[str]:
    """The canonical flags of ``declared`` (from ``other_field``) and ``more`` (from ``field``) together.

    A flag of ``more`` that contradicts one of ``declared`` is refused: the
    error names both fields and says where to keep the flag.
    """
    parse_flags(more, field)
    mine = {GROUP_OF[flag.strip()].name: flag.strip() for flag in declared}
    for flag in more:
        group = GROUP_OF[flag.strip()]
        if mine.get(group.name, flag.strip()) != flag.strip():
            raise OverlayError(
                "%s: '%s' contradicts '%s' in %s (both set %s); keep one of them, in %s"
                % (field, flag.strip(), mine[group.name], other_field, group.what, other_field))
    return canonical_flags(list(declared) + list(more), field)


def persisted_flags(flags: Iterable[str]) -> List[str]:
    """Flags read back from fstab or a unit: canonical, or as written when they contradict each other."""
    flags = list(flags or ())
    try:
        return canonical_flags(flags)
    except OverlayError:
        return flags


def live_flags(mount_options: Sequence[str]) -> List[str]:
    """The canonical flags of a live mount, from mountinfo's per-mount options (field 6).

    The kernel shows ``ro``/``rw``, ``nosuid``, ``nodev``, ``noexec``,
    ``relatime`` or ``noatime`` (nothing at all for strictatime) and
    ``nodiratime``; anything else there (``nosymfollow``) is not compared.
    """
    shown = set(mount_options)
    state = {
        "ro": "ro" if "ro" in shown else "rw",
        "suid": "nosuid" if "nosuid" in shown else "suid",
        "dev": "nodev" if "nodev" in shown else "dev",
        "exec": "noexec" if "noexec" in shown else "exec",
        "atime": "noatime" if "noatime" in shown else "relatime" if "relatime" in shown else "strictatime",
        "diratime": "nodiratime" if "nodiratime" in shown else "diratime",
    }
    return canonical(state)


def state_of(flags: Iterable[str]) -> Dict[str, str]:
    """``{group: value}`` of canonical flags (or of flags as persisted, unchecked: the last wins)."""
    state = dict(DEFAULTS)
    for flag in flags or ():
        group = GROUP_OF.get(flag)
        if group is not None:
            state[group.name] = flag
    return state


def flag_differences(declared: Iterable[str], live: Iterable[str]) -> List[Tuple[str, str, str]]:
    """``[(group name, declared value, live value)]`` for every group that differs."""
    want, have = state_of(declared), state_of(live)
    return [(group.name, want[group.name], have[group.name]) for group in GROUPS
            if want[group.name] != have[group.name]]


def superblock_differs(declared_flags: Iterable[str], writable: bool, superblock: str) -> bool:
    """True when the live superblock is read-only but must be read-write.

    That is an overlay with an upper dir that is not declared ``ro``, found
    mounted read-only as a whole (mount(8) ``-o ro``). Declared ``ro`` with
    an upper, the mount is read-only and the superblock may be either; an
    overlay without upper is always read-only underneath.
    """
    return writable and superblock == "ro" and state_of(declared_flags)["ro"] == "rw"
