# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Mount an overlay with the kernel's own system calls, not mount(8).

mount(8) from util-linux 2.38 hands the option string to the legacy mount(2),
which copies at most one page: a long ``lowerdir=`` is cut silently and the
kernel mounts whatever fitted. util-linux 2.39+ caps each value at 256 bytes
instead. So this module talks to the kernel directly:

* the new mount API (fsopen/fsconfig/fsmount/move_mount) with one
  ``lowerdir+`` value per layer, where the kernel has it (6.8+): no total
  length limit and no escaping; the kernel's own error text is read back
  from the fs context, so failures say what the kernel said;
* else the legacy mount(2) with one option string, only when that string
  fits in a page (older kernels parse fsconfig() values through the same
  one-page buffer, so the new API buys nothing there);
* else short relative links to the layers, mounted from the links'
  directory, as Docker's overlay2 does.

What the kernel accepts is probed, not guessed from its version (_features).
The caller always re-reads mountinfo afterwards and verifies the result.
"""

import contextlib
import ctypes
import errno
import hashlib
import os
from typing import Dict, List, Optional, Sequence, Tuple

from ansible_collections.overlayfs.mounts.plugins.module_utils._host import safe_paths as _safepath
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.declaration import DEFAULT_LINKS_DIR
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError
from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.escape import escape_layer
from ansible_collections.overlayfs.mounts.plugins.module_utils._host.kernel_features import (
    FSCONFIG_CMD_CREATE,
    FSCONFIG_SET_FLAG,
    FSCONFIG_SET_STRING,
    FSOPEN_CLOEXEC,
    SYS_FSCONFIG,
    SYS_FSMOUNT,
    SYS_FSOPEN,
    SYS_MOVE_MOUNT,
    Features,
    KernelLog,
    features as kernel_features,
    libc,
    read_fs_log,
    syscall,
    to_bytes,
)
from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.mount_data import overlay_data
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.paths import missing_parents

_FSMOUNT_CLOEXEC = 0x1

# mount(2) flags (linux/mount.h) for the per-mount flags, and the two that change a mount in place.
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 0x1, 0x2, 0x4, 0x8
MS_REMOUNT, MS_NOATIME, MS_NODIRATIME, MS_BIND = 0x20, 0x400, 0x800, 0x1000
MS_RELATIME, MS_STRICTATIME = 1 << 21, 1 << 24
_MS_FLAGS = {"ro": MS_RDONLY, "nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC,
             "noatime": MS_NOATIME, "relatime": MS_RELATIME, "strictatime": MS_STRICTATIME,
             "nodiratime": MS_NODIRATIME}

# fsmount() attribute flags (MOUNT_ATTR_*); relatime is 0, the default.
_ATTR_FLAGS = {"ro": 0x1, "nosuid": 0x2, "nodev": 0x4, "noexec": 0x8, "noatime": 0x10, "strictatime": 0x20,
               "nodiratime": 0x80}
_MOVE_MOUNT_F_EMPTY_PATH = 0x4
_AT_FDCWD = -100

# Legacy mount(2) copies one page of option data, terminating NUL included.
LEGACY_DATA_LIMIT = 4095

# fsconfig() copies a string value of at most 256 bytes, NUL included.
NEW_API_VALUE_LIMIT = 255

METHOD_NEW_API = "fsconfig"
METHOD_LEGACY = "mount2"
METHOD_LINKS = "symlinks"
METHODS = ("auto", METHOD_NEW_API, METHOD_LEGACY, METHOD_LINKS)


def _kernel_error(step, err, log, what):
    message = "%s failed while mounting %s: %s" % (step, what, os.strerror(err))
    if log:
        message += "; the kernel said: %s" % "; ".join(log)
    return OverlayError(message, kernel_log=log, errno=err)


class NewApiUnsupported(Exception):
    """The running kernel lacks fsopen() or the overlay's lowerdir+ key."""


def _form_refused(log):
    """True when the kernel's words say it cannot take this form at all, not this overlay.

    Before 6.5 overlayfs options reach the kernel through the VFS's legacy
    layer: it accepts ``lowerdir+`` and only the superblock creation refuses
    it ("unrecognized mount option"), and it keeps all values in one page
    ("VFS: Legacy: Cumulative options too large").
    """
    unrecognized = ("unrecognized mount option", "dir+="), ("nknown parameter", "dir+")
    return any("Legacy:" in line or any(a in line and b in line for a, b in unrecognized) for line in log)


def ms_flags(flags: Sequence[str]) -> int:
    """The mount(2) flags of canonical per-mount flags, the atime mode always explicit."""
    value = 0
    for flag in flags:
        value |= _MS_FLAGS.get(flag, 0)
    if not value & (MS_NOATIME | MS_STRICTATIME):
        value |= MS_RELATIME
    return value


def attr_flags(flags: Sequence[str]) -> int:
    """The fsmount() attribute flags (MOUNT_ATTR_*) of canonical per-mount flags."""
    value = 0
    for flag in flags:
        value |= _ATTR_FLAGS.get(flag, 0)
    return value


def mount_new_api(target: str, lowerdir: Sequence[str], upperdir: Optional[str], workdir: Optional[str],
                  options: Sequence[str], datadir: Sequence[str] = (), flags: Sequence[str] = ()) -> str:
    """Mount with fsopen/fsconfig(lowerdir+ per layer)/fsmount/move_mount.

    ``options`` are canonical overlay options (``name`` or ``name=value``),
    ``flags`` canonical per-mount flags (``_model.mount_flags``), given to
    fsmount() as mount attributes: ``ro`` makes the mount read-only, not
    the overlay. Raises NewApiUnsupported when the kernel cannot do this,
    OverlayError with the kernel's log when the kernel refuses the mount.
    """
    fd = _fsopen(target)
    try:
        _configure(fd, target, lowerdir, upperdir, workdir, options, datadir)
        _create(fd, target)
        _attach(fd, target, attr_flags(flags))
    finally:
        os.close(fd)
    return METHOD_NEW_API


def _fsopen(target):
    """A new overlay fs context (fsopen); raises when the kernel has none to give."""
    fd, err = syscall(SYS_FSOPEN, ctypes.c_char_p(b"overlay"), ctypes.c_uint(FSOPEN_CLOEXEC))
    if fd < 0:
        if err == errno.ENOSYS:
            raise NewApiUnsupported("fsopen() is not available (kernel older than 5.2)")
        if err == errno.ENODEV:
            raise OverlayError("the kernel has no overlay filesystem (modprobe overlay)", errno=err)
        raise _kernel_error("fsopen", err, [], target)
    return fd


def _fsconfig(fd, cmd, key, value=None):
    """One fsconfig() call on the context ``fd``; its errno, 0 on success."""
    res, e = syscall(
        SYS_FSCONFIG, ctypes.c_int(fd), ctypes.c_uint(cmd),
        ctypes.c_char_p(to_bytes(key) if key is not None else None),
        ctypes.c_char_p(to_bytes(value) if value is not None else None),
        ctypes.c_int(0))
    return e if res < 0 else 0


def _configure(fd, target, lowerdir, upperdir, workdir, options, datadir):
    """Give the context its source, one ``lowerdir+``/``datadir+`` per layer, upper, work and options."""
    e = _fsconfig(fd, FSCONFIG_SET_STRING, "source", "overlay")
    if e:
        raise _kernel_error("fsconfig(source)", e, read_fs_log(fd), target)
    for key, layer in [("lowerdir+", p) for p in lowerdir] + [("datadir+", p) for p in datadir]:
        e = _fsconfig(fd, FSCONFIG_SET_STRING, key, layer)
        if e:
            log = read_fs_log(fd)
            if e == errno.EINVAL and _form_refused(log):
                raise NewApiUnsupported("this kernel takes no %s: %s" % (key, "; ".join(log)))
            raise _kernel_error("fsconfig(%s=%s)" % (key, layer), e, log, target)
    if upperdir:
        for key, value in (("upperdir", upperdir), ("workdir", workdir)):
            # These two keys still go through the kernel's unescape.
            e = _fsconfig(fd, FSCONFIG_SET_STRING, key, escape_layer(value))
            if e:
                raise _kernel_error("fsconfig(%s=%s)" % (key, value), e, read_fs_log(fd), target)
    for option in options:
        key, sep, value = option.partition("=")
        e = _fsconfig(fd, FSCONFIG_SET_STRING, key, value) if sep else _fsconfig(fd, FSCONFIG_SET_FLAG, key)
        if e:
            raise _kernel_error("fsconfig(%s)" % option, e, read_fs_log(fd), target)


def _create(fd, target):
    """Create the superblock (FSCONFIG_CMD_CREATE), with the kernel's reasons when it refuses."""
    kmsg = KernelLog()
    try:
        e = _fsconfig(fd, FSCONFIG_CMD_CREATE, None)
        if e:
            # Most of overlayfs's reasons go to the kernel log, not the fs context.
            log = read_fs_log(fd) + kmsg.read()
            if e == errno.EINVAL and _form_refused(log):
                raise NewApiUnsupported("this kernel refused lowerdir+: %s" % "; ".join(log))
            raise _kernel_error("creating the overlay", e, log, target)
    finally:
        kmsg.close()


def _attach(fd, target, attrs=0):
    """Mount the created overlay (fsmount, with the mount attributes ``attrs``) and move it onto ``target``."""
    mount_fd, e = syscall(SYS_FSMOUNT, ctypes.c_int(fd), ctypes.c_uint(_FSMOUNT_CLOEXEC), ctypes.c_uint(attrs))
    if mount_fd < 0:
        raise _kernel_error("fsmount", e, read_fs_log(fd), target)
    try:
        res, e = syscall(
            SYS_MOVE_MOUNT, ctypes.c_int(mount_fd), ctypes.c_char_p(b""),
            ctypes.c_int(_AT_FDCWD), ctypes.c_char_p(to_bytes(target)),
            ctypes.c_uint(_MOVE_MOUNT_F_EMPTY_PATH))
        if res < 0:
            raise _kernel_error("move_mount", e, read_fs_log(fd), target)
    finally:
        os.close(mount_fd)


def _mount2(target, data, what, flags=()):
    """mount(2) a new overlay with the per-mount ``flags``; ``ro`` by a bind remount after.

    MS_RDONLY on a new mount would make the overlay itself read-only; a
    read-only mount of a writable overlay is mounted read-write first.
    """
    log = KernelLog()
    try:
        ctypes.set_errno(0)
        res = libc().mount(to_bytes("overlay"), to_bytes(target), to_bytes("overlay"),
                           ctypes.c_ulong(ms_flags(flags) & ~MS_RDONLY), to_bytes(data))
        if res != 0:
            err = ctypes.get_errno()
            raise _kernel_error("mount(2)%s" % what, err, log.read(), target)
    finally:
        log.close()
    if "ro" in flags:
        try:
            _remount(target, MS_REMOUNT | MS_BIND | ms_flags(flags), "making the new mount read-only")
        except OverlayError:
            with contextlib.suppress(OSError):  # not left writable; verify reports what stays
                umount2(target)
            raise


def _remount(target, ms, step):
    """One mount(2) call that changes the mount at ``target`` in place (MS_REMOUNT)."""
    log = KernelLog()
    try:
        ctypes.set_errno(0)
        if libc().mount(None, to_bytes(target), None, ctypes.c_ulong(ms), None) != 0:
            err = ctypes.get_errno()
            lines = log.read()
            raise OverlayError("%s at %s failed: %s%s" % (step, target, os.strerror(err),
                                                          "; the kernel said: " + "; ".join(lines) if lines else ""),
                               kernel_log=lines, errno=err)
    finally:
        log.close()


def remount_flags(target: str, flags: Sequence[str], superblock: Optional[str] = None) -> None:
    """Set the per-mount flags of the mount at ``target`` in place: no new overlay, same mount.

    ``flags`` are canonical per-mount flags; every one not given takes its
    fresh mount's value (the atime mode is always explicit). ``superblock``
    (``rw`` or ``ro``) first remounts the overlay itself read-write or
    read-only, the only change overlayfs allows on a live superblock.
    """
    if superblock:
        ms = MS_REMOUNT | (ms_flags(flags) & ~MS_RDONLY) | (MS_RDONLY if superblock == "ro" else 0)
        _remount(target, ms, "remounting the overlay %s" % superblock)
    _remount(target, MS_REMOUNT | MS_BIND | ms_flags(flags), "setting the mount flags (%s)" % (",".join(flags) or "rw"))


def _check_size(data, hint):
    size = len(to_bytes(data))
    if size > LEGACY_DATA_LIMIT:
        raise OverlayError(
            "the overlay's option string is %d bytes, over the %d bytes the legacy mount(2) "
            "accepts; %s" % (size, LEGACY_DATA_LIMIT, hint), option_bytes=size)


def mount_legacy(target: str, lowerdir: Sequence[str], upperdir: Optional[str], workdir: Optional[str],
                 options: Sequence[str], datadir: Sequence[str] = (), flags: Sequence[str] = ()) -> str:
    """Mount with mount(2), refusing option data that the kernel would cut; ``flags`` as MS_* flags."""
    data = overlay_data(lowerdir, upperdir, workdir, options, datadir)
    _check_size(data, "use method auto or symlinks, or shorter layer paths")
    _mount2(target, data, "", flags)
    return METHOD_LEGACY


def links_dir_for(links_root: str, target: str) -> str:
    """The directory of the short layer links of the overlay mounted at ``target``."""
    name = target.strip("/").replace("/", "-") or "-"
    # Readable, and unambiguous through the hash of the whole path.
    digest = hashlib.sha1(to_bytes(target)).hexdigest()[:12]
    return os.path.join(links_root, "%s-%s" % (name[-40:], digest))


def prepare_links(directory: str, lowerdir: Sequence[str],
                  datadir: Sequence[str] = (), prefix: str = "") -> Tuple[List[str], List[str]]:
    """Make ``directory`` hold exactly the links ``0``, ``1``, ... to the layers (``prefix`` before each).

    Returns the relative names, in layer order. The directory and its parent
    must be root's alone, and only numbered links are ever removed
    (``_host.safe_paths.prepare_links``). Links kept under another links_dir
    than the default one get a pointer from the default root
    (:func:`point_to_links`). Should a link or dir not be made (a full file
    system, no inodes left), the links and dirs this call made are removed
    again and OverlayError says why.
    """
    missing = missing_parents(directory, os.path.lexists)
    present = set(_link_entries(directory)) if not missing else set()
    try:
        _safepath.prepare_links(directory, list(lowerdir) + list(datadir), prefix)
    except (OSError, OverlayError) as error:
        _unmake_links(directory, missing, present)
        if isinstance(error, OverlayError):
            raise
        raise OverlayError(
            "links_dir: could not make the short layer links in %s: %s%s. What this run made there was "
            "removed; free space (or inodes) on that file system, or choose another links_dir"
            % (directory, error.strerror or error, " (%s)" % error.filename if error.filename else ""),
            errno=error.errno)
    point_to_links(directory)
    lower, data = _link_names(lowerdir, datadir)
    return [prefix + name for name in lower], [prefix + name for name in data]


def _is_link_name(name):
    """A name this collection gives a short link: a number, or ``b`` and a number."""
    return name.isdigit() or (name[:1] == "b" and name[1:].isdigit())


def _link_entries(directory):
    """``{name: target}`` of the numbered links in ``directory`` (nothing when it is missing)."""
    found = {}
    try:
        names = os.listdir(directory)
    except OSError:
        return found
    for name in names:
        if _is_link_name(name):
            try:
                found[name] = os.readlink(os.path.join(directory, name))
            except OSError:
                continue  # not a link: not ours
    return found


def _unmake_links(directory, missing, present):
    """Undo a failed :func:`prepare_links`: links not in ``present``, then the ``missing`` dirs it made."""
    for name in set(_link_entries(directory)) - set(present):
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(directory, name))
    for made in reversed(missing):
        with contextlib.suppress(OSError):
            os.rmdir(made)


def links_dirs_found(links_root: Optional[str], target: str, also: Sequence[Optional[str]] = ()) -> List[str]:
    """The short-link dirs of the overlay at ``target`` that exist, and the pointer to them, if any.

    Looked for under ``links_root``, at the pointer in the default root
    (and where it leads), and at ``also`` (say, the WorkingDirectory= of its
    unit). Only a dir named as :func:`links_dir_for` names this overlay's
    counts: whatever else is there is not this overlay's.
    """
    name = os.path.basename(links_dir_for(DEFAULT_LINKS_DIR, target))
    pointer = os.path.join(DEFAULT_LINKS_DIR, name)
    candidates = [links_dir_for(links_root, target) if links_root else None, pointer] + list(also)
    if os.path.islink(pointer):
        candidates.append(os.readlink(pointer))
    found = []
    for path in candidates:
        if not path or os.path.basename(os.path.normpath(path)) != name:
            continue
        path = os.path.normpath(path)
        is_pointer = path == pointer and os.path.islink(path)
        if path not in found and (is_pointer or (os.path.isdir(path) and not os.path.islink(path))):
            found.append(path)
    return found


def remove_links(path: str) -> Dict[str, str]:
    """Remove a short-link dir of :func:`links_dirs_found` (its numbered links, then the dir when empty) or its pointer.

    Returns ``{name: target}`` of the links removed (the pointer as ``""``),
    what :func:`restore_links` puts back. A links dir that is not root's
    alone is refused, as when links are made.
    """
    if os.path.islink(path):
        target = os.readlink(path)
        os.unlink(path)
        return {"": target}
    _safepath.check_links_root(path)
    removed = _link_entries(path)
    for name in removed:
        os.unlink(os.path.join(path, name))
    with contextlib.suppress(OSError):  # something that is not ours stays, and so does the dir
        os.rmdir(path)
    return removed


def restore_links(path: str, removed: Dict[str, str]) -> None:
    """Put back what :func:`remove_links` removed at ``path``."""
    if "" in removed:
        os.symlink(removed[""], path)
        return
    if not os.path.isdir(path):
        os.mkdir(path, 0o755)
    for name, target in removed.items():
        if not os.path.lexists(os.path.join(path, name)):
            os.symlink(target, os.path.join(path, name))


def point_to_links(directory: str) -> None:
    """Where links dir ``directory`` is not under the default links root, leave a pointer to it there.

    ``overlay_mount_info`` and the converge look for a mount's short links
    under the default root (``DEFAULT_LINKS_DIR/<name>``) without being told
    where they are: the pointer, a symlink to ``directory``, leads them there.
    Best effort: where the default root cannot be written (a read-only
    ``/var``, the usual reason to keep links elsewhere), the mount goes on
    without it, and the converge says so (:func:`links_pointer_missing`).
    """
    if os.path.dirname(os.path.normpath(directory)) != os.path.normpath(DEFAULT_LINKS_DIR):
        try:
            _safepath.point_to_links(DEFAULT_LINKS_DIR, os.path.normpath(directory))
        except (OSError, OverlayError):
            pass


def links_pointer_missing(links_root: Optional[str], target: str) -> Optional[str]:
    """Why the overlay at ``target``, with short links under ``links_root``, cannot be found by them, or None.

    None when its links are under the default root, or the pointer
    :func:`point_to_links` leaves is there and leads to them.
    """
    if not links_root or os.path.normpath(links_root) == os.path.normpath(DEFAULT_LINKS_DIR):
        return None
    directory = os.path.normpath(links_dir_for(links_root, target))
    pointer = os.path.join(DEFAULT_LINKS_DIR, os.path.basename(directory))
    try:
        if os.readlink(pointer) == directory:
            return None
    except OSError:
        pass
    return ("%s: its short layer links are in %s, and the pointer to them in %s could not be written (a "
            "read-only or missing %s?): overlay_mount_info will show its layers by their link names. Make "
            "that directory writable, or keep links_dir at its default" % (target, directory, pointer, DEFAULT_LINKS_DIR))


def remove_links_pointer(target: str) -> None:
    """Remove the pointer :func:`point_to_links` left for the overlay at ``target`` (state absent)."""
    _safepath.remove_pointer(links_dir_for(DEFAULT_LINKS_DIR, target))


def _link_names(lowerdir, datadir=()):
    """The short names ``0``, ``1``, ... of the layers and of the data-only layers."""
    names = [str(i) for i in range(len(lowerdir) + len(datadir))]
    return names[:len(lowerdir)], names[len(lowerdir):]


def mount_links(target: str, lowerdir: Sequence[str], upperdir: Optional[str], workdir: Optional[str],
                options: Sequence[str], datadir: Sequence[str] = (), links_root: Optional[str] = None,
                flags: Sequence[str] = ()) -> str:
    """Mount with mount(2) through short relative links to the layers (``flags`` as MS_* flags).

    Docker's overlay2 does the same: the option string names ``0:1:2...``,
    resolved against the link directory as the working directory, so
    hundreds of layers fit in the one page the legacy call copies.
    """
    if not links_root:
        raise OverlayError("method symlinks needs a links_dir for the short layer links")
    directory = links_dir_for(links_root, target)
    lower_names, data_names = prepare_links(directory, lowerdir, datadir)
    data = overlay_data(lower_names, upperdir, workdir, options, data_names)
    _check_size(data, "even with short layer links; use shorter upper and work paths")
    previous = os.open(".", os.O_RDONLY)
    try:
        os.chdir(directory)
        _mount2(target, data, " through the links in %s" % directory, flags)
    finally:
        os.fchdir(previous)
        os.close(previous)
    return METHOD_LINKS


def _links_data(lowerdir, upperdir, workdir, options, datadir):
    lower_names, data_names = _link_names(lowerdir, datadir)
    return overlay_data(lower_names, upperdir, workdir, options, data_names)


def fsconfig_values(lowerdir: Sequence[str], upperdir: Optional[str], workdir: Optional[str],
                    options: Sequence[str], datadir: Sequence[str] = ()) -> List[Tuple[str, int]]:
    """``[(field, bytes)]``: each string :func:`mount_new_api` hands to one fsconfig() call, by the field it comes from.

    The kernel copies at most :data:`NEW_API_VALUE_LIMIT` bytes of each
    (measured: an upperdir of 255 bytes mounts, one of 256 fails with
    EINVAL); upper and work count as escaped, as they are passed.
    """
    values = [("lowerdir[%d]" % i, len(to_bytes(p))) for i, p in enumerate(lowerdir)]
    values += [("datadir[%d]" % i, len(to_bytes(p))) for i, p in enumerate(datadir)]
    if upperdir:
        values += [(field, len(to_bytes(escape_layer(path)))) for field, path in (("upperdir", upperdir), ("workdir", workdir))
                   if path]
    values += [("options (%s)" % option.partition("=")[0], len(to_bytes(option.partition("=")[2])))
               for option in options if "=" in option]
    return values


def plan_methods(feats: Features, lowerdir: Sequence[str], upperdir: Optional[str], workdir: Optional[str],
                 options: Sequence[str], datadir: Sequence[str] = (), method: str = "auto",
                 links_root: Optional[str] = None) -> List[str]:
    """The mount methods to try, in order, for this overlay on a kernel with ``feats``.

    ``auto``: the new mount API with one ``lowerdir+`` per layer where the
    kernel has it and every value (layer, upper, work, option) fits in one fsconfig() value; then one
    ``lowerdir=`` string through the legacy mount(2) when it fits in a page;
    then short relative links to the layers (Docker's overlay2 way). A forced
    method is checked against the kernel first. Raises OverlayError, saying
    what the kernel supports and what would fit, when no method can work.
    Pure: ``feats`` is a :class:`_features.Features`.
    """
    too_long = [(field, size) for field, size in fsconfig_values(lowerdir, upperdir, workdir, options, datadir)
                if size > NEW_API_VALUE_LIMIT]
    data_size = len(to_bytes(overlay_data(lowerdir, upperdir, workdir, options, datadir)))
    links_size = len(to_bytes(_links_data(lowerdir, upperdir, workdir, options, datadir)))
    can = {
        METHOD_NEW_API: feats.lowerdir_plus and not too_long,
        METHOD_LEGACY: data_size <= LEGACY_DATA_LIMIT,
        METHOD_LINKS: bool(links_root) and links_size <= LEGACY_DATA_LIMIT,
    }
    why = {
        METHOD_NEW_API: (
            "one lowerdir+ per layer: this kernel has no lowerdir+" if not feats.lowerdir_plus else
            "one lowerdir+ per layer: %s, over the %d bytes one fsconfig() value holds"
            % (", ".join("%s takes %d bytes" % pair for pair in too_long[:3]), NEW_API_VALUE_LIMIT)),
        METHOD_LEGACY: "one lowerdir= option string: %d bytes, over the %d bytes the legacy mount(2) copies"
                       % (data_size, LEGACY_DATA_LIMIT),
        METHOD_LINKS: ("short links to the layers: no links_dir was given" if not links_root else
                       "short links to the layers: still %d bytes, over %d (shorten the upper and work "
                       "paths)" % (links_size, LEGACY_DATA_LIMIT)),
    }
    if method == "auto":
        order = [m for m in (METHOD_NEW_API, METHOD_LEGACY, METHOD_LINKS) if can[m]]
        if order:
            return order
        raise OverlayError(
            "lowerdir: no way to mount these %d layers on this kernel: %s. %s. To fit: fewer or "
            "shorter layer paths, or a links_dir for short links%s"
            % (len(lowerdir) + len(datadir), "; ".join(why[m] for m in (METHOD_NEW_API, METHOD_LEGACY,
                                                                        METHOD_LINKS)),
               feats.describe(), "" if feats.lowerdir_plus else ", or Linux 6.8+ for lowerdir+"),
            option_bytes=data_size)
    if method not in can:
        raise OverlayError("method must be one of %s, not %r" % (", ".join(METHODS), method))
    if not can[method]:
        raise OverlayError("method %s cannot mount this overlay: %s. %s. Use method auto"
                           % (method, why[method], feats.describe()), option_bytes=data_size)
    return [method]


# method -> function(target, lowerdir, upperdir, workdir, options, datadir, links_root, flags)
_MOUNTERS = {
    METHOD_NEW_API: lambda t, lo, up, wo, op, da, _links, fl: mount_new_api(t, lo, up, wo, op, da, fl),
    METHOD_LEGACY: lambda t, lo, up, wo, op, da, _links, fl: mount_legacy(t, lo, up, wo, op, da, fl),
    METHOD_LINKS: mount_links,
}


def mount_overlay(target: str, lowerdir: Sequence[str], upperdir: Optional[str], workdir: Optional[str],
                  options: Sequence[str], datadir: Sequence[str] = (), method: str = "auto",
                  links_root: Optional[str] = None, feats: Optional[Features] = None, flags: Sequence[str] = ()) -> str:
    """Mount through the best form the running kernel accepts; return the method used.

    ``flags``: the canonical per-mount flags of the new mount (``_model.mount_flags``).

    The kernel is probed once per run (see _features). Should it still
    refuse a form as such (not this overlay), the next form is tried.
    """
    feats = feats or kernel_features()
    order = plan_methods(feats, lowerdir, upperdir, workdir, options, datadir, method, links_root)
    refused = []
    for name in order:
        try:
            return _MOUNTERS[name](target, lowerdir, upperdir, workdir, options, datadir, links_root, flags)
        except NewApiUnsupported as error:
            refused.append(str(error))
    raise OverlayError("no mount form worked on this kernel (%s): %s" % (feats.describe(), "; ".join(refused)))


def umount2(target: str) -> None:
    """Unmount ``target`` with umount2(2); raise OSError on failure."""
    ctypes.set_errno(0)
    if libc().umount2(to_bytes(target), ctypes.c_int(0)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), target)
