# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The registered persistence backends (see ``backend.Backend``), and the whole declaration.

Everything that handles persisted overlays in general (converge, drift,
inventory, pruning) iterates over :data:`BACKENDS`; a new backend is added
here, in its own ``<name>_backend.py``, and among the ``persist`` choices
of ``_model.spec``.
"""

import dataclasses
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.tmpfs_units import requires_option
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.declaration import Declaration
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.unit_settings import check_unit_settings
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.mount_flags import merge_flags, split_flags
from ansible_collections.overlayfs.mounts.plugins.module_utils._persist.backend import boot_extras
from ansible_collections.overlayfs.mounts.plugins.module_utils._persist.fstab_backend import FstabBackend
from ansible_collections.overlayfs.mounts.plugins.module_utils._persist.systemd_backend import SystemdBackend

BACKENDS = (FstabBackend, SystemdBackend)
BY_NAME = {backend.name: backend for backend in BACKENDS}


def persisted(backends: Sequence[Any], after: bool = True) -> Dict[str, Any]:
    """The ``persisted`` result of one declaration: every backend's part of it (see ``Backend.persisted``)."""
    out: Dict[str, Any] = {}
    for backend in backends:
        out.update(backend.persisted(after))
    return out


def persisted_kind(persisted: Mapping[str, Any]) -> str:
    """How a ``persisted`` result persists the overlay: a backend's name, ``both`` or ``none``."""
    kinds = [b.name for b in BACKENDS if b.count(persisted.get(b.name))]
    if len(kinds) < 2:
        return kinds[0] if kinds else "none"
    return "both" if len(kinds) == 2 else ",".join(kinds)


def declare(params: Mapping[str, Any], backends: Sequence[type] = BACKENDS) -> Declaration:
    """The whole declaration of ``params``: checked, with its backend and its boot options.

    Pure. ``persist`` becomes the backend of that name among ``backends``
    (None for ``none``); ``boot`` and ``boot_options`` become the checked
    options of the persisted entry. Per-mount flags among ``boot_options``
    (``nosuid``, ``ro``...) join the declared ``flags``, with a note that
    asks to move them to ``options``.
    """
    by_name = {backend.name: backend for backend in backends}
    decl = Declaration.from_params(params, persist=by_name.get(params.get("persist") or "fstab"))
    extras, boot_flags = split_flags(params.get("boot_options") or ())
    settings = check_unit_settings(params.get("unit_settings"))
    changes: Dict[str, Any] = {"boot_extras": boot_extras(decl.boot, extras), "unit_settings": settings}
    if settings is not None and decl.persist is None and decl.writes:
        raise OverlayError("unit_settings: persist is none, so no unit is written; remove unit_settings "
                           "or persist the overlay (persist: systemd)")
    if decl.persist is not None and decl.writes:
        changes["boot_extras"] = decl.persist.with_settings(changes["boot_extras"], settings)
        if decl.upper_tmpfs is not None:
            # The dirs service makes the upper and work dirs on the fresh tmpfs at boot, before the overlay.
            requires = requires_option(decl.path)
            changes["boot_extras"] = [o for o in changes["boot_extras"] if o != requires] + [requires]
    if boot_flags:
        # Per-mount flags count wherever they are given: applied live, persisted with the overlay.
        changes["flags"] = merge_flags(split_flags(params.get("options") or ())[1], boot_flags, "boot_options", "options")
        changes["notes"] = list(decl.notes) + [
            "boot_options: %s %s per-mount %s, applied to the live mount as well as persisted; "
            "move %s to options" % (", ".join(boot_flags), "is a" if len(boot_flags) == 1 else "are",
                                    "flag" if len(boot_flags) == 1 else "flags", "it" if len(boot_flags) == 1 else "them")]
    return dataclasses.replace(decl, **changes)


def scan(locations: Mapping[str, List[str]], readlink: Optional[Callable[[str], Optional[str]]] = None,
         backends: Sequence[type] = BACKENDS) -> Dict[str, Dict[str, Any]]:
    """``{backend name: {location: {mount point: [configs]}}}`` for ``{backend name: [locations]}``."""
    return {b.name: {where: b.scan([where], readlink) for where in locations.get(b.name, ())} for b in backends}
