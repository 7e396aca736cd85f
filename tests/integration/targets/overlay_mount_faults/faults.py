# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fault injection for overlay_mount; run by runme.sh inside a private mount namespace."""

import os
import random
import signal
import subprocess
import sys
import time

from moduledriver import MODULES, ROOT, check, finish, log, overlay_mounts_under, read_bytes, run, start

USER_TEXT = (b"# /etc/fstab: kept byte for byte\n"
             b"UUID=0a1b / ext4 errors=remount-ro 0 1\r\n"
             b"tmpfs\t/scratch\ttmpfs\tsize=1m 0 0\n")
TEMP_MARK = ".overlayfs-tmp."

BASE = os.path.join(ROOT, "faults")
LOWER1, LOWER2 = os.path.join(BASE, "lower1"), os.path.join(BASE, "lower2")


def sh(*argv):
    subprocess.run(list(argv), check=True)


def declaration(name, fstab, **extra):
    top = os.path.join(BASE, name)
    args = {
        "path": os.path.join(top, "merged"), "lowerdir": [LOWER1, LOWER2],
        "upperdir": os.path.join(top, "d", "upper"), "workdir": os.path.join(top, "d", "work"),
        "fstab": fstab, "unit_dir": os.path.join(top, "units"), "links_dir": os.path.join(BASE, "links"),
        "persist": "fstab", "state": "mounted",
    }
    args.update(extra)
    return args


def tmpfs(path, options):
    os.makedirs(path)
    sh("mount", "-t", "tmpfs", "-o", options, "tmpfs", path)


def write(path, data):
    with open(path, "wb") as handle:
        handle.write(data)


def fill_blocks(directory):
    try:
        with open(os.path.join(directory, "filler"), "wb") as handle:
            while True:
                handle.write(b"x" * 4096)
                handle.flush()
    except OSError:
        pass


def fill_inodes(directory):
    names = []
    try:
        while True:
            name = os.path.join(directory, "inode%d" % len(names))
            open(name, "w").close()
            names.append(name)
    except OSError:
        pass
    return names


def assert_untouched(args, fstab, before, allowed=()):
    """What every refused or failed run must leave."""
    check(read_bytes(fstab) == before, "fstab changed: %r" % read_bytes(fstab))
    check(not overlay_mounts_under(os.path.dirname(args["path"])), "stray mount at %s" % args["path"])
    for created in (os.path.dirname(args["upperdir"]), args["path"]):
        check(not os.path.lexists(created), "created dir left behind: %s" % created)
    left = [n for n in os.listdir(os.path.dirname(fstab)) if n not in allowed and n != os.path.basename(fstab)]
    check(not left, "files left next to fstab: %s" % left)


def converge(args, fstab, before):
    """The next run, fault gone: changes, then is idempotent; fstab is the user's text plus our line."""
    first = run(args)
    check(first["changed"], "the run after the fault changed nothing")
    check(overlay_mounts_under(args["path"]) == [args["path"]], "not mounted after converging")
    again = run(args)
    check(not again["changed"], "second run after the fault still changed: %s" % again["actions"])
    text = read_bytes(fstab)
    check(text.startswith(before) and text.count(b"\n") == before.count(b"\n") + 1, "fstab wrong: %r" % text)
    run(dict(args, state="absent"))
    check(read_bytes(fstab) == before, "absent did not restore fstab")
    return text


def plain_fstab(name):
    """``(top, fstab)``: a new dir ``BASE/name`` holding an fstab with USER_TEXT."""
    top = os.path.join(BASE, name)
    os.makedirs(top)
    fstab = os.path.join(top, "fstab")
    write(fstab, USER_TEXT)
    return top, fstab


def user_fstab(name, options):
    """``(etc, fstab)``: a tmpfs etc of its own (``options``) holding an fstab with USER_TEXT."""
    etc = os.path.join(BASE, name, "etc")
    tmpfs(etc, options)
    fstab = os.path.join(etc, "fstab")
    write(fstab, USER_TEXT)
    return etc, fstab


def scenario_full_disk():
    etc, fstab = user_fstab("full", "size=64k")
    fill_blocks(etc)
    args = declaration("full", fstab, backup=True)
    result = run(args, fails=True)
    check("No space left" in result["msg"] and "backup" in result["msg"], result["msg"])
    assert_untouched(args, fstab, USER_TEXT, allowed=("filler",))
    os.unlink(os.path.join(etc, "filler"))
    with_line = converge(args, fstab, USER_TEXT)
    backups = sorted(read_bytes(os.path.join(etc, n)) for n in os.listdir(etc) if n.startswith("fstab."))
    check(backups == sorted([USER_TEXT, with_line]), "backups are not complete copies: %r" % backups)
    log("full disk: refused with %r" % result["msg"])


def scenario_no_inodes():
    etc, fstab = user_fstab("inodes", "size=1m,nr_inodes=16")
    fillers = fill_inodes(etc)
    args = declaration("inodes", fstab)
    result = run(args, fails=True)
    check("write_fstab" in result["msg"] and "No space left" in result["msg"], result["msg"])
    assert_untouched(args, fstab, USER_TEXT, allowed=[os.path.basename(n) for n in fillers])
    for name in fillers:
        os.unlink(name)
    converge(args, fstab, USER_TEXT)
    log("out of inodes: refused with %r" % result["msg"])


def scenario_read_only():
    etc, fstab = user_fstab("ro", "size=1m")
    sh("mount", "-o", "remount,ro", etc)
    args = declaration("ro", fstab)
    result = run(args, fails=True)
    check("Read-only file system" in result["msg"], result["msg"])
    assert_untouched(args, fstab, USER_TEXT)
    sh("mount", "-o", "remount,rw", etc)
    converge(args, fstab, USER_TEXT)
    log("read-only: refused with %r" % result["msg"])


def scenario_immutable():
    _etc, fstab = user_fstab("immutable", "size=1m")
    sh("chattr", "+i", fstab)
    args = declaration("immutable", fstab, backup=True)
    result = run(args, fails=True)
    check("writing fstab" in result["msg"] and "Operation not permitted" in result["msg"], result["msg"])
    assert_untouched(args, fstab, USER_TEXT)
    sh("chattr", "-i", fstab)
    converge(dict(args, backup=False), fstab, USER_TEXT)
    log("immutable fstab: refused with %r" % result["msg"])


def scenario_full_unit_dir():
    _top, fstab = plain_fstab("unitfull")
    args = declaration("unitfull", fstab)
    tmpfs(args["unit_dir"], "size=16k")
    run(args)
    persisted = read_bytes(fstab)
    mount_before = overlay_mounts_under(args["path"])
    fill_blocks(args["unit_dir"])
    result = run(dict(args, persist="systemd"), fails=True)
    check("step write_unit failed" in result["msg"] and "No space left" in result["msg"], result["msg"])
    check(read_bytes(fstab) == persisted, "the fstab line was not restored: %r" % read_bytes(fstab))
    check(os.listdir(args["unit_dir"]) == ["filler"], "unit dir holds %s" % os.listdir(args["unit_dir"]))
    check(overlay_mounts_under(args["path"]) == mount_before, "the live mount changed")
    os.unlink(os.path.join(args["unit_dir"], "filler"))
    switched = run(dict(args, persist="systemd"))
    check(switched["changed"] and read_bytes(fstab) == USER_TEXT, "switch to systemd did not converge")
    check(not run(dict(args, persist="systemd"))["changed"], "switch to systemd not idempotent")
    run(dict(args, persist="systemd", state="absent"))
    log("full unit dir: refused with %r" % result["msg"])


def scenario_killed(kills_wanted=30):
    top = os.path.join(BASE, "killed")
    os.makedirs(top)
    fstab = os.path.join(top, "fstab")
    write(fstab, USER_TEXT)
    args = declaration("killed", fstab)
    began = time.time()
    run(args)
    duration = time.time() - began
    with_line = read_bytes(fstab)
    run(dict(args, state="absent"))
    check(read_bytes(fstab) == USER_TEXT, "absent did not restore fstab")
    rng = random.Random(9)
    kills = attempts = leftovers = killed_pid = 0
    while kills < kills_wanted and attempts < 4 * kills_wanted:
        attempts += 1
        state = rng.choice(["mounted", "absent"])
        proc, path = start(dict(args, state=state))
        time.sleep(rng.uniform(0.02, 0.85 * duration))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
            killed_pid = proc.pid
        proc.wait()
        proc.communicate()
        os.unlink(path)
        text = read_bytes(fstab)
        check(text in (USER_TEXT, with_line), "fstab incomplete after a kill: %r" % text)
        if overlay_mounts_under(args["path"]):
            check(text == with_line, "mounted but not persisted after a kill")
        leftovers += len([n for n in os.listdir(top) if TEMP_MARK in n])
    check(kills >= kills_wanted, "only %d of %d runs were killed" % (kills, kills_wanted))
    # What a kill between the temp file's creation and its rename leaves (a
    # window too short to hit reliably by chance): the killed writer's temp.
    write(os.path.join(top, ".fstab%s%d.k1ll3d" % (TEMP_MARK, killed_pid)), with_line[:40])
    first = run(args)
    check(not [n for n in os.listdir(top) if TEMP_MARK in n], "temp files survived the next run")
    check(not run(args)["changed"] and read_bytes(fstab) == with_line, "did not converge after kills")
    check(overlay_mounts_under(args["path"]) == [args["path"]], "not mounted after kills")
    run(dict(args, state="absent"))
    check(read_bytes(fstab) == USER_TEXT, "absent did not restore fstab")
    log("killed %d runs (of %d), %d temp files seen meanwhile, next run changed=%s"
        % (kills, attempts, leftovers, first["changed"]))


def scenario_concurrent(count=20):
    top, fstab = plain_fstab("concurrent")
    all_args = [declaration("concurrent/m%02d" % i, fstab) for i in range(count)]
    procs = [start(a) for a in all_args]
    results = [finish(*p) for p in procs]
    failed = [r.get("msg") for r in results if r.get("failed")]
    check(not failed, "concurrent runs failed: %s" % failed[:3])
    text = read_bytes(fstab)
    check(text.startswith(USER_TEXT), "user lines changed: %r" % text)
    lines = text[len(USER_TEXT):].decode("utf-8").splitlines()
    points = sorted(line.split(" ")[1] for line in lines)
    check(points == sorted(a["path"] for a in all_args), "fstab holds %d overlay lines: %s" % (len(lines), points))
    mounted = overlay_mounts_under(top)
    check(sorted(mounted) == points, "mounted: %s" % mounted)
    check(not any(run(a)["changed"] for a in all_args[:3]), "re-runs after the concurrent ones changed")
    log("%d concurrent runs: every line written once, user lines intact" % count)


def scenario_same_declaration_at_once(count=8):
    """Runs of one declaration at once: the first mounts and persists, the others find it done.

    The host lock is held from a run's first host read to its last write, so
    a run that waited reads the host as the one before it left it: one
    overlay at the mount point (never a second one stacked on the same upper
    and work dir), one fstab line, one run that changed something. Half the
    runs are overlay_mount, half overlay_mounts with the same entry.
    """
    top, fstab = plain_fstab("same")
    args = declaration("same/o", fstab)
    batch = {"mounts": [{k: args[k] for k in ("path", "lowerdir", "upperdir", "workdir")}], "fstab": fstab,
             "unit_dir": args["unit_dir"], "links_dir": args["links_dir"], "persist": "fstab"}
    procs = [start(batch, module=BATCH) if i % 2 else start(args) for i in range(count)]
    results = [finish(*p) for p in procs]
    failed = [r.get("msg") for r in results if r.get("failed")]
    check(not failed, "runs of one declaration at once failed: %s" % failed[:3])
    changed = [r for r in results if r["changed"]]
    check(len(changed) == 1, "%d of %d runs changed the host (expected exactly one)" % (len(changed), count))
    check(overlay_mounts_under(top) == [args["path"]], "mounted at once: %s" % overlay_mounts_under(top))
    lines = read_bytes(fstab)[len(USER_TEXT):].decode("utf-8").splitlines()
    check(len(lines) == 1 and lines[0].split(" ")[1] == args["path"], "fstab holds %r" % lines)
    check(not run(args)["changed"], "a re-run changed")
    log("%d runs of one declaration at once: one mounted and persisted it, %d found it done"
        % (count, count - 1))


BATCH = os.path.join(MODULES, "overlay_mounts.py")


def batch_args(name, fstab, count=3, **extra):
    """overlay_mounts' arguments for ``count`` overlays a, b, c, ... below ``BASE/name``."""
    entries = [{k: v for k, v in declaration("%s/%s" % (name, chr(ord("a") + i)), fstab).items()
                if k in ("path", "lowerdir", "upperdir", "workdir")} for i in range(count)]
    args = {"mounts": entries, "fstab": fstab, "unit_dir": os.path.join(BASE, name, "units"),
            "links_dir": os.path.join(BASE, "links"), "persist": "fstab",
            "modules_load_file": os.path.join(BASE, name, "modules-load.conf")}
    args.update(extra)
    return args


def run_mangling(args, where, refused=False):
    """overlay_mounts on ``args``, its first mount of each path containing ``where`` made wrongly.

    ``refused``: the kernel refuses that mount instead (see wrong_mount.py).
    """
    os.environ["WRONG_MOUNT"] = where
    if refused:
        os.environ["WRONG_MOUNT_FAILS"] = "1"
    try:
        return run(args, fails=True, module=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                         "wrong_mount.py"))
    finally:
        del os.environ["WRONG_MOUNT"]
        os.environ.pop("WRONG_MOUNT_FAILS", None)


def scenario_wrong_mount_in_batch():
    """A batch whose middle overlay the kernel mounts wrongly: found, undone alone."""
    top, fstab = plain_fstab("wrong")
    args = batch_args("wrong", fstab)
    entries = args["mounts"]
    result = run_mangling(args, "/wrong/b/")
    a, b, c = result["overlays"]
    expected = ("something other than what was declared", "it was unmounted again", "%s was not changed" % fstab)
    check(b.get("failed") and all(text in b["msg"] for text in expected), "b: %s" % b)
    for good in (a, c):
        check(not good.get("failed") and good["live"]["lowerdir"] == [LOWER1, LOWER2], "%s" % good)
    check(sorted(overlay_mounts_under(top)) == [entries[0]["path"], entries[2]["path"]],
          "mounted: %s" % overlay_mounts_under(top))
    text = read_bytes(fstab)
    lines = text[len(USER_TEXT):].decode("utf-8").splitlines()
    points = [line.split(" ")[1] for line in lines]
    check(text.startswith(USER_TEXT) and points == [entries[0]["path"], entries[2]["path"]], "fstab: %r" % text)
    for created in (os.path.dirname(entries[1]["upperdir"]), entries[1]["path"]):
        check(not os.path.lexists(created), "created dir left behind: %s" % created)
    again = run(args, module=BATCH)
    check(again["changed"] and [r["changed"] for r in again["overlays"]] == [False, True, False],
          "the run after the fault: %s" % [r["changed"] for r in again["overlays"]])
    check(not run(args, module=BATCH)["changed"], "the third run changed")
    converged = read_bytes(fstab)
    check(len(converged[len(USER_TEXT):].splitlines()) == 3, "fstab: %r" % converged)
    # Re-layering b (its lowers swapped) comes out wrong too: the old b must come back, line and all.
    entries[1]["lowerdir"] = [LOWER2, LOWER1]
    result = run_mangling(args, "/wrong/b/")
    b = result["overlays"][1]
    check(b.get("failed") and "the previous overlay was mounted again" in b["msg"], "re-layered b: %s" % b)
    check(read_bytes(fstab) == converged, "fstab changed by a failed re-layering: %r" % read_bytes(fstab))
    check(sorted(overlay_mounts_under(top)) == sorted(e["path"] for e in entries), "mounted: %s"
          % overlay_mounts_under(top))
    entries[1]["lowerdir"] = [LOWER1, LOWER2]
    after = run(args, module=BATCH)
    check(not after["changed"], "the old b was not put back as it was: %s" % [(r["path"], r["actions"]) for r in after["overlays"]])
    log("a wrong mount among three: it alone unmounted, its dirs removed, its fstab line never written; "
        "the next run converges; a wrong re-layering puts the old overlay and line back")


def scenario_refused_mount_in_batch():
    """The kernel refuses the middle overlay's mount: its fstab edit, made later by the group, must go too."""
    top, fstab = plain_fstab("refused")
    args = batch_args("refused", fstab)
    entries = args["mounts"]
    result = run_mangling(args, "/refused/b/", refused=True)
    a, b, c = result["overlays"]
    check(b.get("failed") and not a.get("failed") and not c.get("failed"), "results: %s" % result["overlays"])
    check(sorted(overlay_mounts_under(top)) == [entries[0]["path"], entries[2]["path"]],
          "mounted: %s" % overlay_mounts_under(top))
    text = read_bytes(fstab)
    points = [line.split(" ")[1] for line in text[len(USER_TEXT):].decode("utf-8").splitlines()]
    check(text.startswith(USER_TEXT) and points == [entries[0]["path"], entries[2]["path"]],
          "a refused mount's line was written: %r" % text)
    for created in (os.path.dirname(entries[1]["upperdir"]), entries[1]["path"]):
        check(not os.path.lexists(created), "created dir left behind: %s" % created)
    again = run(args, module=BATCH)
    check([r["changed"] for r in again["overlays"]] == [False, True, False],
          "the run after the fault: %s" % [r["changed"] for r in again["overlays"]])
    check(not run(args, module=BATCH)["changed"], "the third run changed")
    log("a refused mount among three: %s" % b["msg"])


def scenario_full_disk_batch():
    """A batch's one fstab write fails: every overlay of it is unmounted again."""
    etc, fstab = user_fstab("fullbatch", "size=64k")
    fill_blocks(etc)
    args = batch_args("fullbatch", fstab, backup=True)
    for backup, fails_at in ((True, "backing up"), (False, "writing fstab")):
        result = run(dict(args, backup=backup), fails=True, module=BATCH)
        for entry in result["overlays"]:
            expected = (fails_at, "No space left", "was unmounted again")
            check(entry.get("failed") and all(text in entry["msg"] for text in expected), "%s" % entry)
        check(read_bytes(fstab) == USER_TEXT, "fstab changed: %r" % read_bytes(fstab))
        check(not overlay_mounts_under(os.path.join(BASE, "fullbatch")), "stray mounts: %s"
              % overlay_mounts_under(os.path.join(BASE, "fullbatch")))
        for entry in args["mounts"]:
            for created in (os.path.dirname(entry["upperdir"]), entry["path"]):
                check(not os.path.lexists(created), "created dir left behind: %s" % created)
        check(sorted(os.listdir(etc)) == ["filler", "fstab"], "files left next to fstab: %s" % os.listdir(etc))
    os.unlink(os.path.join(etc, "filler"))
    first = run(args, module=BATCH)
    check(all(r["changed"] for r in first["overlays"]), "the run after the fault: %s" % first["overlays"])
    check(len(overlay_mounts_under(os.path.join(BASE, "fullbatch"))) == 3, "not mounted after converging")
    text = read_bytes(fstab)
    check(text.startswith(USER_TEXT) and text.count(b"\n") == USER_TEXT.count(b"\n") + 3, "fstab: %r" % text)
    backups = [read_bytes(os.path.join(etc, n)) for n in os.listdir(etc) if n.startswith("fstab.")]
    check(backups == [USER_TEXT], "one complete backup of the batch's one write: %r" % backups)
    check(not run(args, module=BATCH)["changed"], "the re-run changed")
    log("full disk under a batch: %s" % result["overlays"][0]["msg"])


def main():
    os.makedirs(LOWER1)
    os.makedirs(LOWER2)
    write(os.path.join(LOWER1, "a"), b"1")
    write(os.path.join(LOWER2, "b"), b"2")
    scenarios = (scenario_full_disk, scenario_no_inodes, scenario_read_only, scenario_immutable,
                 scenario_full_unit_dir, scenario_killed, scenario_concurrent, scenario_same_declaration_at_once,
                 scenario_wrong_mount_in_batch,
                 scenario_refused_mount_in_batch, scenario_full_disk_batch)
    chosen = sys.argv[1:]  # by hand: runme.sh scenario_killed ... runs only those
    for scenario in [s for s in scenarios if not chosen or s.__name__ in chosen]:
        began = time.time()
        log("== %s" % scenario.__name__)
        scenario()
        log("   %.1f s" % (time.time() - began))


if __name__ == "__main__":
    main()
