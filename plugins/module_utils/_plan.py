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

from ansible_collections.overlayfs.mounts.plugins.module_utils._errors import OverlayError
from ansible_collections.overlayfs.mounts.plugins.module_utils._mountinfo import (
    CONTAINER_ENGINES,
    engine_layout,
    engine_of,
    overlay_config,
    resolve_paths,
)
from ansible_collections.overlayfs.mounts.plugins.module_utils._options import (
    compared_keys,
    live_config,
    option_differences,
    parse_options,
    resolve,
    visible_options,
)


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
    return {
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
        "_config": effective,
    }


def public_live(live):
    """``live`` without private keys, for module results."""
    if live is None:
        return None
    public = dict(live)
    del public["_config"]
    return public


def differences(decl, live, defaults):
    """``[{field, declared, live}]`` for every field in which live differs."""
    pairs = parse_options(decl["options"])
    has_upper = decl["upperdir"] is not None
    declared_cfg = resolve(pairs, defaults, has_upper)
    out = []
    if live is None:
        return [{"field": "mounted", "declared": True, "live": False}]
    for field in ("lowerdir", "upperdir", "workdir"):
        if decl[field] != live[field]:
            out.append({"field": field, "declared": decl[field], "live": live[field]})
    if live.get("datadir", []) != decl.get("datadir", []):
        out.append({"field": "datadir", "declared": decl.get("datadir", []), "live": live.get("datadir", [])})
    for name, want, have in option_differences(pairs, declared_cfg, live["_config"], live["shown_options"]):
        out.append({"field": "options.%s" % name, "declared": want, "live": have})
    return out


def comparable_options(decl, defaults):
    """Declared options as the kernel would show them once mounted."""
    pairs = parse_options(decl["options"])
    cfg = resolve(pairs, defaults, decl["upperdir"] is not None)
    skip = () if "uuid" in compared_keys(pairs) else ("uuid",)
    return visible_options(cfg, defaults, skip=skip)


def _diff_view(state, options):
    if state is None:
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


def make_plan(decl, state, live, stacked, defaults, to_create, foreign_top=None):
    """Decide what ``state`` needs for ``decl`` given the live overlay.

    ``live`` is the normalised state of the overlay visible at the mount
    point (or None); ``stacked`` counts the overlays mounted on that point;
    ``foreign_top`` is the fstype of a non-overlay mount on top, if any.
    Returns a dict with ``changed``, ``actions`` (ordered dicts with ``action``
    and ``path``), ``differences``, ``relayer`` and ``diff``.
    """
    if live is not None and live.get("engine") in CONTAINER_ENGINES:
        raise_engine(decl["path"], live["engine"])
    actions = []
    diffs = []
    relayer = False
    after_options = comparable_options(decl, defaults)
    if live is not None:
        before_options = list(live["options"])
        if "uuid" not in compared_keys(parse_options(decl["options"])):
            before_options = [o for o in before_options if not o.startswith("uuid=")]
        if not any(o.partition("=")[0] == "xino" for o in live["shown_options"]):
            # The kernel hides xino whenever all layers share one filesystem,
            # and option_differences does not compare it then: neither may the diff.
            after_options = [o for o in after_options if not o.startswith("xino=")]
    else:
        before_options = []
    before = _diff_view(live, before_options)
    if state == "mounted":
        if foreign_top is not None:
            raise_foreign(decl["path"], foreign_top)
        for path in to_create:
            actions.append({"action": "create_dir", "path": path})
        diffs = differences(decl, live, defaults)
        if live is None:
            actions.append({"action": "mount", "path": decl["path"]})
        elif diffs:
            relayer = True
            actions.append({"action": "unmount", "path": decl["path"], "reason": "change of " + ", ".join(
                d["field"] for d in diffs)})
            actions.append({"action": "mount", "path": decl["path"]})
        after = _diff_view(decl, after_options)
    else:
        if live is not None:
            diffs = [{"field": "mounted", "declared": False, "live": True}]
            for _i in range(stacked):
                actions.append({"action": "unmount", "path": decl["path"]})
        after = {}
    return {
        "changed": bool(actions),
        "actions": actions,
        "differences": diffs,
        "relayer": relayer,
        "diff": {"before": before, "after": after},
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
