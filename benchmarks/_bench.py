# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the playbook benchmarks share: namespace, scratch overlays, checks, timed runs.

Used by ``role_vs_loop.py`` (50 overlays, against a loop of
ansible.posix.mount) and ``scale.py`` (10 to 1,000 overlays, growth,
floor and profile, optionally side by side with an earlier revision).
Benchmarks only; nothing here is part of the collection.
"""

import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
PLAYBOOKS = os.path.join(HERE, "playbooks")
CACHE_COLLECTIONS = os.path.join(REPO, ".cache", "collections")
POSIX = os.path.join(CACHE_COLLECTIONS, "ansible_collections", "ansible", "posix")
NS_FLAG = "OVERLAYFS_BENCH_IN_NAMESPACE"
TIME = "/usr/bin/time"  # GNU time: the module process's CPU and peak memory

RECAP = re.compile(r"^localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def reexec_in_namespace(script):
    """Run ``script`` again in a private mount namespace, once."""
    if os.environ.get(NS_FLAG) == "1":
        return
    if os.geteuid() != 0:
        sys.exit("needs root (mounts overlays in a private mount namespace)")
    env = dict(os.environ, **{NS_FLAG: "1"})
    command = ["unshare", "--mount", "--propagation", "private", sys.executable, os.path.abspath(script)]
    os.execvpe("unshare", command + sys.argv[1:], env)


def private_run():
    """An empty tmpfs on /run, in this private mount namespace only (call after ``reexec_in_namespace``).

    The collection's modules take the host lock in /run; with /run of its
    own, the benchmark's runs never wait for a lock that other runs of the
    collection on the machine (a test suite, say) hold, and do not make
    them wait.
    """
    if os.environ.get(NS_FLAG) != "1":
        raise RuntimeError("private_run() outside the benchmark's private mount namespace")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=755,nosuid,nodev", "bench-run", "/run"], check=True)


def find_venv(explicit):
    candidates = [explicit] if explicit else [os.path.join(REPO, ".venv"), "/tmp/probe-venv"]
    for venv in candidates:
        if venv and os.access(os.path.join(venv, "bin", "ansible-playbook"), os.X_OK):
            return os.path.abspath(venv)  # the scripts run ansible-playbook from work dirs of their own
    sys.exit("no venv with ansible-playbook in %s: run scripts/bootstrap.sh" % ", ".join(c for c in candidates if c))


def collections_path(kind, work):
    if not os.path.isdir(POSIX):
        sys.exit("ansible.posix is missing from %s: run scripts/bootstrap.sh" % CACHE_COLLECTIONS)
    if kind == "installed":
        if not os.path.isdir(os.path.join(CACHE_COLLECTIONS, "ansible_collections", "overlayfs", "mounts")):
            sys.exit("overlayfs.mounts is not installed in %s: run scripts/collection.sh" % CACHE_COLLECTIONS)
        return CACHE_COLLECTIONS
    root = os.path.join(work, "collections")
    for namespace, name, source in (("overlayfs", "mounts", REPO), ("ansible", "posix", POSIX)):
        os.makedirs(os.path.join(root, "ansible_collections", namespace))
        os.symlink(source, os.path.join(root, "ansible_collections", namespace, name))
    return root


#: What ``exported_collections`` takes from a revision: enough for the role and its module to be found.
EXPORTED = ("galaxy.yml", "meta", "plugins", "roles", "playbooks")


def _git(*args, **kwargs):
    return subprocess.run(["git", "-C", REPO] + list(args), stdout=subprocess.PIPE, check=False, **kwargs)


def exported_collections(rev, work, name="baseline"):
    """``(collections path, short commit)``: overlayfs.mounts as revision ``rev`` of this repository has it.

    ``git archive`` writes the revision's collection (the parts in
    :data:`EXPORTED` it has) into ``work/NAME/ansible_collections/
    overlayfs/mounts``; ansible.posix is linked beside it, as in
    :func:`collections_path`.
    """
    if not os.path.isdir(POSIX):
        sys.exit("ansible.posix is missing from %s: run scripts/bootstrap.sh" % CACHE_COLLECTIONS)
    found = _git("rev-parse", "--short", "--verify", "--quiet", rev + "^{commit}", universal_newlines=True)
    if found.returncode != 0:
        sys.exit("%s is not a commit of %s" % (rev, REPO))
    commit = found.stdout.strip()
    names = set(_git("ls-tree", "--name-only", commit, universal_newlines=True).stdout.split())
    root = os.path.join(work, name)
    collection = os.path.join(root, "ansible_collections", "overlayfs", "mounts")
    os.makedirs(collection)
    archive = _git("archive", "--format=tar", commit, *[part for part in EXPORTED if part in names])
    if archive.returncode != 0:
        sys.exit("git archive %s failed" % commit)
    subprocess.run(["tar", "-x", "-C", collection], input=archive.stdout, check=True)
    os.makedirs(os.path.join(root, "ansible_collections", "ansible"))
    os.symlink(POSIX, os.path.join(root, "ansible_collections", "ansible", "posix"))
    return root, commit


def declare(root, count):
    """The overlays and their directories under ``root`` (mount points are left to the modules).

    Each overlay has a lower layer of its own over a shared base layer, an
    upper and a work dir.
    """
    overlays = []
    base = os.path.join(root, "layers", "base")
    os.makedirs(base)
    with open(os.path.join(base, "base.txt"), "w") as handle:
        handle.write("base\n")
    for i in range(count):
        app = os.path.join(root, "layers", "app%02d" % i)
        os.makedirs(app)
        with open(os.path.join(app, "app.txt"), "w") as handle:
            handle.write("app %d\n" % i)
        upper = os.path.join(root, "state", "app%02d" % i, "upper")
        work = os.path.join(root, "state", "app%02d" % i, "work")
        os.makedirs(upper)
        os.makedirs(work)
        overlays.append({"path": os.path.join(root, "mnt", "app%02d" % i),
                         "lowerdir": [app, base], "upperdir": upper, "workdir": work})
    os.makedirs(os.path.join(root, "units"))
    os.makedirs(os.path.join(root, "modules-load.d"))  # as on a real host (the module expects it)
    with open(os.path.join(root, "fstab"), "w") as handle:
        handle.write("# scratch fstab of a benchmark in benchmarks/\n")
    return overlays


def fresh_scratch(base, count):
    """A new scratch tmpfs under ``base`` with ``count`` declared overlays and a vars file for them."""
    root = tempfile.mkdtemp(prefix="run-", dir=base)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=755", "bench", root], check=True)
    overlays = declare(root, count)
    vars_file = os.path.join(root, "vars.json")
    with open(vars_file, "w") as handle:
        json.dump({"bench_root": root, "bench_overlays": overlays}, handle)
    return root, overlays, vars_file


def drop_scratch(root):
    subprocess.run(["umount", "-R", "-l", root], check=False)
    os.rmdir(root)


def _unescape(field):
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def live_overlays(prefix):
    """{mount point: (lowers, upper, work)} of the overlays mounted under ``prefix``."""
    found = {}
    stacked = 0
    with open("/proc/self/mountinfo") as handle:
        for line in handle:
            fields = line.split()
            dash = fields.index("-")
            mount_point = _unescape(fields[4])
            if fields[dash + 1] != "overlay" or not mount_point.startswith(prefix + "/"):
                continue
            if mount_point in found:
                stacked += 1
            found[mount_point] = overlay_paths(fields[dash + 3])
    return found, stacked


def overlay_paths(super_options):
    """``(lowers, upper, work)`` of an overlay's super options as mountinfo shows them.

    A parser of its own, simpler than the collection's, so that the
    benchmarks check the mounts independently of the code they measure.
    """
    lowers, upper, work = [], None, None
    for option in super_options.rstrip("\n").split(","):
        key, _sep, value = option.partition("=")
        if key == "lowerdir":
            lowers.extend(_unescape(v) for v in value.split(":"))
        elif key == "lowerdir+":
            lowers.append(_unescape(value))
        elif key == "upperdir":
            upper = _unescape(value)
        elif key == "workdir":
            work = _unescape(value)
    return lowers, upper, work


def prepare(work):
    """The scratch dir and an empty declaration (``empty-vars.json``) for runs under ``work``."""
    scratch = os.path.join(work, "scratch")
    os.makedirs(scratch)
    empty_vars = os.path.join(work, "empty-vars.json")
    with open(empty_vars, "w") as handle:
        json.dump({"bench_root": os.path.join(work, "empty"), "bench_overlays": []}, handle)
    for sub in ("units", "modules-load.d"):
        os.makedirs(os.path.join(work, "empty", sub))
    return scratch, empty_vars


def verify(root, overlays, case):
    """Exactly the declared overlays are live and persisted; raise otherwise."""
    found, stacked = live_overlays(root + "/mnt")
    problems = []
    if stacked:
        problems.append("%d overlays mounted twice (stacked)" % stacked)
    for decl in overlays:
        live = found.get(decl["path"])
        if live is None:
            problems.append("%s not mounted" % decl["path"])
        elif live != (decl["lowerdir"], decl["upperdir"], decl["workdir"]):
            problems.append("%s mounted as %r" % (decl["path"], live))
        elif not (os.path.exists(os.path.join(decl["path"], "base.txt"))
                  and os.path.exists(os.path.join(decl["path"], "app.txt"))):
            problems.append("%s does not show both lower layers" % decl["path"])
    if len(found) != len(overlays):
        problems.append("%d overlays mounted, %d declared" % (len(found), len(overlays)))
    with open(os.path.join(root, "fstab")) as handle:
        lines = [line for line in handle if line.split()[:1] == ["overlay"]]
    if len(lines) != len(overlays):
        problems.append("%d overlay lines in the scratch fstab, %d declared" % (len(lines), len(overlays)))
    if problems:
        raise SystemExit("%s: verification failed: %s" % (case, "; ".join(problems[:5])))
    return len(found)


def child_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def load():
    with open("/proc/loadavg") as handle:
        return " ".join(handle.read().split()[:3])


class Runner(object):
    """Runs the playbooks of ``benchmarks/playbooks`` on localhost over the local connection.

    With ``measure_modules`` the modules run under GNU time (a two-line
    shell wrapper as the Python interpreter), which records each module
    process's wall and CPU seconds and its peak memory (max RSS).
    """

    def __init__(self, venv, collections, work, verbose, measure_modules=False):
        self.playbook = os.path.join(venv, "bin", "ansible-playbook")
        self.python = os.path.join(venv, "bin", "python")
        self.work = work
        self.verbose = verbose
        self.module_log = None
        self.interpreter = self.python
        if measure_modules:
            if not os.access(TIME, os.X_OK):
                sys.exit("%s (GNU time) is needed to measure the module process" % TIME)
            self.module_log = os.path.join(work, "modules.log")
            self.interpreter = os.path.join(work, "python-timed")
            with open(self.interpreter, "w") as handle:
                handle.write("#!/bin/sh\nexec %s -a -o %s -f 'module %%e %%U %%S %%M' %s \"$@\"\n"
                             % (TIME, self.module_log, self.python))
            os.chmod(self.interpreter, 0o755)
        self.env = dict(
            os.environ,
            ANSIBLE_COLLECTIONS_PATH=collections,
            ANSIBLE_CONFIG=os.path.join(work, "ansible.cfg"),  # no user or /etc config
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_STDOUT_CALLBACK="default",
            ANSIBLE_LOCALHOST_WARNING="0",
            ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
            ANSIBLE_RETRY_FILES_ENABLED="0",
        )
        for name in ("ANSIBLE_ROLES_PATH", "ANSIBLE_CALLBACKS_ENABLED", "ANSIBLE_CALLBACK_WHITELIST",
                     "ANSIBLE_PIPELINING", "ANSIBLE_KEEP_REMOTE_FILES", "ANSIBLE_DEBUG"):
            self.env.pop(name, None)  # no extra callbacks; ansible's defaults otherwise
        with open(self.env["ANSIBLE_CONFIG"], "w") as handle:
            handle.write("[defaults]\n")

    def _modules(self):
        """``(wall, cpu, max RSS KiB)`` summed (RSS: the largest) over the module processes logged."""
        if self.module_log is None or not os.path.exists(self.module_log):
            return None
        wall = cpu = 0.0
        rss = 0
        with open(self.module_log) as handle:
            for line in handle:
                fields = line.split()
                if fields[:1] == ["module"]:
                    wall += float(fields[1])
                    cpu += float(fields[2]) + float(fields[3])
                    rss = max(rss, int(fields[4]))
        os.unlink(self.module_log)
        return wall, cpu, rss

    def run(self, name, vars_file, expect_changed, extra_env=None):
        """``(wall, cpu, output, modules)`` of one ansible-playbook run; checks the recap.

        ``modules`` is ``(wall, cpu, max RSS KiB)`` of the module processes
        when they are measured, else None.
        """
        command = [self.playbook, "-i", "localhost,", "-c", "local",
                   "-e", "ansible_python_interpreter=%s" % self.interpreter,
                   "-e", "@%s" % vars_file, os.path.join(PLAYBOOKS, name + ".yml")]
        env = dict(self.env, **(extra_env or {}))
        if self.module_log and os.path.exists(self.module_log):
            os.unlink(self.module_log)
        cpu = child_cpu()
        start = time.monotonic()
        proc = subprocess.run(command, env=env, cwd=self.work, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, universal_newlines=True, check=False)
        wall = time.monotonic() - start
        cpu = child_cpu() - cpu
        modules = self._modules()
        recap = RECAP.search(proc.stdout)
        if proc.returncode != 0 or recap is None or int(recap.group(4)):
            sys.stderr.write(proc.stdout[-6000:])
            raise SystemExit("%s: ansible-playbook failed (rc %d)" % (name, proc.returncode))
        changed = int(recap.group(2))
        if expect_changed is not None and not expect_changed(changed):
            sys.stderr.write(proc.stdout[-6000:])
            raise SystemExit("%s: unexpected changed=%d" % (name, changed))
        if self.verbose:
            sys.stderr.write("  %-8s %7.2f s wall %7.2f s cpu changed=%d%s\n" % (
                name, wall, cpu, changed,
                "" if modules is None else "; module %.2f s wall %.2f s cpu %d MiB" % (
                    modules[0], modules[1], modules[2] // 1024)))
        return wall, cpu, proc.stdout, modules
