# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read an overlay's merged view from its upper and lower dirs, without mounting anything anywhere.

The upper dir becomes the top *lower* layer of a read-only overlay, so
nothing writes to it and no work dir is needed; what the kernel keeps in an
upper (whiteouts, opaque dirs, renamed dirs, metadata-only copies) means the
same in a lower layer, so the view shows what the overlay showed. The
overlay is made with the new mount API (fsopen, fsconfig, fsmount) and never
attached to a mount point: the mount file descriptor is the only reference,
read through ``/proc/self/fd/N``. Closing the descriptor, or the death of
the process (SIGKILL included), frees the overlay: no mount is ever left
behind, and none shows in any mountinfo.

What the kernel takes is tried, not guessed from its version: layers one by
one with ``lowerdir+`` where it has that (6.8+), else one ``lowerdir=``
value naming each layer through a short ``/proc/self/fd/N`` path; options
``redirect_dir=follow`` and ``metacopy=on``, else ``redirect_dir=on`` with
``metacopy=on`` (older kernels tie the two), else redirects alone.
"""

import contextlib
import ctypes
import errno
import os
from typing import Iterator, List, Optional, Sequence, Tuple

from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError
from ansible_collections.overlayfs.mounts.plugins.module_utils._host.kernel_features import (
    FSCONFIG_SET_FLAG,
    FSCONFIG_SET_STRING,
    SYS_FSMOUNT,
    Features,
    features as kernel_features,
    read_fs_log,
    syscall,
)
from ansible_collections.overlayfs.mounts.plugins.module_utils._host.mounting import (
    NEW_API_VALUE_LIMIT,
    NewApiUnsupported,
    _configure,
    _create,
    _fsconfig,
    _fsopen,
)

_FSMOUNT_CLOEXEC = 0x1
_MOUNT_ATTR_RDONLY = 0x1
_PATH_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC

#: The options of the live overlay that change how its layers read; the rest concern its upper.
READ_OPTIONS = ("userxattr", "xino", "verity", "redirect_dir", "metacopy")
#: What to ask for when the caller says nothing about redirects and metacopy, best first.
DEFAULT_TRIES = (("redirect_dir=follow", "metacopy=on"), ("redirect_dir=on", "metacopy=on"), ("redirect_dir=follow",))


def option_tries(options: Sequence[str]) -> List[List[str]]:
    """The option lists to try, in order, for a view of an overlay mounted with ``options``.

    Only the options in READ_OPTIONS are kept. ``userxattr`` excludes
    redirects and metacopy (the kernel refuses the pair), so it is tried
    alone. A ``redirect_dir`` or ``metacopy`` the caller gives is used as it
    is; otherwise the view follows renamed dirs and metadata-only copies.
    """
    kept = [o for o in options if o.partition("=")[0] in READ_OPTIONS]
    keys = {o.partition("=")[0] for o in kept}
    if "userxattr" in keys or {"redirect_dir", "metacopy"} & keys:
        return [kept]
    return [kept + list(extra) for extra in DEFAULT_TRIES]


def lowerdir_value(layers: Sequence[str], data: Sequence[str] = ()) -> str:
    """The ``lowerdir=`` value naming ``layers`` (top first), then data-only ``data`` layers after ``::``.

    The names must hold no ``:``, ``,`` or ``\\`` (``/proc/self/fd/N`` paths do not).
    """
    for name in list(layers) + list(data):
        if any(c in name for c in ":,\\"):
            raise ValueError("a layer name for lowerdir= must not hold ':', ',' or '\\': %r" % name)
    return ":".join(layers) + "".join("::" + name for name in data)


def _set_options(fd: int, options: Sequence[str], what: str) -> None:
    for option in options:
        key, sep, value = option.partition("=")
        err = _fsconfig(fd, FSCONFIG_SET_STRING, key, value) if sep else _fsconfig(fd, FSCONFIG_SET_FLAG, key)
        if err:
            raise OverlayError("fsconfig(%s) failed while reading %s: %s; the kernel said: %s"
                               % (option, what, os.strerror(err), "; ".join(read_fs_log(fd))), errno=err)


def _string_form(fd: int, layers: Sequence[str], data: Sequence[str], options: Sequence[str], what: str) -> None:
    """Configure the context with one ``lowerdir=`` value, each layer named by an O_PATH descriptor."""
    opened: List[int] = []
    try:
        for path in list(layers) + list(data):
            opened.append(os.open(path, _PATH_FLAGS))
        names = ["/proc/self/fd/%d" % n for n in opened]
        value = lowerdir_value(names[:len(layers)], names[len(layers):])
        if len(value) > NEW_API_VALUE_LIMIT:
            raise OverlayError(
                "lowerdir: reading %s through %d layers takes a lowerdir= value of %d bytes, over the %d bytes "
                "fsconfig() takes, and this kernel has no lowerdir+ (Linux 6.8+). Commit with fewer lower layers "
                "or on a newer kernel" % (what, len(opened), len(value), NEW_API_VALUE_LIMIT), option_bytes=len(value))
        for key, val in (("source", "overlay"), ("lowerdir", value)):
            err = _fsconfig(fd, FSCONFIG_SET_STRING, key, val)
            if err:
                raise OverlayError("fsconfig(%s=%s) failed while reading %s: %s; the kernel said: %s"
                                   % (key, val, what, os.strerror(err), "; ".join(read_fs_log(fd))), errno=err)
        _set_options(fd, options, what)
        _create(fd, what)  # the kernel looks the /proc/self/fd paths up by now at the latest
    except OSError as error:
        raise OverlayError("cannot open the layer %s to read %s: %s" % (error.filename, what, error.strerror),
                           errno=error.errno)
    finally:
        for n in opened:
            os.close(n)


def _superblock(layers: Sequence[str], data: Sequence[str], options: Sequence[str], feats: Features, what: str) -> int:
    """A configured and created overlay context (fd) for the layers, or OverlayError."""
    plus = feats.lowerdir_plus
    while True:
        fd = _fsopen(what)
        try:
            if plus:
                _configure(fd, what, layers, None, None, options, data)
                _create(fd, what)
            else:
                _string_form(fd, layers, data, options, what)
            return fd
        except NewApiUnsupported:
            os.close(fd)
            if not plus:
                raise
            plus = False  # the probe was wrong about lowerdir+: one value, then
        except BaseException:
            os.close(fd)
            raise


def _mount_fd(layers: Sequence[str], data: Sequence[str], tries: Sequence[Sequence[str]], feats: Features,
              what: str) -> Tuple[int, List[str]]:
    """The detached mount of the first option list the kernel takes, and that list."""
    error: Optional[OverlayError] = None
    for options in tries:
        try:
            fd = _superblock(layers, data, options, feats, what)
        except NewApiUnsupported as refused:
            raise OverlayError("reading %s needs the new mount API: %s; %s" % (what, refused, feats.describe()))
        except OverlayError as refused:
            if refused.details.get("errno") != errno.EINVAL:
                raise
            error = refused
            continue
        try:
            mount_fd, err = syscall(SYS_FSMOUNT, ctypes.c_int(fd), ctypes.c_uint(_FSMOUNT_CLOEXEC),
                                    ctypes.c_uint(_MOUNT_ATTR_RDONLY))
            if mount_fd < 0:
                raise OverlayError("fsmount failed while reading %s: %s; the kernel said: %s"
                                   % (what, os.strerror(err), "; ".join(read_fs_log(fd))), errno=err)
        finally:
            os.close(fd)
        return mount_fd, list(options)
    if error is None:
        raise AssertionError("no way of mounting the merged view was tried")
    raise error


@contextlib.contextmanager
def merged_view(upper: str, lowerdir: Sequence[str], datadir: Sequence[str] = (), options: Sequence[str] = (),
                feats: Optional[Features] = None) -> Iterator[str]:
    """A read-only path showing ``upper`` merged over ``lowerdir`` (top first) and data-only ``datadir``.

    ``options`` are the live overlay's canonical options; those that change
    how layers read are used (``option_tries``). The path
    (``/proc/self/fd/N``) works in this process only, until the context ends;
    nothing is mounted anywhere, and the view goes away with the descriptor
    even when the process is killed. OverlayError when the kernel refuses.
    """
    feats = feats or kernel_features()
    what = "the merged view of %s" % upper
    if not feats.new_api:
        raise OverlayError("reading %s without mounting it needs the new mount API (Linux 5.2+); %s"
                           % (what, feats.describe()))
    if datadir and not feats.native_params:
        raise OverlayError("datadir: this kernel has no data-only lower layers (Linux 6.5+); %s" % feats.describe())
    mount_fd, _used = _mount_fd([upper] + list(lowerdir), list(datadir), option_tries(options), feats, what)
    try:
        yield "/proc/self/fd/%d" % mount_fd
    finally:
        os.close(mount_fd)
