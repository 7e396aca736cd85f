# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every overlay of the host, live and persisted: what overlay_mount_info returns, and overlay_mounts with list_overlays."""

import glob
import os
from typing import Any, Dict, List, Optional, Sequence

from ansible_collections.overlayfs.mounts.plugins.module_utils._host import files
from ansible_collections.overlayfs.mounts.plugins.module_utils._host import system as host
from ansible_collections.overlayfs.mounts.plugins.module_utils._host.live_paths import LinkTimes
from ansible_collections.overlayfs.mounts.plugins.module_utils._host.tmpfs_mounts import live_tmpfs
from ansible_collections.overlayfs.mounts.plugins.module_utils._host.upper_usage import usage_of
from ansible_collections.overlayfs.mounts.plugins.module_utils._persist.registry import BACKENDS
from ansible_collections.overlayfs.mounts.plugins.module_utils._report.inventory import gather, upper_tmpfs_record
from ansible_collections.overlayfs.mounts.plugins.module_utils._report.printable import returnable, unescape_bytes


def _upper(record: Dict[str, Any]) -> Optional[str]:
    return unescape_bytes(record["upperdir"]) if isinstance(record["upperdir"], str) else None


def add_upper_tmpfs(mounts: List[Dict[str, Any]], entries: list, fstab: str, unit_dirs: Sequence[str]) -> None:
    """Give each overlay its ``upper_tmpfs``: the tmpfs its upper dir lies on, live and persisted (None: none)."""
    fstab_text, units = None, None
    for record in mounts:
        upper = _upper(record)
        if upper is not None and units is None:
            fstab_text = files.read_text(fstab)
            units = {path: files.read_text(path) for directory in unit_dirs
                     for path in sorted(glob.glob(os.path.join(glob.escape(directory), "*.mount")))}
        record["upper_tmpfs"] = returnable(upper_tmpfs_record(upper, entries, lambda point: live_tmpfs(point, entries),
                                                              fstab_text, units or {}))


def list_overlays(fstab: str, unit_dirs: Sequence[str], paths: Optional[Sequence[str]] = None,
                  resolve_layers: bool = False, upper_usage: bool = False) -> List[Dict[str, Any]]:
    """Every overlay of the host (or those at ``paths``), one record per mount point, as overlay_mount_info returns them.

    Raises OverlayError when the host cannot be read.
    """
    locations = {"fstab": [fstab], "unit_dir": list(unit_dirs)}
    persisted = {b.name: b.scan(locations[b.location]) for b in BACKENDS}
    links = LinkTimes(follow=resolve_layers)
    entries = host.read_mountinfo()
    mounts = gather(entries, host.read_defaults(), persisted, paths=paths, exists=host.cached(os.path.exists),
                    realpath=links.realpath, links=links, canonical=host.cached(os.path.realpath))
    add_upper_tmpfs(mounts, entries, fstab, unit_dirs)
    if upper_usage:
        for record in mounts:
            record["upper_usage"] = returnable(usage_of(_upper(record)))
    return mounts
