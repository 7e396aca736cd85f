# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The overlayfs.mounts.drift_report filter, as the drift_report playbook calls it."""

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.overlayfs.mounts.plugins.filter.drift_report import FilterModule, drift_report

PER_HOST = {
    "h2": {"declared": [], "declared_paths": ["/srv/m"], "overlays": [{"path": "/srv/m", "drift": []}]},
    "h1": {"declared": [{"path": "/srv/m", "field": "mounted", "declared": True, "live": False,
                         "persisted": True}],
           "declared_paths": ["/srv/m"], "overlays": []},
    "h3": None,
}


def test_the_filter_is_registered():
    assert FilterModule().filters() == {"drift_report": drift_report}


def test_data_output():
    report = drift_report(PER_HOST)
    assert [h["host"] for h in report["hosts"]] == ["h1", "h2", "h3"]
    assert report["rows"] == [{"engine": "overlayfs.mounts", "host": "h1", "path": "/srv/m", "field": "mounted",
                               "declared": True, "live": False, "persisted": True, "declared_path": None}]
    assert drift_report(PER_HOST, output="data") == report


def test_markdown_from_per_host_data_and_from_a_report_agree():
    report = drift_report(PER_HOST)
    text = drift_report(PER_HOST, output="markdown")
    assert drift_report(report, output="markdown") == text
    assert "- h1: 1 drifted field(s) on 1 overlay(s) (0 overlays, 1 declared)\n" in text
    assert "- h2: in sync (1 overlays: 1 overlayfs.mounts, 1 declared)\n" in text
    assert "- h3: failed: no data was gathered from this host\n" in text
    assert text.endswith("| h1 | /srv/m | mounted | true | false | true |\n")


def test_a_report_passes_through_unchanged():
    report = drift_report(PER_HOST)
    assert drift_report(report) == report


def test_empty_fleet():
    assert drift_report({}) == {"hosts": [], "rows": [], "engines": None, "summary": {
        "hosts": 0, "in_sync": 0, "drifted": 0, "unreachable": 0, "failed": 0, "overlays": 0, "drifted_overlays": 0,
        "drifted_fields": 0}}


FLEET = {
    "h1": {"declared": [], "declared_paths": ["/srv/m"], "overlays": [
        {"path": "/srv/m", "engine": "none", "drift": []},
        {"path": "/var/lib/docker/overlay2/a/merged", "engine": "docker", "drift": []},
        {"path": "/var/lib/docker/overlay2/b/merged", "engine": "docker", "drift": []},
        {"path": "/srv/hand", "engine": "none", "drift": [
            {"field": "mounted", "declared": None, "live": False, "persisted": True, "source": "fstab"}]},
    ]},
}


def test_engines_keep_only_those_overlays():
    report = drift_report(FLEET, engines=["overlayfs.mounts"])
    assert report["rows"] == []
    assert report["hosts"][0]["overlays"] == 1
    assert report["hosts"][0]["engines"] == {"overlayfs.mounts": 1}
    assert report["engines"] == ["overlayfs.mounts"]
    report = drift_report(FLEET, engines=["docker", "none"])
    assert [r["path"] for r in report["rows"]] == ["/srv/hand"]
    assert report["hosts"][0]["engines"] == {"docker": 2, "none": 1}
    assert report["engines"] == ["none", "docker"]
    text = drift_report(FLEET, output="markdown", engines=["docker", "none"])
    assert "Only the overlays of: none, docker.\n" in text
    assert "- h1: 1 drifted field(s) on 1 overlay(s) (3 overlays: 1 none, 2 docker, 1 declared)\n" in text


def test_engines_must_be_a_list_of_names():
    with pytest.raises(AnsibleFilterError, match="engines"):
        drift_report(FLEET, engines="docker")
    with pytest.raises(AnsibleFilterError, match="engines"):
        drift_report(drift_report(FLEET), engines=["docker"])


@pytest.mark.parametrize("value", [None, [], "text", 3])
def test_refuses_what_is_not_a_dictionary(value):
    with pytest.raises(AnsibleFilterError, match="dictionary of host name"):
        drift_report(value)


def test_refuses_an_unknown_output():
    with pytest.raises(AnsibleFilterError, match="data, markdown, html, lines, gate, not 'xml'"):
        drift_report(PER_HOST, output="xml")


DOWN = dict(PER_HOST, h4={"status": "unreachable", "msg": "ssh: connect to host 127.0.0.1 port 1: Connection refused"})


def test_html_output_from_per_host_data_and_from_a_report_agree():
    page = drift_report(DOWN, output="html")
    assert page.startswith("<!DOCTYPE html>")
    assert drift_report(drift_report(DOWN), output="html") == page
    assert "ssh: connect to host 127.0.0.1 port 1: Connection refused" in page
    assert "<title>Nightly</title>" in drift_report(DOWN, output="html", title="Nightly")


def test_lines_output():
    assert drift_report(DOWN, output="lines") == [
        "4 host(s): 1 in sync, 1 drifted, 1 unreachable, 1 failed",
        "h1: DRIFT, 0 overlays (1 declared); drifted: mounted",
        "h2: in sync, 1 overlays (1 declared)",
        "h3: FAILED: no data was gathered from this host",
        "h4: UNREACHABLE: ssh: connect to host 127.0.0.1 port 1: Connectio...",
    ]


def test_gate_output():
    assert drift_report(DOWN, output="gate") == []
    assert drift_report(DOWN, output="gate", fail_on=["unreachable", "drift"]) == [
        "drift on 1 host(s): h1", "1 host(s) unreachable: h4"]
    assert drift_report({}, output="gate", fail_on=["drift", "unreachable", "failed"]) == []


@pytest.mark.parametrize("fail_on, match", [
    ("drift", "must be a list such as"),
    (["drift", 3], "must be a list such as"),
    (["unreachabel"], r"drift_report_fail_on must be a list of drift, unreachable, failed, not \['unreachabel'\]"),
])
def test_gate_refuses_a_wrong_fail_on(fail_on, match):
    with pytest.raises(AnsibleFilterError, match=match):
        drift_report({}, output="gate", fail_on=fail_on)


def test_refuses_an_unknown_status():
    with pytest.raises(AnsibleFilterError, match="status must be one of"):
        drift_report({"h": {"status": "down"}})
