#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the holder scan over every mount namespace costs, and how it grows.

Before an overlay is unmounted or re-layered, the modules look for holders
in every mount namespace of the host (``_host.namespaces.scan_holders``):
one pass over /proc that reads each process's namespace link, the mountinfo
of each other namespace once, and each process's root, working dir,
executable, open files and maps. This script measures that scan on a host
made busy on purpose: for each size it starts P sleeping processes spread
over N mount namespaces (each made by ``unshare --mount``, so each holds a
copy of every mount, our overlay's included), each process holding a few
open files, and times the scan of an overlay that one process of one
namespace keeps busy (the scan must name it).

The reference of every ratio is the **floor** of any namespace-aware
process scan, measured in the same run on the same processes: list /proc
and read each process's ``ns/mnt`` link and ``comm``. Figures are medians
of ``--runs`` scans; the per-process cost across sizes shows whether the
scan stays linear.

Everything runs in a private mount namespace (the script re-executes itself
under ``unshare``) on a tmpfs of its own; the processes are killed at the end.

    python3 benchmarks/holders.py [--sizes 100x10,400x40] [--runs 7]
"""

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import _bench
import _collection_path

_collection_path.importable()

from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.mountinfo import mounts_at, parse  # noqa: E402
from ansible_collections.overlayfs.mounts.plugins.module_utils._host.namespaces import scan_holders  # noqa: E402

# Each namespace: K sleeping processes with three files open (two on the
# scratch dir, one elsewhere); the first namespace's first process works in
# the overlay, so the scan has something to find.
SPAWN = r'''
cd /
i=0
while [ "$i" -lt "$K" ]; do
    if [ "$i" -eq 0 ] && [ "$HOLD" = 1 ]; then dir="$MERGED"; else dir=/; fi
    (cd "$dir" && exec 3<"$SCRATCH/f1" 4<"$SCRATCH/f2" 5</etc/hostname sleep 600) &
    i=$((i + 1))
done
wait
'''


def start(size, scratch, merged):
    """Start ``size`` = (processes, namespaces); return the Popen of each namespace."""
    processes, spaces = size
    per = max(1, processes // spaces)
    groups = []
    for index in range(spaces):
        env = dict(os.environ, K=str(per), HOLD="1" if index == 0 else "0", MERGED=merged, SCRATCH=scratch)
        groups.append(subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c", SPAWN],
                                       env=env, start_new_session=True))
    deadline = time.monotonic() + 60
    while _sleepers() < per * spaces and time.monotonic() < deadline:
        time.sleep(0.2)
    return groups


def _sleepers():
    count = 0
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open("/proc/%s/comm" % name) as handle:
                    count += handle.read().strip() == "sleep"
            except OSError:
                continue
    return count


def stop(groups):
    for group in groups:
        try:
            os.killpg(group.pid, signal.SIGKILL)
        except OSError:
            pass
        group.wait()


def floor():
    """The least a namespace-aware scan reads: each process's ns link and comm."""
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                os.readlink("/proc/%s/ns/mnt" % name)
                with open("/proc/%s/comm" % name) as handle:
                    handle.read()
            except OSError:
                continue


def timed(function, runs):
    times = []
    for _run in range(runs):
        start_time = time.perf_counter()
        function()
        times.append(time.perf_counter() - start_time)
    return statistics.median(times)


def measure(size, runs, scratch, merged):
    groups = start(size, scratch, merged)
    try:
        with open("/proc/self/mountinfo") as handle:
            entries = parse(handle.read())
        live = mounts_at(entries, merged)[-1]
        found = scan_holders(merged, entries, live)
        assert found["processes"], "the holder in the first namespace was not found"
        processes = sum(1 for name in os.listdir("/proc") if name.isdigit())
        spaces = len({os.readlink("/proc/%s/ns/mnt" % n) for n in os.listdir("/proc") if n.isdigit()
                      and os.path.exists("/proc/%s/ns/mnt" % n)})
        base = timed(floor, runs)
        scan = timed(lambda: scan_holders(merged, entries, live), runs)
    finally:
        stop(groups)
    return {"processes": processes, "namespaces": spaces, "floor": base, "scan": scan,
            "holders": len(found["processes"])}


def main():
    _bench.reexec_in_namespace(__file__)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--sizes", default="100x10,400x40", help="PROCESSESxNAMESPACES,... (default %(default)s)")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    sizes = [tuple(int(n) for n in part.split("x")) for part in args.sizes.split(",")]
    scratch = tempfile.mkdtemp(prefix="overlayfs-holders-")
    subprocess.check_call(["mount", "-t", "tmpfs", "tmpfs", scratch])
    for name in ("l1", "l2", "u", "w", "m"):
        os.mkdir(os.path.join(scratch, name))
    for name in ("f1", "f2"):
        with open(os.path.join(scratch, name), "w") as handle:
            handle.write(name)
    merged = os.path.join(scratch, "m")
    subprocess.check_call(["mount", "-t", "overlay", "overlay", "-o", "lowerdir=%s/l1:%s/l2,upperdir=%s/u,workdir=%s/w"
                           % (scratch, scratch, scratch, scratch), merged])
    print("%-10s %-10s %10s %10s %7s %14s" % ("processes", "namespaces", "floor ms", "scan ms", "ratio", "scan us/proc"))
    for size in sizes:
        row = measure(size, args.runs, scratch, merged)
        print("%-10d %-10d %10.1f %10.1f %6.1fx %14.0f" % (
            row["processes"], row["namespaces"], row["floor"] * 1000, row["scan"] * 1000,
            row["scan"] / row["floor"], row["scan"] / row["processes"] * 1e6))
    subprocess.call(["umount", merged])
    subprocess.call(["umount", scratch])
    return 0


if __name__ == "__main__":
    sys.exit(main())
