# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Print, as JSON, what the persist targets assert on: files, trees and overlay mounts.

Run on the controller through a pipe lookup (the targets run with a local
connection, so the controller's files and mount namespace are the host's)::

    python snapshot.py [--file PATH]... [--tree DIR]... [--list DIR]... [--under DIR]

* ``files``: for each --file, ``null`` when it does not exist, else its
  ``content`` (text, undecodable bytes as surrogate escapes), ``sha1``,
  ``mode`` (octal string), ``uid``, ``gid`` and ``newline_at_end``.
* ``trees``: for each --tree, every entry below it (relative path) as
  ``dir``, ``link:<target>`` or ``file:<sha1>``; ``null`` when missing.
* ``lists``: for each --list, the sorted names in that directory (not
  below it), or ``null`` when it is missing.
* ``overlays``: every overlay mount whose mount point is --under or below it,
  in mountinfo order, with ``id``, ``path`` and ``options`` (super options
  as mountinfo shows them).
"""

import argparse
import hashlib
import json
import os
import re
import stat
import sys

_OCTAL = re.compile(r"\\([0-7]{3})")


def _decode(field):
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), field)


def _file(path):
    try:
        with open(path, "rb") as handle:
            data = handle.read()
        info = os.stat(path)
    except (IOError, OSError):
        return None
    return {
        "content": data.decode("utf-8", "surrogateescape"),
        "sha1": hashlib.sha1(data).hexdigest(),
        "mode": "%04o" % stat.S_IMODE(info.st_mode),
        "uid": info.st_uid,
        "gid": info.st_gid,
        "newline_at_end": data.endswith(b"\n"),
    }


def _tree(top):
    if not os.path.isdir(top):
        return None
    out = {}
    for root, dirs, names in os.walk(top):
        for name in dirs + names:
            full = os.path.join(root, name)
            rel = os.path.relpath(full, top)
            if os.path.islink(full):
                out[rel] = "link:" + os.readlink(full)
            elif os.path.isdir(full):
                out[rel] = "dir"
            else:
                with open(full, "rb") as handle:
                    out[rel] = "file:" + hashlib.sha1(handle.read()).hexdigest()
    return out


def _list(top):
    try:
        return sorted(os.listdir(top))
    except OSError:
        return None


def _overlays(under):
    found = []
    with open("/proc/self/mountinfo", "rb") as handle:
        text = handle.read().decode("utf-8", "surrogateescape")
    for line in text.split("\n"):
        fields = line.split(" ")
        if "-" not in fields[6:]:
            continue
        sep = fields.index("-", 6)
        if fields[sep + 1] != "overlay":
            continue
        path = _decode(fields[4])
        if under and path != under and not path.startswith(under.rstrip("/") + "/"):
            continue
        found.append({"id": int(fields[0]), "path": path, "options": " ".join(fields[sep + 3:])})
    return found


def main(argv):
    parser = argparse.ArgumentParser()
    parser.add_argument("--file", action="append", default=[])
    parser.add_argument("--tree", action="append", default=[])
    parser.add_argument("--list", action="append", default=[])
    parser.add_argument("--under", default=None)
    args = parser.parse_args(argv)
    result = {
        "files": {path: _file(path) for path in args.file},
        "trees": {path: _tree(path) for path in args.tree},
        "lists": {path: _list(path) for path in args.list},
        "overlays": _overlays(args.under),
    }
    sys.stdout.write(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
