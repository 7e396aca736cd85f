# -*- coding: utf-8 -*-
"""Create lower layer dirs and files in one round trip (a loop costs one per item).

Runs in the instance (`ansible.builtin.script`). Argument: JSON
{"dirs": [paths], "files": [{"path": path, "content": text}],
"links": [{"path": path, "target": text}]}. Creates what is missing or
different (a link pointing elsewhere is replaced) and prints "changed", else
"unchanged".
"""

import json
import os
import sys


def main():
    request = json.loads(sys.argv[1])
    changed = False
    wanted = list(request.get("dirs", [])) + [os.path.dirname(f["path"]) for f in request.get("files", [])]
    for path in wanted:
        if not os.path.isdir(path):
            os.makedirs(path, 0o755)
            changed = True
    for item in request.get("files", []):
        try:
            with open(item["path"], encoding="utf-8") as handle:
                same = handle.read() == item["content"]
        except FileNotFoundError:
            same = False
        if not same:
            with open(item["path"], "w", encoding="utf-8") as handle:
                handle.write(item["content"])
            os.chmod(item["path"], 0o644)
            changed = True
    for item in request.get("links", []):
        if os.path.islink(item["path"]) and os.readlink(item["path"]) == item["target"]:
            continue
        if os.path.lexists(item["path"]):
            os.unlink(item["path"])
        os.makedirs(os.path.dirname(item["path"]), 0o755, exist_ok=True)
        os.symlink(item["target"], item["path"])
        changed = True
    print("changed" if changed else "unchanged")


if __name__ == "__main__":
    main()
