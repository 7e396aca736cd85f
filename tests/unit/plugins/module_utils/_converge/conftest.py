# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A fake host and a fake persistence backend for the converge's unit tests.

The converge makes every host read and change through ``_host.port.Host``
and every persistence change through a ``_persist.backend.Backend``; here
both are in memory, as kubernetes.core tests its runner with an injected
service. Both write to one **journal** (a list of short strings such as
``"mount /srv/m"`` or ``"undo write_fake /srv/m"``), so a test asserts what
was done, and in which order, by comparing lists.

- :class:`FakeHost` keeps the directories that exist (``kinds``), what is
  mounted (a stack per mount point, read back as real mountinfo lines, so
  the converge parses ``MountEntry`` objects as on a real host), symlinks,
  the processes holding a mount, and the failures it was told to make
  (:meth:`FakeHost.fail`) or the wrong overlay it was told to mount
  (:meth:`FakeHost.mount_instead`).
- :class:`FakeBackend` (``persist: fake``) keeps what it persists in
  ``store``; each test gets its own subclass (the ``backend`` fixture) whose
  step ``write_fake`` returns an undo that journals ``undo write_fake``.
"""

import contextlib
import copy
import posixpath

import pytest

from ansible_collections.overlayfs.mounts.plugins.module_utils._converge.entry import converge
from ansible_collections.overlayfs.mounts.plugins.module_utils._converge.session import TaskSession
from ansible_collections.overlayfs.mounts.plugins.module_utils._formats import mountinfo
from ansible_collections.overlayfs.mounts.plugins.module_utils._host.port import Host
from ansible_collections.overlayfs.mounts.plugins.module_utils._model import mount_flags
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.overlay_options import defaults_from_parameters
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.paths import at_or_inside
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.spec import BATCH_OPTIONS, INHERITED, MOUNT_SPEC, entry_spec
from ansible_collections.overlayfs.mounts.plugins.module_utils._persist import registry
from ansible_collections.overlayfs.mounts.plugins.module_utils._persist.backend import Backend

#: The first word of every journal entry that changes the host or what is persisted.
CHANGES = ("make_dirs", "remove_empty_dirs", "mount", "remount_flags", "unmount", "umount2", "clear_volatile_marker",
           "systemctl", "write_fake", "undo", "write_together")

ROOT_LINE = "22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw"
OVERLAY_LINE = "%d 22 0:%d / %s %s - overlay overlay %s,%s"
OTHER_LINE = "%d 22 0:%d / %s rw,relatime - %s %s rw"


class FakeLock:
    """The host lock, as ``Host.lock`` returns it acquired: journals ``lock``/``release``."""

    def __init__(self, journal, shared):
        self.journal = journal
        self.mode = "shared" if shared else "exclusive"
        self.released = 0
        journal.append("lock " + self.mode)

    def release(self):
        self.released += 1
        self.journal.append("release " + self.mode)


class FakeHost(Host):
    """Every ``Host`` read and change, in memory (see the module docstring)."""

    def __init__(self, dirs=(), booted=False, symlinks=None):
        self.journal = []
        self.kinds = {"/": "dir"}
        for directory in dirs:
            self.add_dir(directory)
        self.symlinks = dict(symlinks or {})
        self.booted = booted
        self.holders = {}  # mount point: [{pid, command, uses}], as scan_holders gives them
        self.elsewhere = {}  # mount point: [copies of its overlay in other namespaces]
        self.shared = {}  # mount point: [{..., dir}] other namespaces' overlays on its upper or work dir
        self.locks = []
        self.mounted = []  # [(mount id, mount point, mountinfo line)], oldest first
        self._next_id = 100
        self._failing = []  # [op, arg or None, times left]
        self._instead = {}  # mount point: fields to mount instead of the declared ones
        self.upper = {"upper_fstype": "tmpfs", "origin": None}  # what upper_facts finds

    # Setting the host up (not journaled) --------------------------------

    def add_dir(self, path, kind="dir"):
        for parent in path_and_parents(path)[1:]:
            self.kinds.setdefault(parent, "dir")
        self.kinds[path] = kind

    def mount_overlay(self, path, lowerdir, upperdir=None, workdir=None, options=(), flags=(), superblock="rw"):
        self.add_dir(path)
        supers = ["lowerdir=" + ":".join(lowerdir)]
        if upperdir is not None:
            supers += ["upperdir=" + upperdir, "workdir=" + workdir]
        mount_id = self._new_id()
        line = OVERLAY_LINE % (mount_id, mount_id, path, per_mount_options(flags), superblock,
                               ",".join(supers + list(options)))
        self.mounted.append((mount_id, path, line))

    def mount_other(self, path, fstype="tmpfs"):
        self.add_dir(path)
        mount_id = self._new_id()
        self.mounted.append((mount_id, path, OTHER_LINE % (mount_id, mount_id, path, fstype, fstype)))

    def fail(self, op, arg=None, times=1):
        """Make the next ``times`` calls of ``op`` (on ``arg``, when given) fail."""
        self._failing.append([op, arg, times])

    def mount_instead(self, path, **fields):
        """Make the next mount at ``path`` mount these fields instead of the declared ones."""
        self._instead[path] = fields

    # What a test looks at ----------------------------------------------

    def changes(self):
        return [entry for entry in self.journal if entry.split(" ", 1)[0] in CHANGES]

    def count(self, word):
        return sum(1 for entry in self.journal if entry.split(" ", 1)[0] == word)

    def stack(self, path):
        """The mountinfo lines stacked at ``path``, oldest first."""
        return [line for _id, point, line in self.mounted if point == path]

    def live(self, path):
        """``{lowerdir, upperdir, workdir}`` of the top overlay at ``path`` (None: none)."""
        entries = mountinfo.mounts_at(self._entries(), path)
        if not entries or not entries[-1].is_overlay:
            return None
        config = mountinfo.overlay_config(entries[-1])
        return {key: config[key] for key in ("lowerdir", "upperdir", "workdir")}

    # Reads -------------------------------------------------------------

    def read_mountinfo(self):
        self.journal.append("read_mountinfo")
        return self._entries()

    def read_defaults(self):
        self.journal.append("read_defaults")
        return defaults_from_parameters({})

    def link_times(self):
        return None  # live paths are told from realpath alone (symlinked: unknown)

    def remove_links_pointer(self, target):
        self.journal.append("remove_links_pointer " + target)

    def realpath(self, path):
        for _hop in range(40):
            link = next((link for link in self.symlinks if at_or_inside(path, link)), None)
            if link is None:
                return path
            path = self.symlinks[link] + path[len(link):]
        return path

    def readlink(self, path):
        return self.symlinks.get(path)

    def path_kind(self, path):
        return self.kinds.get(self.realpath(path), "missing")

    def exists(self, path):
        return self.realpath(path) in self.kinds

    def isdir(self, path):
        return self.path_kind(path) == "dir"

    def lowerdir_plus(self):
        return True

    def check_kernel_support(self, decl):
        return None

    def workdir_listing(self, workdir):
        return None

    def upper_facts(self, decl, entries, live, userxattr=False):
        return dict(self.upper)

    def resolve_safely(self, field, path):
        return self.realpath(path)

    def check_declaration(self, decl, extra=(), resolve=None):
        return None

    def check_links_root(self, links_root):
        return links_root

    def systemd_booted(self):
        return self.booted

    def mount_fsconfig(self, module):
        return None

    def systemd_version(self, module):
        return None

    def clean_stale_temps(self, path):
        self.journal.append("clean_stale_temps %s" % path)
        return []

    def links_pointer_missing(self, links_root, target):
        return None

    def read_view(self):
        self.journal.append("read_view")
        return "view"

    def overlay_dirs(self, view):
        return {}

    def scan_holders(self, path, entries, live, mine=None, view=None, others=None):
        self.journal.append("scan_holders %s" % path)
        shared = [dict(h, dir=d) for h in self.shared.get(path, ()) for d in (mine or {}) if d == h["dir"]]
        return {"processes": list(self.holders.get(path, ())) if live is not None else [],
                "elsewhere": list(self.elsewhere.get(path, ())) if live is not None else [], "shared": shared}

    def identity(self, path):
        return (1, hash(path))

    def lock(self, shared):
        found = FakeLock(self.journal, shared)
        self.locks.append(found)
        return found

    def directory_lock(self, directory):
        return contextlib.nullcontext()

    # Changes -----------------------------------------------------------

    def make_dirs(self, path, mode=None, uid=None, gid=None, field="path"):
        self._check("make_dirs", path)
        created = [p for p in reversed(path_and_parents(path)) if p not in self.kinds]
        for directory in created:
            self.kinds[directory] = "dir"
        self.journal.append("make_dirs " + path)
        return created

    def remove_empty_dirs(self, created):
        self._check("remove_empty_dirs", ",".join(created))
        for directory in reversed(created):
            if not any(p != directory and at_or_inside(p, directory) for p in self.kinds):
                self.kinds.pop(directory, None)
        self.journal.append("remove_empty_dirs " + ",".join(created))

    def mount(self, decl, method="auto", links_root=None):
        self._check("mount", decl.path)
        if self.path_kind(decl.path) != "dir":
            raise OverlayError("mounting %s failed: no such directory" % decl.path)
        fields = dict(lowerdir=decl.lowerdir, upperdir=decl.upperdir, workdir=decl.workdir, options=decl.options,
                      flags=decl.flags)
        fields.update(self._instead.pop(decl.path, {}))
        self.mount_overlay(decl.path, **fields)
        self.journal.append("mount " + decl.path)
        return "fsconfig"

    def remount_flags(self, path, flags, superblock=None):
        """Set the flags of the top mount at ``path`` in place (its mount ID stays)."""
        self._check("remount_flags", path)
        index = max(i for i, (_id, point, _line) in enumerate(self.mounted) if point == path)
        mount_id, point, line = self.mounted[index]
        fields = line.split(" ")
        fields[5] = per_mount_options(flags)
        if superblock:
            sep = fields.index("-")
            fields[sep + 3] = superblock + fields[sep + 3][2:]
        self.mounted[index] = (mount_id, point, " ".join(fields))
        self.journal.append("remount_flags %s %s%s" % (path, ",".join(flags) or "rw", " " + superblock if superblock else ""))

    def unmount(self, module, path):
        self._check("unmount", path)
        self._pop(path)
        self.journal.append("unmount " + path)

    def umount2(self, path):
        self._check("umount2", path, OSError)
        self._pop(path)
        self.journal.append("umount2 " + path)

    def clear_volatile_marker(self, path):
        self._check("clear_volatile_marker", path)
        self.journal.append("clear_volatile_marker " + path)

    def systemctl(self, module, *args):
        self._check("systemctl", " ".join(args))
        self.journal.append("systemctl " + " ".join(args))
        return ""

    # Inside ------------------------------------------------------------

    def _new_id(self):
        self._next_id += 1
        return self._next_id

    def _entries(self):
        return mountinfo.parse("\n".join([ROOT_LINE] + [line for _id, _point, line in self.mounted]))

    def _pop(self, path):
        for index in range(len(self.mounted) - 1, -1, -1):
            if self.mounted[index][1] == path:
                del self.mounted[index]
                return
        raise OverlayError("unmounting %s failed: not mounted" % path)

    def _check(self, op, arg, error=OverlayError):
        for failing in self._failing:
            if failing[0] == op and failing[1] in (None, arg) and failing[2] > 0:
                failing[2] -= 1
                self.journal.append("%s %s FAILED" % (op, arg))
                raise error("%s %s failed (fake)" % (op, arg))


def per_mount_options(flags):
    """Mountinfo's field 6 for canonical per-mount flags, as the kernel shows it."""
    state = mount_flags.state_of(flags)
    shown = [state["ro"]] + [state[name] for name in ("suid", "dev", "exec") if state[name].startswith("no")]
    shown += [flag for flag in (state["atime"], state["diratime"]) if flag in ("noatime", "nodiratime")]
    return ",".join(shown + (["relatime"] if state["atime"] == "relatime" else []))


def path_and_parents(path):
    """``path`` and its parents up to ``/``."""
    found = [path]
    while path != "/":
        path = posixpath.dirname(path)
        found.append(path)
    return found


class FakeBackend(Backend):
    """``persist: fake``: what is persisted lives in ``store``; each test makes its own subclass.

    ``store`` maps ``(location, mount point)`` to the persisted config;
    ``journal`` is the host's; ``failing`` maps ``write_fake``,
    ``undo write_fake`` or ``write_together`` to how many more times it fails.
    """

    name = "fake"
    location = "fstab"
    many = False
    batched = False
    batched_step = "write_fake"
    journal = None
    store = None
    failing = None

    @classmethod
    def configs_in(cls, sources, readlink=None):
        raise NotImplementedError("the fake backend keeps configs, not texts")

    @classmethod
    def scan(cls, locations, readlink=None):
        found = {}
        for (where, path), config in sorted(cls.store.items()):
            if where in locations:
                found.setdefault(path, []).append(config)
        return found

    @classmethod
    def boot_drift(cls, conf, persisted, extras, boot):
        return []

    @classmethod
    def persist_now(cls, params):
        """Persist ``params``'s overlay as a run would have (set-up, not journaled)."""
        backend = cls(registry.declare(params, (cls,)), None)
        cls.store[(backend.where, backend.decl.path)] = backend.wanted()

    @classmethod
    def stored(cls, path, where="/etc/fstab"):
        return cls.store.get((where, path))

    @classmethod
    def _should_fail(cls, step, path):
        if cls.failing.get(step, 0) > 0:
            cls.failing[step] -= 1
            cls.journal.append("%s %s FAILED" % (step, path))
            return True
        return False

    def __init__(self, decl, facts, realpath=None):
        super().__init__(decl, facts, realpath)
        self.where = decl.fstab
        self.before = self.after = None

    def wanted(self):
        return dict(self.decl.config(), boot_options=list(self.extras), managed=True)

    def read(self, touch):
        self.before = self.after = self.store.get((self.where, self.decl.path))

    def plan(self, keep):
        self.keep = keep
        self.after = self.wanted() if keep else None
        return []

    @property
    def changed(self):
        return self.after != self.before

    def actions(self):
        return [{"action": "write_fake", "path": self.where}] if self.changed else []

    def persisted(self, after=True):
        return {self.name: copy.deepcopy(self.after if after else self.before)}

    @property
    def steps(self):
        return {"write_fake": self._write}

    def lock_dir(self):
        return posixpath.dirname(self.where)

    def _put(self, config):
        key = (self.where, self.decl.path)
        previous = self.store.get(key)
        if config is None:
            self.store.pop(key, None)
        else:
            self.store[key] = config
        return previous

    def _write(self, ctx):
        if self._should_fail("write_fake", self.decl.path):
            raise OverlayError("writing %s failed (fake)" % self.where)
        if ctx.defer(self.where, self):
            return None
        previous = self._put(self.after)
        self.journal.append("write_fake " + self.decl.path)

        def undo():
            if self._should_fail("undo write_fake", self.decl.path):
                raise OverlayError("restoring %s failed (fake)" % self.where)
            self.journal.append("undo write_fake " + self.decl.path)
            self._put(previous)
        return undo

    @classmethod
    def write_together(cls, module, location, members):
        cls.journal.append("write_together %s: %s" % (location, " ".join(b.decl.path for _e, b in members)))
        if cls._should_fail("write_together", location):
            error = OverlayError("writing %s failed (fake)" % location)
            return [(entry, error) for entry, _backend in members]
        for _entry, backend in members:
            backend._put(backend.after)
        return []


# Parameters -------------------------------------------------------------

def _overlay_params(path, lowerdir=None, upperdir=None, workdir=None, **given):
    """An overlay_mount task's params (MOUNT_SPEC defaults), ``persist: fake``."""
    params = {name: copy.deepcopy(spec.get("default")) for name, spec in MOUNT_SPEC.items()}
    params.update(path=path, lowerdir=lowerdir, upperdir=upperdir, workdir=workdir, persist="fake")
    params.update(given)
    return params


def _batch_params(entries, **given):
    """overlay_mounts' params: ``entries`` (dicts of the keys they set) and the task's settings."""
    params = {name: copy.deepcopy(MOUNT_SPEC[name].get("default")) for name in INHERITED}
    params.update({name: copy.deepcopy(spec.get("default")) for name, spec in BATCH_OPTIONS.items()})
    params["persist"] = "fake"
    defaults = {name: copy.deepcopy(spec.get("default")) for name, spec in entry_spec().items()}
    params["mounts"] = [dict(defaults, **entry) for entry in entries]
    params.update(given)
    return params


# Fixtures (the test files import nothing from here: two conftest modules share one name) --

@pytest.fixture
def host():
    """An empty FakeHost (``/`` only); set ``host.booted``, ``host.symlinks``, ``host.holders`` as needed."""
    return FakeHost()


@pytest.fixture
def backend(host):
    """A fresh FakeBackend subclass journaling into ``host``'s journal."""
    return type("FakeBackend", (FakeBackend,), {"journal": host.journal, "store": {}, "failing": {}})


@pytest.fixture
def overlay_params():
    """``overlay_params(path, lowerdir, upperdir, workdir, **more)``: an overlay_mount task's params."""
    return _overlay_params


@pytest.fixture
def batch_params():
    """``batch_params([entry dicts], **more)``: overlay_mounts' params."""
    return _batch_params


@pytest.fixture
def make_module(ansible_module):
    """``make_module(check_mode=False, diff=False, params=None)``: a real AnsibleModule.

    Its warnings are kept in ``module.warnings`` instead of Ansible's global list.
    """
    with contextlib.ExitStack() as stack:
        def make(check_mode=False, diff=False, params=None):
            args = {"_ansible_check_mode": check_mode, "_ansible_diff": diff}
            module = stack.enter_context(ansible_module(args, argument_spec={}, supports_check_mode=True))
            module.warnings = []
            module.warn = module.warnings.append
            if params is not None:
                module.params = params
            return module
        yield make


@pytest.fixture
def run_task(host, backend, make_module):
    """``run_task(params, check_mode=False)``: one overlay_mount task on the fake host; its result.

    The module of the last run is ``run_task.module`` (for its warnings).
    """
    def run(params, check_mode=False, diff=False):
        run.module = make_module(check_mode=check_mode, diff=diff)
        with TaskSession(run.module, host, (backend,)) as session:
            return converge(session, params)
    return run
