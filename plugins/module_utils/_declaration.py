# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Check a declared overlay before anything is touched.

Three steps, all pure: :func:`from_params` checks what can be seen in the
declaration alone, :func:`check_layout` checks the canonical paths against
each other, :func:`check_host` checks them against facts read from the host
(what exists, which mount holds a path). Every error names the field and says
how to fix it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import posixpath
import re

from ansible_collections.overlayfs.mounts.plugins.module_utils._errors import OverlayError
from ansible_collections.overlayfs.mounts.plugins.module_utils._options import canonical_options

MAX_LOWER_LAYERS = 500


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
    return posixpath.normpath(value) if value != "/" else value


def from_params(path, lowerdir, upperdir, workdir, options, state, datadir=None):
    """The declaration as a dict of normalised paths and canonical options.

    ``datadir`` (data-only lower layers) appears in the dict only when given.
    """
    decl = {
        "path": _check_path(path, "path"),
        "lowerdir": [],
        "upperdir": None,
        "workdir": None,
        "options": canonical_options(options),
    }
    if (upperdir is None) != (workdir is None):
        raise OverlayError(
            "upperdir and workdir go together: give both for a writable overlay, "
            "or neither for a read-only one")
    if upperdir is not None:
        decl["upperdir"] = _check_path(upperdir, "upperdir")
        decl["workdir"] = _check_path(workdir, "workdir")
    for index, layer in enumerate(lowerdir or ()):
        decl["lowerdir"].append(_check_path(layer, "lowerdir[%d]" % index))
    if datadir:
        decl["datadir"] = [_check_path(layer, "datadir[%d]" % i) for i, layer in enumerate(datadir)]
    if state in ("mounted", "present"):
        if not decl["lowerdir"]:
            raise OverlayError("lowerdir: state=%s needs at least one lower directory" % state)
        layers = len(decl["lowerdir"]) + len(decl.get("datadir", ()))
        if layers > MAX_LOWER_LAYERS:
            raise OverlayError(
                "lowerdir: %d layers given; the kernel stacks at most %d (data-only layers included)"
                % (layers, MAX_LOWER_LAYERS))
        if decl["upperdir"] is None and len(decl["lowerdir"]) < 2:
            raise OverlayError(
                "lowerdir: a read-only overlay (no upperdir) needs at least two lower "
                "directories; add a layer, or give upperdir and workdir")
    return decl


def _inside(child, parent):
    return parent == "/" or child.startswith(parent.rstrip("/") + "/")


def check_layout(decl):
    """Check canonical paths against each other (same dir twice, nesting)."""
    named = [("lowerdir[%d]" % i, p) for i, p in enumerate(decl["lowerdir"])]
    named += [("datadir[%d]" % i, p) for i, p in enumerate(decl.get("datadir", ()))]
    lowers = len(named)
    if decl["upperdir"] is not None:
        named += [("upperdir", decl["upperdir"]), ("workdir", decl["workdir"])]
    seen = {}
    for field, value in named:
        if value in seen:
            raise OverlayError(
                "%s: '%s' is the same directory as %s; every layer, the upper and the work "
                "dir must be distinct directories" % (field, value, seen[value]))
        seen[value] = field
    upper, work, path = decl["upperdir"], decl["workdir"], decl["path"]
    if upper is None:
        return
    if _inside(work, upper):
        raise OverlayError(
            "workdir: '%s' is inside upperdir '%s'; the kernel refuses this: put both side by "
            "side in one parent directory (for example .../upper and .../work)" % (work, upper))
    if _inside(upper, work):
        raise OverlayError(
            "upperdir: '%s' is inside workdir '%s'; put both side by side in one parent "
            "directory" % (upper, work))
    for field, value in (("upperdir", upper), ("workdir", work)):
        if value == path or _inside(value, path):
            raise OverlayError(
                "%s: '%s' is at or inside the mount point '%s', which the overlay would hide; "
                "keep it outside the mount point" % (field, value, path))
        for lower_field, lower in named[:lowers]:
            if _inside(value, lower) or _inside(lower, value):
                raise OverlayError(
                    "%s: '%s' overlaps %s '%s' (one is inside the other); the kernel refuses "
                    "overlapping layers: use separate directory trees" % (field, value, lower_field, lower))


def check_host(decl, kinds, upper_mount, work_mount, create_dirs, lowers_needed=True):
    """Check the declaration against host facts.

    ``kinds`` maps each declared path to ``dir``, ``missing``, or another kind
    (``file``, ``symlink`` to nothing, ...). ``upper_mount``/``work_mount`` are
    the mountinfo entries that hold the upper and work dirs (or None).
    ``lowers_needed=False`` lets lower dirs be missing (an overlay persisted
    for a boot at which they will be there).
    Returns the list of directories to create.
    """
    to_create = []
    named = [("lowerdir[%d]" % i, p) for i, p in enumerate(decl["lowerdir"])]
    named += [("datadir[%d]" % i, p) for i, p in enumerate(decl.get("datadir", ()))]
    for field, layer in named:
        kind = kinds[layer]
        if kind == "missing" and not lowers_needed:
            continue
        if kind == "missing":
            raise OverlayError(
                "%s: '%s' does not exist; lower layers are never created by this "
                "module: create and fill it first, or fix the path" % (field, layer))
        if kind != "dir":
            raise OverlayError("%s: '%s' is a %s, not a directory" % (field, layer, kind))
    fields = [("path", decl["path"])]
    if decl["upperdir"] is not None:
        fields += [("upperdir", decl["upperdir"]), ("workdir", decl["workdir"])]
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
    if decl["upperdir"] is not None and upper_mount is not None:
        if upper_mount.is_overlay:
            raise OverlayError(
                "upperdir: '%s' is on the overlay mounted at '%s'; the kernel cannot use an "
                "overlay as upper dir: put upper and work on ext4, xfs, btrfs or tmpfs"
                % (decl["upperdir"], upper_mount.mount_point))
        if work_mount is not None and work_mount.mount_id != upper_mount.mount_id:
            raise OverlayError(
                "workdir: '%s' is on the mount at '%s' but upperdir '%s' is on '%s'; the kernel "
                "needs both under the same mount: put them side by side in one directory"
                % (decl["workdir"], work_mount.mount_point, decl["upperdir"], upper_mount.mount_point))
    return to_create


# What the kernel itself keeps in a work dir: ``work/`` (emptied at every
# mount; temp entries named ``#<hex>`` and the volatile ``incompat/`` marker
# inside) and ``index/`` (entries named by hex file handles).
_KERNEL_WORK_TOP = ("work", "index")
_KERNEL_TEMP = re.compile(r"^#[0-9a-fA-F]+$")
_KERNEL_INDEX = re.compile(r"^#?[0-9a-fA-F]+$")


def check_workdir(workdir, listing, limit=5):
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
