#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What Mitogen's strategy buys: the role's re-run and a loop of single tasks, with and without it.

Declares N overlays (default 20, persisted in a scratch fstab) on localhost
and times whole ansible-playbook runs of two idempotent re-runs (the
overlays are converged once first, untimed), each under ansible-core's own
``linear`` strategy and under Mitogen's ``mitogen_linear``, in the same run:

* role: the overlay_host role (one overlay_mounts module run for the list);
* loop: a loop of single overlayfs.mounts.overlay_mount tasks, one module
  run per overlay.

Mitogen is not a dependency of the collection: install it anywhere and
point ``--mitogen`` at the folder that holds ``ansible_mitogen``, e.g.

    pip install --target /tmp/mitogen mitogen
    python3 benchmarks/mitogen.py --mitogen /tmp/mitogen [--count 20] [--runs 5] [-v]

Everything runs in one private mount namespace (see ``_bench.py``), and the
cases are interleaved, their order rotating between repetitions; the figures
are medians of wall seconds. Needs root.
"""

import argparse
import os
import shutil
import statistics
import tempfile

from _bench import (Runner, collections_path, drop_scratch, find_venv, fresh_scratch, load, prepare,
                    private_run, reexec_in_namespace, verify)

LOOP = """---
- name: Overlays through a loop of overlayfs.mounts.overlay_mount tasks
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Converge one overlay
      overlayfs.mounts.overlay_mount:
        path: "{{ item.path }}"
        lowerdir: "{{ item.lowerdir }}"
        upperdir: "{{ item.upperdir }}"
        workdir: "{{ item.workdir }}"
        persist: fstab
        fstab: "{{ bench_root }}/fstab"
        unit_dir: "{{ bench_root }}/units"
      loop: "{{ bench_overlays }}"
"""

CASES = [("role", "linear"), ("role", "mitogen"), ("loop", "linear"), ("loop", "mitogen")]


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--mitogen", required=True, help="folder holding the ansible_mitogen package")
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--venv")
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser.parse_args()


def _strategy_env(mitogen: str) -> dict:
    plugins = os.path.join(os.path.abspath(mitogen), "ansible_mitogen", "plugins", "strategy")
    if not os.path.isfile(os.path.join(plugins, "mitogen_linear.py")):
        raise SystemExit("no ansible_mitogen/plugins/strategy/mitogen_linear.py under %s" % mitogen)
    return {"ANSIBLE_STRATEGY_PLUGINS": plugins, "ANSIBLE_STRATEGY": "mitogen_linear"}


def _measure(args: argparse.Namespace, venv: str) -> dict:
    """Wall seconds of each case's re-runs, ``{(playbook, strategy): [seconds, ...]}``."""
    work = tempfile.mkdtemp(prefix="overlayfs-bench-mitogen-")
    samples = {case: [] for case in CASES}
    envs = {"linear": {}, "mitogen": _strategy_env(args.mitogen)}
    try:
        private_run()
        scratch = prepare(work)[0]
        runner = Runner(venv, collections_path("live", work), work, args.verbose)
        loop_playbook = os.path.join(work, "loop.yml")
        with open(loop_playbook, "w") as handle:
            handle.write(LOOP)
        playbooks = {"role": "role", "loop": loop_playbook[:-len(".yml")]}
        for rnd in range(args.runs):
            for index in range(len(CASES)):
                playbook, strategy = CASES[(index + rnd) % len(CASES)]
                root, overlays, vars_file = fresh_scratch(scratch, args.count)
                runner.run(playbooks[playbook], vars_file, lambda changed: changed > 0, envs[strategy])
                wall = runner.run(playbooks[playbook], vars_file, lambda changed: changed == 0, envs[strategy])[0]
                verify(root, overlays, "%s/%s" % (playbook, strategy))
                samples[(playbook, strategy)].append(wall)
                drop_scratch(root)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return samples


def main() -> None:
    args = _parse_args()
    reexec_in_namespace(__file__)
    venv = find_venv(args.venv)
    load_before = load()
    samples = _measure(args, venv)
    print("overlays: %d, runs: %d, load before/after: %s / %s" % (args.count, args.runs, load_before, load()))
    print("%-6s %-8s %8s   %s" % ("re-run", "strategy", "median", "samples (s)"))
    med = {case: statistics.median(values) for case, values in samples.items()}
    for case in CASES:
        print("%-6s %-8s %8.2f   %s" % (case[0], case[1], med[case], " ".join("%.2f" % v for v in samples[case])))
    for playbook in ("role", "loop"):
        print("%s: mitogen/linear = %.2f" % (playbook, med[(playbook, "mitogen")] / med[(playbook, "linear")]))


if __name__ == "__main__":
    main()
