# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""layer_copy and merged_reader against the running kernel: real overlays, real upper dirs.

Each test runs this file as a script in its own private mount namespace
(``unshare --mount --propagation private``) under the test's temp dir, so
its mounts never reach the host and vanish with the namespace. The kernel
writes each upper itself: the cases (``upper_manifest.build_cases``) are
made through a live overlay. A commit must show the same merged view,
compared with ``upper_manifest.manifest``: content, holes, owners, modes,
nanosecond mtimes (directories' included), xattrs, hard links.
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SKIP = 77  # a scenario's exit status for "the kernel cannot do this here"; its last line says why


def _import_root():
    """A directory from which ``ansible_collections.overlayfs.mounts`` imports this checkout."""
    parts = REPO.split(os.sep)
    if parts[-3:] == ["ansible_collections", "overlayfs", "mounts"]:
        return os.sep.join(parts[:-3])
    root = tempfile.mkdtemp(prefix="overlayfs-mounts-integration-")
    os.makedirs(os.path.join(root, "ansible_collections", "overlayfs"))
    os.symlink(REPO, os.path.join(root, "ansible_collections", "overlayfs", "mounts"))
    return root


def run_scenario(name, base, *args, timeout=600):
    """Run ``scenario_<name>(base, *args)`` in a private mount namespace; its JSON report, or skip/fail."""
    if os.geteuid() != 0:
        pytest.skip("mounts overlays: needs root")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([_import_root(), HERE]))
    proc = subprocess.run(["unshare", "--mount", "--propagation", "private", sys.executable, os.path.abspath(__file__),
                           name, str(base)] + [str(a) for a in args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          env=env, timeout=timeout, check=False)
    out, err = proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace")
    if proc.returncode == SKIP:
        pytest.skip(out.strip().splitlines()[-1])
    assert proc.returncode == 0, "scenario %s failed (rc %d):\n%s\n%s" % (name, proc.returncode, out[-5000:], err[-20000:])
    return json.loads(out.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------
# Tests (run by pytest)
# ---------------------------------------------------------------------------------------------

def test_commit_keeps_the_merged_view(tmp_path):
    report = run_scenario("commit", tmp_path, "trusted")
    counts, notes = report["counts"], report["notes"]
    assert not [case for case, note in notes.items() if note != "done"], notes
    assert counts["whiteouts"] >= 6 and counts["opaque_dirs"] >= 2 and counts["redirects"] == 2, counts
    assert counts["metacopy"] >= 4 and counts["hardlinks"] >= 4 and counts["specials"] == 4, counts


def test_commit_of_a_userxattr_overlay(tmp_path):
    report = run_scenario("commit", tmp_path, "user")
    assert report["counts"]["whiteouts"] >= 6 and report["counts"]["metacopy"] == 0, report


def test_backup_and_restore_of_an_upper(tmp_path):
    report = run_scenario("raw", tmp_path)
    # The kernel may make its whiteouts hard links of one inode: copied as such, counted as hard links.
    assert report["counts"]["whiteouts"] >= 1 and report["counts"]["hardlinks"] >= 4, report


def test_merged_view_leaves_no_mount_even_when_killed(tmp_path):
    run_scenario("sigkill", tmp_path)


def test_merged_view_with_one_lowerdir_value(tmp_path):
    run_scenario("string_form", tmp_path)


def test_commit_over_data_only_layers(tmp_path):
    run_scenario("datadir", tmp_path)


def test_remove_tree_on_real_mounts(tmp_path):
    run_scenario("remove_tree", tmp_path)


@pytest.mark.skipif(not os.environ.get("LAYER_COPY_BENCH"), reason="a benchmark: set LAYER_COPY_BENCH=1 (on a real disk)")
def test_speed_against_cp(tmp_path):
    report = run_scenario("bench", os.environ.get("LAYER_COPY_BENCH_DIR") or tmp_path, 5, timeout=1800)
    print(json.dumps(report, indent=1))
    assert report["write_layer"] <= 1.5 * report["cp -a"] + 0.2, report


def test_manifest_sees_every_difference(tmp_path):
    import upper_manifest  # pylint: disable=import-outside-toplevel
    root = tmp_path / "t"
    (root / "d").mkdir(parents=True)
    (root / "d" / "f").write_bytes(b"abc")
    os.symlink("f", str(root / "d" / "l"))
    os.link(str(root / "d" / "f"), str(root / "g"))
    first = upper_manifest.manifest(str(root))
    assert first[b"d/f"]["hardlinks"] == (b"d/f", b"g") and first[b"d/l"]["target"] == b"f"
    assert first[b"d/f"]["segments"] == [(0, 3)] and first[b"."]["type"] == "dir"
    os.utime(str(root / "d"), ns=(1, 2))
    (root / "g").unlink()
    os.chmod(str(root / "d" / "f"), 0o600)
    second = upper_manifest.manifest(str(root))
    lines = upper_manifest.compare(first, second, names=("before", "after"))
    assert "b'g': only in before (file)" in lines and "b'd/f': mode: before=0o644 after=0o600" in lines, lines
    assert any(line.startswith("b'd': mtime_ns") for line in lines)
    assert not any(line.startswith("b'd': mtime_ns") for line in upper_manifest.compare(first, second, dir_mtimes=False))


# ---------------------------------------------------------------------------------------------
# Scenarios (run as a script, as root, in a private mount namespace)
# ---------------------------------------------------------------------------------------------

class Skip(Exception):
    """The kernel or filesystem here cannot do what the scenario needs."""


def _dirs(base, *names):
    made = {}
    for name in names:
        made[name] = os.path.join(base, name)
        os.makedirs(made[name], exist_ok=True)
    return made


def mount(target, lowers, upper=None, work=None, options=(), data=()):
    """mount(8) an overlay (few short layers here, so the one-page option string is no limit)."""
    lowerdir = ":".join(lowers) + "".join("::" + d for d in data)
    opts = ["lowerdir=" + lowerdir] + (["upperdir=" + upper, "workdir=" + work] if upper else []) + list(options)
    proc = subprocess.run(["mount", "-t", "overlay", "overlay", "-o", ",".join(opts), target],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    if proc.returncode:
        raise Skip("the kernel refused the overlay %s: %s" % (",".join(opts), proc.stdout.decode().strip()))
    return target


def umount(target):
    subprocess.run(["umount", target], check=True)


def _mount_options(kind):
    return (["userxattr"] if kind == "user" else ["redirect_dir=on", "metacopy=on"],
            "user.overlay." if kind == "user" else "trusted.overlay.")


def _overlay_marks_left(root, prefix):
    """Paths in a written layer that carry an overlay mark other than ``opaque=y``."""
    found = []
    for top, dirs, files in os.walk(os.fsencode(root)):
        for name in [top] + [os.path.join(top, n) for n in dirs + files]:
            for attr in os.listxattr(name, follow_symlinks=False):
                if attr.startswith(prefix) and not attr.startswith(prefix + "overlay."):
                    if attr != prefix + "opaque" or os.getxattr(name, attr, follow_symlinks=False) != b"y":
                        found.append((name, attr))
    return sorted(set(found))


def _xwhiteout_behaviour(merged):
    """What this kernel does with the planted xattr whiteout xw/victim.txt of a live upper."""
    victim = os.path.join(merged, "xw", "victim.txt")
    return {"lookup hides it": not os.path.lexists(victim),
            "readdir hides it": "victim.txt" not in os.listdir(os.path.join(merged, "xw"))}


def scenario_commit(base, kind):
    """Cases through a live overlay, an xattr whiteout planted; commit; the same view with and without an upper."""
    from upper_manifest import build_cases, compare, manifest, plant_xattr_whiteout
    from ansible_collections.overlayfs.mounts.plugins.module_utils._host.layer_copy import make_empty_like, write_layer
    from ansible_collections.overlayfs.mounts.plugins.module_utils._host.merged_reader import merged_view
    options, prefix = _mount_options(kind)
    d = _dirs(base, "l1", "l2", "upper", "work", "merged", "work2")
    lowers = [d["l1"], d["l2"]]
    notes = build_cases(lowers, lambda: mount(d["merged"], lowers, d["upper"], d["work"], options), prefix)
    umount(d["merged"])
    plant_xattr_whiteout(d["upper"], b"xw", b"victim.txt", prefix)
    mount(d["merged"], lowers, d["upper"], d["work"], options)
    before = manifest(d["merged"], keep_overlay_xattrs=True)
    kernel = _xwhiteout_behaviour(d["merged"])
    umount(d["merged"])
    upper_before = manifest(d["upper"], keep_overlay_xattrs=True)
    layer = os.path.join(base, "layer")
    started = time.monotonic()
    with merged_view(d["upper"], lowers, options=options) as view:
        seen = manifest(view, keep_overlay_xattrs=True)
        counts = write_layer(d["upper"], view, layer, prefix)
    took = time.monotonic() - started
    assert compare(upper_before, manifest(d["upper"], keep_overlay_xattrs=True)) == [], "write_layer changed the upper"
    assert _overlay_marks_left(layer, prefix) == [], _overlay_marks_left(layer, prefix)
    mount(d["merged"], [layer] + lowers, options=[o for o in options if o != "redirect_dir=on"])
    after = manifest(d["merged"], keep_overlay_xattrs=True)
    umount(d["merged"])
    make_empty_like(d["upper"], os.path.join(base, "upper2"))
    mount(d["merged"], [layer] + lowers, os.path.join(base, "upper2"), d["work2"], options)
    after_upper = manifest(d["merged"], keep_overlay_xattrs=True)
    umount(d["merged"])
    # A name readdir lists but lookup does not find (an xattr whiteout in a live upper, on kernels whose
    # readdir of an upper ignores that form) is gone after the commit: the layer has a real whiteout.
    expected = [] if kernel["readdir hides it"] or not kernel["lookup hides it"] else \
        ["b'xw/victim.txt': only in before (listed_only)"]
    assert compare(seen, after, names=("view", "after")) == [], compare(seen, after, names=("view", "after"))
    assert compare(before, after, names=("before", "after")) == expected, compare(before, after, names=("before", "after"))
    assert compare(before, after_upper, names=("before", "fresh upper")) == expected, \
        compare(before, after_upper, names=("before", "fresh upper"))
    return {"counts": counts, "notes": notes, "xattr whiteout in a live upper": kernel, "entries": len(before),
            "seconds": round(took, 3)}


def scenario_raw(base):
    """Back an upper up with copy_raw, compare it raw, restore it as the upper: the same merged view."""
    from upper_manifest import build_cases, compare, manifest
    from ansible_collections.overlayfs.mounts.plugins.module_utils._host.layer_copy import copy_raw, remove_tree
    options, _prefix = _mount_options("trusted")
    d = _dirs(base, "l1", "l2", "upper", "work", "merged")
    lowers = [d["l1"], d["l2"]]
    build_cases(lowers, lambda: mount(d["merged"], lowers, d["upper"], d["work"], options))
    before = manifest(d["merged"], keep_overlay_xattrs=True)
    umount(d["merged"])
    raw = manifest(d["upper"], keep_overlay_xattrs=True)
    backup = os.path.join(base, "backup")
    counts = copy_raw(d["upper"], backup)
    assert compare(raw, manifest(backup, keep_overlay_xattrs=True), names=("upper", "backup")) == [], \
        compare(raw, manifest(backup, keep_overlay_xattrs=True), names=("upper", "backup"))
    assert any(i.get("xattrs", {}).get("trusted.overlay.redirect") for i in raw.values()), "no redirect in the upper"
    remove_tree(d["upper"])
    remove_tree(d["work"])
    copy_raw(backup, d["upper"])
    assert compare(raw, manifest(d["upper"], keep_overlay_xattrs=True), names=("upper", "restored")) == []
    os.mkdir(d["work"])
    mount(d["merged"], lowers, d["upper"], d["work"], options)
    after = manifest(d["merged"], keep_overlay_xattrs=True)
    umount(d["merged"])
    assert compare(before, after, names=("before", "restored")) == [], compare(before, after, names=("before", "restored"))
    return {"counts": counts, "entries": len(raw)}


def _mountinfo():
    with open("/proc/self/mountinfo", "r", encoding="utf-8", errors="surrogateescape") as handle:
        return handle.read()


_HOLD_VIEW = """
import os, sys, time
from ansible_collections.overlayfs.mounts.plugins.module_utils._host.merged_reader import merged_view
with merged_view(sys.argv[1], [sys.argv[2]]) as view:
    held = os.open(view + "/dir/file", os.O_RDONLY)
    print(" ".join(sorted(os.listdir(view))), flush=True)
    time.sleep(600)
"""


def _loop_of(image):
    return subprocess.run(["losetup", "--noheadings", "--output", "NAME", "--associated", image],
                          stdout=subprocess.PIPE, check=True).stdout.decode().split()


def scenario_sigkill(base):
    """A process holding a merged view is SIGKILLed: no mount is left, and the layers' filesystem is freed.

    The layers sit on an ext4 image mounted through a loop device with autoclear
    (mount -o loop): the overlay keeps private clones of its layers' mounts, so
    unmounting that filesystem succeeds while the view lives, but its superblock,
    and so the loop device, stays in use until the last reference goes; then the
    loop device detaches itself.
    """
    from upper_manifest import write
    start = _mountinfo()
    fs, image = _dirs(base, "fs")["fs"], os.path.join(base, "fs.img")
    with open(image, "wb") as handle:
        handle.truncate(64 << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", image], check=True)
    mounted = subprocess.run(["mount", "-o", "loop", image, fs], stderr=subprocess.PIPE, check=False)
    if mounted.returncode:
        raise Skip("no loop device to mount an image with: %s" % mounted.stderr.decode().strip())
    upper, lower = _dirs(fs, "upper", "lower/dir")["upper"], os.path.join(fs, "lower")
    write(os.fsencode(lower + "/dir/file"), b"lower\n")
    write(os.fsencode(upper + "/new"), b"upper\n")
    with_fs = _mountinfo()
    child = subprocess.Popen([sys.executable, "-c", _HOLD_VIEW, upper, lower], stdout=subprocess.PIPE)
    try:
        listing = child.stdout.readline().decode().split()
        assert listing == ["dir", "new"], listing
        assert _mountinfo() == with_fs, "the view shows in our mountinfo"
        with open("/proc/%d/mountinfo" % child.pid, encoding="utf-8", errors="surrogateescape") as handle:
            assert handle.read() == with_fs, "the view shows in the holder's mountinfo"
        subprocess.run(["umount", fs], check=True)
        assert _loop_of(image), "the filesystem was freed while a view of its dirs was open"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    for attempt in range(60):
        if not _loop_of(image):
            break
        time.sleep(0.05 * (attempt + 1))
    else:
        raise AssertionError("the layers' filesystem stayed in use after the view's holder was killed")
    assert _mountinfo() == start, "mounts were left behind"
    return {}


def _no_plus():
    from ansible_collections.overlayfs.mounts.plugins.module_utils._host.kernel_features import Features
    return Features(os.uname()[2], new_api=True, native_params=True, lowerdir_plus=False)


def scenario_string_form(base):
    """The one-value lowerdir= form (kernels before lowerdir+) shows the same view, and says when it cannot."""
    from upper_manifest import build_cases, compare, manifest
    from ansible_collections.overlayfs.mounts.plugins.module_utils._host import merged_reader
    from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError
    options, _prefix = _mount_options("trusted")
    d = _dirs(base, "l1", "l2", "upper", "work", "merged")
    lowers = [d["l1"], d["l2"]]
    build_cases(lowers, lambda: mount(d["merged"], lowers, d["upper"], d["work"], options))
    umount(d["merged"])
    calls = []
    real = merged_reader._configure
    merged_reader._configure = lambda *a: calls.append(a) or real(*a)
    with merged_reader.merged_view(d["upper"], lowers, options=options) as view:
        plus = manifest(view, keep_overlay_xattrs=True)
    assert len(calls) == 1, "lowerdir+ was not used"
    with merged_reader.merged_view(d["upper"], lowers, options=options, feats=_no_plus()) as view:
        assert view.startswith("/proc/self/fd/")
        one_value = manifest(view, keep_overlay_xattrs=True)
    assert len(calls) == 1, "lowerdir+ was used where the kernel was said to lack it"
    assert compare(plus, one_value, names=("lowerdir+", "lowerdir=")) == [], compare(plus, one_value)
    many = [_dirs(base, "many/%02d" % n)["many/%02d" % n] for n in range(30)]
    with merged_reader.merged_view(d["upper"], many, options=options) as view:
        assert os.path.isdir(view + "/newdir")
    said = None
    try:
        with merged_reader.merged_view(d["upper"], many, options=options, feats=_no_plus()):
            pass
    except OverlayError as error:
        said = error.message
    assert said and "255 bytes" in said and "lowerdir+" in said, "31 layers fitted in one lowerdir= value: %s" % said
    return {"too long": said}


def scenario_datadir(base):
    """Data-only layers (composefs style): a chown of a file whose data is there, committed, reads the same."""
    from upper_manifest import compare, manifest, write
    from ansible_collections.overlayfs.mounts.plugins.module_utils._host.layer_copy import write_layer
    from ansible_collections.overlayfs.mounts.plugins.module_utils._host.merged_reader import merged_view
    options = ["redirect_dir=on", "metacopy=on"]
    d = _dirs(base, "lower", "data", "upper", "work", "merged")
    blob = os.urandom(100000)
    write(os.fsencode(d["data"] + "/blob"), blob)
    stub = os.fsencode(d["lower"] + "/f")
    write(stub, b"")
    os.truncate(stub, len(blob))
    os.setxattr(stub, "trusted.overlay.metacopy", b"")
    os.setxattr(stub, "trusted.overlay.redirect", b"/blob")
    write(os.fsencode(d["lower"] + "/g"), b"plain\n")
    mount(d["merged"], [d["lower"]], d["upper"], d["work"], options, data=[d["data"]])
    with open(d["merged"] + "/f", "rb") as handle:
        if handle.read() != blob:
            raise Skip("this kernel does not read data-only layers through a metacopy redirect")
    os.chown(d["merged"] + "/f", 5, 6)
    before = manifest(d["merged"], keep_overlay_xattrs=True)
    umount(d["merged"])
    for feats in (None, _no_plus()):
        layer = os.path.join(base, "layer-%s" % ("plus" if feats is None else "one-value"))
        with merged_view(d["upper"], [d["lower"]], datadir=[d["data"]], options=options, feats=feats) as view:
            counts = write_layer(d["upper"], view, layer)
        assert counts["metacopy"] == 1, counts
        with open(layer + "/f", "rb") as handle:
            assert handle.read() == blob, "the layer's file holds no data of its own"
        mount(d["merged"], [layer, d["lower"]], options=options, data=[d["data"]])
        after = manifest(d["merged"], keep_overlay_xattrs=True)
        umount(d["merged"])
        assert compare(before, after, names=("before", "after")) == [], compare(before, after)
    return {}


def scenario_remove_tree(base):
    """remove_tree on a used work dir (mode 000 work/work), and its refusals of mounts inside the tree."""
    from upper_manifest import write
    from ansible_collections.overlayfs.mounts.plugins.module_utils._host.layer_copy import remove_tree
    from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError
    d = _dirs(base, "l1", "l2", "upper", "work", "merged", "tree/a/other_fs", "tree/b/bound", "outside", "tree/a", "tree/b",
              "tree")
    mount(d["merged"], [d["l1"], d["l2"]], d["upper"], d["work"])
    write(os.fsencode(d["merged"] + "/file"), b"x")
    os.unlink(d["merged"] + "/file")
    umount(d["merged"])
    assert os.stat(d["work"] + "/work").st_mode & 0o777 == 0, "no mode 000 work/work to remove"
    remove_tree(d["work"])
    assert not os.path.lexists(d["work"])
    write(os.fsencode(d["outside"] + "/keep"), b"keep")
    os.symlink(d["outside"], d["tree/a"] + "/link_out")
    refusals = {}
    for point, args in (("tree/a/other_fs", ["-t", "tmpfs", "tmpfs"]), ("tree/b/bound", ["--bind", d["outside"]])):
        subprocess.run(["mount"] + args + [d[point]], check=True)
        try:
            remove_tree(d["tree"] if not refusals else d["tree/b"])
            raise AssertionError("remove_tree went into the mount at %s" % point)
        except OverlayError as error:
            assert d[point] in error.message, error.message
            refusals[point] = error.message
        assert os.path.exists(d["outside"] + "/keep") and os.path.islink(d["tree/a"] + "/link_out")
        umount(d[point])
    remove_tree(d["tree"])
    assert not os.path.lexists(d["tree"]) and os.path.exists(d["outside"] + "/keep"), "followed the symlink"
    remove_tree(d["tree"])  # already gone: fine
    return refusals


def _bench_upper(upper, files=10000, total=100 << 20):
    """``files`` files of about ``total`` bytes in all (sizes spread from 0 to twice the mean), 100 per dir."""
    import random
    rng = random.Random(1)
    pool = os.urandom(1 << 20)
    mean = total // files
    for n in range(files):
        directory = os.path.join(upper, "d%03d" % (n // 100))
        if n % 100 == 0:
            os.mkdir(directory)
        size = rng.randint(0, 2 * mean)
        start = rng.randint(0, len(pool) - size)
        with open(os.path.join(directory, "f%05d" % n), "wb") as handle:
            handle.write(pool[start:start + size])


def _timed(action, *args):
    started = time.monotonic()
    action(*args)
    return time.monotonic() - started


def scenario_bench(base, rounds="3"):
    """write_layer against cp -a (and cp -a then sync) on an upper of 10,000 files, 100 MB.

    Each copy goes to a new dir and all are removed at the end: removing 100 MB
    between runs (ext4 with discard) slows the next run down. With
    LAYER_COPY_BENCH_COLD=1 the page cache is dropped before each run.
    """
    from ansible_collections.overlayfs.mounts.plugins.module_utils._host.layer_copy import remove_tree, write_layer
    from ansible_collections.overlayfs.mounts.plugins.module_utils._host.merged_reader import merged_view
    base = os.path.join(base, "bench")
    d = _dirs(base, "lower", "upper")
    _bench_upper(d["upper"])
    outs = []

    def cp(out):
        subprocess.run(["cp", "-a", d["upper"], out], check=True)

    def cp_sync(out):
        cp(out)
        subprocess.run(["sync"], check=True)

    def layer(out):
        with merged_view(d["upper"], [d["lower"]]) as view:
            write_layer(d["upper"], view, out)
    times = {"cp -a": [], "cp -a && sync": [], "write_layer": []}
    for number in range(int(rounds)):
        for name, action in (("cp -a", cp), ("cp -a && sync", cp_sync), ("write_layer", layer)):
            outs.append(os.path.join(base, "out-%d-%d" % (number, len(outs))))
            subprocess.run(["sync"], check=True)
            if os.environ.get("LAYER_COPY_BENCH_COLD"):
                with open("/proc/sys/vm/drop_caches", "w", encoding="ascii") as handle:
                    handle.write("3\n")
            time.sleep(2)
            times[name].append(_timed(action, outs[-1]))
    report = {name: round(sorted(values)[len(values) // 2], 3) for name, values in times.items()}
    report["all"] = times
    remove_tree(base)
    return report


def main(argv):
    name, base = argv[0], argv[1]
    try:
        report = globals()["scenario_" + name](base, *argv[2:])
    except Skip as why:
        print(str(why))
        return SKIP
    print(json.dumps(report, default=repr))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
