# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""overlay_upper killed with SIGKILL at random points of resets and commits.

30 runs - 15 resets (no backup, a backup beside the upper dir, a backup on
another filesystem) and 15 commits (the layer beside the upper dir or on
another filesystem) - of a tree of a few thousand files plus every change the
kernel records in an upper dir (upper_manifest.change_through, with
redirect_dir=on and metacopy=on). Each run is a module process of its own
(this file with ``--drive``: it imports the module from the tree and calls its
``main()`` with the arguments injected as AnsiballZ does), killed with its
whole process group after a delay drawn over the length of an unkilled run of
the same kind (stratified, so that the kills land across the whole run).

Right after each kill, before anything else touches the overlay:

* no mount under the scratch dir but the overlay itself, and that at most once;
* the overlay, when it is still (or again) mounted, shows the view before or
  the view after;
* the overlay as it comes up at boot shows the view before or after: when it
  is not mounted, its fstab line mounted read-only by hand (``mount -T``);
  when it is, the fstab line's layers under the upper dir, read-only.

Then the same task runs again, to completion: ``recovered`` when a journal
was left, the view after, the live layers and the fstab line as the task
asked, nothing left under the module's hidden names, the backup (when asked)
holding the old upper dir exactly, and a third run changes nothing.

Runs as root in a private mount namespace (``unshare --mount``) on tmpfs
scratch dirs; the host's /etc and /var/lib/overlayfs-mounts are shielded.
Set ``UPPER_CRASH_SEED`` to repeat a run's kill delays.
"""

import glob
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import upper_manifest  # noqa: E402  (beside this file)
from module_runner import InProcess  # noqa: E402

#: The kinds of run, how many kills each gets, and where its backup or layer goes.
KINDS = (
    ("reset", 5, {"state": "reset"}, ["work swapped", "upper swapped"]),
    ("reset, backup beside", 5, {"state": "reset", "backup": True}, ["backup in place"]),
    ("reset, backup elsewhere", 5, {"state": "reset", "backup": "{other}/backup"}, ["upper swapped", "backup in place"]),
    ("commit", 10, {"state": "committed", "layer": "{base}/layer"},
     ["unmounted", "layer in place", "work swapped", "layers persisted", "upper swapped", "mounted again"]),
    ("commit, layer elsewhere", 5, {"state": "committed", "layer": "{other}/layer"}, ["upper swapped"]),
)
OPTIONS = ["redirect_dir=on", "metacopy=on"]
BULK_LOWER, BULK_UPPER = 3000, 8000


# ---- the pytest side ----------------------------------------------------------------------------

def _pythonpath(tmp: str) -> str:
    """A dir where ``ansible_collections.overlayfs.mounts`` is this tree."""
    root = os.path.join(tmp, "pythonpath")
    os.makedirs(os.path.join(root, "ansible_collections", "overlayfs"))
    os.symlink(REPO, os.path.join(root, "ansible_collections", "overlayfs", "mounts"))
    return root


@pytest.mark.skipif(os.geteuid() != 0, reason="mounts overlays: needs root")
def test_sigkill_during_reset_and_commit(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([_pythonpath(str(tmp_path)), HERE]), PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.run(["unshare", "--mount", "--propagation", "private", sys.executable, os.path.abspath(__file__),
                           "--scratch", str(tmp_path / "scratch")],
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600, check=False)
    output = proc.stdout.decode("utf-8", "replace")
    sys.stdout.write(output)
    if proc.returncode != 0:
        pytest.fail("the crash test failed (rc=%d):\n%s" % (proc.returncode, output[-30000:]))


# ---- the module, in a process of its own ----------------------------------------------------------

def drive(args_path: str) -> None:
    """``--drive ARGS``: import overlay_upper, say ``ready``, wait for a line on stdin, run ``main()``."""
    from ansible.module_utils import basic
    from ansible_collections.overlayfs.mounts.plugins.modules import overlay_upper
    with open(args_path, "rb") as handle:
        basic._ANSIBLE_ARGS = handle.read()
    basic._ANSIBLE_PROFILE = "legacy"
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    sys.stdin.readline()
    overlay_upper.main()


class Driven:
    """One module process: started (its imports overlap the caller's work), let go, then killed or waited for."""

    def __init__(self, args: Dict[str, Any], args_path: str) -> None:
        with open(args_path, "w") as handle:
            json.dump({"ANSIBLE_MODULE_ARGS": dict(args, _ansible_check_mode=False, _ansible_diff=False)}, handle)
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--drive", args_path],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     start_new_session=True)
        self.started = 0.0

    def go(self) -> "Driven":
        """Wait until the module is imported, then let it run."""
        line = self.proc.stdout.readline()
        if line != b"ready\n":
            raise AssertionError("the driver did not start: %r %r" % (line, self.proc.stderr.read()[-3000:]))
        self.proc.stdin.write(b"go\n")
        self.proc.stdin.flush()
        self.started = time.monotonic()
        return self

    def kill_after(self, delay: float) -> bool:
        """SIGKILL the run's process group ``delay`` s after it was let go; False when it had ended before."""
        time.sleep(max(0.0, self.started + delay - time.monotonic()))
        ended = self.proc.poll() is not None
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.communicate()
        _wait_group_gone(self.proc.pid)
        return not ended

    def kill_when(self, event: Callable[[], bool]) -> Tuple[bool, float]:
        """SIGKILL the run's process group as soon as ``event()`` is seen true (polled without pause).

        ``(landed, seconds after go)``; not landed when the run ended first.
        """
        while self.proc.poll() is None and not event():
            pass
        at = time.monotonic() - self.started
        return self.kill_after(0.0), at

    def result(self) -> Tuple[Dict[str, Any], float]:
        """The module's result and how long it ran after it was let go."""
        out, err = self.proc.communicate()
        took = time.monotonic() - self.started
        try:
            return json.loads(out.decode("utf-8", "replace").strip().splitlines()[-1]), took
        except (ValueError, IndexError):
            raise AssertionError("the module printed no result (rc %s): %r %r"
                                 % (self.proc.returncode, out[-2000:], err[-3000:]))


def _wait_group_gone(pgid: int) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.01)
    raise AssertionError("process group %d still alive 5 s after SIGKILL" % pgid)


# ---- mountinfo, read here by plain splits -----------------------------------------------------------

def _unoctal(text: str) -> str:
    return text.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def mounts_under(base: str) -> List[Tuple[str, str, str]]:
    """``(mount point, fstype, super options)`` of every mount at or below ``base``, in mountinfo's order."""
    found = []
    with open("/proc/self/mountinfo", "rb") as handle:
        for line in handle.read().decode("utf-8", "surrogateescape").splitlines():
            left, _sep, right = line.partition(" - ")
            point = _unoctal(left.split(" ")[4])
            if point == base or point.startswith(base + "/"):
                fields = right.split(" ")
                found.append((point, fields[0], fields[2]))
    return found


def live_layers(options: str) -> List[str]:
    """The lower layers in an overlay's super options (``lowerdir+=`` entries or one ``lowerdir=``), top first."""
    layers: List[str] = []
    for option in options.split(","):
        key, _sep, value = option.partition("=")
        if key == "lowerdir+":
            layers.append(_unoctal(value))
        elif key == "lowerdir":
            layers.extend(_unoctal(value).split(":"))
    return layers


def fstab_line(fstab: str, merged: str) -> Dict[str, Any]:
    """The overlay line for ``merged`` in ``fstab``: its layers, upper, work and read options."""
    lines = []
    with open(fstab) as handle:
        for line in handle:
            fields = line.split()
            if len(fields) >= 4 and not line.startswith("#") and _unoctal(fields[1]) == merged:
                lines.append(fields)
    assert len(lines) == 1, "%d fstab lines for %s in %s" % (len(lines), merged, fstab)
    found: Dict[str, Any] = {"read": [], "line": " ".join(lines[0])}
    for option in lines[0][3].split(","):
        key, _sep, value = option.partition("=")
        if key == "lowerdir":
            found["lowerdir"] = [_unoctal(v) for v in value.split(":")]
        elif key == "lowerdir+":
            found.setdefault("lowerdir", []).append(_unoctal(value))
        elif key in ("upperdir", "workdir"):
            found[key] = _unoctal(value)
        elif key in ("redirect_dir", "metacopy"):
            found["read"].append(option)
    return found


# ---- the scratch trees ------------------------------------------------------------------------------

def sh(*argv: str) -> None:
    proc = subprocess.run(list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0:
        raise AssertionError("%s failed (rc %d): %s" % (" ".join(argv), proc.returncode,
                                                        proc.stdout.decode("utf-8", "replace").strip()))


def shield(scratch: str) -> Tuple[str, str]:
    """Two tmpfs scratch dirs (main, other), /etc overlaid and /var/lib/overlayfs-mounts empty, as targets have."""
    main, other = os.path.join(scratch, "main"), os.path.join(scratch, "other")
    for path in (main, other):
        os.makedirs(path)
        sh("mount", "-t", "tmpfs", "-o", "mode=755", "tmpfs", path)
    os.makedirs(main + "/shield/upper")
    os.makedirs(main + "/shield/work")
    sh("mount", "-t", "overlay", "overlay", "-o", "lowerdir=/etc,upperdir=%s/shield/upper,workdir=%s/shield/work"
       % (main, main), "/etc")
    os.makedirs("/var/lib/overlayfs-mounts", exist_ok=True)
    sh("mount", "-t", "tmpfs", "-o", "mode=755", "tmpfs", "/var/lib/overlayfs-mounts")
    return main, other


def build_template(main: str) -> Tuple[List[str], str, Dict[str, str]]:
    """Two lower dirs and an upper dir the kernel wrote every case into (plus a few thousand files)."""
    lowers = [main + "/lower1", main + "/lower2"]
    for path in lowers:
        os.makedirs(path)
    upper_manifest.populate_lowers(lowers)
    for i in range(BULK_LOWER):
        directory = "%s/bulk/d%02d" % (lowers[1], i % 20)
        os.makedirs(directory, exist_ok=True)
        upper_manifest.write(os.fsencode("%s/f%04d" % (directory, i)), b"lower %d\n" % i)
    template, merged = main + "/template", main + "/build-merged"
    for path in (template, main + "/build-work", merged):
        os.makedirs(path)
    sh("mount", "-t", "overlay", "overlay", "-o", "lowerdir=%s,upperdir=%s,workdir=%s/build-work,%s"
       % (":".join(lowers), template, main, ",".join(OPTIONS)), merged)
    try:
        notes = upper_manifest.change_through(merged)
        _bulk_changes(merged)
    finally:
        sh("umount", merged)
    shutil.rmtree(main + "/build-work")
    os.rmdir(merged)
    return lowers, template, notes


def _bulk_changes(merged: str) -> None:
    """New files, and lower files changed (copied up), deleted (whiteouts) and chowned (metacopy)."""
    for i in range(BULK_UPPER):
        directory = "%s/bulk_new/d%02d" % (merged, i % 30)
        os.makedirs(directory, exist_ok=True)
        upper_manifest.write(os.fsencode("%s/n%04d" % (directory, i)), b"upper %d\n" % i * (1 + i % 7))
    for i in range(0, BULK_LOWER, 10):
        path = "%s/bulk/d%02d/f%04d" % (merged, i % 20, i)
        if i % 30 == 0:
            os.unlink(path)
        elif i % 30 == 10:
            with open(path, "ab") as handle:
                handle.write(b"changed\n")
        else:
            os.chown(path, 1000 + i, 1000)


def view_of_lowers(main: str, lowers: List[str]) -> upper_manifest.Manifest:
    """What a reset must show: the lower layers alone, read through a read-only overlay."""
    point = main + "/lower-view"
    os.makedirs(point)
    sh("mount", "-t", "overlay", "overlay", "-o", "ro,lowerdir=%s" % ":".join(lowers), point)
    try:
        return upper_manifest.manifest(point)
    finally:
        sh("umount", point)
        os.rmdir(point)


# ---- one run: set up, kill, look, run again ---------------------------------------------------------

class Case:
    """One overlay of its own (a copy of the template upper over the shared lowers), mounted and in fstab."""

    def __init__(self, index: int, kind: str, task: Dict[str, Any], main: str, other: str, lowers: List[str]) -> None:
        self.index, self.kind, self.reset = index, kind, task["state"] == "reset"
        self.base, self.other = "%s/case-%02d" % (main, index), "%s/case-%02d" % (other, index)
        self.upper, self.work, self.merged = self.base + "/upper", self.base + "/work", self.base + "/merged"
        self.fstab, self.lowers = self.base + "/fstab", lowers
        self.decl = {"path": self.merged, "lowerdir": lowers, "upperdir": self.upper, "workdir": self.work,
                     "options": OPTIONS, "persist": "fstab", "fstab": self.fstab, "unit_dir": self.base + "/units",
                     "links_dir": self.base + "/links"}
        self.task = dict(self.decl, **{k: v.format(base=self.base, other=self.other) if isinstance(v, str) else v
                                       for k, v in task.items()})
        self.layer = self.task.get("layer")
        self.staging = "%s/.upper.overlay-upper" % self.base

    def prepare(self, template: str, run: InProcess) -> None:
        os.makedirs(self.other)
        os.makedirs(self.base + "/work")
        os.makedirs(self.merged)
        sh("cp", "-a", "--sparse=always", template, self.upper)
        with open(self.fstab, "w") as handle:
            handle.write("# the crash test's fstab\n")
        done = run("overlay_mount", self.decl)
        assert not done.get("failed") and done.get("changed"), "overlay_mount: %s" % done

    def backups(self) -> List[str]:
        """The backup dirs there are (one expected after a reset with a backup, none otherwise)."""
        beside = glob.glob(glob.escape(self.upper) + ".backup-*")
        given = [self.task["backup"]] if isinstance(self.task.get("backup"), str) else []
        return beside + [path for path in given if os.path.lexists(path)]

    def events(self) -> Dict[str, Callable[[], bool]]:
        """Points of a run seen from outside (no hook in the module): a kill lands right after each."""
        upper, work = os.lstat(self.upper).st_ino, os.lstat(self.work).st_ino

        def swapped() -> bool:
            return os.lstat(self.upper).st_ino != upper

        return {
            "journal written": lambda: os.path.exists(self.staging + "/journal.json"),
            "unmounted": lambda: not [m for m in mounts_under(self.merged) if m[0] == self.merged],
            "layer in place": lambda: bool(self.layer) and os.path.isdir(self.layer),
            "work swapped": lambda: os.lstat(self.work).st_ino != work,
            "layers persisted": lambda: bool(self.layer) and fstab_line(self.fstab, self.merged).get("lowerdir") == self.expected_layers(),
            "upper swapped": swapped,
            "backup in place": lambda: bool(self.backups()),
            "mounted again": lambda: swapped() and bool([m for m in mounts_under(self.merged) if m[0] == self.merged]),
        }

    def expected_layers(self) -> List[str]:
        return list(self.lowers) if self.reset else [self.layer] + list(self.lowers)

    def clean(self) -> None:
        for point, _fstype, _options in reversed(mounts_under(self.base)):
            sh("umount", point)
        shutil.rmtree(self.base)
        shutil.rmtree(self.other)


def which_view(seen: upper_manifest.Manifest, views: Dict[str, upper_manifest.Manifest], where: str) -> str:
    """``before`` or ``after``, whichever ``seen`` is; AssertionError naming the differences otherwise."""
    diffs = {}
    if len(views) == 2 and views["before"] is views["after"]:
        views = {"before=after": views["before"]}
    for name, view in views.items():
        diffs[name] = upper_manifest.compare(view, seen, names=(name, where))
        if not diffs[name]:
            return name
    closest = min(diffs, key=lambda name: len(diffs[name]))
    raise AssertionError("%s shows neither the view before nor the view after; %d differences from %s:\n  %s"
                         % (where, len(diffs[closest]), closest, "\n  ".join(diffs[closest][:15])))


def without_root_time(view: upper_manifest.Manifest) -> upper_manifest.Manifest:
    """A reset's view compared with the lowers': the merged root's mtime is the upper root's, not a lower's."""
    out = dict(view)
    out[b"."] = {k: v for k, v in view[b"."].items() if k != "mtime_ns"}
    return out


def look_after_kill(case: Case, views: Dict[str, upper_manifest.Manifest], main: str, other: str) -> Dict[str, str]:
    """What the kill left: stray mounts (none allowed), the live view and the boot view (before or after)."""
    mounts = mounts_under(main) + mounts_under(other)
    stray = [m[0] for m in mounts if m[0] not in (main, other, case.merged)]
    assert not stray, "mounts left behind by the killed run: %s" % stray
    at = [m for m in mounts if m[0] == case.merged]
    assert len(at) <= 1, "the overlay is mounted %d times at %s" % (len(at), case.merged)
    seen = {"journal": "yes" if os.path.exists(case.staging + "/journal.json") else "no"}
    seen["live"] = which_view(_norm(case, upper_manifest.manifest(case.merged)), views, "the live overlay") if at else "-"
    line = fstab_line(case.fstab, case.merged)
    assert (line.get("upperdir"), line.get("workdir")) == (case.upper, case.work), "fstab line: %s" % line
    assert line.get("lowerdir") in (case.lowers, [case.layer] + case.lowers), "fstab line: %s" % line
    pending = os.path.isdir(os.path.join(case.work, "work", "incompat", "overlayfs-mounts-pending"))
    if not at and pending:
        # A commit between its two switches: the kernel must refuse the overlay rather than show either half.
        refused = subprocess.run(["mount", "-T", case.fstab, "-o", "ro", case.merged], capture_output=True, check=False)
        assert refused.returncode != 0, "a work dir with the pending marker was mounted"
        assert seen["journal"] == "yes", "the pending marker without a journal: nothing would clear it"
        seen["boot"] = "refused (pending marker, %s)" % ("new layers" if line["lowerdir"] != case.lowers else "old layers")
        return seen
    if not at:
        sh("mount", "-T", case.fstab, "-o", "ro", case.merged)
        try:
            boot = upper_manifest.manifest(case.merged)
        finally:
            sh("umount", case.merged)
        how = "mount -T"
    else:
        boot, how = _upper_as_lower(case, line), "upper as a lower"
    boot_is = which_view(_norm(case, boot), views, "the overlay as at boot (%s)" % how)
    seen["boot"] = "%s (%s, %s)" % (boot_is, how, "new layers" if line["lowerdir"] != case.lowers else "old layers")
    return seen


def _upper_as_lower(case: Case, line: Dict[str, Any]) -> upper_manifest.Manifest:
    """The fstab line's view while the overlay is mounted: its upper dir on top of its layers, read-only."""
    point = case.base + "/boot-view"
    os.makedirs(point)
    options = "ro,lowerdir=%s,%s" % (":".join([case.upper] + line["lowerdir"]), ",".join(line["read"]))
    sh("mount", "-t", "overlay", "overlay", "-o", options.rstrip(","), point)
    try:
        return upper_manifest.manifest(point)
    finally:
        sh("umount", point)
        os.rmdir(point)


def _norm(case: Case, view: upper_manifest.Manifest) -> upper_manifest.Manifest:
    return without_root_time(view) if case.reset else view


def check_finished(case: Case, result: Dict[str, Any], journal: bool, views: Dict[str, upper_manifest.Manifest],
                   raw_upper: Optional[upper_manifest.Manifest], run: InProcess) -> None:
    """After the run that followed the kill: the task done, as asked, with nothing left over."""
    assert not result.get("failed"), "the run after the kill failed: %s" % result.get("msg", result)
    assert bool(result.get("recovered")) == journal, "recovered=%r with%s a journal left" % (
        result.get("recovered"), "" if journal else "out")
    at = [m for m in mounts_under(case.merged) if m[0] == case.merged]
    assert len(at) == 1 and at[0][1] == "overlay", "mounted at %s: %s" % (case.merged, at)
    assert live_layers(at[0][2]) == case.expected_layers(), "live layers %s" % live_layers(at[0][2])
    assert "upperdir=%s," % case.upper in at[0][2] + ",", "live upper: %s" % at[0][2]
    which = which_view(_norm(case, upper_manifest.manifest(case.merged)), {"after": views["after"]}, "the overlay")
    assert which == "after"
    assert fstab_line(case.fstab, case.merged)["lowerdir"] == case.expected_layers(), "fstab layers"
    assert os.listdir(case.upper) == [], "the upper dir is not empty: %s" % os.listdir(case.upper)[:5]
    hidden = [p for p in os.listdir(case.base) + os.listdir(case.other) if p.startswith(".")]
    assert not hidden, "left under hidden names: %s" % hidden
    backups = case.backups()
    if raw_upper is None:
        assert not backups, "backups nobody asked for: %s" % backups
    else:
        assert len(backups) == 1, "one backup expected: %s" % backups
        diff = upper_manifest.compare(raw_upper, upper_manifest.manifest(backups[0], keep_overlay_xattrs=True),
                                      names=("old upper", "backup"))
        assert not diff, "the backup %s is not the old upper dir:\n  %s" % (backups[0], "\n  ".join(diff[:15]))
    again = run("overlay_upper", case.task)
    assert not again.get("failed") and again.get("changed") is False, "the third run: %s" % again


def one_case(case: Case, kill: Any, views: Dict[str, upper_manifest.Manifest], env: Dict[str, Any]) -> Dict[str, Any]:
    """Prepare, run (killed after ``kill`` s, or when the event ``kill`` names is seen, or not killed), look,
    run again; what happened."""
    killed_run = Driven(case.task, case.base + ".args-killed.json")
    next_run = Driven(case.task, case.base + ".args-next.json")
    case.prepare(env["template"], env["run"])
    before = upper_manifest.manifest(case.merged)
    which_view(_norm(case, before), {"before": views["before"]}, "the overlay before the run")
    raw_upper = upper_manifest.manifest(case.upper, keep_overlay_xattrs=True) if case.task.get("backup") else None
    events = case.events()
    killed_run.go()
    if kill is None:
        result, took = killed_run.result()
        assert not result.get("failed") and result.get("changed"), "the unkilled run: %s" % result.get("msg", result)
        seen = {"took": took, "landed": False}
    elif isinstance(kill, str):
        landed, at = killed_run.kill_when(events[kill])
        seen = {"landed": landed, "at": at}
    else:
        seen = {"landed": killed_run.kill_after(kill)}
    seen.update(look_after_kill(case, views, env["main"], env["other"]))
    journal = seen["journal"] == "yes"
    result, _took = next_run.go().result()
    seen["recovered"] = result.get("recovered")
    check_finished(case, result, journal, views, raw_upper, env["run"])
    return seen


# ---- the whole test, in the private mount namespace ---------------------------------------------------

def setup(scratch: str) -> Dict[str, Any]:
    """Scratch dirs, lowers, the template upper and the views a run may show."""
    main, other = shield(scratch)
    lowers, template, notes = build_template(main)
    probe, merged = main + "/probe-upper", main + "/probe-merged"
    sh("cp", "-a", "--sparse=always", template, probe)
    diff = upper_manifest.compare(upper_manifest.manifest(template, keep_overlay_xattrs=True),
                                  upper_manifest.manifest(probe, keep_overlay_xattrs=True), names=("template", "cp -a"))
    assert not diff, "cp -a does not copy an upper dir exactly:\n  %s" % "\n  ".join(diff[:15])
    os.makedirs(main + "/probe-work")
    os.makedirs(merged)
    sh("mount", "-t", "overlay", "overlay", "-o", "lowerdir=%s,upperdir=%s,workdir=%s/probe-work,%s"
       % (":".join(lowers), probe, main, ",".join(OPTIONS)), merged)
    try:
        before = upper_manifest.manifest(merged)
    finally:
        sh("umount", merged)
    for path in (probe, main + "/probe-work", merged):
        shutil.rmtree(path)
    lower_view = without_root_time(view_of_lowers(main, lowers))
    skipped = sorted(case for case, note in notes.items() if note != "done")
    print("tree: %d entries in the merged view, %d in the upper dir; cases not made here: %s"
          % (len(before), len(upper_manifest.manifest(template)), skipped or "none"), flush=True)
    return {"main": main, "other": other, "lowers": lowers, "template": template, "run": InProcess(),
            "views": {"reset": {"before": without_root_time(before), "after": lower_view},
                      "committed": {"before": before, "after": before}}}


def _line(number: str, case: Case, kill: Any, duration: float, seen: Dict[str, Any]) -> str:
    if kill is None:
        when = "not killed (%.3fs)" % duration
    elif isinstance(kill, str):
        when = "killed when %s (%.3fs)" % (kill, seen.get("at", 0.0))
    else:
        when = "killed at %.3fs of %.3fs" % (kill, duration)
    when += "" if kill is None or seen.get("landed") else " (had ended)"
    return "%s %-24s %-40s journal %-3s live %-12s boot %-38s next: %s" % (
        number, case.kind, when, seen.get("journal"), seen.get("live"), seen.get("boot"), seen.get("recovered"))


def _count(tally: Dict[str, int], seen: Dict[str, Any]) -> None:
    words = {key: str(seen.get(key)).split(" (", maxsplit=1)[0] for key in ("landed", "journal", "live", "boot")}
    words["next"] = str(seen.get("recovered")).split(" of ", maxsplit=1)[0]
    for key, word in words.items():
        tally["%s %s" % (key, word)] = tally.get("%s %s" % (key, word), 0) + 1


def crash(scratch: str) -> int:
    """The whole test; 0 when every run passed."""
    start = time.monotonic()
    env = setup(scratch)
    seed = int(os.environ.get("UPPER_CRASH_SEED") or random.randrange(1 << 30))
    rng = random.Random(seed)
    print("seed %d (UPPER_CRASH_SEED); set-up %.1fs" % (seed, time.monotonic() - start), flush=True)
    failures: List[str] = []
    tally: Dict[str, int] = {}
    counter = {"case": 0, "kill": 0}
    for kind, count, task, events in KINDS:
        duration = 0.0
        plan: List[Any] = [None]
        while plan:
            kill = plan.pop(0)
            seen = _one(counter, kind, task, kill, duration, env, failures)
            if kill is None:
                duration = seen.get("took") or 1.0
                delays: List[Any] = [duration * (k + rng.random()) / count for k in range(count)]
                rng.shuffle(delays)
                plan = delays + list(events)
            elif seen:
                _count(tally, seen)
    print("%d kills (%d at random delays, the rest at points seen from outside) in %.1fs; %s"
          % (counter["kill"], sum(k[1] for k in KINDS), time.monotonic() - start,
             ", ".join("%s: %d" % item for item in sorted(tally.items()))), flush=True)
    for failure in failures:
        print("FAILED " + failure, flush=True)
    return 1 if failures else 0


def _one(counter: Dict[str, int], kind: str, task: Dict[str, Any], kill: Any, duration: float, env: Dict[str, Any],
         failures: List[str]) -> Dict[str, Any]:
    case = Case(counter["case"], kind, task, env["main"], env["other"], env["lowers"])
    counter["case"] += 1
    counter["kill"] += kill is not None
    number = "ref    " if kill is None else "kill %2d" % counter["kill"]
    try:
        seen = one_case(case, kill, env["views"][task["state"]], env)
        print(_line(number, case, kill, duration or seen["took"], seen), flush=True)
        return seen
    except AssertionError as error:
        failures.append("%s %s (kill %s): %s" % (number, kind, kill, error))
        print("%s %-24s %s FAILED: %s" % (number, kind, kill, str(error)[:3000]), flush=True)
        return {}
    finally:
        case.clean()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--drive"]:
        drive(sys.argv[2])
    elif sys.argv[1:2] == ["--scratch"] and len(sys.argv) == 3:
        sys.exit(crash(sys.argv[2]))
    else:
        sys.exit("usage: %s --scratch DIR (as root, in a private mount namespace) | --drive ARGS_FILE" % sys.argv[0])
