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
met (issue 14): the role's first converge at least 10x faster than the loop
and at most 1.5x ping, its re-run at most 1.25x ping. The verdict uses the
wall-clock medians; the CPU ratios are printed beside them. The shared
helpers (scratch tmpfs, checks, timed runs) are in ``_bench.py``; 1,000
overlays, the growth table and the module profile are in ``scale.py``.
"""

import argparse
import os
import shutil
import statistics
import sys
import tempfile

from _bench import (
    collections_path,
    drop_scratch,
    find_venv,
    fresh_scratch,
    load as _load,
    prepare,
    reexec_in_namespace,
    verify,
    Runner,
)

# Issue 14's targets for 50 overlays.
TARGET_LOOP_OVER_ROLE_A = 10.0
TARGET_ROLE_A_OVER_PING = 1.5
TARGET_ROLE_B_OVER_PING = 1.25


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


def _parse_args():
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
    return parser.parse_args()


def _steps(runner, scratch, empty_vars, args, samples, cpu, verified):
    """One callable per timed step of a repetition; each records into ``samples``, ``cpu`` and ``verified``."""
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
    return steps


def _run_rounds(steps, runs, verbose):
    """Every step ``runs`` times, the order rotating between repetitions."""
    for rep in range(runs):
        if verbose:
            sys.stderr.write("repetition %d, load %s\n" % (rep + 1, _load()))
        shift = rep % len(steps)
        for step in steps[shift:] + steps[:shift]:
            step()


def _profile(runner, scratch, count):
    """The profile_tasks output of one idempotent role run."""
    root, _overlays, vars_file = fresh_scratch(scratch, count)
    try:
        runner.run("role", vars_file, None)
        return runner.run("role", vars_file, lambda c: c == 0, extra_env={
            "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.profile_tasks"})[2]
    finally:
        drop_scratch(root)


def _measure(args, venv, cases):
    """(wall samples, cpu samples, verified counts, profile or None, load before, load after)."""
    work = tempfile.mkdtemp(prefix="overlayfs-role-vs-loop-")
    load_before = _load()
    samples = {case: [] for case, _label in cases}
    cpu = {case: [] for case, _label in cases}
    verified = {}
    try:
        runner = Runner(venv, collections_path(args.collections, work), work, args.verbose)
        scratch, empty_vars = prepare(work)
        _run_rounds(_steps(runner, scratch, empty_vars, args, samples, cpu, verified), args.runs, args.verbose)
        profile = _profile(runner, scratch, args.count) if args.profile else None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return samples, cpu, verified, profile, load_before, _load()


def _ratio(case, med, cpu_med):
    if case in ("role_a", "role_b"):
        loop = "loop_" + case[-1]
        text = "loop/role %.1fx (cpu %.1fx)" % (med[loop] / med[case], cpu_med[loop] / cpu_med[case])
        text += ", %.2fx ping (cpu %.2fx)" % (med[case] / med["ping"], cpu_med[case] / cpu_med["ping"])
        return text
    return "%.2fx ping (cpu %.2fx)" % (med[case] / med["ping"], cpu_med[case] / cpu_med["ping"])


def _print_header(args, venv, load_before, load_after, verified):
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


def _print_table(cases, samples, med, cpu_med):
    print("%-46s %8s %6s %6s %6s  %s" % ("case", "median s", "min", "max", "cpu s", "ratio"))
    for case, label in cases:
        values = samples[case]
        print("%-46s %8.2f %6.2f %6.2f %6.2f  %s" % (
            label, med[case], min(values), max(values), cpu_med[case],
            "-" if case == "ping" else _ratio(case, med, cpu_med)))


def _print_targets(med, cpu_med):
    checks = [
        ("loop/role (a) >= %gx" % TARGET_LOOP_OVER_ROLE_A, med["loop_a"] / med["role_a"],
         cpu_med["loop_a"] / cpu_med["role_a"], lambda r: r >= TARGET_LOOP_OVER_ROLE_A),
        ("role (a)/ping <= %gx" % TARGET_ROLE_A_OVER_PING, med["role_a"] / med["ping"],
         cpu_med["role_a"] / cpu_med["ping"], lambda r: r <= TARGET_ROLE_A_OVER_PING),
        ("role (b)/ping <= %gx" % TARGET_ROLE_B_OVER_PING, med["role_b"] / med["ping"],
         cpu_med["role_b"] / cpu_med["ping"], lambda r: r <= TARGET_ROLE_B_OVER_PING),
    ]
    for name, wall_ratio, cpu_ratio, ok in checks:
        print("target %-22s wall %5.2fx  %-8s (cpu %5.2fx  %s)" % (
            name, wall_ratio, "met" if ok(wall_ratio) else "NOT MET", cpu_ratio, "met" if ok(cpu_ratio) else "not met"))


def _print_profile(profile):
    print()
    print("profile_tasks, one idempotent role run:")
    start = profile.find("====")
    print(profile[profile.rfind("\n", 0, start) + 1:].rstrip() if start >= 0 else profile.rstrip())


def main():
    args = _parse_args()
    reexec_in_namespace(__file__)

    venv = find_venv(args.venv)
    cases = CASES + (BREAKDOWN if args.breakdown else [])
    samples, cpu, verified, profile, load_before, load_after = _measure(args, venv, cases)

    med = {case: statistics.median(values) for case, values in samples.items()}
    cpu_med = {case: statistics.median(values) for case, values in cpu.items()}
    _print_header(args, venv, load_before, load_after, verified)
    print()
    _print_table(cases, samples, med, cpu_med)
    print()
    _print_targets(med, cpu_med)
    if profile:
        _print_profile(profile)


if __name__ == "__main__":
    main()
