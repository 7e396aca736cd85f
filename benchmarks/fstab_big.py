#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a big fstab costs: one overlay, and a batch, against 0, 1,000 and 2,000 other lines.

For each size N (default 0, 1000, 2000) the script writes a scratch fstab
holding a root line and N lines of other mounts, as a busy host has them
(bind mounts, tmpfs, NFS exports and ``UUID=`` ext4 disks, all ``noauto``,
so that none of them is needed or mounted), and times whole
ansible-playbook runs over the local connection:

* one: one ``overlay_mount`` task that adds one overlay (``playbooks/fstab_one.yml``),
  then the same task again (must report changed=0);
* batch: one ``overlay_mounts`` task that adds ``--batch`` overlays
  (``playbooks/fstab_batch.yml``), then the same task again.

Every ratio is against a baseline measured in the same run: ``ansible.builtin.ping``
(a one-task playbook) and the floor, the same task on an fstab with no other
lines (N = 0), which is all a task costs whatever the size of the fstab. The
module process runs under GNU time, so its own wall and CPU seconds are
reported beside the whole run's. After every run the script checks from
/proc/self/mountinfo that the overlays are mounted with the declared layers,
and that the fstab still holds the N other lines, unchanged and in their
order, plus exactly one line per overlay.

A run that takes longer than ``--cap`` seconds is stopped and reported as
over the cap (before the fix, one task at 2,000 lines took minutes).
Everything runs in a private mount namespace with a /run of its own (see
``_bench.private_run``), on a fresh scratch tmpfs per run; cases run in
rounds (``--runs``), interleaved, and figures are medians.

    python3 benchmarks/fstab_big.py [--sizes 0,1000,2000] [--batch 10] [--runs 3]
        [--cap 120] [--collections live|installed|DIR] [-v]

``--collections DIR`` measures the collection found under DIR (a directory
holding ``ansible_collections/overlayfs/mounts``), e.g. an earlier copy.
Target: at 2,000 lines the module's own CPU time is less than a second
above the floor's (reported, not enforced); the module CPU is the steady
figure on a loaded machine, wall times are printed beside it.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

from _bench import (
    RECAP,
    Runner,
    collections_path,
    drop_scratch,
    find_venv,
    fresh_scratch,
    live_overlays,
    load,
    prepare,
    private_run,
    reexec_in_namespace,
)

TARGET_MODULE_SECONDS = 1.0


def foreign_lines(count):
    """A root line and ``count`` lines of other mounts, none of them needed (``noauto``)."""
    lines = ["# scratch fstab of benchmarks/fstab_big.py: %d lines of other mounts" % count,
             "UUID=0b5e7c2a-57f1-4c1e-9d3a-4f1b2c3d4e5f / ext4 errors=remount-ro 0 1"]
    for i in range(count):
        kind = i % 4
        if kind == 0:
            lines.append("/srv/exports/data%d /srv/bind/data%d none bind,noauto 0 0" % (i, i))
        elif kind == 1:
            lines.append("tmpfs /srv/scratch/t%d tmpfs noauto,size=64m,mode=1777 0 0" % i)
        elif kind == 2:
            lines.append("nfs%d.example.net:/export/home%d /srv/nfs/home%d nfs noauto,_netdev,vers=4.2 0 0"
                         % (i % 7, i, i))
        else:
            lines.append("UUID=%08x-1c2d-4e5f-8a9b-%012x /srv/disks/d%d ext4 noauto,nofail 0 2" % (i, i, i))
    return lines


def scratch_with_fstab(base, overlays, size):
    """A fresh scratch tmpfs with ``overlays`` declared, its fstab holding ``size`` other lines."""
    root, declared, vars_file = fresh_scratch(base, overlays)
    foreign = foreign_lines(size)
    with open(os.path.join(root, "fstab"), "w") as handle:
        handle.write("\n".join(foreign) + "\n")
    return root, declared, vars_file, foreign


def check(root, declared, foreign, case):
    """The overlays are live as declared; fstab holds the other lines unchanged plus one line each."""
    found, stacked = live_overlays(root + "/mnt")
    problems = ["%d stacked" % stacked] if stacked else []
    for decl in declared:
        if found.get(decl["path"]) != (decl["lowerdir"], decl["upperdir"], decl["workdir"]):
            problems.append("%s mounted as %r" % (decl["path"], found.get(decl["path"])))
    with open(os.path.join(root, "fstab")) as handle:
        lines = handle.read().splitlines()
    others = [line for line in lines if line.split()[:1] != ["overlay"]]
    ours = [line.split()[1] for line in lines if line.split()[:1] == ["overlay"]]
    if others != foreign:
        problems.append("the other lines of the fstab changed")
    if sorted(ours) != sorted(decl["path"] for decl in declared):
        problems.append("overlay lines for %r, declared %r" % (ours, [d["path"] for d in declared]))
    if problems:
        raise SystemExit("%s: verification failed: %s" % (case, "; ".join(problems[:5])))


def capped_run(runner, name, vars_file, expect_changed, cap):
    """``Runner.run`` with a time cap: ``(wall, modules)``, or None past the cap."""
    command = [runner.playbook, "-i", "localhost,", "-c", "local",
               "-e", "ansible_python_interpreter=%s" % runner.interpreter,
               "-e", "@%s" % vars_file, os.path.join(os.path.dirname(os.path.abspath(__file__)), "playbooks", name + ".yml")]
    if runner.module_log and os.path.exists(runner.module_log):
        os.unlink(runner.module_log)
    start = time.monotonic()
    proc = subprocess.Popen(command, env=runner.env, cwd=runner.work, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, universal_newlines=True, start_new_session=True)
    try:
        output, _err = proc.communicate(timeout=cap)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)  # the playbook and its module process, started by this run
        proc.communicate()
        runner._modules()
        return None
    wall = time.monotonic() - start
    modules = runner._modules()
    recap = RECAP.search(output)
    if proc.returncode != 0 or recap is None or int(recap.group(4)):
        sys.stderr.write(output[-6000:])
        raise SystemExit("%s: ansible-playbook failed (rc %d)" % (name, proc.returncode))
    if not expect_changed(int(recap.group(2))):
        sys.stderr.write(output[-6000:])
        raise SystemExit("%s: unexpected changed=%s" % (name, recap.group(2)))
    if runner.verbose:
        sys.stderr.write("  %-12s %7.2f s wall; module %.2f s wall %.2f s cpu\n"
                         % (name, wall, modules[0] if modules else 0, modules[1] if modules else 0))
    return wall, modules


def one_case(args, runner, scratch, kind, size, record):
    """Converge then re-run ``kind`` ("one" or "batch") on a fresh scratch whose fstab has ``size`` other lines."""
    count = 1 if kind == "one" else args.batch
    root, declared, vars_file, foreign = scratch_with_fstab(scratch, count, size)
    try:
        playbook = "fstab_one" if kind == "one" else "fstab_batch"
        for step, expect in (("converge", lambda c: c >= 1), ("re-run", lambda c: c == 0)):
            result = capped_run(runner, playbook, vars_file, expect, args.cap)
            record((kind, size, step), result)
            if result is None:
                return  # over the cap: the re-run would meet a half-done converge
            check(root, declared, foreign, "%s %s at %d lines" % (kind, step, size))
    finally:
        drop_scratch(root)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--sizes", default="0,1000,2000", type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--batch", type=int, default=10, help="overlays in the batch case")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cap", type=float, default=120.0, help="seconds a run may take")
    parser.add_argument("--collections", default="live", help="live, installed, or a directory")
    parser.add_argument("--venv")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    if 0 not in args.sizes:
        args.sizes.insert(0, 0)  # the floor every ratio is taken against
    reexec_in_namespace(__file__)
    private_run()
    venv = find_venv(args.venv)
    work = tempfile.mkdtemp(prefix="overlayfs-fstab-big-")
    if args.collections in ("live", "installed"):
        collections = collections_path(args.collections, work)
    else:
        collections = os.path.abspath(args.collections)
    runner = Runner(venv, collections, work, args.verbose, measure_modules=True)
    scratch, empty_vars = prepare(work)
    samples = {}

    def record(case, result):
        samples.setdefault(case, []).append(result)

    load_before = load()
    for rep in range(args.runs):
        if args.verbose:
            sys.stderr.write("round %d, load %s\n" % (rep + 1, load()))
        ping = capped_run(runner, "ping", empty_vars, lambda c: c == 0, args.cap)
        record("ping", ping)
        cases = [(kind, size) for size in args.sizes for kind in ("one", "batch")]
        shift = rep % len(cases)
        for kind, size in cases[shift:] + cases[:shift]:
            one_case(args, runner, scratch, kind, size, record)
    report(args, samples, collections, load_before, load())


def _median(results, index):
    """Median of field ``index`` of ``(wall, modules)`` results (0: run wall; 1, 2: module wall, cpu); None if capped."""
    if not results or any(r is None for r in results):
        return None
    values = [r[0] if index == 0 else r[1][index - 1] for r in results]
    return statistics.median(values)


def report(args, samples, collections, load_before, load_after):
    ping_wall, ping_module = _median(samples["ping"], 0), _median(samples["ping"], 1)
    print("fstab with N other lines (bind, tmpfs, nfs, UUID= ext4, all noauto) plus a root line; "
          "collections: %s; %d rounds, medians; %d CPUs, load %s before, %s after"
          % (collections, args.runs, os.cpu_count(), load_before, load_after))
    print("ping: %.2f s wall, its module %.3f s wall; floor: the same task at N = 0; cap %.0f s per run"
          % (ping_wall, ping_module, args.cap))
    print()
    header = "| task | N | run | wall s | x ping | x floor | module wall s | module x floor | module cpu s |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for kind in ("one", "batch"):
        label = "overlay_mount" if kind == "one" else "overlay_mounts (%d)" % args.batch
        for size in args.sizes:
            for step in ("converge", "re-run"):
                results = samples.get((kind, size, step))
                floor = samples.get((kind, 0, step))
                wall, mwall, mcpu = (_median(results, i) for i in (0, 1, 2))
                if wall is None:
                    print("| %s | %d | %s | > %.0f (cap) | | | | | |" % (label, size, step, args.cap))
                    continue
                fwall, fmwall = _median(floor, 0), _median(floor, 1)
                print("| %s | %d | %s | %.2f | %.2fx | %.2fx | %.3f | %.2fx | %.3f |" % (
                    label, size, step, wall, wall / ping_wall, wall / fwall, mwall, mwall / fmwall, mcpu))
    print()
    biggest = max(args.sizes)
    for kind in ("one", "batch"):
        at, floor = samples.get((kind, biggest, "converge")), samples.get((kind, 0, "converge"))
        cpu, wall = _median(at, 2), _median(at, 1)
        if cpu is None:
            print("target: %s converge at %d lines -> NOT MET (over the cap)" % (kind, biggest))
            continue
        extra_cpu, extra_wall = cpu - _median(floor, 2), wall - _median(floor, 1)
        print("target: %s converge at %d lines costs the module under %.0f s more than the floor -> %s "
              "(cpu %+.3f s, wall %+.3f s)" % (kind, biggest, TARGET_MODULE_SECONDS,
                                               "met" if extra_cpu < TARGET_MODULE_SECONDS else "NOT MET", extra_cpu, extra_wall))


if __name__ == "__main__":
    main()
