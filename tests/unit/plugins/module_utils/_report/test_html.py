# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet drift report as one HTML page: structure, escaping, and nothing fetched."""

import base64
import hashlib
import re
from html.parser import HTMLParser

import pytest

from ansible_collections.overlayfs.mounts.plugins.module_utils._report.fleet import build
from ansible_collections.overlayfs.mounts.plugins.module_utils._report.html import CSP, kind, render, text

# A mount point named by someone else: quotes, markup, an entity, a newline, ANSI escapes, a C1 CSI,
# a right-to-left override, and (already escaped by overlay_mount_info) bytes that are not UTF-8.
HOSTILE = "/srv/q\"'<script>alert(1)</script>&amp;\nx\x1b[31mred\x9b2J\u202egnp.exe\\377\\376"
HOSTILE_SHOWN = ("/srv/q&quot;&#x27;&lt;script&gt;alert(1)&lt;/script&gt;&amp;amp;\\012x\\033[31mred"
                 "\\302\\2332J\\342\\200\\256gnp.exe\\377\\376")


def overlay(path, drift=(), engine="none"):
    return {"path": path, "mounted": True, "engine": engine, "drift": list(drift)}


def row(field, live, persisted):
    return {"field": field, "declared": None, "live": live, "persisted": persisted, "source": "fstab"}


FLEET = {
    "web1": {"declared": [{"path": "/srv/app", "field": "lowerdir", "declared": ["/l/a", "/l/b"], "live": ["/l/b"],
                           "persisted": ["/l/a", "/l/b"]}],
             "declared_paths": ["/srv/app"],
             "overlays": [overlay("/srv/app"), overlay("/var/lib/docker/overlay2/x/merged",
                                                       [row("options.index", "on", "off")], engine="docker")]},
    "web2": {"declared": [], "declared_paths": [], "overlays": [overlay(HOSTILE, [row("mounted", False, True)])]},
    "db9": {"status": "unreachable", "msg": "Failed to connect to the host via ssh: <refused> & gone"},
    "db8": {"status": "failed", "msg": "cannot read /proc/self: Is a directory"},
}


class Page(HTMLParser):
    """The page as the parts the tests look at: tags, table rows' cells, attributes, texts of style and script."""

    def __init__(self, page):
        super().__init__(convert_charrefs=True)
        self.tags, self.rows, self.open = [], {}, []
        self.style, self.script = [], []
        self._table, self._cells, self._where, self._in_cell = None, None, None, False
        self.feed(page)
        self.close()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if tag == "table":
            self._table = attrs.get("id")
        elif tag == "tr" and self._table:
            self._cells = [attrs, []]
        elif tag in ("td", "th") and self._cells is not None:
            self._cells[1].append("")
            self._in_cell = True
        elif tag in ("style", "script"):
            self._where = tag
            getattr(self, tag).append("")

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self._in_cell = False
        elif tag == "tr" and self._cells is not None:
            self.rows.setdefault(self._table, []).append(self._cells)
            self._cells = None
        elif tag == "table":
            self._table = None
        elif tag in ("style", "script"):
            self._where = None

    def handle_data(self, data):
        if self._where:
            getattr(self, self._where)[-1] += data
        elif self._in_cell:
            self._cells[1][-1] += data


@pytest.fixture(name="page")
def page_fixture():
    return Page(render(build(FLEET)))


def test_sections_come_in_order_summary_hosts_drift():
    page = render(build(FLEET))
    assert page.index('id="summary"') < page.index('id="hosts"') < page.index('id="drift"')


def test_fleet_summary_counts(page):
    cards = re.findall(r'<div id="count-([a-z-]+)"><dt>[^<]*</dt><dd>(\d+)</dd>', render(build(FLEET)))
    assert dict(cards) == {"hosts": "4", "in-sync": "0", "drifted": "2", "unreachable": "1", "failed": "1",
                           "overlays": "3", "drifted-overlays": "3", "drifted-fields": "3"}
    assert page.rows["hosts"][0][1][:2] == ["Host", "State"]


def test_hosts_say_their_state_and_why(page):
    hosts = {cells[0]: cells for attrs, cells in page.rows["hosts"][1:]}
    assert hosts["db9"][1] == "unreachable"
    assert hosts["db9"][7] == "Failed to connect to the host via ssh: <refused> & gone"
    assert hosts["db8"][1:3] == ["failed", "0"]
    assert hosts["web1"][1:7] == ["drift", "2", "1", "1 overlayfs.mounts, 1 docker", "2", "2"]


def test_drift_rows_side_by_side(page):
    head, *rows = page.rows["drift"]
    assert head[1] == ["Host", "Engine", "Overlay", "Field", "Declared", "Persisted", "Live"]
    assert [(a["data-host"], a["data-engine"], a["data-kind"]) for a, cells in rows] == [
        ("web1", "overlayfs.mounts", "lowerdir"), ("web2", "none", "mounted"), ("web1", "docker", "options")]
    assert rows[0][1] == ["web1", "overlayfs.mounts", "/srv/app", "lowerdir", '["/l/a", "/l/b"]', '["/l/a", "/l/b"]',
                          '["/l/b"]']
    assert rows[1][1][4:] == ["", "true", "false"]


def test_filters_list_every_host_engine_and_kind(page):
    options = {}
    select = None
    for tag, attrs in page.tags:
        if tag == "select":
            select = attrs["id"]
        elif tag == "option":
            options.setdefault(select, []).append(attrs["value"])
    assert options == {"f-host": ["", "db8", "db9", "web1", "web2"],
                       "f-engine": ["", "overlayfs.mounts", "none", "docker"],
                       "f-kind": ["", "lowerdir", "mounted", "options"]}


def test_odd_paths_are_text_never_markup():
    page = render(build(FLEET))
    assert HOSTILE_SHOWN in page
    assert "<script>alert" not in page and "\x1b" not in page and "\u202e" not in page and "\x9b" not in page
    parsed = Page(page)
    # Parsed back, the cell holds the escaped characters as literal text.
    cells = [cells for attrs, cells in parsed.rows["drift"][1:] if attrs["data-host"] == "web2"][0]
    assert cells[2] == ("/srv/q\"'<script>alert(1)</script>&amp;\\012x\\033[31mred\\302\\2332J"
                        "\\342\\200\\256gnp.exe\\377\\376")
    assert [tag for tag, attrs in parsed.tags].count("script") == 1


def test_nothing_is_fetched():
    page = render(build(FLEET))
    parsed = Page(page)
    assert not [(tag, attrs) for tag, attrs in parsed.tags if {"src", "href", "srcset", "action"} & set(attrs)]
    assert not [tag for tag, attrs in parsed.tags if tag in ("link", "img", "iframe", "object", "embed", "base")]
    assert "url(" not in "".join(parsed.style) and "@import" not in "".join(parsed.style)
    assert not re.search(r"fetch\(|XMLHttpRequest|import\(|WebSocket|\.src\b", "".join(parsed.script))
    assert "http://" not in page and "https://" not in page


def test_the_policy_allows_exactly_the_inline_style_and_script():
    parsed = Page(render(build(FLEET)))

    def digest(value):
        return "'sha256-%s'" % base64.b64encode(hashlib.sha256(value.encode("utf-8")).digest()).decode("ascii")

    policy = [attrs["content"] for tag, attrs in parsed.tags if attrs.get("http-equiv") == "Content-Security-Policy"]
    assert policy == [CSP]
    assert CSP.startswith("default-src 'none'; ")
    assert "style-src %s;" % digest(parsed.style[0]) in CSP
    assert "script-src %s;" % digest(parsed.script[0]) in CSP


def test_printable():
    page = render(build(FLEET))
    assert "@media print" in page and ".filters, .noprint { display: none; }" in page


def test_without_drift_the_page_says_so():
    page = render(build({"h": {"declared": None, "overlays": []}}), title="Nightly <1>", generated="2026-12-07")
    assert '<p id="no-drift">' in page
    assert "<title>Nightly &lt;1&gt;</title>" in page and "2026-12-07" in page


def test_engines_kept_are_named():
    page = render(build(FLEET, engines=["docker"]))
    assert "Only the overlays of: docker." in page


@pytest.mark.parametrize("value, shown", [
    (None, ""),
    (True, "true"),
    (["/a", "<b>"], '[&quot;/a&quot;, &quot;&lt;b&gt;&quot;]'),
    ({"k": "\n"}, "{&quot;k&quot;: &quot;\\n&quot;}"),
    ("a\u2028b\u200bc", "a\\342\\200\\250b\\342\\200\\213c"),
    ("\udcff", "\\377"),
    (3, "3"),
])
def test_text(value, shown):
    assert text(value) == shown


@pytest.mark.parametrize("field, result", [
    ("options.index", "options"), ("unit_settings.Mount.TimeoutSec", "unit_settings"), ("lowerdir", "lowerdir"),
    (None, ""),
])
def test_kind(field, result):
    assert kind(field) == result
