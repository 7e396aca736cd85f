# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A module's ``main()`` run in this process with injected arguments, as AnsiballZ hands them over.

For tests that drive ``overlay_mount`` and ``overlay_upper`` many times inside
one private mount namespace, where a playbook per run would cost seconds.
"""

import json
import os
import sys
import tempfile
from typing import Any, Dict


class InProcess:
    """Runs a module's ``main()`` here with injected arguments; returns its result."""

    def __init__(self) -> None:
        from ansible.module_utils import basic  # pylint: disable=import-outside-toplevel
        from ansible.module_utils.common import warnings  # pylint: disable=import-outside-toplevel
        from ansible_collections.overlayfs.mounts.plugins.modules import (  # pylint: disable=import-outside-toplevel
            overlay_mount,
            overlay_upper,
        )
        self.basic, self.warnings = basic, warnings
        self.modules = {"overlay_mount": overlay_mount, "overlay_upper": overlay_upper}

    def __call__(self, name: str, args: Dict[str, Any], check_mode: bool = False) -> Dict[str, Any]:
        payload = dict(args, _ansible_check_mode=check_mode, _ansible_diff=False)
        self.basic._ANSIBLE_ARGS = json.dumps({"ANSIBLE_MODULE_ARGS": payload}).encode()
        self.basic._ANSIBLE_PROFILE = "legacy"
        self.warnings._global_warnings.clear()
        self.warnings._global_deprecations.clear()
        with tempfile.TemporaryFile() as out:
            saved = os.dup(1)
            sys.stdout.flush()
            os.dup2(out.fileno(), 1)
            try:
                self.modules[name].main()
            except SystemExit:
                pass
            finally:
                sys.stdout.flush()
                os.dup2(saved, 1)
                os.close(saved)
            out.seek(0)
            text = out.read().decode("utf-8", "replace").strip()
        return json.loads(text.splitlines()[-1])
