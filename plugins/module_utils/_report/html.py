# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet drift report as one self-contained HTML page. Pure.

The page holds everything it shows: its style and its script are inline,
and a Content-Security-Policy allows nothing else (no request leaves the
file). Every text from the hosts is escaped here, in Python: control
characters (C0, DEL, C1), Unicode format characters (bidirectional
overrides, zero-width characters) and line separators show as ``\\NNN``
(the bytes of their UTF-8, as in the Markdown), then ``&``, ``<``, ``>``
and quotes become entities, so that no path is ever read as markup. The
tables are rendered here too: the page reads (and prints) without its
script, which only filters and sorts the rows.
"""

import base64
import hashlib
import html
import json
import re
from typing import Any, Iterable, List, Mapping, Optional

from ansible_collections.overlayfs.mounts.plugins.module_utils._report.fleet import (
    ENGINE_TITLES,
    engine_rank,
    fleet_summary,
    host_status,
)
from ansible_collections.overlayfs.mounts.plugins.module_utils._report.printable import visible

# Format characters (bidi controls, zero-width), line and paragraph separators, and what visible() shows.
_HIDDEN = re.compile("[\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb]")

_STYLE = """
:root { --fg: #1b1f24; --muted: #57606a; --line: #d0d7de; --drift: #9a3412; --bad: #b91c1c; --ok: #166534;
        --head: #f3f4f6; }
body { font: 14px/1.4 system-ui, sans-serif; color: var(--fg); margin: 1.5em; }
h1 { font-size: 1.5em; margin: 0 0 .5em; } h2 { font-size: 1.2em; margin: 1.5em 0 .5em; }
.cards { display: flex; flex-wrap: wrap; gap: .5em; margin: 0; padding: 0; }
.cards div { border: 1px solid var(--line); border-radius: 6px; padding: .4em .8em; min-width: 7em; }
.cards dt { color: var(--muted); font-size: .85em; } .cards dd { margin: 0; font-size: 1.4em; font-weight: 600; }
table { border-collapse: collapse; width: 100%; margin-top: .5em; }
th, td { border: 1px solid var(--line); padding: .25em .5em; text-align: left; vertical-align: top; }
th { background: var(--head); }
th button { font: inherit; font-weight: 600; border: 0; background: none; cursor: pointer; padding: 0; }
th[aria-sort=ascending] button::after { content: " \\25B2"; }
th[aria-sort=descending] button::after { content: " \\25BC"; }
td.num { text-align: right; }
code, .path, .value { font-family: ui-monospace, monospace; font-size: .92em; white-space: pre-wrap;
                      word-break: break-all; }
.st-drift { color: var(--drift); font-weight: 600; } .st-unreachable, .st-failed { color: var(--bad); font-weight: 600; }
.st-in-sync { color: var(--ok); }
.filters { display: flex; flex-wrap: wrap; gap: 1em; align-items: end; margin: .5em 0; }
.filters label { display: flex; flex-direction: column; font-size: .85em; color: var(--muted); }
.muted { color: var(--muted); }
@media print {
  body { margin: 0; font-size: 10pt; }
  .filters, .noprint { display: none; }
  th button { pointer-events: none; } th[aria-sort] button::after { content: ""; }
  tr { break-inside: avoid; } thead { display: table-header-group; }
  th { background: none; }
  a { color: inherit; text-decoration: none; }
  @page { size: landscape; margin: 1cm; }
}
"""

_SCRIPT = """
(function () {
  "use strict";
  var sel = {host: document.getElementById("f-host"), engine: document.getElementById("f-engine"),
             kind: document.getElementById("f-kind")};
  function apply() {
    var want = {host: sel.host.value, engine: sel.engine.value, kind: sel.kind.value};
    var shown = 0, rows = document.querySelectorAll("#drift tbody tr");
    rows.forEach(function (tr) {
      var ok = ["host", "engine", "kind"].every(function (k) { return !want[k] || tr.dataset[k] === want[k]; });
      tr.hidden = !ok; if (ok) { shown++; }
    });
    document.querySelectorAll("#hosts tbody tr").forEach(function (tr) {
      tr.hidden = !!want.host && tr.dataset.host !== want.host;
    });
    document.getElementById("shown").textContent = shown + " of " + rows.length + " drifted field(s) shown";
  }
  Object.keys(sel).forEach(function (k) { sel[k].addEventListener("change", apply); });
  document.getElementById("f-reset").addEventListener("click", function () {
    Object.keys(sel).forEach(function (k) { sel[k].value = ""; }); apply();
  });
  function key(td) {
    var v = td.dataset.sort !== undefined ? td.dataset.sort : td.textContent;
    return td.classList.contains("num") ? Number(v) : v;
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    var ths = table.querySelectorAll("thead th");
    ths.forEach(function (th, col) {
      th.querySelector("button").addEventListener("click", function () {
        var dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
        ths.forEach(function (o) { o.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", dir > 0 ? "ascending" : "descending");
        var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
        rows.map(function (tr, i) { return [key(tr.cells[col]), i, tr]; }).sort(function (a, b) {
          if (a[0] < b[0]) { return -dir; } if (a[0] > b[0]) { return dir; } return a[1] - b[1];
        }).forEach(function (e) { body.appendChild(e[2]); });
      });
    });
  });
  apply();
}());
"""


def _csp_hash(text: str) -> str:
    return "'sha256-%s'" % base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")


# Nothing but the inline style and script (by their hashes): no fetch, no image, no font, no form.
CSP = "default-src 'none'; style-src %s; script-src %s; base-uri 'none'; form-action 'none'" % (
    _csp_hash(_STYLE), _csp_hash(_SCRIPT))


def text(value: Any) -> str:
    """``value`` as HTML text: control, format and separator characters as ``\\\\NNN``, markup as entities.

    Lists and dictionaries show as JSON. Safe in element text and in quoted attribute values.
    """
    if value is None:
        return ""
    if isinstance(value, (list, dict, bool)):
        value = json.dumps(value, sort_keys=True, ensure_ascii=False)
    shown = visible(str(value))
    shown = _HIDDEN.sub(lambda m: "".join("\\%03o" % b for b in m.group().encode("utf-8")), shown)
    return html.escape(shown, quote=True)


def kind(field: Optional[str]) -> str:
    """The kind of drift of a field: its first part (``options.index``: ``options``)."""
    return str(field or "").split(".", 1)[0]


_STATE_CLASS = {"in sync": "st-in-sync", "drift": "st-drift", "unreachable": "st-unreachable", "failed": "st-failed"}


def _summary(report: Mapping[str, Any]) -> List[str]:
    summary = report.get("summary") or fleet_summary(report["hosts"])
    labels = (("hosts", "Hosts"), ("in_sync", "In sync"), ("drifted", "Drifted"), ("unreachable", "Unreachable"),
              ("failed", "Failed"), ("overlays", "Overlays"), ("drifted_overlays", "Drifted overlays"),
              ("drifted_fields", "Drifted fields"))
    out = ['<section id="summary"><h2>Fleet summary</h2><dl class="cards">']
    out += ['<div id="count-%s"><dt>%s</dt><dd>%d</dd></div>' % (k.replace("_", "-"), label, summary.get(k, 0))
            for k, label in labels]
    out.append("</dl>")
    if report.get("engines"):
        out.append('<p class="muted">Only the overlays of: %s.</p>' % ", ".join(text(e) for e in report["engines"]))
    out.append("</section>")
    return out


def _head_cells(columns: Iterable[str]) -> str:
    return "".join('<th scope="col"><button type="button">%s</button></th>' % c for c in columns)


def _hosts(report: Mapping[str, Any]) -> List[str]:
    out = ['<section><h2>Hosts</h2><table id="hosts" class="sortable"><thead><tr>',
           _head_cells(("Host", "State", "Overlays", "Declared", "Engines", "Drifted overlays", "Drifted fields",
                        "Message")),
           "</tr></thead><tbody>"]
    for host in report["hosts"]:
        state = host_status(host)
        engines = host.get("engines") or {}
        by_engine = ", ".join("%d %s" % (engines[e], text(e)) for e in sorted(engines, key=engine_rank))
        declared = host.get("declared")
        out.append(
            '<tr data-host="%s" data-state="%s"><td class="path">%s</td><td class="%s">%s</td>'
            '<td class="num">%d</td><td class="num" data-sort="%d">%s</td><td>%s</td>'
            '<td class="num">%d</td><td class="num">%d</td><td class="value">%s</td></tr>' % (
                text(host["host"]), state, text(host["host"]), _STATE_CLASS[state], state, host.get("overlays") or 0,
                -1 if declared is None else declared, "" if declared is None else declared, by_engine,
                host.get("drifted_overlays") or 0, host.get("drifted_fields") or 0, text(host.get("msg"))))
    out.append("</tbody></table></section>")
    return out


def _options(name: str, label: str, values: Iterable[str]) -> str:
    options = "".join('<option value="%s">%s</option>' % (text(v), text(v)) for v in values)
    return '<label>%s<select id="f-%s"><option value="">all</option>%s</select></label>' % (label, name, options)


def _drift(report: Mapping[str, Any]) -> List[str]:
    rows = report["rows"]
    hosts = [h["host"] for h in report["hosts"]]
    engines = sorted({r.get("engine") or "none" for r in rows}, key=engine_rank)
    kinds = sorted({kind(r.get("field")) for r in rows})
    out = ['<section><h2>Drifted overlays</h2>',
           '<div class="filters">', _options("host", "Host", hosts), _options("engine", "Engine", engines),
           _options("kind", "Drift kind", kinds),
           '<button type="button" id="f-reset">Show all</button><span id="shown" class="muted"></span></div>',
           '<table id="drift" class="sortable"><thead><tr>',
           _head_cells(("Host", "Engine", "Overlay", "Field", "Declared", "Persisted", "Live")),
           "</tr></thead><tbody>"]
    for row in rows:
        engine = row.get("engine") or "none"
        path = text(row.get("path"))
        if row.get("declared_path"):
            path += ' <span class="muted">(declared as %s)</span>' % text(row["declared_path"])
        out.append(
            '<tr data-host="%s" data-engine="%s" data-kind="%s"><td class="path">%s</td>'
            '<td title="%s">%s</td><td class="path" data-sort="%s">%s</td><td><code>%s</code></td>'
            '<td class="value">%s</td><td class="value">%s</td><td class="value">%s</td></tr>' % (
                text(row.get("host")), text(engine), text(kind(row.get("field"))), text(row.get("host")),
                text(ENGINE_TITLES.get(engine, engine)), text(engine), text(row.get("path")), path,
                text(row.get("field")), text(row.get("declared")), text(row.get("persisted")), text(row.get("live"))))
    out.append("</tbody></table>")
    if not rows:
        out.append('<p id="no-drift">No drift: every host matches its declaration and its persisted overlays.</p>')
    out.append("</section>")
    return out


def render(report: Mapping[str, Any], title: str = "Overlay drift report", generated: Optional[str] = None) -> str:
    """:func:`fleet.build`'s report as one HTML page: fleet summary, hosts, then the drifted fields.

    ``generated``, when given, is shown under the title (a time stamp). The
    page fetches nothing: inline style and script only, allowed by hash in
    its Content-Security-Policy.
    """
    head = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" content="%s">' % html.escape(CSP, quote=True),
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="referrer" content="no-referrer">',
        "<title>%s</title>" % text(title),
        "<style>%s</style>" % _STYLE,
        "</head><body>",
        "<h1>%s</h1>" % text(title),
    ]
    if generated:
        head.append('<p class="muted">%s</p>' % text(generated))
    body = _summary(report) + _hosts(report) + _drift(report)
    return "\n".join(head + body + ["<script>%s</script>" % _SCRIPT, "</body></html>"]) + "\n"
