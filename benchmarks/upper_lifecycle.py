#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Resetting and committing an overlay's upper dir, against ``rm -rf`` plus a mount and ``cp -a``.

On the disk the script runs on (a temp dir under ``--dir``, default
/var/tmp; tmpfs is refused), it makes a lower layer, mounts an overlay on it
with ``redirect_dir=on,metacopy=on`` and writes, THROUGH the live overlay,
``--files`` files of ``--mbytes`` MB in all (default 10,000 and 100: sizes
drawn from a log-normal spread, most a few KB, some up to a few MB; in
nested dirs), plus what makes an upper dir realistic: deleted lower files
(whiteouts), a lower dir deleted and made again (opaque), renamed lower dirs
(redirects), appended lower files (copied up), chmod-ed lower files
(metadata-only copies), renamed new files, symlinks and hard links. Then it
times, each on a tree of its own, repeated ``--runs`` times (medians):

* ``cp -a upper dest``, and ``cp -a upper dest; sync -f dest`` (the module
  makes its layer durable with syncfs, so the second is the like-for-like
  baseline of a commit);
* commit: ``overlayfs.mounts.overlay_upper`` with ``state: committed``;
* ``umount merged; rm -rf upper/* work/*; mount -t overlay ...`` (one shell);
* reset: ``overlay_upper`` with ``state: reset``;
* the floors: a fresh Python process that does nothing; one that imports
  Ansible's module support and the module; the module run when there is
  nothing to do (an empty upper dir), for both states.

The module runs as its own ``main()`` in a fresh Python process (the venv's),
its arguments injected as AnsiballZ hands them over, so what is timed is the
module process on the target, not the controller. The same process records,
through thin wrappers around the module's functions, how long each phase of
the run took (observe, holder scan, upper_usage, write_layer, syncs, swap,
mount again, remove_tree, journal). With ``--playbook`` one ansible-playbook
run of each state (and one of a one-task ping playbook) is timed too, for
context.

Before every timed step the script runs ``sync`` and, with ``--caches drop``
(the default), ``echo 3 > /proc/sys/vm/drop_caches``, for baselines and
subjects alike (``--caches keep``: sync only). The steps run in rounds, each
step once per round, the order rotated between rounds. After each step the
result is checked: after a commit the merged view equals the one before
(paths, types, modes, owners, sizes, file mtimes, symlink targets, the
content of sampled files) and the new layer holds what was written; after a
reset or ``rm -rf`` + mount it equals the lower layer's view.

Everything runs in a private mount namespace (the script re-executes itself
under ``unshare --mount --propagation private``) with a tmpfs on /run of its
own (the module's host lock). Every mount and dir is removed at the end, on
an error, and on SIGINT or SIGTERM. ``--cap`` (default 600 s) bounds the
whole run: no step starts after it, and a running step is killed at it.

``--profile`` then runs one commit and one reset under cProfile (on fresh
trees) and prints where their time goes; ``--profile-dump DIR`` keeps the
pstats files.

    python3 benchmarks/upper_lifecycle.py [--files 10000] [--mbytes 100] [--runs 3] [--quick]
        [--dir /var/tmp] [--caches drop|keep] [--cap 600] [--playbook] [--profile] [-v]

Target: a commit within 1.5x of ``cp -a`` of the same tree on the same disk,
a reset within 1.5x of ``rm -rf`` plus a mount, both measured in the same
run. Reported, not enforced.
"""

import argparse
import json
import os
import pstats
import random
import signal
import stat
import statistics
import subprocess
import sys
import tempfile
import time
import zlib

import _bench

TARGET = 1.5
OPTIONS = ["redirect_dir=on", "metacopy=on"]
#: Files whose content the checks compare (plus their metadata, which is compared for all).
SAMPLED = 200

# The module process: imports, phase timers, main() with injected arguments, the result in a file.
DRIVER = r'''
import io, json, sys, time
start = time.monotonic()
root, args_file, out_file, mode = sys.argv[1:5]
sys.path.insert(0, root)
from ansible.module_utils import basic
from ansible_collections.overlayfs.mounts.plugins.modules import overlay_upper
imported = time.monotonic()
if mode == "imports":
    with open(out_file, "w") as handle:
        json.dump({"import_s": imported - start}, handle)
    sys.exit(0)
from ansible_collections.overlayfs.mounts.plugins.module_utils._converge import upper_intent, upper_life
from ansible_collections.overlayfs.mounts.plugins.module_utils._host import layer_copy, upper_journal
phases = {}

def wrap(owner, name, label):
    inner = owner.__dict__[name]
    def timed(*args, **kwargs):
        began = time.monotonic()
        try:
            return inner(*args, **kwargs)
        finally:
            cell = phases.setdefault(label, [0, 0.0])
            cell[0] += 1
            cell[1] += time.monotonic() - began
    setattr(owner, name, timed)

for owner, name, label in (
        (upper_intent, "observe", "observe"),
        (upper_intent.Intent, "refuse_if_held", "holder scan"),
        (upper_life, "upper_usage", "upper_usage"),
        (upper_journal, "write_journal", "journal write"),
        (upper_journal, "remove_journal", "journal remove"),
        (upper_journal, "fsync_dir", "fsync_dir (all)"),
        (upper_intent.Intent, "unmount", "unmount"),
        (upper_life, "_write_layer", "write layer (all)"),
        (layer_copy, "write_layer", "layer_copy.write_layer"),
        (layer_copy, "sync_path", "sync_path (syncfs)"),
        (upper_life, "_swap", "swap (all)"),
        (layer_copy, "make_empty_like", "make_empty_like"),
        (upper_journal, "exchange", "exchange"),
        (upper_life, "_mount_again", "mount again"),
        (layer_copy, "remove_tree", "remove_tree")):
    wrap(owner, name, label)
with open(args_file) as handle:
    payload = json.load(handle)
basic._ANSIBLE_ARGS = json.dumps({"ANSIBLE_MODULE_ARGS": payload}).encode()
basic._ANSIBLE_PROFILE = "legacy"
out = io.StringIO()
saved, sys.stdout = sys.stdout, out
profile = None
if mode != "-":
    import cProfile
    profile = cProfile.Profile()
    profile.enable()
began = time.monotonic()
try:
    overlay_upper.main()
except SystemExit:
    pass
finally:
    ended = time.monotonic()
    if profile is not None:
        profile.disable()
        profile.dump_stats(mode)
    sys.stdout = saved
with open(out_file, "w") as handle:
    json.dump({"import_s": imported - start, "main_s": ended - began, "phases": phases,
               "result": json.loads(out.getvalue().strip().splitlines()[-1])}, handle)
'''

# The shell baseline of a reset: unmount, remove what the upper and work dir hold, mount again.
RM_MOUNT = ('set -e; umount "$MERGED"; shopt -s dotglob nullglob; rm -rf -- "$UPPER"/* "$WORK"/*; '
            'mount -t overlay overlay -o "$OPTS" "$MERGED"')


class Cap(Exception):
    """The time cap was reached."""


# --- the trees -----------------------------------------------------------------------------------

def make_lower(lower, files, rng):
    """The lower layer: about ``files`` files (1 to 16 KB) in etc/, usr/share/pkgNN/, srv/oldN/."""
    block = rng.randbytes(16384)
    layout = [("etc", max(files // 4, 8))]
    layout += [("usr/share/pkg%02d" % i, max(files // 40, 4)) for i in range(10)]
    layout += [("srv/old%d" % i, max(files // 40, 4)) for i in range(4)]
    for rel, count in layout:
        os.makedirs(os.path.join(lower, rel))
        for i in range(count):
            with open(os.path.join(lower, rel, "f%04d.conf" % i), "wb") as handle:
                handle.write(block[:rng.randint(1024, 16384)])


def _sizes(rng, count, total):
    """``count`` file sizes (log-normal: median a few KB, a long tail) that add up to ``total`` bytes."""
    raw = [rng.lognormvariate(0.0, 1.6) for _unused in range(count)]
    scale = total / sum(raw)
    sizes = [int(r * scale) for r in raw]
    sizes[0] += total - sum(sizes)
    return sizes


def _edit_lower(merged, rng, small):
    """What is done to the lower layer's files through the overlay; returns the files it leaves in the upper."""
    etc = sorted(os.listdir(os.path.join(merged, "etc")))
    for name in etc[:small]:  # deleted: whiteouts
        os.unlink(os.path.join(merged, "etc", name))
    for name in etc[small:2 * small]:  # appended: copied up whole
        with open(os.path.join(merged, "etc", name), "ab") as handle:
            handle.write(b"# changed\n")
    for name in etc[2 * small:3 * small]:  # chmod-ed: metadata-only copies
        os.chmod(os.path.join(merged, "etc", name), 0o600)
    subprocess.run(["rm", "-rf", os.path.join(merged, "srv", "old0")], check=True)
    os.mkdir(os.path.join(merged, "srv", "old0"))  # made again: an opaque dir
    with open(os.path.join(merged, "srv", "old0", "new.conf"), "w") as handle:
        handle.write("new\n")
    os.rename(os.path.join(merged, "srv", "old1"), os.path.join(merged, "srv", "moved1"))  # redirects
    os.rename(os.path.join(merged, "srv", "old2"), os.path.join(merged, "srv", "moved2"))
    return 2 * small + 1


def write_changes(merged, files, total, seed):
    """Write the changes through the live overlay so that its upper holds ``files`` files of ``total`` bytes."""
    rng = random.Random(seed)
    small = max(files // 500, 2)
    left = files - _edit_lower(merged, rng, small)
    sizes = _sizes(rng, left, total)
    block = os.urandom(max(sizes) + 1)
    per_dir = 40
    for i, size in enumerate(sizes):
        rel = os.path.join("app", "d%02d" % (i // (per_dir * 25)), "e%02d" % (i // per_dir % 25))
        if i % per_dir == 0:
            os.makedirs(os.path.join(merged, rel), exist_ok=True)
        with open(os.path.join(merged, rel, "file%05d.dat" % i), "wb") as handle:
            handle.write(block[:size])
    app = os.path.join(merged, "app", "d00", "e00")
    extra = min(small, per_dir // 3)  # all in the first dir
    for i in range(extra):
        os.rename(os.path.join(app, "file%05d.dat" % i), os.path.join(app, "renamed%05d.dat" % i))
        os.symlink("file%05d.dat" % (i + extra), os.path.join(app, "link%05d" % i))
        os.link(os.path.join(app, "file%05d.dat" % (i + 2 * extra)), os.path.join(app, "hard%05d.dat" % i))


def tree_counts(top):
    """``(files, bytes, dirs, whiteouts, others)`` of a dir as it is on disk (a file's hard links counted once)."""
    files = size = dirs = whiteouts = others = 0
    seen = set()
    for where, subdirs, names in os.walk(top):
        dirs += len(subdirs)
        for name in names:
            st = os.lstat(os.path.join(where, name))
            if stat.S_ISREG(st.st_mode):
                if (st.st_dev, st.st_ino) not in seen:
                    seen.add((st.st_dev, st.st_ino))
                    files += 1
                    size += st.st_size
            elif stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                whiteouts += 1
            else:
                others += 1
    return files, size, dirs, whiteouts, others


def manifest(top):
    """What a merged view shows: {path: metadata}, and the CRC of every file's content among a sample."""
    found = {}
    for where, subdirs, names in os.walk(top):
        for name in subdirs + names:
            path = os.path.join(where, name)
            st = os.lstat(path)
            fmt = stat.S_IFMT(st.st_mode)
            meta = [fmt, st.st_mode, st.st_uid, st.st_gid]
            if stat.S_ISREG(fmt):
                meta += [st.st_size, st.st_mtime_ns]
            elif stat.S_ISLNK(fmt):
                meta.append(os.readlink(path))
            found[os.path.relpath(path, top)] = meta
    regular = sorted(p for p, m in found.items() if stat.S_ISREG(m[0]))
    for rel in regular[::max(len(regular) // SAMPLED, 1)]:
        with open(os.path.join(top, rel), "rb") as handle:
            found[rel].append(zlib.crc32(handle.read()))
    return found


def differences(before, after):
    """A few words on how two manifests differ ('' when they are the same)."""
    if before == after:
        return ""
    gone = sorted(set(before) - set(after))
    new = sorted(set(after) - set(before))
    changed = sorted(p for p in set(before) & set(after) if before[p] != after[p])
    return "%d gone (%s), %d new (%s), %d changed (%s)" % (
        len(gone), gone[:3], len(new), new[:3], len(changed),
        ["%s %s -> %s" % (p, before[p], after[p]) for p in changed[:3]])


# --- the machinery -------------------------------------------------------------------------------

def fs_type(path):
    found = subprocess.run(["findmnt", "-n", "-o", "FSTYPE,SOURCE", "--target", path], stdout=subprocess.PIPE,
                           universal_newlines=True, check=True)
    return found.stdout.split()


def mounts_under(top):
    """The mount points at or below ``top``, deepest last (as mountinfo lists them)."""
    points = []
    with open("/proc/self/mountinfo") as handle:
        for line in handle:
            point = _bench._unescape(line.split()[4])
            if point == top or point.startswith(top + "/"):
                points.append(point)
    return points


def unmount_all(top):
    for point in reversed(mounts_under(top)):
        subprocess.run(["umount", "-l", point], check=False)


def _on_sigterm(signum, frame):
    raise SystemExit(128 + signum)


class Bench(object):
    """The scratch dir, the overlays made in it, and the timed steps; ``samples[case]`` holds the seconds."""

    def __init__(self, args, root, venv):
        self.args = args
        self.root = root
        self.python = os.path.join(venv, "bin", "python")
        self.lower = os.path.join(root, "lower")
        self.coll = os.path.join(root, "collections")
        self.deadline = time.monotonic() + args.cap
        self.samples = {}
        self.runs = {}  # case -> the driver's reports (main_s, phases)
        self.serial = 0
        self.lower_view = None
        self.upper_counts = None
        os.makedirs(os.path.join(self.coll, "ansible_collections", "overlayfs"))
        os.symlink(_bench.REPO, os.path.join(self.coll, "ansible_collections", "overlayfs", "mounts"))
        for sub in ("units", "links", "tmp"):
            os.makedirs(os.path.join(root, sub))
        with open(os.path.join(root, "fstab"), "w") as handle:
            handle.write("# scratch fstab of benchmarks/upper_lifecycle.py\n")

    def left(self):
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise Cap()
        return left

    def settle(self):
        """Before every timed step: dirty pages to disk and, with --caches drop, the page cache dropped."""
        subprocess.run(["sync"], check=True)
        if self.args.caches == "drop":
            with open("/proc/sys/vm/drop_caches", "w") as handle:
                handle.write("3\n")

    def timed(self, case, command, env=None, record=True):
        """Seconds of one run of ``command`` (after ``settle``); recorded under ``case``; stdout returned too."""
        self.settle()
        timeout = self.left()
        start = time.monotonic()
        proc = subprocess.Popen(command, env=env, cwd=self.root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                universal_newlines=True, start_new_session=True)
        try:
            out = proc.communicate(timeout=timeout)[0]
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise Cap()
        except BaseException:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
        wall = time.monotonic() - start
        if proc.returncode != 0:
            raise SystemExit("%s: %s failed (rc %d): %s" % (case, command[0], proc.returncode, out[-3000:]))
        if record:
            self.samples.setdefault(case, []).append(wall)
        if self.args.verbose:
            sys.stderr.write("  %-34s %8.3f s\n" % (case, wall))
        return wall, out

    # -- overlays --

    def mount(self, case):
        opts = "lowerdir=%s,upperdir=%s,workdir=%s,%s" % (self.lower, case["upper"], case["work"], ",".join(OPTIONS))
        subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts, case["merged"]], check=True)
        return opts

    def fresh_case(self, populate=True):
        """A new overlay on the lower layer, mounted; with ``populate``, the changes written through it."""
        self.serial += 1
        top = os.path.join(self.root, "case%03d" % self.serial)
        case = {key: os.path.join(top, key) for key in ("upper", "work", "merged")}
        case.update(top=top, layer=os.path.join(top, "layers", "new"))
        for key in ("upper", "work", "merged"):
            os.makedirs(case[key])
        case["opts"] = self.mount(case)
        if self.lower_view is None:
            self.lower_view = manifest(case["merged"])
        if populate:
            write_changes(case["merged"], self.args.files, self.args.mbytes * 1000 * 1000, self.serial)
        return case

    def drop_case(self, case):
        unmount_all(case["top"])
        subprocess.run(["rm", "-rf", "--one-file-system", case["top"]], check=True)

    def module_args(self, case, state, **extra):
        return dict(path=case["merged"], lowerdir=[self.lower], upperdir=case["upper"], workdir=case["work"],
                    options=OPTIONS, persist="none", fstab=os.path.join(self.root, "fstab"),
                    unit_dir=os.path.join(self.root, "units"), links_dir=os.path.join(self.root, "links"),
                    state=state, **extra)

    def run_module(self, label, args, changed, profile="-", record=True):
        """One module process (``DRIVER``) with ``args``; its report. Fails unless ``changed`` is as expected."""
        args_file = os.path.join(self.root, "args.json")
        out_file = os.path.join(self.root, "out.json")
        payload = dict(args, _ansible_check_mode=False, _ansible_diff=False,
                       _ansible_tmpdir=tempfile.mkdtemp(dir=os.path.join(self.root, "tmp")))
        with open(args_file, "w") as handle:
            json.dump(payload, handle)
        if os.path.exists(out_file):
            os.unlink(out_file)
        self.timed(label, [self.python, "-c", DRIVER, self.coll, args_file, out_file, profile], record=record)
        with open(out_file) as handle:
            report = json.load(handle)
        result = report.get("result", {})
        if result.get("failed") or (changed is not None and result.get("changed") != changed):
            raise SystemExit("%s: unexpected result: %s" % (label, json.dumps(result)[:3000]))
        if record:
            self.runs.setdefault(label, []).append(report)
        if self.args.verbose:
            heavy = sorted(report["phases"].items(), key=lambda item: -item[1][1])[:4]
            sys.stderr.write("    main() %.3f s: %s\n" % (report["main_s"], ", ".join("%s %.3f" % (k, v[1]) for k, v in heavy)))
        return report

    # -- the steps of a round --

    def commit_group(self, turn):
        """``cp -a`` and ``cp -a`` + sync of one tree's upper dir, then the commit of that tree."""
        case = self.fresh_case()
        before = manifest(case["merged"])
        upper = tree_counts(case["upper"])
        self.upper_counts = upper
        copies = [("cp -a", ["cp", "-a", case["upper"], os.path.join(case["top"], "copy")]),
                  ("cp -a + sync", ["sh", "-c", 'cp -a "$0" "$1" && sync -f "$1"', case["upper"],
                                    os.path.join(case["top"], "copy")])]
        try:
            for label, command in copies[turn % 2:] + copies[:turn % 2]:
                self.timed(label, command)
                copied = tree_counts(os.path.join(case["top"], "copy"))
                if copied != upper:
                    raise SystemExit("%s: the copy holds %r, the upper %r" % (label, copied, upper))
                subprocess.run(["rm", "-rf", os.path.join(case["top"], "copy")], check=True)
            report = self.run_module("commit", self.module_args(case, "committed", layer=case["layer"]), True)
            self.check_commit(case, before, upper, report["result"])
        finally:
            self.drop_case(case)

    def check_commit(self, case, before, upper, result):
        found, _stacked = _bench.live_overlays(case["top"])
        live = found.get(case["merged"])
        if live is None or live[0] != [case["layer"], self.lower] or live[1] != case["upper"]:
            raise SystemExit("commit: the overlay is mounted as %r" % (live,))
        problem = differences(before, manifest(case["merged"]))
        if problem:
            raise SystemExit("commit: the merged view changed: %s" % problem)
        if os.listdir(case["upper"]) or tree_counts(case["layer"])[0] < upper[0]:
            raise SystemExit("commit: the upper dir is not empty, or the layer holds fewer files than it did")
        counts = result.get("layer_counts", {})
        if counts.get("whiteouts", 0) < 1 or counts.get("redirects", 0) < 1 or counts.get("metacopy", 0) < 1:
            raise SystemExit("commit: the layer's counts miss whiteouts, redirects or metacopy: %r" % counts)

    def reset_group(self, kind):
        """``rm -rf`` + mount (``kind`` "rm"), or the module's reset, of one tree; then the lower view is back."""
        case = self.fresh_case()
        try:
            if kind == "rm":
                env = dict(os.environ, MERGED=case["merged"], UPPER=case["upper"], WORK=case["work"], OPTS=case["opts"])
                self.timed("rm -rf + mount", ["bash", "-c", RM_MOUNT], env=env)
            else:
                self.run_module("reset", self.module_args(case, "reset"), True)
            label = "rm -rf + mount" if kind == "rm" else "reset"
            if case["merged"] not in _bench.live_overlays(case["top"])[0] or os.listdir(case["upper"]):
                raise SystemExit("%s: the overlay is not mounted again on an empty upper dir" % label)
            problem = differences(self.lower_view, manifest(case["merged"]))
            if problem:
                raise SystemExit("%s: the merged view is not the lower layer's: %s" % (label, problem))
        finally:
            self.drop_case(case)

    def floors(self, case):
        """Python's start, Python with the module's imports, and the module with nothing to do."""
        self.timed("python -c pass", [self.python, "-c", "pass"])
        out_file = os.path.join(self.root, "imports.json")
        self.timed("python + imports", [self.python, "-c", DRIVER, self.coll, "-", out_file, "imports"])
        self.run_module("nothing to do: reset", self.module_args(case, "reset"), False)
        self.run_module("nothing to do: commit", self.module_args(case, "committed", layer=case["layer"]), False)

    def rounds(self):
        """``--runs`` rounds of every step, in an order rotated between rounds; returns the rounds done."""
        floor = self.fresh_case(populate=False)
        units = [self.commit_group, lambda r: self.reset_group("rm"),
                 lambda r: self.reset_group("module"), lambda r: self.floors(floor)]
        done = 0
        try:
            for rep in range(self.args.runs):
                if self.args.verbose:
                    sys.stderr.write("round %d, load %s\n" % (rep + 1, _bench.load()))
                shift = rep % len(units)
                for unit in units[shift:] + units[:shift]:
                    unit(rep)
                done += 1
        except Cap:
            sys.stderr.write("time cap of %d s reached in round %d: the figures below are from what finished\n"
                             % (self.args.cap, done + 1))
        finally:
            self.drop_case(floor)
        return done

    # -- context: whole ansible-playbook runs, and the profile --

    def playbook(self, runner, label, playbook, changed):
        vars_file = os.path.join(self.root, "empty-vars.json")
        with open(vars_file, "w") as handle:
            json.dump({}, handle)
        command = [runner.playbook, "-i", "localhost,", "-c", "local",
                   "-e", "ansible_python_interpreter=%s" % runner.python, "-e", "@" + vars_file, playbook]
        out = self.timed(label, command, env=runner.env)[1]
        recap = _bench.RECAP.search(out)
        if recap is None or int(recap.group(4)) or int(recap.group(2)) != changed:
            raise SystemExit("%s: unexpected recap: %s" % (label, out[-3000:]))

    def playbooks(self, venv):
        """One ansible-playbook run of a ping task, of a commit and of a reset (each on a fresh tree)."""
        runner = _bench.Runner(venv, self.coll, self.root, self.args.verbose)
        self.playbook(runner, "playbook: ping", os.path.join(_bench.PLAYBOOKS, "ping.yml"), 0)
        for state in ("committed", "reset"):
            case = self.fresh_case()
            try:
                before = manifest(case["merged"])
                extra = {"layer": case["layer"]} if state == "committed" else {}
                task = {"name": "overlay_upper", "overlayfs.mounts.overlay_upper": self.module_args(case, state, **extra)}
                playbook = os.path.join(self.root, "upper.yml")
                with open(playbook, "w") as handle:
                    json.dump([{"hosts": "localhost", "gather_facts": False, "tasks": [task]}], handle)
                self.playbook(runner, "playbook: " + ("commit" if state == "committed" else "reset"), playbook, 1)
                expected = before if state == "committed" else self.lower_view
                problem = differences(expected, manifest(case["merged"]))
                if problem:
                    raise SystemExit("playbook %s: the merged view is wrong: %s" % (state, problem))
            finally:
                self.drop_case(case)

    def profile(self, dump):
        """One commit and one reset under cProfile, on fresh trees; where the time goes."""
        for state in ("committed", "reset"):
            case = self.fresh_case()
            path = os.path.join(dump, "%s.pstats" % state)
            try:
                extra = {"layer": case["layer"]} if state == "committed" else {}
                report = self.run_module("profile " + state, self.module_args(case, state, **extra), True, profile=path,
                                         record=False)
            finally:
                self.drop_case(case)
            print_profile(state, path, report)


def print_profile(state, path, report):
    """The collection's functions by cumulative time, and the system calls by their own time."""
    raw = pstats.Stats(path).stats
    print("\nprofile of %s: main() %.2f s under cProfile (phases: %s)" % (
        state, report["main_s"], ", ".join("%s %.2f" % (k, v[1]) for k, v in sorted(
            report["phases"].items(), key=lambda item: -item[1][1]))))
    ours = [(v[3], v[2], v[1], k) for k, v in raw.items() if "/plugins/" in k[0]]
    print("%9s %9s %9s  %s" % ("cum s", "own s", "calls", "the collection's functions, by cumulative time"))
    for cum, own, calls, key in sorted(ours, reverse=True)[:28]:
        where = key[0].split("/plugins/")[-1]
        print("%9.3f %9.3f %9d  %s:%d %s" % (cum, own, calls, where, key[1], key[2]))
    builtins = [(v[2], v[1], k[2]) for k, v in raw.items() if k[0] == "~"]
    print("%9s %9s  %s" % ("own s", "calls", "built-ins (system calls), by their own time"))
    for own, calls, name in sorted(builtins, reverse=True)[:18]:
        print("%9.3f %9d  %s" % (own, calls, name))


# --- the report ----------------------------------------------------------------------------------

ROWS = [
    ("cp -a", "cp -a upper dest"),
    ("cp -a + sync", "cp -a upper dest; sync -f dest"),
    ("commit", "commit: overlay_upper process"),
    ("rm -rf + mount", "umount; rm -rf upper/* work/*; mount"),
    ("reset", "reset: overlay_upper process"),
    ("python -c pass", "python -c pass"),
    ("python + imports", "python + imports (basic, overlay_upper)"),
    ("nothing to do: reset", "reset, nothing to do (empty upper)"),
    ("nothing to do: commit", "commit, nothing to do (empty upper)"),
    ("playbook: ping", "ansible-playbook: one ping task"),
    ("playbook: commit", "ansible-playbook: overlay_upper commit"),
    ("playbook: reset", "ansible-playbook: overlay_upper reset"),
]
#: {case: [(baseline, what the ratio says)]}
RATIOS = {"commit": [("cp -a", "x cp -a"), ("cp -a + sync", "x cp -a+sync")],
          "reset": [("rm -rf + mount", "x rm -rf+mount")]}
PHASES = ["observe", "holder scan", "upper_usage", "journal write", "unmount", "write layer (all)",
          "layer_copy.write_layer", "sync_path (syncfs)", "swap (all)", "make_empty_like", "exchange",
          "mount again", "remove_tree", "journal remove", "fsync_dir (all)"]


def _med(values):
    return statistics.median(values) if values else None


def print_table(bench, done):
    samples = bench.samples
    print("%-42s %6s %8s %8s %8s %8s  %s" % ("case", "runs", "median s", "min", "max", "main() s", "ratio"))
    for case, label in ROWS:
        values = samples.get(case)
        if not values:
            continue
        mains = [r["main_s"] for r in bench.runs.get(case, [])]
        ratios = ["%.2f%s" % (_med(values) / _med(samples[base]), words)
                  for base, words in RATIOS.get(case, []) if samples.get(base)]
        print("%-42s %6d %8.3f %8.3f %8.3f %8s  %s" % (
            label, len(values), _med(values), min(values), max(values),
            "%.3f" % _med(mains) if mains else "-", ", ".join(ratios)))
    print()
    for case, base, words in (("commit", "cp -a", "commit <= %.1fx cp -a" % TARGET),
                              ("reset", "rm -rf + mount", "reset  <= %.1fx rm -rf + mount" % TARGET)):
        if samples.get(case) and samples.get(base):
            ratio = _med(samples[case]) / _med(samples[base])
            rounds = " ".join("%.2f" % (a / b) for a, b in zip(samples[case], samples[base]))
            print("target %-32s %5.2fx  %-8s (each round's own ratio: %s)" % (
                words, ratio, "met" if ratio <= TARGET else "NOT MET", rounds))
    if samples.get("commit") and samples.get("cp -a + sync"):
        ratio = _med(samples["commit"]) / _med(samples["cp -a + sync"])
        print("       (commit against cp -a + sync -f, like for like: %.2fx)" % ratio)
    print_phases(bench)


def print_phases(bench):
    """Median seconds of each phase of the module's runs (phases nest: "(all)" holds the lines under it)."""
    cases = [c for c in ("commit", "reset", "nothing to do: reset") if bench.runs.get(c)]
    if not cases:
        return
    print("\nwhere the module process's time goes (median s over the runs; calls per run)")
    print("%-28s" % "phase" + "".join("%24s" % c for c in cases))
    for phase in PHASES + ["main()", "process - main()"]:
        cells = []
        for case in cases:
            runs = bench.runs[case]
            if phase == "main()":
                values, calls = [r["main_s"] for r in runs], None
            elif phase == "process - main()":
                values, calls = [w - r["main_s"] for w, r in zip(bench.samples[case], runs)], None
            else:
                values = [r["phases"].get(phase, [0, 0.0])[1] for r in runs]
                calls = runs[0]["phases"].get(phase, [0, 0.0])[0]
            cells.append("%10.3f %s" % (_med(values), "" if calls is None else "(%d)" % calls))
        print("%-28s" % phase + "".join("%24s" % c for c in cells))


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--files", type=int, default=10000, help="files in the upper dir (default 10000)")
    parser.add_argument("--mbytes", type=int, default=100, help="MB (10^6 bytes) of data in the upper dir (default 100)")
    parser.add_argument("--quick", action="store_true", help="a small tree: 1,000 files, 10 MB")
    parser.add_argument("--runs", type=int, default=3, help="rounds; figures are medians (default 3)")
    parser.add_argument("--dir", default="/var/tmp", help="where the scratch dir goes; not a tmpfs (default /var/tmp)")
    parser.add_argument("--caches", choices=("drop", "keep"), default="drop",
                        help="before every timed step: sync and drop the page cache, or sync only (default drop)")
    parser.add_argument("--cap", type=int, default=600, help="seconds the whole run may take (default 600)")
    parser.add_argument("--playbook", action="store_true", help="also time one ansible-playbook run of each state")
    parser.add_argument("--profile", action="store_true", help="also profile one commit and one reset (cProfile)")
    parser.add_argument("--profile-dump", help="keep the pstats files in this dir")
    parser.add_argument("--venv", help="the venv with ansible-core (default .venv, else /tmp/probe-venv)")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.files, args.mbytes = 1000, 10
    return args


def main():
    args = parse_args()
    _bench.reexec_in_namespace(__file__)
    _bench.private_run()
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started with SIGINT ignored (in the background)
    venv = _bench.find_venv(args.venv)
    fstype = fs_type(args.dir)
    if fstype[0] in ("tmpfs", "ramfs"):
        sys.exit("%s is on %s: give --dir on a disk" % (args.dir, fstype[0]))
    root = tempfile.mkdtemp(prefix="upper-lifecycle-", dir=args.dir)
    load_before = _bench.load()
    try:
        bench = Bench(args, root, venv)
        make_lower(bench.lower, max(args.files // 10, 40), random.Random(1))
        done = bench.rounds()
        if args.playbook and done == args.runs:
            try:
                bench.playbooks(venv)
            except Cap:
                sys.stderr.write("time cap reached during the playbook runs\n")
        counts = bench.upper_counts
        print("upper_lifecycle: %s on %s (%s), kernel %s, Python of %s; caches %s before each timed step"
              % (args.dir, fstype[0], fstype[1], os.uname().release, venv, "dropped" if args.caches == "drop" else "kept"))
        if counts:
            print("the upper dir: %d files, %.1f MB, %d dirs, %d whiteouts, %d symlinks and others "
                  "(options %s); %d of %d rounds, load %s -> %s\n"
                  % (counts[0], counts[1] / 1e6, counts[2], counts[3], counts[4], ",".join(OPTIONS), done, args.runs,
                     load_before, _bench.load()))
        print_table(bench, done)
        if args.profile:
            dump = args.profile_dump or tempfile.mkdtemp(dir=root)
            os.makedirs(dump, exist_ok=True)
            try:
                bench.profile(dump)
            except Cap:
                sys.stderr.write("time cap reached during the profile\n")
    finally:
        unmount_all(root)
        subprocess.run(["rm", "-rf", "--one-file-system", root], check=False)


if __name__ == "__main__":
    main()
