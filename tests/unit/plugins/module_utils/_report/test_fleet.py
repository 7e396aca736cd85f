# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet drift report: rows, per-host summaries and the Markdown rendering."""

import pytest

from ansible_collections.overlayfs.mounts.plugins.module_utils._report.fleet import (
    COLUMNS,
    build,
    markdown,
    summary_line,
)


def overlay(path, drift=()):
    """An overlay_mount_info entry, reduced to what the report reads."""
    return {"path": path, "mounted": True, "drift": list(drift)}


def info_row(field, live, persisted, source="fstab"):
    return {"field": field, "declared": None, "live": live, "persisted": persisted, "source": source}


def declared_row(path, field, declared, live, persisted):
    return {"path": path, "field": field, "declared": declared, "live": live, "persisted": persisted}


# web1: declared /srv/app drifted (two fields); /srv/app's own info drift is not repeated;
# an undeclared overlay /srv/extra drifted between live and fstab.
WEB1 = {
    "declared": [
        declared_row("/srv/app", "lowerdir", ["/l/a", "/l/b"], ["/l/b"], ["/l/a", "/l/b"]),
        declared_row("/srv/app", "persisted", "systemd", None, "none"),
    ],
    "declared_paths": ["/srv/app", "/srv/tools"],
    "overlays": [
        overlay("/srv/app", [info_row("lowerdir", ["/l/b"], ["/l/a", "/l/b"])]),
        overlay("/srv/extra", [info_row("mounted", False, True)]),
        overlay("/srv/tools"),
    ],
}
# web2: in sync.
WEB2 = {"declared": [], "declared_paths": ["/srv/app"], "overlays": [overlay("/srv/app")]}
# db1: nothing declared (no overlay_host_mounts); only info drift.
DB1 = {"declared": None, "declared_paths": [], "overlays": [
    overlay("/srv/a|b", [info_row("options.index", "on", "off", "systemd")]), overlay("/srv/c")]}


def test_rows_and_summaries_over_a_fleet():
    report = build({"web2": WEB2, "web1": WEB1, "db1": DB1, "down": None})
    # This collection's overlays first (declared ones and its error rows), then the others.
    assert report["rows"] == [
        {"engine": "overlayfs.mounts", "host": "web1", "path": "/srv/app", "field": "lowerdir",
         "declared": ["/l/a", "/l/b"], "live": ["/l/b"], "persisted": ["/l/a", "/l/b"]},
        {"engine": "overlayfs.mounts", "host": "web1", "path": "/srv/app", "field": "persisted",
         "declared": "systemd", "live": None, "persisted": "none"},
        {"engine": "none", "host": "db1", "path": "/srv/a|b", "field": "options.index", "declared": None,
         "live": "on", "persisted": "off"},
        {"engine": "none", "host": "web1", "path": "/srv/extra", "field": "mounted", "declared": None,
         "live": False, "persisted": True},
    ]
    assert report["hosts"] == [
        {"host": "db1", "reachable": True, "overlays": 2, "engines": {"none": 2}, "declared": None,
         "drifted_overlays": 1, "drifted_fields": 1},
        {"host": "down", "reachable": False, "overlays": 0, "engines": {}, "declared": None,
         "drifted_overlays": 0, "drifted_fields": 0},
        {"host": "web1", "reachable": True, "overlays": 3, "engines": {"overlayfs.mounts": 2, "none": 1},
         "declared": 2, "drifted_overlays": 2, "drifted_fields": 3},
        {"host": "web2", "reachable": True, "overlays": 1, "engines": {"overlayfs.mounts": 1}, "declared": 1,
         "drifted_overlays": 0, "drifted_fields": 0},
    ]
    assert all(tuple(r) == COLUMNS for r in report["rows"])


def test_a_declared_path_without_drift_hides_its_info_drift():
    # overlay_host declared /srv/tools and it is in sync: a stale info row must not show.
    data = dict(WEB2, overlays=[overlay("/srv/app", [info_row("mounted", False, True)])])
    assert build({"h": data})["rows"] == []


def test_build_does_not_change_its_input():
    before = repr(WEB1)
    build({"web1": WEB1})
    assert repr(WEB1) == before


@pytest.mark.parametrize("host, line", [
    ({"host": "h", "reachable": False, "overlays": 0, "declared": None, "drifted_overlays": 0,
      "drifted_fields": 0}, "h: no data (the host failed or was unreachable)"),
    ({"host": "h", "reachable": True, "overlays": 3, "declared": None, "drifted_overlays": 0,
      "drifted_fields": 0}, "h: in sync (3 overlays)"),
    ({"host": "h", "reachable": True, "overlays": 3, "declared": 2, "drifted_overlays": 0,
      "drifted_fields": 0}, "h: in sync (3 overlays, 2 declared)"),
    ({"host": "h", "reachable": True, "overlays": 3, "declared": 2, "drifted_overlays": 1,
      "drifted_fields": 4}, "h: 4 drifted field(s) on 1 overlay(s) (3 overlays, 2 declared)"),
    ({"host": "h", "reachable": True, "overlays": 0, "declared": 0, "drifted_overlays": 0,
      "drifted_fields": 0}, "h: in sync (0 overlays, 0 declared)"),
])
def test_summary_line(host, line):
    assert summary_line(host) == line


def test_markdown_of_a_fleet():
    text = markdown(build({"web2": WEB2, "web1": WEB1, "db1": DB1, "down": None}))
    assert text == "\n".join([
        "# Overlay drift report",
        "",
        "## Summary",
        "",
        "- db1: 1 drifted field(s) on 1 overlay(s) (2 overlays)",
        "- down: no data (the host failed or was unreachable)",
        "- web1: 3 drifted field(s) on 2 overlay(s) (3 overlays: 2 overlayfs.mounts, 1 none, 2 declared)",
        "- web2: in sync (1 overlays: 1 overlayfs.mounts, 1 declared)",
        "",
        "## Drift",
        "",
        "### Overlays of this collection",
        "",
        "| host | path | field | declared | live | persisted |",
        "|---|---|---|---|---|---|",
        '| web1 | /srv/app | lowerdir | ["/l/a", "/l/b"] | ["/l/b"] | ["/l/a", "/l/b"] |',
        "| web1 | /srv/app | persisted | systemd |  | none |",
        "",
        "### Other overlays (no known owner)",
        "",
        "| host | path | field | declared | live | persisted |",
        "|---|---|---|---|---|---|",
        "| db1 | /srv/a\\|b | options.index |  | on | off |",
        "| web1 | /srv/extra | mounted |  | false | true |",
        "",
    ])


def test_markdown_without_drift():
    text = markdown(build({"a": WEB2, "b": {"declared": None, "overlays": []}}))
    assert text == "\n".join([
        "# Overlay drift report",
        "",
        "## Summary",
        "",
        "- a: in sync (1 overlays: 1 overlayfs.mounts, 1 declared)",
        "- b: in sync (0 overlays)",
        "",
        "## Drift",
        "",
        "No drift: every host matches its declaration and its persisted overlays.",
        "",
    ])
    assert "|" not in text


def test_markdown_of_an_unreachable_host_only():
    text = markdown(build({"gone": None}), title="Nightly")
    assert text.startswith("# Nightly\n")
    assert "- gone: no data (the host failed or was unreachable)\n" in text
    assert "No drift" in text


@pytest.mark.parametrize("value, cell", [
    ("a|b", "a\\|b"),
    (["/x|y", "/z"], '["/x\\|y", "/z"]'),
    ("two\nlines", "two lines"),
    (True, "true"),
    (False, "false"),
    (None, ""),
    (0, "0"),
    ({"b": 1, "a": "|"}, '{"a": "\\|", "b": 1}'),
    ("fstab (2 lines)", "fstab (2 lines)"),
])
def test_cells_never_break_the_table(value, cell):
    report = {"hosts": [], "rows": [{"host": "h", "path": "/p", "field": "f", "declared": value, "live": None,
                                     "persisted": None}]}
    last = markdown(report).rstrip("\n").rsplit("\n", maxsplit=1)[-1]
    assert last == "| h | /p | f | %s |  |  |" % cell
    # Every unescaped pipe is a column border: exactly seven of them.
    assert last.replace("\\|", "").count("|") == 7


def test_an_entry_that_could_not_be_checked_is_a_row_not_a_lost_host():
    report = build({"h1": {"declared": [], "declared_paths": ["/srv/a", "/srv/b"], "overlays": [],
                           "errors": [{"path": "/srv/b", "msg": "lowerdir[0]: '/x' does not exist"}]}})
    assert report["rows"] == [{"engine": "overlayfs.mounts", "host": "h1", "path": "/srv/b", "field": "error",
                               "declared": None, "live": "lowerdir[0]: '/x' does not exist", "persisted": None}]
    assert report["hosts"][0]["reachable"] is True
