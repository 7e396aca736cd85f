# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Check a declared overlay before anything is touched.

Three steps, all pure: :meth:`Declaration.from_params` checks what can be
seen in the declaration alone, :func:`check_layout` checks the canonical paths against
each other, :func:`check_host` checks them against facts read from the host
(what exists, which mount holds a path). Every error names the field and says
how to fix it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import grp
import posixpath
import pwd
import re

from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.overlay_options import canonical_options
from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.mount_data import check_pairing, named_layers
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.paths import inside

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


class Declaration(object):
    """One declared overlay: where it is mounted, its layers and its options.

    Paths are absolute and normalised (:meth:`canonical` resolves symlinks as
    the kernel will); ``datadir`` is always a list, empty when no data-only
    layers were given; ``upperdir`` and ``workdir`` are both set or both None.
    """

    FIELDS = ("path", "lowerdir", "datadir", "upperdir", "workdir", "options")

    def __init__(self, path, lowerdir=(), upperdir=None, workdir=None, options=(), datadir=(), state="mounted"):
        self.path = path
        self.lowerdir = list(lowerdir or ())
        self.datadir = list(datadir or ())
        self.upperdir = upperdir
        self.workdir = workdir
        self.options = list(options or ())
        self.state = state

    @classmethod
    def from_params(cls, params):
        """Check what the parameters alone show, and normalise paths and options."""
        state = params["state"]
        check_pairing(params["upperdir"], params["workdir"])
        decl = cls(
            _check_path(params["path"], "path"),
            [_check_path(layer, "lowerdir[%d]" % i) for i, layer in enumerate(params["lowerdir"] or ())],
            _check_path(params["upperdir"], "upperdir") if params["upperdir"] is not None else None,
            _check_path(params["workdir"], "workdir") if params["workdir"] is not None else None,
            canonical_options(params["options"]),
            [_check_path(layer, "datadir[%d]" % i) for i, layer in enumerate(params.get("datadir") or ())],
            state)
        if state in ("mounted", "present"):
            decl._check_layer_count()
        return decl

    def _check_layer_count(self):
        if not self.lowerdir:
            raise OverlayError("lowerdir: state=%s needs at least one lower directory" % self.state)
        if len(self.layers) > MAX_LOWER_LAYERS:
            raise OverlayError(
                "lowerdir: %d layers given; the kernel stacks at most %d (data-only layers included)"
                % (len(self.layers), MAX_LOWER_LAYERS))
        if not self.writable and len(self.lowerdir) < 2:
            raise OverlayError(
                "lowerdir: a read-only overlay (no upperdir) needs at least two lower "
                "directories; add a layer, or give upperdir and workdir")

    @property
    def writable(self):
        return self.upperdir is not None

    @property
    def layers(self):
        """Lower layers, top first, then the data-only layers."""
        return self.lowerdir + self.datadir

    def named_dirs(self):
        """``[(field, path)]`` of every layer, then upper and work dir."""
        return named_layers(self.lowerdir, self.upperdir, self.workdir, self.datadir)

    def all_paths(self):
        """The mount point, then every layer, upper and work dir."""
        return [self.path] + [path for _field, path in self.named_dirs()]

    def canonical(self, realpath=posixpath.realpath):
        """The same declaration with every path resolved as the kernel will see it."""
        return Declaration(
            realpath(self.path), [realpath(p) for p in self.lowerdir],
            realpath(self.upperdir) if self.writable else None,
            realpath(self.workdir) if self.writable else None,
            self.options, [realpath(p) for p in self.datadir], self.state)

    def config(self):
        """The overlay's fields as a dict, the shape persisted and live configs share."""
        return dict((name, getattr(self, name)) for name in self.FIELDS)

    def as_result(self):
        """The module's ``mount`` return value: ``datadir`` only when given."""
        out = self.config()
        if not self.datadir:
            del out["datadir"]
        return out

    def __eq__(self, other):
        return isinstance(other, Declaration) and (self.config(), self.state) == (other.config(), other.state)

    def __ne__(self, other):
        return not self == other

    def __repr__(self):
        return "Declaration(%r, state=%r)" % (self.config(), self.state)


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


def dir_attributes(mode, owner, group):
    """``(mode, uid, gid)`` for created dirs from the mode/owner/group parameters (None: unset)."""
    if mode is not None and not isinstance(mode, int):
        text = str(mode).strip()
        try:
            mode = int(text, 8)
        except ValueError:
            raise OverlayError("mode: '%s' is not an octal mode; write it quoted, such as '0755'" % text)
    return (mode, _number_or_name(owner, "owner", lambda n: pwd.getpwnam(n).pw_uid, "user"),
            _number_or_name(group, "group", lambda n: grp.getgrnam(n).gr_gid, "group"))


def check_layout(decl):
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
