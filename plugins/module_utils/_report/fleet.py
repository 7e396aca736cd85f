# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet drift report: rows from every host, a summary per host, Markdown. Pure."""

import json
import re
from typing import Any, Dict, Iterable, List, Mapping, Optional

from ansible_collections.overlayfs.mounts.plugins.module_utils._report.printable import returnable, visible

# declared_path: the path as declared, when it is spelled through a symlink (else None).
COLUMNS = ("engine", "host", "path", "field", "declared", "live", "persisted", "declared_path")

# Own overlays first: those this collection manages, then overlays of no
# known owner, then the container engines' (a container host has hundreds),
# then the system's own overlays and fuse-overlayfs mounts.
ENGINE_ORDER = ("overlayfs.mounts", "none", "docker", "containers-storage",
                "systemd-sysext", "systemd-confext", "composefs", "fuse-overlayfs")
ENGINE_TITLES = {
    "overlayfs.mounts": "Overlays of this collection",
    "none": "Other overlays (no known owner)",
    "docker": "Docker containers",
    "containers-storage": "Podman / containers-storage containers",
    "systemd-sysext": "systemd-sysext system extensions",
    "systemd-confext": "systemd-confext configuration extensions",
    "composefs": "composefs images",
    "fuse-overlayfs": "fuse-overlayfs mounts (not kernel overlays)",
}
DECLARED = "overlayfs.mounts"


def engine_rank(engine: Optional[str]) -> int:
    """Where ``engine`` sorts in the report (ENGINE_ORDER; unknown engines last)."""
    return ENGINE_ORDER.index(engine) if engine in ENGINE_ORDER else len(ENGINE_ORDER)


def _engine(overlay):
    return overlay.get("engine") or "none"


# Markdown punctuation that would end a cell or start a code span or an HTML
# tag, and a backslash that would escape the next character.
_MARKDOWN_SPECIAL = re.compile(r"[|`<]|\\(?=[!-/:-@\[-`{-~])")
# What JSON (without ensure_ascii) leaves raw but no one should see raw.
_JSON_RAW = re.compile(r"[\x7f-\x9f\ud800-\udfff]")


def _markdown_text(text):
    """``text`` for a Markdown line or table cell: control characters visible, the table kept intact."""
    return _MARKDOWN_SPECIAL.sub(lambda m: "\\" + m.group(), visible(text))


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, (list, dict, bool)):
        # JSON escapes C0 controls itself; DEL, C1 and lone surrogates as JSON escapes too.
        text = json.dumps(value, sort_keys=True, ensure_ascii=False)
        text = _JSON_RAW.sub(lambda m: "\\u%04x" % ord(m.group()), text)
    else:
        text = str(value)
    return _markdown_text(text)


def _path_cell(row):
    path = _cell(row.get("path"))
    if row.get("declared_path"):
        path += " (declared as %s)" % _cell(row["declared_path"])
    return path


def _mount_points(data, overlays):
    """``{declared spelling: mount point}`` of one host: what the playbook found, and info's aliases."""
    points = {}
    for overlay in overlays or []:
        for alias in overlay.get("aliases") or ():
            points[alias] = overlay["path"]
    for spelled, point in returnable(data.get("declared_mount_points") or {}).items():
        if point:
            points[spelled] = point
    return points


def _declared_rows(data, points):
    """This collection's rows of one host (declared drift, entries that failed), and its declared mount points."""
    rows, declared_paths = [], set()

    def located(row, path):
        point = points.get(path, path)
        return dict(row, path=point, declared_path=path if point != path else None, engine=DECLARED)

    if data.get("declared") is not None:
        for row in returnable(data["declared"]):
            declared_paths.add(points.get(row["path"], row["path"]))
            rows.append(located(row, row["path"]))
        declared_paths.update(points.get(p, p) for p in returnable(data.get("declared_paths") or []))
    for failure in returnable(data.get("errors") or []):
        rows.append(located({"field": "error", "declared": None, "live": failure.get("msg"), "persisted": None},
                            failure.get("path")))
    return rows, declared_paths


# What a host's data says about the host: read, or why not.
STATUSES = ("ok", "unreachable", "failed")
# What drift_report_fail_on may name.
FAIL_ON = ("drift", "unreachable", "failed")
NO_DATA = "no data was gathered from this host"


def _status(data):
    """``(status, msg)`` of one host's data: ``ok``, or ``unreachable``/``failed`` with Ansible's message."""
    if data is None:
        return "failed", NO_DATA
    status = data.get("status") or "ok"
    if status not in STATUSES:
        raise ValueError("status must be one of %s, not %r" % (", ".join(STATUSES), status))
    msg = data.get("msg")
    if status != "ok":
        msg = returnable(str(msg)) if msg not in (None, "") else "no message from Ansible"
    return status, None if status == "ok" else msg


def host_data(read: Optional[Mapping[str, Any]]) -> Optional[Dict[str, Any]]:
    """One host's data for :func:`build` from its registered result of overlay_mounts or overlay_mount_info.

    ``read`` is the result as Ansible registered it: that of a host it could
    not reach (``unreachable``), of a run that could not list the host's
    overlays (``failed``, with the module's message), or of a run that
    listed them (``overlay_mounts``), with overlay_mounts' declared entries
    (``overlays``) and their drift. A host that declared no overlay has no
    declared part (None). None (no result: the host never ran the task)
    stays None.
    """
    if read is None:
        return None
    if read.get("unreachable"):
        return {"status": "unreachable", "msg": read.get("msg") or ""}
    if "overlay_mounts" not in read:
        return {"status": "failed", "msg": read.get("msg") or ""}
    entries = read.get("overlays")
    if entries is None:  # overlay_mount_info's, or a list refused as a whole: its message is an error row
        errors = [{"path": "*", "msg": read["msg"]}] if read.get("msg") else []
    else:
        errors = [entry for entry in entries if "failed" in entry]
    return {
        "status": "ok",
        "msg": None,
        "overlays": read["overlay_mounts"],
        "declared": read.get("drift") or [] if entries else None,
        "declared_paths": [entry["path"] for entry in entries or []],
        # Where each declared path leads on this host: a path through a symlink names the overlay at its target.
        "declared_mount_points": {entry["path"]: (entry.get("mount") or {}).get("path") for entry in entries or []},
        "errors": errors,
    }


def _host_rows(data, wanted):
    """``(rows, counts)`` of one reachable host: its drifted fields and its overlays per engine."""
    declared = data.get("declared")
    overlays = data.get("overlays")
    rows, declared_paths = _declared_rows(data, _mount_points(data, overlays))
    counts = {}
    for overlay in overlays or []:
        engine = DECLARED if overlay["path"] in declared_paths else _engine(overlay)
        if wanted is None or engine in wanted:
            counts[engine] = counts.get(engine, 0) + 1
        if overlay["path"] in declared_paths:
            continue
        for row in overlay.get("drift") or []:
            rows.append(dict(row, path=overlay["path"], declared_path=None, engine=engine))
    if wanted is not None:
        rows = [r for r in rows if r["engine"] in wanted]
    if declared is None and overlays is None:
        counts = {}
    return rows, counts


def build(hosts: Mapping[str, Optional[Mapping[str, Any]]], engines: Optional[Iterable[str]] = None) -> Dict[str, Any]:
    """The report of ``{host: {"declared": drift rows or None, "overlays": info list or None, ...}}``.

    Declared drift (overlay_mounts in check mode) covers the declared mount
    points; for every other overlay, the live-versus-persisted drift that
    overlay_mount_info found is reported. Declared entries that could not be
    checked (``errors``: ``{path, msg}``) become rows with the field
    ``error``. A host's ``status`` is ``ok`` (the default), ``unreachable``
    or ``failed``, with ``msg`` what Ansible reported; such a host has no
    rows, and a host without data (None) failed with no message.

    A mount point is an identity: ``declared_mount_points`` (``{path as
    declared: mount point}``, overlay_mounts' ``mount.path``) and the
    ``aliases`` of overlay_mount_info's entries map a declared path spelled
    through a symlink to the overlay's mount point, so that each overlay has
    one set of rows, under its mount point, with ``declared_path`` the
    spelling of the declaration (None when it is the mount point). Declared
    data is escaped as overlay_mount_info's results are (``printable``).

    Each row and overlay belongs to an ``engine`` (overlay_mount_info's
    field; declared overlays are this collection's): rows come grouped by
    it, this collection's first (ENGINE_ORDER), and ``engines`` (a list)
    keeps only those engines' rows and overlay counts. ``summary`` counts
    the fleet: hosts in sync, drifted, unreachable and failed.
    """
    wanted = set(engines) if engines else None
    report = {"hosts": [], "rows": [], "engines": sorted(wanted, key=engine_rank) if wanted else None}
    rows_all = []
    for host in sorted(hosts):
        data = hosts[host]
        status, msg = _status(data)
        rows, counts = _host_rows(data, wanted) if status == "ok" else ([], {})
        for row in rows:
            row["host"] = host
        declared = data.get("declared") if status == "ok" else None
        report["hosts"].append({
            "host": host,
            "status": status,
            "msg": msg,
            "reachable": status != "unreachable" and data is not None,
            "overlays": sum(counts.values()),
            "engines": dict(counts),
            "declared": len(data.get("declared_paths") or []) if declared is not None else None,
            "drifted_overlays": len({r["path"] for r in rows}),
            "drifted_fields": len(rows),
        })
        rows_all.extend(rows)
    # Stable: within one engine, hosts in order and each host's rows as found.
    rows_all.sort(key=lambda r: engine_rank(r["engine"]))
    report["rows"] = [{c: row.get(c) for c in COLUMNS} for row in rows_all]
    report["summary"] = fleet_summary(report["hosts"])
    return report


def host_status(host: Mapping[str, Any]) -> str:
    """``in sync``, ``drift``, ``unreachable`` or ``failed``: one host of :func:`build`'s report."""
    status = host.get("status") or ("ok" if host.get("reachable") else "failed")
    if status != "ok":
        return status
    return "drift" if host.get("drifted_fields") else "in sync"


def fleet_summary(hosts: Iterable[Mapping[str, Any]]) -> Dict[str, int]:
    """Counts over :func:`build`'s ``hosts``: hosts by state, overlays, drifted overlays and fields."""
    hosts = list(hosts)
    states = [host_status(h) for h in hosts]
    return {
        "hosts": len(hosts),
        "in_sync": states.count("in sync"),
        "drifted": states.count("drift"),
        "unreachable": states.count("unreachable"),
        "failed": states.count("failed"),
        "overlays": sum(h.get("overlays") or 0 for h in hosts),
        "drifted_overlays": sum(h.get("drifted_overlays") or 0 for h in hosts),
        "drifted_fields": sum(h.get("drifted_fields") or 0 for h in hosts),
    }


def summary_text(summary: Mapping[str, int]) -> str:
    """One line for the fleet: ``4 hosts: 1 in sync, 1 drifted, 1 unreachable, 1 failed``."""
    parts = ["%d in sync" % summary["in_sync"], "%d drifted" % summary["drifted"]]
    parts += ["%d %s" % (summary[k], k) for k in ("unreachable", "failed") if summary.get(k)]
    return "%d host(s): %s" % (summary["hosts"], ", ".join(parts))


def gate(report: Mapping[str, Any], fail_on: Iterable[str]) -> List[str]:
    """Why the play must fail: one sentence per kind in ``fail_on`` (``drift``, ``unreachable``, ``failed``) found.

    An empty list when nothing named was found. Raises ValueError naming
    the wrong value when ``fail_on`` names something else.
    """
    fail_on = list(fail_on)
    wrong = [k for k in fail_on if k not in FAIL_ON]
    if wrong:
        raise ValueError("drift_report_fail_on must be a list of %s, not %r" % (", ".join(FAIL_ON), wrong))
    reasons = []
    by_state = {}
    for host in report["hosts"]:
        by_state.setdefault(host_status(host), []).append(_markdown_text(str(host["host"])))
    if "drift" in fail_on and by_state.get("drift"):
        reasons.append("drift on %d host(s): %s" % (len(by_state["drift"]), ", ".join(by_state["drift"])))
    for state in ("unreachable", "failed"):
        if state in fail_on and by_state.get(state):
            reasons.append("%d host(s) %s: %s" % (len(by_state[state]), state, ", ".join(by_state[state])))
    return reasons


def _by_engine(host):
    counts = host.get("engines") or {}
    if not counts or list(counts) == ["none"]:
        return ""
    return ": " + ", ".join("%d %s" % (counts[e], _markdown_text(str(e))) for e in sorted(counts, key=engine_rank))


def summary_line(host: Mapping[str, Any]) -> str:
    """One line for a host's summary in :func:`build`'s report: in sync, drifted, unreachable or failed, and why.

    Names and messages are shown as in the Markdown (control characters as ``\\NNN``).
    """
    name = _markdown_text(str(host["host"]))
    state = host_status(host)
    if state in ("unreachable", "failed"):
        return "%s: %s: %s" % (name, state, _markdown_text(str(host.get("msg") or NO_DATA)))
    declared = "" if host["declared"] is None else ", %d declared" % host["declared"]
    declared = _by_engine(host) + declared
    if not host["drifted_fields"]:
        return "%s: in sync (%d overlays%s)" % (name, host["overlays"], declared)
    return "%s: %d drifted field(s) on %d overlay(s) (%d overlays%s)" % (
        name, host["drifted_fields"], host["drifted_overlays"], host["overlays"], declared)


def _fit(text, width):
    return text if len(text) <= width else text[:width - 3] + "..."


def console_lines(report: Mapping[str, Any], width: int = 68) -> List[str]:
    """The report for a terminal: the fleet's counts, then one line per host, each at most ``width`` characters.

    A host line says ``in sync`` or ``DRIFT`` with its overlays (declared
    ones among them) and the names of the drifted fields, or ``UNREACHABLE``/``FAILED``
    with Ansible's message. Text
    from the hosts shows control characters as ``\\NNN``; a line too long
    ends in ``...`` (the files hold it whole).
    The default width leaves room for the indent and quotes that
    ansible.builtin.debug adds to each item of a list on 80 columns.
    """
    fields = {}
    for row in report["rows"]:
        names = fields.setdefault(row["host"], [])
        if row["field"] not in names:
            names.append(row["field"])
    lines = [_fit(summary_text(report.get("summary") or fleet_summary(report["hosts"])), width)]
    for host in report["hosts"]:
        name = visible(str(host["host"]))
        state = host_status(host)
        if state in ("unreachable", "failed"):
            msg = visible(" ".join(str(host.get("msg") or NO_DATA).split()))
            lines.append(_fit("%s: %s: %s" % (name, state.upper(), msg), width))
            continue
        declared = "" if host.get("declared") is None else " (%d declared)" % host["declared"]
        if not host["drifted_fields"]:
            text = "%s: in sync, %d overlays%s" % (name, host["overlays"], declared)
        else:
            text = "%s: DRIFT, %d overlays%s; drifted: %s" % (
                name, host["overlays"], declared, ", ".join(visible(str(f)) for f in fields.get(host["host"], [])))
        lines.append(_fit(text, width))
    return lines


def markdown(report: Mapping[str, Any], title: str = "Overlay drift report") -> str:
    """The report as a Markdown document: a summary line per host, then one table per engine.

    Every text from the hosts is escaped: control characters show as
    ``\\NNN`` (as bytes that are not UTF-8 already do), and ``|``, a backtick,
    ``<`` and a backslash before punctuation carry a backslash, so that each
    row stays one table row. A path declared through a symlink shows as
    ``MOUNT POINT (declared as PATH)``.
    """
    lines = ["# %s" % title, ""]
    if report.get("engines"):
        lines += ["Only the overlays of: %s." % ", ".join(_markdown_text(str(e)) for e in report["engines"]), ""]
    lines += ["## Summary", ""]
    if report["hosts"]:
        lines += [summary_text(report.get("summary") or fleet_summary(report["hosts"])) + ".", ""]
    lines += ["- " + summary_line(h) for h in report["hosts"]]
    lines += ["", "## Drift", ""]
    if not report["rows"]:
        lines.append("No drift: every host matches its declaration and its persisted overlays.")
    columns = [c for c in COLUMNS if c not in ("engine", "declared_path")]
    groups = []
    for row in report["rows"]:
        engine = row.get("engine") or "none"
        if not groups or groups[-1][0] != engine:
            groups.append((engine, []))
        groups[-1][1].append(row)
    for engine, rows in groups:
        if len(groups) > 1 or engine != DECLARED:
            lines += ["### %s" % ENGINE_TITLES.get(engine, _markdown_text(str(engine))), ""]
        lines.append("| " + " | ".join(columns) + " |")
        lines.append("|" + "---|" * len(columns))
        for row in rows:
            lines.append("| " + " | ".join(_path_cell(row) if c == "path" else _cell(row.get(c)) for c in columns) + " |")
        lines.append("")
    if groups:
        lines.pop()
    return "\n".join(lines) + "\n"
