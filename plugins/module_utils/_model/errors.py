# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's one exception type; modules turn it into fail_json."""

from typing import Any


class OverlayError(Exception):
    """An error meant for the user: the message names the field and the fix.

    Keyword arguments become extra keys of the module's failure result
    (for example ``holders`` or ``kernel_log``).
    """

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
