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


def test_without_a_module_the_rename_keeps_the_mode_and_a_new_file_gets_0644(tmp_path):
    kept = tmp_path / "drift.md"
    kept.write_text("old\n")
    os.chmod(str(kept), 0o640)
    files.write_atomic(None, str(kept), "new\n")
    files.write_atomic(None, str(tmp_path / "drift.json"), "{}\n")
    assert kept.read_text() == "new\n" and oct(os.stat(str(kept)).st_mode & 0o7777) == "0o640"
    assert oct(os.stat(str(tmp_path / "drift.json")).st_mode & 0o7777) == "0o644"
    assert sorted(os.listdir(str(tmp_path))) == ["drift.json", "drift.md"]


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


NEEDS_FINDMNT = pytest.mark.skipif(not os.path.exists("/usr/bin/findmnt") and not os.path.exists("/bin/findmnt"),
                                   reason="needs findmnt (util-linux)")


@NEEDS_FINDMNT
def test_findmnt_check_names_only_the_faulty_lines_and_stays_fast(tmp_path, module):
    """One findmnt run over 1,002 lines finds the one bad line among them, in well under a second."""
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
    text = "\n".join(lines.values()) + "\n"
    start = time.monotonic()
    found = files.findmnt_problems(module, text, list(lines))
    elapsed = time.monotonic() - start
    assert [target for target, problems in found.items() if problems and os.path.exists(target)] == [bad]
    assert all(p.startswith("unreachable on boot required target") for t, ps in found.items() if t != bad for p in ps)
    assert elapsed < 5, "findmnt over 1,002 lines took %.1f s" % elapsed
    with pytest.raises(OverlayError, match="refused the fstab entry for %s: target is not a directory" % bad):
        files.findmnt_verify(module, text, list(lines), missing_ok=True)
    del lines[bad]
    assert files.findmnt_verify(module, "\n".join(lines.values()) + "\n", list(lines), missing_ok=True)


@NEEDS_FINDMNT
def test_findmnt_check_catches_a_line_above_ours_that_comes_after_it(tmp_path, module):
    """findmnt's order check works on an excerpt: our line before the line of the mount it lies under."""
    mnt = tmp_path / "m"
    (mnt / "sub").mkdir(parents=True)
    ours = "overlay %s/sub overlay lowerdir=/l,upperdir=/u,workdir=/w 0 0" % mnt
    parent = "tmpfs %s tmpfs noauto 0 0" % mnt
    with pytest.raises(OverlayError, match="wrong order"):
        files.findmnt_verify(module, ours + "\n" + parent + "\n", [str(mnt / "sub")])
    assert files.findmnt_verify(module, parent + "\n" + ours + "\n", [str(mnt / "sub")])


def test_path_resolver_answers_as_realpath_with_one_lstat_per_name(tmp_path):
    real = tmp_path / "real"
    (real / "d").mkdir(parents=True)
    (tmp_path / "link").symlink_to(real)
    (real / "inner").symlink_to(real / "d")
    asked = []

    def realpath(path):
        asked.append(path)
        return os.path.realpath(path)

    resolve = files.path_resolver(realpath)
    paths = [str(tmp_path / "link" / name) for name in ("d", "inner", "missing", "d2")] + [
        str(real / "d"), str(tmp_path / "link" / ".." / "real"), "/"]
    assert [resolve(p) for p in paths] == [os.path.realpath(p) for p in paths]
    # The shared parent once; the link named last, '..' and '/' in full; the rest by lstat.
    assert asked.count(str(tmp_path / "link")) == 1 and str(tmp_path / "link" / "d") not in asked


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
