# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Decide what one declared overlay needs: the ordered actions, the differences, the diff. Pure.

``make_plan`` takes the declaration and what was observed (the live overlay
as ``_compare.live`` reads it, the backends' persistence steps, the dirs to
create, the upper dir's remedies) and returns the plan the converge carries
out; check mode returns it as the prediction.
"""

from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from ansible_collections.overlayfs.mounts.plugins.module_utils._compare.live import Observed, differences, flags_only
from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.mountinfo import (
    ENGINE_FUSE_OVERLAYFS,
    FUSE_OVERLAYFS_TYPE,
    HANDS_OFF_ENGINES,
)
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.refusals import refuse_foreign, refuse_hands_off
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.stack_refusals import covered_warning, refuse_covered
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.overlay_options import (
    compared_keys,
    parse_options,
    resolve,
    visible_options,
)


def comparable_options(decl: Any, defaults: Dict[str, Any]) -> List[str]:
    """Declared options as the kernel would show them once mounted."""
    pairs = parse_options(decl.options)
    cfg = resolve(pairs, defaults, decl.writable)
    skip = () if "uuid" in compared_keys(pairs) else ("uuid",)
    return visible_options(cfg, defaults, skip=skip)


def _diff_view(state, options, flags=False, superblock=None):
    """One side of the diff; ``flags``: show the per-mount flags (where either side has some)."""
    if not state:
        return {}
    view = {
        "path": state["path"],
        "lowerdir": list(state["lowerdir"]),
        "upperdir": state["upperdir"],
        "workdir": state["workdir"],
        "options": options,
    }
    if flags:
        view["flags"] = list(state.get("flags") or ())
    if superblock:
        view["superblock"] = superblock
    if state.get("datadir"):
        view["datadir"] = list(state["datadir"])
    return view


def _diff(decl, live, defaults):
    """Diff-mode ``before`` (the live overlay) and ``after`` (the declared one, when mounted)."""
    after_options = comparable_options(decl, defaults)
    before_options = []
    if live is not None:
        before_options = list(live["options"])
        if "uuid" not in compared_keys(parse_options(decl.options)):
            before_options = [o for o in before_options if not o.startswith("uuid=")]
        if not any(o.partition("=")[0] == "xino" for o in live["shown_options"]):
            # The kernel hides xino whenever all layers share one filesystem,
            # and option_differences does not compare it then: neither may the diff.
            after_options = [o for o in after_options if not o.startswith("xino=")]
    if decl.state == "present":
        return {"before": {}, "after": {}}  # the live mount is not this state's business
    # The superblock shows only where it is to change (made writable again).
    superblock = live is not None and any(d["field"] == "superblock" for d in differences(decl, live, defaults))
    flags = bool(decl.flags or (live is not None and live.get("flags")) or superblock)
    after = _diff_view(decl.config(), after_options, flags, superblock and "rw") if decl.state == "mounted" else {}
    return {"before": _diff_view(live, before_options, flags, superblock and "ro"), "after": after}


def check_hands_off(path: str, seen: Observed) -> None:
    """Refuse every state at a mount point whose overlay a container engine or the system manages.

    Container engines' overlays, systemd-sysext, systemd-confext and
    composefs overlays (``live.engine`` among HANDS_OFF_ENGINES), and a
    fuse-overlayfs mount on top (unless it covers the declared overlay:
    then :func:`make_plan` leaves both alone, or refuses to unmount):
    nothing is planned there, in check mode too.
    """
    live = seen.live
    if live is not None and live.get("engine") in HANDS_OFF_ENGINES:
        refuse_hands_off(path, live["engine"])
    if seen.foreign == FUSE_OVERLAYFS_TYPE and seen.covered is None:
        refuse_hands_off(path, ENGINE_FUSE_OVERLAYFS)


def _remount_step(path: str, diffs: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    """The ``remount_flags`` action: the mount's flags change in place, without re-layering."""
    step = {"action": "remount_flags", "path": path, "reason": "change of " + ", ".join(d["field"] for d in diffs)}
    if any(d["field"] == "superblock" for d in diffs):
        step["superblock"] = "rw"
    return step


def _mounted_steps(path: str, live: bool, diffs: Sequence[Dict[str, Any]],
                   upper_check: Optional[Callable[[], List[Dict[str, Any]]]], via: Optional[str]) -> Tuple[List[Dict[str, Any]], bool]:
    """``(live steps, relayer)`` of a ``mounted`` declaration with ``diffs`` (``live``: something is mounted)."""
    steps = []
    if live and flags_only(diffs):
        steps.append(_remount_step(path, diffs))  # flags change in place
        mount_diffs = []
    else:
        mount_diffs = diffs
    relayer = live and bool(mount_diffs)
    if relayer:
        steps.append({"action": "unmount", "path": path, "reason": "change of " + ", ".join(d["field"] for d in diffs)})
    if mount_diffs:
        mount = {"action": "mount", "path": path}
        if via:
            mount["via"] = via
        steps += list(upper_check() if upper_check else ()) + [mount]
    return steps, relayer


def _armed(decl: Any, seen: Observed) -> bool:
    """True when the mount at the path is the autofs of the overlay's own automount, which the mount goes on top of."""
    return seen.foreign == "autofs" and decl.automount and seen.live is None


def make_plan(decl: Any, seen: Observed, defaults: Dict[str, Any], to_create: Sequence[str] = (),
              persist: Sequence[Dict[str, Any]] = (), upper_check: Optional[Callable[[], List[Dict[str, Any]]]] = None,
              via: Optional[str] = None, diffs: Optional[List[Dict[str, Any]]] = None) -> Dict[str, Any]:
    """Decide what ``decl.state`` needs, given what is mounted (``seen``, :class:`Observed`).

    ``to_create`` are dirs to create first; ``persist`` the steps of the
    persistence backends (``[{action, path}]``), which run before mounting
    and after unmounting. When a mount is planned, ``upper_check()`` returns
    the steps that make the upper dir safe to mount (clearing a stale
    volatile marker), which run just before it, or raises; ``via`` names the
    backend whose unit mounts the overlay (``systemd``), if any; ``diffs``
    the differences of a ``mounted`` declaration from ``seen``, when they
    were computed already. A live overlay that differs in its per-mount
    flags alone (``_compare.live.flags_only``) gets one ``remount_flags``
    action instead of being unmounted and mounted again.

    When another mount covers the declared overlay (``seen.covered``), the
    live mounts are left as they are: ``mounted`` plans nothing for them
    and warns, ``unmounted`` and ``absent`` are refused (the unmount would
    take down the covering mount). A differences row ``shadowed`` (a dir
    the overlay serves is hidden by a later mount) re-layers it.

    Returns a dict with ``changed``, ``actions`` (ordered dicts with
    ``action`` and ``path``), ``differences``, ``relayer``, ``diff`` and
    ``warnings`` (sentences the module shows).
    """
    live = seen.live
    covered = seen.covered
    check_hands_off(decl.path, seen)
    if covered is not None and decl.state in ("unmounted", "absent"):
        refuse_covered(decl.path, decl.state, covered)
    if decl.state == "mounted" and seen.foreign is not None and covered is None and not _armed(decl, seen):
        refuse_foreign(decl.path, seen.foreign)
    live_steps, relayer, warnings = [], False, []
    if decl.state == "mounted" and covered is not None:
        diffs = differences(decl, live, defaults) if diffs is None else diffs
        warnings.append(covered_warning(decl.path, covered))
    elif decl.state == "mounted":
        diffs = differences(decl, live, defaults) if diffs is None else diffs
        live_steps, relayer = _mounted_steps(decl.path, live is not None, diffs, upper_check, via)
    elif decl.state in ("unmounted", "absent") and live is not None:
        diffs = [{"field": "mounted", "declared": False, "live": True}]
        live_steps = [{"action": "unmount", "path": decl.path} for _i in range(seen.stacked)]
    else:
        diffs = []
    dirs = [{"action": "create_dir", "path": path} for path in to_create]
    if decl.state == "absent":
        actions = live_steps + list(persist)  # unmount before unpersisting
    else:
        actions = dirs + list(persist) + live_steps  # persist before mounting
    return {
        "changed": bool(actions),
        "actions": actions,
        "differences": diffs,
        "relayer": relayer,
        "diff": _diff(decl, live, defaults),
        "warnings": warnings,
    }
