# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""How an overlay is persisted for boot: the contract every backend implements.

A backend is one way of persisting overlays (fstab lines, systemd mount
units). ``registry.BACKENDS`` lists them; the converge, the drift report,
the inventory and pruning go through this contract and name none of them.
Adding a backend is one new file with a subclass, its entry in that list and
its name among the ``persist`` choices in ``_model.spec``.

The contract has two parts.

**Read-only, on the class** (``overlay_mount_info``, drift, prune):
:meth:`Backend.scan` what is persisted in some places, :meth:`Backend.configs_in`
for texts already read, :meth:`Backend.public` / :meth:`Backend.first` /
:meth:`Backend.count` for how configs show in results, and
:meth:`Backend.boot_drift`.

**The change for one declaration, on an instance** (``Backend(decl, facts, realpath=...)``):

1. :meth:`Backend.read` what is persisted now (host reads only);
2. :meth:`Backend.plan` what must be persisted after the task (pure, on
   what ``read`` found);
3. :meth:`Backend.actions` and :attr:`Backend.changed` report it,
   :meth:`Backend.diffs` shows it, :meth:`Backend.persisted` is its part of
   the result;
4. :attr:`Backend.steps` carries each action out: a function of a
   :class:`StepContext` that returns the step's undo (or None).

A backend whose writes to one file may be made together for a batch sets
:attr:`Backend.batched` and implements :meth:`Backend.write_together`.
"""

import dataclasses
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.facts import HostFacts
from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.fstab_syntax import MANAGED_OPTION, check_boot_option
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.unit_settings import settings_to_options

# fstab options that decide boot behaviour and that overlay_mount writes itself.
_BOOT_OWNED = ("noauto", "auto", MANAGED_OPTION)

#: A step's undo: called without arguments when a later step fails.
Undo = Callable[[], Any]


@dataclasses.dataclass
class StepContext:
    """What a step may use and report while the converge carries out one entry's plan.

    ``module``: the AnsibleModule (commands, warnings); ``decl``: the whole
    declaration; ``result``: the entry's result, where a step may add keys
    (``backup_file``); ``step``: the name the failure message gives (a step
    may rename its phase, such as ``backup``); ``grouped``: a batch, whose
    session writes a batched backend's files for many entries at once
    (:meth:`defer`).
    """

    module: Any
    decl: Any
    result: Dict[str, Any]
    step: str = ""
    grouped: bool = False
    #: The ``path`` of the action being carried out (a backend may plan one action name for several paths).
    path: Optional[str] = None
    deferred: List[Tuple[str, "Backend"]] = dataclasses.field(default_factory=list)

    def defer(self, location: str, backend: "Backend") -> bool:
        """Leave ``backend``'s write to ``location`` to the group; False when not grouped."""
        if not (self.grouped and backend.batched):
            return False
        self.deferred.append((location, backend))
        return True


def file_diff(path: str, before: Optional[str], after: Optional[str]) -> List[Dict[str, str]]:
    """One diff-mode entry for a file a backend changes (None: no file)."""
    return [{"before_header": path, "after_header": path, "before": before or "", "after": after or ""}]


def boot_extras(boot: bool, boot_options: Optional[List[str]]) -> List[str]:
    """The non-overlay options of the persisted entry, in order, each once."""
    extras = []
    for option in boot_options or ():
        option = option.strip()
        if not option:
            raise OverlayError("boot_options: an empty option was given; remove it")
        name = option.partition("=")[0]
        if name == MANAGED_OPTION:
            raise OverlayError("boot_options: '%s' is written by this collection itself; remove it" % option)
        if name in _BOOT_OWNED:
            raise OverlayError(
                "boot_options: '%s' is set by the boot parameter (boot: %s); remove it from "
                "boot_options" % (option, "false" if name == "noauto" else "true"))
        check_boot_option(option)
        if option == "defaults":
            continue  # means nothing next to other options; writing it would only show as drift
        if option not in extras:
            extras.append(option)
    if not boot:
        extras.insert(0, "noauto")
    return extras


class Backend:
    """One way of persisting overlays; see the module docstring for the life cycle."""

    #: The ``persist`` choice that selects this backend.
    name = None
    #: The parameter that says where its files are (a file, or a directory).
    location = None
    #: True when several configs may persist one mount point (and all show in
    #: results, as a list); False when one does (shown alone, or None).
    many = False

    # Pure, on the class ------------------------------------------------

    @classmethod
    def configs_in(cls, sources: Iterable[Tuple[str, Optional[str]]],
                   readlink: Optional[Callable[[str], Optional[str]]] = None) -> Dict[str, List[Dict[str, Any]]]:
        """``{mount point: [configs]}`` of what ``sources`` (``(file path, text)`` pairs) persist."""
        raise NotImplementedError

    @classmethod
    def public(cls, configs: List[Dict[str, Any]]) -> Any:
        """How the configs for one mount point show in results (``persisted``, inventory)."""
        if cls.many:
            return list(configs)
        return configs[0] if configs else None

    @classmethod
    def first(cls, shown: Any) -> Optional[Dict[str, Any]]:
        """The config that counts among what :meth:`public` shows (None: nothing persisted)."""
        if cls.many:
            return shown[0] if shown else None
        return shown

    @classmethod
    def count(cls, shown: Any) -> int:
        """How many configs :meth:`public` shows for one mount point."""
        if cls.many:
            return len(shown or ())
        return 0 if shown is None else 1

    @classmethod
    def boot_drift(cls, conf: Dict[str, Any], persisted: Dict[str, Any], extras: List[str], boot: bool) -> List[Tuple[str, Any, Any]]:
        """``[(field, declared, persisted)]`` for the boot settings of ``conf`` that differ.

        ``persisted`` is the whole ``persisted`` result, ``extras`` the
        declared boot options (``noauto`` first when ``boot`` is false).
        """
        raise NotImplementedError

    @classmethod
    def with_settings(cls, extras: List[str], settings: Optional[Dict[str, Dict[str, str]]]) -> List[str]:
        """The boot options of the persisted entry once the declared ``unit_settings`` are carried in.

        By default a setting becomes its fstab option (``x-systemd.*``), and
        one with no such form is refused, naming it.
        """
        if not settings:
            return extras
        if (settings.get("Unit") or {}).get("RequiresMountsFor"):
            raise OverlayError(
                "unit_settings.Unit.RequiresMountsFor: an fstab line requires the mounts of its own layers, "
                "upper and work dir (x-systemd.requires-mounts-for=), written by this collection; more paths "
                "need persist: systemd, or remove the setting")
        return extras + [option for option in settings_to_options(settings) if option not in extras]

    @classmethod
    def settings_drift(cls, conf: Dict[str, Any], persisted: Dict[str, Any], decl: Any, extras: List[str],
                       boot: bool) -> List[Dict[str, Any]]:
        """Drift rows (``{field, declared, persisted, ...}``) of unit settings and boot links; none without units.

        ``extras`` and ``boot`` as for :meth:`boot_drift`.
        """
        return []

    # Host reads, on the class ------------------------------------------

    @classmethod
    def scan(cls, locations: Iterable[str], readlink: Optional[Callable[[str], Optional[str]]] = None) -> Dict[str, List[Dict[str, Any]]]:
        """``{mount point: [configs]}`` over every place in ``locations``; see :meth:`configs_in`."""
        raise NotImplementedError

    # One declaration ---------------------------------------------------

    #: Whether a batch may collect this backend's writes to one file and make
    #: them at once (:meth:`write_together`); otherwise each entry writes its own.
    batched = False
    #: The action (a key of :attr:`steps`) whose writes a batch makes together:
    #: a member whose write fails there fails at this step.
    batched_step: Optional[str] = None

    @classmethod
    def write_together(cls, module: Any, location: str, members: List[Tuple[Any, "Backend"]]) -> List[Tuple[Any, OverlayError]]:
        """Make the deferred writes of ``members`` (``[(entry, backend)]``) to ``location``.

        Each entry has ``result``, where a write may add keys. Returns ``[(entry, OverlayError)]`` of the members
        whose write failed. Only backends with :attr:`batched` defer their writes.
        """
        raise NotImplementedError("%s writes each entry's files itself" % cls.name)

    def __init__(self, decl: Any, facts: HostFacts, realpath: Optional[Callable[[str], str]] = None) -> None:
        """``realpath``: where a path leads now (symlinks resolved), to compare persisted paths with
        the declaration's, which are resolved already; None: compare them as written."""
        self.decl = decl
        self.extras = decl.boot_extras
        self.facts = facts
        self.realpath = realpath
        self.keep = False

    def read(self, touch: bool) -> None:
        """Read what is persisted now; ``touch``: this task may change it (checks the location)."""
        raise NotImplementedError

    def plan(self, keep: bool) -> List[str]:
        """Decide what must be persisted: the overlay (``keep``) or nothing for its mount point.

        Pure, on what :meth:`read` found. Returns notes: sentences about what
        will be written that the module shows as warnings.
        """
        raise NotImplementedError

    @property
    def changed(self) -> bool:
        raise NotImplementedError

    def actions(self) -> List[Dict[str, Any]]:
        """``[{action, path}]`` in the order they run."""
        raise NotImplementedError

    def persisted(self, after: bool = True) -> Dict[str, Any]:
        """This backend's part of the module's ``persisted`` result (after the task, by default)."""
        raise NotImplementedError

    def plan_warnings(self, check_mode: bool) -> List[str]:
        """Sentences about what the plan found (for example, duplicates it collapses)."""
        return []

    def diffs(self) -> List[Dict[str, str]]:
        """Diff-mode entries (``before``/``after`` texts with headers) for what changes."""
        return []

    @property
    def steps(self) -> Dict[str, Callable[[StepContext], Optional[Undo]]]:
        """``{action: function(StepContext) -> Undo or None}`` for every action this backend plans."""
        raise NotImplementedError

    def lock_dir(self) -> Optional[str]:
        """A directory to lock while this backend edits files shared between runs, or None."""
        return None

    def stale_file(self) -> Optional[str]:
        """The file this backend writes, next to which a killed run may have left temp files (or None).

        The session removes those whose writer is gone, once per file and
        run, before the first change (``Session.clean_stale``).
        """
        return None

    @property
    def mounts_itself(self) -> bool:
        """True when the overlay must be mounted by starting what this backend wrote."""
        return False

    def stop(self, module: Any) -> bool:
        """Unmount through this backend when it has the mount active; True when it did."""
        return False

    def applied_drop_ins(self) -> List[str]:
        """The files systemd applies over what this backend wrote (drop-ins), named when a mount through it fails."""
        return []

    def release(self) -> None:
        """Drop what planning kept that a finished task no longer needs (large file texts)."""

    def done(self, module: Any, state: str, mounted: bool = False) -> None:
        """Called after a successful run: tell what could not be done on this host (``mounted``: this run mounted)."""
