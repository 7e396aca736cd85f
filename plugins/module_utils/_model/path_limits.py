# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""How long a path the kernel takes, checked before anything is created. Pure.

Linux refuses a path of PATH_MAX (4096) bytes or more, the terminating NUL
included, with ENAMETOOLONG: mount(2), fsconfig(), rmdir() and open() alike.
Directories can still be made deeper one at a time (relative to an open
parent, as the collection creates them), but then nothing can mount or
remove them by name. So every path a declaration names, and every path the
collection would make for it, is measured first.
"""

from typing import Any, Iterable, List, Optional, Tuple

from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError

#: linux/limits.h PATH_MAX: bytes in a path, the terminating NUL included.
PATH_MAX = 4096
#: The longest path the kernel takes, in bytes.
PATH_BYTES_MAX = PATH_MAX - 1


def path_bytes(path: str) -> int:
    """The length of ``path`` in bytes, as the kernel counts it (UTF-8, undecodable bytes kept)."""
    return len(path.encode("utf-8", "surrogateescape"))


def declared_paths(decl: Any, made: Iterable[Tuple[str, Optional[str]]] = ()) -> List[Tuple[str, str]]:
    """``[(field, path)]``: the mount point, every layer, upper and work dir of ``decl``, then ``made``.

    ``made``: the ``(field, path)`` of what the collection would create for
    it elsewhere (its short links' dir and links, its unit file), None skipped.
    """
    named = [("path", decl.path)] + list(decl.named_dirs())
    return [(field, path) for field, path in named + list(made) if path]


def check_path_lengths(named: Iterable[Tuple[str, Optional[str]]]) -> None:
    """Refuse the first path of ``named`` (``(field, path)`` pairs) that is longer than the kernel takes."""
    for field, path in named:
        if not path:
            continue
        size = path_bytes(path)
        if size > PATH_BYTES_MAX:
            shown = path if len(path) <= 96 else "%s...%s" % (path[:60], path[-30:])
            raise OverlayError(
                "%s: the path %r is %d bytes long; Linux takes at most %d bytes in a path (PATH_MAX %d, "
                "its NUL included), so it could neither be mounted nor removed by name. Give a shorter "
                "path (move the directory higher up, or bind-mount it at a shorter one); nothing was created"
                % (field, shown, size, PATH_BYTES_MAX, PATH_MAX), field=field, path_bytes=size)
