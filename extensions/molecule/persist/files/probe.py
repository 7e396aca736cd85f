# -*- coding: utf-8 -*-
"""Observe in one round trip what the persist scenario asserts on.

Runs in the instance (`ansible.builtin.script`), so a whole check costs one
connection instead of one per mount point, unit and file. It only reports;
every judgment is an assert task in the scenario.

Argument: JSON {"mounts": [mount points], "unit_dir": dir, "files": [paths]}.
Prints JSON:
  mounts: {path: findmnt -J --list --mountpoint PATH's filesystems ([] if none)}
  units:  {path: {"name": systemd-escape --path --suffix=mount PATH,
                  "show": systemctl show's properties of that unit,
                  "file": UNIT_DIR/NAME's text or null,
                  "wants": whether UNIT_DIR/local-fs.target.wants/NAME exists}}
  files:  {path: text, or null when there is no such file}
"""

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


def unit(path, unit_dir):
    name = run("systemd-escape", "--path", "--suffix=mount", path).stdout.strip()
    proc = run("systemctl", "show", "--property=" + SHOW, name)
    if proc.returncode != 0:
        sys.exit("systemctl show %s failed (rc=%d): %s" % (name, proc.returncode, proc.stderr))
    show = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    return {
        "name": name,
        "show": show,
        "file": read(os.path.join(unit_dir, name)),
        "wants": os.path.lexists(os.path.join(unit_dir, "local-fs.target.wants", name)),
    }


def read(path):
    if not os.path.lexists(path):
        return None
    with open(path, encoding="utf-8", errors="surrogateescape") as handle:
        return handle.read()


def main():
    request = json.loads(sys.argv[1])
    print(json.dumps({
        "mounts": {p: findmnt(p) for p in request.get("mounts", [])},
        "units": {p: unit(p, request["unit_dir"]) for p in request.get("mounts", [])},
        "files": {p: read(p) for p in request.get("files", [])},
    }))


if __name__ == "__main__":
    main()
