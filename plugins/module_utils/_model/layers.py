# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""An overlay's set of directories: its layers, upper and work dir, named by field. Pure."""

from typing import List, Optional, Sequence, Tuple

from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError


def check_pairing(upperdir: Optional[str], workdir: Optional[str]) -> None:
    """An overlay is writable with both an upper and a work dir, read-only with neither."""
    if (upperdir is None) != (workdir is None):
        raise OverlayError(
            "upperdir and workdir go together: give both for a writable overlay, "
            "or neither for a read-only one")


def named_layers(lowerdir: Sequence[str], upperdir: Optional[str] = None, workdir: Optional[str] = None,
                 datadir: Sequence[str] = ()) -> List[Tuple[str, str]]:
    """``[(field, path)]`` for every layer, upper and work dir, top layer first."""
    named = [("lowerdir[%d]" % i, p) for i, p in enumerate(lowerdir)]
    named += [("datadir[%d]" % i, p) for i, p in enumerate(datadir)]
    named += [(field, p) for field, p in (("upperdir", upperdir), ("workdir", workdir)) if p is not None]
    return named


def requires_mounts_for(lowerdir: Sequence[str], upperdir: Optional[str] = None, workdir: Optional[str] = None,
                        datadir: Sequence[str] = (), also: Sequence[str] = ()) -> List[str]:
    """Every directory the overlay needs mounted first, each once, top layer first.

    ``also``: where the paths declared through symlinks lead now
    (``Declaration.also_needs``), whose mounts a boot needs as well.
    """
    named = [p for _field, p in named_layers(lowerdir, upperdir, workdir, datadir)]
    return list(dict.fromkeys(named + list(also)))
