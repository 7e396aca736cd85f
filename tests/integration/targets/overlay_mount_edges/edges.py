# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""overlay_mount at the edges of what Linux and systemd take, each case on real mounts.

1. A mount point whose unit name passes 255 bytes: mounted and removed with
   persist none, and persisted as a unit under the name systemd itself gives
   it (asked of the real systemd-fstab-generator), which systemd-analyze
   accepts; absent removes that unit.
2. An upper dir longer than one fsconfig() value: method auto mounts it
   (with mount(2)); a forced fsconfig is refused, naming upperdir.
3. Paths past PATH_MAX (an upper, a mount point, a links_dir): refused,
   naming the field, with nothing created.
4. absent after a mount through short links and an enabled unit: no link,
   links dir, pointer, unit or wants link of that overlay is left.
5. Short links on a full file system: the run fails, saying so, and
   leaves nothing there.
"""

import os
import shutil
import subprocess

from moduledriver import ROOT, check, log, overlay_mounts_under, run

LINKS_DEFAULT = "/var/lib/overlayfs-mounts/links"  # a tmpfs of this target's namespace (../common/target.sh)


def made(*paths):
    for path in paths:
        os.makedirs(path, exist_ok=True)


def listing(path):
    """Every entry below ``path`` (relative), or None when it is missing."""
    if not os.path.lexists(path):
        return None
    found = []
    for top, dirs, names in os.walk(path):
        found += [os.path.relpath(os.path.join(top, n), path) for n in dirs + names]
    return sorted(found)


def generator_name(where):
    """The unit name systemd-fstab-generator gives an overlay at ``where``."""
    generator = next((p for p in ("/usr/lib/systemd/system-generators/systemd-fstab-generator",
                                  "/lib/systemd/system-generators/systemd-fstab-generator") if os.access(p, os.X_OK)), None)
    if generator is None:
        return None
    out = os.path.join(ROOT, "generated")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    with open(os.path.join(ROOT, "gen.fstab"), "w") as handle:
        handle.write("overlay %s overlay lowerdir=/x:/y 0 0\n" % where)
    subprocess.run([generator, out, out, out], env=dict(os.environ, SYSTEMD_FSTAB=os.path.join(ROOT, "gen.fstab")),
                   check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    names = [n for n in os.listdir(out) if n.endswith(".mount")]
    check(len(names) == 1, "the generator made %s" % names)
    return names[0]


def long_mount_point():
    base = os.path.join(ROOT, "c1")
    lower = [base + "/l1", base + "/l2"]
    point = os.path.join(base, "m" * 200, "n" * 120)
    units = base + "/units"
    made(*lower)
    args = dict(path=point, lowerdir=lower, persist="none")
    result = run(args)
    check(result["changed"] and overlay_mounts_under(point) == [point], "persist none: %s" % result)
    result = run(dict(args, state="absent"))
    check(result["changed"] and overlay_mounts_under(point) == [], "absent: %s" % result)
    result = run(dict(args, persist="systemd", unit_dir=units))
    name = result["persisted"]["unit_name"]
    check(len(name) == 255 and sorted(os.listdir(units)) == sorted([name, "local-fs.target.wants"]), "unit: %s" % name)
    expected = generator_name(point)
    check(expected in (None, name), "systemd names it %s, the module %s" % (expected, name))
    if shutil.which("systemd-analyze"):
        verify = subprocess.run(["systemd-analyze", "verify", "--man=no", os.path.join(units, name)],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False)
        check("doesn't match unit name" not in verify.stdout and "bad unit file setting" not in verify.stdout,
              verify.stdout)
    check(not run(dict(args, persist="systemd", unit_dir=units))["changed"], "not idempotent")
    result = run(dict(args, persist="systemd", unit_dir=units, state="absent"))
    check(result["changed"] and listing(units) == [] and overlay_mounts_under(point) == [], listing(units))
    log("1. long mount point: unit %s... (%d bytes, as systemd-fstab-generator names it: %s)"
        % (name[:24], len(name), expected is not None))


def long_upper():
    base = os.path.join(ROOT, "c2")
    deep = os.path.join(base, "u" * 200, "v" * 60)
    args = dict(path=base + "/m", lowerdir=[base + "/l1"], upperdir=deep + "/upper", workdir=deep + "/work",
                persist="none")
    made(base + "/l1")
    forced = run(dict(args, method="fsconfig"), fails=True)
    check("upperdir takes %d bytes" % len(args["upperdir"]) in forced["msg"] and "workdir takes" in forced["msg"],
          forced["msg"])
    result = run(args)
    check(result["mount_method"] == "mount2" and result["live"]["upperdir"] == args["upperdir"], "auto: %s" % result)
    run(dict(args, state="unmounted"))
    log("2. an upper of %d bytes: auto mounted it with mount2; fsconfig refused, naming upperdir"
        % len(args["upperdir"]))


def past_path_max():
    base = os.path.join(ROOT, "c3")
    deep = base + "/" + "/".join(["p" * 200] * 21)
    made(base + "/l1")
    before = listing(base)
    cases = [("upperdir", dict(path=base + "/m", upperdir=deep + "/up", workdir=base + "/w")),
             ("path", dict(path=deep + "/m", upperdir=base + "/u", workdir=base + "/w")),
             ("links_dir", dict(path=base + "/m", upperdir=base + "/u", workdir=base + "/w", method="symlinks",
                                links_dir=deep[:4085]))]
    for field, args in cases:
        result = run(dict(args, lowerdir=[base + "/l1"], persist="none"), fails=True)
        check(result["msg"].startswith(field + ": the path ") and "at most 4095 bytes" in result["msg"], result["msg"])
        check(listing(base) == before, "%s: made %s" % (field, sorted(set(listing(base)) - set(before))))
    log("3. paths past PATH_MAX: refused naming path, upperdir and links_dir; nothing created")


def absent_leaves_nothing():
    base = os.path.join(ROOT, "c4")
    units, links = base + "/units", base + "/links"
    lower = [base + "/l1", base + "/l2"]
    made(*lower)
    args = dict(path=base + "/m", lowerdir=lower, upperdir=base + "/u", workdir=base + "/w", persist="systemd",
                unit_dir=units, method="symlinks", links_dir=links)
    result = run(args)
    check(result["mount_method"] == "symlinks", "mount: %s" % result)
    check(len(listing(links)) == 3 and len(listing(units)) == 3 and len(listing(LINKS_DEFAULT)) == 1,
          "made: %s %s %s" % (listing(links), listing(units), listing(LINKS_DEFAULT)))
    result = run(dict(args, state="absent"))
    check(result["changed"] and any(a["action"] == "remove_links" for a in result["actions"]), result["actions"])
    left = (listing(links), listing(units), listing(LINKS_DEFAULT))
    check(left == ([], [], []), "absent left %s" % (left,))
    check(sorted(os.listdir(base)) == ["l1", "l2", "links", "m", "u", "units", "w"], sorted(os.listdir(base)))
    check(not run(dict(args, state="absent"))["changed"], "absent again changed")
    # A wants link left to a unit someone deleted by hand goes too.
    run(dict(args, method="auto"))
    os.unlink(os.path.join(units, run(dict(args, method="auto"))["persisted"]["unit_name"]))
    result = run(dict(args, state="absent"))
    check(listing(units) == [] and overlay_mounts_under(base) == [], "left %s" % listing(units))
    log("4. absent: the links, their dir, the pointer, the unit and its wants link are gone; user dirs stay")


def full_links_disk():
    base = os.path.join(ROOT, "c5")
    disk = base + "/disk"
    made(base + "/l1", base + "/l2", disk)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,nr_inodes=5", "tmpfs", disk], check=True)
    try:
        os.mkdir(disk + "/links", 0o755)
        with open(disk + "/fill", "wb") as handle:
            handle.write(b"x" * 4096)
        before = listing(disk)
        args = dict(path=base + "/m", lowerdir=[base + "/l1", base + "/l2"], persist="none", method="symlinks",
                    links_dir=disk + "/links")
        result = run(args, fails=True)
        check(result["msg"].startswith("links_dir: could not make the short layer links") and
              "No space left on device" in result["msg"], result["msg"])
        check(listing(disk) == before and overlay_mounts_under(base) == [], "left %s" % listing(disk))
        os.unlink(disk + "/fill")
        check(run(args)["mount_method"] == "symlinks", "the next run with room")
        run(dict(args, state="absent"))
        check(listing(disk + "/links") == [], "absent left %s" % listing(disk + "/links"))
    finally:
        subprocess.run(["umount", "-l", disk], check=False)
    log("5. a full links_dir: the run failed saying so and left nothing; with room it mounts")


def main():
    long_mount_point()
    long_upper()
    past_path_max()
    absent_leaves_nothing()
    full_links_disk()


if __name__ == "__main__":
    main()
