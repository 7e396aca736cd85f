# -*- coding: utf-8 -*-
"""Observe the dependent overlays (tasks/graph_check.yml) in one round trip.

Runs in the instance (`ansible.builtin.script`). It only observes; every
judgment is an assert task.

Argument: JSON {"mounts": [mount points], "files": [paths]}.
Prints JSON:
  mounts:  {path: [{"id": mount ID, "fstype", "options"}] for what is mounted
            exactly there}
  order:   {path: the unique mount ID (statx STATX_MNT_ID_UNIQUE, Linux 6.8+)
            of what is mounted on top there, or null when not mounted or the
            kernel has none. Unlike mountinfo's IDs, which reuse freed
            numbers, these only grow: a mount made later has a larger one.}
  units:   {path: {"name": the .mount unit's name,
                   "show": `systemctl show` properties (After=, RequiresMountsFor=, ...),
                   "text": the text of its FragmentPath, or null,
                   "verify": {"rc", "output"} of `systemd-analyze verify --man=no FragmentPath`
                             (minbase images have no man(1) to check Documentation=),
                             or null when systemd has no file for it}}
  files:   {path: text, or null when there is no such file}
  failed:  `systemctl --failed` (one line a unit; empty when none failed)
  journal: {"lines": how many lines `journalctl -b` has,
            "cycles": its lines about ordering cycles,
            "units": its lines naming one of the units or mount points}
"""

import ctypes
import ctypes.util
import json
import os
import re
import subprocess
import sys

SHOW = "Id,LoadState,ActiveState,UnitFileState,FragmentPath,SourcePath,What,Where,Options,RequiresMountsFor,Requires,After"
# What systemd logs when a boot transaction had to break an ordering cycle:
# "Found ordering cycle on ...", "Job ... deleted to break ordering cycle ...",
# "Transaction order is cyclic. See system logs for details."
AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW = 0x100
STATX_MNT_ID_UNIQUE = 0x4000
STATX_MNT_ID_OFFSET = 0x90  # __u64 stx_mnt_id in struct statx (256 bytes)
SYS_STATX_X86_64 = 332
CYCLE = re.compile(r"ordering cycle|order is cyclic|break ordering", re.IGNORECASE)


def run(*argv):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, check=False)


def read(path):
    if not path or not os.path.lexists(path):
        return None
    with open(path, encoding="utf-8", errors="surrogateescape") as handle:
        return handle.read()


def mounts(path):
    proc = run("findmnt", "--json", "--list", "--mountpoint", path, "--output", "ID,TARGET,FSTYPE,OPTIONS")
    if proc.returncode == 1 and not proc.stdout.strip():
        return []
    if proc.returncode != 0:
        sys.exit("findmnt %s failed (rc=%d): %s" % (path, proc.returncode, proc.stdout))
    return [{"id": int(fs["id"]), "fstype": fs["fstype"], "options": fs["options"]}
            for fs in json.loads(proc.stdout)["filesystems"]]


def unique_mount_id(path):
    if not os.path.ismount(path):
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    buf = ctypes.create_string_buffer(256)
    args = (AT_FDCWD, path.encode(), AT_SYMLINK_NOFOLLOW, STATX_MNT_ID_UNIQUE, buf)
    rc = libc.statx(*args) if hasattr(libc, "statx") else libc.syscall(SYS_STATX_X86_64, *args)
    if rc != 0:
        sys.exit("statx %s failed: %s" % (path, os.strerror(ctypes.get_errno())))
    mask = ctypes.c_uint32.from_buffer(buf, 0).value
    if not mask & STATX_MNT_ID_UNIQUE:
        return None
    return ctypes.c_uint64.from_buffer(buf, STATX_MNT_ID_OFFSET).value


def unit(path):
    name = run("systemd-escape", "--path", "--suffix=mount", path).stdout.strip()
    show = run("systemctl", "show", "--property=" + SHOW, "--", name)
    if show.returncode != 0:
        sys.exit("systemctl show %s failed (rc=%d): %s" % (name, show.returncode, show.stdout))
    props = dict(line.split("=", 1) for line in show.stdout.splitlines() if "=" in line)
    fragment = props.get("FragmentPath") or None
    verify = None
    if fragment and os.path.exists(fragment):
        proc = run("systemd-analyze", "verify", "--man=no", fragment)
        verify = {"rc": proc.returncode, "output": proc.stdout}
    return {"name": name, "show": props, "text": read(fragment), "verify": verify}


def journal(names):
    proc = run("journalctl", "-b", "--no-pager", "--output=short")
    if proc.returncode != 0:
        sys.exit("journalctl -b failed (rc=%d): %s" % (proc.returncode, proc.stdout))
    lines = proc.stdout.splitlines()
    return {
        "lines": len(lines),
        "cycles": [line for line in lines if CYCLE.search(line)],
        # Not the modules' own log lines (" ansible-...: Invoked with ...").
        "units": [line for line in lines if any(name in line for name in names) and " ansible-" not in line],
    }


def main():
    request = json.loads(sys.argv[1])
    units = {path: unit(path) for path in request["mounts"]}
    failed = run("systemctl", "--failed", "--no-legend", "--plain")
    print(json.dumps({
        "mounts": {path: mounts(path) for path in request["mounts"]},
        "order": {path: unique_mount_id(path) for path in request["mounts"]},
        "units": units,
        "files": {path: read(path) for path in request.get("files", [])},
        "failed": failed.stdout.strip(),
        "journal": journal([u["name"] for u in units.values()] + list(request["mounts"])),
    }))


if __name__ == "__main__":
    main()
