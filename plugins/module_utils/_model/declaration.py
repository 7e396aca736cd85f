# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The declared overlay as one value, checked as far as the parameters alone show.

:meth:`Declaration.from_params` refuses what can be seen in the parameters
alone (relative or non-UTF-8 paths, upper without work, too many or too few
layers, options) and normalises paths and options. What can be refused only
against other paths or the host is in ``refusals``. Every error names the
field and says how to fix it.
"""

import grp
import posixpath
import pwd
import dataclasses
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.overlay_options import canonical_options
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.mount_flags import canonical_flags, split_flags
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.layers import check_pairing, named_layers
from ansible_collections.overlayfs.mounts.plugins.module_utils._model import upper_tmpfs as _tmpfs

MAX_LOWER_LAYERS = 500
#: The states that set an overlay up; the others take it down.
SETUP_STATES = ("mounted", "present")


def _check_path(value, field):
    if not isinstance(value, str) or value == "":
        raise OverlayError("%s: an empty path was given; give an absolute directory path" % field)
    if "\n" in value or "\0" in value:
        raise OverlayError(
            "%s: '%s' contains a newline or NUL byte; mountinfo, fstab and unit files are "
            "line-based, so such a path cannot be managed safely: rename the directory"
            % (field, value.replace("\n", "\\n").replace("\0", "\\0")))
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise OverlayError(
            "%s: %r is not valid UTF-8; systemd cannot load a unit for such a path and "
            "mountinfo shows it mangled, so it cannot be managed safely: rename the directory "
            "to a UTF-8 name" % (field, value))
    if not posixpath.isabs(value):
        raise OverlayError(
            "%s: '%s' is a relative path; overlay paths must be absolute (for example '/%s')"
            % (field, value, value.lstrip("./")))
    if value == "/":
        return value
    value = posixpath.normpath(value)
    return "/" + value.lstrip("/") if value.startswith("//") else value  # POSIX keeps a leading '//'


DEFAULT_LINKS_DIR = "/var/lib/overlayfs-mounts/links"


@dataclasses.dataclass(eq=False, frozen=True)
class Declaration:
    """One declared overlay, whole: what is mounted where, how it persists, how dirs are made.

    Every parameter of ``overlay_mount`` (and of an ``overlay_mounts`` entry,
    once the task-level settings are merged in) is one field, with the
    module's defaults. Paths are absolute and normalised (:meth:`canonical`
    resolves symlinks as the kernel will); ``datadir`` is always a list,
    empty when no data-only layers were given; ``upperdir`` and ``workdir``
    are both set or both None. ``persist`` is the persistence backend (a
    class of ``_persist``) or None for ``persist: none``; ``boot_extras`` are
    the checked non-overlay options of the persisted entry (``noauto`` first
    when ``boot`` is false). ``options`` are the overlay's own options;
    ``flags`` the per-mount flags given among them (or in ``boot_options``),
    in canonical form (``_model.mount_flags``). ``notes`` are sentences about
    the parameters the module shows as warnings. Two declarations are equal
    when they declare the same overlay in the same state.
    """

    path: str
    lowerdir: List[str] = dataclasses.field(default_factory=list)
    upperdir: Optional[str] = None
    workdir: Optional[str] = None
    options: List[str] = dataclasses.field(default_factory=list)
    datadir: List[str] = dataclasses.field(default_factory=list)
    state: str = "mounted"
    persist: Any = None
    boot: bool = True
    boot_extras: List[str] = dataclasses.field(default_factory=list)
    fstab: str = "/etc/fstab"
    unit_dir: str = "/etc/systemd/system"
    links_dir: Optional[str] = DEFAULT_LINKS_DIR
    backup: bool = False
    create_dirs: bool = True
    method: str = "auto"
    clear_volatile: bool = False
    mode: Optional[int] = None
    owner: Optional[str] = None
    group: Optional[str] = None
    flags: List[str] = dataclasses.field(default_factory=list)
    notes: List[str] = dataclasses.field(default_factory=list)
    #: The layer, upper and work paths as declared (normalised), kept by
    #: :meth:`canonical`; None before it, or when nothing was resolved.
    spelled: Optional[Dict[str, Any]] = None
    #: Set by :meth:`as_spelled`: the paths the spelled ones resolve to now,
    #: which a boot must find mounted too (``x-systemd.requires-mounts-for``).
    also_needs: List[str] = dataclasses.field(default_factory=list)
    #: Set for a prune (``state: absent`` of an overlay that left the list):
    #: only the lines and units the collection marked as its own are removed;
    #: a hand-written one at the same mount point is left alone.
    marked_only: bool = False
    #: ``unit_settings`` normalised by section (``_model.unit_settings``); None: not declared,
    #: so a unit keeps the settings it has.
    unit_settings: Optional[Dict[str, Dict[str, str]]] = None
    #: What a drop-in the collection did not write may do to the unit: ``refuse`` or ``mask``.
    drop_ins: str = "refuse"
    #: ``upper_tmpfs``: the tmpfs the upper and work dirs live on (``_model.upper_tmpfs.UpperTmpfs``), or None.
    upper_tmpfs: Optional[_tmpfs.UpperTmpfs] = None

    FIELDS = ("path", "lowerdir", "datadir", "upperdir", "workdir", "options", "flags")

    def __post_init__(self) -> None:
        for name in ("lowerdir", "datadir", "options", "boot_extras", "flags", "notes"):
            object.__setattr__(self, name, list(getattr(self, name) or ()))

    @classmethod
    def from_params(cls, params: Mapping[str, Any], persist: Any = None) -> "Declaration":
        """Check what the parameters alone show, and normalise paths and options.

        ``persist`` is the backend the persistence layer found for ``persist``;
        it also adds the checked ``boot_extras`` (``_persist.registry.declare``).
        """
        state = params["state"]
        check_pairing(params["upperdir"], params["workdir"])
        options, flags = split_flags(params["options"] or ())
        upperdir = _check_path(params["upperdir"], "upperdir") if params["upperdir"] is not None else None
        workdir = _check_path(params["workdir"], "workdir") if params["workdir"] is not None else None
        decl = cls(
            _check_path(params["path"], "path"),
            [_check_path(layer, "lowerdir[%d]" % i) for i, layer in enumerate(params["lowerdir"] or ())],
            upperdir, workdir, canonical_options(options),
            [_check_path(layer, "datadir[%d]" % i) for i, layer in enumerate(params.get("datadir") or ())],
            state, persist=persist, flags=canonical_flags(flags),
            upper_tmpfs=_tmpfs.from_params(params.get("upper_tmpfs"), upperdir, workdir, state, _check_path, parse_mode),
            **_settings(params))
        if state in SETUP_STATES:
            decl._check_layer_count()
        return decl

    def _check_layer_count(self) -> None:
        """Refuse a layer stack the kernel cannot mount.

        A read-only overlay needs two layers, and data-only layers count: one
        lower dir over data-only layers is the composefs layout (Linux 6.5+,
        which ``_host.kernel_features.check_support`` asks the kernel about).
        Data-only layers are never merged by name, so at least one regular
        lower dir must sit above them.
        """
        if not self.lowerdir:
            if self.datadir:
                raise OverlayError(
                    "lowerdir: state=%s has only data-only layers (datadir); their files are never shown by "
                    "name, so the kernel needs at least one regular lower directory above them: give lowerdir "
                    "(for composefs, the metadata tree)" % self.state)
            raise OverlayError("lowerdir: state=%s needs at least one lower directory" % self.state)
        if len(self.layers) > MAX_LOWER_LAYERS:
            raise OverlayError(
                "lowerdir: %d layers given; the kernel stacks at most %d (data-only layers included)"
                % (len(self.layers), MAX_LOWER_LAYERS))
        if not self.writable and len(self.layers) < 2:
            raise OverlayError(
                "lowerdir: a read-only overlay (no upperdir) needs at least two lower directories, "
                "data-only layers (datadir) included; add a layer to lowerdir or datadir, or give "
                "upperdir and workdir")

    @property
    def writable(self) -> bool:
        return self.upperdir is not None

    @property
    def layers(self) -> List[str]:
        """Lower layers, top first, then the data-only layers."""
        return self.lowerdir + self.datadir

    @property
    def automount(self) -> bool:
        """True when the overlay is persisted with an automount (``x-systemd.automount``, or ``unit_settings.Automount``)."""
        extras = set(self.boot_extras)
        return bool(extras & {"x-systemd.automount", "comment=systemd.automount"}) or "Automount" in (self.unit_settings or {})

    @property
    def persist_name(self) -> str:
        """The ``persist`` choice: the backend's name, or ``none``."""
        return self.persist.name if self.persist is not None else "none"

    @property
    def writes(self) -> bool:
        """True for the states that set the overlay up (``mounted``, ``present``)."""
        return self.state in SETUP_STATES

    def named_dirs(self) -> List[Tuple[str, str]]:
        """``[(field, path)]`` of every layer, then upper and work dir."""
        return named_layers(self.lowerdir, self.upperdir, self.workdir, self.datadir)

    def all_paths(self) -> List[str]:
        """The mount point, then every layer, upper and work dir."""
        return [self.path] + [path for _field, path in self.named_dirs()]

    DIR_FIELDS = ("lowerdir", "datadir", "upperdir", "workdir")

    def canonical(self, realpath: Callable[[str], str] = posixpath.realpath) -> "Declaration":
        """The same declaration with every path resolved as the kernel will see it.

        The paths as declared stay in :attr:`spelled`: a symlinked layer is
        mounted as its target (so mountinfo shows what the mount serves) and
        persisted as spelled (so a boot follows the link).
        """
        return dataclasses.replace(
            self, path=realpath(self.path), lowerdir=[realpath(p) for p in self.lowerdir],
            upperdir=realpath(self.upperdir) if self.writable else None,
            workdir=realpath(self.workdir) if self.writable else None,
            datadir=[realpath(p) for p in self.datadir],
            upper_tmpfs=dataclasses.replace(self.upper_tmpfs, path=realpath(self.upper_tmpfs.path)) if self.upper_tmpfs else None,
            spelled=self.spelled if self.spelled is not None else self.dirs())

    def dirs(self) -> Dict[str, Any]:
        """``{lowerdir, datadir, upperdir, workdir}`` of this declaration."""
        return {name: (list(value) if isinstance(value, list) else value)
                for name, value in ((name, getattr(self, name)) for name in self.DIR_FIELDS)}

    def spelled_differences(self) -> Dict[str, Any]:
        """``{field: value as declared}`` for the dir fields whose spelling resolves to another path."""
        if self.spelled is None:
            return {}
        mine = self.dirs()
        return {name: self.spelled[name] for name in self.DIR_FIELDS if self.spelled[name] != mine[name]}

    @property
    def symlinked(self) -> bool:
        """True when a layer, upper or work dir was declared through a symlink (see :meth:`canonical`)."""
        return bool(self.spelled_differences())

    def as_spelled(self) -> "Declaration":
        """This declaration with the layer, upper and work paths as declared: what is persisted for boot."""
        if self.spelled is None:
            return self
        resolved = []
        for name, value in self.spelled_differences().items():
            mine = getattr(self, name)
            pairs = zip(value, mine) if isinstance(value, list) else [(value, mine)]
            resolved += [real for spelled, real in pairs if spelled != real]
        return dataclasses.replace(self, spelled=None, also_needs=resolved, **self.spelled)

    def config(self) -> Dict[str, Any]:
        """The overlay's fields as a dict, the shape persisted and live configs share."""
        return {name: getattr(self, name) for name in self.FIELDS}

    def as_result(self) -> Dict[str, Any]:
        """The module's ``mount`` return value: ``datadir`` and ``flags`` only when given.

        ``declared_as``: the fields declared through a symlink, as spelled
        (the others show the paths they resolve to).
        """
        out = self.config()
        if not self.datadir:
            del out["datadir"]
        if not self.flags:
            del out["flags"]
        spelled = self.spelled_differences()
        if spelled:
            out["declared_as"] = spelled
        return out

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Declaration) and (self.config(), self.state) == (other.config(), other.state)

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __repr__(self) -> str:
        return "Declaration(%r, state=%r)" % (self.config(), self.state)


# The parameters that are settings of the declaration as they are given.
_SETTINGS = ("boot", "fstab", "unit_dir", "links_dir", "backup", "create_dirs", "method",
             "clear_volatile", "owner", "group", "marked_only", "drop_ins")


def _settings(params: Mapping[str, Any]) -> Dict[str, Any]:
    """The settings among ``params`` (missing ones keep the module's defaults), ``mode`` checked."""
    found = {name: params[name] for name in _SETTINGS if params.get(name) is not None}
    found["mode"] = parse_mode(params.get("mode"))
    return found


def parse_mode(mode: Any) -> Optional[int]:
    """The ``mode`` parameter as a number (None: unset); a string is read as octal."""
    if mode is None or isinstance(mode, int):
        return mode
    text = str(mode).strip()
    try:
        return int(text, 8)
    except ValueError:
        raise OverlayError("mode: '%s' is not an octal mode; write it quoted, such as '0755'" % text)


def _number_or_name(value, field, lookup, what):
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        try:
            return lookup(value)
        except KeyError:
            raise OverlayError("%s: there is no %s '%s' on this host" % (field, what, value))


def dir_attributes(mode: Any, owner: Optional[str], group: Optional[str]) -> Tuple[Optional[int], Optional[int], Optional[int]]:
    """``(mode, uid, gid)`` for created dirs from the mode/owner/group parameters (None: unset).

    Owner and group names are looked up in the host's user database.
    """
    return (parse_mode(mode), _number_or_name(owner, "owner", lambda n: pwd.getpwnam(n).pw_uid, "user"),
            _number_or_name(group, "group", lambda n: grp.getgrnam(n).gr_gid, "group"))
