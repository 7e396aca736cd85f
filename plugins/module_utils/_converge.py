# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The life cycle of one overlay_mount task: declare, read, plan, act, verify."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import grp
import os
import pwd

from ansible_collections.overlayfs.mounts.plugins.module_utils import _host as host
from ansible_collections.overlayfs.mounts.plugins.module_utils._declaration import (
    check_host,
    check_layout,
    from_params,
)
from ansible_collections.overlayfs.mounts.plugins.module_utils._errors import OverlayError
from ansible_collections.overlayfs.mounts.plugins.module_utils._mountinfo import (
    mount_containing,
    mounts_at,
    submounts,
)
from ansible_collections.overlayfs.mounts.plugins.module_utils._plan import (
    differences,
    live_state,
    make_plan,
    public_live,
)


def canonical(decl, realpath=os.path.realpath):
    """Every path of the declaration with symlinks resolved, as the kernel sees it."""
    out = dict(decl)
    out["path"] = realpath(decl["path"])
    out["lowerdir"] = [realpath(p) for p in decl["lowerdir"]]
    if decl["upperdir"] is not None:
        out["upperdir"] = realpath(decl["upperdir"])
        out["workdir"] = realpath(decl["workdir"])
    return out


def _mode(value):
    if value is None:
        return None
    if isinstance(value, int):
        return value
    text = str(value).strip()
    try:
        return int(text, 8)
    except ValueError:
        raise OverlayError("mode: '%s' is not an octal mode; write it quoted, such as '0755'" % text)


def _uid(owner):
    if owner is None:
        return None
    try:
        return int(owner)
    except ValueError:
        try:
            return pwd.getpwnam(owner).pw_uid
        except KeyError:
            raise OverlayError("owner: there is no user '%s' on this host" % owner)


def _gid(group):
    if group is None:
        return None
    try:
        return int(group)
    except ValueError:
        try:
            return grp.getgrnam(group).gr_gid
        except KeyError:
            raise OverlayError("group: there is no group '%s' on this host" % group)


def observe(path, entries, defaults):
    """What is mounted at ``path``: (live overlay state or None, overlay count, foreign fstype)."""
    stack = mounts_at(entries, path)
    if not stack:
        return None, 0, None
    top = stack[-1]
    if not top.is_overlay:
        return None, 0, top.fstype
    count = 0
    for entry in reversed(stack):
        if not entry.is_overlay:
            break
        count += 1
    live = live_state(top, defaults, exists=os.path.exists, realpath=os.path.realpath)
    return live, count, None


def run(module):
    """Carry out one overlay_mount task and return its result dict."""
    p = module.params
    state = p["state"]
    decl = from_params(p["path"], p["lowerdir"], p["upperdir"], p["workdir"], p["options"], state)
    decl = canonical(decl)
    entries = host.read_mountinfo()
    defaults = host.read_defaults()
    to_create = []
    if state == "mounted":
        check_layout(decl)
        kinds = dict((path, host.path_kind(path)) for path in
                     [decl["path"]] + decl["lowerdir"] + [d for d in (decl["upperdir"], decl["workdir"]) if d])
        upper_mount = work_mount = None
        if decl["upperdir"] is not None:
            upper_mount = mount_containing(entries, decl["upperdir"])
            work_mount = mount_containing(entries, decl["workdir"])
        to_create = check_host(decl, kinds, upper_mount, work_mount, p["create_dirs"])
        mode, uid, gid = _mode(p["mode"]), _uid(p["owner"]), _gid(p["group"])

    live, stacked, foreign = observe(decl["path"], entries, defaults)
    plan = make_plan(decl, state, live, stacked, defaults, to_create, foreign)
    result = {
        "changed": plan["changed"],
        "mount": dict(decl),
        "live": public_live(live),
        "actions": plan["actions"],
        "drift": plan["differences"],
        "mount_method": None,
    }
    if module._diff:
        result["diff"] = plan["diff"]
    if foreign is not None and state == "unmounted":
        module.warn("%s is a mount point of %s, not an overlay: left alone" % (decl["path"], foreign))
    if plan["relayer"]:
        blockers = _blockers(decl["path"], entries)
        if blockers:
            message = (
                "%s must be unmounted and mounted again to apply %s (a remount cannot change "
                "layers, upper or work), but it is in use: %s. Stop those users, then run again"
                % (decl["path"], ", ".join(d["field"] for d in plan["differences"]), blockers["text"]))
            if module.check_mode:
                module.warn(message)
            else:
                raise OverlayError(message, holders=blockers["holders"], submounts=blockers["submounts"],
                                   drift=plan["differences"], live=public_live(live))
    if module.check_mode or not plan["changed"]:
        return result

    created = []
    unmounted_live = None
    try:
        for step in plan["actions"]:
            if step["action"] == "create_dir":
                created += host.make_dirs(step["path"], mode, uid, gid)
            elif step["action"] == "unmount":
                host.unmount(module, step["path"])
                unmounted_live = live
            elif step["action"] == "mount":
                result["mount_method"] = host.mount(decl)
                result["live"] = public_live(_verify(decl, defaults))
    except OverlayError as error:
        if unmounted_live is not None and state == "mounted":
            error.message += _restore(unmounted_live, decl["path"])
        host.remove_empty_dirs(created)
        raise OverlayError(error.message, **error.details)
    except OSError as error:
        host.remove_empty_dirs(created)
        raise OverlayError("%s failed: %s" % (step["action"], error))
    if state == "unmounted":
        result["live"] = None
    return result


def _blockers(path, entries):
    holders = host.find_holders(path)
    subs = [e.mount_point for e in submounts(entries, path)]
    if not holders and not subs:
        return None
    parts = []
    if holders:
        parts.append("processes " + host.describe_holders(holders))
    if subs:
        parts.append("submounts " + ", ".join(subs))
    return {"holders": holders, "submounts": subs, "text": "; ".join(parts)}


def _verify(decl, defaults):
    """Read mountinfo again; unmount and fail unless the kernel mounted exactly ``decl``."""
    live, _count, foreign = observe(decl["path"], host.read_mountinfo(), defaults)
    if live is None:
        raise OverlayError(
            "the mount of %s reported success but mountinfo shows %s there"
            % (decl["path"], "a %s filesystem" % foreign if foreign else "nothing mounted"))
    diffs = differences(decl, live, defaults)
    if diffs:
        detail = "; ".join("%s: declared %r, mounted %r" % (d["field"], d["declared"], d["live"]) for d in diffs)
        try:
            host.umount2(decl["path"])
            undone = "it was unmounted again"
        except OSError as error:
            undone = "unmounting it again failed (%s): unmount it by hand" % error
        raise OverlayError(
            "the kernel mounted something other than what was declared at %s (%s); %s"
            % (decl["path"], detail, undone), drift=diffs, live=public_live(live))
    return live


def _restore(old, path):
    """Try to put back the overlay that was unmounted for a re-layering."""
    previous = {
        "path": path, "lowerdir": old["lowerdir"], "upperdir": old["upperdir"],
        "workdir": old["workdir"], "options": old["options"],
    }
    try:
        host.mount(previous)
    except OverlayError as error:
        return "; putting back the previous overlay also failed: %s" % error.message
    return "; the previous overlay was mounted again"
