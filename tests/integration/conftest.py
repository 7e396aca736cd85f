# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Progress lines for the integration targets.

A target runs for seconds to minutes, and pytest -q prints nothing until it
ends. This prints a line when a target starts, one every 30 s while it runs,
and one with its time when it ends, so a long target never looks hung.
"""

import threading
import time

HEARTBEAT_SECONDS = 30

_state = {"reporter": None, "capman": None, "ticker": None, "stop": None, "start": 0.0}
_lock = threading.Lock()


def _write(text):
    """Write a line to the terminal, past pytest's capture of the test's output."""
    reporter, capman = _state["reporter"], _state["capman"]
    if reporter is None or capman is None:
        return
    with _lock, capman.global_and_fixture_disabled():
        reporter.write_line(text)


def _target(item):
    callspec = getattr(item, "callspec", None)
    if callspec is None or item.originalname != "test_target":
        return None
    return callspec.params.get("target")


def _tick(name, stop, start):
    while not stop.wait(HEARTBEAT_SECONDS):
        _write("    ... %s: still running (%ds)" % (name, time.time() - start))


def pytest_runtest_setup(item):
    name = _target(item)
    if name is None:
        return
    # Looked up here: the terminal reporter registers after this conftest.
    _state["reporter"] = item.config.pluginmanager.get_plugin("terminalreporter")
    _state["capman"] = item.config.pluginmanager.get_plugin("capturemanager")
    _write("")
    _write("==> integration target %s: started" % name)
    _state["start"] = time.time()
    _state["stop"] = threading.Event()
    _state["ticker"] = threading.Thread(target=_tick, args=(name, _state["stop"], _state["start"]))
    _state["ticker"].daemon = True
    _state["ticker"].start()


def pytest_runtest_teardown(item):
    name = _target(item)
    if name is None or _state["stop"] is None:
        return
    _state["stop"].set()
    _state["ticker"].join()
    _state["stop"] = None
    _write("==> integration target %s: done in %ds" % (name, time.time() - _state["start"]))
