# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""overlay_mounts' ``invocation``: each entry as declared, the task's options whole.

ansible-playbook drops ``invocation`` before a result is registered (it is
shown only with -vvv), so this runs the module file itself, as Ansible's
module process does, and reads its whole result: check mode, the converge,
the re-run, and a batch with a failing entry (fail_json).
"""

import os

from moduledriver import MODULES, ROOT, check, log, run

MODULE = os.path.join(MODULES, "overlay_mounts.py")
BASE = os.path.join(ROOT, "invocation")
FSTAB = os.path.join(BASE, "fstab")


def layer(name):
    path = os.path.join(BASE, "layers", name)
    os.makedirs(path)
    return path


def entry(name, **extra):
    given = {"path": os.path.join(BASE, name, "merged"), "lowerdir": [layer(name), OS],
             "upperdir": os.path.join(BASE, name, "upper"), "workdir": os.path.join(BASE, name, "work")}
    given.update(extra)
    return given


os.makedirs(BASE)
OS = layer("os")
with open(FSTAB, "w"):
    pass
MOUNTS = [
    entry("app"),
    # Keys that differ from overlay_mount's defaults stay; an inherited setting
    # stated in the entry stays even when it equals the task's value.
    entry("ro", upperdir=None, workdir=None, options=["index=off"], mode="0750", persist="fstab"),
]
TASK = {"mounts": MOUNTS, "fstab": FSTAB, "unit_dir": os.path.join(BASE, "units")}


def shown(result, mounts):
    args = result["invocation"]["module_args"]
    for given, got in zip(mounts, args["mounts"]):
        want = {key: value for key, value in given.items() if value is not None}
        check(got == want, "invocation entry %s != declared %s" % (got, want))
    check(len(args["mounts"]) == len(mounts), "invocation lists %d entries" % len(args["mounts"]))
    # The task's own options are whole: given ones and defaults alike.
    check(args["fstab"] == FSTAB and args["persist"] == "fstab" and args["prune"] is False
          and args["load_module"] is False and args["backup"] is False,
          "task options in invocation: %s" % {k: v for k, v in args.items() if k != "mounts"})


for label, extra, changed in (("check mode", {"_ansible_check_mode": True}, True),
                              ("converge", {}, True), ("re-run", {}, False)):
    result = run(dict(TASK, **extra), module=MODULE)
    check(bool(result["changed"]) == changed, "%s: changed=%s" % (label, result["changed"]))
    shown(result, MOUNTS)
    log("ok: %s shows each entry as declared" % label)

BAD = [entry("bad", lowerdir=[os.path.join(BASE, "missing"), OS])]
result = run(dict(TASK, mounts=MOUNTS + BAD), fails=True, module=MODULE)
shown(result, MOUNTS + BAD)
log("ok: a failed batch shows each entry as declared")
