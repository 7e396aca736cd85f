# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""overlay_mount_info's own work on a real container host, resolve_layers on.

Run on a host where ``scripts/engines.sh up`` started the test containers
(Docker and podman, images of 5, 60 and 120 layers: 6 containers, about 370
layers). Times the module's work for the whole-host inventory exactly as
its main() does it with ``resolve_layers: true`` (read mountinfo and the
overlay defaults, parse, resolve every relative path against its base,
follow every short link, infer the engine, compare with fstab and units),
without Ansible's start-up. Caches are fresh in each run, as in the module.

To show it is linear, the same work runs on the host's mountinfo keeping 1
to all of the engines' container mounts (largest first), on the real files.
The baseline, measured in the same run on the same mountinfo text, is
libmount parsing it (``findmnt --tab-file FILE -t overlay -J``).

    python3 benchmarks/engines_inventory.py [--runs 21]
"""

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from _collection_path import importable  # noqa: E402


importable()

from ansible_collections.overlayfs.mounts.plugins.module_utils._host import system as _host  # noqa: E402
from ansible_collections.overlayfs.mounts.plugins.module_utils._host.live_paths import LinkTimes  # noqa: E402
from ansible_collections.overlayfs.mounts.plugins.module_utils._report.inventory import gather  # noqa: E402
from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.mountinfo import CONTAINER_ENGINES  # noqa: E402

TARGET_MS = 25.0


def module_work(mountinfo_path):
    """What overlay_mount_info's main() does with resolve_layers: true (no fstab, no units)."""
    entries = _host.read_mountinfo(mountinfo_path)
    links = LinkTimes()
    return gather(entries, _host.read_defaults(), {}, exists=_host.cached(os.path.exists),
                  realpath=links.realpath, links=links)


def timed(function, runs):
    """Median wall and CPU (user + system) milliseconds of ``function``."""
    wall, cpu = [], []
    for _dummy in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        function()
        cpu.append((time.process_time() - start_cpu) * 1000.0)
        wall.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(wall), statistics.median(cpu)


def timed_child(argv, runs):
    """Median wall and CPU milliseconds of a command (its user + system time)."""
    wall, cpu = [], []
    for _dummy in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, check=True)
        wall.append((time.perf_counter() - start) * 1000.0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append((after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000.0)
    return statistics.median(wall), statistics.median(cpu)


def _parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--runs", type=int, default=21)
    return parser.parse_args()


def _host_overlays():
    """(mountinfo lines, every overlay record, the mounted container engines' records, largest first)."""
    with open("/proc/self/mountinfo") as handle:
        lines = handle.read().splitlines()
    records = module_work("/proc/self/mountinfo")
    engines = [r for r in records if r["engine"] in CONTAINER_ENGINES and r["mounted"]]
    if not engines:
        sys.exit("no container engine mounts on this host: run scripts/engines.sh up first")
    engines.sort(key=lambda r: -len(r["lowerdir"]))
    return lines, records, engines


def _print_host(records, engines):
    unresolved = [r["path"] for r in engines if not r["resolved"]]
    others = [r for r in records if r["mounted"] and r not in engines]
    print("host: %d overlays; %d of container engines with %d layers (%s); %d others; unresolved: %d"
          % (len(records), len(engines), sum(len(r["lowerdir"]) for r in engines),
             ", ".join("%s %d" % (r["engine"], len(r["lowerdir"])) for r in engines), len(others),
             len(unresolved)))


def _measure(lines, engines, runs):
    """Per count of engine mounts kept: (containers, layers, ours wall, findmnt wall, ours cpu, findmnt cpu)."""
    engine_points = set(r["path"] for r in engines)
    scratch = tempfile.mkdtemp(prefix="overlayfs-bench-engines-")
    rows = []
    try:
        for keep in range(1, len(engines) + 1):
            kept = set(r["path"] for r in engines[:keep])
            text = "\n".join(line for line in lines if not _mount_point_in(line, engine_points - kept)) + "\n"
            path = os.path.join(scratch, "mountinfo-%d" % keep)
            with open(path, "w") as handle:
                handle.write(text)
            layers = sum(len(r["lowerdir"]) for r in engines[:keep])
            # Interleaved, so load from other work hits both alike.
            ours, ours_cpu = timed(lambda: module_work(path), runs)
            base, base_cpu = timed_child(["findmnt", "--tab-file", path, "-t", "overlay", "-J"], runs)
            rows.append((keep, layers, ours, base, ours_cpu, base_cpu))
    finally:
        for name in os.listdir(scratch):
            os.unlink(os.path.join(scratch, name))
        os.rmdir(scratch)
    return rows


def _print_table(rows):
    print("\nwall: median milliseconds; cpu: median user + system milliseconds (steadier on a shared machine)")
    print("\n| containers | layers | ours wall | findmnt wall | ours/findmnt wall | ours cpu | findmnt cpu "
          "| ours/findmnt cpu | ours cpu per layer (us) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for keep, layers, ours, base, ours_cpu, base_cpu in rows:
        print("| %d | %d | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.1f |" % (
            keep, layers, ours, base, ours / base, ours_cpu, base_cpu, ours_cpu / base_cpu if base_cpu else 0,
            1000.0 * ours_cpu / layers))


def _print_fit(rows):
    """Linear: a least-squares line through (layers, cpu ms), and how far each point is from it."""
    xs = [r[1] for r in rows]
    ys = [r[4] for r in rows]
    mean_x, mean_y = statistics.mean(xs), statistics.mean(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / spread if spread else 0.0
    intercept = mean_y - slope * mean_x
    worst = max(abs(y - (intercept + slope * x)) / y for x, y in zip(xs, ys))
    print("\ncpu = %.2f ms + %.1f us per layer; the largest deviation from that line is %.0f%%"
          % (intercept, slope * 1000.0, worst * 100.0))


def _print_verdict(rows):
    full = rows[-1]
    print("all %d containers, %d layers: ours %.2f ms wall (%.2fx findmnt), %.2f ms cpu (%.2fx findmnt); "
          "target < %.0f ms: %s (wall), %s (cpu)"
          % (full[0], full[1], full[2], full[2] / full[3], full[4], full[4] / full[5] if full[5] else 0,
             TARGET_MS, "met" if full[2] < TARGET_MS else "NOT met", "met" if full[4] < TARGET_MS else "NOT met"))


def main():
    args = _parse_args()
    lines, records, engines = _host_overlays()
    _print_host(records, engines)
    rows = _measure(lines, engines, args.runs)
    _print_table(rows)
    _print_fit(rows)
    _print_verdict(rows)


def _mount_point_in(line, points):
    fields = line.split(" ")
    return len(fields) > 4 and fields[4] in points


if __name__ == "__main__":
    main()
