# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parse /proc/self/mountinfo, keeping the super options that hold an overlay's layers.

Pure text in, plain objects out. A container host has hundreds of overlay
mounts, so one pass over the lines does all the work and the overlay options
are only split for the entries that are overlays.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import posixpath

from ansible_collections.overlayfs.mounts.plugins.module_utils._escape import (
    decode_octal,
    split_layers,
    split_options,
    unescape_layer,
)


class MountEntry(object):
    """One line of mountinfo; text fields are already unescaped."""

    __slots__ = (
        "mount_id", "parent_id", "device", "root", "mount_point", "mount_options",
        "optional", "fstype", "source", "super_options",
    )

    def __init__(self, mount_id, parent_id, device, root, mount_point, mount_options,
                 optional, fstype, source, super_options):
        self.mount_id = mount_id
        self.parent_id = parent_id
        self.device = device
        self.root = root
        self.mount_point = mount_point
        self.mount_options = mount_options
        self.optional = optional
        self.fstype = fstype
        self.source = source
        self.super_options = super_options

    @property
    def is_overlay(self):
        return self.fstype == "overlay"

    def __repr__(self):
        return "MountEntry(%d, %r, %r)" % (self.mount_id, self.mount_point, self.fstype)


def parse_line(line):
    """Parse one mountinfo line; return None for a line that is not one."""
    fields = line.split(" ")
    try:
        sep = fields.index("-", 6)
        # Positional arguments: this runs once per line of a busy host's mountinfo.
        return MountEntry(
            int(fields[0]), int(fields[1]), fields[2], decode_octal(fields[3]),
            decode_octal(fields[4]), fields[5].split(","), fields[6:sep], fields[sep + 1],
            decode_octal(fields[sep + 2]),
            # Left escaped: a path's comma shows as \054 and must not split.
            " ".join(fields[sep + 3:]),
        )
    except (ValueError, IndexError):
        return None


def parse(text):
    """All entries of a mountinfo text, in file order (later mounts last)."""
    entries = []
    append = entries.append
    for line in text.split("\n"):
        if line:
            entry = parse_line(line)
            if entry is not None:
                append(entry)
    return entries


def overlay_config(entry):
    """Split an overlay entry's super options into layers, upper, work and options.

    Returns a dict with ``lowerdir`` (top layer first), ``datadir`` (data-only
    layers), ``upperdir``, ``workdir`` (or None), ``options`` (the remaining
    overlay options, in mountinfo order), ``vfs`` (``rw``/``ro`` from the super
    options) and ``form``: ``lowerdir`` for the legacy ``lowerdir=a:b`` form,
    ``lowerdir+`` for one entry per layer.
    """
    lowerdir, datadir, options = [], [], []
    upperdir = workdir = None
    form = None
    vfs = None
    for raw in _split_super_options(entry.super_options):
        key, sep, value = raw.partition("=")
        if key == "lowerdir":
            # Shown as given to the kernel: still holds its \: \, \\ escapes.
            lowerdir, datadir = split_layers(decode_octal(value))
            form = "lowerdir"
        elif key == "lowerdir+":
            lowerdir.append(decode_octal(value))
            form = "lowerdir+"
        elif key == "datadir+":
            datadir.append(decode_octal(value))
        elif key == "upperdir":
            upperdir = unescape_layer(decode_octal(value))
        elif key == "workdir":
            workdir = unescape_layer(decode_octal(value))
        elif key in ("rw", "ro") and not sep:
            vfs = key
        else:
            options.append(decode_octal(raw))
    return {
        "lowerdir": lowerdir,
        "datadir": datadir,
        "upperdir": upperdir,
        "workdir": workdir,
        "options": options,
        "vfs": vfs,
        "form": form,
    }


_LAYER_KEYS = ("lowerdir", "lowerdir+", "datadir+", "upperdir", "workdir")


def _split_super_options(text):
    """Split an overlay's super options at commas.

    The kernel shows a comma inside a layer path as ``\\054``, so every raw
    comma separates options, except inside the double quotes of another
    option's value (an SELinux ``context="...,..."``). A ``"`` in a layer path
    opens nothing: it must not hide the options after it.
    """
    if '"' not in text:
        return split_options(text)
    out = []
    held = None
    for piece in text.split(","):
        if held is not None:
            held += "," + piece
            if piece.count('"') % 2:
                out.append(held)
                held = None
            continue
        if piece.partition("=")[0] not in _LAYER_KEYS and piece.count('"') % 2:
            held = piece
            continue
        if piece:
            out.append(piece)
    if held:
        out.append(held)
    return out


def relative_layer_bases(upperdir, workdir):
    """Directories a relative layer path is most likely relative to.

    The kernel keeps a relative layer path exactly as the mounting process gave
    it, relative to that process's working directory, which mountinfo does not
    record. Docker's overlay2 and containers/storage chdir to their storage
    root and pass ``l/<short id>`` links, with an absolute upper dir two levels
    below that root (``<root>/<id>/diff``), so the root is the best guess.
    """
    bases = []
    for anchor in (upperdir, workdir):
        if anchor and anchor[0] == "/":
            # String splits, not posixpath: this runs for every mount of a busy host.
            parent = anchor.rstrip("/").rsplit("/", 1)[0] or "/"
            for base in (parent.rsplit("/", 1)[0] or "/", parent):
                if base not in bases:
                    bases.append(base)
    return bases


def relative_base(path, bases, exists):
    """The first of ``bases`` under which the relative ``path`` exists, or None.

    ``exists`` is a callable (``os.path.exists`` on a host).
    """
    plain = "/." not in "/" + path and "//" not in path
    for base in bases:
        candidate = base.rstrip("/") + "/" + path
        if exists(candidate if plain else posixpath.normpath(candidate)):
            return base
    return None


def resolve_relative(path, bases, exists):
    """Resolve a relative layer path against the first base where it exists.

    Returns the path unchanged when it is absolute or no base holds it.
    """
    if posixpath.isabs(path):
        return path
    base = relative_base(path, bases, exists)
    return path if base is None else posixpath.normpath(posixpath.join(base, path))


def top_mount_at(entries, mount_point):
    """The visible (last mounted) entry whose mount point is ``mount_point``."""
    found = None
    for entry in entries:
        if entry.mount_point == mount_point:
            found = entry
    return found


def mounts_at(entries, mount_point):
    """Every entry stacked on ``mount_point``, oldest first."""
    return [e for e in entries if e.mount_point == mount_point]


def mount_containing(entries, path):
    """The entry of the mount that holds ``path`` (an absolute, canonical path).

    The longest mount point that is ``path`` or one of its parents; among
    mounts stacked on one point, the last one is the visible one.
    """
    best = None
    best_len = -1
    for entry in entries:
        point = entry.mount_point
        if point == "/" or path == point or path.startswith(point + "/"):
            length = len(point)
            if length >= best_len:
                best, best_len = entry, length
    return best


def submounts(entries, mount_point):
    """Entries mounted strictly below ``mount_point``."""
    prefix = mount_point.rstrip("/") + "/"
    return [e for e in entries if e.mount_point.startswith(prefix)]
