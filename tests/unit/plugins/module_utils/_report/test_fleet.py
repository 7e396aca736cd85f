# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet drift report: rows, per-host summaries and the Markdown rendering."""

import pytest

from ansible_collections.overlayfs.mounts.plugins.module_utils._report.fleet import (
    COLUMNS,
    build,
    console_lines,
    gate,
    host_data,
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
         "declared": ["/l/a", "/l/b"], "live": ["/l/b"], "persisted": ["/l/a", "/l/b"], "declared_path": None},
        {"engine": "overlayfs.mounts", "host": "web1", "path": "/srv/app", "field": "persisted",
         "declared": "systemd", "live": None, "persisted": "none", "declared_path": None},
        {"engine": "none", "host": "db1", "path": "/srv/a|b", "field": "options.index", "declared": None,
         "live": "on", "persisted": "off", "declared_path": None},
        {"engine": "none", "host": "web1", "path": "/srv/extra", "field": "mounted", "declared": None,
         "live": False, "persisted": True, "declared_path": None},
    ]
    assert report["hosts"] == [
        {"host": "db1", "status": "ok", "msg": None, "reachable": True, "overlays": 2, "engines": {"none": 2}, "declared": None,
         "drifted_overlays": 1, "drifted_fields": 1},
        {"host": "down", "status": "failed", "msg": "no data was gathered from this host", "reachable": False,
         "overlays": 0, "engines": {}, "declared": None,
         "drifted_overlays": 0, "drifted_fields": 0},
        {"host": "web1", "status": "ok", "msg": None, "reachable": True, "overlays": 3, "engines": {"overlayfs.mounts": 2, "none": 1},
         "declared": 2, "drifted_overlays": 2, "drifted_fields": 3},
        {"host": "web2", "status": "ok", "msg": None, "reachable": True, "overlays": 1, "engines": {"overlayfs.mounts": 1}, "declared": 1,
         "drifted_overlays": 0, "drifted_fields": 0},
    ]
    assert all(tuple(r) == COLUMNS for r in report["rows"])
    assert report["summary"] == {"hosts": 4, "in_sync": 1, "drifted": 2, "unreachable": 0, "failed": 1,
                                 "overlays": 6, "drifted_overlays": 3, "drifted_fields": 4}


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
      "drifted_fields": 0}, "h: failed: no data was gathered from this host"),
    ({"host": "h", "status": "unreachable", "msg": "ssh: connect to host 10.0.0.9 port 22: No route to host",
      "reachable": False, "overlays": 0, "declared": None, "drifted_overlays": 0, "drifted_fields": 0},
     "h: unreachable: ssh: connect to host 10.0.0.9 port 22: No route to host"),
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
        "4 host(s): 1 in sync, 2 drifted, 1 failed.",
        "",
        "- db1: 1 drifted field(s) on 1 overlay(s) (2 overlays)",
        "- down: failed: no data was gathered from this host",
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
        "2 host(s): 2 in sync, 0 drifted.",
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
    assert "- gone: failed: no data was gathered from this host\n" in text
    assert "1 host(s): 0 in sync, 0 drifted, 1 failed.\n" in text
    assert "No drift" in text


@pytest.mark.parametrize("value, cell", [
    ("a|b", "a\\|b"),
    (["/x|y", "/z"], '["/x\\|y", "/z"]'),
    ("two\nlines", "two\\012lines"),
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
                               "declared": None, "live": "lowerdir[0]: '/x' does not exist", "persisted": None,
                               "declared_path": None}]
    assert report["hosts"][0]["reachable"] is True


# Mount points named by someone else: an ANSI colour sequence, a carriage return, DEL, a C1 CSI,
# a pipe and a backtick, and (already escaped by overlay_mount_info) bytes that are not UTF-8.
HOSTILE = "/srv/esc\x1b[31mred\rcr\x7f\x9b2J|`x<b>\\|"
SHOWN = "/srv/esc\\033[31mred\\015cr\\177\\302\\2332J\\|\\`x\\<b>\\\\\\|"


def test_control_characters_never_reach_the_markdown_raw():
    data = {"declared": None, "overlays": [
        overlay(HOSTILE, [info_row("lowerdir", ["/l\x1b]0;title\x07", "/l\x9b"], ["/srv/bad\\377"])]),
        overlay("/srv/bad\\377\\376", [info_row("mounted", False, True)]),
    ]}
    text = markdown(build({"h\x1b[2J": data}))
    lines = text.split("\n")
    # Nothing but the line feeds that end lines is a control character.
    assert all(line.isprintable() for line in lines), [line for line in lines if not line.isprintable()]
    assert "- h\\033[2J: 2 drifted field(s) on 2 overlay(s) (2 overlays)" in lines
    rows = [line for line in lines if line.startswith("| h\\033")]
    assert rows == [
        "| h\\033[2J | %s | lowerdir |  | %s | %s |" % (
            # Lists are JSON (which escapes C0 itself), then escaped for Markdown.
            SHOWN, '["/l\\u001b]0;title\\u0007", "/l\\u009b"]', '["/srv/bad\\\\\\377"]'),
        "| h\\033[2J | /srv/bad\\377\\376 | mounted |  | false | true |",
    ]
    # Every unescaped pipe is a column border: exactly seven in each row.
    assert [row.replace("\\\\", "").replace("\\|", "").count("|") for row in rows] == [7, 7]


def test_the_json_report_keeps_the_data_as_it_is():
    data = {"declared": None, "overlays": [overlay(HOSTILE, [info_row("mounted", False, True)])]}
    assert build({"h": data})["rows"][0]["path"] == HOSTILE


def test_declared_data_is_escaped_as_info_results_are():
    # A declared path with a backslash before octal digits matches overlay_mount_info's escaped form.
    data = {"declared": [declared_row("/srv/a\\101", "mounted", True, False, True)],
            "declared_paths": ["/srv/a\\101"], "overlays": [overlay("/srv/a\\134101")]}
    report = build({"h": data})
    assert [(r["path"], r["engine"]) for r in report["rows"]] == [("/srv/a\\134101", "overlayfs.mounts")]
    assert report["hosts"][0]["engines"] == {"overlayfs.mounts": 1}


# /srv/link -> /data/real: declared as /srv/link/m, mounted (and persisted by overlay_mounts) at /data/real/m.
LINKED = {
    "declared": [declared_row("/srv/link/m", "lowerdir", ["/l/a", "/l/b"], ["/l/b"], ["/l/a", "/l/b"])],
    "declared_paths": ["/srv/link/m"],
    "declared_mount_points": {"/srv/link/m": "/data/real/m"},
    "overlays": [overlay("/data/real/m", [info_row("lowerdir", ["/l/b"], ["/l/a", "/l/b"])])],
}


def test_an_overlay_declared_through_a_symlink_is_one_set_of_rows():
    report = build({"h": LINKED})
    assert report["rows"] == [
        {"engine": "overlayfs.mounts", "host": "h", "path": "/data/real/m", "field": "lowerdir",
         "declared": ["/l/a", "/l/b"], "live": ["/l/b"], "persisted": ["/l/a", "/l/b"], "declared_path": "/srv/link/m"}]
    assert report["hosts"][0]["engines"] == {"overlayfs.mounts": 1}
    assert (report["hosts"][0]["drifted_overlays"], report["hosts"][0]["drifted_fields"]) == (1, 1)
    assert "| h | /data/real/m (declared as /srv/link/m) | lowerdir |" in markdown(report)


def test_info_aliases_name_the_overlay_when_the_mount_points_are_not_given():
    # An fstab line spelled through the link: overlay_mount_info lists it under its mount point, with the alias.
    data = dict(LINKED, declared_mount_points=None,
                overlays=[dict(overlay("/data/real/m", [info_row("mounted", False, True)]), aliases=["/srv/link/m"])])
    report = build({"h": data})
    assert [(r["path"], r["declared_path"], r["field"]) for r in report["rows"]] == [
        ("/data/real/m", "/srv/link/m", "lowerdir")]


def test_without_the_mount_points_the_two_spellings_stay_apart():
    # What the report did before it knew where a declared path leads: two sets of rows for one overlay.
    report = build({"h": dict(LINKED, declared_mount_points=None)})
    assert sorted(r["path"] for r in report["rows"]) == ["/data/real/m", "/srv/link/m"]


def test_an_entry_that_failed_is_reported_at_its_mount_point():
    data = dict(LINKED, declared=[], errors=[{"path": "/srv/link/m", "msg": "refused"}])
    report = build({"h": data})
    assert [(r["path"], r["declared_path"], r["field"]) for r in report["rows"]] == [
        ("/data/real/m", "/srv/link/m", "error")]


def test_an_overlay_persisted_both_ways_counts_as_drift():
    # overlay_mount_info's row for an overlay that is an fstab line and a unit at once.
    both = {"field": "persisted", "declared": None, "live": None, "persisted": "both", "source": None}
    report = build({"h": {"declared": None, "overlays": [overlay("/srv/x", [both]), overlay("/srv/y")]}})
    assert report["rows"] == [{"engine": "none", "host": "h", "path": "/srv/x", "field": "persisted", "declared": None,
                               "live": None, "persisted": "both", "declared_path": None}]
    assert (report["hosts"][0]["drifted_overlays"], report["hosts"][0]["drifted_fields"]) == (1, 1)
    text = markdown(report)
    assert "| h | /srv/x | persisted |  |  | both |" in text
    assert "- h: 1 drifted field(s) on 1 overlay(s) (2 overlays)" in text


# A fleet with one host down and one whose task failed: both are hosts of the report, with Ansible's message.
DOWN = {"status": "unreachable", "declared": [], "overlays": None,
        "msg": "Failed to connect to the host via ssh: ssh: connect to host 127.0.0.1 port 1: Connection refused"}
BROKEN = {"status": "failed", "msg": "cannot read /proc/self: Is a directory\x1b[2J", "overlays": None}


def test_unreachable_and_failed_hosts_are_hosts_with_their_message():
    report = build({"web1": WEB1, "web2": WEB2, "db9": DOWN, "db8": BROKEN})
    hosts = {h["host"]: h for h in report["hosts"]}
    assert hosts["db9"] == {"host": "db9", "status": "unreachable", "msg": DOWN["msg"], "reachable": False,
                            "overlays": 0, "engines": {}, "declared": None, "drifted_overlays": 0, "drifted_fields": 0}
    assert (hosts["db8"]["status"], hosts["db8"]["reachable"]) == ("failed", True)
    assert hosts["db8"]["msg"] == BROKEN["msg"]
    assert {r["host"] for r in report["rows"]} == {"web1"}
    assert report["summary"] == {"hosts": 4, "in_sync": 1, "drifted": 1, "unreachable": 1, "failed": 1,
                                 "overlays": 4, "drifted_overlays": 2, "drifted_fields": 3}
    text = markdown(report)
    assert "4 host(s): 1 in sync, 1 drifted, 1 unreachable, 1 failed.\n" in text
    assert "- db9: unreachable: %s\n" % DOWN["msg"] in text
    assert "- db8: failed: cannot read /proc/self: Is a directory\\033[2J\n" in text


def test_a_status_without_a_message_still_says_why_not():
    report = build({"h": {"status": "unreachable", "msg": ""}})
    assert report["hosts"][0]["msg"] == "no message from Ansible"


def test_an_unknown_status_is_refused():
    with pytest.raises(ValueError, match="status must be one of ok, unreachable, failed"):
        build({"h": {"status": "gone"}})


def test_console_lines_fit_80_columns_one_line_per_host():
    report = build({"web1": WEB1, "web2": WEB2, "db9": DOWN, "db8": BROKEN, "db1": DB1})
    lines = console_lines(report)
    assert lines == [
        "5 host(s): 1 in sync, 2 drifted, 1 unreachable, 1 failed",
        "db1: DRIFT, 2 overlays; drifted: options.index",
        "db8: FAILED: cannot read /proc/self: Is a directory\\033[2J",
        "db9: UNREACHABLE: Failed to connect to the host via ssh: ssh: con...",
        # Too long for the line: cut (drift.md and drift.html hold it whole).
        "web1: DRIFT, 3 overlays (2 declared); drifted: lowerdir, persiste...",
        "web2: in sync, 1 overlays (1 declared)",
    ]
    # The default callback prints each item as 8 spaces, quotes and a comma.
    assert all(len(line) + 11 <= 80 and line.isprintable() for line in lines), lines


def test_console_lines_cut_what_does_not_fit():
    long_msg = "word " * 100
    lines = console_lines(build({"h": {"status": "failed", "msg": long_msg}}))
    assert len(lines) == 2 and lines[-1].endswith("...")  # one line per host, cut
    assert all(len(line) <= 68 for line in lines)
    many = {"declared": None, "overlays": [overlay("/srv/m", [info_row("options.o%02d" % i, "a", "b")
                                                              for i in range(30)])]}
    line = console_lines(build({"h": many}))[1]
    assert len(line) == 68 and line.endswith("...")


@pytest.mark.parametrize("fail_on, reasons", [
    ([], []),
    (["drift"], ["drift on 1 host(s): web1"]),
    (["unreachable"], ["1 host(s) unreachable: db9"]),
    (["failed", "unreachable", "drift"], ["drift on 1 host(s): web1", "1 host(s) unreachable: db9",
                                          "1 host(s) failed: db8"]),
])
def test_gate(fail_on, reasons):
    assert gate(build({"web1": WEB1, "web2": WEB2, "db9": DOWN, "db8": BROKEN}), fail_on) == reasons


def test_gate_on_a_fleet_in_sync_passes():
    assert gate(build({"web2": WEB2}), ["drift", "unreachable", "failed"]) == []


def test_gate_refuses_an_unknown_kind():
    with pytest.raises(ValueError, match=r"drift_report_fail_on must be a list of drift, unreachable, failed, not \['drifts'\]"):
        gate(build({}), ["drifts"])


# --- host_data: a host's data from its registered result ---------------------------------------------------

LISTED = [overlay("/srv/app"), overlay("/var/lib/docker/overlay2/x/merged", [info_row("lowerdir", "/a", "/b")])]
DECLARED_DRIFT = [{"path": "/srv/app-link", "field": "mounted", "declared": True, "live": False, "persisted": True}]


def test_host_data_of_an_overlay_mounts_result_with_declared_entries():
    read = {"changed": True, "overlay_mounts": LISTED, "drift": DECLARED_DRIFT,
            "overlays": [{"path": "/srv/app-link", "mount": {"path": "/srv/app"}},
                         {"path": "/srv/bad", "failed": True, "msg": "lowerdir /x does not exist"}]}
    assert host_data(read) == {
        "status": "ok", "msg": None, "overlays": LISTED, "declared": DECLARED_DRIFT,
        "declared_paths": ["/srv/app-link", "/srv/bad"],
        "declared_mount_points": {"/srv/app-link": "/srv/app", "/srv/bad": None},
        "errors": [{"path": "/srv/bad", "failed": True, "msg": "lowerdir /x does not exist"}],
    }
    report = build({"web1": host_data(read)})
    assert [(r["path"], r["field"], r["declared_path"]) for r in report["rows"]] == [
        ("/srv/app", "mounted", "/srv/app-link"), ("/srv/bad", "error", None),
        ("/var/lib/docker/overlay2/x/merged", "lowerdir", None)]
    assert report["hosts"][0]["declared"] == 2


def test_host_data_without_declared_entries_has_no_declared_part():
    """overlay_mount_info's result, or overlay_mounts given no entries: only the listing."""
    for read in ({"overlay_mounts": LISTED}, {"overlay_mounts": LISTED, "overlays": [], "drift": []}):
        data = host_data(read)
        assert (data["status"], data["declared"], data["errors"]) == ("ok", None, [])
        assert build({"web1": data})["hosts"][0]["declared"] is None


def test_host_data_of_a_list_refused_as_a_whole_keeps_the_listing_and_the_reason():
    read = {"failed": False, "failed_when_result": False, "msg": "two entries mount /srv/app", "overlay_mounts": LISTED}
    data = host_data(read)
    assert data["status"] == "ok" and data["errors"] == [{"path": "*", "msg": "two entries mount /srv/app"}]
    assert [r["field"] for r in build({"web1": data})["rows"]] == ["error", "lowerdir"]


@pytest.mark.parametrize("read, status, msg", [
    ({"unreachable": True, "msg": "Failed to connect to the host via ssh: Connection refused", "changed": False},
     "unreachable", "Failed to connect to the host via ssh: Connection refused"),
    ({"failed": True, "msg": "cannot read /proc/self/mountinfo: Permission denied"},
     "failed", "cannot read /proc/self/mountinfo: Permission denied"),
    ({"skipped": True, "skip_reason": "Conditional result was False"}, "failed", ""),
])
def test_host_data_of_a_host_not_read(read, status, msg):
    assert host_data(read) == {"status": status, "msg": msg}
    host = build({"h": host_data(read)})["hosts"][0]
    assert (host["status"], host["msg"]) == (status, msg or "no message from Ansible")


def test_host_data_of_no_result_is_none():
    assert host_data(None) is None
