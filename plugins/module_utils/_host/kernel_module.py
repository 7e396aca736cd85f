# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Make sure the running kernel has overlayfs, now (:func:`load_overlay`) and at every boot (:func:`keep_at_boot`)."""

import os
from typing import Any, Dict, Optional, Tuple

from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError
from ansible_collections.overlayfs.mounts.plugins.module_utils._host.files import read_text, write_atomic

FILESYSTEMS = "/proc/filesystems"
MODULES_LOAD_TEXT = "# Written by overlayfs.mounts: load overlayfs at boot\noverlay\n"


def overlay_listed(text: Optional[str]) -> bool:
    """True when a /proc/filesystems text lists overlay."""
    return any(line.split()[-1:] == ["overlay"] for line in (text or "").splitlines())


def load_overlay(module: Any, modules_load_file: Optional[str] = None,
                 filesystems: str = FILESYSTEMS) -> Tuple[bool, Dict[str, Any]]:
    """Load overlayfs when the running kernel does not list it; ``(loaded, info)``, nothing written.

    In check mode nothing is loaded: ``modprobe --dry-run`` tells whether
    loading would work. ``info`` names ``modules_load_file`` for
    :func:`keep_at_boot`.
    """
    info = {"available": overlay_listed(read_text(filesystems)), "loaded": False,
            "modules_load_file": modules_load_file}
    if info["available"]:
        return False, info
    modprobe = module.get_bin_path("modprobe")
    if modprobe is None:
        raise OverlayError(
            "this kernel does not list overlay in %s and there is no modprobe to load it: "
            "use a kernel built with CONFIG_OVERLAY_FS" % filesystems)
    cmd = [modprobe] + (["--dry-run"] if module.check_mode else []) + ["overlay"]
    rc, _out, err = module.run_command(cmd)
    if rc != 0:
        raise OverlayError(
            "this kernel does not support overlayfs: overlay is not in %s and %s failed (rc=%d): %s. "
            "Use a kernel built with CONFIG_OVERLAY_FS=y or =m and install its modules"
            % (filesystems, " ".join(cmd), rc, err.strip()))
    if not module.check_mode and not overlay_listed(read_text(filesystems)):
        raise OverlayError("%s succeeded but %s still does not list overlay" % (" ".join(cmd), filesystems))
    info["loaded"] = True
    return True, info


def keep_at_boot(module: Any, info: Dict[str, Any]) -> bool:
    """Write ``info``'s modules_load_file (when named) unless it already loads overlay; whether it changed.

    Sets ``info["modules_load_file_changed"]`` when it did (or would, in check mode).
    """
    modules_load_file = info["modules_load_file"]
    if not modules_load_file or read_text(modules_load_file) == MODULES_LOAD_TEXT:
        return False
    if not module.check_mode:
        directory = os.path.dirname(modules_load_file)
        try:
            if directory and not os.path.isdir(directory):
                os.makedirs(directory, 0o755)
            write_atomic(module, modules_load_file, MODULES_LOAD_TEXT)
        except OSError as error:
            raise OverlayError("modules_load_file: cannot write %s: %s" % (modules_load_file, error))
    info["modules_load_file_changed"] = True
    return True
