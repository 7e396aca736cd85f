# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What an overlay_upper task acts on: the overlay's declaration, what the host shows, what a run would do.

:func:`observe` reads, refuses what the reads rule out, and returns an
:class:`Intent`; ``upper_life`` acts on it. Reads only.
"""

import datetime
import os
import posixpath
from typing import Any, Dict, List, Mapping, Optional

from ansible_collections.overlayfs.mounts.plugins.module_utils._compare.live import observe as observe_live, public_live
from ansible_collections.overlayfs.mounts.plugins.module_utils._converge.entry import Entry, observe as observe_entry
from ansible_collections.overlayfs.mounts.plugins.module_utils._converge.plan import check_hands_off
from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.mountinfo import submounts
from ansible_collections.overlayfs.mounts.plugins.module_utils._host import upper_journal
from ansible_collections.overlayfs.mounts.plugins.module_utils._host.namespaces import describe as describe_holders
from ansible_collections.overlayfs.mounts.plugins.module_utils._host.upper_safety import find_shared
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.overlay_options import parse_options, resolve
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.paths import at_or_inside
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.upper_spec import backup_choice, declaration_params
from ansible_collections.overlayfs.mounts.plugins.module_utils._persist import registry

_PERSISTED_KEYS = ("lowerdir", "datadir", "upperdir", "workdir")


def partial_of(layer: str) -> str:
    """Where a commit writes the new layer before it is complete: a hidden sibling of ``layer``."""
    parent, name = posixpath.split(layer.rstrip("/"))
    return posixpath.join(parent, ".%s.overlay-commit" % name)


def declaration(session: Any, params: Mapping[str, Any]) -> Dict[str, Any]:
    """``overlay_mount`` parameters for the overlay: the task's, or (only ``path`` given) what persists it.

    ``persist`` and ``boot`` left out mean: as persisted now (an fstab line,
    a unit, neither).
    """
    declared = declaration_params(params)
    needed = any(declared[key] is None for key in ("lowerdir", "persist", "boot"))
    found = _persisted(declared) if needed else None  # (the converge reads the persisted entry itself)
    if declared["lowerdir"] is None:
        declared = _from_persisted(session, declared, found)
    if declared["persist"] is None:
        declared["persist"] = found[0] if found else "none"
    if declared["boot"] is None:
        declared["boot"] = found[2] if found else True
    for key, value in (("options", []), ("boot_options", []), ("datadir", None)):
        if declared.get(key) is None:
            declared[key] = value
    return dict(declared, state="mounted", create_dirs=False, backup=False, clear_volatile=False,
                mode=None, owner=None, group=None)


def _persisted(declared: Mapping[str, Any]) -> Optional[tuple]:
    """``(persist, config, boot)`` of the fstab line or unit for ``path``, or None."""
    path = posixpath.normpath(declared["path"])
    scanned = registry.scan({"fstab": [declared["fstab"]], "systemd": [declared["unit_dir"]]})
    for name in ("systemd", "fstab"):
        for configs in scanned[name].values():
            for config in configs.get(path, ()):
                if name == "fstab":
                    return (name, config, "noauto" not in (config.get("boot_options") or []))
                return (name, config, bool(config.get("unit_targets")))
    return None


def _from_persisted(session: Any, declared: Dict[str, Any], found: Optional[tuple]) -> Dict[str, Any]:
    """The declaration of the overlay at ``path`` from its fstab line or unit, else from its live mount."""
    if found is not None:
        config = found[1]
        source = dict(config, options=list(config.get("options") or []) + list(config.get("flags") or []),
                      boot_options=[o for o in config.get("boot_options") or [] if o != "noauto"])
    else:
        source = _live_config(session, declared["path"])
        declared["persist"] = declared["persist"] or "none"
    for key in _PERSISTED_KEYS + ("options", "boot_options"):
        if declared.get(key) in (None, []) and source.get(key) is not None:
            declared[key] = source[key]
    return declared


def _live_config(session: Any, path: str) -> Dict[str, Any]:
    seen = observe_live(posixpath.normpath(path), session.mountinfo(), session.defaults(), None,
                        exists=session.host.exists, realpath=session.realpath)
    if seen.live is None:
        raise OverlayError("path: no fstab line, unit or live overlay for %s; give lowerdir, upperdir and workdir "
                           "(the overlay's declaration, as for overlayfs.mounts.overlay_mount)" % path)
    live = seen.live
    return {"lowerdir": live["lowerdir"], "datadir": live.get("datadir") or [], "upperdir": live["upperdir"],
            "workdir": live["workdir"], "options": list(live.get("options") or []) + list(live.get("flags") or [])}


def observe(session: Any, params: Mapping[str, Any]) -> "Intent":
    """Read the overlay and its upper dir; refuse what makes a reset or commit unsafe (in check mode too)."""
    backup = backup_choice(params.get("backup"))
    spelled = declaration(session, params)
    entry = Entry(registry.declare(spelled, session.backends), session)
    observe_entry(session, entry)
    check_hands_off(entry.decl.path, entry.seen.live)
    if not entry.decl.writable:
        raise OverlayError("upperdir: the overlay at %s has no upper dir, so there is nothing to %s; overlay_upper "
                           "acts on a writable overlay" % (entry.decl.path, "reset" if params["state"] == "reset" else "commit"))
    return Intent(session, params, spelled, entry, backup)


class Intent:
    """One overlay_upper task, observed: the declaration, the live overlay, and what a run would do.

    ``decl`` is the canonical declaration (``entry.decl``), ``spelled`` the
    ``overlay_mount`` parameters as the task spells them (what is persisted
    and returned). ``done`` is the result of a task with nothing to do (None:
    there is work). ``journal`` is what a killed run left (None: nothing).
    """

    def __init__(self, session: Any, params: Mapping[str, Any], spelled: Dict[str, Any], entry: Any, backup: Any) -> None:
        self.session, self.state, self.spelled, self.entry = session, params["state"], spelled, entry
        decl = self.decl = entry.decl
        self.path, self.upper, self.work = decl.path, decl.upperdir, decl.workdir
        self.live = entry.seen.live.live
        self.mounted = self.live is not None
        self.staging = upper_journal.staging_dir(self.upper)
        self.journal = upper_journal.read_journal(self.staging)
        self.layer_spelled = params.get("layer")
        self.layer = session.realpath(params["layer"]) if params.get("layer") else None
        self.partial_layer = partial_of(self.layer) if self.layer else None
        self.backup = self._backup_path(backup)
        effective = resolve(parse_options(decl.options), session.defaults(), True)
        self.xattr_prefix = "user.overlay." if effective["userxattr"] else "trusted.overlay."
        self.identities = {"upperdir": upper_journal.identity(self.upper), "workdir": upper_journal.identity(self.work)}
        self.new_lowerdir = ([self.layer_spelled] if self.layer_spelled else []) + list(spelled["lowerdir"])
        self.done = None if self.journal is not None else self._nothing_to_do()

    def _backup_path(self, backup: Any) -> Optional[str]:
        if backup is False:
            return None
        if backup is True:
            stamp = datetime.datetime.now().strftime("%Y%m%dT%H%M%S")
            return "%s.backup-%s" % (self.upper.rstrip("/"), stamp)
        return self.session.realpath(backup)

    def result(self) -> Dict[str, Any]:
        """The result of a task that changes nothing (the run adds to it)."""
        # No top-level "path": AnsibleModule would add that path's file attributes (and overwrite "state").
        return {"changed": False, "mount_point": self.spelled["path"], "upperdir": self.spelled["upperdir"],
                "workdir": self.spelled["workdir"], "lowerdir": list(self.spelled["lowerdir"]), "layer": self.layer_spelled,
                "backup_path": None, "recovered": None, "actions": [], "live": public_live(self.live)}

    def _nothing_to_do(self) -> Optional[Dict[str, Any]]:
        """The result when the task has nothing to do; None when it has. Refuses a live overlay not as declared."""
        empty = _is_empty(self.upper)
        if self.live is not None:
            layers = [d["field"] for d in self.entry.seen.differences if d["field"] in _PERSISTED_KEYS]
            if layers:
                committed = self.layer is not None and self.live["lowerdir"] == [self.layer] + list(self.decl.lowerdir)
                if self.state == "committed" and empty and committed and layers == ["lowerdir"]:
                    return {"lowerdir": self.new_lowerdir}  # this commit was made: only the declaration lags behind
                raise OverlayError(_not_as_declared(self, layers))
        if empty:
            return {}
        if self.state == "committed":
            self._check_layer()
        if self.backup is not None:
            self._check_new_dir("backup", self.backup)
        return None

    def _check_layer(self) -> None:
        """Refuse a layer dir that is not new (or empty), or lies in the overlay's own dirs."""
        if self.layer in self.decl.lowerdir or self.layer in self.decl.datadir:
            raise OverlayError("layer: %s is a lower layer of %s already; name a new dir for the committed changes"
                               % (self.layer_spelled, self.path))
        self._check_new_dir("layer", self.layer, empty_ok=True)

    def _check_new_dir(self, field: str, path: str, empty_ok: bool = False) -> None:
        owned = [self.path, self.upper, self.work] + list(self.decl.lowerdir) + list(self.decl.datadir)
        for dir_ in owned:
            if at_or_inside(path, dir_) or at_or_inside(dir_, path):
                raise OverlayError("%s: %s is at, inside or around %s, a dir of the overlay at %s; name a dir "
                                   "outside its mount point, layers, upper and work dir" % (field, path, dir_, self.path))
        if os.path.lexists(path) and not (empty_ok and os.path.isdir(path) and not os.path.islink(path) and _is_empty(path)):
            raise OverlayError("%s: %s exists already; name a new dir%s (nothing was changed)"
                               % (field, path, " (or an empty one)" if empty_ok else ""))

    def refuse_if_held(self) -> None:
        """Refuse while anything uses the overlay or its upper or work dir, in any mount namespace."""
        session, decl = self.session, self.decl
        entries = session.mountinfo()
        mounted = next((e for e in entries if e.mount_id == self.live["mount_id"]), None) if self.live else None
        mine = {path: session.host.identity(path) for path in (self.upper, self.work)}
        found = session.host.scan_holders(decl.path, entries, mounted, mine, view=session.namespaces(),
                                          others=session.other_overlays())
        subs = [e.mount_point for e in submounts(entries, decl.path)] if mounted is not None else []
        here = find_shared([self.upper, self.work], entries, [mounted.mount_id] if mounted is not None else [])
        words = [describe_holders(found)] + (["submounts " + ", ".join(subs)] if subs else [])
        if here is not None:
            words.append("the overlay at %s in this mount namespace, which uses the same upper or work dir" % here["path"])
        text = "; ".join(w for w in words if w)
        if text:
            raise OverlayError("%s: the overlay at %s is in use: %s; nothing was changed. Stop those processes and "
                               "unmount those mounts, then run again" % (self.state, self.path, text),
                               holders=found["processes"], elsewhere=found["elsewhere"], shared=found["shared"],
                               submounts=subs)

    def planned_actions(self) -> List[Dict[str, Any]]:
        """What a run does, in order."""
        steps = [{"action": "unmount", "path": self.path}] if self.mounted else []
        if self.state == "committed":
            steps.append({"action": "write_layer", "path": self.layer_spelled})
        steps.append({"action": "swap_work", "path": self.spelled["workdir"]})
        if self.state == "committed" and self.spelled["persist"] != "none":
            steps.append({"action": "persist", "path": self.path})
        steps.append({"action": "swap_upper", "path": self.spelled["upperdir"]})
        if self.mounted:
            steps.append({"action": "mount", "path": self.path})
        if self.backup is not None:
            steps.append({"action": "backup", "path": self.backup})
        steps.append({"action": "remove_old_upper", "path": self.staging})
        return steps

    def journal_record(self) -> Dict[str, Any]:
        """What the journal keeps: enough for the next run to finish this one from the host alone."""
        return {"state": self.state, "path": self.spelled["path"], "spelled": self.spelled, "mounted": self.mounted,
                "layer": self.layer, "new_lowerdir": self.new_lowerdir, "backup": self.backup,
                "identities": {k: list(v) if v else None for k, v in self.identities.items()}}

    def spare(self, kind: str) -> str:
        """The staging name of the old (after the swap) or the empty (before it) upper or work dir."""
        return posixpath.join(self.staging, kind)

    def unmount(self) -> None:
        """Unmount the overlay: through its unit when systemd has it active, else directly."""
        session = self.session
        if not any(backend.stop(session.module) for backend in self.entry.backends):
            session.host.unmount(session.module, self.path)
        session.changed()

    def after_params(self, record: Mapping[str, Any], mounting: bool = True) -> Optional[Dict[str, Any]]:
        """``overlay_mount`` parameters for after the swap; None: nothing to do.

        ``mounting``: mount the overlay again when it was mounted (and persist
        as declared); else only persist a commit's new layers (``present``).
        """
        spelled = dict(record["spelled"])
        if record["state"] == "committed":
            spelled["lowerdir"] = list(record["new_lowerdir"])
        if mounting:
            return dict(spelled, state="mounted") if record["mounted"] else None
        if record["state"] == "committed" and spelled["persist"] != "none":
            return dict(spelled, state="present")
        return None


def resumed(session: Any, intent: Intent, journal: Mapping[str, Any]) -> Intent:
    """``intent`` as the killed run in ``journal`` saw it: its declaration, layer, backup and mount state."""
    again = Intent.__new__(Intent)
    again.__dict__.update(intent.__dict__)
    again.state, again.spelled, again.mounted = journal["state"], dict(journal["spelled"]), journal["mounted"]
    again.layer, again.backup, again.new_lowerdir = journal.get("layer"), journal.get("backup"), journal["new_lowerdir"]
    again.identities = {k: tuple(v) if v else None for k, v in journal["identities"].items()}
    return again


def _is_empty(path: str) -> bool:
    with os.scandir(path) as entries:
        return next(entries, None) is None


def _not_as_declared(intent: Intent, fields: List[str]) -> str:
    live = intent.live
    shown = ", ".join("%s %s" % (field, live.get(field)) for field in fields)
    return ("%s: the live overlay at %s is not the declared one (%s); nothing was changed. Make the declaration say "
            "what is mounted (or converge it with overlayfs.mounts.overlay_mount) first" % (intent.state, intent.path, shown))
