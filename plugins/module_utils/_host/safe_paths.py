# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Paths an unprivileged user may influence: resolve, create and link without being redirected.

The module runs as root, but the paths it is given may pass through
directories other users can write (``/tmp``, a user's home). Three rules:

* **No unsafe transitions** (the rule of systemd-tmpfiles and ``chase()``'s
  CHASE_SAFE): walking a path, each step goes from a directory to an entry
  in it. When that directory is not owned by root, the entry must have the
  same owner. A symlink another user planted (in their home, or in a sticky
  world-writable dir: the link is theirs, and then leads to root's ``/``) is
  refused instead of followed, so an upper dir, work dir or mount point
  cannot be redirected to a victim directory.
* **fd-relative creation**: directories are made with ``mkdir(name,
  dir_fd=)`` under a parent opened with ``O_NOFOLLOW|O_DIRECTORY``, and their
  mode and owner are set with ``fchmod``/``fchown`` on the opened directory,
  so swapping in a link between steps cannot redirect any of it.
* **Link directories** must be root's and not writable by group or others,
  and only the links this collection names (``0``, ``1``, ...) are ever
  removed from them.
"""

import errno
import os
import pwd
import stat
from typing import Any, Callable, Iterable, List, Optional, Sequence, Tuple

from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError

_MAX_LINKS = 40
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


def _owner(uid):
    try:
        return "%s (uid %d)" % (pwd.getpwuid(uid).pw_name, uid)
    except KeyError:
        return "uid %d" % uid


def unsafe_transition(parent: os.stat_result, child: os.stat_result) -> bool:
    """True when stepping from ``parent`` to ``child`` (stat results) is unsafe.

    From a root-owned directory anything goes; from another user's, only to
    what that same user owns (so their link cannot lead into root's files).
    """
    if parent.st_uid == 0:
        return False
    return parent.st_uid != child.st_uid


def _refuse(field, path, source, source_st, step, step_st):
    return OverlayError(
        "%s: unsafe path transition in '%s': from %s (owned by %s) to %s (owned by %s). A "
        "symlink or directory of another user on the way could have been planted to redirect "
        "this root-run module into someone else's directory, so it is not followed (the rule "
        "of systemd-tmpfiles). Give the real directory's path, or have every link on the way "
        "owned by root or by the owner of the directory it sits in"
        % (field, path, source, _owner(source_st.st_uid), step, _owner(step_st.st_uid)),
        unsafe_path=step)


def resolve_safely(field: str, path: str) -> str:
    """``path`` with its symlinks resolved, refusing unsafe transitions.

    A missing tail is kept as it is (it will be created fd-relative). Returns
    the resolved absolute path, which is what ``os.path.realpath`` returns
    when nothing is refused.
    """
    todo = [c for c in path.split("/") if c]
    resolved = "/"
    prev, prev_name = os.lstat("/"), "/"
    hops = 0
    while todo:
        name = todo.pop(0)
        if name == ".":
            continue
        if name == "..":
            resolved = os.path.dirname(resolved) or "/"
            st = os.lstat(resolved)
            if unsafe_transition(prev, st):
                raise _refuse(field, path, prev_name, prev, resolved, st)
            prev, prev_name = st, resolved
            continue
        candidate = os.path.join(resolved, name)
        try:
            st = os.lstat(candidate)
        except OSError as error:
            if error.errno in (errno.ENOENT, errno.ENOTDIR):
                return os.path.normpath(os.path.join(candidate, *todo)) if todo else candidate
            raise OverlayError("%s: cannot look at %s: %s" % (field, candidate, error.strerror))
        is_link = stat.S_ISLNK(st.st_mode)
        shown = "the symlink " + candidate if is_link else candidate
        if unsafe_transition(prev, st):
            raise _refuse(field, path, prev_name, prev, shown, st)
        if not is_link:
            resolved, prev, prev_name = candidate, st, candidate
            continue
        hops += 1
        if hops > _MAX_LINKS:
            raise OverlayError("%s: '%s' has too many levels of symlinks" % (field, path))
        target = os.readlink(candidate)
        todo = [c for c in target.split("/") if c] + todo
        prev, prev_name = st, shown
        if target.startswith("/"):
            root = os.lstat("/")
            if unsafe_transition(prev, root):
                raise _refuse(field, path, shown, prev, "/ (its target %s)" % target, root)
            resolved, prev, prev_name = "/", root, "/"
    return resolved


def check_declaration(decl: Any, extra: Iterable[Tuple[str, Optional[str]]] = (),
                      resolve: Callable[[str, str], Any] = resolve_safely) -> None:
    """Resolve every path of a declaration safely; raise on the first unsafe one.

    ``extra`` adds ``(field, path)`` pairs (fstab, unit_dir, links_dir);
    ``resolve`` is :func:`resolve_safely` or a memo of it.
    """
    named = [("path", decl.path)] + decl.named_dirs()
    named += [(field, p) for field, p in extra if p]
    for field, path in named:
        resolve(field, path)


def _open_dir(name, dir_fd, field, shown):
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except OSError as error:
        if error.errno in (errno.ELOOP, errno.ENOTDIR):
            raise OverlayError(
                "%s: %s was replaced by a symlink or a file while this task ran (or is one); "
                "nothing was followed: check who changed it, then run again" % (field, shown))
        raise


def make_dirs(path: str, mode: Optional[int] = None, uid: Optional[int] = None, gid: Optional[int] = None,
              field: str = "path") -> List[str]:
    """Create ``path`` and its missing parents fd-relative; return the dirs created, outermost first.

    Every existing component is opened with O_NOFOLLOW, each new one made
    with mkdir(dir_fd=), and the mode and owner of the last one are set on
    its open fd: a symlink swapped in at any moment is never followed.
    """
    parts = [c for c in path.split("/") if c]
    created = []
    fd = os.open("/", _DIR_FLAGS)
    try:
        current = ""
        for index, name in enumerate(parts):
            current += "/" + name
            last = index == len(parts) - 1
            try:
                os.mkdir(name, 0o700 if last and (mode is not None or uid is not None or gid is not None)
                         else 0o777, dir_fd=fd)
                created.append(current)
            except OSError as error:
                if error.errno != errno.EEXIST:
                    raise
            child = _open_dir(name, fd, field, current)
            os.close(fd)
            fd = child
        if created and created[-1] == "/" + "/".join(parts):
            if uid is not None or gid is not None:
                os.fchown(fd, -1 if uid is None else uid, -1 if gid is None else gid)
            if mode is not None:
                os.fchmod(fd, mode)
            elif uid is not None or gid is not None:
                os.fchmod(fd, 0o777 & ~_umask())
    finally:
        os.close(fd)
    return created


def _umask():
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _open_path(path, field):
    """An O_NOFOLLOW fd of the directory ``path``, opened one component at a time."""
    fd = os.open("/", _DIR_FLAGS)
    current = ""
    try:
        for name in [c for c in path.split("/") if c]:
            current += "/" + name
            child = _open_dir(name, fd, field, current)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def _check_private(fd, field, path):
    st = os.fstat(fd)
    if st.st_uid != 0 or st.st_mode & 0o022:
        raise OverlayError(
            "%s: %s is owned by %s with mode %04o; the directory of layer links must be owned by "
            "root and not writable by group or others, or another user could swap the links: "
            "chown root and chmod go-w it, or choose another links_dir"
            % (field, path, _owner(st.st_uid), stat.S_IMODE(st.st_mode)))


def check_links_root(links_root: str) -> str:
    """Refuse a links_dir that exists and is not root's alone (or sits behind an unsafe link)."""
    resolved = resolve_safely("links_dir", links_root)
    if not os.path.lexists(resolved):
        return resolved
    fd = _open_path(resolved, "links_dir")
    try:
        _check_private(fd, "links_dir", resolved)
    finally:
        os.close(fd)
    return resolved


def prepare_links(directory: str, layers: Sequence[str], prefix: str = "") -> str:
    """Make ``directory`` hold exactly the links ``0``, ``1``, ... to ``layers`` (``prefix`` before each number).

    The parent (the configured links_dir) and ``directory`` itself must be
    root's and not writable by group or others; both are created (0755) when
    missing, fd-relative. Only links named by ``prefix`` and a number are
    removed or replaced; anything else in the directory is left alone.
    """
    parent, name = os.path.split(directory.rstrip("/"))
    parent = resolve_safely("links_dir", parent)
    make_dirs(parent, mode=0o755, field="links_dir")
    fd = _open_path(parent, "links_dir")
    try:
        _check_private(fd, "links_dir", parent)
        try:
            os.mkdir(name, 0o755, dir_fd=fd)
        except OSError as error:
            if error.errno != errno.EEXIST:
                raise
        own = _open_dir(name, fd, "links_dir", directory)
    finally:
        os.close(fd)
    try:
        _check_private(own, "links_dir", directory)
        wanted = {prefix + str(i): layer for i, layer in enumerate(layers)}
        for entry in os.listdir(own):
            if not (entry.startswith(prefix) and entry[len(prefix):].isdigit()):
                continue
            try:
                current = os.readlink(entry, dir_fd=own)
            except OSError as error:
                if error.errno == errno.EINVAL:  # not a link: not ours
                    continue
                raise
            if wanted.get(entry) != current:
                os.unlink(entry, dir_fd=own)
        for entry, layer in wanted.items():
            try:
                os.symlink(layer, entry, dir_fd=own)
            except OSError as error:
                if error.errno != errno.EEXIST:
                    raise
                if os.readlink(entry, dir_fd=own) != layer:
                    raise OverlayError(
                        "links_dir: %s/%s is not a link this collection made; move it away"
                        % (directory, entry))
    finally:
        os.close(own)
    return directory


def point_to_links(root: str, directory: str) -> str:
    """Leave ``root/<name of directory>``, a symlink to ``directory``: where the links of a mount are.

    ``root`` is the default links root, which ``overlay_mount_info`` looks in
    without being told; ``directory`` a links dir under another links_dir.
    ``root`` must be root's alone (created 0755 when missing). Something
    there that is not a symlink is left alone. Returns the pointer's path.
    """
    make_dirs(resolve_safely("links_dir", root), mode=0o755, field="links_dir")
    root = check_links_root(root)
    pointer = os.path.join(root, os.path.basename(directory.rstrip("/")))
    try:
        if os.readlink(pointer) == directory:
            return pointer
        os.unlink(pointer)
    except OSError as error:
        if error.errno == errno.EINVAL:  # not a link: not ours
            return pointer
        if error.errno != errno.ENOENT:
            raise
    os.symlink(directory, pointer)
    return pointer


def remove_pointer(pointer: str) -> None:
    """Remove the pointer :func:`point_to_links` left, when it is a symlink (anything else stays)."""
    try:
        if os.path.islink(pointer):
            os.unlink(pointer)
    except FileNotFoundError:
        pass
