# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)


class ModuleDocFragment:
    """The ``attributes`` block of this collection's modules.

    ``DOCUMENTATION`` is the whole block of the modules that change the host,
    which support all three fully; a module that supports less overrides
    ``support`` in its own ``attributes`` (Ansible merges the module's keys
    of an attribute over the fragment's). ``INFO_MODULE`` is the whole block
    of a module that only reads.
    """

    DOCUMENTATION = r"""
options: {}
attributes:
  action:
    description: Has an action plugin, which keeps the module's built payload on the controller between runs.
    support: full
    details: The payload is kept under C(ANSIBLE_HOME); C(OVERLAYFS_MOUNTS_PAYLOAD_CACHE=off) on the controller turns that off.
  check_mode:
    description: Can run in check mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
    support: full
"""

    INFO_MODULE = r"""
options: {}
attributes:
  action:
    description: Has an action plugin, which keeps the module's built payload on the controller between runs.
    support: full
    details: The payload is kept under C(ANSIBLE_HOME); C(OVERLAYFS_MOUNTS_PAYLOAD_CACHE=off) on the controller turns that off.
  check_mode:
    description: Can run in check mode; it only reads, so it does the same as a normal run.
    support: full
  diff_mode:
    description: Returns no diff, since it changes nothing.
    support: none
  idempotent:
    description: Reads only; running it twice gives the same result and changes nothing.
    support: full
"""
