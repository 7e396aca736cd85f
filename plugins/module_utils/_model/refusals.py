# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Why a declaration is refused against other paths and the host as observed. Pure.

The converge reads the host (``_converge.entry.observe``) and asks these
functions; each raises an OverlayError that names the field, says why the
kernel or the collection refuses it, and how to fix it. Other refusals live
where their facts are: the parameters alone in ``declaration``, symlink
safety in ``_host.safe_paths``, the upper dir's state in
``_host.upper_safety``, what the running kernel lacks in
``_host.kernel_features``, and what a format cannot write in ``_formats``.
"""

import re
from typing import Any, List, Mapping, Sequence

from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.paths import inside


def refuse_dangling_mount_point(path: str, kind: str) -> None:
    """The mount point must be a directory, or missing (to be created)."""
    if kind == "dangling symlink":
        raise OverlayError(
            "path: '%s' is a symlink to nothing; the mount point must be a directory (or missing, "
            "to be created): remove the link or point it at a directory" % path)


def check_datadir(datadir: Sequence[str], metacopy: str) -> None:
    """Data-only layers need ``metacopy=on`` (``metacopy``: the effective value)."""
    if datadir and metacopy != "on":
        raise OverlayError(
            "datadir: data-only lower layers need metacopy=on (the kernel refuses them "
            "otherwise); add metacopy=on to options")


def refuse_foreign(path: str, fstype: str) -> None:
    raise OverlayError(
        "path: '%s' is already a mount point of a %s filesystem, not an overlay; this module "
        "does not mount over it: unmount it first or choose another path" % (path, fstype))


ENGINE_NAMES = {"docker": "Docker", "containers-storage": "podman (containers/storage)"}


def refuse_engine(path: str, engine: str) -> None:
    raise OverlayError(
        "path: '%s' is the root filesystem of a container, mounted by %s (its storage layout says "
        "so); this collection never mounts over, re-layers or unmounts a container engine's "
        "overlay: manage it with the engine (stop or remove the container), or choose another path"
        % (path, ENGINE_NAMES.get(engine, engine)), engine=engine)


# Who mounted a system overlay, and how its owner takes it down or changes it.
_SYSTEM_OVERLAYS = {
    "systemd-sysext": (
        "a systemd-sysext overlay (mount source 'sysext'), merged from the system extension images",
        "change it with systemd-sysext: 'systemd-sysext unmerge' to take it down, 'systemd-sysext "
        "refresh' after adding or removing images in /var/lib/extensions, /etc/extensions or "
        "/run/extensions"),
    "systemd-confext": (
        "a systemd-confext overlay (mount source 'confext'), merged from the configuration extension images",
        "change it with systemd-confext: 'systemd-confext unmerge' to take it down, 'systemd-confext "
        "refresh' after adding or removing images in /var/lib/confexts, /etc/confexts or /run/confexts"),
    "composefs": (
        "a composefs image (an EROFS metadata image over data-only layers, mounted by libcomposefs)",
        "it belongs to the tool that mounted it (ostree, bootc, podman's composefs storage or "
        "mount.composefs): change or unmount it with that tool"),
    "fuse-overlayfs": (
        "a fuse-overlayfs mount (a FUSE filesystem, not a kernel overlay: mountinfo shows none of "
        "its layers)",
        "unmount it as its owner with 'fusermount3 -u' (rootless podman and buildah mount these), "
        "and manage it with the tool that mounted it"),
}


def refuse_hands_off(path: str, engine: str) -> None:
    """Refuse any state at a mount point a container engine or the system manages (``engine``)."""
    if engine not in _SYSTEM_OVERLAYS:
        refuse_engine(path, engine)
    what, how = _SYSTEM_OVERLAYS[engine]
    raise OverlayError(
        "path: '%s' is %s; this collection never mounts over, re-layers, unmounts or prunes it, "
        "whatever the state: %s, or choose another path" % (path, what, how), engine=engine)


def busy_message(path: str, fields: Sequence[str], users: str) -> str:
    """Why a re-layering cannot be made while ``users`` keep the mount busy."""
    return ("%s must be unmounted and mounted again to apply %s (a remount cannot change "
            "layers, upper or work), but it is in use: %s. Stop those users, then run again"
            % (path, ", ".join(fields), users))


def held_message(path: str, state: str, users: str) -> str:
    """Why ``state`` (unmounted, absent) cannot unmount ``path`` while ``users`` hold it."""
    return ("state: %s needs %s unmounted, but it is in use: %s. Nothing was changed: stop those users "
            "(or the container or service that runs them), then run again" % (state, path, users))


def dependents_message(path: str, state: str, found: Sequence[Mapping[str, str]]) -> str:
    """Why ``path`` cannot be unmounted (``state``, or a re-layering) while the overlays ``found`` use a dir in it."""
    uses = "; ".join("the overlay mounted at %s has %s %s inside it" % (d["path"], d["field"], d["dir"]) for d in found)
    what = "re-layered" if state == "mounted" else "unmounted (state: %s)" % state
    return ("%s cannot be %s while other overlays use a dir inside it: %s. Each keeps a private copy of its "
            "layers' mounts, so this overlay, and its upper dir, would stay alive beneath them unseen. Nothing "
            "was changed: unmount them first, or declare them with it in one overlayfs.mounts.overlay_mounts "
            "list, which takes them down and mounts them again in order" % (path, what, uses))


def stays_message(path: str, copies: str) -> str:
    """What an unmount of ``path`` leaves behind: ``copies`` of it in other namespaces, which it does not reach."""
    return ("%s is unmounted here, but the overlay stays alive in other mount namespaces: %s. Its upper dir "
            "stays in use until they end or unmount it; this collection will not mount another overlay on "
            "that upper dir meanwhile" % (path, copies))


def shared_message(path: str, others: str) -> str:
    """Why an overlay cannot be mounted at ``path`` while ``others`` use its upper or work dir."""
    return ("%s cannot be mounted: another overlay is live on its upper or work dir: %s. One upper and "
            "work dir pair must never serve two overlays at once (the data gets corrupted): stop that "
            "container or service so the old overlay goes away, then run again; nothing was changed"
            % (path, others))


def check_layout(decl: Any) -> None:
    """Check canonical paths against each other (same dir twice, nesting)."""
    named = decl.named_dirs()
    lowers = len(decl.layers)
    seen = {}
    for field, value in named:
        if value in seen:
            raise OverlayError(
                "%s: '%s' is the same directory as %s; every layer, the upper and the work "
                "dir must be distinct directories" % (field, value, seen[value]))
        seen[value] = field
    upper, work, path = decl.upperdir, decl.workdir, decl.path
    if upper is None:
        return
    if inside(work, upper):
        raise OverlayError(
            "workdir: '%s' is inside upperdir '%s'; the kernel refuses this: put both side by "
            "side in one parent directory (for example .../upper and .../work)" % (work, upper))
    if inside(upper, work):
        raise OverlayError(
            "upperdir: '%s' is inside workdir '%s'; put both side by side in one parent "
            "directory" % (upper, work))
    for field, value in (("upperdir", upper), ("workdir", work)):
        if value == path or inside(value, path):
            raise OverlayError(
                "%s: '%s' is at or inside the mount point '%s', which the overlay would hide; "
                "keep it outside the mount point" % (field, value, path))
        for lower_field, lower in named[:lowers]:
            if inside(value, lower) or inside(lower, value):
                raise OverlayError(
                    "%s: '%s' overlaps %s '%s' (one is inside the other); the kernel refuses "
                    "overlapping layers: use separate directory trees" % (field, value, lower_field, lower))


def check_host(decl: Any, kinds: Mapping[str, str], upper_mount: Any, work_mount: Any, create_dirs: bool,
               lowers_needed: bool = True) -> List[str]:
    """Check the declaration against host facts.

    ``kinds`` maps each declared path to ``dir``, ``missing``, or another kind
    (``file``, ``symlink`` to nothing, ...). ``upper_mount``/``work_mount`` are
    the mountinfo entries that hold the upper and work dirs (or None).
    ``lowers_needed=False`` lets lower dirs be missing (an overlay persisted
    for a boot at which they will be there).
    Returns the list of directories to create.
    """
    to_create = []
    for field, layer in decl.named_dirs()[:len(decl.layers)]:
        kind = kinds[layer]
        if kind == "missing" and not lowers_needed:
            continue
        if kind == "missing":
            raise OverlayError(
                "%s: '%s' does not exist; lower layers are never created by this "
                "module: create and fill it first, or fix the path" % (field, layer))
        if kind != "dir":
            raise OverlayError("%s: '%s' is a %s, not a directory" % (field, layer, kind))
    fields = [("path", decl.path)] + decl.named_dirs()[len(decl.layers):]
    for field, value in fields:
        kind = kinds[value]
        if kind == "missing":
            if not create_dirs:
                raise OverlayError(
                    "%s: '%s' does not exist and create_dirs is false; create it or set "
                    "create_dirs: true" % (field, value))
            to_create.append(value)
        elif kind != "dir":
            what = "mount point" if field == "path" else field
            raise OverlayError(
                "%s: '%s' is a %s, not a directory; the %s must be a directory"
                % (field, value, kind, what))
    if decl.writable and upper_mount is not None:
        if upper_mount.is_overlay:
            raise OverlayError(
                "upperdir: '%s' is on the overlay mounted at '%s'; the kernel cannot use an "
                "overlay as upper dir: put upper and work on ext4, xfs, btrfs or tmpfs"
                % (decl.upperdir, upper_mount.mount_point))
        if work_mount is not None and work_mount.mount_id != upper_mount.mount_id:
            raise OverlayError(
                "workdir: '%s' is on the mount at '%s' but upperdir '%s' is on '%s'; the kernel "
                "needs both under the same mount: put them side by side in one directory"
                % (decl.workdir, work_mount.mount_point, decl.upperdir, upper_mount.mount_point))
    return to_create


# What the kernel itself keeps in a work dir: ``work/`` (emptied at every
# mount; temp entries named ``#<hex>`` and the volatile ``incompat/`` marker
# inside) and ``index/`` (entries named by hex file handles).
_KERNEL_WORK_TOP = ("work", "index")
_KERNEL_TEMP = re.compile(r"^#[0-9a-fA-F]+$")
_KERNEL_INDEX = re.compile(r"^#?[0-9a-fA-F]+$")


def check_workdir(workdir: str, listing: Mapping[str, Any], limit: int = 5) -> None:
    """Refuse a work dir holding anything the kernel did not put there.

    ``listing`` maps ``""`` to the names in the work dir, ``"work"`` and
    ``"index"`` to the names in those subdirectories (when they are
    directories), and ``"not_dirs"`` to the top names that are not
    directories. On mount the kernel empties ``work/``, and it cleans
    ``index/``: whatever else is there would be lost, or shows that the upper
    and work dirs were swapped.
    """
    foreign = []
    for name in listing.get("", ()):
        if name not in _KERNEL_WORK_TOP or name in listing.get("not_dirs", ()):
            foreign.append(name)
    for name in listing.get("work", ()):
        if name != "incompat" and not _KERNEL_TEMP.match(name):
            foreign.append("work/" + name)
    for name in listing.get("index", ()):
        if not _KERNEL_INDEX.match(name):
            foreign.append("index/" + name)
    if foreign:
        foreign.sort()
        shown = ", ".join(foreign[:limit]) + (" and %d more" % (len(foreign) - limit) if len(foreign) > limit else "")
        raise OverlayError(
            "workdir: '%s' holds %s, which the kernel did not put there; on mount the kernel "
            "empties its work/ subdirectory, so those files would be lost (are upperdir and "
            "workdir swapped?). Give an empty directory as workdir, or move the files away"
            % (workdir, shown), foreign=foreign[:50])
