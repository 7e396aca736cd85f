# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The overlay's mount option string, as mount(2), fstab and a unit's Options= take it. Pure.

One builder, :func:`overlay_data`, writes both forms of the layer list
(``lowerdir=a:b::d`` and one ``lowerdir+=``/``datadir+=`` per layer) with
upper, work and the overlay options after them; the live mount (mount(2)
data), fstab lines and mount units all use it. :func:`format_mount_options`
picks the form that mount(8) can mount at boot and checks every path and
option on the way.
"""

import re
import shlex
from typing import Any, Dict, List, NamedTuple, Optional, Sequence

from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.facts import HostFacts
from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.escape import (
    escape_layer,
    join_layers,
    split_layers,
    split_options,
    unescape_layer,
)
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.layers import check_pairing, named_layers
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.overlay_options import OPTION_VALUES

REQUIRES_MOUNTS_FOR = "x-systemd.requires-mounts-for"

# Legacy mount(2), which util-linux 2.38 uses, copies one page of option data
# (NUL included) and silently drops the rest: layers, upper and work included.
MOUNT_DATA_MAX = 4095

# util-linux 2.39+ hands each option to fsconfig(), which copies at most 256
# bytes of a value, NUL included.
VALUE_MAX = 255

OVERLAY_OPTION_NAMES = frozenset(name for name, _values in OPTION_VALUES)
_PATH_KEYS = ("lowerdir", "upperdir", "workdir")

# Escapes the generator consumes in an option value before using it.
_GENERATOR_ESCAPE = re.compile(r"\\([,\\])")


def check_path(field: str, path: Any, relative_ok: bool = False) -> None:
    """Checks every overlay path needs, in fstab and in a unit file alike."""
    if not isinstance(path, str) or not (path.startswith("/") or (relative_ok and path)):
        raise OverlayError("%s: %r is not an absolute path" % (field, path))
    if "\n" in path or "\r" in path:
        raise OverlayError(
            "%s: %r contains a line break, which neither fstab (through "
            "systemd-fstab-generator) nor a unit file can carry: rename the directory"
            % (field, path))


# Option names libmount takes for itself (VFS flags, userspace options) and
# removes from what it passes on to the kernel. A path piece after a comma
# that looks like one of them, or like x-*/X-* or name=value, is taken out of
# the layer path by mount(8): the line passes findmnt --verify but never mounts.
_LIBMOUNT_OPTION_NAMES = frozenset((
    "ro", "rw", "exec", "noexec", "suid", "nosuid", "dev", "nodev", "sync", "async", "dirsync",
    "remount", "bind", "rbind", "move", "mand", "nomand", "atime", "noatime", "iversion",
    "noiversion", "diratime", "nodiratime", "relatime", "norelatime", "strictatime",
    "nostrictatime", "lazytime", "nolazytime", "symfollow", "nosymfollow", "silent", "loud",
    "unbindable", "runbindable", "private", "rprivate", "slave", "rslave", "shared", "rshared",
    "defaults", "auto", "noauto", "user", "nouser", "users", "nousers", "owner", "noowner",
    "group", "nogroup", "_netdev", "nofail", "loop", "offset", "sizelimit", "encryption",
    "comment", "uhelper", "helper", "seclabel", "context", "fscontext", "defcontext", "rootcontext",
))


def check_comma_pieces(field: str, path: str) -> None:
    """Refuse a path whose comma-separated pieces mount(8) would read as its own options.

    mount(8) splits the option string at every comma (a backslash does not
    protect it), keeps the pieces it knows, and joins the others back for the
    kernel. A path piece such as ``x-y``, ``ro`` or ``comment=z`` is taken out,
    and the kernel gets a broken path: the line cannot be mounted at boot.
    """
    if "," not in path:
        return
    for piece in path.split(",")[1:]:
        name = piece.partition("=")[0]
        if not piece or "=" in piece or name.lower().startswith("x-") or name in _LIBMOUNT_OPTION_NAMES:
            raise OverlayError(
                "%s: %r has the piece %r after a comma, which mount(8) would take as a mount "
                "option of its own (it splits options at every comma): the persisted overlay "
                "could not be mounted at boot. Rename the directory (no comma, or a comma "
                "followed by a plain name), or use persist: none" % (field, path, piece))


def check_single_option(field: str, option: Any) -> None:
    """Refuse an option that would parse back as something else (or inject options)."""
    if not isinstance(option, str) or split_options(option) != [option] or "\n" in option:
        raise OverlayError(
            "%s: %r is not one mount option; give each option as its own list item, "
            "without a comma outside double quotes" % (field, option))


def lower_list(lowerdir: Sequence[str], datadir: Sequence[str] = ()) -> str:
    """The value of ``lowerdir=``: escaped layers joined by ``:``, data-only ones after ``::``."""
    return join_layers(lowerdir) + "".join("::" + escape_layer(d) for d in datadir)


def overlay_data(lowerdir: Sequence[str], upperdir: Optional[str] = None, workdir: Optional[str] = None,
                 options: Sequence[str] = (), datadir: Sequence[str] = (), one_by_one: bool = False) -> str:
    """``lowerdir=a:b::d,upperdir=U,workdir=W,<options>``, the overlay's own option string.

    ``one_by_one`` writes one ``lowerdir+=``/``datadir+=`` per layer instead
    (values taken literally: no escapes). Nothing is checked here.
    """
    if one_by_one:
        parts = ["lowerdir+=" + p for p in lowerdir] + ["datadir+=" + d for d in datadir]
    else:
        parts = ["lowerdir=" + lower_list(lowerdir, datadir)]
    if upperdir is not None:
        parts += ["upperdir=" + escape_layer(upperdir), "workdir=" + escape_layer(workdir)]
    return ",".join(parts + list(options))


class Rendered(NamedTuple):
    """What a renderer returns: the text, and sentences about it the module shows as warnings."""

    text: str
    notes: List[str]


#: The host facts a renderer assumes when given none: the kernel takes
#: ``lowerdir+``, and the host's mount(8) is not known.
ANY_HOST = HostFacts(lowerdir_plus=True, fsconfig=None, booted=False)


def format_mount_options(overlay: Any, facts: Optional[HostFacts] = None, extra_options: Sequence[str] = (),
                         lowerdir_form: str = "auto", relative_layers: bool = False) -> Rendered:
    """The mount(8) option string of an overlay, as fstab's 4th field and a unit's Options= hold it.

    ``overlay`` is a declaration (``_model.declaration.Declaration``, or
    anything with its ``lowerdir``, ``upperdir``, ``workdir``, ``options``
    and ``datadir``); ``facts`` the host facts (``_model.facts.HostFacts``,
    :data:`ANY_HOST` when None): whether the kernel takes ``lowerdir+``
    (``lowerdir_plus``) and whether the host's mount(8) uses fsconfig().

    Layer paths are escaped for the kernel (``\\``, ``:`` and ``,`` get a
    backslash); ``datadir`` (data-only layers) follow ``::``. ``options`` are
    overlay options (``index=off``, ``volatile``), then the overlay's per-mount
    flags (its ``flags``, canonical: ``ro``, ``nosuid``...), then
    ``extra_options``, everything else (``nofail``, ``noauto``,
    ``x-systemd.automount``). mount(8) turns the flags into mount(2) flags;
    they are not part of the data the kernel's size limits count.

    The string must mount at boot with util-linux 2.38 (legacy mount(2): one
    page, :data:`MOUNT_DATA_MAX` bytes, in all) and with 2.39+ (one fsconfig()
    call per option: :data:`VALUE_MAX` bytes per value). ``lowerdir_form``:
    ``auto`` takes ``lowerdir=a:b`` when it fits both, else one ``lowerdir+=``
    per layer (when ``lowerdir_plus``: the kernel has it, 6.8+; no commas in
    the paths then), else ``legacy``: ``lowerdir=a:b`` checked against the
    page limit only, which util-linux 2.39+ cannot mount; a sentence saying so
    is among the returned notes. ``lowerdir``, ``lowerdir+`` and ``legacy``
    force one form. ``relative_layers`` allows layer paths relative to the
    working directory of mount(8) (a unit's short links).

    ``fsconfig`` is what :func:`mount_uses_fsconfig` found on the host (None:
    unknown). True: its mount(8) could not mount ``legacy``, so ``auto``
    never takes it, and an upper or work path over :data:`VALUE_MAX` bytes is
    refused. False: its mount(8) uses mount(2), so ``legacy`` mounts here;
    the note then says so.

    Raises OverlayError for a path or option that would not come back as given
    (a double quote in a path makes mount(8) fail), and when no form fits.
    """
    facts = facts or ANY_HOST
    lowerdir, upperdir, workdir = overlay.lowerdir, overlay.upperdir, overlay.workdir
    datadir, options = overlay.datadir, overlay.options
    flags = list(overlay.flags)
    _check_layer_paths(lowerdir, upperdir, workdir, datadir, relative_layers)
    _check_option_lists(options, flags + list(extra_options))
    plain_value = lower_list(lowerdir, datadir)
    forms = _forms(lowerdir, upperdir, workdir, options, datadir, plain_value)
    order = _form_order(lowerdir_form, facts.lowerdir_plus, forms)
    # Whether mount(8) uses fsconfig() is asked only where it decides: a long upper or work path, or legacy.
    long_dirs = _long_dirs(upperdir, workdir)
    if long_dirs and facts.fsconfig:
        raise _long_dir_error(*long_dirs[0])
    for form in order:
        text, fits = forms[form]
        if not fits or (form == "legacy" and lowerdir_form == "auto" and facts.fsconfig):
            continue
        notes = [_legacy_note(plain_value, facts.lowerdir_plus, facts.fsconfig)] if form == "legacy" else []
        return Rendered(",".join([text] + flags + list(extra_options)), notes)
    raise _no_form_fits(forms["lowerdir"][0], plain_value, lowerdir_form, facts.lowerdir_plus, facts.fsconfig)


def _size(text):
    return len(text.encode("utf-8", "surrogateescape"))


def _check_layer_paths(lowerdir, upperdir, workdir, datadir, relative_layers):
    """Refuse missing layers, an unpaired upper/work dir, and paths mount(8) would misread."""
    if not lowerdir:
        raise OverlayError("lowerdir: at least one lower directory is required")
    check_pairing(upperdir, workdir)
    for field, path in named_layers(lowerdir, upperdir, workdir, datadir):
        check_path(field, path, relative_layers and field.startswith(("lowerdir", "datadir")))
        if '"' in path:
            raise OverlayError(
                "%s: %r contains a double quote; mount(8) reads it as the start of a quoted "
                "option value and the mount fails: rename the directory" % (field, path))
        if not (relative_layers and field.startswith(("lowerdir", "datadir"))):
            check_comma_pieces(field, path)


def _check_option_lists(options, extra_options):
    """Refuse an option that is not one option, or that belongs to the other list or a parameter."""
    for option in options:
        check_single_option("options", option)
        if option.partition("=")[0] not in OVERLAY_OPTION_NAMES:
            raise OverlayError("options: %r is not an overlay mount option" % option)
    for option in extra_options:
        check_single_option("extra_options", option)
        name = option.partition("=")[0]
        if name in OVERLAY_OPTION_NAMES or name in _PATH_KEYS or name == REQUIRES_MOUNTS_FOR:
            raise OverlayError(
                "extra_options: %r is set through its own parameter, not as an extra option" % option)


def _forms(lowerdir, upperdir, workdir, options, datadir, plain_value):
    """``{form: (overlay option string, whether mount(8) at boot can take it)}``."""
    each_value_fits = all(_size(p) <= VALUE_MAX and "," not in p for p in list(lowerdir) + list(datadir))
    plain = overlay_data(lowerdir, upperdir, workdir, options, datadir)
    added = overlay_data(lowerdir, upperdir, workdir, options, datadir, one_by_one=True)
    return {
        "lowerdir": (plain, _size(plain) <= MOUNT_DATA_MAX and _size(plain_value) <= VALUE_MAX),
        "lowerdir+": (added, _size(added) <= MOUNT_DATA_MAX and each_value_fits),
        # util-linux before 2.39 only: one page in all, no limit per value.
        "legacy": (plain, _size(plain) <= MOUNT_DATA_MAX),
    }


def _form_order(lowerdir_form, lowerdir_plus, forms):
    """The forms to try, best first, for ``lowerdir_form``; refuses an unknown one."""
    if lowerdir_form == "auto":
        return ["lowerdir", "lowerdir+", "legacy"] if lowerdir_plus else ["lowerdir", "legacy"]
    if lowerdir_form in forms:
        return [lowerdir_form]
    raise OverlayError("lowerdir_form must be auto, lowerdir, lowerdir+ or legacy, not %r" % lowerdir_form)


def _long_dirs(upperdir, workdir):
    """``(field, path)`` of the upper and work paths longer than one fsconfig() value, escaped."""
    return [(field, path) for field, path in (("upperdir", upperdir), ("workdir", workdir))
            if path is not None and _size(escape_layer(path)) > VALUE_MAX]


def _long_dir_error(field, path):
    """The refusal of an upper or work path longer than one fsconfig() value (mount(8) uses fsconfig())."""
    return OverlayError(
        "%s: %r takes %d bytes; this host's mount(8) passes each option value through "
        "fsconfig(), which takes at most %d, so it could not mount the overlay at boot: "
        "use a shorter path" % (field, path, _size(escape_layer(path)), VALUE_MAX))


def _legacy_note(plain_value, lowerdir_plus, fsconfig):
    """The note that a ``legacy`` lower list mounts at boot with util-linux 2.38 and older only."""
    return (
        "the lower list takes %d bytes, more than the %d that util-linux 2.39 and later "
        "pass in one option value%s: this persisted overlay mounts at boot with util-linux "
        "2.38 and older only%s" % (
            _size(plain_value), VALUE_MAX,
            "" if lowerdir_plus else " (and this kernel has no lowerdir+)",
            " (as this host's mount(8), which uses mount(2)); after an upgrade to util-linux "
            "2.39 or later, run this task again" if fsconfig is False else ""))


def _no_form_fits(plain, plain_value, lowerdir_form, lowerdir_plus, fsconfig):
    """The OverlayError for an overlay no form of the option string can carry to mount(8)."""
    if fsconfig and lowerdir_form == "auto" and _size(plain) <= MOUNT_DATA_MAX:
        return OverlayError(
            "lowerdir: the lower list takes %d bytes; this host's mount(8) passes each option value "
            "through fsconfig(), which takes at most %d, so it could not mount the overlay at boot, "
            "and one lowerdir+= per layer is not possible (%s): use fewer or shorter paths, "
            "or persist: systemd, which mounts through short links to the layers"
            % (_size(plain_value), VALUE_MAX,
               "this kernel has no lowerdir+" if not lowerdir_plus else
               "a layer path holds a comma or is longer than %d bytes" % VALUE_MAX),
            option_bytes=_size(plain))
    return OverlayError(
        "lowerdir: the layer, upper and work paths and options take %d bytes (the lower list %d); "
        "mount(8) at boot passes at most %d in all (util-linux 2.38, which silently drops the "
        "rest) and at most %d per option value (util-linux 2.39 and later): use fewer or shorter "
        "paths, or persist: systemd, which mounts through short links to the layers"
        % (_size(plain), _size(plain_value), MOUNT_DATA_MAX, VALUE_MAX), option_bytes=_size(plain))


def requires_mounts_for_option(path: str) -> str:
    """One ``x-systemd.requires-mounts-for=`` option for ``path``, quoted when it needs to be."""
    if any(c in path for c in " \t,'"):
        return '%s="%s"' % (REQUIRES_MOUNTS_FOR, path.replace(",", "\\,"))
    return "%s=%s" % (REQUIRES_MOUNTS_FOR, path)


def _requires_mounts_for_paths(value):
    """The paths systemd reads from one ``x-systemd.requires-mounts-for=`` value.

    As the generator does: drop the comma escapes, then split words the way
    ``RequiresMountsFor=`` does (whitespace, quotes, backslash escapes).
    """
    return split_unit_words(_GENERATOR_ESCAPE.sub(r"\1", value))


def split_unit_words(value: str) -> List[str]:
    """The words systemd reads from a unit list setting such as ``RequiresMountsFor=``.

    shlex's POSIX rules match systemd's for every quoting this collection
    writes (whitespace, single and double quotes, ``\\\\`` and ``\\"``). A value
    with an unbalanced quote is ignored by systemd, so it yields no words.
    """
    if not any(c in value for c in "\"'\\ \t\n"):
        return [value] if value else []  # the common case, without shlex
    try:
        return shlex.split(value)
    except ValueError:
        return []


def parse_overlay_options(mntops: str) -> Dict[str, Any]:
    """Split a decoded overlay option string into the parts :func:`render_entry` takes.

    Returns a dict: ``lowerdir`` (top first) and ``datadir`` lists,
    ``upperdir`` and ``workdir`` (None when absent), ``options`` (overlay
    options), ``extra_options`` (every other option, in order, per-mount flags
    such as ``nosuid`` included: see ``_model.mount_flags.split_flags``) and
    ``requires_mounts_for`` (the paths of all ``x-systemd.requires-mounts-for=``
    options, as systemd reads them).
    """
    result = {
        "lowerdir": [], "datadir": [], "upperdir": None, "workdir": None,
        "options": [], "extra_options": [], "requires_mounts_for": [],
    }
    for option in split_options(mntops):
        name, _sep, value = option.partition("=")
        if name == "lowerdir":
            result["lowerdir"], result["datadir"] = split_layers(value)
        elif name in ("lowerdir+", "datadir+"):
            result["lowerdir" if name == "lowerdir+" else "datadir"].append(value)
        elif name in ("upperdir", "workdir"):
            result[name] = unescape_layer(value)
        elif name == REQUIRES_MOUNTS_FOR:
            result["requires_mounts_for"].extend(_requires_mounts_for_paths(value))
        elif name in OVERLAY_OPTION_NAMES:
            result["options"].append(option)
        else:
            result["extra_options"].append(option)
    return result
