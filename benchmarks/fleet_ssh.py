#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The role, its re-run and the drift report over a fleet of real SSH hosts, against a fleet ping.

Builds a fleet on this machine: N hosts, each an ``sshd`` in a network
namespace of its own (a veth pair on a private bridge, addresses in
10.213.0.0/16) and a mount namespace of its own (a private /run, an empty
home for root, and a scratch tmpfs per case holding the host's layers, fstab, unit dir and
modules-load.d dir). ansible-core from the venv reaches them over real SSH:
key authentication with a key made for the run, a known_hosts file with the
fleet's host key, and ``[ssh_connection]`` as users configure it
(``pipelining = True``, ``ssh_args = -C -o ControlMaster=auto
-o ControlPersist=60s``). The targets run Debian's /usr/bin/python3.

For every N (``--hosts``, default 10,25,50) and every forks setting
(``--forks``, default 10,25), with ``--overlays`` (default 20) overlays a
host, it times whole ansible-playbook runs over the fleet:

* ping: one ``ansible.builtin.ping`` task on every host (the baseline);
* role (a'): the role overlayfs.mounts.overlay_host, first converge on hosts
  whose code cache (~/.cache/overlayfs.mounts) was removed, as the first run
  after the collection is installed or upgraded;
* role (a): the role's first converge on a fresh scratch, the code cache
  kept from the runs before, as every later converge finds it;
* role (b): its idempotent re-run;
* role (b'): the same re-run through ``import_role`` with
  ``rolespec_validate: false`` (no task checking the role's variables; the
  module still checks every value), right before or after (b), in turn;
* drift: playbooks/drift_report.yml (check mode) over the fleet;
* loop: the same overlays through ``ansible.posix.mount`` in a loop (the
  anchor), at the fleet sizes of ``--loop-hosts`` (default: the smallest N
  only, since the loop runs one module per overlay and host: 1,000 module
  runs at 50 hosts); the loop runs after the other cases.

Each case starts from a fresh scratch tmpfs on every host, and the
ControlPersist masters are warm (an untimed ping opens them first), as in a
user's second run. After every converge the benchmark checks, in each host's
own mount namespace, that the declared overlays are live with their layers
and that the host's scratch fstab holds their lines; after the drift report,
that every host is in drift.json, in sync. Then, once (at the largest N and
forks), the role runs on a fresh scratch and the last host's sshd (with its
sessions) is killed as soon as its module has started: every other host must
converge, and a drift report run afterwards shows what it says about the dead
host.

Everything the benchmark makes is named with the prefix ``ovfl``
(namespaces ovfl-hNNN, veths ovfl-vNNN, bridge ovfl-br) and removed at the
end, also on SIGINT and SIGTERM; ``--cleanup`` removes leftovers of a run
that was killed harder. ``--cap`` (seconds, default 900) stops starting new
cases once passed. Needs root, iproute2, openssh-server (``/usr/sbin/sshd``;
not started as a service) and openssh-client.

    python3 benchmarks/fleet_ssh.py [--hosts 10,25,50] [--overlays 20] [--forks 10,25]
        [--loop-hosts 10] [--runs 1] [--cap 900] [--no-unreachable] [--keep-work] [--cleanup] [-v]
"""

import argparse
import itertools
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from _bench import (
    _unescape,
    child_cpu,
    collections_path,
    declare,
    find_venv,
    load as _load,
    overlay_paths,
    REPO,
)

PREFIX = "ovfl"
BRIDGE = PREFIX + "-br"
BRIDGE_ADDRESS = "10.213.0.1"
SSHD = "/usr/sbin/sshd"
DRIFT_PLAYBOOK = os.path.join(REPO, "playbooks", "drift_report.yml")
TARGET_PYTHON = "/usr/bin/python3"

# The targets, as ratios of the fleet ping in the same run.
TARGET_RERUN = 1.5
TARGET_DRIFT = 1.5
TARGET_CONVERGE = 2.0
TARGET_LOOP_OVER_ROLE = 10.0
# "Linear in N": the cost at the largest N over the cost at the smallest may grow at most this much more than N did.
LINEAR_SLACK = 1.25

RECAP = re.compile(r"^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)

PLAYBOOKS = {
    "ping": """
- name: Fleet ping
  hosts: fleet
  gather_facts: false
  tasks:
    - name: Ping
      ansible.builtin.ping:
""",
    "role": """
- name: Overlays through overlayfs.mounts.overlay_host
  hosts: fleet
  gather_facts: false
  roles:
    - role: overlayfs.mounts.overlay_host
""",
    "role_unchecked": """
- name: Overlays through overlayfs.mounts.overlay_host, without ansible-core's check of the role's variables
  hosts: fleet
  gather_facts: false
  tasks:
    - name: Converge
      ansible.builtin.import_role:
        name: overlayfs.mounts.overlay_host
        rolespec_validate: false
""",
    "loop": """
- name: Overlays through ansible.posix.mount in a loop
  hosts: fleet
  gather_facts: false
  tasks:
    - name: Mount and persist each overlay
      ansible.posix.mount:
        path: "{{ item.path }}"
        src: overlay
        fstype: overlay
        opts: "lowerdir={{ item.lowerdir | join(':') }},upperdir={{ item.upperdir }},workdir={{ item.workdir }}"
        state: mounted
        fstab: "{{ overlay_host_fstab }}"
      loop: "{{ overlay_host_mounts }}"
      loop_control:
        label: "{{ item.path }}"
""",
}

CASES = [
    ("ping", "ping: ansible.builtin.ping"),
    ("role_cold", "role (a'): converge, code cache cold"),
    ("role_a", "role (a): first converge"),
    ("role_b", "role (b): idempotent re-run"),
    ("role_b_unchecked", "role (b'): re-run, no spec check"),
    ("drift", "drift report (check mode)"),
    ("loop", "loop: ansible.posix.mount, converge"),
]


class Interrupted(Exception):
    """SIGTERM or SIGHUP: unwind through the ``finally`` clauses that clean up."""


def _on_signal(signum, _frame):
    raise Interrupted("signal %d" % signum)


def _run(command, check=True, **kwargs):
    return subprocess.run(command, check=check, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, **kwargs)


def host_name(index: int) -> str:
    """The inventory name, network namespace name and host-side veth suffix of host ``index`` (from 1)."""
    return "h%03d" % index


def host_address(index: int) -> str:
    """Host ``index``'s address on the bridge (10.213.0.3 upwards; the bridge is 10.213.0.1)."""
    return "10.213.%d.%d" % (index // 200, index % 200 + 2)


# --- the fleet: keys, bridge, namespaces, sshd ------------------------------------------------------------


def _write(path, text, mode=0o644):
    with open(path, "w") as handle:
        handle.write(text)
    os.chmod(path, mode)


def make_keys(work: str) -> None:
    """A client key (authorized on every host), a host key for every sshd, and a known_hosts naming it."""
    for name in ("id_ed25519", "ssh_host_ed25519_key"):
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "overlayfs-fleet", "-f", os.path.join(work, name)])
    shutil.copy(os.path.join(work, "id_ed25519.pub"), os.path.join(work, "authorized_keys"))
    with open(os.path.join(work, "ssh_host_ed25519_key.pub")) as handle:
        host_key = " ".join(handle.read().split()[:2])
    _write(os.path.join(work, "known_hosts"), "10.213.*.* %s\n" % host_key)
    _write(os.path.join(work, "sshd_config"), "\n".join([
        "Port 22",
        "HostKey %s" % os.path.join(work, "ssh_host_ed25519_key"),
        "PidFile /run/sshd.pid",
        "AuthorizedKeysFile %s" % os.path.join(work, "authorized_keys"),
        "PermitRootLogin prohibit-password",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        "StrictModes no",
        "MaxStartups 200",
        "MaxSessions 100",
        "LogLevel ERROR",
        "Subsystem sftp internal-sftp",
        "",
    ]))


def make_bridge() -> None:
    """The private bridge, with the controller's address on it."""
    _run(["ip", "link", "add", BRIDGE, "type", "bridge"])
    _run(["ip", "addr", "add", BRIDGE_ADDRESS + "/16", "dev", BRIDGE])
    _run(["ip", "link", "set", BRIDGE, "up"])


def start_host(work: str, index: int) -> subprocess.Popen:
    """Host ``index``: its network namespace, veth pair on the bridge, and its sshd in a private mount namespace."""
    name = PREFIX + "-" + host_name(index)
    veth = PREFIX + "-v%03d" % index
    _run(["ip", "netns", "add", name])
    _run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", name])
    _run(["ip", "link", "set", veth, "master", BRIDGE, "up"])
    for command in (["ip", "addr", "add", host_address(index) + "/16", "dev", "eth0"],
                    ["ip", "link", "set", "eth0", "up"], ["ip", "link", "set", "lo", "up"]):
        _run(["ip", "netns", "exec", name] + command)
    # A /run of its own (sshd's pid file, the collection's host lock) and an empty home for root, so that the
    # sessions run no shell start-up files of this machine's root (pyenv's rehash there can stall for seconds).
    script = ("mount -t tmpfs -o mode=755,nosuid,nodev {p}-run /run && mkdir -m 755 /run/sshd"
              " && mount -t tmpfs -o mode=700 {p}-home /root && exec {sshd} -D -e -f {config}"
              .format(p=PREFIX, sshd=SSHD, config=os.path.join(work, "sshd_config")))
    log = open(os.path.join(work, "logs", name + ".sshd.log"), "w")
    try:
        # ip netns exec, unshare (no --fork) and sh's exec all exec in place: the pid is sshd's.
        return subprocess.Popen(["ip", "netns", "exec", name, "unshare", "--mount", "--propagation", "private",
                                 "sh", "-c", script], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    finally:
        log.close()


def wait_listening(count: int, sshds: dict, timeout: float = 30.0) -> None:
    """Until every host's sshd accepts connections on port 22 (checked from inside its namespace)."""
    deadline = time.monotonic() + timeout
    for index in range(1, count + 1):
        name = PREFIX + "-" + host_name(index)
        while True:
            if sshds[index].poll() is not None:
                raise SystemExit("sshd of %s exited (rc %s): see its log" % (name, sshds[index].returncode))
            listening = _run(["ip", "netns", "exec", name, "ss", "-Htln", "sport = :22"], check=False).stdout
            if listening.strip():
                break
            if time.monotonic() > deadline:
                raise SystemExit("sshd of %s does not listen after %g s" % (name, timeout))
            time.sleep(0.05)


def _prefixed(kind):
    """Our leftovers of ``kind`` (netns or link), by name."""
    if kind == "netns":
        names = [line.split()[0] for line in _run(["ip", "netns", "list"], check=False).stdout.splitlines() if line.strip()]
    else:
        names = [line.split()[0].split("@")[0] for line in _run(["ip", "-br", "link"], check=False).stdout.splitlines()
                 if line.strip()]
    return [name for name in names if name.startswith(PREFIX + "-")]


def cleanup(work=None, sshds=None) -> list:
    """Remove every process, namespace, veth and the bridge this benchmark makes; returns what was removed."""
    removed = []
    if work:
        for socket in _control_sockets(work):
            _run(["ssh", "-O", "exit", "-o", "ControlPath=" + socket, "fleet"], check=False)
    leftovers = _kill_naming(work or os.path.join(tempfile.gettempdir(), PREFIX + "-fleet-"))
    if leftovers:
        removed.append("%d processes of an interrupted run" % leftovers)
    for name in _prefixed("netns"):
        pids = _run(["ip", "netns", "pids", name], check=False).stdout.split()
        for pid in pids:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        _run(["ip", "netns", "del", name], check=False)
        removed.append("netns %s (%d processes)" % (name, len(pids)))
    for proc in (sshds or {}).values():
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    for name in _prefixed("link"):
        _run(["ip", "link", "del", name], check=False)
        removed.append("link %s" % name)
    return removed


def _kill_naming(marker: str) -> int:
    """Kill every process whose command line names ``marker`` (a work dir); returns how many.

    An interrupted run kills ``ansible-playbook``, but its workers, each in
    a session of its own, outlive it; their command lines name the run's
    inventory and playbook in the work dir.
    """
    killed = 0
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open("/proc/%s/cmdline" % name, "rb") as handle:
                command = handle.read().replace(b"\0", b" ").decode("utf-8", "replace")
            if marker in command:
                os.kill(int(name), signal.SIGKILL)
                killed += 1
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return killed


def _control_sockets(work):
    folder = os.path.join(work, "cp")
    return [os.path.join(folder, name) for name in os.listdir(folder)] if os.path.isdir(folder) else []


def close_connections(work: str) -> None:
    """Stop the ControlPersist masters, so that the next run opens its connections afresh."""
    for socket in _control_sockets(work):
        _run(["ssh", "-O", "exit", "-o", "ControlPath=" + socket, "fleet"], check=False)


# --- each host's scratch: layers, fstab, units, in its own mount namespace ----------------------------------


def _nsenter(pid, *command):
    return _run(["nsenter", "-t", str(pid), "-m"] + list(command), check=False)


def new_scratch(work: str, pids: dict, count: int, tag: str) -> tuple:
    """``(directory, vars file)``: a fresh tmpfs at the same path on every host, ``count`` overlays declared on it.

    The tmpfs is mounted in each host's own mount namespace, and its tree
    written through /proc/PID/root, so each host has layers, upper and work
    dirs, fstab, unit dir and modules-load.d of its own at the same paths.
    """
    directory = os.path.join(work, "srv", tag)
    os.makedirs(directory)
    overlays = None
    for pid in pids.values():
        mounted = _nsenter(pid, "mount", "-t", "tmpfs", "-o", "mode=755", PREFIX + "-scratch", directory)
        if mounted.returncode != 0:
            raise SystemExit("cannot mount the scratch tmpfs in pid %d's namespace: %s" % (pid, mounted.stderr.strip()))
        proc_root = "/proc/%d/root" % pid
        declared = declare(proc_root + directory, count)
        overlays = [_strip(decl, proc_root) for decl in declared]
    vars_file = os.path.join(work, "vars-%s.json" % tag)
    with open(vars_file, "w") as handle:
        json.dump({
            "overlay_host_mounts": overlays,
            "overlay_host_persist": "fstab",
            "overlay_host_fstab": os.path.join(directory, "fstab"),
            "overlay_host_unit_dir": os.path.join(directory, "units"),
            "overlay_host_modules_load_file": os.path.join(directory, "modules-load.d", "overlay.conf"),
            "drift_report_dir": os.path.join(work, "reports", tag),
        }, handle)
    return directory, vars_file


def _strip(value, prefix):
    """``value`` (a declared overlay) with the /proc/PID/root ``prefix`` taken off its paths: the host's own view."""
    if isinstance(value, dict):
        return {key: _strip(item, prefix) for key, item in value.items()}
    if isinstance(value, list):
        return [_strip(item, prefix) for item in value]
    return value[len(prefix):] if isinstance(value, str) and value.startswith(prefix + "/") else value


def drop_scratch(directory: str, pids: dict) -> None:
    """Unmount a scratch tree (and the overlays on it) from every host still alive, and remove its directory.

    The directory is removed with what it holds: after an interrupted run a
    module process may still run on a host, and what it creates after the
    lazy unmount lands in the directory below, which every namespace shares.
    """
    for pid in pids.values():
        if os.path.exists("/proc/%d" % pid):
            _nsenter(pid, "umount", "-R", "-l", directory)
    shutil.rmtree(directory)


def verify_host(pid: int, directory: str, vars_file: str) -> list:
    """What is wrong on one host: the declared overlays live with their layers, and their fstab lines."""
    with open(vars_file) as handle:
        declared = json.load(handle)["overlay_host_mounts"]
    found = {}
    with open("/proc/%d/mountinfo" % pid) as handle:
        for line in handle:
            fields = line.split()
            dash = fields.index("-")
            point = _unescape(fields[4])
            if fields[dash + 1] == "overlay" and point.startswith(directory + "/"):
                found.setdefault(point, []).append(overlay_paths(fields[dash + 3]))
    problems = []
    for decl in declared:
        live = found.get(decl["path"], [])
        if live != [(decl["lowerdir"], decl["upperdir"], decl["workdir"])]:
            problems.append("%s mounted as %r" % (decl["path"], live))
        elif not os.path.exists("/proc/%d/root%s/base.txt" % (pid, decl["path"])):
            problems.append("%s does not show the base layer" % decl["path"])
    if len(found) != len(declared):
        problems.append("%d overlays mounted, %d declared" % (len(found), len(declared)))
    with open("/proc/%d/root%s/fstab" % (pid, directory)) as handle:
        lines = [line for line in handle if line.split()[:1] == ["overlay"]]
    if len(lines) != len(declared):
        problems.append("%d overlay lines in fstab, %d declared" % (len(lines), len(declared)))
    return problems


def verify_fleet(pids: dict, directory: str, vars_file: str, case: str) -> int:
    """Every host in ``pids`` has the declared overlays; raise otherwise. Returns the number of hosts checked."""
    for index, pid in sorted(pids.items()):
        problems = verify_host(pid, directory, vars_file)
        if problems:
            raise SystemExit("%s: %s: verification failed: %s" % (case, host_name(index), "; ".join(problems[:4])))
    return len(pids)


# --- ansible-playbook over the fleet ----------------------------------------------------------------------


def write_config(work: str) -> dict:
    """ansible.cfg as a user with an SSH fleet sets it, the playbooks, and the environment for the runs."""
    _write(os.path.join(work, "ansible.cfg"), "\n".join([
        "[defaults]",
        "remote_user = root",
        "private_key_file = %s" % os.path.join(work, "id_ed25519"),
        "",
        "[ssh_connection]",
        "pipelining = True",
        "ssh_args = -C -o ControlMaster=auto -o ControlPersist=60s -o UserKnownHostsFile=%s" % os.path.join(work, "known_hosts"),
        "control_path_dir = %s" % os.path.join(work, "cp"),
        "",
    ]))
    os.makedirs(os.path.join(work, "playbooks"))
    for name, text in PLAYBOOKS.items():
        _write(os.path.join(work, "playbooks", name + ".yml"), "---" + text)
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=os.path.join(work, "ansible.cfg"),
        ANSIBLE_HOME=os.path.join(work, "ansible-home"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_STDOUT_CALLBACK="default",
        ANSIBLE_RETRY_FILES_ENABLED="0",
    )
    for name in ("ANSIBLE_ROLES_PATH", "ANSIBLE_CALLBACKS_ENABLED", "ANSIBLE_CALLBACK_WHITELIST",
                 "ANSIBLE_PIPELINING", "ANSIBLE_KEEP_REMOTE_FILES", "ANSIBLE_DEBUG", "ANSIBLE_SSH_ARGS"):
        env.pop(name, None)
    return env


def write_inventory(work: str, count: int) -> str:
    """An INI inventory of hosts 1..``count`` in the group ``fleet``."""
    path = os.path.join(work, "inventory-%d.ini" % count)
    lines = ["[fleet]"] + ["%s ansible_host=%s" % (host_name(i), host_address(i)) for i in range(1, count + 1)]
    lines += ["", "[fleet:vars]", "ansible_python_interpreter=%s" % TARGET_PYTHON, ""]
    _write(path, "\n".join(lines))
    return path


def communicate(proc: subprocess.Popen, timeout: float) -> str:
    """The output of ``proc``, killed past ``timeout`` seconds or when this process is interrupted."""
    try:
        return proc.communicate(timeout=timeout)[0]
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate()[0] + "\n(killed after %g s)\n" % timeout
    except BaseException:
        proc.kill()
        proc.wait()
        raise


TICK = os.sysconf("SC_CLK_TCK")


def _proc_stats():
    """``{pid: (ppid, own + reaped children's CPU seconds)}`` of every process now running."""
    stats = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After the command: state ppid ... utime(14) stime(15) cutime(16) cstime(17), 1-based over the whole line.
        stats[int(name)] = (int(fields[1]), sum(int(f) for f in fields[11:15]) / TICK)
    return stats


def hosts_cpu(sshds: list) -> float:
    """CPU seconds the fleet's hosts have used: each sshd, its sessions, shells and modules, live or reaped.

    A process that ends is added to its parent's reaped children's time
    (``cutime``), so the sum over every process under the sshd listeners
    grows by exactly what ran on the hosts between two calls, module
    processes included, however short they were.
    """
    stats = _proc_stats()
    children = {}
    for pid, (ppid, _cpu) in stats.items():
        children.setdefault(ppid, []).append(pid)
    total, todo = 0.0, [pid for pid in sshds if pid in stats]
    while todo:
        pid = todo.pop()
        total += stats[pid][1]
        todo.extend(children.get(pid, []))
    return total


class Fleet(object):
    """Runs playbooks over the fleet and checks each host's line of the recap."""

    def __init__(self, venv: str, work: str, collections: str, deadline: float, verbose: bool) -> None:
        self.playbook = os.path.join(venv, "bin", "ansible-playbook")
        self.work = work
        self.deadline = deadline
        self.verbose = verbose
        self.env = write_config(work)
        self.env["ANSIBLE_COLLECTIONS_PATH"] = collections
        self.sshds = []  # the sshd listeners' pids, for hosts_cpu

    def start(self, name, inventory, forks, vars_file=None, extra_env=None):
        """The ansible-playbook process of playbook ``name`` (a path, or one of :data:`PLAYBOOKS`)."""
        path = name if os.path.isabs(name) else os.path.join(self.work, "playbooks", name + ".yml")
        command = [self.playbook, "-i", inventory, "-f", str(forks), path]
        if vars_file:
            command += ["-e", "@" + vars_file]
        return subprocess.Popen(command, env=dict(self.env, **(extra_env or {})), cwd=self.work, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, universal_newlines=True)

    def run(self, name: str, inventory: str, forks: int, vars_file: str = None, extra_env: dict = None) -> tuple:
        """``(wall, controller cpu, {host: (ok, changed, unreachable, failed)}, output, rc)`` of one run.

        The hosts' CPU seconds of the run are left in ``self.last_hosts_cpu``.
        """
        cpu, on_hosts = child_cpu(), hosts_cpu(self.sshds)
        start = time.monotonic()
        proc = self.start(name, inventory, forks, vars_file, extra_env)
        output = communicate(proc, max(self.deadline - start, 60))
        wall = time.monotonic() - start
        self.last_hosts_cpu = hosts_cpu(self.sshds) - on_hosts
        recap = {m.group(1): tuple(int(m.group(g)) for g in range(2, 6)) for m in RECAP.finditer(output)}
        with open(os.path.join(self.work, "logs", "last-%s.log" % os.path.basename(name)), "w") as handle:
            handle.write(output)
        return wall, child_cpu() - cpu, recap, output, proc.returncode

    def timed(self, name: str, inventory: str, forks: int, count: int, expect, vars_file: str = None) -> tuple:
        """``(wall, controller cpu, hosts' cpu)`` of a run whose every host of 1..``count`` passes ``expect(changed)``, not failed or unreachable."""
        wall, cpu, recap, output, rc = self.run(name, inventory, forks, vars_file)
        bad = [host for host in (host_name(i) for i in range(1, count + 1))
               if host not in recap or recap[host][2] or recap[host][3] or not expect(recap[host][1])]
        if rc != 0 or bad:
            errors = [line for line in output.splitlines() if line.startswith(("fatal:", "failed:", "[ERROR]"))]
            sys.stderr.write("\n".join(errors[:10])[:6000] + "\n" if errors else output[-6000:])
            raise SystemExit("%s over %d hosts, forks %d: rc %d, hosts not as expected: %s"
                             % (os.path.basename(name), count, forks, rc, ", ".join(bad[:8]) or "-"))
        if self.verbose:
            sys.stderr.write("  %-16s N=%-3d forks=%-3d %7.2f s wall %7.2f s controller cpu %7.2f s hosts' cpu (load %s)\n"
                             % (os.path.basename(name), count, forks, wall, cpu, self.last_hosts_cpu, _load()))
        return wall, cpu, self.last_hosts_cpu


# --- the measurements -------------------------------------------------------------------------------------


def read_report(work: str, tag: str):
    """drift.json of the report run on scratch ``tag``, or None when the playbook wrote none."""
    path = os.path.join(work, "reports", tag, "drift.json")
    if not os.path.exists(path):
        return None
    with open(path) as handle:
        return json.load(handle)


def check_report(report, count: int, case: str) -> None:
    """Every host 1..``count`` in the report, in sync; raise otherwise."""
    if report is None:
        raise SystemExit("%s: no drift.json written" % case)
    states = {host["host"]: (host.get("status"), host.get("drifted_fields")) for host in report["hosts"]}
    bad = [h for h in (host_name(i) for i in range(1, count + 1)) if states.get(h) != ("ok", 0)]
    if bad:
        raise SystemExit("%s: hosts not reported in sync: %s" % (case, ", ".join("%s %r" % (h, states.get(h)) for h in bad[:5])))


def drop_code_cache(pids: dict) -> None:
    """Remove the collection's code cache from every host (root's home is the host's own tmpfs)."""
    for pid in pids.values():
        shutil.rmtree("/proc/%d/root/root/.cache/overlayfs.mounts" % pid, ignore_errors=True)


def _steps(fleet, pids, inventory, count, forks, args, record):
    """The timed steps of one repetition at ``count`` hosts and ``forks``: ping, role (a'), (a), (b) and (b') and drift, ping."""
    def ping():
        record("ping", fleet.timed("ping", inventory, forks, count, lambda c: c == 0))

    def cold():
        # As the first run after the collection is installed or upgraded: every module compiles its code.
        directory, vars_file = new_scratch(fleet.work, pids, args.overlays, "cold-%d-%d-%d" % (count, forks, time.monotonic_ns() % 10 ** 9))
        try:
            drop_code_cache(pids)
            record("role_cold", fleet.timed("role", inventory, forks, count, lambda c: c >= 1, vars_file))
            verify_fleet(pids, directory, vars_file, "role (a')")
        finally:
            drop_scratch(directory, pids)

    turn = itertools.count()

    def role():
        tag = "role-%d-%d-%d" % (count, forks, time.monotonic_ns() % 10 ** 9)
        directory, vars_file = new_scratch(fleet.work, pids, args.overlays, tag)
        try:
            record("role_a", fleet.timed("role", inventory, forks, count, lambda c: c >= 1, vars_file))
            verify_fleet(pids, directory, vars_file, "role (a)")
            reruns = [("role_b", "role"), ("role_b_unchecked", "role_unchecked")]
            for case, name in reruns[::-1] if next(turn) % 2 else reruns:  # which re-run goes first alternates
                record(case, fleet.timed(name, inventory, forks, count, lambda c: c == 0, vars_file))
            verify_fleet(pids, directory, vars_file, "role (b)")
            record("drift", fleet.timed(DRIFT_PLAYBOOK, inventory, forks, count, lambda c: True, vars_file))
            check_report(read_report(fleet.work, tag), count, "drift report")
        finally:
            drop_scratch(directory, pids)

    return [ping, cold, role, ping]  # ping before and after: its median is steadier against load that changes


def _recorder(results, count, forks):
    """A function that records ``(wall, cpu)`` of a case at (``count``, ``forks``) into ``results``."""
    data = results.setdefault((count, forks), {"wall": {}, "cpu": {}, "hosts_cpu": {}, "load": _load()})

    def record(case, measured):
        data["wall"].setdefault(case, []).append(measured[0])
        data["cpu"].setdefault(case, []).append(measured[1])
        data["hosts_cpu"].setdefault(case, []).append(measured[2])
    return record


def _settings(fleet: Fleet, all_pids: dict, counts: list, forks_list: list, skipped: list, kind: str):
    """``(count, forks, inventory, pids)`` of each setting not past the cap, the ControlPersist masters warm.

    An untimed ping opens the masters first, as a user's runs within a minute of each other find them.
    """
    for count in counts:
        inventory = write_inventory(fleet.work, count)
        pids = {index: all_pids[index] for index in range(1, count + 1)}
        for forks in forks_list:
            if time.monotonic() > fleet.deadline:
                skipped.append((count, forks, kind))
                continue
            fleet.timed("ping", inventory, forks, count, lambda c: c == 0)
            yield count, forks, inventory, pids


def measure(fleet: Fleet, all_pids: dict, args, results: dict, skipped: list) -> None:
    """Every (N, forks) case, ``args.runs`` repetitions each, the steps rotating; stops starting cases past the cap."""
    for count, forks, inventory, pids in _settings(fleet, all_pids, args.hosts, args.forks, skipped, "all"):
        record = _recorder(results, count, forks)
        steps = _steps(fleet, pids, inventory, count, forks, args, record)
        for rep in range(args.runs):
            shift = rep % len(steps)
            for step in steps[shift:] + steps[:shift]:
                step()
        results[(count, forks)]["load"] += " .. " + _load()


def measure_loops(fleet: Fleet, all_pids: dict, counts: list, args, results: dict, skipped: list) -> None:
    """The ansible.posix.mount loop (the anchor) at each N of ``counts`` and every forks, once, within the cap."""
    for count, forks, inventory, pids in _settings(fleet, all_pids, counts, args.forks, skipped, "loop"):
        directory, vars_file = new_scratch(fleet.work, pids, args.overlays, "loop-%d-%d" % (count, forks))
        try:
            _recorder(results, count, forks)("loop", fleet.timed("loop", inventory, forks, count, lambda c: c >= 1, vars_file))
            verify_fleet(pids, directory, vars_file, "loop")
        finally:
            drop_scratch(directory, pids)


def _victim_started(pid):
    """True once a process under sshd ``pid`` runs Python (the module has started on that host)."""
    todo = [pid]
    while todo:
        current = todo.pop()
        try:
            with open("/proc/%d/task/%d/children" % (current, current)) as handle:
                children = [int(c) for c in handle.read().split()]
            with open("/proc/%d/comm" % current) as handle:
                if handle.read().startswith("python"):
                    return True
        except (FileNotFoundError, ProcessLookupError):
            continue
        todo.extend(children)
    return False


def kill_host(index: int) -> int:
    """Kill every process in host ``index``'s network namespace (its sshd and sessions); returns how many."""
    pids = _run(["ip", "netns", "pids", PREFIX + "-" + host_name(index)], check=False).stdout.split()
    for pid in pids:
        try:
            os.kill(int(pid), signal.SIGKILL)
        except ProcessLookupError:
            pass
    return len(pids)


def _kill_when_started(proc, pid, index):
    """Wait until host ``index``'s module runs (or the playbook ends), then kill the host; seconds into the run."""
    start = time.monotonic()
    while proc.poll() is None and not _victim_started(pid):
        time.sleep(0.02)
    started = proc.poll() is None
    kill_host(index)
    return time.monotonic() - start, started


def unreachable_case(fleet: Fleet, all_pids: dict, count: int, forks: int, overlays: int) -> dict:
    """The role over ``count`` hosts with one killed mid-run, then a drift report: what each said."""
    victim = count  # the last host: the loops, run after this, use only smaller fleets
    inventory = write_inventory(fleet.work, count)
    pids = {index: all_pids[index] for index in range(1, count + 1)}
    others = {index: pid for index, pid in pids.items() if index != victim}
    directory, vars_file = new_scratch(fleet.work, pids, overlays, "unreachable")
    found = {"hosts": count, "forks": forks, "victim": host_name(victim)}
    try:
        start = time.monotonic()
        proc = fleet.start("role", inventory, forks, vars_file)
        try:
            found["killed_after"], found["killed_while_running"] = _kill_when_started(proc, pids[victim], victim)
        except BaseException:
            communicate(proc, 0)
            raise
        output = communicate(proc, max(fleet.deadline - start, 120))
        found["role_wall"] = time.monotonic() - start
        found["role_rc"] = proc.returncode
        recap = {m.group(1): tuple(int(m.group(g)) for g in range(2, 6)) for m in RECAP.finditer(output)}
        found["victim_recap"] = recap.get(host_name(victim))
        found["others_not_converged"] = [host_name(i) for i in others
                                         if recap.get(host_name(i), (0, 0, 1, 1))[1:] != (1, 0, 0)]
        found["others_problems"] = {host_name(i): verify_host(pid, directory, vars_file) for i, pid in others.items()}
        found["others_problems"] = {h: p for h, p in found["others_problems"].items() if p}
        wall, _cpu, recap, output, found["drift_rc"] = fleet.run(DRIFT_PLAYBOOK, inventory, forks, vars_file)
        found["drift_wall"] = wall
        found["drift_victim_recap"] = recap.get(host_name(victim))
        report = read_report(fleet.work, "unreachable")
        found["report_written"] = report is not None
        if report is not None:
            hosts = {host["host"]: host for host in report["hosts"]}
            found["report_summary"] = report.get("summary")
            found["report_victim"] = hosts.get(host_name(victim))
            found["report_others_not_in_sync"] = [host_name(i) for i in others
                                                  if (hosts.get(host_name(i)) or {}).get("status") != "ok"
                                                  or (hosts.get(host_name(i)) or {}).get("drifted_fields")]
        else:
            found["drift_output_tail"] = output[-1500:]
    finally:
        drop_scratch(directory, others)
    return found


def profile(fleet: Fleet, all_pids: dict, count: int, forks: int, overlays: int) -> str:
    """profile_tasks of one converge, one re-run and one drift report over ``count`` hosts."""
    inventory = write_inventory(fleet.work, count)
    pids = {index: all_pids[index] for index in range(1, count + 1)}
    directory, vars_file = new_scratch(fleet.work, pids, overlays, "profile")
    env = {"ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.profile_tasks"}
    texts = []
    try:
        for label, name in (("converge", "role"), ("re-run", "role"), ("drift report", DRIFT_PLAYBOOK)):
            wall, _cpu, _recap, output, _rc = fleet.run(name, inventory, forks, vars_file, env)
            start = output.find("====")
            texts.append("%s, %.2f s:\n%s" % (label, wall, output[output.rfind("\n", 0, start) + 1:].rstrip()))
    finally:
        drop_scratch(directory, pids)
    return "\n".join(texts)


# --- the report -------------------------------------------------------------------------------------------


def _medians(results):
    return {key: {case: statistics.median(values) for case, values in data["wall"].items()}
            for key, data in results.items()}


def print_table(results: dict) -> None:
    """One row per (N, forks, case): median wall seconds, controller and hosts' CPU, seconds per host, ratios to ping.

    The CPU ratio is (controller + hosts' CPU) against the ping's: on one machine, where the hosts share the
    controller's CPUs, it is what the wall-clock ratio comes to once the CPUs are busy.
    """
    print("%5s %5s  %-36s %7s %7s %7s %7s  %s" % ("hosts", "forks", "case", "wall s", "ctl cpu", "hst cpu", "s/host",
                                                  "ratio (wall; cpu)"))
    for (count, forks), data in sorted(results.items()):
        med = {kind: {case: statistics.median(values) for case, values in data[kind].items()}
               for kind in ("wall", "cpu", "hosts_cpu")}
        wall = med["wall"]
        for case, label in CASES:
            if case not in wall:
                continue
            both = med["cpu"][case] + med["hosts_cpu"][case]
            ratio = "-" if case == "ping" else "%.2fx; %.2fx" % (
                wall[case] / wall["ping"], both / (med["cpu"]["ping"] + med["hosts_cpu"]["ping"]))
            if case == "loop" and "role_a" in wall:
                ratio += "; loop/role (a) %.1fx" % (wall["loop"] / wall["role_a"])
            print("%5d %5d  %-36s %7.2f %7.2f %7.2f %7.3f  %s" % (
                count, forks, label, wall[case], med["cpu"][case], med["hosts_cpu"][case], wall[case] / count, ratio))
        print("%5s %5s  load average %s" % ("", "", data["load"]))


def _check(name, value, ok):
    print("target %-56s %6.2fx  %s" % (name, value, "met" if ok(value) else "NOT MET"))
    return ok(value)


def print_targets(results: dict) -> None:
    """Each ratio target per (N, forks), and growth with N per forks setting."""
    meds = _medians(results)
    for (count, forks), med in sorted(meds.items()):
        label = "N=%d forks=%d: " % (count, forks)
        if "role_b" in med:
            _check(label + "re-run/ping <= %g" % TARGET_RERUN, med["role_b"] / med["ping"], lambda r: r <= TARGET_RERUN)
        if "role_b_unchecked" in med:
            _check(label + "re-run, no spec check/ping <= %g" % TARGET_RERUN, med["role_b_unchecked"] / med["ping"],
                   lambda r: r <= TARGET_RERUN)
            _check(label + "drift/ping <= %g" % TARGET_DRIFT, med["drift"] / med["ping"], lambda r: r <= TARGET_DRIFT)
            _check(label + "converge/ping <= %g" % TARGET_CONVERGE, med["role_a"] / med["ping"],
                   lambda r: r <= TARGET_CONVERGE)
        if "role_cold" in med:
            _check(label + "converge, code cache cold/ping <= %g" % TARGET_CONVERGE, med["role_cold"] / med["ping"],
                   lambda r: r <= TARGET_CONVERGE)
        if "loop" in med and "role_a" in med:
            _check(label + "loop/converge >= %g" % TARGET_LOOP_OVER_ROLE, med["loop"] / med["role_a"],
                   lambda r: r >= TARGET_LOOP_OVER_ROLE)
    for forks in sorted({forks for _count, forks in meds}):
        counts = sorted(count for count, f in meds if f == forks)
        if len(counts) < 2:
            continue
        low, high = meds[(counts[0], forks)], meds[(counts[-1], forks)]
        hosts = counts[-1] / counts[0]
        for case, label in CASES:
            if case in low and case in high:
                _check("forks=%d %s: N %d->%d grows (hosts %.1fx, limit %.2fx)" % (
                    forks, case, counts[0], counts[-1], hosts, hosts * LINEAR_SLACK),
                    high[case] / low[case], lambda r, hosts=hosts: r <= hosts * LINEAR_SLACK)


def print_unreachable(found: dict) -> None:
    """What the run with one host killed mid-run showed."""
    print("one host killed mid-run: %s of %d hosts, forks %d" % (found["victim"], found["hosts"], found["forks"]))
    print("  killed %.2f s into the role run, %s" % (
        found["killed_after"], "while its module ran" if found["killed_while_running"] else "after the run ended (too late)"))
    print("  role run: rc %s, %.2f s; victim's recap ok/changed/unreachable/failed %s" % (
        found["role_rc"], found["role_wall"], found["victim_recap"]))
    if found["others_not_converged"] or found["others_problems"]:
        problems = list(found["others_problems"].items())[:3]
        print("  other hosts: NOT all converged: %s %s" % (found["others_not_converged"][:5], problems))
    else:
        print("  other hosts: all %d converged, their overlays and fstab verified" % (found["hosts"] - 1))
    print("  drift report run: rc %s, %.2f s; victim's recap %s; drift.json %s" % (
        found["drift_rc"], found["drift_wall"], found["drift_victim_recap"],
        "written" if found["report_written"] else "NOT written"))
    if found["report_written"]:
        victim = found["report_victim"] or {}
        print("  report summary: %s" % json.dumps(found["report_summary"], sort_keys=True))
        print("  report on the victim: status %r, reachable %r, message %r" % (
            victim.get("status"), victim.get("reachable"), (victim.get("msg") or victim.get("error") or "")[:160]))
        print("  report on the others: %s" % ("all in sync" if not found["report_others_not_in_sync"]
                                              else "not in sync: %s" % found["report_others_not_in_sync"][:5]))
    else:
        print("  drift playbook output (tail):\n" + found["drift_output_tail"])


# --- main -------------------------------------------------------------------------------------------------


def _numbers(text):
    return sorted({int(part) for part in text.split(",") if part.strip()})


def _parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--hosts", type=_numbers, default=[10, 25, 50], help="fleet sizes, comma-separated (default 10,25,50)")
    parser.add_argument("--overlays", type=int, default=20, help="overlays a host (default 20)")
    parser.add_argument("--forks", type=_numbers, default=[10, 25], help="forks settings, comma-separated (default 10,25)")
    parser.add_argument("--runs", type=int, default=1, help="repetitions of every case (default 1)")
    parser.add_argument("--cap", type=float, default=900, help="start no case after this many seconds (default 900)")
    parser.add_argument("--loop-hosts", type=_numbers, default=None,
                        help="fleet sizes at which to run the ansible.posix.mount loop, the anchor (default: the "
                             "smallest of --hosts; 0: none). The loop runs one module per overlay and host: "
                             "1,000 module runs at 50 hosts")
    parser.add_argument("--no-unreachable", action="store_true", help="skip the run with a host killed mid-run")
    parser.add_argument("--cleanup", action="store_true", help="only remove leftovers of an earlier run (ovfl-* namespaces, links)")
    parser.add_argument("--profile", action="store_true",
                        help="at the end, print profile_tasks of a converge, re-run and drift report over the largest fleet")
    parser.add_argument("--keep-work", action="store_true", help="keep the work dir (logs, playbooks, reports)")
    parser.add_argument("--venv", help="venv with ansible-playbook (default .venv, then /tmp/probe-venv)")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every run")
    return parser.parse_args()


def _preflight(args):
    if os.geteuid() != 0:
        sys.exit("needs root (network and mount namespaces)")
    if args.cleanup:
        removed = cleanup()
        print("\n".join(removed) if removed else "nothing to clean up")
        sys.exit(0)
    if not os.access(SSHD, os.X_OK):
        sys.exit("%s is missing: apt-get install -y openssh-server" % SSHD)
    if _prefixed("netns") or _prefixed("link"):
        sys.exit("leftovers of an earlier run (%s): run with --cleanup first" % ", ".join((_prefixed("netns") + _prefixed("link"))[:4]))
    if max(args.hosts) > 999:
        sys.exit("at most 999 hosts")
    args.loop_hosts = [n for n in (args.loop_hosts if args.loop_hosts is not None else args.hosts[:1]) if n]
    beyond = [n for n in args.loop_hosts if n > max(args.hosts)]
    if beyond:
        sys.exit("--loop-hosts %s: larger than the fleet (--hosts %s); give sizes up to %d, or 0 for no loop"
                 % (",".join(map(str, beyond)), ",".join(map(str, args.hosts)), max(args.hosts)))


def build_fleet(work: str, count: int, sshds: dict) -> dict:
    """Keys, bridge and ``count`` hosts with their sshd (filling ``sshds``); returns {index: sshd pid}."""
    for sub in ("logs", "srv", "reports", "cp"):
        os.makedirs(os.path.join(work, sub))
    make_keys(work)
    make_bridge()
    for index in range(1, count + 1):
        sshds[index] = start_host(work, index)
    wait_listening(count, sshds)
    pids = {}
    for index, proc in sshds.items():
        with open("/proc/%d/comm" % proc.pid) as handle:
            if handle.read().strip() != "sshd":
                raise SystemExit("pid %d of %s is not sshd" % (proc.pid, host_name(index)))
        pids[index] = proc.pid
    return pids


def _print_header(args, venv, load_before, built, skipped, interrupted):
    print("fleet of SSH hosts on this machine: one sshd per network + mount namespace, %d overlays a host "
          "(2 lowers + upper + work each, scratch fstab)" % args.overlays)
    print("ansible-playbook from %s over ssh: pipelining, ControlMaster=auto ControlPersist=60s (masters warm: "
          "one untimed ping opens them before each N and forks); targets run %s" % (venv, TARGET_PYTHON))
    print("machine: %d CPUs, load average %s before; fleet built in %.1f s; %d run(s) per case"
          % (os.cpu_count(), load_before, built, args.runs))
    if skipped:
        print("NOT measured (past --cap %g s): %s" % (args.cap, ", ".join("N=%d forks=%d (%s)" % s for s in skipped)))
    if interrupted:
        print("INTERRUPTED: %s; the figures below are what was measured before" % interrupted)


def main():
    args = _parse_args()
    _preflight(args)
    venv = find_venv(args.venv)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _on_signal)
    work = tempfile.mkdtemp(prefix=PREFIX + "-fleet-")
    load_before, started = _load(), time.monotonic()
    sshds, results, skipped, found, interrupted, built, profiled = {}, {}, [], None, None, 0.0, None
    try:
        pids = build_fleet(work, max(args.hosts), sshds)
        built = time.monotonic() - started
        fleet = Fleet(venv, work, collections_path("live", work), started + args.cap, args.verbose)
        fleet.sshds = list(pids.values())
        measure(fleet, pids, args, results, skipped)
        # The unreachable case kills the last host of the largest fleet: a loop over that fleet runs before it.
        largest = [n for n in args.loop_hosts if n == max(args.hosts) or args.no_unreachable]
        measure_loops(fleet, pids, largest, args, results, skipped)
        if not args.no_unreachable and time.monotonic() < fleet.deadline:
            found = unreachable_case(fleet, pids, max(args.hosts), max(args.forks), args.overlays)
        measure_loops(fleet, pids, [n for n in args.loop_hosts if n not in largest], args, results, skipped)
        if args.profile and time.monotonic() < fleet.deadline:
            count = max(args.hosts) - (0 if args.no_unreachable else 1)
            profiled = profile(fleet, {i: pids[i] for i in range(1, count + 1)}, count, max(args.forks), args.overlays)
    except (KeyboardInterrupt, Interrupted, SystemExit) as error:
        interrupted = str(error) or type(error).__name__
    finally:
        removed = cleanup(work, sshds)
        if args.keep_work:
            sys.stderr.write("work dir kept: %s\n" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)
        if args.verbose:
            sys.stderr.write("cleaned up: %d namespaces and links\n" % len(removed))
    _print_header(args, venv, load_before, built, skipped, interrupted)
    print()
    print_table(results)
    print()
    print_targets(results)
    if found:
        print()
        print_unreachable(found)
    if profiled:
        print()
        less = "" if args.no_unreachable else " less the killed host"
        print("profile_tasks over the fleet (largest N%s, forks %d):" % (less, max(args.forks)))
        print(profiled)
    if interrupted:
        sys.exit(1)


if __name__ == "__main__":
    main()
