# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host as the converge sees it: one object for every read and change it makes.

The converge (``_converge``) never calls the host's functions itself: it
asks a :class:`Host`, which a unit test replaces with a fake one (as
kubernetes.core's runner takes the service that does all I/O). The
persistence backends keep their own file I/O; a test gives the session a
fake backend instead.

:class:`HostLock` is the lock every changing run of the collection takes on
a host, from its first host read to its last write, so that two runs at once
never act on a view of the host that the other one has changed.
"""

import fcntl
import os
import stat
import time
from typing import List, Optional, Sequence

from ansible_collections.overlayfs.mounts.plugins.module_utils._host import files
from ansible_collections.overlayfs.mounts.plugins.module_utils._host import live_paths
from ansible_collections.overlayfs.mounts.plugins.module_utils._host import mounting
from ansible_collections.overlayfs.mounts.plugins.module_utils._host import namespaces
from ansible_collections.overlayfs.mounts.plugins.module_utils._host import safe_paths
from ansible_collections.overlayfs.mounts.plugins.module_utils._host import system
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError

#: Where the host lock lives: /run, which only root may write (unlike the
#: world-writable /run/lock, where another user could plant the file first).
LOCK_DIRS = ("/run",)
LOCK_NAME = "overlayfs-mounts.lock"
#: How long a run waits for another run's lock before it gives up, in seconds.
LOCK_WAIT = 300


class HostLock:
    """An flock on one file per host, held by a run from its first read to its last write.

    A run that changes the host holds it exclusively: a second run waits
    until the first is done, then reads the host as the first one left it.
    A check-mode run changes nothing and creates nothing; it shares the
    lock when the file exists, so that it never reads a host half-way
    through another run's change.
    """

    def __init__(self, shared: bool = False, dirs: Sequence[str] = LOCK_DIRS, wait: float = LOCK_WAIT) -> None:
        self.shared = shared
        self.dirs = dirs
        self.wait = wait
        self.fd: Optional[int] = None

    def path(self) -> Optional[str]:
        """The lock file's path: in the first of :data:`LOCK_DIRS` that exists (None: none does)."""
        for directory in self.dirs:
            if os.path.isdir(directory):
                return os.path.join(directory, LOCK_NAME)
        return None

    def acquire(self) -> "HostLock":
        path = self.path()
        if path is None:
            return self
        flags = os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK
        flags |= os.O_RDONLY if self.shared else os.O_RDWR | os.O_CREAT
        try:
            self.fd = os.open(path, flags, 0o600)
        except FileNotFoundError:
            return self  # check mode, and no run has ever changed this host
        except OSError as error:
            raise OverlayError(
                "cannot open the host lock %s (%s): it must be a regular file of root's; remove "
                "whatever is there and run again" % (path, error.strerror))
        if not stat.S_ISREG(os.fstat(self.fd).st_mode):
            self.release()
            raise OverlayError(
                "the host lock %s is not a regular file: remove whatever is there and run again" % path)
        self._wait(path)
        return self

    def _wait(self, path: str) -> None:
        """Take the lock, waiting at most :attr:`wait` seconds for the run that holds it."""
        operation = fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX
        deadline, pause = time.monotonic() + self.wait, 0.01
        while True:
            try:
                fcntl.flock(self.fd, operation | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    break
                time.sleep(pause)
                pause = min(pause * 2, 0.25)
        holders = lock_holders(os.fstat(self.fd))
        os.close(self.fd)
        self.fd = None
        raise OverlayError(
            "waited %g s for the host lock %s, which another run of this collection holds%s; "
            "run again when it is done, or stop it if it hangs"
            % (self.wait, path, " (%s)" % ", ".join(holders) if holders else ""))

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


def lock_holders(st: os.stat_result, locks: str = "/proc/locks") -> List[str]:
    """``pid N (command)`` of each process /proc/locks shows holding a lock on the file ``st``."""
    wanted = "%02x:%02x:%d" % (os.major(st.st_dev), os.minor(st.st_dev), st.st_ino)
    try:
        with open(locks) as handle:
            lines = handle.read().splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        fields = line.split()
        if "->" in fields or len(fields) < 6 or fields[5] != wanted:
            continue  # "->": a waiter, not a holder
        found.append("pid %s (%s)" % (fields[4], _command(fields[4])))
    return found


def _command(pid: str) -> str:
    try:
        with open("/proc/%s/cmdline" % pid, "rb") as handle:
            words = handle.read().decode("utf-8", "replace").replace("\0", " ").split()
    except OSError:
        return "?"
    command = " ".join(words)
    return (command[:77] + "...") if len(command) > 80 else (command or "?")


class Host:
    """Every host read and change the converge makes (see the module docstring)."""

    # Reads.
    read_mountinfo = staticmethod(system.read_mountinfo)
    read_defaults = staticmethod(system.read_defaults)
    realpath = staticmethod(system.realpath)
    link_times = staticmethod(live_paths.LinkTimes)
    path_kind = staticmethod(system.path_kind)
    exists = staticmethod(os.path.exists)
    isdir = staticmethod(os.path.isdir)
    lowerdir_plus = staticmethod(system.lowerdir_plus)
    check_kernel_support = staticmethod(system.check_kernel_support)
    scan_holders = staticmethod(namespaces.scan_holders)
    read_view = staticmethod(namespaces.read_view)
    overlay_dirs = staticmethod(namespaces.overlay_dirs)
    identity = staticmethod(namespaces.stat_identity)
    workdir_listing = staticmethod(system.workdir_listing)
    upper_facts = staticmethod(system.upper_facts)
    resolve_safely = staticmethod(safe_paths.resolve_safely)
    check_declaration = staticmethod(safe_paths.check_declaration)
    check_links_root = staticmethod(safe_paths.check_links_root)
    systemd_booted = staticmethod(files.systemd_booted)
    mount_fsconfig = staticmethod(files.mount_fsconfig)
    systemd_version = staticmethod(files.systemd_version)

    # Changes.
    make_dirs = staticmethod(system.make_dirs)
    remove_empty_dirs = staticmethod(system.remove_empty_dirs)
    mount = staticmethod(system.mount)
    remount_flags = staticmethod(system.remount)
    unmount = staticmethod(system.unmount)
    remove_links_pointer = staticmethod(mounting.remove_links_pointer)
    links_pointer_missing = staticmethod(mounting.links_pointer_missing)
    umount2 = staticmethod(system.umount2)
    clear_volatile_marker = staticmethod(system.clear_volatile_marker)
    clean_stale_temps = staticmethod(files.clean_stale_temps)
    systemctl = staticmethod(files.systemctl)
    directory_lock = staticmethod(files.DirectoryLock)

    def lock(self, shared: bool) -> HostLock:
        """The host lock, acquired (see :class:`HostLock`)."""
        return HostLock(shared).acquire()
