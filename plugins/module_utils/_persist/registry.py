# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The registered persistence backends (see ``_backend.Backend``).

Everything that handles persisted overlays in general (converge, drift,
inventory, pruning) iterates over :data:`BACKENDS`; a new backend is added
here, in its own ``_backend_<name>.py``, and among the ``persist`` choices
of ``_spec``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.overlayfs.mounts.plugins.module_utils._persist.fstab_backend import FstabBackend
from ansible_collections.overlayfs.mounts.plugins.module_utils._persist.systemd_backend import SystemdBackend

BACKENDS = (FstabBackend, SystemdBackend)
BY_NAME = dict((backend.name, backend) for backend in BACKENDS)


def persisted_kind(persisted):
    """How a ``persisted`` result persists the overlay: a backend's name, ``both`` or ``none``."""
    kinds = [b.name for b in BACKENDS if b.count(persisted.get(b.name))]
    if len(kinds) < 2:
        return kinds[0] if kinds else "none"
    return "both" if len(kinds) == 2 else ",".join(kinds)


def for_task(params, decl, extras, facts):
    """One instance of every backend for the declaration ``decl``."""
    return [backend(params, decl, extras, facts) for backend in BACKENDS]


def scan(locations, readlink=None):
    """``{backend name: {location: {mount point: [configs]}}}`` for ``{backend name: [locations]}``."""
    return dict((b.name, dict((where, b.scan([where], readlink)) for where in locations.get(b.name, ())))
                for b in BACKENDS)
