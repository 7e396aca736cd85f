# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Prometheus textfile-collector text of a host's overlays (_report.metrics)."""

import re

import pytest

from ansible_collections.overlayfs.mounts.plugins.module_utils._report import metrics

NOW = 1765097698.25
ODD = '/srv/q"uo\\te\nline\tt\u00e9 \u6f22\x1b[31m'
# The exposition format's sample line: name, optional labels, value (no timestamp here).
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\["\\n])*",?)*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\["\\n])*)"')


def _unescape(value):
    return re.sub(r'\\(["\\n])', lambda m: "\n" if m.group(1) == "n" else m.group(1), value)


def parse(text):
    """``{(name, ((label, value), ...)): value}`` of ``text``, checked line by line against the format."""
    assert text.endswith("\n") and not text.endswith("\n\n")
    samples, families, current = {}, [], None
    for line in text[:-1].split("\n"):
        if line.startswith("# HELP "):
            current = line.split(" ", 3)[2]
            assert current not in families, "family %s twice" % current
            families.append(current)
            continue
        if line.startswith("# TYPE "):
            assert line == "# TYPE %s gauge" % current
            continue
        match = SAMPLE.match(line)
        assert match, "not a sample line: %r" % line
        assert match.group(1) == current, "sample of %s outside its family" % match.group(1)
        labels = tuple((k, _unescape(v)) for k, v in LABEL.findall(match.group(2) or ""))
        key = (match.group(1), labels)
        assert key not in samples, "series twice: %r" % (key,)
        samples[key] = float(match.group(3))
    return samples, families


def _entry(path, point=None, **extra):
    return dict({"path": path, "mount": {"path": point or path}, "live": None, "drift": []}, **extra)


def _drift(path, field):
    return {"path": path, "field": field, "declared": True, "live": False, "persisted": True}


def test_every_family_has_help_and_type_and_the_prefix():
    samples, families = parse(metrics.render({"overlays": [], "pruned": [], "drift": []}, NOW))
    assert families == [metrics.PREFIX + name for name, _help in metrics.FAMILIES]
    assert all(name.startswith("overlayfs_mounts_") and not name.endswith("_total") for name in families)
    assert samples[("overlayfs_mounts_last_check_timestamp_seconds", ())] == NOW


def test_an_empty_host():
    samples, _families = parse(metrics.render({"overlays": [], "pruned": [], "drift": []}, NOW, declared=[], overlays=[],
                                              check_mode=True))
    assert samples == {
        ("overlayfs_mounts_declared", (("state", "absent"),)): 0,
        ("overlayfs_mounts_declared", (("state", "mounted"),)): 0,
        ("overlayfs_mounts_declared", (("state", "present"),)): 0,
        ("overlayfs_mounts_declared", (("state", "unmounted"),)): 0,
        ("overlayfs_mounts_mounted", (("engine", "overlayfs.mounts"),)): 0,
        ("overlayfs_mounts_drifting", (("engine", "overlayfs.mounts"),)): 0,
        ("overlayfs_mounts_failed", ()): 0,
        ("overlayfs_mounts_corrected_fields", ()): 0,
        ("overlayfs_mounts_last_check_timestamp_seconds", ()): NOW,
    }


@pytest.mark.parametrize("raw, escaped", [
    ("/srv/plain", "/srv/plain"),
    ('/srv/a"b', '/srv/a\\"b'),
    ("/srv/a\\b", "/srv/a\\\\b"),
    ("/srv/a\nb", "/srv/a\\nb"),
    ('\\"\n', '\\\\\\"\\n'),
    ("/srv/t\u00e9\t\u6f22", "/srv/t\u00e9\t\u6f22"),  # UTF-8 and a tab stay as they are
])
def test_label_value_escaping(raw, escaped):
    assert metrics.escape_label_value(raw) == escaped


def test_help_escaping():
    assert metrics.escape_help('a\\b\n"c"') == 'a\\\\b\\n"c"'


@pytest.mark.parametrize("value, text", [(0, "0"), (3, "3"), (True, "1"), (1.5, "1.5"), (float("nan"), "NaN"),
                                         (float("inf"), "+Inf"), (float("-inf"), "-Inf"), (NOW, "1765097698.25")])
def test_values(value, text):
    assert metrics.format_value(value) == text


def test_odd_mount_points_go_through_escaped_and_come_back():
    result = {"overlays": [_entry(ODD)], "pruned": [], "drift": [_drift(ODD, "lowerdir"), _drift(ODD, "options.index")]}
    text = metrics.render(result, NOW, declared=[{"path": ODD}], overlays=[{"path": ODD, "mounted": True}], check_mode=True)
    assert '\\"uo\\\\te\\nline' in text and "\n" not in text.split('mount_point="', 1)[1].split('"', 1)[0]
    samples, _families = parse(text)
    own = ("engine", "overlayfs.mounts")
    assert samples[("overlayfs_mounts_drift", (own, ("mount_point", ODD), ("field", "lowerdir")))] == 1
    assert samples[("overlayfs_mounts_drift", (own, ("mount_point", ODD), ("field", "options.index")))] == 1
    assert samples[("overlayfs_mounts_drifting", (own,))] == 1
    assert samples[("overlayfs_mounts_mounted", (own,))] == 1


def test_a_byte_that_is_not_utf8_shows_as_overlay_mount_info_shows_it():
    path = "/srv/bad\udcff\\123"  # the byte 0xff (a surrogate escape), and a backslash before three digits
    result = {"overlays": [_entry(path)], "pruned": [], "drift": [_drift(path, "mounted")]}
    text = metrics.render(result, NOW, check_mode=True)
    text.encode("utf-8")  # no surrogate left
    samples, _families = parse(text)
    labels = (("engine", "overlayfs.mounts"), ("mount_point", "/srv/bad\\377\\134123"), ("field", "mounted"))
    assert samples[("overlayfs_mounts_drift", labels)] == 1


def test_a_declared_path_through_a_symlink_is_reported_at_its_mount_point():
    result = {"overlays": [_entry("/srv/link/m", "/data/m")], "pruned": [], "drift": [_drift("/srv/link/m", "mounted")]}
    samples, _families = parse(metrics.render(result, NOW, overlays=[], check_mode=True))
    assert ("overlayfs_mounts_drift", (("engine", "overlayfs.mounts"), ("mount_point", "/data/m"), ("field", "mounted"))) in samples


def test_many_overlays_by_engine_with_undeclared_drift():
    declared = [{"path": "/srv/o%03d" % i} for i in range(300)] + [{"path": "/srv/gone", "state": "absent"}]
    entries = [_entry(d["path"], live={"path": d["path"]}) for d in declared]
    rows = [_drift("/srv/o%03d" % i, field) for i in range(0, 300, 3) for field in ("lowerdir", "mounted")]
    info = [{"path": d["path"], "mounted": True, "engine": None} for d in declared[:-1]]
    info += [{"path": "/var/lib/docker/overlay2/%d/merged" % i, "mounted": True, "engine": "docker"} for i in range(500)]
    info += [{"path": "/srv/by-hand", "mounted": False, "engine": None, "drift": [{"field": "mounted"}]},
             {"path": "/usr", "mounted": True, "engine": "systemd-sysext"}]
    samples, _families = parse(metrics.render({"overlays": entries, "pruned": [], "drift": rows}, NOW,
                                              declared=declared, overlays=info, check_mode=True))
    assert samples[("overlayfs_mounts_declared", (("state", "mounted"),))] == 300
    assert samples[("overlayfs_mounts_declared", (("state", "absent"),))] == 1
    assert samples[("overlayfs_mounts_mounted", (("engine", "overlayfs.mounts"),))] == 300
    assert samples[("overlayfs_mounts_mounted", (("engine", "docker"),))] == 500
    assert samples[("overlayfs_mounts_mounted", (("engine", "systemd-sysext"),))] == 1
    assert ("overlayfs_mounts_mounted", (("engine", "none"),)) not in samples  # /srv/by-hand is not mounted
    assert samples[("overlayfs_mounts_drifting", (("engine", "overlayfs.mounts"),))] == 100
    assert samples[("overlayfs_mounts_drifting", (("engine", "none"),))] == 1
    assert len([k for k in samples if k[0] == "overlayfs_mounts_drift"]) == 201
    assert samples[("overlayfs_mounts_drift", (("engine", "none"), ("mount_point", "/srv/by-hand"), ("field", "mounted")))] == 1


def test_info_drift_of_a_declared_overlay_is_not_counted_twice():
    result = {"overlays": [_entry("/srv/m")], "pruned": [], "drift": [_drift("/srv/m", "mounted")]}
    info = [{"path": "/srv/m", "mounted": False, "engine": "overlayfs.mounts", "drift": [{"field": "mounted"}]}]
    samples, _families = parse(metrics.render(result, NOW, overlays=info, check_mode=True))
    assert [k for k in samples if k[0] == "overlayfs_mounts_drift"] == [
        ("overlayfs_mounts_drift", (("engine", "overlayfs.mounts"), ("mount_point", "/srv/m"), ("field", "mounted")))]


def test_a_real_run_reports_what_it_corrected_not_drift():
    result = {"overlays": [_entry("/srv/m", live={"path": "/srv/m"})], "pruned": [],
              "drift": [_drift("/srv/m", "mounted"), _drift("/srv/m", "persisted")]}
    samples, _families = parse(metrics.render(result, NOW, declared=[{"path": "/srv/m"}], check_mode=False))
    assert samples[("overlayfs_mounts_corrected_fields", ())] == 2
    assert samples[("overlayfs_mounts_drifting", (("engine", "overlayfs.mounts"),))] == 0
    assert samples[("overlayfs_mounts_mounted", (("engine", "overlayfs.mounts"),))] == 1  # from the result's live
    assert not [k for k in samples if k[0] == "overlayfs_mounts_drift"]


def test_failed_entries_and_a_refused_list():
    result = {"failed": True, "msg": "1 of 2 overlays failed", "pruned": [],
              "overlays": [_entry("/srv/a"), {"path": "/srv/b", "failed": True, "msg": "no lowerdir"}], "drift": []}
    samples, _families = parse(metrics.render(result, NOW, declared=[{"path": "/srv/a"}, {"path": "/srv/b"}]))
    assert samples[("overlayfs_mounts_failed", ())] == 1
    refused = {"failed": True, "msg": "/srv/a is listed twice", "changed": False}
    samples, _families = parse(metrics.render(refused, NOW, declared=[{"path": "/srv/a"}, {"path": "/srv/a"}]))
    assert samples[("overlayfs_mounts_failed", ())] == 2
    assert samples[("overlayfs_mounts_declared", (("state", "mounted"),))] == 2


def test_without_declared_the_result_entries_are_counted():
    result = {"overlays": [_entry("/srv/a"), _entry("/srv/b")], "pruned": [], "drift": []}
    samples, _families = parse(metrics.render(result, NOW))
    assert samples[("overlayfs_mounts_declared", (("state", "mounted"),))] == 2


def test_pruned_overlays_drift_in_check_mode():
    result = {"overlays": [], "pruned": [_entry("/srv/old")], "drift": [_drift("/srv/old", "mounted")]}
    info = [{"path": "/srv/old", "mounted": True, "engine": "overlayfs.mounts"}]
    samples, _families = parse(metrics.render(result, NOW, overlays=info, check_mode=True))
    assert samples[("overlayfs_mounts_drift", (("engine", "overlayfs.mounts"), ("mount_point", "/srv/old"),
                                               ("field", "mounted")))] == 1
    assert samples[("overlayfs_mounts_mounted", (("engine", "overlayfs.mounts"),))] == 1


def test_the_same_series_is_written_once():
    result = {"overlays": [_entry("/srv/m")], "pruned": [], "drift": [_drift("/srv/m", "mounted")] * 2}
    text = metrics.render(result, NOW, check_mode=True)
    assert text.count('field="mounted"') == 1
    parse(text)
