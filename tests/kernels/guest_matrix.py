# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kernel matrix driver: the collection's modules against the running kernel.

Runs as root in one Python process (in a qemu guest started by
scripts/kernel-vm.sh, or on the host inside ``unshare --mount``), because a
playbook per step takes minutes under emulation. Each module is driven
through its own ``main()`` with arguments injected the way AnsiballZ hands
them over, so argument parsing, the decision code and the host side effects
are the real ones. Everything happens under a tmpfs scratch dir.

For each target: check mode changes nothing, the real run changes what it
should, a second run reports ``changed: false`` with no drift, and the result
is checked independently (mountinfo, files seen through the merged dir, the
host's own mount(8) for persisted lines).

Prints exactly one result line per target::

    kernel 6.1.0-57-amd64  target live_classic  PASS  3.2s

followed, for a failure, by its error text indented. Exit code 1 if any
target failed.

    python3 tests/kernels/guest_matrix.py [--tree DIR] [--scratch DIR] [TARGET...]
"""

import argparse
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_TREE = os.path.dirname(os.path.dirname(HERE))


def importable(tree):
    """Make ``ansible_collections.overlayfs.mounts`` resolve to ``tree``, and its tests/integration importable."""
    sys.path.insert(0, os.path.join(tree, "tests", "integration"))  # upper_manifest: standard library only
    parts = tree.rstrip(os.sep).split(os.sep)
    if parts[-3:] == ["ansible_collections", "overlayfs", "mounts"]:
        root = os.sep.join(parts[:-3])
    else:
        root = tempfile.mkdtemp(prefix="kernel-matrix-path-")
        os.makedirs(os.path.join(root, "ansible_collections", "overlayfs"))
        os.symlink(tree, os.path.join(root, "ansible_collections", "overlayfs", "mounts"))
    sys.path.insert(0, root)


class Failure(Exception):
    pass


def check(condition, message, *details):
    if not condition:
        if details:
            message += ": " + "; ".join(repr(d) for d in details)
        raise Failure(message)


# ---- mountinfo, read independently of the collection's own parser ----------

def _unoctal(text):
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and text[i + 1:i + 4].isdigit():
            out.append(chr(int(text[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def mountinfo(path=None):
    """{mount point: (fstype, super options)} of the last mount on each point."""
    found = {}
    with open("/proc/self/mountinfo") as handle:
        for line in handle:
            fields = line.rstrip("\n").split(" ")
            sep = fields.index("-", 6)
            point = _unoctal(fields[4])
            found[point] = (fields[sep + 1], fields[sep + 3], fields[5])
    if path is not None:
        return found.get(path)
    return found


def live_layers(path, links_dir=None):
    """The lower layers mountinfo shows for the overlay at ``path``, top first.

    ``lowerdir+=`` entries (new mount API) or one ``lowerdir=a:b`` string;
    relative names (short links, mounted from a directory under links_dir)
    are resolved through the links found there.
    """
    entry = mountinfo(path)
    check(entry is not None and entry[0] == "overlay", "no overlay mounted at %s" % path, entry)
    layers, upper, work = [], None, None
    for option in entry[1].split(","):
        name, _sep, value = option.partition("=")
        if name == "lowerdir+":
            layers.append(_unoctal(value))
        elif name == "lowerdir":
            layers.extend(_unescape(v) for v in _split_unescaped(_unoctal(value)) if v)
        elif name == "upperdir":
            upper = _unescape(_unoctal(value))
        elif name == "workdir":
            work = _unescape(_unoctal(value))
    if layers and not layers[0].startswith("/"):
        layers = _resolve_short(layers, links_dir)
    return layers, upper, work


def _split_unescaped(text):
    """Split a lowerdir= value at the ':' that no backslash escapes."""
    parts, current, i = [], [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            current.append(text[i:i + 2])
            i += 2
            continue
        if text[i] == ":":
            parts.append("".join(current))
            current = []
        else:
            current.append(text[i])
        i += 1
    parts.append("".join(current))
    return parts


def _unescape(text):
    """Drop the backslash of the kernel's \\: \\, \\\\ escapes (kept as given on every kernel)."""
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            i += 1
        out.append(text[i])
        i += 1
    return "".join(out)


def _resolve_short(names, links_dir):
    check(links_dir is not None and os.path.isdir(links_dir),
          "mountinfo shows relative layers %s but there is no links dir" % names[:3])
    for root, _dirs, files in os.walk(links_dir):
        if names[0] in files or os.path.islink(os.path.join(root, names[0])):
            try:
                return [os.path.realpath(os.path.join(root, n)) for n in names]
            except OSError:
                continue
    raise Failure("relative layers %s... are not links under %s" % (names[:3], links_dir))


# ---- driving a module in-process --------------------------------------------

class ModuleRunner(object):
    """Runs a module's ``main()`` with injected arguments; returns its result dict."""

    def __init__(self):
        from ansible.module_utils import basic
        from ansible.module_utils.common import warnings
        from ansible_collections.overlayfs.mounts.plugins.modules import overlay_mount, overlay_mount_info, overlay_upper
        self.basic = basic
        self.warnings = warnings
        self.modules = {"overlay_mount": overlay_mount, "overlay_mount_info": overlay_mount_info,
                        "overlay_upper": overlay_upper}

    def __call__(self, name, args, check_mode=False, diff=True):
        payload = dict(args, _ansible_check_mode=check_mode, _ansible_diff=diff,
                       _ansible_tmpdir=tempfile.mkdtemp(prefix="ansible-module-"))
        self.basic._ANSIBLE_ARGS = json.dumps({"ANSIBLE_MODULE_ARGS": payload}).encode()
        self.basic._ANSIBLE_PROFILE = "legacy"
        self.warnings._global_warnings.clear()
        self.warnings._global_deprecations.clear()
        out = io.StringIO()
        saved, sys.stdout = sys.stdout, out
        try:
            self.modules[name].main()
        except SystemExit:
            pass
        finally:
            sys.stdout = saved
        text = out.getvalue().strip()
        try:
            return json.loads(text.splitlines()[-1])
        except (ValueError, IndexError):
            raise Failure("%s printed no result: %r" % (name, text[-2000:]))


def _fail_text(result):
    return result.get("msg") or json.dumps(result)[:2000]


def snapshot(scratch, fstab=None):
    """What check mode must leave alone: mounts and files under scratch."""
    mounts = sorted((k, v) for k, v in mountinfo().items() if k.startswith(scratch))
    tree = []
    for root, dirs, files in os.walk(scratch):
        dirs.sort()
        for name in sorted(dirs + files):
            full = os.path.join(root, name)
            tree.append((full, os.path.islink(full)))
    text = None
    if fstab and os.path.exists(fstab):
        with open(fstab) as handle:
            text = handle.read()
    return mounts, tree, text


def converge(run, name, args, scratch, fstab=None, expect_change=True):
    """Check mode, real run, second run; returns the real run's result."""
    before = snapshot(scratch, fstab)
    checked = run(name, args, check_mode=True)
    check(not checked.get("failed"), "check mode failed", _fail_text(checked))
    check(checked.get("changed") == expect_change, "check mode changed=%s, expected %s"
          % (checked.get("changed"), expect_change), checked.get("actions"))
    check(snapshot(scratch, fstab) == before, "check mode changed something under %s" % scratch)
    first = run(name, args)
    check(not first.get("failed"), "real run failed", _fail_text(first))
    check(first.get("changed") == expect_change, "real run changed=%s, expected %s"
          % (first.get("changed"), expect_change), first.get("actions"))
    second = run(name, args)
    check(not second.get("failed"), "second run failed", _fail_text(second))
    check(second.get("changed") is False, "second run changed", second.get("actions"), second.get("drift"))
    check(second.get("drift") in ([], None), "second run reports drift", second.get("drift"))
    first["_second"] = second
    return first


def write(path, text):
    with open(path, "w") as handle:
        handle.write(text)


def read(path):
    with open(path) as handle:
        return handle.read()


def mkdirs(*paths):
    for path in paths:
        os.makedirs(path, exist_ok=True)


def mount_args(path, lowers, upper=None, work=None, options=(), **extra):
    args = {"path": path, "lowerdir": list(lowers), "options": list(options), "persist": "none"}
    if upper:
        args.update(upperdir=upper, workdir=work)
    args.update(extra)
    return args


# ---- targets ----------------------------------------------------------------

def target_live_classic(run, d):
    """lower1 {a, b} above lower2 {a}, upper {c}: merged a (lower1), b, c; writes land in upper."""
    mkdirs(d + "/lower1", d + "/lower2", d + "/upper")
    write(d + "/lower1/a", "a from lower1\n")
    write(d + "/lower1/b", "b\n")
    write(d + "/lower2/a", "a from lower2\n")
    write(d + "/upper/c", "c\n")
    merged = d + "/merged"
    args = mount_args(merged, [d + "/lower1", d + "/lower2"], d + "/upper", d + "/work")
    result = converge(run, "overlay_mount", args, d)
    check(sorted(os.listdir(merged)) == ["a", "b", "c"], "merged view", sorted(os.listdir(merged)))
    check(read(merged + "/a") == "a from lower1\n", "a must come from lower1", read(merged + "/a"))
    write(merged + "/d", "new\n")
    check(read(d + "/upper/d") == "new\n", "a write must land in upper")
    check(not os.path.exists(d + "/lower1/d") and not os.path.exists(d + "/lower2/d"), "lowers changed")
    layers, upper, work = live_layers(merged)
    check(layers == [d + "/lower1", d + "/lower2"], "mountinfo layers", layers)
    check((upper, work) == (d + "/upper", d + "/work"), "mountinfo upper/work", upper, work)
    check(result["live"]["lowerdir"] == layers, "module's live.lowerdir", result["live"]["lowerdir"])
    return "method %s" % result.get("mount_method")


def target_live_read_only(run, d):
    """Two lowers, no upper: a read-only overlay."""
    mkdirs(d + "/l1", d + "/l2")
    write(d + "/l1/top", "top\n")
    write(d + "/l2/bottom", "bottom\n")
    merged = d + "/merged"
    result = converge(run, "overlay_mount", mount_args(merged, [d + "/l1", d + "/l2"]), d)
    check(sorted(os.listdir(merged)) == ["bottom", "top"], "merged view", os.listdir(merged))
    try:
        write(merged + "/x", "x")
        raise Failure("writing into a read-only overlay succeeded")
    except OSError:
        pass
    entry = mountinfo(merged)
    check("ro" in entry[1].split(",") + entry[2].split(","), "mount is not ro", entry)
    check(live_layers(merged)[0] == [d + "/l1", d + "/l2"], "mountinfo layers", live_layers(merged))
    return "method %s" % result.get("mount_method")


# Options every kernel of the matrix has (5.10 included); each set mounts,
# re-runs unchanged and shows no drift.
OPTION_SETS = [
    ["index=on"],
    ["redirect_dir=on"],
    ["metacopy=on"],
    ["redirect_dir=nofollow"],
    ["xino=off"],
    ["index=on", "nfs_export=on"],
    ["volatile"],
]


def target_live_options(run, d):
    """A few option sets, each on its own overlay."""
    mkdirs(d + "/l1", d + "/l2")
    write(d + "/l1/f", "f\n")
    methods = set()
    for i, options in enumerate(OPTION_SETS):
        base = "%s/%d" % (d, i)
        args = mount_args(base + "/merged", [d + "/l1", d + "/l2"], base + "/upper", base + "/work", options)
        try:
            result = converge(run, "overlay_mount", args, d)
        except Failure as error:
            raise Failure("options %s: %s" % (",".join(options), error))
        methods.add(result.get("mount_method"))
        check(read(base + "/merged/f") == "f\n", "options %s: file through merged" % options)
    return "%d option sets, method %s" % (len(OPTION_SETS), ",".join(sorted(str(m) for m in methods)))


def target_persist_fstab(run, d):
    """fstab line written, then unmounted and mounted back by the host's mount(8)."""
    mkdirs(d + "/l1", d + "/l2")
    write(d + "/l1/one", "1\n")
    write(d + "/l2/two", "2\n")
    fstab = d + "/fstab"
    write(fstab, "# scratch fstab\n")
    merged = d + "/merged"
    lowers = [d + "/l1", d + "/l2"]
    args = mount_args(merged, lowers, d + "/upper", d + "/work", persist="fstab", fstab=fstab)
    result = converge(run, "overlay_mount", args, d, fstab=fstab)
    lines = [line for line in read(fstab).splitlines() if line.startswith("overlay ")]
    check(len(lines) == 1, "one overlay line in fstab", read(fstab))
    subprocess.check_call(["umount", merged])
    check(mountinfo(merged) is None, "still mounted after umount")
    proc = subprocess.run(["mount", "-T", fstab, merged], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          check=False)
    check(proc.returncode == 0, "mount -T %s %s failed (rc %d): %s"
          % (fstab, merged, proc.returncode, proc.stdout.decode(errors="replace").strip()))
    layers, upper, work = live_layers(merged)
    check(layers == lowers, "layers after mount(8) from fstab", layers, lines[0])
    check((upper, work) == (d + "/upper", d + "/work"), "upper/work after mount(8)", upper, work)
    check(sorted(os.listdir(merged)) == ["one", "two"], "merged view after mount(8)", os.listdir(merged))
    again = run("overlay_mount", args)
    check(not again.get("failed") and again.get("changed") is False and again.get("drift") == [],
          "the module after mount(8) from fstab", _fail_text(again) if again.get("failed") else again.get("drift"))
    return "method %s; %s" % (result.get("mount_method"), lines[0][:60] + "...")


# Options whose support differs across the matrix (uuid modes: 5.11 and 6.6,
# userxattr: 5.11, verity: 6.6, fsync: later), plus a few every kernel has.
SUPPORT_OPTIONS = ["uuid=on", "uuid=off", "uuid=auto", "uuid=null", "userxattr", "verity=off", "fsync=strict",
                   "xino=auto", "redirect_dir=off", "volatile"]


def _mount8_accepts(d, option):
    """Ground truth, without the collection: does mount(8) mount an overlay with this option?"""
    base = d + "/by-hand-" + option.replace("=", "-")
    mkdirs(base + "/l1", base + "/l2", base + "/u", base + "/w", base + "/m")
    data = "lowerdir=%s/l1:%s/l2,upperdir=%s/u,workdir=%s/w,%s" % (base, base, base, base, option)
    proc = subprocess.run(["mount", "-t", "overlay", "overlay", "-o", data, base + "/m"],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    if proc.returncode == 0:
        subprocess.check_call(["umount", base + "/m"])
    shutil.rmtree(base)
    return proc.returncode == 0


def target_option_support(run, d):
    """The module accepts exactly the options the kernel mounts (mount(8) asked by hand), and converges with them."""
    mkdirs(d + "/l1", d + "/l2")
    write(d + "/l1/f", "f\n")
    taken, refused = [], []
    for i, option in enumerate(SUPPORT_OPTIONS):
        by_hand = _mount8_accepts(d, option)
        base = "%s/%d" % (d, i)
        args = mount_args(base + "/merged", [d + "/l1", d + "/l2"], base + "/upper", base + "/work", [option])
        if by_hand:
            try:
                converge(run, "overlay_mount", args, d)
            except Failure as error:
                raise Failure("%s (mount(8) takes it): %s" % (option, error))
            taken.append(option)
            continue
        before = snapshot(d)
        for check_mode in (True, False):
            result = run("overlay_mount", args, check_mode=check_mode)
            check(result.get("failed") and result["msg"].startswith("options: the running kernel does not take"),
                  "%s: mount(8) refuses it, the module must too (check_mode=%s)" % (option, check_mode),
                  _fail_text(result) if result.get("failed") else result.get("actions"))
            check(snapshot(d) == before, "%s: the refusal changed something" % option)
        refused.append(option)
    return "taken: %s; refused: %s" % (" ".join(taken), " ".join(refused) or "none")


def target_special_paths(run, d):
    """Space, tab, comma, colon, '=' and backslash in layer, upper and work paths, live and in fstab."""
    lowers = [d + "/" + name for name in ("sp ace", "com,ma", "co:lon", "eq=ual", "tab\there")]
    mkdirs(*lowers)
    write(lowers[0] + "/f", "f\n")
    fstab = d + "/fstab"
    write(fstab, "# scratch fstab\n")
    merged, upper, work = d + "/mer ged", d + "/up per,x", d + "/wo:rk"
    args = mount_args(merged, lowers, upper, work, persist="fstab", fstab=fstab)
    result = converge(run, "overlay_mount", args, d, fstab=fstab)
    check(live_layers(merged) == (lowers, upper, work), "mountinfo", live_layers(merged))
    check(result["live"]["lowerdir"] == lowers and result["live"]["upperdir"] == upper, "module's live",
          result["live"])
    subprocess.check_call(["umount", merged])
    proc = subprocess.run(["mount", "-T", fstab, merged], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          check=False)
    check(proc.returncode == 0, "mount -T of the escaped line failed: %s" % proc.stdout.decode(errors="replace"))
    check(live_layers(merged) == (lowers, upper, work), "mountinfo after mount(8)", live_layers(merged))
    # A backslash cannot go to fstab (the fstab generator halves it), but mounts live.
    slash = d + "/back\\slash"
    mkdirs(slash)
    args = mount_args(d + "/m2", [slash, lowers[1]], d + "/u2", d + "/w\\2")
    converge(run, "overlay_mount", args, d)
    check(live_layers(d + "/m2") == ([slash, lowers[1]], d + "/u2", d + "/w\\2"), "backslash paths",
          live_layers(d + "/m2"))
    return "method %s" % result.get("mount_method")


def _deep(run, d, count):
    # ~120-character layer paths: scratch prefix, padding, layer number.
    pad = "p" * max(1, 120 - len(d) - len("/layers//layer-000") - 1)
    base = "%s/layers/%s" % (d, pad)
    lowers = ["%s/layer-%03d" % (base, i) for i in range(count)]
    mkdirs(*lowers)
    write(lowers[-1] + "/bottom", "bottom of %d\n" % count)
    merged = d + "/merged"
    links = d + "/links"
    args = mount_args(merged, lowers, d + "/upper", d + "/work", links_dir=links)
    result = converge(run, "overlay_mount", args, d)
    layers, upper, _work = live_layers(merged, links)
    check(len(layers) == count, "mountinfo shows %d layers, expected %d" % (len(layers), count))
    wrong = [i for i, (a, b) in enumerate(zip(layers, lowers)) if a != b]
    check(not wrong, "layers differ in mountinfo at %s" % wrong[:5], layers[wrong[0]] if wrong else None)
    check(upper is not None, "no upper dir in mountinfo")
    check(read(merged + "/bottom") == "bottom of %d\n" % count, "bottom layer's file through merged")
    check(result["live"]["lowerdir"] == lowers, "module's live.lowerdir")
    return "method %s, %d-char paths" % (result.get("mount_method"), len(lowers[0]))


def target_deep_layers_100(run, d):
    """100 layers of ~120-character paths."""
    return _deep(run, d, 100)


def target_deep_layers_500(run, d):
    """500 layers of ~120-character paths (the kernel's maximum)."""
    return _deep(run, d, 500)


def target_relayer(run, d):
    """Changed lowers: the module unmounts and mounts again with the new stack."""
    mkdirs(d + "/l1", d + "/l2", d + "/l3")
    write(d + "/l1/f", "l1\n")
    write(d + "/l3/f", "l3\n")
    merged = d + "/merged"
    old = mount_args(merged, [d + "/l1", d + "/l2"], d + "/upper", d + "/work")
    converge(run, "overlay_mount", old, d)
    check(read(merged + "/f") == "l1\n", "before re-layering")
    new = mount_args(merged, [d + "/l3", d + "/l1"], d + "/upper", d + "/work")
    result = converge(run, "overlay_mount", new, d)
    actions = [step["action"] for step in result["actions"]]
    check("unmount" in actions and "mount" in actions, "re-layering actions", actions)
    check(live_layers(merged)[0] == [d + "/l3", d + "/l1"], "mountinfo after re-layering", live_layers(merged))
    check(read(merged + "/f") == "l3\n", "merged view after re-layering")
    return "actions %s" % ",".join(actions)


def target_info(run, d):
    """overlay_mount_info sees a persisted mount, with no drift; then sees drift."""
    mkdirs(d + "/l1", d + "/l2")
    fstab = d + "/fstab"
    write(fstab, "")
    merged = d + "/merged"
    args = mount_args(merged, [d + "/l1", d + "/l2"], d + "/upper", d + "/work", persist="fstab", fstab=fstab)
    converge(run, "overlay_mount", args, d, fstab=fstab)
    info_args = {"path": [merged], "fstab": fstab, "unit_dir": [d + "/units"]}
    for check_mode in (True, False):
        info = run("overlay_mount_info", info_args, check_mode=check_mode)
        check(not info.get("failed"), "overlay_mount_info failed", _fail_text(info))
        check(info.get("changed") is False, "info changed")
        mounts = info["overlay_mounts"]
        check(len(mounts) == 1 and mounts[0]["path"] == merged, "info entries", mounts)
        entry = mounts[0]
        check(entry["mounted"] and entry["persisted"] == "fstab", "mounted/persisted", entry)
        check(entry["lowerdir"] == [d + "/l1", d + "/l2"], "info lowerdir", entry["lowerdir"])
        check(entry["drift"] == [], "info drift on a converged mount", entry["drift"])
    # Drift: the live mount changed behind fstab's back.
    subprocess.check_call(["umount", merged])
    mkdirs(d + "/l0")
    subprocess.check_call(["mount", "-t", "overlay", "overlay", "-o",
                           "lowerdir=%s/l0:%s/l2,upperdir=%s/upper,workdir=%s/work" % (d, d, d, d), merged])
    info = run("overlay_mount_info", info_args)
    fields = [item["field"] for item in info["overlay_mounts"][0]["drift"]]
    check(fields == ["lowerdir"], "drift after mounting other lowers by hand", info["overlay_mounts"][0]["drift"])
    return "drift seen: %s" % ",".join(fields)


# ---- the composefs layout: one lower dir over data-only layers, no upper -----

MOTD = "served from the data-only layer\n"


def live_data_layers(path):
    """``(lowers, data-only layers)`` as mountinfo shows them: ``lowerdir+=``/``datadir+=`` or ``lowerdir=L::D``."""
    entry = mountinfo(path)
    check(entry is not None and entry[0] == "overlay", "no overlay mounted at %s" % path, entry)
    lowers, datas = [], []
    for option in entry[1].split(","):
        name, _sep, value = option.partition("=")
        if name == "lowerdir+":
            lowers.append(_unoctal(value))
        elif name == "datadir+":
            datas.append(_unoctal(value))
        elif name == "lowerdir":
            top, _sep, data = _unoctal(value).partition("::")
            lowers.extend(_unescape(v) for v in _split_unescaped(top))
            datas.extend(_unescape(v) for v in _split_unescaped(data) if data)
    return lowers, datas


def _mount8_takes_data_layers(d):
    """Ground truth, without the collection: does mount(8) mount ``lowerdir=L::D`` read-only?"""
    base = d + "/by-hand"
    mkdirs(base + "/l", base + "/d", base + "/m")
    proc = subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                           "lowerdir=%s/l::%s/d,metacopy=on,redirect_dir=follow" % (base, base), base + "/m"],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    if proc.returncode == 0:
        subprocess.check_call(["umount", base + "/m"])
    shutil.rmtree(base)
    return proc.returncode == 0


def _composefs_tree(d):
    """meta/etc/motd: a metacopy file (made by the kernel) whose redirect names data/objects/3f/motd."""
    scratch = d + "/scratch"
    mkdirs(d + "/data/objects/3f", d + "/meta", scratch + "/lower/etc", scratch + "/work", scratch + "/merged")
    write(d + "/data/objects/3f/motd", MOTD)
    write(scratch + "/lower/etc/motd", MOTD)
    subprocess.check_call(["mount", "-t", "overlay", "overlay", "-o",
                           "lowerdir=%s/lower,upperdir=%s/meta,workdir=%s/work,metacopy=on,redirect_dir=on"
                           % (scratch, d, scratch), scratch + "/merged"])
    try:
        os.chmod(scratch + "/merged/etc/motd", 0o600)
    finally:
        subprocess.check_call(["umount", scratch + "/merged"])
    motd = d + "/meta/etc/motd"
    check("trusted.overlay.metacopy" in os.listxattr(motd), "the kernel made no metacopy file", os.listxattr(motd))
    os.setxattr(motd, "trusted.overlay.redirect", b"/objects/3f/motd")
    os.removexattr(motd, "trusted.overlay.origin")
    shutil.rmtree(scratch)


def target_composefs(run, d):
    """One lower dir over a data-only layer, no upper: mounted and persisted where the kernel has data-only layers, refused where not."""
    mkdirs(d + "/meta", d + "/data")
    fstab = d + "/fstab"
    write(fstab, "# scratch fstab\n")
    merged = d + "/merged"
    args = mount_args(merged, [d + "/meta"], options=["metacopy=on", "redirect_dir=follow"],
                      datadir=[d + "/data"], persist="fstab", fstab=fstab)
    if not _mount8_takes_data_layers(d):
        before = snapshot(d, fstab)
        for check_mode in (True, False):
            result = run("overlay_mount", args, check_mode=check_mode)
            check(result.get("failed") and result["msg"].startswith("datadir: this kernel has no data-only lower layers"),
                  "mount(8) refuses lowerdir=L::D, the module must say so (check_mode=%s)" % check_mode,
                  _fail_text(result) if result.get("failed") else result.get("actions"))
            check(snapshot(d, fstab) == before, "the refusal changed something")
        return "refused: no data-only layers"
    _composefs_tree(d)
    result = converge(run, "overlay_mount", args, d, fstab=fstab)
    check(live_data_layers(merged) == ([d + "/meta"], [d + "/data"]), "mountinfo layers", live_data_layers(merged))
    check(result["live"]["datadir"] == [d + "/data"] and result["live"]["upperdir"] is None, "module's live",
          result["live"])
    check(read(merged + "/etc/motd") == MOTD, "the metacopy file's data from the data-only layer")
    check(sorted(os.listdir(merged)) == ["etc"], "data-only layers are not merged by name", os.listdir(merged))
    lines = [line for line in read(fstab).splitlines() if line.startswith("overlay ")]
    check(len(lines) == 1 and " lowerdir=%s/meta::%s/data," % (d, d) in lines[0], "the fstab line", lines)
    subprocess.check_call(["umount", merged])
    proc = subprocess.run(["mount", "-T", fstab, merged], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          check=False)
    check(proc.returncode == 0, "mount -T of the composefs line failed: %s" % proc.stdout.decode(errors="replace"))
    check(live_data_layers(merged) == ([d + "/meta"], [d + "/data"]), "mountinfo after mount(8)",
          live_data_layers(merged))
    again = run("overlay_mount", args)
    check(not again.get("failed") and again.get("changed") is False and again.get("drift") == [],
          "the module after mount(8) from fstab", _fail_text(again) if again.get("failed") else again.get("drift"))
    info = run("overlay_mount_info", {"path": [merged], "fstab": fstab, "unit_dir": [d + "/units"]})
    entry = (info.get("overlay_mounts") or [{}])[0]
    check(entry.get("persisted") == "fstab" and entry.get("drift") == [], "overlay_mount_info", entry)
    return "method %s" % result.get("mount_method")


# ---- overlay_upper: reset and commit what the kernel wrote into an upper dir --------------------

# Tried in order: the first set the kernel mounts (mount(8) asked by hand) makes the upper dir's cases.
UPPER_OPTION_TRIES = (["redirect_dir=on", "metacopy=on"], ["redirect_dir=on"], [])


def _upper_options(d):
    """The first option set of UPPER_OPTION_TRIES that mount(8) takes here."""
    base = d + "/probe"
    for options in UPPER_OPTION_TRIES:
        mkdirs(base + "/l1", base + "/l2", base + "/u", base + "/w", base + "/m")
        data = "lowerdir=%s/l1:%s/l2,upperdir=%s/u,workdir=%s/w" % (base, base, base, base)
        proc = subprocess.run(["mount", "-t", "overlay", "overlay", "-o", ",".join([data] + options), base + "/m"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
        if proc.returncode == 0:
            subprocess.check_call(["umount", base + "/m"])
        shutil.rmtree(base)
        if proc.returncode == 0:
            return options
    raise Failure("mount(8) mounts no overlay with an upper dir here")


def _user_xattrs(d):
    """Whether the scratch filesystem takes user.* xattrs (tmpfs only from 6.6)."""
    probe = d + "/xattr-probe"
    write(probe, "")
    try:
        os.setxattr(probe, "user.probe", b"1")
        return True
    except OSError:
        return False
    finally:
        os.unlink(probe)


def _write_upper_cases(merged, user_xattrs):
    """Every case through the live overlay (upper_manifest.change_through); without user.* xattrs, the
    kernel-written cases alone: new, changed and oddly named files, whiteouts, opaque dirs, renamed dirs,
    metadata-only changes, links, specials."""
    import upper_manifest
    if user_xattrs:
        return upper_manifest.change_through(merged)
    m = os.fsencode(merged)
    notes = {"user.* xattrs": "skipped: the scratch filesystem has none"}
    upper_manifest._new_files(m, notes)
    upper_manifest._deletions(m, notes)
    upper_manifest._renames(m, notes)
    upper_manifest._links(m, notes)
    upper_manifest._specials(m, notes)
    os.chmod(m + b"/meta.txt", 0o600)
    os.chown(m + b"/meta_owner.bin", 1, 2)
    os.chmod(m + b"/meta_renamed.txt", 0o640)
    os.rename(m + b"/meta_renamed.txt", m + b"/meta_moved.txt")
    os.utime(m + b"/lower_time.txt", ns=(upper_manifest.FIXED_NS, upper_manifest.FIXED_NS))
    upper_manifest._dir_times(m)
    return notes


def _kernel_wrote(upper):
    """What the kernel keeps in the upper dir: counts of whiteouts, opaque dirs, redirects, metacopy files."""
    counts = dict.fromkeys(("whiteouts", "opaque", "redirects", "metacopy"), 0)
    for root, dirs, files in os.walk(upper):
        for name in dirs + files:
            path = os.path.join(root, name)
            st = os.lstat(path)
            if (st.st_mode & 0o170000) == 0o020000 and st.st_rdev == 0:
                counts["whiteouts"] += 1
            if os.path.islink(path):
                continue
            names = os.listxattr(path, follow_symlinks=False)
            counts["redirects"] += "trusted.overlay.redirect" in names
            counts["metacopy"] += "trusted.overlay.metacopy" in names
            if "trusted.overlay.opaque" in names:
                counts["opaque"] += os.getxattr(path, "trusted.overlay.opaque") == b"y"
    return counts


def _upper_setup(run, d):
    """Lowers with every case's files, the overlay mounted and in fstab, the cases written through it."""
    import upper_manifest
    options = _upper_options(d)
    lowers = [d + "/lower1", d + "/lower2"]
    mkdirs(*lowers)
    upper_manifest.populate_lowers(lowers)
    fstab = d + "/fstab"
    write(fstab, "# scratch fstab\n")
    args = mount_args(d + "/merged", lowers, d + "/upper", d + "/work", options, persist="fstab", fstab=fstab)
    mounted = run("overlay_mount", args)
    check(not mounted.get("failed") and mounted.get("changed"), "mounting the overlay", _fail_text(mounted))
    notes = _write_upper_cases(d + "/merged", _user_xattrs(d))
    wrote = _kernel_wrote(d + "/upper")
    check(wrote["whiteouts"] and wrote["opaque"], "the kernel wrote no whiteout or opaque dir", wrote)
    check(wrote["redirects"] or "redirect_dir=on" not in options, "redirect_dir=on but no redirect written", wrote)
    check(wrote["metacopy"] or "metacopy=on" not in options, "metacopy=on but no metacopy file written", wrote)
    skipped = sorted(case for case, note in notes.items() if note != "done")
    kernel = ", ".join("%s %d" % kv for kv in sorted(wrote.items()))
    note = "options %s; upper: %s; skipped: %s" % (",".join(options) or "none", kernel, "; ".join(skipped) or "none")
    return args, lowers, fstab, note


def _read_only_view(d, layers, name):
    """The manifest of a read-only overlay of ``layers`` (top first), mounted by hand without options."""
    import upper_manifest
    point = d + "/" + name
    mkdirs(point)
    subprocess.check_call(["mount", "-t", "overlay", "overlay", "-o", "ro,lowerdir=" + ":".join(layers), point])
    try:
        return upper_manifest.manifest(point)
    finally:
        subprocess.check_call(["umount", point])


def _same_view(a, b, what, root_time=True):
    import upper_manifest
    if not root_time:
        a, b = dict(a), dict(b)
        for view in (a, b):
            view[b"."] = {k: v for k, v in view[b"."].items() if k != "mtime_ns"}
    diff = upper_manifest.compare(a, b)
    check(not diff, "%s: %d differences" % (what, len(diff)), *diff[:8])


def target_upper_commit(run, d):
    """Commit the kernel-written upper dir into a new layer: merged view unchanged, layer self-contained."""
    import upper_manifest
    args, lowers, fstab, note = _upper_setup(run, d)
    merged, layer = d + "/merged", d + "/layers/new"
    before = upper_manifest.manifest(merged)
    result = converge(run, "overlay_upper", dict(args, state="committed", layer=layer), d, fstab=fstab)
    check(result["lowerdir"] == [layer] + lowers, "returned lowerdir", result["lowerdir"])
    _same_view(before, upper_manifest.manifest(merged), "merged view before and after the commit")
    check(live_layers(merged)[0] == [layer] + lowers, "mountinfo after the commit", live_layers(merged))
    check(os.listdir(d + "/upper") == [], "the upper dir is not empty", os.listdir(d + "/upper")[:5])
    lines = [line for line in read(fstab).splitlines() if line.startswith("overlay ")]
    check(len(lines) == 1 and layer in lines[0], "the fstab line names the new layer", lines)
    # Self-contained: the new layer over the old ones, mounted with no redirect_dir or metacopy at all.
    _same_view(before, _read_only_view(d, [layer] + lowers, "plain"), "the new layer over the old ones, no options",
               root_time=False)
    counts = result.get("layer_counts") or {}
    return "%s; layer: %s; %s" % (note, ", ".join("%s %s" % kv for kv in sorted(counts.items()) if kv[1]),
                                  _pending_refused(d, [layer] + lowers))


def _pending_refused(d, lowers):
    """The marker a commit keeps in the work dir between its two switches: this kernel must refuse the mount."""
    from ansible_collections.overlayfs.mounts.plugins.module_utils._host import upper_journal
    base = d + "/pending"
    for sub in ("upper", "work", "m"):
        os.makedirs(base + "/" + sub)
    upper_journal.mark_pending(base + "/work")
    data = "lowerdir=%s,upperdir=%s/upper,workdir=%s/work" % (":".join(lowers), base, base)
    for flags in ("ro", "rw"):
        proc = subprocess.run(["mount", "-t", "overlay", "overlay", "-o", "%s,%s" % (flags, data), base + "/m"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
        if proc.returncode == 0:
            subprocess.call(["umount", base + "/m"])
        check(proc.returncode != 0, "a %s mount with the pending marker in the work dir was accepted" % flags, data)
    upper_journal.clear_pending(base + "/work")
    proc = subprocess.run(["mount", "-t", "overlay", "overlay", "-o", data, base + "/m"], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, check=False)
    check(proc.returncode == 0, "the mount once the marker is cleared", proc.stdout)
    subprocess.call(["umount", base + "/m"])
    return "pending marker refused (ro and rw)"


def target_upper_reset(run, d):
    """Reset the kernel-written upper dir, keeping a backup: the merged view is the lowers' view."""
    import upper_manifest
    args, lowers, fstab, note = _upper_setup(run, d)
    merged, backup = d + "/merged", d + "/backups/upper"
    raw = upper_manifest.manifest(d + "/upper", keep_overlay_xattrs=True)
    lower_view = _read_only_view(d, lowers, "lowers")
    result = converge(run, "overlay_upper", dict(args, state="reset", backup=backup), d, fstab=fstab)
    check(result.get("backup_path") == backup, "backup_path", result.get("backup_path"))
    _same_view(lower_view, upper_manifest.manifest(merged), "merged view after the reset and the lowers'",
               root_time=False)
    check(live_layers(merged)[0] == lowers, "mountinfo after the reset", live_layers(merged))
    check(os.listdir(d + "/upper") == [], "the upper dir is not empty", os.listdir(d + "/upper")[:5])
    _same_view(raw, upper_manifest.manifest(backup, keep_overlay_xattrs=True), "the old upper dir and its backup")
    discarded = result.get("discarded") or {}
    return "%s; discarded: %s" % (note, ", ".join("%s %s" % (k, v) for k, v in sorted(discarded.items())
                                                  if isinstance(v, int) and v))


TARGETS = [
    ("live_classic", target_live_classic),
    ("live_read_only", target_live_read_only),
    ("live_options", target_live_options),
    ("option_support", target_option_support),
    ("special_paths", target_special_paths),
    ("persist_fstab", target_persist_fstab),
    ("deep_layers_100", target_deep_layers_100),
    ("deep_layers_500", target_deep_layers_500),
    ("relayer", target_relayer),
    ("info", target_info),
    ("composefs", target_composefs),
    ("upper_reset", target_upper_reset),
    ("upper_commit", target_upper_commit),
]


def unmount_under(scratch):
    """Unmount everything below scratch, deepest and newest first."""
    for _round in range(5):
        points = [p for p in mountinfo() if p.startswith(scratch + "/")]
        if not points:
            return
        for point in sorted(points, key=len, reverse=True):
            subprocess.call(["umount", "-l", point], stderr=subprocess.DEVNULL)


class Heartbeat(object):
    """A progress line at least every 50 s while a target runs (CI wants one a minute)."""

    def __init__(self, label, every=50):
        self.label, self.every, self.stop = label, every, threading.Event()

    def __enter__(self):
        start = time.time()

        def beat():
            while not self.stop.wait(self.every):
                print("  ... %s still running (%ds)" % (self.label, time.time() - start), flush=True)
        threading.Thread(target=beat, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.stop.set()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("targets", nargs="*", help="targets to run (default: all): %s"
                        % " ".join(name for name, _f in TARGETS))
    parser.add_argument("--tree", default=os.environ.get("OVERLAYFS_TREE", DEFAULT_TREE),
                        help="collection checkout under test (default: $OVERLAYFS_TREE or this checkout)")
    parser.add_argument("--scratch", default="/tmp/kernel-matrix",
                        help="scratch dir; a tmpfs is mounted on it (default %(default)s)")
    opts = parser.parse_args()
    names = [name for name, _f in TARGETS]
    unknown = [t for t in opts.targets if t not in names]
    if unknown:
        parser.error("unknown target(s) %s; known: %s" % (" ".join(unknown), " ".join(names)))
    if os.geteuid() != 0:
        parser.error("must run as root (it mounts overlays); on the host use unshare --mount")

    t0 = time.time()
    importable(os.path.abspath(opts.tree))
    run = ModuleRunner()
    kernel = platform.release()
    print("kernel %s  tree %s  (imports %.1fs)" % (kernel, os.path.abspath(opts.tree), time.time() - t0),
          flush=True)
    scratch = opts.scratch.rstrip("/")
    os.makedirs(scratch, exist_ok=True)
    subprocess.check_call(["mount", "-t", "tmpfs", "-o", "mode=755", "tmpfs", scratch])
    failed = 0
    try:
        for name, function in TARGETS:
            if opts.targets and name not in opts.targets:
                continue
            d = os.path.join(scratch, name)
            os.makedirs(d)
            start = time.time()
            error = note = None
            with Heartbeat("kernel %s target %s" % (kernel, name)):
                try:
                    note = function(run, d)
                except Failure as exc:
                    error = str(exc)
                except Exception:  # the module or the driver broke: show where
                    error = traceback.format_exc()
            unmount_under(d)
            status = "FAIL" if error else "PASS"
            failed += bool(error)
            suffix = "  (%s)" % note if note and not error else ""
            print("kernel %s  target %s  %s  %.1fs%s" % (kernel, name, status, time.time() - start, suffix),
                  flush=True)
            if error:
                print("\n".join("    " + line for line in error.rstrip().splitlines()), flush=True)
            shutil.rmtree(d, ignore_errors=True)
    finally:
        unmount_under(scratch)
        subprocess.call(["umount", scratch])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
