# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""overlay_upper refuses to reset or commit an overlay a podman container runs on.

A static busybox tree is the overlay's lower layer; ``podman run --rootfs
<merged dir>`` starts a container on it, which holds the overlay in its own
mount namespace. Reset (with and without a backup) and commit, in check mode
and for real, must fail naming the container (``podman container <id>`` in
``elsewhere`` or ``holders``) and change nothing: the upper dir byte for byte,
no layer, no backup, no journal, the mount and the fstab line as they were.
Once the container is gone, the same commit goes through.

Runs as root in a private mount namespace (``unshare --mount``) on a tmpfs;
the container is started from that namespace and removed at the end. Needs
podman (configured as scripts/engines.sh leaves it) and /bin/busybox.
"""

import os
import shutil
import subprocess
import sys
from typing import Any, Dict, List

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

import upper_manifest  # noqa: E402  (tests/integration)
from module_runner import InProcess  # noqa: E402

BUSYBOX = "/bin/busybox"


def _skip_reason() -> str:
    if os.geteuid() != 0:
        return "mounts overlays and runs podman: needs root"
    if os.environ.get("ENGINES_PODMAN_SKIP"):
        return "podman could not start: %s" % os.environ["ENGINES_PODMAN_SKIP"]
    if shutil.which("podman") is None or not os.access(BUSYBOX, os.X_OK):
        return "needs podman and %s (scripts/engines.sh installs them)" % BUSYBOX
    return ""


@pytest.mark.skipif(bool(_skip_reason()), reason=_skip_reason() or "runs")
def test_reset_and_commit_refused_while_a_container_runs_on_the_overlay(tmp_path):
    pythonpath = tmp_path / "pythonpath" / "ansible_collections" / "overlayfs"
    pythonpath.mkdir(parents=True)
    (pythonpath / "mounts").symlink_to(REPO)
    env = dict(os.environ, PYTHONPATH=str(tmp_path / "pythonpath"), PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.run(["unshare", "--mount", "--propagation", "private", sys.executable, os.path.abspath(__file__),
                           str(tmp_path / "scratch")],
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300, check=False)
    output = proc.stdout.decode("utf-8", "replace")
    sys.stdout.write(output)
    if proc.returncode != 0:
        pytest.fail("rc=%d:\n%s" % (proc.returncode, output[-20000:]))


# ---- in the private mount namespace -------------------------------------------------------------

def sh(*argv: str) -> str:
    proc = subprocess.run(list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0:
        raise AssertionError("%s failed (rc %d): %s" % (" ".join(argv), proc.returncode,
                                                        proc.stdout.decode("utf-8", "replace").strip()))
    return proc.stdout.decode("utf-8", "replace").strip()


def busybox_tree(path: str) -> None:
    """A root filesystem of one static busybox: enough for ``podman run --rootfs ... /bin/sleep``."""
    for name in ("bin", "proc", "dev", "sys", "tmp", "etc", "run"):
        os.makedirs(os.path.join(path, name))
    shutil.copy2(BUSYBOX, path + "/bin/busybox")
    for applet in ("sh", "sleep", "cat"):
        os.symlink("busybox", path + "/bin/" + applet)


def at_mount_point(merged: str) -> List[str]:
    with open("/proc/self/mountinfo") as handle:
        return [line for line in handle if line.split(" ")[4] == merged]


def state(decl: Dict[str, Any], base: str) -> Dict[str, Any]:
    """What a refused task must leave alone."""
    with open(decl["fstab"]) as handle:
        fstab = handle.read()
    return {"upper": upper_manifest.manifest(decl["upperdir"], keep_overlay_xattrs=True),
            "merged": upper_manifest.manifest(decl["path"]), "mounts": at_mount_point(decl["path"]),
            "fstab": fstab, "listing": sorted(os.listdir(base))}


def named(result: Dict[str, Any], short_id: str) -> bool:
    """Whether the failure names the container: an ``owner`` in elsewhere or holders, and the message."""
    owners = [h.get("owner") or "" for h in (result.get("elsewhere") or []) + (result.get("holders") or [])]
    wanted = "podman container %s" % short_id
    return wanted in owners and wanted in result.get("msg", "")


def refused(run: InProcess, decl: Dict[str, Any], base: str, short_id: str) -> List[str]:
    """Reset, reset with backup, commit; each in check mode and for real: failed, naming the container, no change."""
    tasks = [("reset", {"state": "reset"}), ("reset, backup", {"state": "reset", "backup": base + "/backup"}),
             ("reset, backup beside", {"state": "reset", "backup": True}),
             ("commit", {"state": "committed", "layer": base + "/layer"})]
    before = state(decl, base)
    lines = []
    for label, task in tasks:
        for check_mode in (True, False):
            result = run("overlay_upper", dict(decl, **task), check_mode=check_mode)
            what = "%s%s" % (label, " (check mode)" if check_mode else "")
            assert result.get("failed"), "%s went through while the container runs: %s" % (what, result)
            assert named(result, short_id), "%s: the container %s is not named: %s" % (what, short_id, result)
            assert "in use" in result["msg"], "%s: %s" % (what, result["msg"])
            after = state(decl, base)
            for key in before:
                assert after[key] == before[key], "%s changed %s: %s" % (what, key, upper_manifest.compare(
                    before[key], after[key])[:10] if key in ("upper", "merged") else (before[key], after[key]))
            lines.append("%-32s refused: %s" % (what, result["msg"][:160]))
    return lines


def scenario(scratch: str) -> None:
    os.makedirs(scratch)
    sh("mount", "-t", "tmpfs", "-o", "mode=755", "tmpfs", scratch)
    base = scratch
    busybox_tree(base + "/image")
    os.makedirs(base + "/extra")
    upper_manifest.write(os.fsencode(base + "/extra/from-lower"), b"lower\n")
    with open(base + "/fstab", "w") as handle:
        handle.write("# the holder test's fstab\n")
    decl = {"path": base + "/merged", "lowerdir": [base + "/image", base + "/extra"], "upperdir": base + "/upper",
            "workdir": base + "/work", "persist": "fstab", "fstab": base + "/fstab", "unit_dir": base + "/units",
            "links_dir": base + "/links"}
    run = InProcess()
    done = run("overlay_mount", dict(decl, create_dirs=True))
    assert not done.get("failed") and done.get("changed"), done
    upper_manifest.write(os.fsencode(base + "/merged/kept"), b"written through the overlay\n")
    os.unlink(base + "/merged/extra" if os.path.exists(base + "/merged/extra") else base + "/merged/from-lower")
    name = "ofm-upper-holders-%d" % os.getpid()
    container = sh("podman", "run", "-d", "--name", name, "--network", "none", "--rootfs", decl["path"],
                   "/bin/sleep", "900")
    try:
        print("container %s on %s" % (container[:12], decl["path"]), flush=True)
        for line in refused(run, decl, base, container[:12]):
            print(line, flush=True)
    finally:
        sh("podman", "rm", "-f", "-t", "0", name)
    view = upper_manifest.manifest(decl["path"])
    result = run("overlay_upper", dict(decl, state="committed", layer=base + "/layer"))
    assert not result.get("failed") and result.get("changed"), "the commit once the container is gone: %s" % result
    diff = upper_manifest.compare(view, upper_manifest.manifest(decl["path"]), names=("before", "after"))
    assert not diff, "the commit changed the merged view: %s" % diff[:10]
    print("container removed: the commit went through, the merged view unchanged (%d entries)" % len(view), flush=True)


if __name__ == "__main__":
    scenario(sys.argv[1])
