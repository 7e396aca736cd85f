# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""How long overlay_mount_info's own work takes on a host with 2,000 overlay mounts.

Builds a mountinfo text like a busy Docker host's (2,000 overlays of 30
short-symlink layers given as relative paths, an SELinux context with quoted
commas, escaped spaces, plus the usual non-overlay mounts), an fstab with 50
overlay lines and 20 overlay units, then times the module's pure work on it
(parse, normalise, compare: ``_mountinfo.parse`` + ``_inventory.gather``) and,
as the baseline measured in the same run, libmount parsing the same file
(``findmnt --tab-file FILE -t overlay -J``, a C parser that only parses).

    python3 benchmarks/info_2000.py [--mounts 2000] [--runs 15]

Prints a table; the figure that matters is the median of "ours".
"""

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from _collection_path import importable  # noqa: E402


importable()

from ansible_collections.overlayfs.mounts.plugins.module_utils._report import inventory as _inventory
from ansible_collections.overlayfs.mounts.plugins.module_utils._formats import mountinfo as _mountinfo  # noqa: E402
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.overlay_options import defaults_from_parameters  # noqa: E402
from ansible_collections.overlayfs.mounts.plugins.module_utils._persist.fstab_backend import FstabBackend, fstab_line  # noqa: E402
from ansible_collections.overlayfs.mounts.plugins.module_utils._persist.systemd_backend import SystemdBackend, unit_plan  # noqa: E402
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.declaration import Declaration  # noqa: E402


def build_mountinfo(count, layers=30):
    lines = [
        "22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,errors=remount-ro",
        "23 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw",
        "24 22 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:2 - sysfs sysfs rw",
        "25 22 0:5 / /dev rw,nosuid shared:8 - devtmpfs udev rw,size=4096k,mode=755",
        "29 22 254:1 / /var/lib/docker rw,relatime shared:20 - ext4 /dev/vdb rw",
    ]
    for i in range(count):
        layer_ids = ":".join("l/%026X" % (i * layers + j) for j in range(layers))
        root = "/var/lib/docker/overlay2/%064x" % i
        lines.append(
            "%d 29 0:%d / %s/merged rw,relatime shared:%d - overlay overlay rw,"
            'context="system_u:object_r:container_file_t:s0:c%d,c%d",lowerdir=%s,'
            "upperdir=%s/diff,workdir=%s/work,index=off,xino=off"
            % (100 + i, 100 + i, root, 30 + i, i % 1000, (i + 7) % 1000, layer_ids, root, root))
    lines.append("9999 22 0:9 / /srv/with\\040space rw - overlay overlay rw,lowerdir=/srv/a:/srv/b")
    return "\n".join(lines) + "\n"


def build_persisted(count=50, units=20):
    fstab = ["# /etc/fstab", "UUID=1 / ext4 errors=remount-ro 0 1"]
    for i in range(count):
        decl = Declaration("/srv/app%d" % i, ["/srv/l/%d" % i, "/srv/base"], "/srv/u/%d" % i, "/srv/w/%d" % i)
        fstab.append(fstab_line(decl).text)
    unit_files = []
    for i in range(units):
        decl = Declaration("/srv/unit%d" % i, ["/srv/l/u%d" % i, "/srv/base"], "/srv/u/u%d" % i, "/srv/w/u%d" % i)
        unit_files.append(("/etc/systemd/system/srv-unit%d.mount" % i, unit_plan(decl)[0]))
    return "\n".join(fstab) + "\n", unit_files


def ours(text, fstab, units, defaults):
    existing = set()
    exists = existing.__contains__  # nothing exists: no syscalls, pure work only
    persisted = {FstabBackend.name: FstabBackend.configs_in([("/etc/fstab", fstab)]),
                 SystemdBackend.name: SystemdBackend.configs_in(units)}
    return _inventory.gather(_mountinfo.parse(text), defaults, persisted, exists=exists)


def _cpu_seconds():
    """CPU time of this process and its finished children: steadier than the
    wall clock on a shared machine, and fair to the findmnt baseline."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def time_runs(function, runs):
    samples = []
    for _i in range(runs):
        start = _cpu_seconds()
        function()
        samples.append((_cpu_seconds() - start) * 1000.0)
    return statistics.median(samples), min(samples), max(samples)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--mounts", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()

    text = build_mountinfo(args.mounts)
    fstab, units = build_persisted()
    defaults = defaults_from_parameters({})
    result = ours(text, fstab, units, defaults)
    overlays = sum(1 for r in result if r["mounted"])
    assert overlays == args.mounts + 1, overlays
    assert result[0]["lowerdir"][0].startswith("l/") or result[0]["lowerdir"][0].startswith("/")

    rows = [("ours: parse + normalise + compare", time_runs(lambda: ours(text, fstab, units, defaults), args.runs))]
    with tempfile.NamedTemporaryFile("w", suffix=".mountinfo", delete=False) as handle:
        handle.write(text)
        path = handle.name
    try:
        findmnt = ["findmnt", "--tab-file", path, "-t", "overlay", "-J", "-o", "TARGET,OPTIONS"]
        if subprocess.run(findmnt, stdout=subprocess.DEVNULL, check=False).returncode == 0:
            rows.append(("baseline: findmnt parse of the same file",
                         time_runs(lambda: subprocess.run(findmnt, stdout=subprocess.DEVNULL, check=True),
                                   args.runs)))
    finally:
        os.unlink(path)

    print("mountinfo: %d overlay mounts (30 layers each), %d KB; fstab: 50 overlay lines; 20 units"
          % (args.mounts, len(text) // 1024))
    print("CPU time (user + system, this process and its children), %d runs each" % args.runs)
    print("%-44s %10s %10s %10s %8s" % ("what", "median ms", "min ms", "max ms", "ratio"))
    base = rows[-1][1][0] if len(rows) > 1 else None
    for name, (median, low, high) in rows:
        ratio = "%.2fx" % (median / base) if base else "-"
        print("%-44s %10.1f %10.1f %10.1f %8s" % (name, median, low, high, ratio))
    print("target: ours under 100 ms -> %s" % ("met" if rows[0][1][0] < 100 else "NOT MET"))


if __name__ == "__main__":
    main()
