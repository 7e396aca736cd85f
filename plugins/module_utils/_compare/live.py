# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Compare a declared overlay with the live one and decide what to do.

``plan = make_plan(...)`` decides ``changed``, the differences, the diff and
the ordered actions; the module only carries the actions out. Pure: the live
side comes in as mountinfo entries, the host facts as plain values.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from collections import namedtuple

from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError
from ansible_collections.overlayfs.mounts.plugins.module_utils._host.mounting import links_dir_for
from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.mountinfo import (
    CONTAINER_ENGINES,
    engine_layout,
    engine_of,
    mounts_at,
    overlay_config,
    resolve_paths,
)
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.overlay_options import (
    compared_keys,
    live_config,
    option_differences,
    parse_options,
    resolve,
    visible_options,
)


class LiveOverlay(dict):
    """An overlay as mountinfo shows it: the module's ``live`` result.

    ``effective`` holds the value of every overlay option the kernel applies
    (shown or default), which comparisons use; it is not part of the result.
    """

    def __init__(self, fields, effective):
        dict.__init__(self, fields)
        self.effective = effective


Observed = namedtuple("Observed", ["live", "stacked", "foreign"])
Observed.__doc__ = """What is mounted at a mount point: the visible overlay (a LiveOverlay or
None), how many overlays are stacked there, and the fstype of a non-overlay
mount on top (or None)."""


def observe(path, entries, defaults, links_root=None, exists=None, realpath=None):
    """:class:`Observed` at ``path`` among the mountinfo ``entries``.

    ``links_root``: where this collection keeps short layer links, against
    which relative layers of its own mounts resolve; ``exists`` and
    ``realpath`` as for :func:`live_state`.
    """
    stack = mounts_at(entries, path)
    if not stack:
        return Observed(None, 0, None)
    if not stack[-1].is_overlay:
        return Observed(None, 0, stack[-1].fstype)
    count = 0
    for entry in reversed(stack):
        if not entry.is_overlay:
            break
        count += 1
    bases = [links_dir_for(links_root, path)] if links_root else []
    return Observed(live_state(stack[-1], defaults, exists=exists, realpath=realpath, bases=bases), count, None)


def live_state(entry, defaults, exists=None, realpath=None, bases=()):
    """The normalised live state of an overlay mountinfo entry.

    Relative layer, upper and work paths are resolved against one base (see
    _mountinfo.resolve_paths: ``bases``, this collection's short-link
    directory for the mount point, then the engine storage root the mount
    point sits in) when ``exists`` is given; ``resolved`` is False when some
    stay relative. ``realpath`` canonicalises every absolute path when given.
    ``engine`` names the container engine whose storage layout the mount
    has (``docker``, ``containers-storage``), or is None.
    """
    cfg = overlay_config(entry)
    paths = resolve_paths(cfg, entry.mount_point, exists, bases)
    engine = engine_of(engine_layout(entry.mount_point, paths), exists)

    def canon(path):
        # A relative path that could not be resolved stays as the kernel shows it.
        return realpath(path) if realpath and path[:1] == "/" else path

    def layers(found):
        return [canon(p) for p in found] if realpath is not None else found

    upper, work = paths["upperdir"], paths["workdir"]
    effective, foreign = live_config(cfg["options"], defaults, has_upper=cfg["upperdir"] is not None)
    return LiveOverlay({
        "path": entry.mount_point,
        "lowerdir": layers(paths["lowerdir"]),
        "datadir": layers(paths["datadir"]),
        "upperdir": canon(upper) if upper else None,
        "workdir": canon(work) if work else None,
        "resolved": paths["resolved"],
        "relative_to": paths["base"],
        "engine": engine,
        "options": visible_options(effective, defaults),
        "other_options": foreign,
        "shown_options": cfg["options"],
        "read_only": "ro" in entry.mount_options or cfg["vfs"] == "ro",
        "mount_id": entry.mount_id,
        "source": entry.source,
        "form": cfg["form"],
    }, effective)


def public_live(live):
    """``live`` as a plain dict for module results (None stays None)."""
    return None if live is None else dict(live)


def differences(decl, live, defaults):
    """``[{field, declared, live}]`` for every field in which live differs."""
    if live is None:
        return [{"field": "mounted", "declared": True, "live": False}]
    pairs = parse_options(decl.options)
    declared_cfg = resolve(pairs, defaults, decl.writable)
    out = []
    for field in ("lowerdir", "upperdir", "workdir", "datadir"):
        want, have = getattr(decl, field), live.get(field, [] if field == "datadir" else None)
        if want != have:
            out.append({"field": field, "declared": want, "live": have})
    for name, want, have in option_differences(pairs, declared_cfg, live.effective, live["shown_options"]):
        out.append({"field": "options.%s" % name, "declared": want, "live": have})
    return out


def comparable_options(decl, defaults):
    """Declared options as the kernel would show them once mounted."""
    pairs = parse_options(decl.options)
    cfg = resolve(pairs, defaults, decl.writable)
    skip = () if "uuid" in compared_keys(pairs) else ("uuid",)
    return visible_options(cfg, defaults, skip=skip)


def _diff_view(state, options):
    if not state:
        return {}
    view = {
        "path": state["path"],
        "lowerdir": list(state["lowerdir"]),
        "upperdir": state["upperdir"],
        "workdir": state["workdir"],
        "options": options,
    }
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
    after = _diff_view(decl.config(), after_options) if decl.state == "mounted" else {}
    return {"before": _diff_view(live, before_options), "after": after}


def make_plan(decl, seen, defaults, to_create=(), persist=(), upper_check=None, via=None):
    """Decide what ``decl.state`` needs, given what is mounted (``seen``, :class:`Observed`).

    ``to_create`` are dirs to create first; ``persist`` the steps of the
    persistence backends (``[{action, path}]``), which run before mounting
    and after unmounting. When a mount is planned, ``upper_check()`` returns
    the steps that make the upper dir safe to mount (clearing a stale
    volatile marker), which run just before it, or raises; ``via`` names the
    backend whose unit mounts the overlay (``systemd``), if any.

    Returns a dict with ``changed``, ``actions`` (ordered dicts with
    ``action`` and ``path``), ``differences``, ``relayer`` and ``diff``.
    """
    live = seen.live
    if live is not None and live.get("engine") in CONTAINER_ENGINES:
        raise_engine(decl.path, live["engine"])
    if decl.state == "mounted" and seen.foreign is not None:
        raise_foreign(decl.path, seen.foreign)
    diffs, live_steps, relayer = [], [], False
    if decl.state == "mounted":
        diffs = differences(decl, live, defaults)
        relayer = live is not None and bool(diffs)
        if relayer:
            live_steps.append({"action": "unmount", "path": decl.path,
                               "reason": "change of " + ", ".join(d["field"] for d in diffs)})
        if diffs:
            mount = {"action": "mount", "path": decl.path}
            if via:
                mount["via"] = via
            live_steps += list(upper_check() if upper_check else ()) + [mount]
    elif decl.state in ("unmounted", "absent") and live is not None:
        diffs = [{"field": "mounted", "declared": False, "live": True}]
        live_steps = [{"action": "unmount", "path": decl.path} for _i in range(seen.stacked)]
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
    }


def raise_foreign(path, fstype):
    raise OverlayError(
        "path: '%s' is already a mount point of a %s filesystem, not an overlay; this module "
        "does not mount over it: unmount it first or choose another path" % (path, fstype))


ENGINE_NAMES = {"docker": "Docker", "containers-storage": "podman (containers/storage)"}


def raise_engine(path, engine):
    raise OverlayError(
        "path: '%s' is the root filesystem of a container, mounted by %s (its storage layout says "
        "so); this collection never mounts over, re-layers or unmounts a container engine's "
        "overlay: manage it with the engine (stop or remove the container), or choose another path"
        % (path, ENGINE_NAMES.get(engine, engine)), engine=engine)
