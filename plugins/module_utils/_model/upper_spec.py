# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""overlay_upper's argument spec: an overlay's declaration keys, and what to do with its upper dir.

The declaration keys are ``overlay_mount``'s own (``_model.spec.MOUNT_SPEC``),
taken by name, so both modules read a declaration alike. What differs:
``lowerdir``, ``upperdir`` and ``workdir`` may be left out (then the
overlay's persisted fstab line or unit, or its live mount, says), and
``persist`` and ``boot`` default to what is persisted now. ``backup`` is the
upper dir's backup, not fstab's.
"""

import copy
from typing import Any, Dict, Mapping

from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.spec import MOUNT_SPEC

UPPER_STATES = ["reset", "committed"]

#: The declaration keys of an overlay that overlay_upper takes from overlay_mount.
DECLARATION_KEYS = ("path", "lowerdir", "datadir", "upperdir", "workdir", "options", "persist", "fstab", "unit_dir",
                    "boot", "boot_options", "method", "links_dir", "unit_settings", "drop_ins", "upper_tmpfs")


def _upper_spec() -> Dict[str, Dict[str, Any]]:
    spec = {name: copy.deepcopy(MOUNT_SPEC[name]) for name in DECLARATION_KEYS}
    for name in ("persist", "boot"):
        spec[name].pop("default", None)
    spec["state"] = dict(type="str", choices=UPPER_STATES, required=True)
    spec["layer"] = dict(type="path")
    spec["backup"] = dict(type="raw", default=False)
    return spec


UPPER_SPEC = _upper_spec()
UPPER_REQUIRED_IF = [("state", "committed", ["layer"])]
UPPER_REQUIRED_TOGETHER = [("upperdir", "workdir")]
UPPER_REQUIRED_BY = {"lowerdir": ["upperdir"]}


def backup_choice(value: Any) -> Any:
    """``backup`` as False, True or an absolute path; anything else is refused, naming the field."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("yes", "true", "on", "1"):
            return True
        if lowered in ("no", "false", "off", "0", ""):
            return False
        if value.startswith("/"):
            return value.rstrip("/") or "/"
    raise OverlayError("backup: %r is neither true/false nor an absolute path; give backup: true for a backup "
                       "beside the upper dir, or the absolute path of a new dir to keep it in" % (value,))


def declaration_params(params: Mapping[str, Any]) -> Dict[str, Any]:
    """The overlay declaration among overlay_upper's parameters (None where left out)."""
    return {name: params.get(name) for name in DECLARATION_KEYS}
