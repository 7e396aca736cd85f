# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Mount an overlay with the kernel's own system calls, not mount(8).

mount(8) from util-linux 2.38 hands the option string to the legacy mount(2),
which copies at most one page: a long ``lowerdir=`` is cut silently and the
kernel mounts whatever fitted. util-linux 2.39+ caps each value at 256 bytes
instead. So this module talks to the kernel directly:

* the new mount API (fsopen/fsconfig/fsmount/move_mount, kernel 5.2+), with
  one ``lowerdir+`` value per layer (kernel 6.8+), which has no total length
  limit and needs no escaping; the kernel's own error text is read back from
  the fs context, so failures say what the kernel said;
* the legacy mount(2) with an option string, only when that string fits in a
  page, for kernels without ``lowerdir+``.

The caller always re-reads mountinfo afterwards and verifies the result.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ctypes
import errno
import hashlib
import os

from ansible_collections.overlayfs.mounts.plugins.module_utils import _safepath
from ansible_collections.overlayfs.mounts.plugins.module_utils._errors import OverlayError
from ansible_collections.overlayfs.mounts.plugins.module_utils._escape import escape_layer, join_layers

# The new mount API syscalls share one number on every architecture but alpha.
_SYS_MOVE_MOUNT = 429
_SYS_FSOPEN = 430
_SYS_FSCONFIG = 431
_SYS_FSMOUNT = 432

_FSOPEN_CLOEXEC = 0x1
_FSMOUNT_CLOEXEC = 0x1
_FSCONFIG_SET_FLAG = 0
_FSCONFIG_SET_STRING = 1
_FSCONFIG_CMD_CREATE = 6
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

_libc = None


def _lib():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.syscall.restype = ctypes.c_long
    return _libc


def _b(text):
    return text.encode("utf-8", "surrogateescape") if not isinstance(text, bytes) else text


def _syscall(number, *args):
    ctypes.set_errno(0)
    result = _lib().syscall(ctypes.c_long(number), *args)
    if result < 0:
        return result, ctypes.get_errno()
    return result, 0


def _read_fs_log(fd):
    """The messages the kernel queued on an fs context ("e overlayfs: ...")."""
    lines = []
    for _dummy in range(64):
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        lines.append(chunk.decode("utf-8", "replace").strip())
    return lines


def _kernel_error(step, err, log, what):
    message = "%s failed while mounting %s: %s" % (step, what, os.strerror(err))
    if log:
        message += "; the kernel said: %s" % "; ".join(log)
    return OverlayError(message, kernel_log=log, errno=err)


class NewApiUnsupported(Exception):
    """The running kernel lacks fsopen() or the overlay's lowerdir+ key."""


def mount_new_api(target, lowerdir, upperdir, workdir, options, datadir=()):
    """Mount with fsopen/fsconfig(lowerdir+ per layer)/fsmount/move_mount.

    ``options`` are canonical overlay options (``name`` or ``name=value``).
    Raises NewApiUnsupported when the kernel cannot do this, OverlayError
    with the kernel's log when the kernel refuses the mount.
    """
    fd, err = _syscall(_SYS_FSOPEN, ctypes.c_char_p(b"overlay"), ctypes.c_uint(_FSOPEN_CLOEXEC))
    if fd < 0:
        if err == errno.ENOSYS:
            raise NewApiUnsupported("fsopen() is not available (kernel older than 5.2)")
        if err == errno.ENODEV:
            raise OverlayError("the kernel has no overlay filesystem (modprobe overlay)", errno=err)
        raise _kernel_error("fsopen", err, [], target)
    mount_fd = -1
    try:
        def config(cmd, key, value=None):
            res, e = _syscall(
                _SYS_FSCONFIG, ctypes.c_int(fd), ctypes.c_uint(cmd),
                ctypes.c_char_p(_b(key) if key is not None else None),
                ctypes.c_char_p(_b(value) if value is not None else None),
                ctypes.c_int(0))
            return e if res < 0 else 0

        e = config(_FSCONFIG_SET_STRING, "source", "overlay")
        if e:
            raise _kernel_error("fsconfig(source)", e, _read_fs_log(fd), target)
        for index, layer in enumerate(lowerdir):
            e = config(_FSCONFIG_SET_STRING, "lowerdir+", layer)
            if e:
                log = _read_fs_log(fd)
                if index == 0 and e == errno.EINVAL and any("lowerdir+" in line for line in log):
                    raise NewApiUnsupported("this kernel has no lowerdir+ (6.8+): %s" % "; ".join(log))
                raise _kernel_error("fsconfig(lowerdir+=%s)" % layer, e, log, target)
        for layer in datadir:
            e = config(_FSCONFIG_SET_STRING, "datadir+", layer)
            if e:
                raise _kernel_error("fsconfig(datadir+=%s)" % layer, e, _read_fs_log(fd), target)
        if upperdir:
            for key, value in (("upperdir", upperdir), ("workdir", workdir)):
                # These two keys still go through the kernel's unescape.
                e = config(_FSCONFIG_SET_STRING, key, escape_layer(value))
                if e:
                    raise _kernel_error("fsconfig(%s=%s)" % (key, value), e, _read_fs_log(fd), target)
        for option in options:
            key, sep, value = option.partition("=")
            e = config(_FSCONFIG_SET_STRING, key, value) if sep else config(_FSCONFIG_SET_FLAG, key)
            if e:
                raise _kernel_error("fsconfig(%s)" % option, e, _read_fs_log(fd), target)
        kmsg = _KernelLog()
        try:
            e = config(_FSCONFIG_CMD_CREATE, None)
            if e:
                # Most of overlayfs's reasons go to the kernel log, not the fs context.
                raise _kernel_error("creating the overlay", e, _read_fs_log(fd) + kmsg.read(), target)
        finally:
            kmsg.close()
        mount_fd, e = _syscall(_SYS_FSMOUNT, ctypes.c_int(fd), ctypes.c_uint(_FSMOUNT_CLOEXEC), ctypes.c_uint(0))
        if mount_fd < 0:
            raise _kernel_error("fsmount", e, _read_fs_log(fd), target)
        res, e = _syscall(
            _SYS_MOVE_MOUNT, ctypes.c_int(mount_fd), ctypes.c_char_p(b""),
            ctypes.c_int(_AT_FDCWD), ctypes.c_char_p(_b(target)),
            ctypes.c_uint(_MOVE_MOUNT_F_EMPTY_PATH))
        if res < 0:
            raise _kernel_error("move_mount", e, _read_fs_log(fd), target)
    finally:
        if mount_fd >= 0:
            os.close(mount_fd)
        os.close(fd)
    return METHOD_NEW_API


def legacy_data(lowerdir, upperdir, workdir, options, datadir=()):
    """The option string the legacy mount(2) takes for this overlay."""
    value = join_layers(lowerdir)
    if datadir:
        value += "::" + "::".join(escape_layer(p) for p in datadir)
    parts = ["lowerdir=" + value]
    if upperdir:
        parts.append("upperdir=" + escape_layer(upperdir))
        parts.append("workdir=" + escape_layer(workdir))
    parts.extend(options)
    return ",".join(parts)


class _KernelLog(object):
    """New lines of the kernel log (/dev/kmsg) written while a mount(2) call ran.

    The legacy mount(2) only returns an errno; the reason ("overlayfs: failed
    to verify upper root origin") goes to the kernel log.
    """

    def __init__(self):
        self.fd = None
        try:
            self.fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
            os.lseek(self.fd, 0, os.SEEK_END)
        except OSError:
            self.close()

    def read(self):
        lines = []
        while self.fd is not None and len(lines) < 64:
            try:
                record = os.read(self.fd, 8192)
            except OSError as error:
                if error.errno == errno.EPIPE:  # records were overwritten meanwhile
                    continue
                break
            if not record:
                break
            text = record.decode("utf-8", "replace")
            message = text.split(";", 1)[-1].split("\n", 1)[0].strip()
            if "overlay" in message:
                lines.append(message)
        return lines

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _mount2(target, data, what):
    log = _KernelLog()
    try:
        ctypes.set_errno(0)
        res = _lib().mount(_b("overlay"), _b(target), _b("overlay"), ctypes.c_ulong(0), _b(data))
        if res != 0:
            err = ctypes.get_errno()
            raise _kernel_error("mount(2)%s" % what, err, log.read(), target)
    finally:
        log.close()


def _check_size(data, hint):
    size = len(_b(data))
    if size > LEGACY_DATA_LIMIT:
        raise OverlayError(
            "the overlay's option string is %d bytes, over the %d bytes the legacy mount(2) "
            "accepts; %s" % (size, LEGACY_DATA_LIMIT, hint), option_bytes=size)


def mount_legacy(target, lowerdir, upperdir, workdir, options, datadir=()):
    """Mount with mount(2), refusing option data that the kernel would cut."""
    data = legacy_data(lowerdir, upperdir, workdir, options, datadir)
    _check_size(data, "use method auto or symlinks, or shorter layer paths")
    _mount2(target, data, "")
    return METHOD_LEGACY


def links_dir_for(links_root, target):
    """The directory of the short layer links of the overlay mounted at ``target``."""
    name = target.strip("/").replace("/", "-") or "-"
    # Readable, and unambiguous through the hash of the whole path.
    digest = hashlib.sha1(_b(target)).hexdigest()[:12]
    return os.path.join(links_root, "%s-%s" % (name[-40:], digest))


def prepare_links(directory, lowerdir, datadir=()):
    """Make ``directory`` hold exactly the links ``0``, ``1``, ... to the layers.

    Returns the relative names, in layer order. The directory and its parent
    must be root's alone, and only numbered links are ever removed
    (``_safepath.prepare_links``).
    """
    _safepath.prepare_links(directory, list(lowerdir) + list(datadir))
    names = [str(i) for i in range(len(lowerdir) + len(datadir))]
    return names[:len(lowerdir)], names[len(lowerdir):]


def mount_links(target, lowerdir, upperdir, workdir, options, datadir=(), links_root=None):
    """Mount with mount(2) through short relative links to the layers.

    Docker's overlay2 does the same: the option string names ``0:1:2...``,
    resolved against the link directory as the working directory, so
    hundreds of layers fit in the one page the legacy call copies.
    """
    if not links_root:
        raise OverlayError("method symlinks needs a links_dir for the short layer links")
    directory = links_dir_for(links_root, target)
    lower_names, data_names = prepare_links(directory, lowerdir, datadir)
    data = legacy_data(lower_names, upperdir, workdir, options, data_names)
    _check_size(data, "even with short layer links; use shorter upper and work paths")
    previous = os.open(".", os.O_RDONLY)
    try:
        os.chdir(directory)
        _mount2(target, data, " through the links in %s" % directory)
    finally:
        os.fchdir(previous)
        os.close(previous)
    return METHOD_LINKS


def mount_overlay(target, lowerdir, upperdir, workdir, options, datadir=(), method="auto", links_root=None):
    """Mount through the best interface the kernel offers; return the method used.

    ``auto`` takes the new mount API (one ``lowerdir+`` per layer, no length
    limit but 255 bytes per path), then the legacy mount(2) when the option
    string fits in a page, then short links. The other methods force one way.
    """
    longest = max([len(_b(p)) for p in list(lowerdir) + list(datadir)] or [0])
    if method == METHOD_NEW_API or (method == "auto" and longest <= NEW_API_VALUE_LIMIT):
        try:
            return mount_new_api(target, lowerdir, upperdir, workdir, options, datadir)
        except NewApiUnsupported as error:
            if method == METHOD_NEW_API:
                raise OverlayError("method fsconfig: %s" % error)
    if method == METHOD_LINKS:
        return mount_links(target, lowerdir, upperdir, workdir, options, datadir, links_root)
    data = legacy_data(lowerdir, upperdir, workdir, options, datadir)
    if method == METHOD_LEGACY or len(_b(data)) <= LEGACY_DATA_LIMIT or not links_root:
        return mount_legacy(target, lowerdir, upperdir, workdir, options, datadir)
    return mount_links(target, lowerdir, upperdir, workdir, options, datadir, links_root)


def umount2(target):
    """Unmount ``target`` with umount2(2); raise OSError on failure."""
    ctypes.set_errno(0)
    if _lib().umount2(_b(target), ctypes.c_int(0)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), target)
