#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Mounting 10, 100 and 500 long-path layers: our mount code against mount(8).

Builds layer directories whose paths are 120 characters long (500 of them
make 60 KB of ``lowerdir=`` text), an upper and a work dir, and times one
overlay mount of the first M layers (M = 10, 100, 500) by:

* ours, method auto: ``_mount_api.mount_overlay(method="auto")``, which takes
  the new mount API (fsopen, one fsconfig ``lowerdir+`` per layer, fsmount,
  move_mount) on kernels 6.8+;
* ours, method symlinks: short relative links ``0``, ``1``, ... to the layers
  in a links dir, then one legacy mount(2) from that dir; timed once with a
  fresh links dir (the links are created inside the timed call, as on the
  first mount) and once with the links already in place (as on a remount or
  at the next boot);
* ours, method mount2: the legacy mount(2) with the full option string,
  which our code refuses (instead of letting the kernel cut it) when the
  string is over one page;
* mount(8): ``mount -t overlay -o lowerdir=...,upperdir=...,workdir=...``,
  util-linux as installed (2.38 on Debian 12 uses the legacy mount(2)),
  timed as the whole command, which is how a module would run it.

Every measurement runs in a forked child that first enters a fresh private
mount namespace (unshare(CLONE_NEWNS), / made rprivate), so the host never
sees the mounts; the child then reads /proc/self/mountinfo and checks what
the kernel really mounted: the number of layers, the layers themselves, the
upper dir, and a file of the bottom layer through the merged dir. When
mount(8) returns 0 but mounted fewer layers, the table says
"truncated: N of M layers" (the one-page trap of the legacy mount(2)). Ratios
are against mount(8), only where mount(8) mounted exactly what was asked.

    python3 benchmarks/layers.py [--layers 10,100,500] [--runs 15] [--path-length 120] [--dir /tmp]

Needs root. Times are wall-clock milliseconds of the mount alone; medians.
"""

import argparse
import ctypes
import itertools
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from _bench import overlay_paths  # noqa: E402
from _collection_path import importable  # noqa: E402


importable()

from ansible_collections.overlayfs.mounts.plugins.module_utils._host import mounting as _mount_api  # noqa: E402
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError  # noqa: E402

CLONE_NEWNS = 0x00020000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
BOTTOM_FILE = "bottom.txt"


def _unescape(field):
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def enter_private_namespace():
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNS) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS)")
    if libc.mount(b"none", b"/", None, ctypes.c_ulong(MS_REC | MS_PRIVATE), None) != 0:
        raise OSError(ctypes.get_errno(), "mount --make-rprivate /")


def build_layers(root, count, length):
    """``count`` layer dirs whose absolute paths are ``length`` characters long."""
    base = os.path.join(root, "layers")
    os.makedirs(base)
    layers = []
    for i in range(count):
        name = "layer-%03d-" % i
        pad = length - len(base) - 1 - len(name)
        if pad < 0:
            raise SystemExit("--path-length %d is too short for %s" % (length, base))
        path = os.path.join(base, name + "x" * pad)
        os.mkdir(path)
        with open(os.path.join(path, "f%03d" % i), "w") as handle:
            handle.write("%d\n" % i)
        layers.append(path)
    return layers


def page_aligned_top(layers, count):
    """A longer twin of the top layer so that the one page the legacy mount(2)
    copies ends exactly after a whole layer path of ``lowerdir=``.

    Only for the mount(8) row that shows the silent truncation: with the
    uniform paths the page ends inside a path, the kernel cannot resolve that
    fragment and mount(8) fails (with a misleading message); with this top
    layer it returns 0 and mounts what fitted.
    """
    text = "lowerdir=" + ":".join(layers[:count])
    if len(text) <= _mount_api.LEGACY_DATA_LIMIT:
        return None
    fitting = 0
    while len("lowerdir=" + ":".join(layers[:fitting + 1])) <= _mount_api.LEGACY_DATA_LIMIT:
        fitting += 1
    missing = _mount_api.LEGACY_DATA_LIMIT - len("lowerdir=" + ":".join(layers[:fitting]))
    path = layers[0] + "y" * missing
    if len(path) > _mount_api.NEW_API_VALUE_LIMIT:
        return None
    if not os.path.isdir(path):
        os.mkdir(path)
    return path


def live_overlay(target):
    """(layers as mountinfo shows them, upperdir) of the overlay at ``target``, or None."""
    found = None
    with open("/proc/self/mountinfo") as handle:
        for line in handle:
            fields = line.split(" ")
            dash = fields.index("-")
            if _unescape(fields[4]) != target or fields[dash + 1] != "overlay":
                continue
            layers, upper, _work = overlay_paths(fields[dash + 3])
            found = (layers, upper)  # the last one is the top of a stack
    return found


def _mount8(target, layers, upper, work, _links):
    data = "lowerdir=%s,upperdir=%s,workdir=%s" % (":".join(layers), upper, work)
    proc = subprocess.run(["mount", "-t", "overlay", "-o", data, "overlay", target],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False)
    if proc.returncode != 0:
        message = proc.stdout.strip().split("\n")[0]
        raise RuntimeError("exit %d, \"%s\"" % (proc.returncode, message.split(": ")[-1]))
    return "mount(8)"


def _ours(method):
    def mount(target, layers, upper, work, links):
        return _mount_api.mount_overlay(target, layers, upper, work, [], method=method, links_root=links)
    return mount


def _links_ready(target, layers, links):
    """Untimed: the link dir as an earlier mount of the same overlay left it."""
    _mount_api.prepare_links(_mount_api.links_dir_for(links, target), layers)


# name, function, untimed preparation in the parent
METHODS = [
    ("mount(8)", _mount8, None),
    ("ours, method auto", _ours("auto"), None),
    ("ours, symlinks (new links)", _ours("symlinks"), None),
    ("ours, symlinks (links exist)", _ours("symlinks"), _links_ready),
    ("ours, method mount2", _ours("mount2"), None),
]


def measure_once(function, scratch, layers, serial, prepare=None):
    """Mount in a fresh private namespace in a forked child; return its report."""
    upper = os.path.join(scratch, "state", "%d" % serial, "upper")
    work = os.path.join(scratch, "state", "%d" % serial, "work")
    links = os.path.join(scratch, "links", "%d" % serial)
    target = os.path.join(scratch, "merged")
    os.makedirs(upper)
    os.makedirs(work)
    if prepare:
        prepare(target, layers, links)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        report = {}
        try:
            enter_private_namespace()
            start = time.perf_counter()
            try:
                used = function(target, layers, upper, work, links)
            except OverlayError as error:
                report["error"] = "refused: %s" % error.message
            except (RuntimeError, OSError) as error:
                report["error"] = "failed: %s" % error
            else:
                report["ms"] = (time.perf_counter() - start) * 1000.0
                report["used"] = used
                live = live_overlay(target)
                if live is None:
                    report["error"] = "no overlay at the target afterwards"
                else:
                    shown, live_upper = live
                    if used == "symlinks":  # relative link names: resolve them
                        shown = [os.readlink(os.path.join(_mount_api.links_dir_for(links, target), name))
                                 for name in shown]
                    report["layers"] = len(shown)
                    report["exact"] = shown == layers and live_upper == upper
                    report["upper"] = live_upper is not None
                    report["bottom_visible"] = os.path.exists(os.path.join(target, BOTTOM_FILE))
                    _mount_api.umount2(target)
        except Exception as error:  # anything: report it, never hang the parent
            report["error"] = "%s: %s" % (type(error).__name__, error)
        os.write(write_end, json.dumps(report).encode())
        os._exit(0)
    os.close(write_end)
    chunks = []
    while True:
        chunk = os.read(read_end, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(read_end)
    os.waitpid(pid, 0)
    shutil.rmtree(os.path.join(scratch, "state", "%d" % serial), ignore_errors=True)
    shutil.rmtree(links, ignore_errors=True)
    return json.loads(b"".join(chunks).decode())


def summarise(reports, wanted):
    """(median ms, min, max, outcome, correct) over the runs of one method."""
    errors = [r["error"] for r in reports if "error" in r]
    if errors:
        return None, None, None, errors[0][:100], False
    times = [r["ms"] for r in reports]
    shown = reports[0]
    if not all(r["exact"] and r["bottom_visible"] for r in reports):
        outcome = "truncated: %d of %d layers%s" % (
            shown["layers"], wanted, "" if shown["upper"] else ", upper dropped (read-only)")
        if not shown["bottom_visible"]:
            outcome += ", bottom layer missing"
        correct = False
    else:
        outcome = "ok: %d layers (%s)" % (shown["layers"], shown["used"])
        correct = True
    return statistics.median(times), min(times), max(times), outcome, correct


def _parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--layers", default="10,100,500", help="layer counts (default 10,100,500)")
    parser.add_argument("--runs", type=int, default=15, help="mounts per method and count (default 15)")
    parser.add_argument("--path-length", type=int, default=120, help="characters per layer path (default 120)")
    parser.add_argument("--dir", default=tempfile.gettempdir(),
                        help="where the scratch layers, upper, work and links go (default %(default)s)")
    return parser.parse_args()


def _load_average():
    with open("/proc/loadavg") as handle:
        return " ".join(handle.read().split()[:3])


def _measure_methods(scratch, stack, runs, serials):
    """Every method ``runs`` times on ``stack``, interleaved: {name: [report, ...]}."""
    reports = {name: [] for name, _f, _p in METHODS}
    for _run in range(runs):
        for name, function, prepare in METHODS:  # interleaved: load hits all alike
            reports[name].append(measure_once(function, scratch, stack, next(serials), prepare))
    return reports


def _measure_page_aligned(scratch, layers, stack, count, runs, serials):
    """The summary of mount(8) with a page-aligned top layer, or None when the options fit one page."""
    aligned = page_aligned_top(layers, count)
    if not aligned:
        return None
    twin = [aligned] + stack[1:]
    extra = []
    for _run in range(runs):
        extra.append(measure_once(_mount8, scratch, twin, next(serials)))
    return summarise(extra, count)


def _measure_count(scratch, layers, count, runs, serials):
    """One table row: (count, option bytes, [(method, summary), ...], mount(8) median or None)."""
    stack = layers[:count]
    with open(os.path.join(stack[-1], BOTTOM_FILE), "w") as handle:
        handle.write("bottom\n")
    reports = _measure_methods(scratch, stack, runs, serials)
    option_bytes = len("lowerdir=%s,upperdir=%s,workdir=%s" % (
        ":".join(stack), os.path.join(scratch, "state", "1", "upper"),
        os.path.join(scratch, "state", "1", "work")))
    summaries = [(name, summarise(reports[name], count)) for name, _f, _p in METHODS]
    aligned = _measure_page_aligned(scratch, layers, stack, count, runs, serials)
    if aligned:
        summaries.insert(1, ("mount(8), page-aligned", aligned))
    os.unlink(os.path.join(stack[-1], BOTTOM_FILE))
    baseline = summaries[0][1][0] if summaries[0][1][4] else None
    return (count, option_bytes, summaries, baseline)


def _environment(scratch):
    """(file system type of ``scratch``, first line of ``mount --version``)."""
    fs_type = subprocess.run(["findmnt", "-n", "-o", "FSTYPE", "-T", scratch], stdout=subprocess.PIPE,
                             universal_newlines=True, check=False).stdout.split()[-1:] or ["?"]
    mount_version = subprocess.run(["mount", "--version"], stdout=subprocess.PIPE,
                                   universal_newlines=True, check=False).stdout.split("\n")[0]
    return fs_type[0], mount_version


def _measure_all(args, counts):
    """(rows, fs type, mount version, load before, load after), the scratch dir removed."""
    scratch = tempfile.mkdtemp(prefix="overlayfs-layers-", dir=args.dir)
    os.makedirs(os.path.join(scratch, "merged"))
    load_before = _load_average()
    try:
        layers = build_layers(scratch, max(counts), args.path_length)
        serials = itertools.count(1)
        rows = [_measure_count(scratch, layers, count, args.runs, serials) for count in counts]
        fs_type, mount_version = _environment(scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return rows, fs_type, mount_version, load_before, _load_average()


def _print_rows(rows):
    print("%6s %8s  %-28s %9s %8s %8s %9s  %s" % (
        "layers", "opt KB", "method", "median ms", "min", "max", "vs mnt(8)", "what the kernel mounted"))
    for count, option_bytes, summaries, baseline in rows:
        for name, (median, low, high, outcome, correct) in summaries:
            if median is None:
                times = "%9s %8s %8s" % ("-", "-", "-")
                ratio = "-"
            else:
                times = "%9.2f %8.2f %8.2f" % (median, low, high)
                ratio = "%.2fx" % (median / baseline) if baseline and correct else "-"
            print("%6d %8.1f  %-28s %s %9s  %s" % (count, option_bytes / 1024.0, name, times, ratio, outcome))


def _print_notes():
    print("vs mnt(8): median of the method / median of mount(8), only where mount(8) mounted every layer.")
    print("mount(8), page-aligned: the same layers but a longer top layer path (<= %d bytes), so that"
          % _mount_api.NEW_API_VALUE_LIMIT)
    print("  the page the legacy mount(2) copies ends exactly after a whole layer path.")
    print("A mount(8) time next to \"truncated\" is the time of a wrong mount, not a baseline.")


def main():
    args = _parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root (mounts overlays in private mount namespaces)")
    counts = [int(c) for c in args.layers.split(",")]
    rows, fs_type, mount_version, load_before, load_after = _measure_all(args, counts)

    print("layer paths of %d characters under %s (%s); kernel %s; %s" % (
        args.path_length, args.dir, fs_type, os.uname().release, mount_version))
    print("wall ms of one mount, %d runs each, each in a fresh private mount namespace; "
          "load average %s before, %s after (%d CPUs; other work may be running: medians)"
          % (args.runs, load_before, load_after, os.cpu_count()))
    print()
    _print_rows(rows)
    print()
    _print_notes()


if __name__ == "__main__":
    main()
