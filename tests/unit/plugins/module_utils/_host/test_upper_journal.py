# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""_host/upper_journal.py: the journal beside an upper dir and the atomic swap of two dirs."""

import json
import os

import pytest

from ansible_collections.overlayfs.mounts.plugins.module_utils._host import upper_journal


def test_staging_dir_is_a_hidden_sibling():
    assert upper_journal.staging_dir("/srv/ov/upper") == "/srv/ov/.upper.overlay-upper"
    assert upper_journal.staging_dir("/srv/ov/upper/") == "/srv/ov/.upper.overlay-upper"


def test_journal_round_trip_and_removal(tmp_path):
    staging = str(tmp_path / ".upper.overlay-upper")
    assert upper_journal.read_journal(staging) is None
    upper_journal.write_journal(staging, {"state": "reset", "identities": {"upperdir": [1, 2]}})
    assert upper_journal.read_journal(staging) == {"state": "reset", "identities": {"upperdir": [1, 2]}}
    assert sorted(os.listdir(staging)) == ["journal.json"]
    upper_journal.write_journal(staging, {"state": "committed"})
    assert upper_journal.read_journal(staging)["state"] == "committed"
    upper_journal.remove_journal(staging)
    assert not os.path.exists(staging)


def test_a_journal_cut_short_reads_as_one_that_changed_nothing(tmp_path):
    staging = tmp_path / "s"
    staging.mkdir()
    (staging / "journal.json").write_text('{"state": "res')
    assert upper_journal.read_journal(str(staging)) == {"op": "unknown", "phase": "written"}


def test_remove_journal_keeps_a_staging_dir_that_holds_more(tmp_path):
    staging = tmp_path / "s"
    upper_journal.write_journal(str(staging), {})
    (staging / "upper").mkdir()
    upper_journal.remove_journal(str(staging))
    assert sorted(os.listdir(str(staging))) == ["upper"]


def test_exchange_swaps_two_dirs(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    (first / "in-a").write_text("a")
    (second / "in-b").write_text("b")
    before = upper_journal.identity(str(first))
    upper_journal.exchange(str(first), str(second))
    assert os.listdir(str(first)) == ["in-b"] and os.listdir(str(second)) == ["in-a"]
    assert upper_journal.identity(str(second)) == before


def test_exchange_with_a_missing_dir_fails_and_changes_nothing(tmp_path):
    first = tmp_path / "a"
    first.mkdir()
    with pytest.raises(OSError) as caught:
        upper_journal.exchange(str(first), str(tmp_path / "missing"))
    assert "exchanging" in str(caught.value)
    assert first.is_dir()


def test_identity_of_a_missing_path_is_none(tmp_path):
    assert upper_journal.identity(str(tmp_path / "missing")) is None
    assert upper_journal.identity(str(tmp_path)) == (os.lstat(str(tmp_path)).st_dev, os.lstat(str(tmp_path)).st_ino)


def test_journal_is_json_a_person_can_read(tmp_path):
    staging = str(tmp_path / "s")
    upper_journal.write_journal(staging, {"state": "committed", "layer": "/srv/layers/one"})
    with open(os.path.join(staging, "journal.json")) as handle:
        assert json.load(handle)["layer"] == "/srv/layers/one"
