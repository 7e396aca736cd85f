# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Write the fleet drift report on the controller, in the controller's own process."""

import json
import os
from typing import Any, Dict, List, Mapping, Optional

from ansible.plugins.action import ActionBase

from ansible_collections.overlayfs.mounts.plugins.module_utils._host.files import write_atomic
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError
from ansible_collections.overlayfs.mounts.plugins.module_utils._report.fleet import build, console_lines, gate, host_data, markdown
from ansible_collections.overlayfs.mounts.plugins.module_utils._report.html import render

FAIL_ON = ["drift", "unreachable", "failed"]
ARGUMENT_SPEC = {
    "dir": {"type": "path", "default": "."},
    "hosts": {"type": "list", "elements": "str"},
    "result": {"type": "str"},
    "fact": {"type": "str", "default": "overlay_drift"},
    "engines": {"type": "list", "elements": "str"},
    "fail_on": {"type": "list", "elements": "str", "choices": FAIL_ON, "default": []},
    "title": {"type": "str", "default": "Overlay drift report"},
}
FILES = ("drift.json", "drift.md", "drift.html")


def per_host(hostvars: Mapping[str, Any], hosts: List[str], fact: str, result: Optional[str] = None) -> Dict[str, Optional[Mapping[str, Any]]]:
    """Each host's data: made from its registered ``result`` when named, else its ``fact``; None where it has none.

    A registered result is a module's data, never a template, so it is read
    as stored (``HostVars.raw_get``): ``hostvars[host]`` would run the
    templating engine over the whole result, every overlay listed, which
    took the report longer than gathering it (60 ms a host).
    """
    data = {}
    read = getattr(hostvars, "raw_get", None) if result else None
    for host in hosts:
        facts = (read or hostvars.get)(host) if host in hostvars else None
        if facts is None:
            data[host] = None
        elif result:
            data[host] = host_data(facts.get(result))
        else:
            data[host] = facts.get(fact)
    return data


def documents(report: Mapping[str, Any], title: str) -> Dict[str, str]:
    """The three files of a report, by name: the data as JSON, the Markdown and the HTML page."""
    return {
        "drift.json": json.dumps(report, indent=4, sort_keys=True, separators=(",", ": ")) + "\n",
        "drift.md": markdown(report, title=title),
        "drift.html": render(report, title=title),
    }


def _same(path: str, text: str) -> bool:
    try:
        with open(path, "r", encoding="utf-8", newline="") as handle:
            return handle.read() == text
    except (OSError, UnicodeDecodeError):
        return False


class ActionModule(ActionBase):
    """Build the report from every host's facts and write drift.json, drift.md and drift.html."""

    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp: Any = None, task_vars: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        """Write the report (not in check mode), then fail when ``fail_on`` names what it holds."""
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        del tmp
        validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        del validation
        hosts = args["hosts"]
        if hosts is None:
            hosts = list(task_vars.get("ansible_play_hosts_all") or [])
        data = per_host(task_vars.get("hostvars") or {}, hosts, args["fact"], args["result"])
        try:
            report = build(data, args["engines"])
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            source = "the result %s" % args["result"] if args["result"] else "the fact %s" % args["fact"]
            return dict(result, failed=True, msg="overlay_drift_report: %s of a host is not what the report is made of: %s"
                                                 % (source, exc))
        directory = os.path.realpath(args["dir"])
        texts = documents(report, args["title"])
        changed = [name for name in FILES if not _same(os.path.join(directory, name), texts[name])]
        if changed and not self._task.check_mode:
            try:
                os.makedirs(directory, mode=0o755, exist_ok=True)
                for name in changed:
                    write_atomic(None, os.path.join(directory, name), texts[name], step="writing the report")
            except OSError as error:
                return dict(result, failed=True, msg="overlay_drift_report: dir %s: %s" % (directory, error.strerror))
            except OverlayError as error:
                return dict(result, failed=True, msg="overlay_drift_report: %s" % error.message)
        reasons = gate(report, args["fail_on"])
        result.update(changed=bool(changed), dir=directory, files=[os.path.join(directory, name) for name in FILES],
                      written=[os.path.join(directory, name) for name in changed], summary=report["summary"],
                      lines=console_lines(report), gate=reasons)
        if reasons:
            result.update(failed=True, msg="; ".join(reasons))
        return result
