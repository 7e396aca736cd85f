# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet drift report: rows from every host, a summary per host, Markdown. Pure."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

COLUMNS = ("host", "path", "field", "declared", "live", "persisted")


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, (list, dict, bool)):
        text = json.dumps(value, sort_keys=True)
    else:
        text = str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def build(hosts):
    """The report of ``{host: {"declared": drift rows or None, "overlays": info list or None}}``.

    Declared drift (overlay_mounts in check mode) covers the declared mount
    points; for every other overlay, the live-versus-persisted drift that
    overlay_mount_info found is reported. Declared entries that could not be
    checked (``errors``: ``{path, msg}``) become rows with the field
    ``error``. A host without data failed or was unreachable, and says so.
    """
    report = {"hosts": [], "rows": []}
    for host in sorted(hosts):
        data = hosts[host] or {}
        declared = data.get("declared")
        overlays = data.get("overlays")
        rows = []
        declared_paths = set()
        if declared is not None:
            for row in declared:
                declared_paths.add(row["path"])
                rows.append(dict(row))
            declared_paths.update(data.get("declared_paths") or [])
        for failure in data.get("errors") or []:
            rows.append({"path": failure.get("path"), "field": "error", "declared": None,
                         "live": failure.get("msg"), "persisted": None})
        for overlay in overlays or []:
            if overlay["path"] in declared_paths:
                continue
            for row in overlay.get("drift") or []:
                rows.append(dict(row, path=overlay["path"]))
        for row in rows:
            row["host"] = host
        summary = {
            "host": host,
            "reachable": overlays is not None or declared is not None,
            "overlays": len(overlays or []),
            "declared": len(data.get("declared_paths") or []) if declared is not None else None,
            "drifted_overlays": len(set(r["path"] for r in rows)),
            "drifted_fields": len(rows),
        }
        report["hosts"].append(summary)
        report["rows"].extend(dict((c, row.get(c)) for c in COLUMNS) for row in rows)
    return report


def summary_line(host):
    if not host["reachable"]:
        return "%s: no data (the host failed or was unreachable)" % host["host"]
    declared = "" if host["declared"] is None else ", %d declared" % host["declared"]
    if not host["drifted_fields"]:
        return "%s: in sync (%d overlays%s)" % (host["host"], host["overlays"], declared)
    return "%s: %d drifted field(s) on %d overlay(s) (%d overlays%s)" % (
        host["host"], host["drifted_fields"], host["drifted_overlays"], host["overlays"], declared)


def markdown(report, title="Overlay drift report"):
    """The report as a Markdown document: a summary line per host, then one table."""
    lines = ["# %s" % title, "", "## Summary", ""]
    lines += ["- " + summary_line(h) for h in report["hosts"]]
    lines += ["", "## Drift", ""]
    if not report["rows"]:
        lines.append("No drift: every host matches its declaration and its persisted overlays.")
    else:
        lines.append("| " + " | ".join(COLUMNS) + " |")
        lines.append("|" + "---|" * len(COLUMNS))
        for row in report["rows"]:
            lines.append("| " + " | ".join(_cell(row[c]) for c in COLUMNS) + " |")
    return "\n".join(lines) + "\n"
