# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""overlay_mount_info and the overlay_host role against the real container engines.

Run by scripts/engines.sh, which starts dockerd and podman containers of
images with 5, 60 and 120 layers and exports ENGINES_* (an engine that could
not start comes with the reason in ENGINES_<ENGINE>_SKIP). Every field the
module returns for a container is compared with what the engine's
``inspect`` reports (GraphDriver.Data) and with mountinfo, read here by
plain string splits.
"""

import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

if "ENGINES_NAME" not in os.environ:
    pytest.skip("run through scripts/engines.sh, which starts the engines", allow_module_level=True)

NAME = os.environ["ENGINES_NAME"]
DEPTHS = [int(d) for d in os.environ.get("ENGINES_DEPTHS", "5 60 120").split()]
DOCKER = os.environ.get("DOCKER_BIN", "/usr/bin/docker")
SKIPS = {"docker": os.environ.get("ENGINES_DOCKER_SKIP", ""),
         "containers-storage": os.environ.get("ENGINES_PODMAN_SKIP", "")}
CLIENTS = {"docker": DOCKER, "containers-storage": "podman"}
LETTERS = {"docker": "d", "containers-storage": "p"}


def _env():
    env = dict(os.environ)
    env["ANSIBLE_PYTHON_INTERPRETER"] = sys.executable
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env.setdefault("ANSIBLE_NOCOLOR", "1")
    # Scripts change directory: the collection must stay importable.
    env["PYTHONPATH"] = os.pathsep.join(os.path.abspath(p) for p in env.get("PYTHONPATH", "").split(os.pathsep) if p)
    return env


def _run(argv, **kwargs):
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=_env(), check=False,
                          **kwargs)
    output = proc.stdout.decode("utf-8", "replace")
    if proc.returncode != 0:
        pytest.fail("%s failed (rc=%d):\n%s" % (" ".join(argv), proc.returncode, output[-20000:]))
    return output


def _mountinfo_overlays():
    """``{mount point: (mount id, {option: value}, [options in order])}`` of every overlay in mountinfo."""
    found = {}
    with open("/proc/self/mountinfo") as handle:
        for line in handle:
            fields = line.rstrip("\n").split(" ")
            sep = fields.index("-", 6)
            if fields[sep + 1] != "overlay":
                continue
            # Our containers' paths hold no escapes; other mount points are only counted.
            options = fields[sep + 3].split(",")
            pairs = dict(o.partition("=")[::2] for o in options)
            found[fields[4].replace("\\040", " ")] = (int(fields[0]), pairs, options)
    return found


class Container(object):
    def __init__(self, engine, depth):
        self.engine = engine
        self.depth = depth
        self.name = "%s-%s%d" % (NAME, LETTERS[engine], depth)
        data = json.loads(_run([CLIENTS[engine], "inspect", self.name]))[0]
        self.graph = data["GraphDriver"]["Data"]
        self.merged = self.graph["MergedDir"]
        self.root = os.path.dirname(os.path.dirname(self.merged))

    def exec_(self, script):
        return _run([CLIENTS[self.engine], "exec", self.name, "sh", "-c", script])

    def __repr__(self):
        return self.name


def _containers():
    out = []
    for engine in ("docker", "containers-storage"):
        for depth in DEPTHS:
            out.append(pytest.param(engine, depth, id="%s-%d" % (engine, depth), marks=pytest.mark.skipif(
                bool(SKIPS[engine]), reason="%s could not start: %s" % (engine, SKIPS[engine]))))
    return out


@pytest.fixture(scope="module")
def running():
    return [Container(e, d) for e in ("docker", "containers-storage") if not SKIPS[e] for d in DEPTHS]


@pytest.fixture(scope="module")
def info(running, tmp_path_factory):
    """The module's results (info.yml), and mountinfo read just before and after."""
    out = tmp_path_factory.mktemp("info") / "info.json"
    before = _mountinfo_overlays()
    _run(["ansible-playbook", "-i", "localhost,", "-c", "local",
          "-e", "ansible_python_interpreter=%s" % sys.executable,
          "-e", json.dumps({"paths": [c.merged for c in running], "out": str(out)}),
          os.path.join(HERE, "info.yml")])
    after = _mountinfo_overlays()
    with open(str(out)) as handle:
        results = json.load(handle)
    return results, before, after


def _by_path(records):
    return {r["path"]: r for r in records}


@pytest.mark.parametrize("engine, depth", _containers())
def test_every_field_matches_inspect_and_mountinfo(engine, depth, running, info):
    container = [c for c in running if (c.engine, c.depth) == (engine, depth)][0]
    results, before, _after = info
    mount_id, pairs, shown = before[container.merged]
    raw_lowers = pairs["lowerdir"].split(":")
    deep = not raw_lowers[0].startswith("/")
    lowers = container.graph["LowerDir"].split(":")
    for run in ("all_plain", "all_resolved", "some_plain", "some_resolved"):
        record = _by_path(results[run])[container.merged]
        resolved = run.endswith("resolved")
        if resolved:
            # Exactly what the engine reports: its diff dirs, top first.
            assert record["lowerdir"] == lowers, run
        else:
            # The short links as mounted, made absolute against the storage root.
            assert record["lowerdir"] == [p if p.startswith("/") else container.root + "/" + p
                                          for p in raw_lowers], run
            assert [os.path.realpath(p) for p in record["lowerdir"]] == lowers, run
        assert record["upperdir"] == container.graph["UpperDir"], run
        assert record["workdir"] == container.graph["WorkDir"], run
        assert record["path"] == container.graph["MergedDir"], run
        assert record["engine"] == engine, run
        assert record["resolved"] is True, run
        assert record["mounted"] is True and record["stacked"] == 1, run
        assert record["mount_id"] == mount_id, run
        assert record["source"] == "overlay", run
        assert (record["persisted"], record["managed"], record["fstab"], record["systemd"]) == \
            ("none", False, [], None), run
        assert record["drift"] == [], run
        live = record["live"]
        for field in ("path", "lowerdir", "upperdir", "workdir", "resolved", "engine", "mount_id", "source"):
            assert live[field] == record[field], (run, field)
        assert live["datadir"] == []
        assert live["relative_to"] == (container.root if deep else None), run
        assert live["shown_options"] == [o for o in shown if o.partition("=")[0] not in
                                         ("rw", "ro", "lowerdir", "upperdir", "workdir")], run
        assert set(record["options"]) <= set(live["shown_options"]), run
        assert live["read_only"] is False and live["form"] == "lowerdir", run
    # The same entry whether asked by path or found on the whole host.
    assert _by_path(results["all_plain"])[container.merged] == _by_path(results["some_plain"])[container.merged]
    assert _by_path(results["all_resolved"])[container.merged] == \
        _by_path(results["some_resolved"])[container.merged]


def test_deep_and_shallow_mounts_of_both_engines_were_compared(running, info):
    _results, before, _after = info
    deep = {c.name: not before[c.merged][1]["lowerdir"].startswith("/") for c in running}
    for container in running:
        # Both engines switch to relative paths once the options would pass a page.
        assert deep[container.name] == (container.depth >= 60 if container.engine == "containers-storage"
                                        else container.depth >= 120), deep
        assert len(container.graph["LowerDir"].split(":")) == container.depth + (container.engine == "docker")


def test_the_whole_host_listing_holds_every_overlay(running, info):
    results, before, after = info
    for run in ("all_plain", "all_resolved"):
        listed = set(r["path"] for r in results[run] if r["mounted"])
        # Mounts of other processes may come and go meanwhile: what was there
        # both before and after must be listed.
        assert set(before) & set(after) <= listed, run
        assert all(r["resolved"] is not None for r in results[run] if r["mounted"]), run
    assert [r["path"] for r in results["some_resolved"]] == sorted(c.merged for c in running)
    assert results["one_resolved"] == [_by_path(results["some_resolved"])[running[-1].merged]]


def test_odd_mounts_beside_the_containers(running, tmp_path):
    """Overlays nothing can resolve, escaped paths, other filesystems: the module still lists all."""
    script = r"""
set -e
d=$1
mkdir -p "$d/cwd/a" "$d/cwd/b" "$d/m" "$d/sp ace" "$d/tab	x/l1" "$d/tab	x/l2" "$d/m2"
cd "$d/cwd"
mount -t overlay overlay -o lowerdir=a:b "$d/m"
cd /
mv "$d/cwd" "$d/gone"
mount -t tmpfs "tmp fs" "$d/sp ace"
mount -t overlay overlay -o "lowerdir=$d/tab	x/l1:$d/tab	x/l2" "$d/m2"
exec "$2" "$3" "$4"
"""
    args = tmp_path / "args.json"
    args.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {"resolve_layers": True}}))
    module = os.path.join(REPO, "plugins", "modules", "overlay_mount_info.py")
    output = _run(["unshare", "--mount", "--propagation", "private", "bash", "-c", script, "odd",
                   str(tmp_path), sys.executable, module, str(args)])
    result = json.loads(output[output.index("{"):])
    assert not result.get("failed"), result
    by_path = _by_path(result["overlay_mounts"])
    unheld = by_path[str(tmp_path / "m")]
    # Relative layers whose base is gone: shown as mounted, and said to be unresolved.
    assert unheld["resolved"] is False and unheld["lowerdir"] == ["a", "b"] and unheld["engine"] == "none"
    assert by_path[str(tmp_path / "m2")]["lowerdir"] == [str(tmp_path / "tab\tx/l1"), str(tmp_path / "tab\tx/l2")]
    for container in running:
        assert by_path[container.merged]["engine"] == container.engine


def test_the_role_beside_the_containers(running, tmp_path):
    if not running:
        pytest.skip("no engine could start")
    marks = {}
    for container in running:
        marks[container.name] = "written by the test into %s" % container.name
        container.exec_("echo '%s' > /probe" % marks[container.name])
    containers = tmp_path / "containers.json"
    containers.write_text(json.dumps({"containers": [
        {"merged": c.merged, "lower": c.graph["LowerDir"].split(":")[1]} for c in running]}))
    root = tmp_path / "root"
    root.mkdir()
    env_output = _run(["unshare", "--mount", "--propagation", "private",
                       os.path.join(HERE, "beside_containers.sh"), str(root), str(containers)] +
                      [c.merged for c in running])
    assert "the containers' overlays are as they were" in env_output
    # The fleet report of that host: this collection's overlays first, counted apart from the containers'.
    with open(str(root / "drift.json")) as handle:
        report = json.load(handle)
    summary = report["hosts"][0]
    assert summary["engines"]["overlayfs.mounts"] == 2
    for engine in ("docker", "containers-storage"):
        mine = len([c for c in running if c.engine == engine])
        if mine:
            assert summary["engines"].get(engine, 0) >= mine, summary
    assert [r for r in report["rows"] if r["engine"] == "overlayfs.mounts"] == []
    # On the host, the containers still work and kept what was written in them.
    for container in running:
        assert container.exec_("cat /probe").strip() == marks[container.name]
        container.exec_("echo again >> /probe")
        assert container.exec_("cat /probe").split("\n")[:2] == [marks[container.name], "again"]
        with open(os.path.join(container.graph["UpperDir"], "probe")) as handle:
            assert handle.read().startswith(marks[container.name])
