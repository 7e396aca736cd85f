# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What rendering a persisted overlay depends on, read from the host at most once per run."""

from typing import Any, Callable, Optional, Union

#: A fact, or a function of no arguments that reads it from the host.
Lazy = Union[Any, Callable[[], Any]]


class HostFacts(object):
    """Whether the kernel takes ``lowerdir+``, whether the host's mount(8) uses
    fsconfig() (None: unknown), whether systemd runs (is PID 1), and the version
    of the installed systemd (None: none, or unknown).

    ``fsconfig`` and ``systemd_version`` may be given as functions of no
    arguments: each is then called the first time it is asked for, and its
    answer kept. Most runs never ask: the first matters only for an option
    value longer than one fsconfig() value, the second only for a mount point
    whose unit gets a hashed name. So a run that needs neither starts neither
    ``mount -V`` nor ``systemctl --version``.
    """

    __slots__ = ("lowerdir_plus", "booted", "_fsconfig", "_systemd_version")

    def __init__(self, lowerdir_plus: bool, fsconfig: Lazy = None, booted: bool = False, systemd_version: Lazy = None) -> None:
        self.lowerdir_plus = lowerdir_plus
        self.booted = booted
        self._fsconfig = fsconfig
        self._systemd_version = systemd_version

    @property
    def fsconfig(self) -> Optional[bool]:
        if callable(self._fsconfig):
            self._fsconfig = self._fsconfig()
        return self._fsconfig

    @property
    def systemd_version(self) -> Optional[int]:
        if callable(self._systemd_version):
            self._systemd_version = self._systemd_version()
        return self._systemd_version

    def __repr__(self) -> str:
        return "HostFacts(lowerdir_plus=%r, fsconfig=%r, booted=%r, systemd_version=%r)" % (
            self.lowerdir_plus, self._fsconfig, self.booted, self._systemd_version)
