# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run the overlay_upper module, its payload kept on the controller between runs (see docs/performance.md)."""

from ansible_collections.overlayfs.mounts.plugins.plugin_utils.cached_action import CachedPayloadAction


class ActionModule(CachedPayloadAction):
    """The overlay_upper module's action."""
