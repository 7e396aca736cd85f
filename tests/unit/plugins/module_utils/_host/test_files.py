# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Atomic writes, backups and stale temp files, on real files."""

import os
import subprocess
import sys

import pytest

from ansible_collections.overlayfs.mounts.plugins.module_utils._host import files
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError


def test_symlinked_fstab_target_is_written_in_its_own_dir(tmp_path, module):
    (tmp_path / "cm").mkdir()
    (tmp_path / "cm" / "fstab").write_text("old\n")
    os.symlink("cm/fstab", str(tmp_path / "fstab"))
    files.write_atomic(module, str(tmp_path / "fstab"), "new\n")
    assert os.path.islink(str(tmp_path / "fstab"))
    assert (tmp_path / "cm" / "fstab").read_text() == "new\n"
    assert sorted(os.listdir(str(tmp_path / "cm"))) == ["fstab"]


def test_bare_exception_of_atomic_move_becomes_an_error_and_leaves_no_temp(tmp_path, module):
    """atomic_move raises a bare Exception (here: the target is a directory)."""
    (tmp_path / "fstab").mkdir()
    with pytest.raises(OverlayError) as error:
        files.write_atomic(module, str(tmp_path / "fstab"), "new\n", step="writing fstab")
    assert error.value.message == "writing fstab %s failed: Is a directory" % (tmp_path / "fstab")
    assert os.listdir(str(tmp_path)) == ["fstab"]
    assert os.listdir(str(tmp_path / "fstab")) == []


def test_backup_is_complete_and_keeps_mode(tmp_path):
    (tmp_path / "fstab").write_text("x" * 10000)
    os.chmod(str(tmp_path / "fstab"), 0o600)
    dest = files.backup(str(tmp_path / "fstab"))
    assert open(dest).read() == "x" * 10000
    assert os.stat(dest).st_mode & 0o777 == 0o600
    assert sorted(os.listdir(str(tmp_path))) == sorted(["fstab", os.path.basename(dest)])


def test_failed_backup_leaves_nothing(tmp_path):
    with pytest.raises(OverlayError) as error:
        files.backup(str(tmp_path / "missing"))
    assert error.value.message.startswith("backing up %s failed" % (tmp_path / "missing"))
    assert os.listdir(str(tmp_path)) == []


def test_stale_temps_of_dead_writers_are_removed(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / (".fstab%s%d.abc" % (files.TEMP_MARK, dead.pid))
    live = tmp_path / (".fstab%s%d.abc" % (files.TEMP_MARK, os.getppid()))
    other = tmp_path / ".fstab.swp"
    for path in (stale, live, other):
        path.write_text("partial")
    assert files.clean_stale_temps(str(tmp_path / "fstab")) == [str(stale)]
    assert sorted(os.listdir(str(tmp_path))) == sorted([live.name, other.name])


FINDMNT_OUTPUT = """/srv/a
   [ ] target exists
   [E] unsupported filesystem type
/srv/b
   [ ] target exists
/srv/a/sub
   [E] unreachable on boot required target: No such file or directory
   [W] a warning is not a problem

   [E] still /srv/a/sub after a blank line
"""


def test_problems_are_split_by_mount_point_in_one_pass():
    found = files.problems_by_target(FINDMNT_OUTPUT)
    assert found == {
        "/srv/a": ["unsupported filesystem type"],
        "/srv/b": [],
        "/srv/a/sub": ["unreachable on boot required target: No such file or directory",
                       "still /srv/a/sub after a blank line"],
    }
    assert files.verify_problems(FINDMNT_OUTPUT, "/srv/a/sub") == found["/srv/a/sub"]
    assert files.verify_problems(FINDMNT_OUTPUT, "/srv/none") == []


@pytest.mark.skipif(not os.path.exists("/usr/bin/findmnt") and not os.path.exists("/bin/findmnt"),
                    reason="needs findmnt (util-linux)")
def test_batch_check_refuses_only_the_bad_line_and_stays_fast(tmp_path, module):
    """One findmnt run over many lines: a bad line is found among 1,000 good ones, in well under a second.

    findmnt canonicalizing 1,000 distinct mount points took 28 s; the batch
    runs it with --nocanonicalize (its lines hold canonical paths).
    """
    import time
    present = tmp_path / "present"
    present.mkdir()
    lines = {}
    for i in range(1000):
        target = str(tmp_path / "mnt" / ("app%d" % i))  # missing: created by the run that writes it
        lines[target] = "overlay %s overlay lowerdir=/l%d:/base,upperdir=/u%d,workdir=/w%d 0 0" % (target, i, i, i)
    lines[str(present)] = "overlay %s overlay lowerdir=/l,upperdir=/u,workdir=/w 0 0" % present
    bad = str(tmp_path / "file")  # findmnt: "target is not a directory"
    (tmp_path / "file").write_text("")
    lines[bad] = "overlay %s overlay lowerdir=/l,upperdir=/u,workdir=/w 0 0" % bad
    start = time.monotonic()
    verified = files.preverify_lines(module, lines)
    elapsed = time.monotonic() - start
    assert verified == set(line for target, line in lines.items() if target != bad)
    assert elapsed < 5, "findmnt over 1,002 lines took %.1f s" % elapsed


def test_read_text_again_answers_from_memory_only_while_the_file_is_unchanged(tmp_path):
    fstab = tmp_path / "fstab"
    fstab.write_text(u"a /b c\n")
    first = files.read_text_again(str(fstab))
    assert first == "a /b c\n" and files.read_text_again(str(fstab)) is first
    replacement = tmp_path / "new"
    replacement.write_text(u"a /b c\nd /e f\n")
    os.rename(str(replacement), str(fstab))  # how every writer of this collection replaces it
    assert files.read_text_again(str(fstab)) == "a /b c\nd /e f\n"
    with open(str(fstab), "a") as handle:  # an editor appending in place
        handle.write(u"g /h i\n")
    assert files.read_text_again(str(fstab)).endswith("g /h i\n")
    os.unlink(str(fstab))
    assert files.read_text_again(str(fstab)) is None
