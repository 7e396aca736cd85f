# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the running kernel's overlayfs accepts, asked of the kernel itself.

Kernel version numbers say little on their own: distributions backport
features, and the rules changed in steps (the new mount API in 5.2,
overlayfs parsing each option itself in 6.5, ``lowerdir+`` in 6.8, ``uuid=``
modes and ``verity`` in 6.6, ``fsync=`` in 6.15). So the kernel is asked:

* ``fsopen("overlay")`` tells whether the new mount API exists at all;
* ``fsconfig()`` with a key no overlayfs knows tells who parses the options:
  a kernel that still goes through the VFS's legacy layer accepts any key
  and appends it to one page of text (the same page limit as mount(2), and
  every real check happens only when the superblock is created), while
  overlayfs's own parser refuses an unknown key at once;
* with overlayfs's own parser, ``fsconfig("lowerdir+", "/")`` tells whether
  layers can be appended one by one, and any other option is checked the
  same way, key and value, without creating anything;
* with the legacy layer, an option is checked by creating (never mounting)
  a read-only overlay of two empty scratch directories with that option:
  the kernel parses the whole option string then, and the superblock is
  dropped again when the context is closed. Nothing appears in mountinfo.

Answers are kept for the life of the process (one module run).
"""

import ctypes
import errno
import os
import shutil
import tempfile
from typing import Any, Callable, Iterable, List, Optional, Sequence, Tuple, Union

from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError

# The new mount API syscalls share one number on every architecture but alpha.
SYS_MOVE_MOUNT = 429
SYS_FSOPEN = 430
SYS_FSCONFIG = 431
SYS_FSMOUNT = 432
FSOPEN_CLOEXEC = 0x1
FSCONFIG_SET_FLAG = 0
FSCONFIG_SET_STRING = 1
FSCONFIG_CMD_CREATE = 6

# A key no overlayfs version has: only the legacy layer accepts it.
_UNKNOWN_KEY = "x-overlayfs-mounts-probe"

_cache = {}
_libc = []


def libc() -> ctypes.CDLL:
    """The C library, loaded once, with errno kept for ctypes.get_errno()."""
    if not _libc:
        lib = ctypes.CDLL(None, use_errno=True)
        lib.syscall.restype = ctypes.c_long
        _libc.append(lib)
    return _libc[0]


def syscall(number: int, *args: Any) -> Tuple[int, int]:
    """``(result, errno)`` of a raw system call (errno 0 on success)."""
    ctypes.set_errno(0)
    result = libc().syscall(ctypes.c_long(number), *args)
    return (result, ctypes.get_errno()) if result < 0 else (result, 0)


def to_bytes(text: Union[str, bytes]) -> bytes:
    """``text`` as bytes (UTF-8, surrogate escapes kept); bytes as they are."""
    return text.encode("utf-8", "surrogateescape") if not isinstance(text, bytes) else text


def read_fs_log(fd: int) -> List[str]:
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


class KernelLog:
    """New lines of the kernel log (/dev/kmsg) written while a mount(2) call ran.

    The legacy mount(2) only returns an errno; the reason ("overlayfs: failed
    to verify upper root origin") goes to the kernel log.
    """

    def __init__(self) -> None:
        self.fd = None
        try:
            self.fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
            os.lseek(self.fd, 0, os.SEEK_END)
        except OSError:
            self.close()

    def read(self) -> List[str]:
        """The overlay lines logged since this object was made (or last read)."""
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

    def close(self) -> None:
        """Stop reading the kernel log."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class _Context:
    """One overlay fs context (fsopen); closed on exit, never mounted."""

    def __init__(self) -> None:
        self.fd, self.errno = syscall(SYS_FSOPEN, ctypes.c_char_p(b"overlay"), ctypes.c_uint(FSOPEN_CLOEXEC))

    def __enter__(self) -> "_Context":
        return self

    def __exit__(self, *exc: Any) -> bool:
        if self.fd >= 0:
            os.close(self.fd)
        return False

    def set(self, key: str, value: Optional[str] = None) -> Tuple[bool, List[str]]:
        """``(ok, kernel log lines)`` for one fsconfig() call."""
        if value is None:
            cmd, raw = FSCONFIG_SET_FLAG, None
        else:
            cmd, raw = FSCONFIG_SET_STRING, ctypes.c_char_p(to_bytes(value))
        res, err = syscall(SYS_FSCONFIG, ctypes.c_int(self.fd), ctypes.c_uint(cmd),
                           ctypes.c_char_p(to_bytes(key)), raw, ctypes.c_int(0))
        return res >= 0, ([] if res >= 0 else read_fs_log(self.fd) or [os.strerror(err)])

    def create(self) -> Tuple[bool, List[str]]:
        """``(ok, kernel log lines)`` for creating the superblock (FSCONFIG_CMD_CREATE)."""
        res, err = syscall(SYS_FSCONFIG, ctypes.c_int(self.fd), ctypes.c_uint(FSCONFIG_CMD_CREATE),
                           None, None, ctypes.c_int(0))
        return res >= 0, ([] if res >= 0 else read_fs_log(self.fd) or [os.strerror(err)])


class Features:
    """The overlayfs features of the running kernel that decide how to mount.

    ``new_api``: fsopen() and fsconfig() exist (5.2+). ``native_params``:
    overlayfs parses each fsconfig() value itself (6.5+); without it, all
    options share one page, exactly as with the legacy mount(2).
    ``lowerdir_plus``: layers can be given one by one with ``lowerdir+`` and
    ``datadir+`` (6.8+). ``overlay``: the filesystem is known at all.
    """

    def __init__(self, release: str, overlay: bool = True, new_api: bool = False, native_params: bool = False,
                 lowerdir_plus: bool = False) -> None:
        self.release = release
        self.overlay = overlay
        self.new_api = new_api
        self.native_params = native_params
        self.lowerdir_plus = lowerdir_plus

    def describe(self) -> str:
        """One sentence for error messages: what this kernel offers."""
        if not self.overlay:
            return "Linux %s has no overlay filesystem loaded" % self.release

        def yes(flag):
            return "yes" if flag else "no"
        return ("Linux %s: new mount API %s, overlay options parsed one by one %s (otherwise all share "
                "one page), lowerdir+ %s" % (self.release, yes(self.new_api), yes(self.native_params),
                                             yes(self.lowerdir_plus)))


def _unknown(log):
    return any("nknown parameter" in line for line in log)


def features(refresh: bool = False) -> Features:
    """Probe the running kernel once per process; see :class:`Features`."""
    if "features" in _cache and not refresh:
        return _cache["features"]
    release = os.uname()[2]
    with _Context() as ctx:
        if ctx.fd < 0:
            # ENOSYS: before 5.2; ENODEV: no overlayfs; anything else (EPERM
            # without CAP_SYS_ADMIN): mount(2) is what is left, and it will say.
            result = Features(release, overlay=ctx.errno != errno.ENODEV)
        else:
            ok, log = ctx.set(_UNKNOWN_KEY, "1")
            native = not ok and _unknown(log)
            plus = False
            if native:
                ok, log = ctx.set("lowerdir+", "/")
                plus = ok or not _unknown(log)
            result = Features(release, new_api=True, native_params=native, lowerdir_plus=plus)
    _cache["features"] = result
    return result


def accepts(option: str, feats: Optional[Features] = None) -> Tuple[bool, List[str]]:
    """``(True, [])`` when the kernel takes this overlay option, else ``(False, kernel's words)``.

    ``option`` is canonical (``name`` or ``name=value``). When the kernel
    cannot be asked (no new mount API), the answer is True: the mount itself
    will say.
    """
    key = ("accepts", option)
    if key in _cache:
        return _cache[key]
    feats = feats or features()
    name, sep, value = option.partition("=")
    value = value if sep else None
    if not feats.new_api or not feats.overlay:
        answer = (True, [])
    elif feats.native_params:
        with _Context() as ctx:
            ok, log = ctx.set(name, value)
            answer = (ok, log)
    else:
        answer = _create_probe(name, value)
    _cache[key] = answer
    return answer


def _scratch_parent():
    for candidate in ("/run", "/dev/shm", tempfile.gettempdir()):
        if os.path.isdir(candidate) and os.access(candidate, os.W_OK):
            return candidate
    return None


def _create_probe(name, value):
    """Create (never mount) a read-only overlay of two empty dirs with one option."""
    scratch = tempfile.mkdtemp(prefix=".overlayfs-mounts-probe-", dir=_scratch_parent())
    try:
        lowers = []
        for sub in ("a", "b"):
            os.mkdir(os.path.join(scratch, sub), 0o700)
            lowers.append(os.path.join(scratch, sub))
        with _Context() as ctx:
            if ctx.fd < 0:
                return True, []
            ok, log = ctx.set("source", "overlay")
            if ok:
                ok, log = ctx.set("lowerdir", ":".join(lowers))
            if not ok:
                return True, []  # the scratch dirs themselves failed: no answer about the option
            ok, log = ctx.set(name, value)
            if ok:
                kmsg = KernelLog()
                try:
                    ok, log = ctx.create()
                    # Before 6.5 overlayfs gives its reason to the kernel log only.
                    log = [line for line in kmsg.read() if "option" in line] or log
                finally:
                    kmsg.close()
            return ok, ([] if ok else log)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def uuid_default(feats: Optional[Features] = None) -> str:
    """The kernel's default uuid mode: ``auto`` where it has the modes (6.6+), else ``on``."""
    feats = feats or features()
    if feats.new_api and feats.native_params and accepts("uuid=auto", feats)[0]:
        return "auto"
    if not feats.new_api:
        return "auto"  # cannot ask: assume the newest rules
    return "on"


def check_support(options: Iterable[str], datadir: Sequence[str] = (), feats: Optional[Features] = None,
                  ask: Optional[Callable[[str, Features], Tuple[bool, List[str]]]] = None) -> None:
    """Raise OverlayError when the running kernel would refuse a declared option or datadir.

    ``options`` are canonical option strings; ``ask`` is :func:`accepts`
    (a parameter so the decision can be tested without a kernel).
    """
    feats = feats or features()
    ask = ask or accepts
    if datadir and feats.new_api and not feats.native_params:
        raise OverlayError(
            "datadir: this kernel has no data-only lower layers (they came with overlayfs parsing its own "
            "options, Linux 6.5); %s. Move the data-only layers into lowerdir or use a newer kernel"
            % feats.describe())
    for option in options:
        ok, log = ask(option, feats)
        if not ok:
            raise OverlayError(
                "options: the running kernel does not take '%s'%s; %s. Remove it from options, or use a "
                "kernel that has it" % (option, " (the kernel said: %s)" % "; ".join(log) if log else "",
                                        feats.describe()))
