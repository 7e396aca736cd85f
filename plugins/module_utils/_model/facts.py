# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What rendering a persisted overlay depends on, read from the host once per run."""

from typing import NamedTuple, Optional


class HostFacts(NamedTuple):
    """Whether the kernel takes ``lowerdir+``, whether the host's mount(8) uses
    fsconfig() (None: unknown), whether systemd runs (is PID 1), and the version
    of the installed systemd (None: none, or unknown)."""

    lowerdir_plus: bool
    fsconfig: Optional[bool]
    booted: bool
    systemd_version: Optional[int] = None
