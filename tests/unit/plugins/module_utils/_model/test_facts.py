# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``HostFacts``: facts given as values, or read from the host the first time they are asked for. Pure."""

import pytest

from ansible_collections.overlayfs.mounts.plugins.module_utils._model.facts import HostFacts


def test_facts_given_as_values_are_what_is_read():
    facts = HostFacts(True, False, True, 252)
    assert (facts.lowerdir_plus, facts.fsconfig, facts.booted, facts.systemd_version) == (True, False, True, 252)


def test_unknown_facts_default_to_none():
    facts = HostFacts(lowerdir_plus=False)
    assert (facts.fsconfig, facts.booted, facts.systemd_version) == (None, False, None)


@pytest.mark.parametrize("answer", [True, False, None])
def test_mount_fsconfig_is_read_on_the_first_ask_and_kept(answer, counted_read):
    reader = counted_read(answer)
    facts = HostFacts(True, reader, False)
    assert reader.calls == 0 and "CountedRead" in repr(facts)  # building and showing the facts reads nothing
    assert [facts.fsconfig, facts.fsconfig] == [answer, answer]
    assert reader.calls == 1


@pytest.mark.parametrize("answer", [247, None])
def test_systemd_version_is_read_on_the_first_ask_and_kept(answer, counted_read):
    reader = counted_read(answer)
    facts = HostFacts(True, None, True, reader)
    assert reader.calls == 0
    assert [facts.systemd_version, facts.systemd_version] == [answer, answer]
    assert reader.calls == 1
