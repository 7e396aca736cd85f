# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""overlay_mounts' whole task: the kernel module, the list (``batch.run_batch``), every overlay listed, the metrics file.

The host's overlays are listed after the list's changes, when the task
returns them (``list_overlays``) or writes the metrics file, which needs
them. The metrics file is written whatever the run's outcome: a run that
failed, or broke with an unexpected error, is what monitoring most needs to
see.
"""

import time
from typing import Any, Callable, Dict, Optional, Tuple

from ansible_collections.overlayfs.mounts.plugins.module_utils._converge.batch import run_batch
from ansible_collections.overlayfs.mounts.plugins.module_utils._host.files import write_atomic
from ansible_collections.overlayfs.mounts.plugins.module_utils._host.kernel_module import keep_at_boot, load_overlay
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.spec import invocation
from ansible_collections.overlayfs.mounts.plugins.module_utils._report.host_overlays import list_overlays
from ansible_collections.overlayfs.mounts.plugins.module_utils._report.metrics import render
from ansible_collections.overlayfs.mounts.plugins.module_utils._report.printable import escape_bytes, utf8_result

Result = Tuple[Dict[str, Any], bool]


def listing(params: Dict[str, Any]) -> Tuple[Dict[str, Any], Optional[str]]:
    """``({"overlay_mounts": [...]}, None)`` when the list is wanted, ``({}, None)`` when not, ``({}, why)`` when the host cannot be read."""
    if not params["list_overlays"] and not params["metrics_file"]:
        return {}, None
    try:
        return {"overlay_mounts": list_overlays(params["fstab"], [params["unit_dir"]])}, None
    except OverlayError as error:
        return {}, escape_bytes(error.message)


def converge_host(module: Any) -> Result:
    """The task's result (UTF-8 safe, the host's overlays listed when wanted), and whether the task failed.

    overlayfs is loaded first (the checks of the list read the live host);
    modules_load_file is written only once the list has passed its checks,
    so a refused list leaves every file as it was.
    """
    p = module.params
    loaded, kernel, at_boot = False, None, []
    if p["load_module"]:
        try:
            loaded, kernel = load_overlay(module, p["modules_load_file"])
        except OverlayError as error:
            return dict(error.details, msg=error.message, changed=False), True

    def accepted() -> None:
        if kernel is not None:
            at_boot.append(keep_at_boot(module, kernel))
    try:
        out, failed = run_batch(module, accepted=accepted)
    except OverlayError as error:  # the list as a whole was refused: no file changed
        refused = dict(error.details, msg=error.message, changed=loaded or any(at_boot), kernel=kernel)
        return utf8_result(dict(refused, **listing(p)[0])), True
    listed, unreadable = listing(p)
    out.update(changed=loaded or any(at_boot) or out["changed"], kernel=kernel, invocation=invocation(p), **listed)
    if failed:
        out["msg"] = "%d of %d overlays failed: %s" % (
            len(failed), len(out["overlays"]) + len(out["pruned"]),
            "; ".join("%s: %s" % (r["path"], r["msg"]) for r in failed))
    if unreadable:  # the results stay; the message says why the list is missing
        out["msg"] = unreadable if not failed else "%s; %s" % (unreadable, out["msg"])
    return utf8_result(out), bool(failed or unreadable)


def write_metrics(module: Any, out: Dict[str, Any]) -> Optional[str]:
    """Write metrics_file (when set) from the result ``out``; the error when it could not be written, else None."""
    p = module.params
    if not p["metrics_file"]:
        return None
    text = render(out, time.time(), declared=p["mounts"], overlays=out.get("overlay_mounts"), check_mode=module.check_mode)
    try:
        write_atomic(module, p["metrics_file"], text, step="writing metrics_file")
    except OverlayError as error:
        return error.message
    return None


def run_task(module: Any, converge: Callable[[Any], Result] = converge_host) -> Result:
    """overlay_mounts' result and whether it failed: ``converge``, then the metrics file, written in every case.

    An unexpected error in ``converge`` is raised again once the file says
    the run failed. The host's overlays are returned only with
    ``list_overlays``; a metrics file that cannot be written fails the task,
    its message added to the result's.
    """
    try:
        out, failed = converge(module)
    except Exception:
        try:
            write_metrics(module, {"failed": True})
        except Exception:  # pylint: disable=broad-except
            pass  # the error that broke the run is the one to report
        raise
    unwritten = write_metrics(module, out)
    if not module.params["list_overlays"]:
        out.pop("overlay_mounts", None)
    if unwritten:
        out["msg"] = "%s; %s" % (out["msg"], unwritten) if "msg" in out else unwritten
    return out, bool(failed or unwritten)
