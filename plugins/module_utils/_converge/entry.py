# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The life cycle of one overlay_mount task: declare, observe, plan, act, verify.

Declaring, observing and planning change nothing, so check mode stops after
them with an exact prediction. Acting carries out the planned steps in order
(:data:`STEPS`, and each persistence backend's own), under a lock on the
files the backends edit; every step returns its undo, and a failed step
rolls back what the earlier ones changed: fstab and the unit file come back
byte for byte, a re-layered overlay is mounted again as it was, created dirs
are removed while still empty. A mount is verified against mountinfo before
the task counts as done; in a batch (:func:`run_batch`) mounts are verified
in groups, one mountinfo read for many mounts, and an entry that meets an
unverified mount waits for its group's check (``_batch.Unverified``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import functools
import itertools
import os

from ansible_collections.overlayfs.mounts.plugins.module_utils._persist import registry as backends
from ansible_collections.overlayfs.mounts.plugins.module_utils._host import files
from ansible_collections.overlayfs.mounts.plugins.module_utils._host import system as host
from ansible_collections.overlayfs.mounts.plugins.module_utils._host import safe_paths as _safepath
from ansible_collections.overlayfs.mounts.plugins.module_utils._persist.backend import HostFacts, boot_extras
from ansible_collections.overlayfs.mounts.plugins.module_utils._persist.fstab_backend import planned_line
from ansible_collections.overlayfs.mounts.plugins.module_utils._converge.order import (
    Unverified,
    apply_order,
    merged_params,
    prune_order,
    prune_targets,
)
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.declaration import (
    Declaration,
    check_host,
    check_layout,
    check_workdir,
    dir_attributes,
)
from ansible_collections.overlayfs.mounts.plugins.module_utils._compare.drift import declared_drift
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError
from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.mountinfo import engine_layout, mount_containing, submounts
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.overlay_options import parse_options, resolve
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.paths import at_or_inside
from ansible_collections.overlayfs.mounts.plugins.module_utils._compare.live import (
    differences,
    make_plan,
    observe,
    public_live,
)
from ansible_collections.overlayfs.mounts.plugins.module_utils._host.upper_safety import VOLATILE_MARKER, check_upper
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.spec import INHERITED, entry_spec

WRITING = ("mounted", "present")


def _remembered(cache, key, compute):
    """``compute()``, kept in ``cache["realpaths"]`` under ``key`` until this run changes the host.

    A batch resolves the same paths when it checks its fstab lines, when
    each entry is declared and when its live mount is read. The answers are
    dropped before any entry acts, since a mount or a new dir can change
    them, and after a group's mounts are undone. A computation that raised
    is not kept, so it is made (and raises) again next time.
    """
    memo = cache.setdefault("realpaths", {})
    found = memo.get(key)
    if found is None:
        found = memo[key] = compute()
    return found


def _realpath(cache, path):
    """os.path.realpath (asked of the kernel), once per path until this run changes the host."""
    return _remembered(cache, path, lambda: host.realpath(path))


def _resolve_safely(cache, field, path):
    """_safepath.resolve_safely, once per path until this run changes the host.

    Every entry of a batch names the same fstab, unit dir and links dir, and
    often the same base layer.
    """
    return _remembered(cache, ("safe", path), lambda: _safepath.resolve_safely(field, path))


class _Task(object):
    """One task's declaration, host reads and plan, shared by the steps that carry it out."""

    def __init__(self, module, params, cache):
        self.module = module
        self.params = params
        self.cache = cache
        self.decl = self.extras = self.attrs = None
        self.seen = self.plan = self.result = self.facts = None
        self.backends = []
        self.touch = False
        self.step = None
        self.undo = []  # (kind, function) of the steps done: persist, mount or dirs
        self.unverified = False  # mounted in a batch, to be verified with its group (settle)
        self.written_later = []  # in a batch: (file, backend) whose edit the group writes (settle)
        self.verified = cache.get("verified_lines", ())

    @property
    def entries(self):
        if "entries" not in self.cache:
            self.cache["entries"] = host.read_mountinfo()
        return self.cache["entries"]

    def realpath(self, path):
        return _realpath(self.cache, path)

    @property
    def defaults(self):
        if "defaults" not in self.cache:
            self.cache["defaults"] = host.read_defaults()
        return self.cache["defaults"]


def run(module, params=None, provided=(), cache=None):
    """Carry out one overlay declaration and return its result dict.

    ``params`` are overlay_mount's parameters (``module.params`` by default);
    the batch module passes one declaration at a time, and in ``provided`` the
    mount points its earlier entries set up, which in check mode do not exist
    yet but may be this overlay's layers, and a ``cache`` dict that keeps the
    host reads (mountinfo, overlay defaults) between entries; it is emptied
    of mountinfo whenever an entry changed something.
    """
    task = _Task(module, module.params if params is None else params, {} if cache is None else cache)
    to_create = declare(task, provided)
    observe_host(task)
    plan(task, to_create)
    report(task)
    if task.touch and not module.check_mode:
        # What a killed run left; only files whose writer is gone, so no lock is needed.
        for backend in task.backends:
            backend.clean_stale()
    if module.check_mode or not task.plan["actions"]:
        return task.result
    entries = task.cache.pop("entries", None)  # this task changes the host: read mountinfo afresh next time
    task.cache.pop("realpaths", None)
    act(task)
    if task.unverified or task.written_later:
        _join_group(task, entries)
    return task.result


def _join_group(task, entries):
    """Leave the rest of the task (verify, write fstab) to its batch's group (:func:`settle`).

    Only a task whose steps all succeeded joins: a failed one has been rolled
    back, and its waiting edits are dropped with it.
    """
    decl = task.decl
    for location, backend in task.written_later:
        task.cache["write_together"].setdefault((type(backend), location), []).append((task, backend))
    if task.unverified:
        root = engine_layout(decl.path, {"lowerdir": decl.lowerdir, "upperdir": decl.upperdir,
                                         "workdir": decl.workdir})
        task.cache["unverified"].add(task, decl.layers,
                                     [p for p in (decl.path, decl.upperdir, decl.workdir, root) if p])
    else:
        task.cache["unverified"].add(task, [], [decl.path])
    for backend in task.backends:
        backend.release()  # the result is made; a group of 1,000 must not keep 1,000 fstab texts
    if entries is not None and not any(step["action"] == "unmount" for step in task.plan["actions"]):
        # Only the new mount is missing from that read; an entry that meets
        # it waits for its group's check, which reads mountinfo again.
        task.cache.setdefault("entries", entries)


# Declare ----------------------------------------------------------------

def declare(task, provided=()):
    """Check the declaration, alone and against the host; return the dirs to create."""
    p = task.params
    declared = Declaration.from_params(p)
    if host.path_kind(declared.path) == "dangling symlink":
        raise OverlayError(
            "path: '%s' is a symlink to nothing; the mount point must be a directory (or missing, "
            "to be created): remove the link or point it at a directory" % declared.path)
    _safepath.check_declaration(declared, [("fstab", p.get("fstab")), ("unit_dir", p.get("unit_dir")),
                                           ("links_dir", p.get("links_dir"))],
                                functools.partial(_resolve_safely, task.cache))
    decl = declared.canonical(task.realpath)
    unverified = task.cache.get("unverified")
    if unverified and unverified.touches(decl.layers, [p for p in (decl.path, decl.upperdir, decl.workdir) if p]):
        # This entry meets an unverified mount: finish its group before reading the host.
        settle(task.cache)
        decl = declared.canonical(task.realpath)  # a mount the group undid may have changed a path
    task.decl = decl
    task.extras = boot_extras(p["boot"], p["boot_options"])
    if decl.state == "mounted" and p.get("method") == "symlinks" and p.get("links_dir"):
        _safepath.check_links_root(p["links_dir"])
    to_create = _check_on_host(task, provided) if decl.state in WRITING else []
    # Checked before check mode returns, so check mode fails on them too.
    task.attrs = dir_attributes(p["mode"], p["owner"], p["group"])
    return to_create


def _check_on_host(task, provided):
    decl, module = task.decl, task.module
    check_layout(decl)
    host.check_kernel_support(decl)
    kinds = dict((path, host.path_kind(path)) for path in decl.all_paths())
    if decl.datadir and resolve(parse_options(decl.options), task.defaults, decl.writable)["metacopy"] != "on":
        raise OverlayError(
            "datadir: data-only lower layers need metacopy=on (the kernel refuses them "
            "otherwise); add metacopy=on to options")
    for layer in decl.lowerdir:
        if kinds[layer] == "missing" and any(at_or_inside(layer, point) for point in provided):
            kinds[layer] = "dir"  # mounted by an earlier entry of the batch (in check mode: not yet)
    upper_mount = work_mount = None
    if decl.writable:
        upper_mount = mount_containing(task.entries, decl.upperdir)
        work_mount = mount_containing(task.entries, decl.workdir)
    to_create = check_host(decl, kinds, upper_mount, work_mount, task.params["create_dirs"],
                           lowers_needed=decl.state == "mounted")
    for layer in decl.lowerdir:
        if kinds[layer] == "missing":
            module.warn("lowerdir %s does not exist yet; it must exist before %s is mounted at boot"
                        % (layer, decl.path))
    return to_create


# Observe ----------------------------------------------------------------

def host_facts(module):
    """What rendering persisted forms depends on, read once per run (the reads are cached)."""
    return HostFacts(host.lowerdir_plus(), files.mount_fsconfig(module), files.systemd_booted())


def observe_host(task):
    """Read what is mounted at the mount point and what every backend persists for it."""
    p, decl = task.params, task.decl
    task.facts = host_facts(task.module)
    task.touch = decl.state == "absent" or (decl.state in WRITING and p["persist"] != "none")
    notes = []
    for backend in backends.for_task(p, decl, task.extras, task.facts):
        backend.read(task.touch)
        if task.touch:
            backend.plan(decl.state in WRITING and p["persist"] == backend.name, notes)
        task.backends.append(backend)
    for note in notes:
        task.module.warn("%s: %s" % (decl.path, note))
    for backend in task.backends:
        for warning in backend.plan_warnings(task.module.check_mode):
            task.module.warn(warning)
    task.seen = observe(decl.path, task.entries, task.defaults, p["links_dir"],
                        exists=os.path.exists, realpath=task.realpath)


# Plan -------------------------------------------------------------------

def plan(task, to_create):
    """The steps the declared state needs, in order (see ``_plan.make_plan``)."""
    persist = [step for backend in task.backends for step in backend.actions()]
    if persist and task.facts.booted:
        persist.append({"action": "daemon_reload", "path": task.params["unit_dir"]})
    via = next((backend.name for backend in task.backends if backend.mounts_itself), None)
    task.plan = make_plan(task.decl, task.seen, task.defaults, to_create, persist,
                          upper_check=lambda: _upper_check(task), via=via)


def _upper_check(task):
    """Refuse an upper or work dir that is unsafe to mount; the steps that make it safe."""
    decl = task.decl
    effective = resolve(parse_options(decl.options), task.defaults, decl.writable)
    if decl.writable:
        listing = host.workdir_listing(decl.workdir)
        if listing is not None:
            check_workdir(decl.workdir, listing)
    facts = host.upper_facts(decl, task.entries, task.seen.live, userxattr=effective["userxattr"])
    return check_upper(decl, facts, effective["index"] == "on", task.params["clear_volatile"])


def _persisted(task, after):
    out = {}
    for backend in task.backends:
        out.update(backend.persisted(after))
    return out


def report(task):
    """The result of the task as planned; warn where a real run would fail or skip."""
    module, decl, p, plan_, live = task.module, task.decl, task.params, task.plan, task.seen.live
    before = _persisted(task, after=False)
    task.result = {
        "changed": plan_["changed"],
        "mount": decl.as_result(),
        "live": public_live(live),
        "persisted": _persisted(task, after=True) if any(b.changed for b in task.backends) else before,
        "actions": plan_["actions"],
        "drift": declared_drift(decl, p["persist"], task.extras, p["boot"], live, before, task.defaults),
        "mount_method": None,
    }
    if module._diff:
        mount_diff = dict(plan_["diff"], before_header="%s (live mount)" % decl.path,
                          after_header="%s (declared)" % decl.path)
        task.result["diff"] = [mount_diff] + [d for b in task.backends for d in b.diffs()]
    unmounting = decl.state in ("unmounted", "absent")
    if task.seen.foreign is not None and unmounting:
        module.warn("%s is a mount point of %s, not an overlay: left alone" % (decl.path, task.seen.foreign))
    if plan_["relayer"]:
        _refuse_if_busy(task)
    elif module.check_mode and unmounting and live is not None:
        _holders, _subs, text = _users(decl.path, task.entries)
        if text:
            module.warn("%s is in use (%s); a real run would fail to unmount it" % (decl.path, text))


# Act --------------------------------------------------------------------

@contextlib.contextmanager
def _locked(task):
    """Hold the locks on the dirs of the files the task's backends edit."""
    locks = sorted(set(filter(None, (b.lock_dir() for b in task.backends)))) if task.touch else []
    with contextlib.ExitStack() as stack:
        for directory in locks:
            stack.enter_context(files.DirectoryLock(directory))
        yield


def act(task):
    """Carry out the planned steps; on a failure undo the earlier ones and raise."""
    steps = dict(STEPS)
    for backend in task.backends:
        steps.update((name, _persist_step(function)) for name, function in backend.steps.items())
    with _locked(task):  # from reading the files again to the mount that follows
        try:
            for step in task.plan["actions"]:
                task.step = step["action"]
                undo = steps[step["action"]](task, step)
                if undo is not None:
                    task.undo.append(undo)
        except Exception as error:  # whatever a step raised, undo the earlier ones
            raise _failure(task, error)
    for backend in task.backends:
        backend.done(task.module, task.decl.state)
    task.result["persisted"] = _persisted(task, after=True)
    if task.decl.state in ("unmounted", "absent"):
        task.result["live"] = None


def _persist_step(function):
    """A backend's step in the table: its undo is a persistence undo."""
    def step(task, _step):
        undo = function(task)
        return ("persist", undo) if undo is not None else None
    return step


def _create_dir(task, step):
    fields = {task.decl.path: "path", task.decl.upperdir: "upperdir", task.decl.workdir: "workdir"}
    mode, uid, gid = task.attrs
    created = host.make_dirs(step["path"], mode, uid, gid, fields.get(step["path"], "path"))
    return ("dirs", lambda: host.remove_empty_dirs(created))


def _daemon_reload(task, _step):
    if task.written_later and not any(kind == "persist" for kind, _undo in task.undo):
        return  # nothing written yet: the group's write reloads after it (write_together)
    files.systemctl(task.module, "daemon-reload")


def _unmount(task, step):
    """Unmount the top overlay; through its backend's unit when that has it active."""
    if not any(backend.stop(task.module) for backend in task.backends):
        host.unmount(task.module, step["path"])
    live = task.seen.live
    _clear_own_volatile_marker(live)
    if task.decl.state == "mounted":  # a re-layering: put the old overlay back on failure
        return ("mount", lambda: _restore_mount(live, task.decl.path))
    return None


def _clear_volatile(_task, step):
    host.clear_volatile_marker(step["path"])


def _mount(task, step):
    """Mount (or start the unit that mounts), then verify what the kernel mounted.

    In a batch a direct mount joins the group that :func:`settle` verifies.
    """
    unverified = task.cache.get("unverified")
    if step.get("via"):
        next(b for b in task.backends if b.name == step["via"]).start(task.module)
        task.result["mount_method"] = step["via"]
    else:
        task.result["mount_method"] = host.mount(task.decl, task.params["method"], task.params["links_dir"])
        if unverified is not None:
            task.unverified = True  # verified with its group (settle)
            return
    live, entries = verify(task.decl, task.defaults, task.params["links_dir"])
    task.result["live"] = public_live(live)
    task.cache["entries"] = entries  # read after this mount: the host as the next entry finds it


#: What carries out each action of a plan, apart from the backends' own steps.
#: Each takes the task and the step, and returns ``(kind, undo)`` or None.
STEPS = {
    "create_dir": _create_dir,
    "daemon_reload": _daemon_reload,
    "unmount": _unmount,
    "clear_volatile": _clear_volatile,
    "mount": _mount,
}


def _clear_own_volatile_marker(live):
    """After our own clean unmount of a volatile overlay its marker is stale: remove it."""
    if live is not None and live.effective.get("volatile") and live["workdir"]:
        marker = os.path.join(live["workdir"], *VOLATILE_MARKER)
        if os.path.isdir(marker):
            host.clear_volatile_marker(marker)


def _users(path, entries):
    """``(holders, submounts, text)`` of what keeps the mount at ``path`` busy."""
    holders = host.find_holders(path)
    subs = [e.mount_point for e in submounts(entries, path)]
    parts = []
    if holders:
        parts.append("processes " + host.describe_holders(holders))
    if subs:
        parts.append("submounts " + ", ".join(subs))
    return holders, subs, "; ".join(parts)


def _refuse_if_busy(task):
    decl, plan_ = task.decl, task.plan
    holders, subs, text = _users(decl.path, task.entries)
    if not text:
        return
    message = (
        "%s must be unmounted and mounted again to apply %s (a remount cannot change "
        "layers, upper or work), but it is in use: %s. Stop those users, then run again"
        % (decl.path, ", ".join(d["field"] for d in plan_["differences"]), text))
    if task.module.check_mode:
        task.module.warn(message)
        return
    raise OverlayError(message, holders=holders, submounts=subs,
                       drift=plan_["differences"], live=public_live(task.seen.live))


# Verify -----------------------------------------------------------------

def verify(decl, defaults, links_root=None, entries=None):
    """Read mountinfo again; unmount and fail unless the kernel mounted exactly ``decl``.

    Returns the live overlay and the mountinfo entries read (``entries``,
    when a read made after the mount is given).
    """
    if entries is None:
        entries = host.read_mountinfo()
    live, _count, foreign = observe(decl.path, entries, defaults, links_root,
                                    exists=os.path.exists, realpath=host.realpath)
    if live is None:
        raise OverlayError(
            "the mount of %s reported success but mountinfo shows %s there"
            % (decl.path, "a %s filesystem" % foreign if foreign else "nothing mounted"))
    diffs = differences(decl, live, defaults)
    if diffs:
        detail = "; ".join("%s: declared %r, mounted %r" % (d["field"], d["declared"], d["live"]) for d in diffs)
        undone = _unmount_again(decl.path, "it")
        raise OverlayError(
            "the kernel mounted something other than what was declared at %s (%s); %s"
            % (decl.path, detail, undone), drift=diffs, live=public_live(live))
    return live, entries


def settle(cache):
    """Finish a batch's group: verify its mounts with one mountinfo read, write its files once.

    Each mount is checked exactly as :func:`verify` checks a single one; one
    that the kernel mounted otherwise is unmounted and its task rolled back
    (dirs removed while empty, a re-layered overlay put back), and its fstab
    edit is dropped. Then each file's remaining edits are made in one write
    (``write_together`` of the backend); a task whose edit fails there has its
    overlay unmounted again and is rolled back too. A failed task's result
    becomes a failed one.
    """
    unverified = cache.get("unverified")
    if not unverified:
        return
    tasks = unverified.take()
    intact = True
    mounted = [task for task in tasks if task.unverified]
    entries = host.read_mountinfo() if mounted else None
    for task in mounted:
        task.unverified = False
        try:
            live, _entries = verify(task.decl, task.defaults, task.params["links_dir"], entries)
        except OverlayError as error:
            intact = False
            _fail_in_group(task, "mount", error)
            continue
        task.result["live"] = public_live(live)
        task.undo.append(("mount", functools.partial(_unmount_again, task.decl.path)))
    writes, failed = cache["write_together"], []
    for (backend, location), members in sorted(writes.items(), key=lambda item: item[0][1]):
        live_members = [(task, b) for task, b in members if not task.result.get("failed")]
        if live_members:
            failed += backend.write_together(tasks[0].module, location, live_members)
    writes.clear()
    for task, error in failed:
        intact = False
        _fail_in_group(task, "write_fstab", error)
    if intact and entries is not None:
        cache["entries"] = entries
    elif not intact:
        cache.pop("entries", None)
        cache.pop("realpaths", None)


def _fail_in_group(task, step, error):
    """Roll back a task of a settled group and turn its result into a failed one."""
    task.step = step
    with _locked(task):
        failure = _failure(task, error)
    message = failure.message
    if task.written_later:
        files_named = ", ".join(location for location, _backend in task.written_later)
        message += "; %s %s not changed" % (files_named, "was" if len(task.written_later) == 1 else "were")
    keep = dict((key, task.result[key]) for key in ("path",) if key in task.result)
    task.result.clear()
    task.result.update(failure.details, failed=True, changed=False, msg=message, **keep)


def _unmount_again(path, name=None):
    """Unmount a mount this task made; what happened, in words (``name``: how to call it)."""
    name = name or path
    try:
        host.umount2(path)
    except OSError as error:
        return "unmounting %s again failed (%s): unmount it by hand" % (name, error)
    return "%s was unmounted again" % name


# Roll back --------------------------------------------------------------

def _failure(task, error):
    """The error to raise for a failed step, with what rolling back did."""
    kind = task.step
    if isinstance(error, OverlayError):
        message, details = error.message, error.details
        if kind != "mount":
            message = "step %s failed: %s" % (kind, message)
    else:
        message, details = "step %s failed: %s" % (kind, error), {}
    return OverlayError(message + _rollback(task), **details)


def _rollback(task):
    """Undo the steps that ran before a failure: persistence, then the mount, then dirs."""
    notes = []
    undone = dict((kind, [undo for k, undo in reversed(task.undo) if k == kind]) for kind in ("persist", "mount", "dirs"))
    for undo in undone["persist"]:
        try:
            undo()
        except Exception as error:  # pylint: disable=broad-except
            notes.append("undoing a persistence step failed: %s" % getattr(error, "message", error))
    if undone["persist"] and not notes:
        notes.append("fstab and unit files were restored")
        if task.facts.booted:
            try:
                files.systemctl(task.module, "daemon-reload")
            except OverlayError as error:
                notes.append(error.message)
    notes += [undo() for undo in undone["mount"]]
    for undo in undone["dirs"]:
        undo()
    return ("; " + "; ".join(notes)) if notes else ""


def _restore_mount(old, path):
    """Try to put back the overlay that was unmounted for a re-layering."""
    previous = Declaration(path, old["lowerdir"], old["upperdir"], old["workdir"], old["options"], old.get("datadir"))
    try:
        host.mount(previous)
    except OverlayError as error:
        return "putting back the previous overlay also failed: %s" % error.message
    return "the previous overlay was mounted again"


# A whole list (overlay_mounts) ----------------------------------------------

def run_batch(module):
    """Carry out every entry of overlay_mounts, then prune; return ``(result, failed results)``.

    Entries run in ``_batch.apply_order``, each exactly as one overlay_mount
    task (a failure becomes that entry's failed result), sharing the host
    reads; every planned fstab line is checked with one findmnt first.
    """
    p = module.params
    defaults = dict((name, p[name]) for name in INHERITED)
    entries = [merged_params(entry, defaults) for entry in p["mounts"]]
    order = apply_order(entries)
    results, provided, cache = [None] * len(entries), [], {}
    if not module.check_mode:
        facts = host_facts(module)
        resolve = functools.partial(_realpath, cache)
        cache["verified_lines"] = files.preverify_lines(
            module, dict(filter(None, (planned_line(entry, facts, resolve) for entry in entries))))
        cache["unverified"], cache["write_together"] = Unverified(), {}
    try:
        for index in order:
            results[index] = _run_entry(module, entries[index], provided, cache)
            if entries[index]["state"] in WRITING:
                provided.append(os.path.realpath(entries[index]["path"]))
    finally:
        settle(cache)  # every mount of the batch is verified, whatever happened meanwhile
    pruned = _prune(module, [e["path"] for e in entries], defaults, entries) if p["prune"] else []
    everything = results + pruned
    out = {
        "changed": any(r.get("changed") for r in everything),
        "overlays": results,
        "pruned": pruned,
        "order": [entries[i]["path"] for i in order] + [r["path"] for r in pruned],
        "drift": [dict(row, path=r["path"]) for r in everything for row in r.get("drift", [])],
    }
    diffs = [d for r in everything for d in r.pop("diff", [])]
    if module._diff:
        out["diff"] = diffs
    return out, [r for r in everything if r.get("failed")]


def _run_entry(module, params, provided=(), cache=None):
    """overlay_mount's result for one entry; a failure becomes a failed result."""
    try:
        result = run(module, params, provided, cache)
    except OverlayError as error:
        result = dict(error.details, failed=True, changed=False, msg=error.message)
    result["path"] = params["path"]
    return result


def _prune(module, declared, defaults, entries):
    """Remove the managed overlays that left the list, from every place the task names."""
    locations = dict((b.name, sorted(set([defaults[b.location]] + [e[b.location] for e in entries])))
                     for b in backends.BACKENDS)
    targets = prune_targets(declared, backends.scan(locations))
    pruned = []
    for path in prune_order(targets):
        places = [[(b.location, where) for where in targets[path].get(b.name) or [defaults[b.location]]]
                  for b in backends.BACKENDS]
        for combination in itertools.product(*places):
            entry = dict((key, spec.get("default")) for key, spec in entry_spec().items())
            entry.update(path=path, state="absent")
            pruned.append(_run_entry(module, merged_params(entry, dict(defaults, **dict(combination))), cache={}))
    return pruned
