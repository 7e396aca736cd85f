# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host lock on real files: exclusive, shared, bounded waits that name the holder."""

import os
import subprocess
import sys
import time

import pytest

from ansible_collections.overlayfs.mounts.plugins.module_utils._host.port import LOCK_NAME, HostLock, lock_holders
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError

HOLDER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_SH if sys.argv[2] == "shared" else fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(30)
"""


@pytest.fixture
def holder(tmp_path):
    """``holder(mode)``: another process holding the lock file in ``tmp_path``; killed afterwards."""
    procs = []

    def start(mode="exclusive"):
        proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path / LOCK_NAME), mode],
                                stdout=subprocess.PIPE, universal_newlines=True)
        assert proc.stdout.readline().strip() == "held"
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


def _lock(tmp_path, shared=False, wait=5.0):
    return HostLock(shared, dirs=[str(tmp_path / "missing"), str(tmp_path)], wait=wait)


def test_a_real_run_creates_the_file_in_the_first_existing_dir_and_holds_it(tmp_path):
    lock = _lock(tmp_path).acquire()
    assert lock.fd is not None and (tmp_path / LOCK_NAME).is_file()
    assert oct((tmp_path / LOCK_NAME).stat().st_mode & 0o777) == "0o600"
    with pytest.raises(OverlayError, match="waited 0 s for the host lock"):
        _lock(tmp_path, wait=0).acquire()
    lock.release()
    _lock(tmp_path, wait=0).acquire().release()


def test_check_mode_creates_nothing_and_shares(tmp_path, holder):
    assert _lock(tmp_path, shared=True).acquire().fd is None
    assert not (tmp_path / LOCK_NAME).exists()
    holder("shared")
    first, second = _lock(tmp_path, shared=True, wait=0).acquire(), _lock(tmp_path, shared=True, wait=0).acquire()
    assert first.fd is not None and second.fd is not None
    with pytest.raises(OverlayError):
        _lock(tmp_path, wait=0.2).acquire()  # a real run waits for readers


def test_a_run_waits_for_the_holder_then_takes_the_lock(tmp_path, holder):
    proc = holder()
    started = time.monotonic()
    subprocess.Popen(["sh", "-c", "sleep 0.5; kill %d" % proc.pid])
    lock = _lock(tmp_path, wait=10).acquire()
    assert lock.fd is not None and 0.4 < time.monotonic() - started < 5
    lock.release()


def test_a_bounded_wait_names_the_holder(tmp_path, holder):
    proc = holder()
    with pytest.raises(OverlayError, match=r"waited 0.3 s .*holds \(pid %d \(\S*python -c import fcntl.*\.\.\.\)\); run again" % proc.pid):
        _lock(tmp_path, wait=0.3).acquire()


@pytest.mark.parametrize("plant", ["dir", "symlink", "fifo"])
def test_anything_but_a_regular_file_is_refused(tmp_path, plant):
    path = tmp_path / LOCK_NAME
    if plant == "dir":
        path.mkdir()
    elif plant == "symlink":
        (tmp_path / "elsewhere").write_text("")
        path.symlink_to(tmp_path / "elsewhere")
    else:
        os.mkfifo(str(path))
    for shared in (False, True):
        with pytest.raises(OverlayError, match="host lock %s" % path):
            _lock(tmp_path, shared=shared, wait=0).acquire()


def test_lock_holders_reads_proc_locks(tmp_path):
    locks = tmp_path / "locks"
    locks.write_text("1: FLOCK  ADVISORY  WRITE %d fe:01:42 0 EOF\n"
                     "2: FLOCK  ADVISORY  WRITE 999999 fe:01:43 0 EOF\n"
                     "3: -> FLOCK  ADVISORY  WRITE 1 fe:01:42 0 EOF\n" % os.getpid())
    st = os.stat_result((0o100600, 42, os.makedev(0xfe, 1), 1, 0, 0, 0, 0, 0, 0))
    found = lock_holders(st, str(locks))
    assert len(found) == 1 and found[0].startswith("pid %d (" % os.getpid()) and "python" in found[0]
    assert lock_holders(st, str(tmp_path / "none")) == []
