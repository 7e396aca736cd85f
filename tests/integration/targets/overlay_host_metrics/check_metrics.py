# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Check a textfile-collector file the overlay_host role wrote: check_metrics.py FILE EXPECTED_JSON.

1. Its values: EXPECTED_JSON has ``values`` (``[name, labels, value]``
   each), ``drift`` (``[mount_point, field]`` each: exactly the
   ``overlayfs_mounts_drift`` series of ``engine``), ``engine`` and
   ``not_before`` (the last check's timestamp is not older).
2. ``promtool check metrics``: no error and no lint problem.
3. A real node_exporter (``prometheus-node-exporter`` or ``node_exporter``)
   with only the textfile collector, on a free port on 127.0.0.1, scraped
   over HTTP: every overlayfs_mounts_* series of the file with its value,
   and ``node_textfile_scrape_error 0``.

A step whose tool is not installed prints ``SKIPPED: <reason>`` and the
others still run. Any difference fails (exit 1) with what differed.
Run with the controller's Python.
"""

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

PREFIX = "overlayfs_mounts_"
ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}


def _label_values(text, pos):
    """Parse ``name="value",...}`` from ``pos`` (after the brace); the labels and the position after the brace."""
    labels = {}
    while text[pos] != "}":
        equals = text.index("=", pos)
        name = text[pos:equals].strip().lstrip(",").strip()
        assert text[equals + 1] == '"', "a label value must be quoted: %r" % text
        pos, value = equals + 2, []
        while text[pos] != '"':
            if text[pos] == "\\":
                value.append(ESCAPES[text[pos + 1]])  # any other escape is invalid: KeyError
                pos += 2
            else:
                assert text[pos] != "\n", "a raw newline in a label value: %r" % text
                value.append(text[pos])
                pos += 1
        labels[name] = "".join(value)
        pos += 1
        if text[pos] == ",":
            pos += 1
    return labels, pos + 1


def parse(text):
    """``{(name, frozenset(labels)): value}`` of the exposition ``text``; HELP and TYPE names per family."""
    samples, typed = {}, {}
    for line in text.split("\n"):
        if not line:
            continue
        if line.startswith("# TYPE ") or line.startswith("# HELP "):
            words = line.split(" ", 3)
            typed.setdefault(words[2], set()).add(words[1])
            continue
        if line.startswith("#"):
            continue
        brace = line.find("{")
        space = line.find(" ")
        if brace != -1 and (space == -1 or brace < space):
            name, (labels, pos) = line[:brace], _label_values(line, brace + 1)
        else:
            name, labels, pos = line[:space], {}, space
        key = (name, frozenset(labels.items()))
        assert key not in samples, "series twice: %r" % (key,)
        samples[key] = float(line[pos:].split()[0])
    return samples, typed


def check_values(samples, typed, expected):
    errors = []
    ours = {key: value for key, value in samples.items() if key[0].startswith(PREFIX)}
    for name in {key[0] for key in ours}:
        if typed.get(name) != {"HELP", "TYPE"}:
            errors.append("%s: HELP and TYPE lines %s" % (name, sorted(typed.get(name) or ())))
        if name.endswith("_total"):
            errors.append("%s: a gauge named like a counter" % name)
    for name, labels, value in expected["values"]:
        got = ours.get((name, frozenset(labels.items())))
        if got != value:
            errors.append("%s%s: expected %r, got %r" % (name, labels, value, got))
    drift = {(dict(k[1])["mount_point"], dict(k[1])["field"]) for k, v in ours.items()
             if k[0] == PREFIX + "drift" and dict(k[1]).get("engine") == expected["engine"] and v == 1}
    want = {tuple(pair) for pair in expected["drift"]}
    if drift != want:
        errors.append("drift series: missing %r, unexpected %r" % (sorted(want - drift), sorted(drift - want)))
    stamp = ours.get((PREFIX + "last_check_timestamp_seconds", frozenset()))
    if stamp is None or not expected["not_before"] <= stamp <= time.time() + 1:
        errors.append("last_check_timestamp_seconds %r not in [%s, now]" % (stamp, expected["not_before"]))
    return errors


def check_promtool(text):
    promtool = shutil.which("promtool")
    if promtool is None:
        return [], "SKIPPED: promtool check metrics - promtool is not installed (Debian package prometheus)"
    proc = subprocess.run([promtool, "check", "metrics"], input=text.encode("utf-8"), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=60, check=False)
    out = proc.stdout.decode("utf-8", "replace").strip()
    if proc.returncode != 0 or out:
        return ["promtool check metrics (rc %d): %s" % (proc.returncode, out)], None
    return [], "promtool check metrics: no problem"


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _scrape(url, proc, deadline):
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.read().decode("utf-8")
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                raise
            time.sleep(0.2)


def check_node_exporter(path, file_samples):
    binary = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")
    if binary is None:
        return [], "SKIPPED: scrape by node_exporter - it is not installed (Debian package prometheus-node-exporter)"
    directory = path.rsplit("/", 1)[0]
    port = _free_port()
    proc = subprocess.Popen([binary, "--collector.disable-defaults", "--collector.textfile",
                             "--collector.textfile.directory=" + directory, "--web.listen-address=127.0.0.1:%d" % port],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        text = _scrape("http://127.0.0.1:%d/metrics" % port, proc, time.time() + 20)
    finally:
        proc.terminate()
        try:
            log = proc.communicate(timeout=10)[1].decode("utf-8", "replace")
        except subprocess.TimeoutExpired:
            proc.kill()
            log = proc.communicate()[1].decode("utf-8", "replace")
    scraped, _typed = parse(text)
    errors = []
    if scraped.get(("node_textfile_scrape_error", frozenset())) != 0:
        errors.append("node_textfile_scrape_error is %r; node_exporter said:\n%s" % (
            scraped.get(("node_textfile_scrape_error", frozenset())), log[-3000:]))
    ours = {key: value for key, value in scraped.items() if key[0].startswith(PREFIX)}
    mine = {key: value for key, value in file_samples.items() if key[0].startswith(PREFIX)}
    if ours != mine:
        errors.append("node_exporter serves other overlayfs_mounts series than the file: missing %r, different %r" % (
            sorted(set(mine) - set(ours)), sorted(k for k in ours if mine.get(k) != ours[k])))
    return errors, "node_exporter %s on 127.0.0.1:%d served the file's %d series, node_textfile_scrape_error 0" % (
        binary, port, len(mine))


def main():
    path, expected = sys.argv[1], json.loads(sys.argv[2])
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    assert text.endswith("\n"), "the file must end with a newline"
    samples, typed = parse(text)
    errors = check_values(samples, typed, expected)
    notes = ["values: %d series checked" % len(samples)]
    for step in (lambda: check_promtool(text), lambda: check_node_exporter(path, samples)):
        found, note = step()
        errors += found
        if note:
            notes.append(note)
    print("\n".join(notes))
    if errors:
        print("\n".join(["FAILED:"] + errors))
        print(text)
        sys.exit(1)


if __name__ == "__main__":
    main()
