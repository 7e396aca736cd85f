# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Decide what /etc/fstab and the overlay's systemd unit must hold. Pure.

:func:`edit_fstab` is a function of the fstab text, so the module can run it
once to plan (check mode, diff) and again on the text it reads under the
lock, where a concurrent run may have changed other lines meanwhile.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import functools

from ansible_collections.overlayfs.mounts.plugins.module_utils import _fstab, _systemd
from ansible_collections.overlayfs.mounts.plugins.module_utils._errors import OverlayError
from ansible_collections.overlayfs.mounts.plugins.module_utils._escape import split_options
from ansible_collections.overlayfs.mounts.plugins.module_utils._options import canonical_options

PERSIST_CHOICES = ("fstab", "systemd", "none")

# A userspace mount option (libmount and systemd pass x-* options by, the kernel
# never sees them) that marks an fstab line written by this collection, as the
# MANAGED_MARKER comment marks a unit.
MANAGED_OPTION = "x-overlayfs.managed"

# fstab options that decide boot behaviour and that overlay_mount writes itself.
_BOOT_OWNED = ("noauto", "auto", MANAGED_OPTION)


def boot_extras(boot, boot_options):
    """The non-overlay options of the persisted entry, in order, each once."""
    extras = []
    for option in boot_options or ():
        option = option.strip()
        if not option:
            raise OverlayError("boot_options: an empty option was given; remove it")
        name = option.partition("=")[0]
        if name == MANAGED_OPTION:
            raise OverlayError("boot_options: '%s' is written by this collection itself; remove it" % option)
        if name in _BOOT_OWNED:
            raise OverlayError(
                "boot_options: '%s' is set by the boot parameter (boot: %s); remove it from "
                "boot_options" % (option, "false" if name == "noauto" else "true"))
        _fstab.check_boot_option(option)
        if option == "defaults":
            continue  # means nothing next to other options; writing it would only show as drift
        if option not in extras:
            extras.append(option)
    if not boot:
        extras.insert(0, "noauto")
    return extras


def fstab_line(decl, extras, lowerdir_plus=True, notes=None, fsconfig=None):
    """The fstab line of ``decl``; ``fsconfig``: see ``_fstab.format_mount_options``."""
    return _fstab.render_entry(
        decl["path"], decl["lowerdir"], decl["upperdir"], decl["workdir"], decl["options"],
        list(extras) + [MANAGED_OPTION], datadir=decl.get("datadir", ()),
        lowerdir_plus=lowerdir_plus, notes=notes, fsconfig=fsconfig)


def unit_plan(decl, extras, links_dir=None, lowerdir_plus=True, notes=None, fsconfig=None):
    """``(unit text, link dir or None)`` for an overlay persisted as a mount unit.

    When the layers do not fit in what mount(8) passes at boot, and
    ``links_dir`` is given, the unit names them through short links in that
    directory (``0``, ``1``, ...) and sets it as the WorkingDirectory= of
    mount(8), as Docker's overlay2 does: the caller must then create the
    links (``_mount_api.prepare_links``) before writing the unit. On a host
    whose mount(8) uses fsconfig() (``fsconfig``), a lower list that fits
    only the legacy one-page form takes the links too.
    """
    unit_extras = [o for o in extras if o != "noauto"]
    lowerdir, datadir = decl["lowerdir"], list(decl.get("datadir", ()))
    try:
        return _systemd.render_unit(
            decl["path"], lowerdir, decl["upperdir"], decl["workdir"], decl["options"], unit_extras,
            datadir=datadir, lowerdir_plus=lowerdir_plus, notes=notes, fsconfig=fsconfig), None
    except OverlayError as error:
        if not links_dir or "option_bytes" not in error.details:
            raise
    names = [str(i) for i in range(len(lowerdir) + len(datadir))]
    requires = _fstab.requires_mounts_for(lowerdir, decl["upperdir"], decl["workdir"], datadir) + [links_dir]
    text = _systemd.render_unit(
        decl["path"], names[:len(lowerdir)], decl["upperdir"], decl["workdir"], decl["options"], unit_extras,
        datadir=names[len(lowerdir):], working_directory=links_dir, requires=requires,
        lowerdir_plus=lowerdir_plus, notes=notes, fsconfig=fsconfig)
    return text, links_dir


def unit_text(decl, extras, links_dir=None, lowerdir_plus=True, notes=None, fsconfig=None):
    return unit_plan(decl, extras, links_dir, lowerdir_plus, notes, fsconfig)[0]


@functools.lru_cache(maxsize=1024)
def entry_config(entry):
    """What an fstab overlay entry declares, in the module's terms.

    Cached per line: a batch reads the same lines for every entry. The dict
    is shared, so callers must not change it.
    """
    parsed = _fstab.parse_overlay_options(entry.mntops)
    try:
        options = canonical_options(parsed["options"])
    except OverlayError:
        options = list(parsed["options"])
    return {
        "path": _fstab.normalize_mount_point(entry.file),
        "lowerdir": parsed["lowerdir"],
        "datadir": parsed["datadir"],
        "upperdir": parsed["upperdir"],
        "workdir": parsed["workdir"],
        "options": options,
        "boot_options": [o for o in parsed["extra_options"] if o not in ("defaults", MANAGED_OPTION)],
        "requires_mounts_for": parsed["requires_mounts_for"],
        "managed": MANAGED_OPTION in parsed["extra_options"],
        "source": entry.spec,
    }


def unit_config(text, readlink=None):
    """What an overlay unit declares, in the module's terms (None if it is no overlay unit).

    Layers named relative to the unit's WorkingDirectory= (short links) are
    followed with ``readlink`` when it is given.
    """
    parsed = _systemd.parse_unit(text)
    if (parsed["type"] or "").strip() != "overlay":
        return None
    base = parsed.get("working_directory")
    if base and readlink is not None:
        for key in ("lowerdir", "datadir"):
            parsed[key] = [p if p.startswith("/") else readlink(base.rstrip("/") + "/" + p) for p in parsed[key]]
        parsed["requires_mounts_for"] = [p for p in parsed["requires_mounts_for"] if p != base]
    try:
        options = canonical_options(parsed["options"])
    except OverlayError:
        options = list(parsed["options"])
    return {
        "path": parsed["where"],
        "lowerdir": parsed["lowerdir"],
        "datadir": parsed["datadir"],
        "upperdir": parsed["upperdir"],
        "workdir": parsed["workdir"],
        "options": options,
        "boot_options": parsed["extra_options"],
        "requires_mounts_for": parsed["requires_mounts_for"],
        "managed": parsed["managed"],
        "links_dir": base,
    }


def _fits_fsconfig(mntops):
    """True when every option value of ``mntops`` fits one fsconfig() call."""
    return all(len(option.partition("=")[2].encode("utf-8", "surrogateescape")) <= _fstab.VALUE_MAX
               for option in split_options(mntops) if not option.startswith("x-"))


def _entry_matches(entry, decl, extras, fsconfig=None):
    """True when an existing fstab entry already says what we would write.

    On a host whose mount(8) uses fsconfig(), a line written for mount(2) (a
    lower list over 255 bytes, e.g. before util-linux was upgraded) would not
    mount at boot, so it does not count as matching.
    """
    if entry.spec != "overlay" or entry.freq or entry.passno:
        return False
    if fsconfig and not _fits_fsconfig(entry.mntops):
        return False
    have = entry_config(entry)
    want = {
        "lowerdir": decl["lowerdir"], "datadir": decl.get("datadir", []), "upperdir": decl["upperdir"],
        "workdir": decl["workdir"], "options": decl["options"],
    }
    if not have["managed"] or any(have[key] != value for key, value in want.items()):
        return False
    if sorted(have["boot_options"]) != sorted(extras):
        return False
    return set(have["requires_mounts_for"]) == set(_fstab.requires_mounts_for(
        decl["lowerdir"], decl["upperdir"], decl["workdir"], decl.get("datadir", ())))


def edit_fstab(text, decl, keep, extras, lowerdir_plus=True, notes=None, fsconfig=None):
    """The new fstab text for ``decl``: its overlay entry set (``keep``) or removed.

    Returns ``(new_text, info)``; ``info`` has ``duplicates`` (extra entries
    for the same mount point that were collapsed) and ``removed``. Lines of
    other mount points are never touched. A non-overlay entry for the same
    mount point is an error when the overlay is to be written.
    """
    lines = _fstab.parse(text)
    path = decl["path"]
    info = {"duplicates": 0, "removed": 0}
    if not keep:
        new_lines, info["removed"] = _fstab.remove_entries(lines, path)
        return _fstab.render(new_lines), info
    others = [e for e in _fstab.find_entries(lines, path, vfstype=None) if e.vfstype != "overlay"]
    if others:
        raise OverlayError(
            "fstab already has a %s entry for %s (%r); an overlay cannot be persisted at the same "
            "mount point: remove that line or choose another path" % (others[0].vfstype, path, others[0].raw))
    entries = _fstab.find_entries(lines, path)
    if entries and _entry_matches(entries[0], decl, extras, fsconfig):
        # Keep the user's own spelling of an equivalent line; drop duplicates.
        new_lines, info["duplicates"] = _fstab.replace_entry(lines, path, entries[0].raw)
        return _fstab.render(new_lines), info
    new_lines, info["duplicates"] = _fstab.set_entry(lines, path, fstab_line(decl, extras, lowerdir_plus, notes, fsconfig))
    return _fstab.render(new_lines), info


def persisted_entries(text, path):
    """The configs of every overlay fstab entry for ``path``, in file order."""
    return [entry_config(e) for e in _fstab.find_entries(_fstab.parse(text), path)]
