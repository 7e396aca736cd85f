# -*- coding: utf-8 -*-
"""Observe in one round trip what the molecule scenarios assert on.

Shared by every scenario (default, fstab, persist). Runs in the instance
(`ansible.builtin.script`): one connection for a whole check instead of one
per mount point, unit and file. It only observes; every judgment is an
assert task in the scenario.

Argument: JSON {"mounts": [mount points], "unit_dir": dir, "files": [paths],
                "dirs": [dirs], "write_tests": [dirs]}.
Prints JSON:
  mounts:   {path: findmnt's filesystems mounted exactly there ([] if none)}
  units:    {path: {"name": the .mount unit's name,
                    "active": `systemctl is-active NAME`,
                    "enabled": `systemctl is-enabled NAME`,
                    "show": some `systemctl show NAME` properties,
                    "file": UNIT_DIR/NAME's text, or null when there is none,
                    "wants": whether UNIT_DIR/local-fs.target.wants/NAME exists}}
  files:    {path: text, or null when there is no such file}
  dirs:     {dir: {name: text} for each regular file directly in dir, or null
             when dir does not exist}
  overlays: every overlay mount point on the host, in mount order
  writable: {dir: "yes", or the errno name (EROFS, ...) creating a file there
             failed with; a file it could create is removed at once}
"""

import errno
import json
import os
import subprocess
import sys

SHOW = "Id,LoadState,ActiveState,UnitFileState,FragmentPath,SourcePath,What,Where,Type,Options,RequiresMountsFor"


def run(*argv):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, check=False)


def findmnt(path):
    proc = run("findmnt", "--json", "--list", "--mountpoint", path,
               "--output", "TARGET,SOURCE,FSTYPE,OPTIONS")
    if proc.returncode == 1 and not proc.stdout.strip():
        return []
    if proc.returncode != 0:
        sys.exit("findmnt %s failed (rc=%d): %s" % (path, proc.returncode, proc.stderr))
    return json.loads(proc.stdout)["filesystems"]


def overlay_targets():
    proc = run("findmnt", "--raw", "--noheadings", "--types", "overlay", "--output", "TARGET")
    if proc.returncode not in (0, 1):
        sys.exit("findmnt failed (rc=%d): %s" % (proc.returncode, proc.stderr))
    return proc.stdout.splitlines()


def unit(path, unit_dir):
    name = run("systemd-escape", "--path", "--suffix=mount", path).stdout.strip()
    show = run("systemctl", "show", "--property=" + SHOW, "--", name)
    if show.returncode != 0:
        sys.exit("systemctl show %s failed (rc=%d): %s" % (name, show.returncode, show.stderr))
    return {
        "name": name,
        # Both print the state even when they exit non-zero (inactive, disabled).
        "active": run("systemctl", "is-active", "--", name).stdout.strip(),
        "enabled": run("systemctl", "is-enabled", "--", name).stdout.strip(),
        "show": dict(line.split("=", 1) for line in show.stdout.splitlines() if "=" in line),
        "file": read(os.path.join(unit_dir, name)),
        "wants": os.path.lexists(os.path.join(unit_dir, "local-fs.target.wants", name)),
    }


def read(path):
    if not os.path.lexists(path):
        return None
    with open(path, encoding="utf-8", errors="surrogateescape") as handle:
        return handle.read()


def listing(directory):
    if not os.path.isdir(directory):
        return None
    return {entry.name: read(entry.path) for entry in os.scandir(directory)
            if entry.is_file(follow_symlinks=False)}


def writable(directory):
    probe = os.path.join(directory, ".overlayfs-molecule-write-test")
    try:
        fd = os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except OSError as error:
        return errno.errorcode.get(error.errno, str(error.errno))
    os.close(fd)
    os.unlink(probe)
    return "yes"


def main():
    request = json.loads(sys.argv[1])
    print(json.dumps({
        "mounts": {p: findmnt(p) for p in request.get("mounts", [])},
        "units": {p: unit(p, request["unit_dir"]) for p in request.get("mounts", [])},
        "files": {p: read(p) for p in request.get("files", [])},
        "dirs": {d: listing(d) for d in request.get("dirs", [])},
        "overlays": overlay_targets(),
        "writable": {d: writable(d) for d in request.get("write_tests", [])},
    }))


if __name__ == "__main__":
    main()
