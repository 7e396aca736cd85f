#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The overlay_host role against ansible.posix.mount in a loop, 50 overlays.

Declares N overlays (default 50; two lower dirs, an upper and a work dir
each, persisted in a scratch fstab) on localhost over the local connection
and times whole ansible-playbook runs:

* role (a): first converge through the role overlayfs.mounts.overlay_host
  (one overlay_mounts module run for the whole list);
* role (b): the idempotent re-run of the same playbook;
* loop (a) and loop (b): the same overlays declared with ansible.posix.mount
  in a loop (state mounted, fstype overlay, src overlay,
  opts lowerdir=..,upperdir=..,workdir=.., fstab scratch), one module run
  per overlay;
* ping: a one-task playbook running ansible.builtin.ping, the floor of any
  ansible-playbook run on this machine.

Everything runs in one private mount namespace (the script re-executes itself
under ``unshare --mount --propagation private``): the host never sees the
mounts. Every repetition starts from a fresh scratch tmpfs (layers, empty
fstab, no mounts), runs (a) then (b), and verifies from
/proc/self/mountinfo that exactly N overlays are mounted with the declared
lowers, upper and work dir, that a file of each lower layer shows through
the merged dir, and that the fstab holds N overlay lines. The cases are
interleaved (their order rotates between repetitions) so that load from other
work on the machine hits all of them alike; the figures are medians.

    python3 benchmarks/role_vs_loop.py [--count 50] [--runs 5]
        [--collections live|installed] [--breakdown] [--profile] [-v]

``live`` (default) points ANSIBLE_COLLECTIONS_PATH at a temporary tree that
links this work tree as overlayfs.mounts and ansible.posix from
.cache/collections (scripts/bootstrap.sh puts it there); ``installed`` uses
.cache/collections as scripts/collection.sh left it. ``--breakdown`` adds,
in the same rounds, the role with an empty list and the overlay_mounts
module as one plain task (playbooks/module.yml) with 0 and N overlays, which
splits the role's cost into the role's own tasks, the module's fixed cost and
its cost per overlay. ``--profile`` adds one idempotent role run with the
profile_tasks callback and prints it.

Needs root. Prints a table (wall seconds of whole ansible-playbook runs, and
their CPU seconds, steadier on a loaded machine) and whether the targets are
met: the role at least 8x faster than the loop on (a) and (b), and role (b)
at most 1.5x ping. The verdict uses the wall-clock medians.
"""

from __future__ import absolute_import, division, print_function

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
PLAYBOOKS = os.path.join(HERE, "playbooks")
CACHE_COLLECTIONS = os.path.join(REPO, ".cache", "collections")
POSIX = os.path.join(CACHE_COLLECTIONS, "ansible_collections", "ansible", "posix")
NS_FLAG = "OVERLAYFS_BENCH_IN_NAMESPACE"

TARGET_LOOP_OVER_ROLE = 8.0
TARGET_ROLE_B_OVER_PING = 1.5

RECAP = re.compile(r"^localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def reexec_in_namespace():
    """Run this script again in a private mount namespace, once."""
    if os.environ.get(NS_FLAG) == "1":
        return
    if os.geteuid() != 0:
        sys.exit("needs root (mounts overlays in a private mount namespace)")
    env = dict(os.environ, **{NS_FLAG: "1"})
    command = ["unshare", "--mount", "--propagation", "private", sys.executable, os.path.abspath(__file__)]
    os.execvpe("unshare", command + sys.argv[1:], env)


def find_venv(explicit):
    candidates = [explicit] if explicit else [os.path.join(REPO, ".venv"), "/tmp/probe-venv"]
    for venv in candidates:
        if venv and os.access(os.path.join(venv, "bin", "ansible-playbook"), os.X_OK):
            return venv
    sys.exit("no venv with ansible-playbook in %s: run scripts/bootstrap.sh" % ", ".join(c for c in candidates if c))


def collections_path(kind, work):
    if not os.path.isdir(POSIX):
        sys.exit("ansible.posix is missing from %s: run scripts/bootstrap.sh" % CACHE_COLLECTIONS)
    if kind == "installed":
        if not os.path.isdir(os.path.join(CACHE_COLLECTIONS, "ansible_collections", "overlayfs", "mounts")):
            sys.exit("overlayfs.mounts is not installed in %s: run scripts/collection.sh" % CACHE_COLLECTIONS)
        return CACHE_COLLECTIONS
    root = os.path.join(work, "collections")
    for namespace, name, source in (("overlayfs", "mounts", REPO), ("ansible", "posix", POSIX)):
        os.makedirs(os.path.join(root, "ansible_collections", namespace))
        os.symlink(source, os.path.join(root, "ansible_collections", namespace, name))
    return root


def declare(root, count):
    """The overlays and their directories under ``root`` (mount points are left to the modules)."""
    overlays = []
    base = os.path.join(root, "layers", "base")
    os.makedirs(base)
    with open(os.path.join(base, "base.txt"), "w") as handle:
        handle.write("base\n")
    for i in range(count):
        app = os.path.join(root, "layers", "app%02d" % i)
        os.makedirs(app)
        with open(os.path.join(app, "app.txt"), "w") as handle:
            handle.write("app %d\n" % i)
        upper = os.path.join(root, "state", "app%02d" % i, "upper")
        work = os.path.join(root, "state", "app%02d" % i, "work")
        os.makedirs(upper)
        os.makedirs(work)
        overlays.append({"path": os.path.join(root, "mnt", "app%02d" % i),
                         "lowerdir": [app, base], "upperdir": upper, "workdir": work})
    os.makedirs(os.path.join(root, "units"))
    os.makedirs(os.path.join(root, "modules-load.d"))  # as on a real host (the module expects it)
    with open(os.path.join(root, "fstab"), "w") as handle:
        handle.write("# scratch fstab of benchmarks/role_vs_loop.py\n")
    return overlays


def fresh_scratch(base, count):
    root = tempfile.mkdtemp(prefix="run-", dir=base)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=755", "bench", root], check=True)
    overlays = declare(root, count)
    vars_file = os.path.join(root, "vars.json")
    with open(vars_file, "w") as handle:
        json.dump({"bench_root": root, "bench_overlays": overlays}, handle)
    return root, overlays, vars_file


def drop_scratch(root):
    subprocess.run(["umount", "-R", "-l", root], check=False)
    os.rmdir(root)


def _unescape(field):
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def live_overlays(prefix):
    """{mount point: (lowers, upper, work)} of the overlays mounted under ``prefix``."""
    found = {}
    stacked = 0
    with open("/proc/self/mountinfo") as handle:
        for line in handle:
            fields = line.split()
            dash = fields.index("-")
            mount_point = _unescape(fields[4])
            if fields[dash + 1] != "overlay" or not mount_point.startswith(prefix + "/"):
                continue
            lowers, upper, work = [], None, None
            for option in fields[dash + 3].split(","):
                key, _sep, value = option.partition("=")
                if key == "lowerdir":
                    lowers.extend(_unescape(v) for v in value.split(":"))
                elif key == "lowerdir+":
                    lowers.append(_unescape(value))
                elif key == "upperdir":
                    upper = _unescape(value)
                elif key == "workdir":
                    work = _unescape(value)
            if mount_point in found:
                stacked += 1
            found[mount_point] = (lowers, upper, work)
    return found, stacked


def verify(root, overlays, case):
    """Exactly the declared overlays are live and persisted; raise otherwise."""
    found, stacked = live_overlays(root + "/mnt")
    problems = []
    if stacked:
        problems.append("%d overlays mounted twice (stacked)" % stacked)
    for decl in overlays:
        live = found.get(decl["path"])
        if live is None:
            problems.append("%s not mounted" % decl["path"])
        elif live != (decl["lowerdir"], decl["upperdir"], decl["workdir"]):
            problems.append("%s mounted as %r" % (decl["path"], live))
        elif not (os.path.exists(os.path.join(decl["path"], "base.txt"))
                  and os.path.exists(os.path.join(decl["path"], "app.txt"))):
            problems.append("%s does not show both lower layers" % decl["path"])
    if len(found) != len(overlays):
        problems.append("%d overlays mounted, %d declared" % (len(found), len(overlays)))
    with open(os.path.join(root, "fstab")) as handle:
        lines = [line for line in handle if line.split()[:1] == ["overlay"]]
    if len(lines) != len(overlays):
        problems.append("%d overlay lines in the scratch fstab, %d declared" % (len(lines), len(overlays)))
    if problems:
        raise SystemExit("%s: verification failed: %s" % (case, "; ".join(problems[:5])))
    return len(found)


def _child_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class Runner(object):
    def __init__(self, venv, collections, work, verbose):
        self.playbook = os.path.join(venv, "bin", "ansible-playbook")
        self.python = os.path.join(venv, "bin", "python")
        self.work = work
        self.verbose = verbose
        self.env = dict(
            os.environ,
            ANSIBLE_COLLECTIONS_PATH=collections,
            ANSIBLE_CONFIG=os.path.join(work, "ansible.cfg"),  # no user or /etc config
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_STDOUT_CALLBACK="default",
            ANSIBLE_LOCALHOST_WARNING="0",
            ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
            ANSIBLE_RETRY_FILES_ENABLED="0",
        )
        for name in ("ANSIBLE_ROLES_PATH", "ANSIBLE_CALLBACKS_ENABLED", "ANSIBLE_CALLBACK_WHITELIST",
                     "ANSIBLE_PIPELINING", "ANSIBLE_KEEP_REMOTE_FILES", "ANSIBLE_DEBUG"):
            self.env.pop(name, None)  # no extra callbacks; ansible's defaults otherwise
        with open(self.env["ANSIBLE_CONFIG"], "w") as handle:
            handle.write("[defaults]\n")

    def run(self, name, vars_file, expect_changed, extra_env=None):
        """Wall and CPU seconds of one ansible-playbook run; checks the recap."""
        command = [self.playbook, "-i", "localhost,", "-c", "local",
                   "-e", "ansible_python_interpreter=%s" % self.python,
                   "-e", "@%s" % vars_file, os.path.join(PLAYBOOKS, name + ".yml")]
        env = dict(self.env, **(extra_env or {}))
        cpu = _child_cpu()
        start = time.monotonic()
        proc = subprocess.run(command, env=env, cwd=self.work, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, universal_newlines=True, check=False)
        wall = time.monotonic() - start
        cpu = _child_cpu() - cpu
        recap = RECAP.search(proc.stdout)
        if proc.returncode != 0 or recap is None or int(recap.group(4)):
            sys.stderr.write(proc.stdout[-6000:])
            raise SystemExit("%s: ansible-playbook failed (rc %d)" % (name, proc.returncode))
        changed = int(recap.group(2))
        if expect_changed is not None and not expect_changed(changed):
            sys.stderr.write(proc.stdout[-6000:])
            raise SystemExit("%s: unexpected changed=%d" % (name, changed))
        if self.verbose:
            sys.stderr.write("  %-8s %6.2f s wall %6.2f s cpu changed=%d\n" % (name, wall, cpu, changed))
        return wall, cpu, proc.stdout


def _load():
    with open("/proc/loadavg") as handle:
        return " ".join(handle.read().split()[:3])


CASES = [
    # key, label
    ("ping", "ping: one-task playbook, ansible.builtin.ping"),
    ("role_a", "role (a): first converge"),
    ("role_b", "role (b): idempotent re-run"),
    ("loop_a", "loop (a): ansible.posix.mount, first converge"),
    ("loop_b", "loop (b): ansible.posix.mount, re-run"),
]
BREAKDOWN = [
    ("role_0", "breakdown: role, 0 overlays"),
    ("module_0", "breakdown: overlay_mounts task, 0 overlays"),
    ("module_a", "breakdown: overlay_mounts task (a)"),
    ("module_b", "breakdown: overlay_mounts task (b)"),
]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--count", type=int, default=50, help="overlays declared (default 50)")
    parser.add_argument("--runs", type=int, default=5, help="repetitions of every case (default 5)")
    parser.add_argument("--collections", choices=("live", "installed"), default="live",
                        help="this work tree (default) or .cache/collections as installed")
    parser.add_argument("--venv", help="venv with ansible-playbook (default .venv, then /tmp/probe-venv)")
    parser.add_argument("--breakdown", action="store_true",
                        help="also time the role with 0 overlays and the overlay_mounts module as a plain "
                             "task (0 and N overlays), to split the role's cost")
    parser.add_argument("--profile", action="store_true",
                        help="also print one idempotent role run with the profile_tasks callback")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every run")
    args = parser.parse_args()
    reexec_in_namespace()

    venv = find_venv(args.venv)
    work = tempfile.mkdtemp(prefix="overlayfs-role-vs-loop-")
    load_before = _load()
    cases = CASES + (BREAKDOWN if args.breakdown else [])
    samples = dict((case, []) for case, _label in cases)
    cpu = dict((case, []) for case, _label in cases)
    verified = {}
    try:
        runner = Runner(venv, collections_path(args.collections, work), work, args.verbose)
        scratch = os.path.join(work, "scratch")
        os.makedirs(scratch)
        empty_vars = os.path.join(work, "empty-vars.json")
        with open(empty_vars, "w") as handle:
            json.dump({"bench_root": os.path.join(work, "empty"), "bench_overlays": []}, handle)
        for sub in ("units", "modules-load.d"):
            os.makedirs(os.path.join(work, "empty", sub))

        def record(case, result):
            samples[case].append(result[0])
            cpu[case].append(result[1])

        def ping():
            record("ping", runner.run("ping", empty_vars, lambda c: c == 0))

        def empty(playbook, case):
            def step():
                runner.run(playbook, empty_vars, None)  # the modules-load.d file may be new: untimed
                record(case, runner.run(playbook, empty_vars, lambda c: c == 0))
            return step

        def converge(playbook, case):
            def step():
                root, overlays, vars_file = fresh_scratch(scratch, args.count)
                try:
                    # (a) must change: the role reports one changed task, the loop one per item.
                    record(case + "_a", runner.run(playbook, vars_file, lambda c: c >= 1))
                    verified[case + "_a"] = verify(root, overlays, case + " (a)")
                    record(case + "_b", runner.run(playbook, vars_file, lambda c: c == 0))
                    verified[case + "_b"] = verify(root, overlays, case + " (b)")
                finally:
                    drop_scratch(root)
            return step

        steps = [ping, converge("role", "role"), converge("loop", "loop")]
        if args.breakdown:
            steps += [empty("role", "role_0"), empty("module", "module_0"), converge("module", "module")]
        for rep in range(args.runs):
            if args.verbose:
                sys.stderr.write("repetition %d, load %s\n" % (rep + 1, _load()))
            shift = rep % len(steps)
            for step in steps[shift:] + steps[:shift]:
                step()

        profile = None
        if args.profile:
            root, _overlays, vars_file = fresh_scratch(scratch, args.count)
            try:
                runner.run("role", vars_file, None)
                profile = runner.run("role", vars_file, lambda c: c == 0, extra_env={
                    "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.profile_tasks"})[2]
            finally:
                drop_scratch(root)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    load_after = _load()

    med = dict((case, statistics.median(values)) for case, values in samples.items())
    cpu_med = dict((case, statistics.median(values)) for case, values in cpu.items())

    def ratio(case):
        if case in ("role_a", "role_b"):
            loop = "loop_" + case[-1]
            text = "loop/role %.1fx (cpu %.1fx)" % (med[loop] / med[case], cpu_med[loop] / cpu_med[case])
            if case == "role_b":
                text += ", %.2fx ping (cpu %.2fx)" % (med[case] / med["ping"], cpu_med[case] / cpu_med["ping"])
            return text
        return "%.2fx ping (cpu %.2fx)" % (med[case] / med["ping"], cpu_med[case] / cpu_med["ping"])

    print("%d overlays (2 lowers + upper + work each), scratch fstab, local connection, "
          "private mount namespace" % args.count)
    print("ansible-playbook from %s, collections: %s; %d runs per case, interleaved"
          % (venv, args.collections, args.runs))
    print("machine: %d CPUs, load average %s before, %s after (other work may be running: "
          "figures are medians)" % (os.cpu_count(), load_before, load_after))
    print("verified after every converge and re-run: %d overlays live with the declared layers, upper and "
          "work (role), %d (loop), and %d overlay lines in the scratch fstab"
          % (verified.get("role_b", 0), verified.get("loop_b", 0), args.count))
    print("wall: seconds of the whole ansible-playbook run; cpu: user + system seconds of it and its children")
    print()
    print("%-46s %8s %6s %6s %6s  %s" % ("case", "median s", "min", "max", "cpu s", "ratio"))
    for case, label in cases:
        values = samples[case]
        print("%-46s %8.2f %6.2f %6.2f %6.2f  %s" % (
            label, med[case], min(values), max(values), cpu_med[case], "-" if case == "ping" else ratio(case)))
    print()
    checks = [
        ("loop/role (a) >= %gx" % TARGET_LOOP_OVER_ROLE, med["loop_a"] / med["role_a"],
         cpu_med["loop_a"] / cpu_med["role_a"], lambda r: r >= TARGET_LOOP_OVER_ROLE),
        ("loop/role (b) >= %gx" % TARGET_LOOP_OVER_ROLE, med["loop_b"] / med["role_b"],
         cpu_med["loop_b"] / cpu_med["role_b"], lambda r: r >= TARGET_LOOP_OVER_ROLE),
        ("role (b)/ping <= %gx" % TARGET_ROLE_B_OVER_PING, med["role_b"] / med["ping"],
         cpu_med["role_b"] / cpu_med["ping"], lambda r: r <= TARGET_ROLE_B_OVER_PING),
    ]
    for name, wall_ratio, cpu_ratio, ok in checks:
        print("target %-22s wall %5.2fx  %-8s (cpu %5.2fx  %s)" % (
            name, wall_ratio, "met" if ok(wall_ratio) else "NOT MET", cpu_ratio, "met" if ok(cpu_ratio) else "not met"))
    if profile:
        print()
        print("profile_tasks, one idempotent role run:")
        start = profile.find("====")
        print(profile[profile.rfind("\n", 0, start) + 1:].rstrip() if start >= 0 else profile.rstrip())


if __name__ == "__main__":
    main()
