# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Small glue that reads host facts and carries out actions.

Everything that decides lives in the pure modules; this file only touches
/proc, /sys, the filesystem and the mount system calls.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import stat

from ansible_collections.overlayfs.mounts.plugins.module_utils._errors import OverlayError
from ansible_collections.overlayfs.mounts.plugins.module_utils._mount_api import mount_overlay, umount2  # noqa: F401
from ansible_collections.overlayfs.mounts.plugins.module_utils._mountinfo import parse
from ansible_collections.overlayfs.mounts.plugins.module_utils._options import defaults_from_parameters

MOUNTINFO = "/proc/self/mountinfo"
PARAMETERS_DIR = "/sys/module/overlay/parameters"


def read_mountinfo(path=MOUNTINFO):
    with open(path, "rb") as handle:
        return parse(handle.read().decode("utf-8", "surrogateescape"))


def read_defaults(directory=PARAMETERS_DIR):
    """The overlay module's defaults; Kconfig defaults where it is not loaded."""
    values = {}
    try:
        names = os.listdir(directory)
    except OSError:
        names = []
    for name in names:
        try:
            with open(os.path.join(directory, name)) as handle:
                values[name] = handle.read().strip()
        except (IOError, OSError):
            continue
    return defaults_from_parameters(values)


def path_kind(path):
    """``dir``, ``missing``, or a word for what else is there."""
    try:
        st = os.stat(path)
    except OSError:
        if os.path.lexists(path):
            return "dangling symlink"
        return "missing"
    if stat.S_ISDIR(st.st_mode):
        return "dir"
    if stat.S_ISREG(st.st_mode):
        return "regular file"
    return "special file"


def _under(candidate, mount_point):
    return candidate == mount_point or candidate.startswith(mount_point.rstrip("/") + "/")


def find_holders(mount_point, limit=50):
    """Processes in this mount namespace that use a path at or below ``mount_point``.

    Looks at each process's cwd, root, executable, open files and mapped
    files. Processes in other mount namespaces see other mounts and are
    skipped. Returns ``[{pid, command, uses}]``.
    """
    try:
        own_ns = os.readlink("/proc/self/ns/mnt")
    except OSError:
        own_ns = None
    own_pid = os.getpid()
    holders = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == own_pid:
            continue
        base = "/proc/" + name
        try:
            if own_ns is not None and os.readlink(base + "/ns/mnt") != own_ns:
                continue
        except OSError:
            continue
        uses = []
        for link in ("cwd", "root", "exe"):
            try:
                target = os.readlink(base + "/" + link)
            except OSError:
                continue
            if link == "root" and target == "/":
                continue
            if _under(target, mount_point):
                uses.append("%s %s" % (link, target))
        try:
            fds = os.listdir(base + "/fd")
        except OSError:
            fds = []
        for fd in fds:
            try:
                target = os.readlink(base + "/fd/" + fd)
            except OSError:
                continue
            if _under(target, mount_point):
                uses.append("fd %s %s" % (fd, target))
        try:
            with open(base + "/maps") as handle:
                mapped = set()
                for line in handle:
                    parts = line.split(None, 5)
                    if len(parts) == 6:
                        target = parts[5].rstrip("\n")
                        if target not in mapped and _under(target, mount_point):
                            mapped.add(target)
                            uses.append("map %s" % target)
        except (IOError, OSError):
            pass
        if uses:
            try:
                with open(base + "/comm") as handle:
                    command = handle.read().strip()
            except (IOError, OSError):
                command = "?"
            holders.append({"pid": int(name), "command": command, "uses": uses[:5]})
            if len(holders) >= limit:
                break
    return holders


def make_dirs(path, mode=None, uid=None, gid=None):
    """Create ``path`` and missing parents; return the dirs created, outermost first."""
    created = []
    missing = []
    current = path
    while not os.path.lexists(current):
        missing.append(current)
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    for directory in reversed(missing):
        os.mkdir(directory)
        created.append(directory)
    if created:
        if mode is not None:
            os.chmod(path, mode)
        if uid is not None or gid is not None:
            os.chown(path, -1 if uid is None else uid, -1 if gid is None else gid)
    return created


def remove_empty_dirs(created):
    """Undo make_dirs where the directories are still empty (never removes data)."""
    for directory in reversed(created):
        try:
            os.rmdir(directory)
        except OSError:
            break


def mount(decl, method="auto", links_root=None):
    return mount_overlay(
        decl["path"], decl["lowerdir"], decl["upperdir"], decl["workdir"],
        decl["options"], decl.get("datadir") or (), method=method, links_root=links_root)


def unmount(module, path):
    """umount(8) the top mount at ``path``; a busy mount names its holders."""
    umount = module.get_bin_path("umount", required=True)
    rc, out, err = module.run_command([umount, path])
    if rc != 0:
        holders = find_holders(path)
        raise OverlayError(
            "unmounting %s failed (%s, rc=%d): %s%s" % (
                path, " ".join([umount, path]), rc, (err or out).strip(),
                "; held by " + describe_holders(holders) if holders else ""),
            holders=holders, rc=rc, stderr=err)


def describe_holders(holders):
    return ", ".join("pid %d (%s: %s)" % (h["pid"], h["command"], "; ".join(h["uses"])) for h in holders)
