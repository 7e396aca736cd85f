# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Capture the engines' mountinfo lines and inspect data as unit test fixtures.

Run by hand on a host where scripts/engines.sh up has started the test
containers: python3 tests/engines/capture_fixtures.py. Writes
tests/unit/plugins/module_utils/_formats/fixtures/engines.json: per container its
mountinfo line, GraphDriver.Data from inspect, the short links its layers
name (link -> target, as readlink shows it), and the storage markers that
exist, so the resolution rules are tested on what the engines really wrote.
"""

import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(os.path.dirname(HERE), "unit", "plugins", "module_utils", "_formats", "fixtures", "engines.json")
DOCKER = os.environ.get("DOCKER_BIN", "/usr/bin/docker")
NAME = os.environ.get("ENGINES_NAME", "ofm-engines")
DEPTHS = os.environ.get("ENGINES_DEPTHS", "5 60 120").split()


def inspect(engine, container):
    cmd = [DOCKER if engine == "docker" else "podman", "inspect", container]
    return json.loads(subprocess.check_output(cmd))[0]["GraphDriver"]["Data"]


def main():
    with open("/proc/self/mountinfo") as handle:
        lines = handle.read().splitlines()
    captured = []
    for engine, letter in (("docker", "d"), ("containers-storage", "p")):
        for depth in DEPTHS:
            data = inspect(engine, "%s-%s%s" % (NAME, letter, depth))
            merged = data["MergedDir"]
            line = [x for x in lines if x.split(" ")[4] == merged][-1]
            root = os.path.dirname(os.path.dirname(merged))
            links = {}
            for name in os.listdir(os.path.join(root, "l")):
                target = os.readlink(os.path.join(root, "l", name))
                if target.split("/")[1] + "/diff" in data["LowerDir"]:
                    links["l/" + name] = target
            store = os.path.dirname(root)
            markers = [m for m in ("image/overlay2", "overlay-layers") if os.path.exists(os.path.join(store, m))]
            captured.append({"engine": engine, "depth": int(depth), "line": line, "inspect": data,
                             "links": links, "markers": markers})
    with open(OUT, "w") as handle:
        json.dump(captured, handle, indent=1, sort_keys=True)
        handle.write("\n")
    sys.stdout.write("wrote %s (%d containers)\n" % (OUT, len(captured)))


if __name__ == "__main__":
    main()
