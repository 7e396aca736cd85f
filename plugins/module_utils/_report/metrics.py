# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A host's overlay state as a Prometheus textfile-collector file. Pure.

The text follows the Prometheus text exposition format (version 0.0.4), as
node_exporter's textfile collector reads it: one ``# HELP`` and one
``# TYPE`` line per metric family, then its samples, a newline at the end.
Every metric is a gauge (a value of the last check, none counts up), so no
name ends in ``_total``; the time of the check is
``overlayfs_mounts_last_check_timestamp_seconds``.

Paths in label values are shown as overlay_mount_info and the drift report
show them (``printable.returnable``: a byte that is not UTF-8 as ``\\NNN``),
then escaped as the format asks: backslash, double quote and newline.
"""

import math
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from ansible_collections.overlayfs.mounts.plugins.module_utils._report.printable import returnable

PREFIX = "overlayfs_mounts_"
# What overlay_mount_info calls overlays of this collection, as the drift report does.
DECLARED_ENGINE = "overlayfs.mounts"
STATES = ("mounted", "present", "unmounted", "absent")

# name (without PREFIX): HELP text. All are gauges.
FAMILIES = (
    ("declared", "Overlays declared for this host, by the state they are declared in."),
    ("mounted", "Overlays mounted on this host at the last check, by the engine they belong to "
                "(overlayfs.mounts for the declared ones)."),
    ("drifting", "Overlays that differed from their declaration (or, undeclared, from their fstab line or unit) "
                 "at the last check, by engine; after a run that was not in check mode, what the run did not correct."),
    ("drift", "1 for each field of an overlay that differed at the last check (see overlayfs_mounts_drifting)."),
    ("failed", "Declared overlays the last run could not check or converge."),
    ("corrected_fields", "Fields the last run corrected (0 for a run in check mode, which corrects nothing)."),
    ("last_check_timestamp_seconds", "When the last check ran, in seconds since the Unix epoch."),
)

Labels = Tuple[Tuple[str, str], ...]


def escape_label_value(value: str) -> str:
    """``value`` for a label value between double quotes: backslash, double quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def escape_help(text: str) -> str:
    """``text`` for a HELP line: backslash and newline escaped."""
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value: Any) -> str:
    """A sample value as the format writes it (integers without a decimal point; NaN, +Inf, -Inf)."""
    if isinstance(value, int):  # bool included
        return str(int(value))
    number = float(value)
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "+Inf" if number > 0 else "-Inf"
    return repr(number)


def _sample(name: str, labels: Labels, value: Any) -> str:
    if not labels:
        return "%s %s" % (name, format_value(value))
    inner = ",".join('%s="%s"' % (key, escape_label_value(val)) for key, val in labels)
    return "%s{%s} %s" % (name, inner, format_value(value))


def exposition(families: Iterable[Tuple[str, str, str, Mapping[Labels, Any]]]) -> str:
    """The text of ``(name, help, type, {labels: value})`` families; samples sorted, each family whole."""
    lines: List[str] = []
    for name, help_text, kind, samples in families:
        lines.append("# HELP %s %s" % (name, escape_help(help_text)))
        lines.append("# TYPE %s %s" % (name, kind))
        lines.extend(_sample(name, labels, samples[labels]) for labels in sorted(samples))
    return "\n".join(lines) + "\n"


def _mount_points(result: Mapping[str, Any], overlays: Optional[Sequence[Mapping[str, Any]]]) -> Dict[str, str]:
    """``{declared path: mount point}`` of the declared (and pruned) overlays, with overlay_mount_info's aliases."""
    points = {}
    for entry in list(result.get("overlays") or []) + list(result.get("pruned") or []):
        path = returnable(entry.get("path"))
        point = (entry.get("mount") or {}).get("path")
        if isinstance(path, str):
            points[path] = returnable(point) if isinstance(point, str) else path
    for overlay in overlays or []:
        for alias in overlay.get("aliases") or ():
            if alias in points:
                points[alias] = overlay["path"]
    return points


def _declared_counts(result: Mapping[str, Any], declared: Optional[Sequence[Mapping[str, Any]]]) -> Dict[Labels, int]:
    entries = declared if declared is not None else [e.get("mount") or {} for e in result.get("overlays") or []]
    counts = {(("state", state),): 0 for state in STATES}
    for entry in entries:
        key = (("state", str(entry.get("state") or "mounted")),)
        counts[key] = counts.get(key, 0) + 1
    return counts


def _failed(result: Mapping[str, Any], declared_count: int) -> int:
    if "overlays" not in result:  # the list as a whole was refused, or the module did not run
        return declared_count if result.get("failed") else 0
    return sum(1 for entry in list(result["overlays"]) + list(result.get("pruned") or []) if entry.get("failed"))


def _live(result: Mapping[str, Any], overlays: Optional[Sequence[Mapping[str, Any]]],
          declared_points: Iterable[str]) -> Tuple[Dict[Labels, int], Dict[Labels, int]]:
    """Mounted overlays by engine, and the drift of the undeclared ones, from overlay_mount_info's list."""
    mounted: Dict[Labels, int] = {(("engine", DECLARED_ENGINE),): 0}
    drift: Dict[Labels, int] = {}
    if overlays is None:  # no overlay_mount_info list: the declared overlays the result shows live
        mounted[(("engine", DECLARED_ENGINE),)] = sum(
            1 for entry in result.get("overlays") or [] if entry.get("live") and not entry.get("failed"))
        return mounted, drift
    points = set(declared_points)
    for overlay in overlays:
        own = overlay["path"] in points or any(alias in points for alias in overlay.get("aliases") or ())
        engine = DECLARED_ENGINE if own else str(overlay.get("engine") or "none")
        if overlay.get("mounted"):
            key = (("engine", engine),)
            mounted[key] = mounted.get(key, 0) + 1
        if not own:
            for row in overlay.get("drift") or []:
                drift[(("engine", engine), ("mount_point", overlay["path"]), ("field", str(row.get("field"))))] = 1
    return mounted, drift


def collect(result: Mapping[str, Any], declared: Optional[Sequence[Mapping[str, Any]]] = None,
            overlays: Optional[Sequence[Mapping[str, Any]]] = None, check_mode: bool = False) -> Dict[str, Dict[Labels, Any]]:
    """The samples of each family (name without PREFIX) but the timestamp.

    ``result`` is overlay_mounts' result (registered, failed or not),
    ``declared`` the list of overlays it was given, ``overlays``
    overlay_mount_info's ``overlay_mounts`` read after it. In check mode the
    result's drift rows are the host's drift; otherwise they are what the run
    corrected, and the declared overlays carry no drift left (an entry that
    failed is counted in ``failed``).
    """
    points = _mount_points(result, overlays)
    declared_counts = _declared_counts(result, declared)
    mounted, drift = _live(result, overlays, points.values())
    rows = [returnable(row) for row in result.get("drift") or [] if isinstance(row, Mapping)]
    if check_mode:
        for row in rows:
            path = str(row.get("path"))
            drift[(("engine", DECLARED_ENGINE), ("mount_point", points.get(path, path)), ("field", str(row.get("field"))))] = 1
    drifting: Dict[Labels, int] = {(("engine", DECLARED_ENGINE),): 0}
    for engine, _point in {labels[:2] for labels in drift}:  # each overlay once
        drifting[(engine,)] = drifting.get((engine,), 0) + 1
    return {
        "declared": declared_counts,
        "mounted": mounted,
        "drifting": drifting,
        "drift": drift,
        "failed": {(): _failed(result, sum(declared_counts.values()))},
        "corrected_fields": {(): 0 if check_mode else len(rows)},
    }


def render(result: Mapping[str, Any], timestamp: float, declared: Optional[Sequence[Mapping[str, Any]]] = None,
           overlays: Optional[Sequence[Mapping[str, Any]]] = None, check_mode: bool = False) -> str:
    """The textfile-collector file for one host's last check (see :func:`collect`), checked at ``timestamp``."""
    samples = collect(result, declared, overlays, check_mode)
    samples["last_check_timestamp_seconds"] = {(): float(timestamp)}
    return exposition((PREFIX + name, help_text, "gauge", samples[name]) for name, help_text in FAMILIES)
