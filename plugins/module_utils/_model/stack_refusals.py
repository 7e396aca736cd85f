# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What is said about an overlay that another mount covers, or that serves a shadowed directory. Pure.

A mount description is the dict ``_compare.live`` makes of a mountinfo
entry: ``{type, source, mount_id, path}``.
"""

from typing import Any, Mapping

from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError


def describe_mount(mount: Mapping[str, Any]) -> str:
    """A mount in words: ``a tmpfs mount (source 'tmpfs', mount id 412) at /srv/m``."""
    return "a %s mount (source '%s', mount id %s) at %s" % (mount["type"], mount["source"], mount["mount_id"], mount["path"])


def covered_warning(path: str, cover: Mapping[str, Any]) -> str:
    """The warning of a ``mounted`` declaration whose overlay is mounted, but under another mount."""
    return (
        "path: the declared overlay is mounted at '%s', but %s was mounted on top of it since, and the "
        "path shows that mount, not the overlay. Nothing was unmounted or mounted: the covering mount "
        "is not this task's. Unmount it (its owner's job) to uncover the overlay, or declare another path"
        % (path, describe_mount(cover)))


def refuse_covered(path: str, state: str, cover: Mapping[str, Any]) -> None:
    """Refuse to take down an overlay that another mount covers: the unmount would hit that mount."""
    raise OverlayError(
        "state: %s of '%s' refused: the declared overlay is mounted there, but %s covers it, and an "
        "unmount of the path would take down that mount, which is not this task's. Unmount the covering "
        "mount first (as its owner), then run this task again" % (state, path, describe_mount(cover)),
        covered=dict(cover))


def shadowed_reason(field: str, dir_path: str, mount: Mapping[str, Any]) -> str:
    """Why the dir ``field`` of a live overlay is shadowed: a mount on its path came after the overlay."""
    return (
        "%s %s: %s was mounted over its path after the overlay was, so the overlay still serves the "
        "directory that was there before, not what the path shows now. Mount the overlay again "
        "(overlay_mount re-layers it when it is declared) to serve what the path shows"
        % (field, dir_path, describe_mount(mount)))
