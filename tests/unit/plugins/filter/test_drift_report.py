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
    assert "- h3: no data (the host failed or was unreachable)\n" in text
    assert text.endswith("| h1 | /srv/m | mounted | true | false | true |\n")


def test_a_report_passes_through_unchanged():
    report = drift_report(PER_HOST)
    assert drift_report(report) == report


def test_empty_fleet():
    assert drift_report({}) == {"hosts": [], "rows": [], "engines": None}


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
    with pytest.raises(AnsibleFilterError, match="'html'"):
        drift_report(PER_HOST, output="html")
