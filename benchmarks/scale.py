#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""How the role's cost grows: 10, 100 and 1,000 overlays against a ping playbook.

For each count N (default 10, 100, 1000) the script declares N overlays on a
fresh scratch tmpfs, each with a lower layer of its own over a shared base
layer, an upper and a work dir, persisted in a scratch fstab, and times
whole ansible-playbook runs of ``playbooks/role.yml`` (the role
overlayfs.mounts.overlay_host) over the local connection:

* converge: the first run on the fresh scratch;
* re-run: the same playbook again, which must report changed=0;
* ping: a one-task ``ansible.builtin.ping`` playbook, the reference of
  every ratio, run before each count's runs in every round so that it
  meets the same load.

The module process runs under GNU time (``/usr/bin/time``, through a
two-line shell wrapper given as the Python interpreter, in the ping runs
too): its wall and CPU seconds and its peak memory (max RSS) are reported
beside the whole run's. After every run the script checks from
/proc/self/mountinfo that exactly N overlays are mounted with the declared
lowers, upper and work dir, none stacked, that a file of each lower shows
through the merged dir, and that the fstab holds N overlay lines.

Everything runs in one private mount namespace (the script re-executes
itself under ``unshare --mount --propagation private``), with an empty
tmpfs on /run of its own, so that the host lock the modules take there is
never held by other runs of the collection on the machine. The cases run in
rounds (``--runs``), each case once per round, interleaved: for each count
a ping run, then that count's steps, each on a fresh scratch tmpfs; the
counts and the steps of a count rotate between rounds. Figures are
medians, and every ratio is against the ping runs of the same invocation.

    python3 benchmarks/scale.py [--counts 10,100,1000] [--runs 3]
        [--collections live|installed | --current REV] [--baseline REV] [--profile | --floor] [-v]

Targets (issue 14) at 1,000 overlays: converge at most 4x ping, re-run at
most 2x ping. They are reported, not enforced.

``--current REV`` measures the collection of the git revision REV,
exported with ``git archive`` (galaxy.yml, meta/, plugins/, roles/,
playbooks/) into the scratch work dir, instead of the work tree: a
committed state, which edits of the work tree during the runs cannot
change.

``--baseline REV`` runs every timed case twice per round, once with this
collection ("current") and once with the collection of the git revision
REV ("baseline"), exported in the same way; the two are
separate steps of the same rounds, so they meet the same load. Each case
is reported for both, with the ratio current/baseline of the medians and
its range over the rounds (each round's two runs against each other).

``--floor`` times, for each count, what ansible-core costs before the
module does any work: a ping playbook given the N-overlay declaration
(``-e @vars``), and ``overlay_mounts`` replaced by a module that reads
nothing and answers with a fixed, empty result, run as one plain task
(``playbooks/module.yml``) and through the role (the floor of any run
through the role). These run once per round, in a step of their own, and
with ``--baseline`` both collections' figures are divided by that same
floor (the role of this work tree with the stub module). Beside them, for
each collection on a fresh scratch: the real role's converge, then the real
module as one plain task and the real role as re-runs (changed=0). The
session redesign's targets against the floor are reported, not enforced:
at 50 overlays converge at most 1.15x the floor and re-run at most 1.08x;
at 1,000, 1.8x and 1.25x.

``--profile`` times nothing against ping; it shows where the time goes.
First the fixed costs, from whole ansible-playbook runs: ping, the role
with no overlays, each with its module process. Then, for each count, the
overlay_mounts module's ``main()`` is run in a forked child (in this private
namespace) with the arguments the role passes, once plain (wall, CPU, peak
memory of the child) and once under cProfile on a fresh scratch; the
profile is split into phases (argument checks, kernel module, the batch's
findmnt check, and per overlay: declare, observe, plan, mkdir, lock, fstab
write, mount, verify; the group's verify and write; and the result; the
phases of each layout the code has had are in ``LAYOUTS``) and its
heaviest functions are listed. ``--profile-dump DIR`` keeps the raw pstats files;
``--profile-read DIR`` prints the phase tables of such files again (no root
needed).
"""

import argparse
import cProfile
import functools
import io
import json
import os
import pstats
import shutil
import statistics
import sys
import tempfile
import time

from _bench import (
    collections_path,
    drop_scratch,
    exported_collections,
    find_venv,
    fresh_scratch,
    load,
    prepare,
    private_run,
    reexec_in_namespace,
    verify,
    Runner,
)
import _collection_path

TARGET_CONVERGE_OVER_PING = 4.0
TARGET_RERUN_OVER_PING = 2.0
TARGET_COUNT = 1000
#: The session redesign's targets against the floor: {overlays: (converge, re-run)}.
TARGETS_OVER_FLOOR = {50: (1.15, 1.08), 1000: (1.8, 1.25)}


def role_args(root, overlays):
    """The overlay_mounts arguments the role passes for ``playbooks/role.yml`` (role defaults kept)."""
    return {
        "mounts": overlays,
        "persist": "fstab",
        "fstab": os.path.join(root, "fstab"),
        "unit_dir": os.path.join(root, "units"),
        "backup": False,
        "prune": False,
        "load_module": True,
        "modules_load_file": os.path.join(root, "modules-load.d", "overlay.conf"),
    }


# --- timed runs --------------------------------------------------------------

def current_collections(args, work):
    """The collections path of "current": this work tree, the installed copy, or revision --current."""
    if args.current:
        root, commit = exported_collections(args.current, work, "current")
        args.collections = "revision %s (git archive)" % commit
        return root
    return collections_path(args.collections, work)


def code_runners(args, venv, work):
    """``[(code, Runner)]``: "current" (see ``current_collections``), and "baseline" with --baseline."""
    runners = [("current", Runner(venv, current_collections(args, work), work, args.verbose, measure_modules=True))]
    args.baseline_commit = None
    if args.baseline:
        root, args.baseline_commit = exported_collections(args.baseline, work)
        runners.append(("baseline", Runner(venv, root, work, args.verbose, measure_modules=True)))
    return runners


def labelled(args, label, code):
    """A run's label; with --baseline, the collection it ran with."""
    return "%s (%s)" % (label, code) if args.baseline and code else label


def interleaved(args, venv, runner, work, per_count):
    """Ping and the steps ``per_count(count)`` lists, for each count, in ``args.runs`` rotating rounds.

    Each step is ``step(scratch, record)``, run on a fresh scratch tmpfs:
    ``scratch`` is ``(root, overlays, vars file)`` with ``count`` declared
    overlays, dropped afterwards; ``record(case, result)`` keeps a run's
    result under its case (ping's case is "ping"). A round runs, for each
    count, ping (with ``runner``) and then that count's steps. Between
    rounds the counts rotate, and so do the steps of a count, so that no
    step always follows the same one. A step records each of its cases once
    per round: ``samples[case][i]`` is from round i.

    Returns ``(samples, med, mod, conditions)``: ``med(case, i)`` is the
    median of field i of the case's results (0 wall, 1 cpu) and ``mod(case,
    i)`` that of their module processes (0 wall, 1 cpu, 2 max RSS KiB);
    conditions are two lines on the venv, the runs and the machine's load.
    """
    scratch, empty_vars = prepare(work)
    samples = {}

    def record(case, result):
        samples.setdefault(case, []).append(result)

    def on_fresh_scratch(count, step):
        fresh = fresh_scratch(scratch, count)
        try:
            step(fresh, record)
        finally:
            drop_scratch(fresh[0])

    groups = [(count, per_count(count)) for count in args.counts]
    load_before = load()
    for rep in range(args.runs):
        if args.verbose:
            sys.stderr.write("round %d, load %s\n" % (rep + 1, load()))
        shift = rep % len(groups)
        for count, steps in groups[shift:] + groups[:shift]:
            record("ping", runner.run("ping", empty_vars, lambda c: c == 0))
            turn = rep % len(steps)
            for step in steps[turn:] + steps[:turn]:
                on_fresh_scratch(count, step)
    load_after = load()

    def med(case, index):
        return statistics.median(r[index] for r in samples[case])

    def mod(case, index):
        return statistics.median(r[3][index] for r in samples[case])

    baseline = ", baseline: revision %s (git archive)" % args.baseline_commit if args.baseline else ""
    conditions = ("ansible-playbook from %s, collections: %s%s; %d rounds, each case once per round, "
                  "interleaved, medians\nmachine: %d CPUs, load average %s before, %s after"
                  % (venv, args.collections, baseline, args.runs, os.cpu_count(), load_before, load_after))
    return samples, med, mod, conditions


def timed(args, venv, work):
    """The growth table: each count's converge and re-run through the role, against ping."""
    runners = code_runners(args, venv, work)

    def converge_and_rerun(runner, code, count, scratch, record):
        root, overlays, vars_file = scratch
        record(("a", count, code), runner.run("role", vars_file, lambda c: c >= 1))
        verify(root, overlays, "%s converge of %d" % (code, count))
        record(("b", count, code), runner.run("role", vars_file, lambda c: c == 0))
        verify(root, overlays, "%s re-run of %d" % (code, count))

    def per_count(count):
        return [functools.partial(converge_and_rerun, runner, code, count) for code, runner in runners]

    samples, med, mod, conditions = interleaved(args, venv, runners[0][1], work, per_count)
    codes = [code for code, _runner in runners]
    print_growth(args, codes, samples, med, mod, conditions)
    for code in codes:
        print_growth_steps(args, code, mod)
    print_ping_targets(args, codes, med)
    if args.baseline:
        print_side_by_side(args, samples, med, mod, (("a", "converge"), ("b", "re-run")), ("ping",))


def print_growth(args, codes, samples, med, mod, conditions):
    ping_wall, ping_cpu = med("ping", 0), med("ping", 1)
    print("role overlayfs.mounts.overlay_host on N overlays (own lower + shared base, upper, work), "
          "persist fstab (scratch), local connection, private mount namespace")
    print(conditions)
    print("verified after every run: N overlays live with the declared layers, upper and work, none stacked, "
          "both lowers visible, N overlay lines in the fstab; re-run changed=0")
    print("wall/cpu: the whole ansible-playbook run (cpu: user + system of it and its children); "
          "module: the module process alone (GNU time); RSS: its peak memory")
    print()
    print("ping: %.2f s wall (min %.2f, max %.2f), %.2f s cpu; its module %.2f s cpu, %d MiB RSS; %d runs"
          % (ping_wall, min(r[0] for r in samples["ping"]), max(r[0] for r in samples["ping"]), ping_cpu,
             mod("ping", 1), mod("ping", 2) // 1024, len(samples["ping"])))
    print()
    header = ("| overlays | run | wall s | x ping | cpu s | x ping (cpu) | module wall s | module cpu s "
              "| module cpu ms per overlay | module peak RSS MiB |")
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for count in args.counts:
        for code in codes:
            for kind, label in (("a", "converge"), ("b", "re-run")):
                case = (kind, count, code)
                print("| %d | %s | %.2f | %.2fx | %.2f | %.2fx | %.2f | %.2f | %.2f | %.0f |" % (
                    count, labelled(args, label, code), med(case, 0), med(case, 0) / ping_wall, med(case, 1),
                    med(case, 1) / ping_cpu, mod(case, 0), mod(case, 1),
                    1000.0 * (mod(case, 1) - mod("ping", 1)) / count if count else 0.0, mod(case, 2) / 1024.0))
    print()


def print_growth_steps(args, code, mod):
    """Module cpu per added overlay from the lowest count to each higher one (needs two counts)."""
    if len(args.counts) < 2:
        return
    low, high = args.counts[0], args.counts[-1]
    for kind, label in (("a", "converge"), ("b", "re-run")):
        lo, hi = mod((kind, low, code), 1), mod((kind, high, code), 1)
        text = "module cpu per added overlay, %s: %d->%d %.2f ms" % (
            labelled(args, label, code), low, high, 1000.0 * (hi - lo) / (high - low))
        for m in args.counts[1:-1]:
            at = mod((kind, m, code), 1)
            text += "; %d->%d %.2f ms, %d->%d %.2f ms" % (
                low, m, 1000.0 * (at - lo) / (m - low), m, high, 1000.0 * (hi - at) / (high - m))
        print(text)
    print()


def print_ping_targets(args, codes, med):
    if TARGET_COUNT not in args.counts:
        return
    ping_wall, ping_cpu = med("ping", 0), med("ping", 1)
    for code in codes:
        for kind, name, target in (("a", "converge", TARGET_CONVERGE_OVER_PING),
                                   ("b", "re-run", TARGET_RERUN_OVER_PING)):
            wall = med((kind, TARGET_COUNT, code), 0) / ping_wall
            cpu = med((kind, TARGET_COUNT, code), 1) / ping_cpu
            print("target %d overlays, %-8s <= %gx ping: wall %5.2fx %-8s (cpu %5.2fx %s)" % (
                TARGET_COUNT, labelled(args, name, code), target, wall, "met" if wall <= target else "NOT MET",
                cpu, "met" if cpu <= target else "not met"))


def print_side_by_side(args, samples, med, mod, kinds, refs):
    """Each case of both collections as a ratio of each reference (ping; the floor), and current/baseline.

    "per round": the lowest and highest current/baseline of one round's two
    runs of the case (the runs that met the same load).
    """
    print("side by side: current (collections: %s) and baseline (revision %s), in the same rounds"
          % (args.collections, args.baseline_commit))
    print()
    print("| overlays | run | %s | current wall s | baseline wall s | current/baseline | per round "
          "| current/baseline (cpu) | current/baseline (module cpu) |"
          % " | ".join("current x %s | baseline x %s" % (ref, ref) for ref in refs))
    print("|---|---|" + "---|---|" * len(refs) + "---|---|---|---|---|---|")
    for count in args.counts:
        for kind, label in kinds:
            now, then = (kind, count, "current"), (kind, count, "baseline")
            cells = []
            for ref in refs:
                base = med("ping" if ref == "ping" else (ref, count, None), 0)
                cells += ["%.2fx" % (med(now, 0) / base), "%.2fx" % (med(then, 0) / base)]
            rounds = [a[0] / b[0] for a, b in zip(samples[now], samples[then])]
            cells += ["%.2f" % med(now, 0), "%.2f" % med(then, 0), "%.2fx" % (med(now, 0) / med(then, 0)),
                      "%.2fx-%.2fx" % (min(rounds), max(rounds)), "%.2fx" % (med(now, 1) / med(then, 1)),
                      "%.2fx" % (mod(now, 1) / mod(then, 1))]
            print("| %d | %s | %s |" % (count, label, " | ".join(cells)))
    print()


# --- floor -------------------------------------------------------------------

STUB = '''#!/usr/bin/python
# The floor (scale.py --floor): the role runs this in place of overlay_mounts, with the same
# arguments. It reads nothing, does nothing and answers with a fixed, small result.
import json
import sys

from ansible.module_utils import basic  # noqa: F401  (an AnsiballZ module, as overlay_mounts is)

print(json.dumps({"changed": False, "overlays": [], "pruned": [], "drift": []}))
sys.exit(0)
'''

#: The cases of the real module in --floor, as side by side shows them.
FLOOR_COMPARED = (("converge", "role, converge"), ("role", "role, re-run"), ("task", "plain task, re-run"))


def floor_collections(work):
    """A collections path where overlayfs.mounts is this work tree with ``overlay_mounts`` replaced by STUB."""
    root = os.path.join(work, "floor")
    collection = os.path.join(root, "ansible_collections", "overlayfs", "mounts")
    os.makedirs(os.path.join(collection, "plugins", "modules"))
    repo = _collection_path.REPO
    for rel, skip in (("", ("plugins", ".git", ".venv", ".cache")), ("plugins", ("modules",)),
                      ("plugins/modules", ("overlay_mounts.py",))):
        for name in os.listdir(os.path.join(repo, rel)):
            if name not in skip:
                os.symlink(os.path.join(repo, rel, name), os.path.join(collection, rel, name))
    with open(os.path.join(collection, "plugins", "modules", "overlay_mounts.py"), "w") as handle:
        handle.write(STUB)
    return root


def floor(args, venv, work):
    """What ansible-core costs around the module: the same role and declaration, a module that does nothing.

    The floor's cases run once per round and count, in a step of their own;
    with --baseline both collections' runs are divided by that same floor.
    """
    runners = code_runners(args, venv, work)
    ping_runner = runners[0][1]
    stub = Runner(venv, floor_collections(work), work, args.verbose, measure_modules=True)

    def floor_cases(count, scratch, record):
        _root, _overlays, vars_file = scratch
        record(("declared", count, None), ping_runner.run("ping", vars_file, lambda c: c == 0))
        record(("stub task", count, None), stub.run("module", vars_file, lambda c: c == 0))
        record(("floor", count, None), stub.run("role", vars_file, lambda c: c == 0))

    def real_cases(runner, code, count, scratch, record):
        root, overlays, vars_file = scratch
        record(("converge", count, code), runner.run("role", vars_file, lambda c: c >= 1))
        verify(root, overlays, "%s converge of %d" % (code, count))
        record(("task", count, code), runner.run("module", vars_file, lambda c: c == 0))
        record(("role", count, code), runner.run("role", vars_file, lambda c: c == 0))
        verify(root, overlays, "%s re-run of %d" % (code, count))

    def per_count(count):
        return [functools.partial(floor_cases, count)] + [
            functools.partial(real_cases, runner, code, count) for code, runner in runners]

    samples, med, mod, conditions = interleaved(args, venv, ping_runner, work, per_count)
    codes = [code for code, _runner in runners]
    print_floor(args, codes, med, mod, conditions)
    if args.baseline:
        print_side_by_side(args, samples, med, mod, FLOOR_COMPARED, ("ping", "floor"))
    print_floor_targets(args, codes, med)


def print_floor(args, codes, med, mod, conditions):
    ping_wall, ping_cpu = med("ping", 0), med("ping", 1)
    print("the floor of a run: what ansible-core costs around a module that does nothing")
    print(conditions)
    print("the floor: the role of this work tree with overlay_mounts replaced by a module that does nothing, "
          "the same declaration; ctl cpu: the whole run's cpu minus the module process's cpu (GNU time)")
    print()
    print("| overlays | run | wall s | x ping | x floor | cpu s | x ping (cpu) | x floor (cpu) | module cpu s "
          "| ctl cpu s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    print("| - | ping playbook | %.2f | 1.00x | - | %.2f | 1.00x | - | %.2f | %.2f |"
          % (ping_wall, ping_cpu, mod("ping", 1), ping_cpu - mod("ping", 1)))
    for count in args.counts:
        rows = [(("declared", count, None), "ping playbook, the declaration loaded (-e @vars)"),
                (("stub task", count, None), "a module that does nothing, as one plain task"),
                (("floor", count, None), "role, a module that does nothing (the floor)")]
        for code in codes:
            rows += [(("converge", count, code), labelled(args, "role, converge", code)),
                     (("task", count, code), labelled(args, "overlay_mounts as one plain task, re-run", code)),
                     (("role", count, code), labelled(args, "role, re-run", code))]
        floor_wall, floor_cpu = med(("floor", count, None), 0), med(("floor", count, None), 1)
        for case, label in rows:
            print("| %d | %s | %.2f | %.2fx | %.2fx | %.2f | %.2fx | %.2fx | %.2f | %.2f |" % (
                count, label, med(case, 0), med(case, 0) / ping_wall, med(case, 0) / floor_wall, med(case, 1),
                med(case, 1) / ping_cpu, med(case, 1) / floor_cpu, mod(case, 1), med(case, 1) - mod(case, 1)))
    print()


def verdict(value, target):
    if value <= target:
        return "met, %.2fx below" % (target - value)
    return "NOT MET, %.2fx over" % (value - target)


def print_floor_targets(args, codes, med):
    """The session redesign's targets against the floor, for the counts that have one."""
    for count in [count for count in args.counts if count in TARGETS_OVER_FLOOR]:
        floor_case = ("floor", count, None)
        for (kind, name), target in zip((("converge", "converge"), ("role", "re-run")), TARGETS_OVER_FLOOR[count]):
            for code in codes:
                case = (kind, count, code)
                wall = med(case, 0) / med(floor_case, 0)
                cpu = med(case, 1) / med(floor_case, 1)
                print("target %4d overlays, %-19s <= %.2fx floor: wall %.2fx (%s); cpu %.2fx (%s)" % (
                    count, labelled(args, name, code), target, wall, verdict(wall, target), cpu,
                    verdict(cpu, target)))


# --- profile -----------------------------------------------------------------

# Phases of a module run, for each layout the code has had: (label, [(file basename, function name,
# caller function name or None)]). The cumulative time of each listed function (from that caller only,
# when one is named) counts for the phase; a phase whose names the profiled code lacks shows as "-".
# A layout's "run" is the function that carries out one entry: the "per overlay" phases lie inside it.
LAYOUTS = [
    ("one session per run (module_utils in subpackages)", ("entry.py", "converge"), [
        ("arguments: AnsibleModule and its spec", [("basic.py", "__init__", "main")]),
        ("kernel: overlay module, modules-load file", [("kernel_module.py", "ensure_overlay", None)]),
        ("batch: order (apply_order)", [("order.py", "apply_order", "run_batch")]),
        ("per overlay: declare (the typed declaration, pure)", [("registry.py", "declare", "converge")]),
        ("per overlay: observe (safe paths, host checks, mountinfo, backends read fstab/unit)",
         [("entry.py", "observe", "converge")]),
        ("per overlay: plan and report (make_plan, upper checks, drift, persisted lines)",
         [("entry.py", "plan", "converge")]),
        ("per overlay: mkdir", [("system.py", "make_dirs", "_create_dir")]),
        ("per overlay: lock", [("files.py", "__enter__", "enter_context")]),
        ("per overlay: fstab write (in a batch: left to the group)", [("fstab_backend.py", "_write", "step")]),
        ("per overlay: mount", [("system.py", "mount", "_mount")]),
        ("per overlay: verify (mountinfo after the mount)", [("steps.py", "verify", "_mount")]),
        ("group: verify (one mountinfo read, then each mount)",
         [("system.py", "read_mountinfo", "settle"), ("steps.py", "verify", "settle")]),
        ("group: fstab write (re-read, every edit, one findmnt for the new lines, one write)",
         [("fstab_backend.py", "write_together", "settle")]),
        ("result: invocation (the arguments as declared)", [("spec.py", "invocation", "main")]),
        ("result: exit_json", [("basic.py", "exit_json", "main")]),
    ]),
    ("before the session redesign (flat module_utils)", ("_converge.py", "run"), [
        ("arguments: AnsibleModule and its spec", [("basic.py", "__init__", "main")]),
        ("kernel: overlay module, modules-load file", [("_kernel.py", "ensure_overlay", None)]),
        ("batch: mount -V, plan every line, one findmnt --verify",
         [("_files.py", "mount_fsconfig", "host_facts"), ("_backend_fstab.py", "planned_line", None),
          ("_files.py", "preverify_lines", None)]),
        ("batch: order (apply_order)", [("_batch.py", "apply_order", "run_batch")]),
        ("per overlay: declare (validate, safe paths, host checks)", [("_converge.py", "declare", "run")]),
        ("per overlay: observe (mountinfo, backends read and plan fstab/unit)",
         [("_converge.py", "observe_host", "run")]),
        ("per overlay: plan (make_plan, upper checks)", [("_converge.py", "plan", "run")]),
        ("per overlay: report (drift, persisted lines)", [("_converge.py", "report", "run")]),
        ("per overlay: mkdir", [("_host.py", "make_dirs", "_create_dir")]),
        ("per overlay: lock", [("_files.py", "__enter__", "act")]),
        ("per overlay: fstab write (re-read, edit, findmnt, write)", [("_backend_fstab.py", "_write", "step")]),
        ("per overlay: mount", [("_host.py", "mount", "_mount")]),
        ("per overlay: verify (mountinfo after the mount)", [("_converge.py", "verify", "_mount")]),
        ("group: verify (one mountinfo read, then each mount)",
         [("_host.py", "read_mountinfo", "settle"), ("_converge.py", "verify", "settle")]),
        ("group: fstab write (re-read, every edit, findmnt, one write)",
         [("_backend_fstab.py", "write_together", "settle")]),
        ("result: exit_json", [("basic.py", "exit_json", "main")]),
    ]),
]
MAIN = ("overlay_mounts.py", "main")


def _find(stats, base, name):
    """The pstats keys of function ``name`` in a file named ``base``."""
    return [key for key in stats.stats if key[2] == name and os.path.basename(key[0]) == base]


def _cumulative(stats, base, name, caller):
    keys = _find(stats, base, name)
    if not keys:
        return None
    total = 0.0
    for key in keys:
        _cc, _nc, _tt, ct, callers = stats.stats[key]
        if caller is None:
            total += ct
        else:
            total += sum(c[3] for k, c in callers.items() if k[2] == caller)
    return total


def layout_of(stats):
    """``(name, run, phases)`` of the LAYOUTS entry whose run function the profile has (else the first)."""
    return next((layout for layout in LAYOUTS if _find(stats, *layout[1])), LAYOUTS[0])


def phase_table(stats, count):
    """Rows ``(label, seconds or None)`` that add up to main()'s time, and main()'s time."""
    _name, run, phases = layout_of(stats)
    main_time = _cumulative(stats, MAIN[0], MAIN[1], None) or 0.0
    rows = []
    inside_run = 0.0
    for label, parts in phases:
        values = [_cumulative(stats, *part) for part in parts]
        known = [v for v in values if v is not None]
        value = sum(known) if known else None
        rows.append((label, value))
        if label.startswith("per overlay") and value is not None:
            inside_run += value
    run_time = _cumulative(stats, run[0], run[1], None)
    if run_time is not None:
        at = next(i for i, (label, _v) in enumerate(rows) if label.startswith("per overlay"))
        rows.insert(at, ("per overlay: the rest of %s (act, bookkeeping)" % run[1], run_time - inside_run))
    accounted = sum(v for _label, v in rows if v is not None)
    rows.append(("other (between entries, prune, outside the phases)", main_time - accounted))
    return rows, main_time


def _drive(args_json, out_path, profile_path):
    """In a forked child: overlay_mounts' main() on ``args_json``; stdout to ``out_path``."""
    from ansible.module_utils import basic  # pylint: disable=import-outside-toplevel
    from ansible_collections.overlayfs.mounts.plugins.modules import overlay_mounts  # noqa

    basic._ANSIBLE_ARGS = args_json.encode("utf-8")  # pylint: disable=protected-access
    if hasattr(basic, "_ANSIBLE_PROFILE"):  # ansible-core 2.19+: how the arguments are encoded
        basic._ANSIBLE_PROFILE = "legacy"  # pylint: disable=protected-access
    fd = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    sys.stdout.flush()
    os.dup2(fd, 1)
    sys.stdout = io.TextIOWrapper(os.fdopen(1, "wb", closefd=False), encoding="utf-8")
    profiler = cProfile.Profile() if profile_path else None
    try:
        if profiler:
            profiler.enable()
        overlay_mounts.main()
    except SystemExit:
        pass
    finally:
        if profiler:
            profiler.disable()
            profiler.dump_stats(profile_path)
        sys.stdout.flush()


def module_in_child(arguments, work, profile_path=None):
    """``(wall, cpu, max RSS KiB, result)`` of one in-process module run in a forked child."""
    out_path = os.path.join(work, "module-out.json")
    args_json = json.dumps({"ANSIBLE_MODULE_ARGS": arguments})
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            _drive(args_json, out_path, profile_path)
        except BaseException:  # pylint: disable=broad-except
            import traceback  # pylint: disable=import-outside-toplevel
            traceback.print_exc()
            code = 1
        os._exit(code)  # pylint: disable=protected-access
    _pid, status, usage = os.wait4(pid, 0)
    wall = time.monotonic() - start
    if status != 0:
        raise SystemExit("the module's child failed (status %d)" % status)
    with open(out_path) as handle:
        text = handle.read()
    try:
        result = json.loads(text[text.index("{"):])
    except ValueError:
        raise SystemExit("the module printed no JSON: %s" % text[-2000:])
    if result.get("failed"):
        raise SystemExit("the module failed: %s" % result.get("msg"))
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, result


def print_phases(counts, stats_of, top):
    """The phase tables of converge (a) and re-run (b); ``stats_of(count, kind)`` gives pstats.Stats."""
    print()
    print("phases of the code's layout: %s" % layout_of(stats_of(counts[-1], "a"))[0])
    for kind, label in (("a", "converge"), ("b", "re-run")):
        print()
        print("%s under cProfile: seconds (share of main)" % label)
        print()
        tables = {count: phase_table(stats_of(count, kind), count) for count in counts}
        print("| phase | " + " | ".join("%d overlays" % c for c in counts) + " |")
        print("|---|" + "---|" * len(counts))
        labels = [row[0] for row in tables[counts[0]][0]]
        for at, phase in enumerate(labels):
            cells = []
            for count in counts:
                value = tables[count][0][at][1]
                total = tables[count][1]
                cells.append("-" if value is None else "%.3f (%.0f%%)" % (value, 100.0 * value / total if total else 0))
            print("| %s | %s |" % (phase, " | ".join(cells)))
        print("| main() | %s |" % " | ".join("%.3f" % tables[c][1] for c in counts))
        if top:
            stream = io.StringIO()
            stats = stats_of(counts[-1], kind)
            stats.stream = stream
            stats.sort_stats("tottime").print_stats(top)
            print()
            print("%s, %d overlays: the %d functions with the most own time" % (label, counts[-1], top))
            print()
            text = stream.getvalue()
            print(text[text.find("   ncalls"):].rstrip())


def read_profiles(args):
    """``--profile-read DIR``: the phase tables of pstats files an earlier ``--profile-dump`` kept."""
    counts = sorted(set(int(name.split("-")[1]) for name in os.listdir(args.profile_read)
                        if name.startswith("overlay_mounts-") and name.endswith(".pstats")))
    if not counts:
        sys.exit("no overlay_mounts-N-a.pstats files in %s" % args.profile_read)
    print_phases(counts, lambda count, kind: pstats.Stats(
        os.path.join(args.profile_read, "overlay_mounts-%d-%s.pstats" % (count, kind))), args.top)


def module_runs(args, work, scratch, count):
    """``(plain, profiled)`` of ``count`` overlays: converge (a) and re-run (b), each on a fresh scratch.

    ``plain[kind]`` is ``module_in_child``'s ``(wall, cpu, max RSS KiB,
    result)``; ``profiled[kind]`` the pstats.Stats of the run under cProfile.
    """
    plain, profiled = {}, {}
    root, overlays, _vars = fresh_scratch(scratch, count)
    try:
        arguments = role_args(root, overlays)
        for kind, what in (("a", "converge"), ("b", "re-run")):
            plain[kind] = module_in_child(arguments, work)
            if bool(plain[kind][3]["changed"]) != (kind == "a"):
                raise SystemExit("in-process %s of %d: changed=%s" % (what, count, plain[kind][3]["changed"]))
            verify(root, overlays, "in-process %s of %d" % (what, count))
    finally:
        drop_scratch(root)
    root, overlays, _vars = fresh_scratch(scratch, count)
    try:
        arguments = role_args(root, overlays)
        for kind in ("a", "b"):
            path = os.path.join(args.profile_dump or work, "overlay_mounts-%d-%s.pstats" % (count, kind))
            result = module_in_child(arguments, work, path)
            if bool(result[3]["changed"]) != (kind == "a"):
                raise SystemExit("profiled run %s of %d: changed=%s" % (kind, count, result[3]["changed"]))
            verify(root, overlays, "profiled run %s of %d" % (kind, count))
            profiled[kind] = pstats.Stats(path)
    finally:
        drop_scratch(root)
    return plain, profiled


def profile(args, venv, work):
    """``--profile``: the fixed costs of whole runs, then the module's main() plain and under cProfile."""
    collections = current_collections(args, work)
    if args.current:
        sys.path.insert(0, collections)  # the revision's module, for the forked children
    else:
        _collection_path.importable()
    runner = Runner(venv, collections, work, args.verbose, measure_modules=True)
    scratch, empty_vars = prepare(work)
    load_before = load()
    fixed = {"ping": [], "role_0": []}
    runner.run("role", empty_vars, None)  # the modules-load.d file may be new: untimed
    for _rep in range(args.runs):
        fixed["ping"].append(runner.run("ping", empty_vars, lambda c: c == 0))
        fixed["role_0"].append(runner.run("role", empty_vars, lambda c: c == 0))
    rows = {}
    for count in args.counts:
        rows[count] = module_runs(args, work, scratch, count)
        if args.verbose:
            sys.stderr.write("profiled %d overlays, load %s\n" % (count, load()))
    print("where the role's time goes; %d CPUs, load average %s before, %s after"
          % (os.cpu_count(), load_before, load()))
    print_fixed(args, fixed)
    print()
    print("the module's main() in a forked child, without Ansible around it (plain run: "
          "wall, CPU, peak RSS of the child):")
    print()
    print("| overlays | run | wall s | cpu s | cpu ms per overlay | peak RSS MiB |")
    print("|---|---|---|---|---|---|")
    for count in args.counts:
        plain = rows[count][0]
        for kind, label in (("a", "converge"), ("b", "re-run")):
            wall, cpu, rss, _result = plain[kind]
            print("| %d | %s | %.2f | %.2f | %.2f | %.0f |" % (count, label, wall, cpu, 1000.0 * cpu / count,
                                                               rss / 1024.0))
    print_phases(args.counts, lambda count, kind: rows[count][1][kind], args.top)


def print_fixed(args, fixed):
    """The fixed costs: ping and the role with no overlays, as whole runs and as module processes."""
    def med(case, index):
        return statistics.median(r[index] for r in fixed[case])

    def mod(case, index):
        return statistics.median(r[3][index] for r in fixed[case])

    print()
    print("fixed costs, whole ansible-playbook runs (%d each, medians; module = the module process alone):"
          % args.runs)
    print()
    print("| run | wall s | cpu s | module wall s | module cpu s | module peak RSS MiB | controller wall s |")
    print("|---|---|---|---|---|---|---|")
    for case, label in (("ping", "ping playbook"), ("role_0", "role, 0 overlays")):
        print("| %s | %.2f | %.2f | %.2f | %.2f | %.0f | %.2f |" % (
            label, med(case, 0), med(case, 1), mod(case, 0), mod(case, 1), mod(case, 2) / 1024.0,
            med(case, 0) - mod(case, 0)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--counts", default="10,100,1000",
                        help="overlay counts, comma-separated (default 10,100,1000)")
    parser.add_argument("--runs", type=int, default=3, help="repetitions (rounds) of every case (default 3)")
    parser.add_argument("--collections", choices=("live", "installed"), default="live",
                        help="this work tree (default) or .cache/collections as installed")
    parser.add_argument("--current", metavar="REV",
                        help="measure the collection of git revision REV (git archive) instead of the work tree")
    parser.add_argument("--baseline", metavar="REV",
                        help="also run every timed case with the collection of git revision REV (git archive), "
                             "interleaved in the same rounds, and compare (not with --profile)")
    parser.add_argument("--venv", help="venv with ansible-playbook (default .venv, then /tmp/probe-venv)")
    parser.add_argument("--profile", action="store_true",
                        help="instead of the timed table: fixed costs, and the module's main() under cProfile")
    parser.add_argument("--floor", action="store_true",
                        help="instead of the timed table: the role with a module that does nothing, against ping")
    parser.add_argument("--profile-dump", help="with --profile: keep the pstats files in this dir")
    parser.add_argument("--profile-read", metavar="DIR",
                        help="only print the phase tables of the pstats files --profile-dump kept in DIR")
    parser.add_argument("--top", type=int, default=25, help="with --profile: functions listed (default 25)")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every run")
    args = parser.parse_args()
    args.counts = [int(c) for c in args.counts.split(",")]
    if args.baseline and (args.profile or args.profile_read):
        parser.error("--baseline compares timed runs: use it without --profile and --profile-read")
    if args.profile_read:
        _collection_path.importable()
        read_profiles(args)
        return
    if args.profile_dump:
        args.profile_dump = os.path.abspath(args.profile_dump)
        if not os.path.isdir(args.profile_dump):
            os.makedirs(args.profile_dump)
    reexec_in_namespace(__file__)
    private_run()

    venv = find_venv(args.venv)
    work = tempfile.mkdtemp(prefix="overlayfs-scale-")
    try:
        (profile if args.profile else floor if args.floor else timed)(args, venv, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
