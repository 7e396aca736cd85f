# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run overlay_mount directly (no ansible-playbook) for fault-injection targets.

A fault target runs the module dozens of times, kills it, runs it twenty at
once: through the module file itself each run costs a Python start instead of
a playbook. Helpers check what every fault must leave: fstab complete and as
before (or correctly changed), no stray mount, created dirs gone, and a next
run that converges.
"""

import json
import os
import subprocess
import sys
import tempfile

COLLECTIONS = os.environ["ANSIBLE_COLLECTIONS_PATH"]
MODULES = os.path.join(COLLECTIONS, "ansible_collections", "overlayfs", "mounts", "plugins", "modules")
MODULE = os.path.join(MODULES, "overlay_mount.py")
ROOT = os.environ["OVERLAY_TEST_ROOT"]


def log(text):
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def args_file(args):
    fd, path = tempfile.mkstemp(prefix="args.", suffix=".json", dir=ROOT)
    with os.fdopen(fd, "w") as handle:
        json.dump({"ANSIBLE_MODULE_ARGS": args}, handle)
    return path


def start(args, module=MODULE, **popen):
    """Start ``module`` (overlay_mount, a module file or a script that runs one) on ``args``.

    Returns (process, args file).
    """
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([COLLECTIONS, os.path.dirname(os.path.abspath(__file__))]))
    path = args_file(args)
    proc = subprocess.Popen([sys.executable, module, path], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env, **popen)
    return proc, path


def finish(proc, path):
    out, err = proc.communicate()
    os.unlink(path)
    try:
        return json.loads(out.decode("utf-8", "replace"))
    except ValueError:
        raise AssertionError("module printed no JSON (rc=%s): %s %s" % (proc.returncode, out, err))


def run(args, fails=False, module=MODULE):
    result = finish(*start(args, module))
    if bool(result.get("failed")) != fails:
        raise AssertionError("expected %s, got: %s" % ("a failure" if fails else "success",
                                                       json.dumps(result, indent=1)[:4000]))
    return result


def overlay_mounts_under(base):
    """Mount points of overlays at or below ``base`` (mountinfo, octal escapes decoded)."""
    found = []
    with open("/proc/self/mountinfo", "rb") as handle:
        for line in handle.read().decode("utf-8", "surrogateescape").splitlines():
            left, _sep, right = line.partition(" - ")
            if right.split(" ")[0] != "overlay":
                continue
            point = left.split(" ")[4].replace("\\040", " ").replace("\\011", "\t").replace("\\134", "\\")
            if point == base or point.startswith(base.rstrip("/") + "/"):
                found.append(point)
    return found


def read_bytes(path):
    with open(path, "rb") as handle:
        return handle.read()


def tree(path):
    """Names, types, modes, owners and contents below ``path``: what a victim must keep."""
    out = []
    for top, dirs, names in os.walk(path):
        dirs.sort()
        for name in sorted(dirs + names):
            full = os.path.join(top, name)
            st = os.lstat(full)
            content = os.readlink(full) if os.path.islink(full) else (
                read_bytes(full) if os.path.isfile(full) else None)
            out.append((os.path.relpath(full, path), st.st_mode, st.st_uid, st.st_gid, content))
    return out


def check(condition, message):
    if not condition:
        raise AssertionError(message)
