# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Hostile paths for overlay_mount; run by runme.sh with a private tmpfs as the base."""

import os
import subprocess
import sys
import time

from moduledriver import check, log, overlay_mounts_under, read_bytes, run, tree

NOBODY = 65534
BASE = sys.argv[1]
SHARED = os.path.join(BASE, "shared")          # like /tmp: root's, sticky, world-writable
HOME = os.path.join(BASE, "home", "nobody")    # a user's home
VICTIM = os.path.join(BASE, "victim")
ETC = os.path.join(BASE, "etc")
FSTAB = os.path.join(ETC, "fstab")
LOWER1, LOWER2 = os.path.join(BASE, "lower1"), os.path.join(BASE, "lower2")
USER_TEXT = b"# user's fstab\nUUID=0a1b / ext4 defaults 0 1\n"


def as_nobody(*argv):
    subprocess.run(["setpriv", "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY, "--clear-groups", "--"]
                   + list(argv), check=True)


def write(path, data):
    with open(path, "wb") as handle:
        handle.write(data)


def args_for(**kw):
    args = {"lowerdir": [LOWER1, LOWER2], "fstab": FSTAB, "unit_dir": os.path.join(BASE, "units"),
            "links_dir": os.path.join(BASE, "links"), "persist": "fstab", "state": "mounted"}
    args.update(kw)
    return args


def refused(args, field, words):
    """Run; it must fail naming ``field`` and ``words``, with victim, fstab and mounts as before."""
    victim_before, fstab_before = tree(VICTIM), read_bytes(FSTAB)
    mounts_before = overlay_mounts_under(BASE)
    result = run(args, fails=True)
    msg = result["msg"]
    check(field in msg and all(w in msg for w in words), "wrong refusal: %s" % msg)
    check(tree(VICTIM) == victim_before, "the victim changed")
    check(read_bytes(FSTAB) == fstab_before, "fstab changed")
    check(overlay_mounts_under(BASE) == mounts_before, "mounts changed: %s" % overlay_mounts_under(BASE))
    return msg


def setup():
    for path in (SHARED, HOME, os.path.join(VICTIM, "work", "work"), ETC, LOWER1, LOWER2,
                 os.path.join(BASE, "safe")):
        os.makedirs(path)
    os.chmod(SHARED, 0o1777)
    os.chown(HOME, NOBODY, NOBODY)
    write(os.path.join(VICTIM, "work", "work", "precious"), b"do not lose me")
    write(os.path.join(VICTIM, "secret"), b"root only")
    os.chmod(os.path.join(VICTIM, "secret"), 0o600)
    os.symlink("/keep/me", os.path.join(VICTIM, "0"))
    write(os.path.join(LOWER1, "a"), b"1")
    write(os.path.join(LOWER2, "b"), b"2")
    write(FSTAB, USER_TEXT)


def attacks():
    """Links planted by nobody: never followed."""
    as_nobody("ln", "-s", VICTIM, os.path.join(SHARED, "upper"))
    msg = refused(args_for(path=os.path.join(BASE, "safe", "m1"), upperdir=os.path.join(SHARED, "upper"),
                           workdir=os.path.join(SHARED, "work")),
                  "upperdir", ["unsafe path transition", os.path.join(SHARED, "upper"), "nobody"])
    log("planted upper refused: %s" % msg)
    check(not os.path.lexists(os.path.join(BASE, "safe", "m1")), "mount point created for a refused run")

    as_nobody("ln", "-s", VICTIM, os.path.join(SHARED, "work2"))
    refused(args_for(path=os.path.join(BASE, "safe", "m2"), upperdir=os.path.join(BASE, "safe", "u2"),
                     workdir=os.path.join(SHARED, "work2")), "workdir", ["unsafe path transition"])

    as_nobody("ln", "-s", VICTIM, os.path.join(SHARED, "merged"))
    refused(args_for(path=os.path.join(SHARED, "merged"), persist="none"), "path", ["unsafe path transition"])

    as_nobody("ln", "-s", VICTIM, os.path.join(HOME, "upper"))
    refused(args_for(path=os.path.join(BASE, "safe", "m3"), upperdir=os.path.join(HOME, "upper"),
                     workdir=os.path.join(HOME, "work")), "upperdir", ["unsafe path transition"])
    as_nobody("ln", "-s", "../../victim", os.path.join(HOME, "rel"))
    refused(args_for(path=os.path.join(HOME, "rel", "merged"), persist="none"), "path", ["unsafe path transition"])

    # links_dir writable by nobody, with the overlay's link dir planted as a link to the victim.
    from ansible_collections.overlayfs.mounts.plugins.module_utils._host.mounting import links_dir_for
    links = os.path.join(SHARED, "links")
    as_nobody("mkdir", links)
    target = os.path.join(BASE, "safe", "m4")
    as_nobody("ln", "-s", VICTIM, links_dir_for(links, target))
    refused(args_for(path=target, lowerdir=[LOWER1, LOWER2], persist="none", method="symlinks", links_dir=links),
            "links_dir", ["owned by nobody", "chmod go-w"])
    # Root's own but world-writable: refused as well.
    refused(args_for(path=target, persist="none", method="symlinks", links_dir=SHARED),
            "links_dir", ["mode 1777"])
    # A private links_dir with a planted link dir (root's link, so not an unsafe transition): not followed.
    private = os.path.join(BASE, "links-private")
    os.makedirs(private)
    os.symlink(VICTIM, links_dir_for(private, target))
    refused(args_for(path=target, persist="none", method="symlinks", links_dir=private),
            "links_dir", ["replaced by a symlink"])
    check(not os.path.lexists(target), "created mount point left after a refused links_dir")
    log("links_dir attacks refused")


def data_safety():
    """Work dirs that hold data are refused; upper and work swapped later is refused."""
    data = os.path.join(BASE, "data")
    os.makedirs(os.path.join(data, "work", "work"))
    write(os.path.join(data, "work", "work", "precious"), b"keep")
    msg = refused(args_for(path=os.path.join(data, "m"), upperdir=os.path.join(data, "upper"),
                           workdir=os.path.join(data, "work"), persist="none"),
                  "workdir", ["work/precious", "swapped"])
    check(read_bytes(os.path.join(data, "work", "work", "precious")) == b"keep", "precious lost")
    check(not os.path.exists(os.path.join(data, "upper")), "upper created for a refused run")
    log("workdir with data refused: %s" % msg)

    swap = os.path.join(BASE, "swap")
    first = args_for(path=os.path.join(swap, "m"), upperdir=os.path.join(swap, "upper"),
                     workdir=os.path.join(swap, "work"), persist="none")
    run(first)
    write(os.path.join(swap, "m", "file"), b"user data")
    run(dict(first, state="unmounted"))
    refused(dict(first, upperdir=first["workdir"], workdir=first["upperdir"]), "workdir", ["file", "swapped"])
    check(read_bytes(os.path.join(swap, "upper", "file")) == b"user data", "upper data lost")
    log("swapped upper and work refused")


def quotes_and_commas():
    """mountinfo with quotes; persisted comma paths checked by mounting them with mount(8)."""
    quoted = os.path.join(BASE, 'q"uote')
    own = args_for(path=os.path.join(quoted, "m"), upperdir=os.path.join(quoted, "upper"),
                   workdir=os.path.join(quoted, "work"), persist="none")
    check(run(own)["changed"], "quoted upper not mounted")
    check(not run(own)["changed"], "quoted upper not idempotent")
    # A second overlay on the same upper: seen through the quote, refused.
    refused(dict(own, path=os.path.join(BASE, "safe", "m5"), workdir=os.path.join(quoted, "work")),
            "upperdir", [os.path.join(quoted, "upper")])
    run(dict(own, state="absent"))
    log("quoted paths: own upper mounts, shared upper seen")

    commas = os.path.join(BASE, "c")
    for name in ("a,b", "a,x-y", "u,ro"):
        os.makedirs(os.path.join(commas, name))
    good = args_for(path=os.path.join(commas, "m"), lowerdir=[os.path.join(commas, "a,b"), LOWER2],
                    upperdir=os.path.join(commas, "upper"), workdir=os.path.join(commas, "work"))
    run(good)
    run(dict(good, state="unmounted"))
    subprocess.run(["mount", "-T", FSTAB, good["path"]], check=True)
    check(overlay_mounts_under(good["path"]) == [good["path"]], "mount(8) did not mount the persisted line")
    check(read_bytes(os.path.join(good["path"], "b")) == b"2", "mount(8) mounted other layers")
    check(not run(good)["changed"], "mount(8)'s mount differs from the declaration")
    run(dict(good, state="absent"))
    for name, field in (("a,x-y", "lowerdir[0]"), ("u,ro", "upperdir")):
        bad = dict(good, lowerdir=[os.path.join(commas, name), LOWER2] if field == "lowerdir[0]" else good["lowerdir"],
                   upperdir=os.path.join(commas, name) if field == "upperdir" else good["upperdir"])
        refused(bad, field, ["mount(8)", "Rename the directory"])
    log("comma paths: a,b mounted by mount(8), a,x-y and u,ro refused")


def fstab_lines():
    """A symlinked fstab, octal UTF-8 user lines, a bare CR, boot_options."""
    real = os.path.join(BASE, "cm", "fstab")
    os.makedirs(os.path.dirname(real))
    write(real, USER_TEXT)
    link = os.path.join(BASE, "etc2", "fstab")
    os.makedirs(os.path.dirname(link))
    os.symlink(real, link)
    args = args_for(path=os.path.join(BASE, "ln", "m"), fstab=link, persist="fstab")
    run(args)
    check(os.path.islink(link) and os.readlink(link) == real, "fstab link replaced")
    check(read_bytes(real).startswith(USER_TEXT) and len(read_bytes(real)) > len(USER_TEXT), "target not written")
    check(sorted(os.listdir(os.path.dirname(real))) == ["fstab"], "temp files next to the target")
    run(dict(args, state="absent"))
    check(read_bytes(real) == USER_TEXT, "target not restored")

    cafe = os.path.join(BASE, u"caf\u00e9")
    escaped = cafe.encode("utf-8").replace(b"\xc3\xa9", b"\\303\\251")
    write(FSTAB, USER_TEXT + b"overlay " + escaped + b" overlay lowerdir=" + LOWER1.encode() + b":"
          + LOWER2.encode() + b" 0 0\n")
    present = args_for(path=cafe, state="present")
    run(present)
    overlay_lines = [x for x in read_bytes(FSTAB).splitlines() if x.startswith(b"overlay ")]
    check(len(overlay_lines) == 1, "a second line was added: %r" % read_bytes(FSTAB))
    run(dict(present, state="absent"))
    check(read_bytes(FSTAB) == USER_TEXT, "the octal-escaped line was left: %r" % read_bytes(FSTAB))

    write(FSTAB, USER_TEXT + b"tmpfs /x tmpfs defaults 0 0\r")
    run(present)
    run(dict(present, state="absent"))
    check(read_bytes(FSTAB) == USER_TEXT + b"tmpfs /x tmpfs defaults 0 0\r", "bare CR lost")

    write(FSTAB, USER_TEXT)
    for option, words in (("lowerdir+=/x", ["sets a layer path"]), ('x-a="b', ["unbalanced"]),
                          ("x-a=b\\", ["ends with a backslash"])):
        refused(dict(present, boot_options=[option]), "boot_options", words)
    run(dict(present, boot_options=["defaults", "nofail"]))
    check(not run(dict(present, boot_options=["defaults", "nofail"]))["changed"], "defaults drifts")
    run(dict(present, state="absent"))
    log("fstab: symlink target written, octal UTF-8 line found, bare CR kept, boot_options checked")


def main():
    setup()
    for part in (attacks, data_safety, quotes_and_commas, fstab_lines):
        began = time.time()
        log("== %s" % part.__name__)
        part()
        log("   %.1f s" % (time.time() - began))


if __name__ == "__main__":
    main()
