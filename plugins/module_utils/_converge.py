# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The life cycle of one overlay_mount task: declare, read, plan, act, verify.

Reading and planning happen first and change nothing, so check mode stops
after them with an exact prediction. Acting runs the planned steps in order
under a lock on the fstab directory, and a failed step rolls back what the
earlier steps changed: fstab and the unit file come back byte for byte, a
re-layered overlay is mounted again as it was, created dirs are removed while
still empty.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import grp
import os
import pwd

from ansible_collections.overlayfs.mounts.plugins.module_utils import _files as files
from ansible_collections.overlayfs.mounts.plugins.module_utils import _host as host
from ansible_collections.overlayfs.mounts.plugins.module_utils import _safepath
from ansible_collections.overlayfs.mounts.plugins.module_utils._declaration import (
    check_host,
    check_layout,
    check_workdir,
    from_params,
)
from ansible_collections.overlayfs.mounts.plugins.module_utils._drift import declared_drift
from ansible_collections.overlayfs.mounts.plugins.module_utils._errors import OverlayError
from ansible_collections.overlayfs.mounts.plugins.module_utils._mount_api import links_dir_for, prepare_links
from ansible_collections.overlayfs.mounts.plugins.module_utils._mountinfo import (
    mount_containing,
    mounts_at,
    submounts,
)
from ansible_collections.overlayfs.mounts.plugins.module_utils._persist import (
    boot_extras,
    edit_fstab,
    fstab_line,
    persisted_entries,
    unit_config,
    unit_plan,
)
from ansible_collections.overlayfs.mounts.plugins.module_utils._options import parse_options, resolve
from ansible_collections.overlayfs.mounts.plugins.module_utils._safety import VOLATILE_MARKER, check_upper
from ansible_collections.overlayfs.mounts.plugins.module_utils._plan import (
    differences,
    live_state,
    make_plan,
    public_live,
)
from ansible_collections.overlayfs.mounts.plugins.module_utils._systemd import unit_name_for

# Where a running systemd finds units; elsewhere a unit cannot be started by name.
PERSIST_ACTIONS = ("write_fstab", "write_links", "write_unit", "remove_unit", "enable_unit", "disable_unit",
                   "daemon_reload")

SYSTEMD_UNIT_PATH = (
    "/etc/systemd/system", "/run/systemd/system", "/usr/local/lib/systemd/system",
    "/lib/systemd/system", "/usr/lib/systemd/system",
)


def canonical(decl, realpath=os.path.realpath):
    """Every path of the declaration with symlinks resolved, as the kernel sees it."""
    out = dict(decl)
    out["path"] = realpath(decl["path"])
    out["lowerdir"] = [realpath(p) for p in decl["lowerdir"]]
    if decl.get("datadir"):
        out["datadir"] = [realpath(p) for p in decl["datadir"]]
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


def observe(path, entries, defaults, links_root=None):
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
    bases = [links_dir_for(links_root, path)] if links_root else []
    live = live_state(top, defaults, exists=os.path.exists, realpath=os.path.realpath, bases=bases)
    return live, count, None


def planned_fstab_line(p, fsconfig=None):
    """``(mount point, fstab line)`` an entry would write, or None (not fstab, or invalid).

    For a batch's single findmnt check; errors are left for the entry's own run.
    """
    if p["state"] not in ("mounted", "present") or p["persist"] != "fstab":
        return None
    try:
        decl = canonical(from_params(p["path"], p["lowerdir"], p["upperdir"], p["workdir"], p["options"],
                                     p["state"], p.get("datadir")))
        return decl["path"], fstab_line(decl, boot_extras(p["boot"], p["boot_options"]),
                                        host.lowerdir_plus(), fsconfig=fsconfig)
    except OverlayError:
        return None


class Persistence(object):
    """The planned state of fstab and of the overlay's unit, before and after."""

    def __init__(self, p, decl, state, persist, extras, notes, fsconfig=None):
        self.fstab = p["fstab"]
        self.unit_dir = p["unit_dir"]
        self.decl = decl
        self.extras = extras
        self.backup = p["backup"]
        self.unit_name = unit_name_for(decl["path"])
        self.unit_path = os.path.join(self.unit_dir, self.unit_name)
        self.booted = files.systemd_booted()
        self.lowerdir_plus = host.lowerdir_plus()
        # Whether the host's mount(8) uses fsconfig(): decides which persisted forms mount at boot.
        self.fsconfig = fsconfig
        self.links_dir = None
        self.links_wanted = {}
        self.step = None
        writing = state in ("mounted", "present")
        self.keep_fstab = writing and persist == "fstab"
        self.keep_unit = writing and persist == "systemd"
        self.touch = state == "absent" or (writing and persist != "none")

        if self.touch and not os.path.isdir(os.path.dirname(self.fstab) or "."):
            raise OverlayError(
                "fstab: the directory of %s does not exist; give an fstab path in an existing "
                "directory" % self.fstab)
        self.fstab_before = files.read_text(self.fstab)
        self.fstab_after, self.fstab_info = self.fstab_before, {"duplicates": 0, "removed": 0}
        if self.touch and (self.fstab_before is not None or self.keep_fstab):
            self.fstab_after, self.fstab_info = edit_fstab(
                self.fstab_before or "", decl, self.keep_fstab, extras, self.lowerdir_plus, notes, fsconfig)
            if self.fstab_before is None and self.fstab_after == "":
                self.fstab_after = None

        self.unit_before = files.read_text(self.unit_path)
        self.enabled_before = files.is_enabled(self.unit_dir, self.unit_name)
        self.unit_after, self.enabled_after = self.unit_before, self.enabled_before
        if self.keep_unit:
            if self.unit_before is not None and unit_config(self.unit_before) is None:
                raise OverlayError(
                    "unit_dir: %s exists and is not an overlay mount unit; move it away or "
                    "choose another path" % self.unit_path)
            self.unit_after, self.links_dir = unit_plan(
                decl, extras, links_dir_for(p["links_dir"], decl["path"]), self.lowerdir_plus, notes, fsconfig)
            self.enabled_after = p["boot"]
            if self.links_dir:
                _safepath.check_links_root(p["links_dir"])
                layers = decl["lowerdir"] + decl.get("datadir", [])
                self.links_wanted = dict((str(i), layer) for i, layer in enumerate(layers))
        elif self.touch and self.unit_before is not None and unit_config(self.unit_before) is not None:
            self.unit_after, self.enabled_after = None, False

    @property
    def links_changed(self):
        """The unit names its layers through links, and some link is missing or wrong."""
        return any(host.readlink(os.path.join(self.links_dir, name)) != layer
                   for name, layer in self.links_wanted.items())

    @property
    def fstab_changed(self):
        return self.fstab_after != self.fstab_before

    @property
    def unit_changed(self):
        return self.unit_after != self.unit_before

    @property
    def enable_changed(self):
        return self.enabled_after != self.enabled_before

    @property
    def changed(self):
        return self.fstab_changed or self.unit_changed or self.enable_changed or self.links_changed

    @property
    def start_through_systemd(self):
        """Mount by starting the unit, so systemd's view and the kernel's agree."""
        return (self.keep_unit and self.booted
                and os.path.realpath(self.unit_dir) in SYSTEMD_UNIT_PATH)

    def actions(self):
        out = []
        if self.fstab_changed:
            out.append({"action": "write_fstab", "path": self.fstab})
        if self.links_changed:
            out.append({"action": "write_links", "path": self.links_dir})
        if self.unit_changed:
            if self.unit_after is None:
                out.append({"action": "remove_unit", "path": self.unit_path})
            else:
                out.append({"action": "write_unit", "path": self.unit_path})
        if self.enable_changed:
            out.append({"action": "enable_unit" if self.enabled_after else "disable_unit",
                        "path": files.wants_link(self.unit_dir, self.unit_name)})
        if self.changed and self.booted:
            out.append({"action": "daemon_reload", "path": self.unit_dir})
        return out

    def persisted(self, after=True):
        """What fstab and the unit dir hold for this mount point (after the task, by default)."""
        fstab_text = self.fstab_after if after else self.fstab_before
        unit = self.unit_after if after else self.unit_before
        return {
            "fstab": persisted_entries(fstab_text or "", self.decl["path"]),
            "systemd": unit_config(unit, host.readlink) if unit is not None else None,
            "unit_name": self.unit_name,
            "unit_enabled": self.enabled_after if after else self.enabled_before,
        }

    def diffs(self):
        out = []
        if self.fstab_changed:
            out.append({"before_header": self.fstab, "after_header": self.fstab,
                        "before": self.fstab_before or "", "after": self.fstab_after or ""})
        if self.unit_changed:
            out.append({"before_header": self.unit_path, "after_header": self.unit_path,
                        "before": self.unit_before or "", "after": self.unit_after or ""})
        return out

    # Carrying out -----------------------------------------------------

    def write(self, module, result, verified=(), undo=None):
        """Write fstab and the unit as planned, appending each step's undo to ``undo``.

        The list is the caller's, so the steps done before a failing one
        (the failing write included) are still undone. ``self.step`` names
        the step running. ``verified`` holds fstab lines a batch already
        checked with findmnt.
        """
        undo = [] if undo is None else undo
        if self.touch:
            self.step = "write_fstab"
            current = files.read_text(self.fstab)
            if current is not None or self.keep_fstab:
                new, info = edit_fstab(current or "", self.decl, self.keep_fstab, self.extras,
                                       self.lowerdir_plus, fsconfig=self.fsconfig)
                if new != (current or ""):
                    backup_file = None
                    if self.backup and current is not None:
                        self.step = "backup"
                        backup_file = files.backup(self.fstab)
                        self.step = "write_fstab"
                    target = self.decl["path"]

                    def check(tmp):
                        files.findmnt_verify(module, tmp, target)

                    needs_check = self.keep_fstab and fstab_line(
                        self.decl, self.extras, self.lowerdir_plus, fsconfig=self.fsconfig) not in verified
                    try:
                        files.write_atomic(module, self.fstab, new, validate=check if needs_check else None,
                                           step="writing fstab")
                    except Exception:
                        if backup_file:  # fstab did not change: a backup of it would only mislead
                            files.remove_file(backup_file)
                        raise
                    if backup_file:
                        result["backup_file"] = backup_file
                    undo.append(lambda: self._restore_fstab(module, new, current))
        if self.links_changed:
            self.step = "write_links"
            layers = self.decl["lowerdir"] + self.decl.get("datadir", [])
            prepare_links(self.links_dir, layers)
        if self.unit_changed:
            self.step = "remove_unit" if self.unit_after is None else "write_unit"
            undo.append(lambda: self._restore_unit(module))
            if self.unit_after is None:
                files.remove_file(self.unit_path)
            else:
                if not os.path.isdir(self.unit_dir):
                    host.make_dirs(self.unit_dir, 0o755, field="unit_dir")
                files.write_atomic(module, self.unit_path, self.unit_after, step="writing the unit")
        if self.enable_changed:
            self.step = "enable_unit" if self.enabled_after else "disable_unit"
            undo.append(self._restore_enabled)
            if self.enabled_after:
                files.enable(self.unit_dir, self.unit_name)
            else:
                files.disable(self.unit_dir, self.unit_name)
        if undo:
            self.step = "daemon_reload"
            self.reload(module)
        return undo

    def _restore_fstab(self, module, written, original):
        if files.read_text(self.fstab) != written:
            raise OverlayError("it was changed by another program meanwhile and is left as it is now")
        if original is None:
            files.remove_file(self.fstab)
        else:
            files.write_atomic(module, self.fstab, original, step="restoring fstab")

    def _restore_unit(self, module):
        if self.unit_before is None:
            files.remove_file(self.unit_path)
        elif files.read_text(self.unit_path) != self.unit_before:
            files.write_atomic(module, self.unit_path, self.unit_before, step="restoring the unit")

    def _restore_enabled(self):
        if self.enabled_before:
            files.enable(self.unit_dir, self.unit_name)
        else:
            files.disable(self.unit_dir, self.unit_name)

    def reload(self, module):
        if self.booted:
            files.systemctl(module, "daemon-reload")

    def warn_unbooted(self, module, state):
        if self.keep_unit and not self.booted and self.changed:
            module.warn(
                "systemd is not running on this host (chroot, container or image build): wrote %s "
                "and linked it into %s for boot, but skipped daemon-reload and start%s"
                % (self.unit_path, files.WANTS_DIR, "; the overlay was mounted directly"
                   if state == "mounted" else ""))


def run(module, params=None, provided=(), cache=None):
    """Carry out one overlay declaration and return its result dict.

    ``params`` are overlay_mount's parameters (``module.params`` by default);
    the batch module passes one declaration at a time, and in ``provided`` the
    mount points its earlier entries set up, which in check mode do not exist
    yet but may be this overlay's layers, and a ``cache`` dict that keeps the
    host reads (mountinfo, overlay defaults) between entries; it is emptied
    of mountinfo whenever an entry changed something.
    """
    p = module.params if params is None else params
    state = p["state"]
    declared = from_params(p["path"], p["lowerdir"], p["upperdir"], p["workdir"], p["options"], state,
                           p.get("datadir"))
    if host.path_kind(declared["path"]) == "dangling symlink":
        raise OverlayError(
            "path: '%s' is a symlink to nothing; the mount point must be a directory (or missing, "
            "to be created): remove the link or point it at a directory" % declared["path"])
    _safepath.check_declaration(declared, [("fstab", p.get("fstab")), ("unit_dir", p.get("unit_dir")),
                                           ("links_dir", p.get("links_dir"))])
    decl = canonical(declared)
    extras = boot_extras(p["boot"], p["boot_options"])
    cache = {} if cache is None else cache
    if "entries" not in cache:
        cache["entries"] = host.read_mountinfo()
    if "defaults" not in cache:
        cache["defaults"] = host.read_defaults()
    entries, defaults = cache["entries"], cache["defaults"]
    to_create = []
    if state == "mounted" and p.get("method") == "symlinks" and p.get("links_dir"):
        _safepath.check_links_root(p["links_dir"])
    if state in ("mounted", "present"):
        check_layout(decl)
        host.check_kernel_support(decl)
        kinds = dict((path, host.path_kind(path)) for path in
                     [decl["path"]] + decl["lowerdir"] + decl.get("datadir", [])
                     + [d for d in (decl["upperdir"], decl["workdir"]) if d])
        if decl.get("datadir") and resolve(parse_options(decl["options"]), defaults,
                                           decl["upperdir"] is not None)["metacopy"] != "on":
            raise OverlayError(
                "datadir: data-only lower layers need metacopy=on (the kernel refuses them "
                "otherwise); add metacopy=on to options")
        for layer in decl["lowerdir"]:
            if kinds[layer] == "missing" and any(
                    layer == point or layer.startswith(point.rstrip("/") + "/") for point in provided):
                kinds[layer] = "dir"
        upper_mount = work_mount = None
        if decl["upperdir"] is not None:
            upper_mount = mount_containing(entries, decl["upperdir"])
            work_mount = mount_containing(entries, decl["workdir"])
        to_create = check_host(decl, kinds, upper_mount, work_mount, p["create_dirs"],
                               lowers_needed=state == "mounted")
        for layer in decl["lowerdir"]:
            if kinds[layer] == "missing":
                module.warn("lowerdir %s does not exist yet; it must exist before %s is mounted at boot"
                            % (layer, decl["path"]))
    notes = []
    persistence = Persistence(p, decl, state, p["persist"], extras, notes, files.mount_fsconfig(module))
    for note in notes:
        module.warn("%s: %s" % (decl["path"], note))
    if persistence.fstab_info["duplicates"]:
        module.warn("%s has %d more overlay entries for %s; they %s collapsed into one"
                    % (persistence.fstab, persistence.fstab_info["duplicates"], decl["path"],
                       "would be" if module.check_mode else "were"))

    live, stacked, foreign = observe(decl["path"], entries, defaults, p["links_dir"])
    persisted_before = persistence.persisted(after=False)
    live_target = {"mounted": "mounted", "present": None, "unmounted": "unmounted", "absent": "unmounted"}[state]
    if live_target is None:
        plan = make_plan(decl, "unmounted", None, 0, defaults, [], None)
        plan["actions"] = [{"action": "create_dir", "path": path} for path in to_create]
    else:
        plan = make_plan(decl, live_target, live, stacked, defaults, to_create, foreign)
    if any(step["action"] == "mount" for step in plan["actions"]):
        effective = resolve(parse_options(decl["options"]), defaults, decl["upperdir"] is not None)
        if decl["upperdir"] is not None:
            listing = host.workdir_listing(decl["workdir"])
            if listing is not None:
                check_workdir(decl["workdir"], listing)
        facts = host.upper_facts(decl, entries, live, userxattr=effective["userxattr"])
        remedies = check_upper(decl, facts, effective["index"] == "on", p["clear_volatile"])
        at = next(i for i, step in enumerate(plan["actions"]) if step["action"] == "mount")
        plan["actions"][at:at] = remedies
    if persistence.start_through_systemd:
        for step in plan["actions"]:
            if step["action"] == "mount":
                step["via"] = "systemd"
    actions = _ordered(state, plan["actions"], persistence.actions())
    result = {
        "changed": bool(actions),
        "mount": dict(decl),
        "live": public_live(live),
        "persisted": persistence.persisted(after=True) if persistence.changed else None,
        "actions": actions,
        "drift": declared_drift(decl, state, p["persist"], extras, p["boot"], live,
                                persisted_before, defaults),
        "mount_method": None,
    }
    if result["persisted"] is None:
        result["persisted"] = persisted_before
    if module._diff:
        mount_diff = dict(plan["diff"], before_header="%s (live mount)" % decl["path"],
                          after_header="%s (declared)" % decl["path"])
        result["diff"] = [mount_diff] + persistence.diffs()
    if foreign is not None and live_target == "unmounted":
        module.warn("%s is a mount point of %s, not an overlay: left alone" % (decl["path"], foreign))
    if plan["relayer"]:
        _refuse_if_busy(module, decl, plan, live, entries)
    elif module.check_mode and live_target == "unmounted" and live is not None:
        _holders, _subs, text = _users(decl["path"], entries)
        if text:
            module.warn("%s is in use (%s); a real run would fail to unmount it" % (decl["path"], text))
    # Checked before check mode returns, so check mode fails on them too.
    mode, uid, gid = _mode(p["mode"]), _uid(p["owner"]), _gid(p["group"])
    if persistence.touch and not module.check_mode:
        # What a killed run left; only files whose writer is gone, so no lock is needed.
        files.clean_stale_temps(persistence.fstab)
        files.clean_stale_temps(persistence.unit_path)
    if module.check_mode or not actions:
        return result

    cache.pop("entries", None)  # this task changes the host: read mountinfo afresh next time
    created = []
    undo = []
    unmounted_live = None
    wrote = False
    fields = {decl["path"]: "path", decl["upperdir"]: "upperdir", decl["workdir"]: "workdir"}
    with _lock_for(persistence):
        kind = None
        try:
            for step in actions:
                kind = step["action"]
                if kind == "create_dir":
                    created += host.make_dirs(step["path"], mode, uid, gid, fields.get(step["path"], "path"))
                elif kind in PERSIST_ACTIONS:
                    if not wrote:
                        wrote = True
                        persistence.write(module, result, cache.get("verified_lines", ()), undo)
                elif kind == "unmount":
                    _unmount(module, persistence, step["path"])
                    unmounted_live = live
                    _clear_own_volatile_marker(live)
                elif kind == "clear_volatile":
                    host.clear_volatile_marker(step["path"])
                elif kind == "mount":
                    if step.get("via") == "systemd":
                        files.systemctl(module, "start", persistence.unit_name)
                        result["mount_method"] = "systemd"
                    else:
                        result["mount_method"] = host.mount(decl, p["method"], p["links_dir"])
                    result["live"] = public_live(_verify(decl, defaults, p["links_dir"]))
        except Exception as error:  # whatever a step raised, undo the earlier ones
            if kind in PERSIST_ACTIONS and persistence.step:
                kind = persistence.step
            if isinstance(error, OverlayError):
                message, details = error.message, error.details
                if kind != "mount":
                    message = "step %s failed: %s" % (kind, message)
            else:
                message, details = "step %s failed: %s" % (kind, error), {}
            message += _rollback(module, persistence, undo, unmounted_live, decl, created, state)
            raise OverlayError(message, **details)
    persistence.warn_unbooted(module, state)
    result["persisted"] = persistence.persisted(after=True)
    if live_target == "unmounted":
        result["live"] = None
    return result


class _NoLock(object):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _lock_for(persistence):
    """Serialise runs that edit one fstab: from reading it to the mount that follows."""
    if persistence.touch:
        return files.DirectoryLock(os.path.dirname(persistence.fstab) or ".")
    return _NoLock()


def _ordered(state, live_actions, persist_actions):
    """All steps in the order they run: persist before mounting, unmount before unpersisting."""
    if state == "absent":
        return live_actions + persist_actions
    dirs = [a for a in live_actions if a["action"] == "create_dir"]
    rest = [a for a in live_actions if a["action"] != "create_dir"]
    return dirs + persist_actions + rest


def _unmount(module, persistence, path):
    """Unmount the top overlay at ``path``; through systemd when its unit is active."""
    if persistence.booted and persistence.unit_before is not None:
        rc, out, _err = module.run_command(
            [module.get_bin_path("systemctl", required=True), "is-active", persistence.unit_name])
        if out.strip() == "active":
            files.systemctl(module, "stop", persistence.unit_name)
            return
    host.unmount(module, path)


def _clear_own_volatile_marker(live):
    """After our own clean unmount of a volatile overlay its marker is stale: remove it."""
    if live is not None and live["_config"].get("volatile") and live["workdir"]:
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


def _refuse_if_busy(module, decl, plan, live, entries):
    holders, subs, text = _users(decl["path"], entries)
    if not text:
        return
    message = (
        "%s must be unmounted and mounted again to apply %s (a remount cannot change "
        "layers, upper or work), but it is in use: %s. Stop those users, then run again"
        % (decl["path"], ", ".join(d["field"] for d in plan["differences"]), text))
    if module.check_mode:
        module.warn(message)
        return
    raise OverlayError(message, holders=holders, submounts=subs,
                       drift=plan["differences"], live=public_live(live))


def _verify(decl, defaults, links_root=None):
    """Read mountinfo again; unmount and fail unless the kernel mounted exactly ``decl``."""
    live, _count, foreign = observe(decl["path"], host.read_mountinfo(), defaults, links_root)
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


def _rollback(module, persistence, undo, unmounted_live, decl, created, state):
    """Undo the steps that ran before a failure; return what to add to the error."""
    notes = []
    for step in reversed(undo):
        try:
            step()
        except Exception as error:  # pylint: disable=broad-except
            notes.append("undoing a persistence step failed: %s" % (error.message if isinstance(error, OverlayError) else error))
    if undo and not notes:
        notes.append("fstab and unit files were restored")
        try:
            persistence.reload(module)
        except OverlayError as error:
            notes.append(error.message)
    if unmounted_live is not None and state == "mounted":
        notes.append(_restore_mount(unmounted_live, decl["path"]))
    host.remove_empty_dirs(created)
    return ("; " + "; ".join(notes)) if notes else ""


def _restore_mount(old, path):
    """Try to put back the overlay that was unmounted for a re-layering."""
    previous = {
        "path": path, "lowerdir": old["lowerdir"], "upperdir": old["upperdir"],
        "workdir": old["workdir"], "options": old["options"],
    }
    try:
        host.mount(previous)
    except OverlayError as error:
        return "putting back the previous overlay also failed: %s" % error.message
    return "the previous overlay was mounted again"
