# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The life cycle of one declared overlay: declare, observe, plan, act, verify.

:func:`converge` is the whole of it, for an ``overlay_mount`` task and for
each entry of ``overlay_mounts``:

1. **declare** (pure): ``_persist.registry.declare`` checks what the
   parameters alone show and makes the whole declaration one value;
2. **observe** (:func:`observe`, reads only): the canonical paths, what is at
   each of them, the live overlay, what every backend persists, and, when
   the overlay will be mounted or unmounted, the upper dir's state and who
   uses the mount. Refusals that depend on what was read are raised here;
3. **plan** (:func:`plan`, pure): the backends' plans and ``plan.make_plan``
   give the ordered actions and the result as planned. Check mode returns it;
4. **act** (``steps.act``): each action runs as a step that returns its undo;
   a failed step undoes the earlier ones;
5. **verify** (``steps.verify``): mountinfo must show exactly the declared
   overlay, at once (a task) or with its group (a batch, ``batch.settle``).

Every host read and change goes through the session (``session.Session``),
which holds the host lock from the first read to the last write.
"""

import dataclasses
from typing import Any, Dict, List, Optional, Sequence

from ansible_collections.overlayfs.mounts.plugins.module_utils._compare.drift import declared_drift
from ansible_collections.overlayfs.mounts.plugins.module_utils._compare.live import (
    differences,
    flags_only,
    managed_here,
    observe as observe_live,
    public_live,
)
from ansible_collections.overlayfs.mounts.plugins.module_utils._converge import steps, volatile_upper
from ansible_collections.overlayfs.mounts.plugins.module_utils._converge.overlay_graph import check_entry, dependents
from ansible_collections.overlayfs.mounts.plugins.module_utils._converge.plan import check_hands_off, make_plan
from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.mountinfo import (
    HANDS_OFF_ENGINES,
    engine_layout,
    mount_containing,
    submounts,
)
from ansible_collections.overlayfs.mounts.plugins.module_utils._host.namespaces import describe as describe_holders
from ansible_collections.overlayfs.mounts.plugins.module_utils._host.upper_safety import check_upper
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.declaration import Declaration, dir_attributes
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.overlay_options import parse_options, resolve
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.path_limits import check_path_lengths, declared_paths
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.paths import at_or_inside
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.refusals import (
    busy_message,
    check_datadir,
    dependents_message,
    held_message,
    shared_message,
    stays_message,
    check_host,
    check_layout,
    check_workdir,
    refuse_dangling_mount_point,
)
from ansible_collections.overlayfs.mounts.plugins.module_utils._persist import registry
from ansible_collections.overlayfs.mounts.plugins.module_utils._persist.backend import StepContext


@dataclasses.dataclass
class Observation:
    """What :func:`observe` read of the host for one declaration (reads only, no decision).

    ``kinds``: what is at each declared path (``dir``, ``missing``, ...);
    ``upper_mount``/``work_mount``: the mounts holding them; ``live``: the
    ``Observed`` at the mount point; ``differences``: how the live overlay
    differs from the declaration (state ``mounted``); ``upper``: the upper
    and work dirs' facts, read when a mount will be needed; ``users``: who
    keeps the mount busy, read when it will be (or, in check mode, would
    be) unmounted.
    """

    backends: List[Any]
    touch: bool
    live: Any
    kinds: Dict[str, str] = dataclasses.field(default_factory=dict)
    upper_mount: Any = None
    work_mount: Any = None
    differences: List[Dict[str, Any]] = dataclasses.field(default_factory=list)
    upper: Optional[Dict[str, Any]] = None
    users: Optional[Dict[str, Any]] = None
    attrs: Any = (None, None, None)
    tmpfs: Any = None  # volatile_upper.TmpfsSeen: the tmpfs of a volatile upper, or None


class Entry:
    """One declared overlay on its way through :func:`converge`."""

    def __init__(self, decl: Declaration, session: Any) -> None:
        self.decl = decl
        self.session = session
        self.facts = None
        self.seen: Optional[Observation] = None
        self.plan: Optional[Dict[str, Any]] = None
        self.result: Dict[str, Any] = {}
        self.ctx: Optional[StepContext] = None
        self.undo: List[Any] = []  # (kind, undo) of the steps done: persist, mount or dirs
        self.unverified = False  # mounted in a batch, to be verified with its group

    @property
    def backends(self) -> List[Any]:
        return self.seen.backends if self.seen is not None else []

    def meeting_paths(self) -> List[str]:
        """The paths at which a pending mount of this entry meets others (``pending.PendingMounts``)."""
        decl = self.decl
        root = engine_layout(decl.path, {"lowerdir": decl.lowerdir, "upperdir": decl.upperdir,
                                         "workdir": decl.workdir})
        return [p for p in (decl.path, decl.upperdir, decl.workdir, root) if p]


def converge(session: Any, params: Dict[str, Any], provided: Sequence[str] = ()) -> Dict[str, Any]:
    """Carry out one overlay declaration and return its result dict.

    ``provided``: the mount points earlier entries of a batch set up, which
    in check mode do not exist yet but may be this overlay's layers.
    """
    declared = registry.declare(params, session.backends)
    for note in declared.notes:
        session.module.warn("%s: %s" % (declared.path, note))
    entry = Entry(declared, session)
    observe(session, entry, provided)
    plan(session, entry)
    if not session.check_mode:
        steps.carry_out(session, entry)
    return entry.result


# Observe ----------------------------------------------------------------

def observe(session: Any, entry: Entry, provided: Sequence[str] = ()) -> None:
    """Read what the declaration meets on the host; refuse what those reads rule out."""
    declared, host = entry.decl, session.host
    check_path_lengths(declared_paths(declared))  # pure: a path the kernel cannot take is refused first
    session.hold()  # before the first host read
    refuse_dangling_mount_point(declared.path, host.path_kind(declared.path))
    host.check_declaration(declared, [("fstab", declared.fstab), ("unit_dir", declared.unit_dir),
                                      ("links_dir", declared.links_dir)], session.resolve_safely)
    decl = declared.canonical(session.realpath)
    if session.wait_for(decl.layers, [p for p in (decl.path, decl.upperdir, decl.workdir) if p]):
        decl = declared.canonical(session.realpath)  # a mount the group undid may have changed a path
    entry.decl = decl
    if decl.state == "mounted" and decl.method == "symlinks" and decl.links_dir:
        host.check_links_root(decl.links_dir)
    seen = Observation(backends=[], touch=False, live=None)
    if decl.writes:
        _observe_paths(session, decl, seen, provided)
    seen.attrs = dir_attributes(decl.mode, decl.owner, decl.group)
    entry.facts = session.facts()
    seen.touch = decl.state == "absent" or (decl.writes and decl.persist is not None)
    for backend_class in session.backends:
        backend = backend_class(decl, entry.facts, realpath=session.realpath)
        backend.read(seen.touch)
        seen.backends.append(backend)
    seen.live = observe_live(decl.path, session.mountinfo(), session.defaults(), decl.links_dir,
                             exists=host.exists, realpath=session.realpath, links=session.link_times(),
                             ours=decl.config(), own=managed_here(seen.backends))
    volatile_upper.observe(session, decl, seen, entry.facts)
    _observe_change(session, decl, seen)
    entry.seen = seen
    check_path_lengths(steps.made_paths(entry))  # its links and files too, in check mode as for real


def _observe_paths(session: Any, decl: Declaration, seen: Observation, provided: Sequence[str]) -> None:
    """What is at each declared path; refuse a layout or options the kernel would refuse."""
    host = session.host
    check_layout(decl)
    host.check_kernel_support(decl)
    seen.kinds = {path: host.path_kind(path) for path in decl.all_paths()}
    if decl.datadir:
        check_datadir(decl.datadir, resolve(parse_options(decl.options), session.defaults(), decl.writable)["metacopy"])
    for layer in decl.lowerdir:
        if seen.kinds[layer] == "missing" and any(at_or_inside(layer, point) for point in provided):
            seen.kinds[layer] = "dir"  # mounted by an earlier entry of the batch (in check mode: not yet)
    if decl.writable:
        seen.upper_mount = mount_containing(session.mountinfo(), decl.upperdir)
        seen.work_mount = mount_containing(session.mountinfo(), decl.workdir)


def _observe_change(session: Any, decl: Declaration, seen: Observation) -> None:
    """When the overlay will be mounted or unmounted: the upper dir's state, the mount's users."""
    live = seen.live.live
    if decl.state == "mounted":
        seen.differences = differences(decl, live, session.defaults())
        engine = live.get("engine") if live is not None else None
        if not seen.differences or seen.live.foreign is not None or engine in HANDS_OFF_ENGINES:
            return  # in sync, or refused by the plan
        if seen.live.covered is not None:
            return  # covered by another mount: nothing is mounted or unmounted beneath it
        if live is not None and flags_only(seen.differences):
            return  # a remount of the flags: nothing is unmounted or mounted
        seen.upper = None if seen.tmpfs is not None and seen.tmpfs.fresh else _upper_facts(session, decl, live)
        seen.users = _users(session, decl, live)
    elif decl.state in ("unmounted", "absent") and live is not None and live.get("engine") not in HANDS_OFF_ENGINES:
        seen.users = _users(session, decl, live)  # (a hands-off overlay is refused by the plan)


def _upper_facts(session: Any, decl: Declaration, live: Any) -> Dict[str, Any]:
    effective = resolve(parse_options(decl.options), session.defaults(), decl.writable)
    listing = session.host.workdir_listing(decl.workdir) if decl.writable else None
    facts = session.host.upper_facts(decl, session.mountinfo(), live, userxattr=effective["userxattr"])
    return {"listing": listing, "facts": facts, "index_on": effective["index"] == "on"}


def _users(session: Any, decl: Declaration, live: Any) -> Dict[str, Any]:
    """``{holders, elsewhere, shared, submounts, text}``: what keeps the mount at ``decl.path`` busy.

    Looked for in every mount namespace (``_host.namespaces``): processes
    using the mount, copies of it that an unmount here does not reach, and,
    when the overlay will be mounted, other overlays on its upper or work dir.
    """
    entries = session.mountinfo()
    mounted = None
    if live is not None:
        mounted = next((e for e in entries if e.mount_id == live["mount_id"]), None)
    mine = None
    if decl.state == "mounted" and decl.writable:
        mine = {path: session.host.identity(path) for path in (decl.upperdir, decl.workdir)}
    if live is not None:  # an unmount is planned: the host as it is now
        found = session.host.scan_holders(decl.path, entries, mounted, mine)
    else:  # only other namespaces' overlays on the upper or work dir, kept for the run
        found = session.host.scan_holders(decl.path, entries, None, mine, view=session.namespaces(),
                                          others=session.other_overlays())
    subs = [e.mount_point for e in submounts(entries, decl.path)] if live is not None else []
    parts = [describe_holders(found), "submounts " + ", ".join(subs) if subs else ""]
    busy = [describe_holders({"processes": found["processes"]}), parts[1]]
    return {"holders": found["processes"], "elsewhere": found["elsewhere"], "shared": found["shared"],
            "submounts": subs, "text": "; ".join(part for part in parts if part),
            "busy": "; ".join(part for part in busy if part),
            "dependents": dependents(session, decl.path) if live is not None else []}


# Plan -------------------------------------------------------------------

def plan(session: Any, entry: Entry) -> None:
    """The steps the declared state needs, in order, and the result as planned (pure)."""
    decl, seen, module = entry.decl, entry.seen, session.module
    check_hands_off(decl.path, seen.live)  # before any other refusal: a container's or the system's overlay
    to_create = []
    if decl.writes:
        to_create = check_host(decl, seen.kinds, seen.upper_mount, seen.work_mount, decl.create_dirs,
                               lowers_needed=decl.state == "mounted")
        for layer in decl.lowerdir:
            if seen.kinds[layer] == "missing":
                module.warn("lowerdir %s does not exist yet; it must exist before %s is mounted at boot"
                            % (layer, decl.path))
    notes = [note for backend in seen.backends if seen.touch
             for note in backend.plan(decl.writes and decl.persist is type(backend))]
    for note in notes:
        module.warn("%s: %s" % (decl.path, note))
    for backend in seen.backends:
        for warning in backend.plan_warnings(session.check_mode):
            module.warn(warning)
    persist = [step for backend in seen.backends for step in backend.actions()]
    if persist and entry.facts.booted:
        persist.append({"action": "daemon_reload", "path": decl.unit_dir})
    via = next((backend.name for backend in seen.backends if backend.mounts_itself), None)
    entry.plan = make_plan(decl, seen.live, session.defaults(), to_create, persist,
                           upper_check=lambda: _upper_steps(decl, seen.upper), via=via, diffs=seen.differences)
    if entry.plan["actions"]:
        check_entry(session, decl)  # its place among the host's overlays, before anything changes
    volatile_upper.plan(session, entry)
    report(session, entry)
    volatile_upper.report(entry)


def _upper_steps(decl: Declaration, upper: Optional[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Refuse an upper or work dir that is unsafe to mount; the steps that make it safe."""
    if upper is None:
        return []
    if upper["listing"] is not None:
        check_workdir(decl.workdir, upper["listing"])
    return check_upper(decl, upper["facts"], upper["index_on"], decl.clear_volatile)


def report(session: Any, entry: Entry) -> None:
    """The result of the entry as planned; warn where a real run would fail or skip."""
    module, decl, plan_, observed = session.module, entry.decl, entry.plan, entry.seen
    live = observed.live.live
    before = registry.persisted(entry.backends, after=False)
    entry.result = {
        "changed": plan_["changed"],
        "mount": decl.as_result(),
        "live": public_live(live),
        "persisted": registry.persisted(entry.backends) if any(b.changed for b in entry.backends) else before,
        "actions": plan_["actions"],
        "drift": declared_drift(decl, decl.persist_name, decl.boot_extras, decl.boot, live, before,
                                session.defaults(), session.realpath),
        "mount_method": None,
    }
    if module._diff:
        mount_diff = dict(plan_["diff"], before_header="%s (live mount)" % decl.path,
                          after_header="%s (declared)" % decl.path)
        entry.result["diff"] = [mount_diff] + [d for b in entry.backends for d in b.diffs()]
    for warning in plan_.get("warnings", ()):
        module.warn(warning)
    unmounting = decl.state in ("unmounted", "absent")
    if observed.live.foreign is not None and unmounting:
        module.warn("%s is a mount point of %s, not an overlay: left alone" % (decl.path, observed.live.foreign))
    _refuse_if_held(session, entry)


def _refuse_if_held(session: Any, entry: Entry) -> None:
    """Refuse, before anything changes and in check mode too, an unmount or mount that holders rule out.

    A re-layering is refused while anything holds the mount, in any
    namespace, a copy of it there that an unmount here does not reach
    included: the new overlay would share the upper dir with it. An unmount
    is refused while processes (in any namespace) or submounts keep it
    busy; an idle copy elsewhere only keeps the overlay alive there, which
    a warning says. Any mount is refused while another namespace has an
    overlay on the same upper or work dir.
    """
    users, decl, plan_ = entry.seen.users, entry.decl, entry.plan
    if users and users["dependents"]:
        _take_down_first(session, entry, users["dependents"])
    if not users or not users["text"]:
        return
    unmounts = any(step["action"] == "unmount" for step in plan_["actions"])
    mounts = any(step["action"] == "mount" for step in plan_["actions"])
    if plan_["relayer"]:
        message = busy_message(decl.path, [d["field"] for d in plan_["differences"]], users["text"])
    elif unmounts and users["busy"]:
        message = held_message(decl.path, decl.state, users["busy"])
    elif mounts and users["shared"]:
        message = shared_message(decl.path, describe_holders({"shared": users["shared"]}))
    else:
        if unmounts and users["elsewhere"]:
            session.module.warn(stays_message(decl.path, describe_holders({"elsewhere": users["elsewhere"]})))
        return
    raise OverlayError(message, holders=users["holders"], elsewhere=users["elsewhere"], shared=users["shared"],
                       submounts=users["submounts"], drift=plan_["differences"],
                       live=public_live(entry.seen.live.live))


def _take_down_first(session: Any, entry: Any, found: List[Dict[str, str]]) -> None:
    """Unmount the overlays that use a dir inside this one before it is unmounted, or refuse.

    A batch that mounts them again later (``session.takes_down``) unmounts
    them first, deepest first, and mounts them on the new overlay in its
    order; anywhere else the unmount is refused, naming them.
    """
    plan_, decl = entry.plan, entry.decl
    position = next((n for n, step in enumerate(plan_["actions"]) if step["action"] == "unmount"), None)
    if position is None:
        return
    if not session.takes_down([d["path"] for d in found]):
        raise OverlayError(dependents_message(decl.path, decl.state, found), dependents=found,
                           drift=plan_["differences"], live=public_live(entry.seen.live.live))
    plan_["actions"][position:position] = [
        {"action": "unmount_dependent", "path": d["path"], "reason": "%s %s lies inside %s" % (d["field"], d["dir"], decl.path)}
        for d in found]
