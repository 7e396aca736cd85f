# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a directory tree holds, byte for byte and in metadata: for tests that compare overlays.

``manifest(root)`` maps each path below ``root`` (bytes, relative, ``b"."`` for
``root`` itself; names may hold any byte) to a dict:

* ``type``: ``dir``, ``file``, ``symlink``, ``fifo``, ``socket``, ``chr``,
  ``blk``, or ``listed_only`` (readdir lists the name but lstat finds
  nothing, as ``ls -l`` shows ``?``; ``error`` says why);
* ``mode`` (permission bits with setuid/setgid/sticky), ``uid``, ``gid``,
  ``mtime_ns``. Not atime (reading changes it) and not ctime (every copy
  changes it). Directories' mtimes are recorded too: the kernel changes
  them when it creates or removes entries, so a faithful copy must set them
  after its children; ``compare(..., dir_mtimes=False)`` leaves them out;
* ``xattrs``: ``{name: value}``, without overlayfs's own
  (``trusted.overlay.*``, ``user.overlay.*``) unless
  ``keep_overlay_xattrs`` (for raw upper dirs and their backups);
* files: ``size``, ``sha256`` of the content, ``segments``: the data
  segments ``[start, end)`` found with SEEK_DATA/SEEK_HOLE (the rest is holes);
* symlinks: ``target`` (bytes); devices: ``rdev`` as ``(major, minor)``;
* ``hardlinks``: for a non-directory whose inode has other names in the
  tree, all those names, sorted (the same tuple on each).

``compare(a, b)`` lists the differences as readable lines, for assertion
messages. ``build_cases(lower_dirs, mount)`` fills lower dirs and then,
through a live overlay, makes every kind of change the kernel records in an
upper dir. Standard library only: anything may import this.
"""

import errno
import hashlib
import os
import stat
import struct
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

OVERLAY_XATTRS = ("trusted.overlay.", "user.overlay.")
Manifest = Dict[bytes, Dict[str, Any]]

_TYPES = ((stat.S_ISDIR, "dir"), (stat.S_ISREG, "file"), (stat.S_ISLNK, "symlink"), (stat.S_ISFIFO, "fifo"),
          (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "chr"), (stat.S_ISBLK, "blk"))


def _type(mode: int) -> str:
    return next(name for test, name in _TYPES if test(mode))


def _xattrs(path: bytes, keep_overlay: bool) -> Dict[str, bytes]:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError as error:
        if error.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            return {}
        raise
    return {name: os.getxattr(path, name, follow_symlinks=False) for name in sorted(names)
            if keep_overlay or not name.startswith(OVERLAY_XATTRS)}


def segments(fd: int, size: int) -> List[Tuple[int, int]]:
    """The data segments ``(start, end)`` of an open file, by SEEK_DATA/SEEK_HOLE."""
    found = []
    pos = 0
    while pos < size:
        try:
            start = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError as error:
            if error.errno == errno.ENXIO:
                break
            raise
        end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
        found.append((start, end))
        pos = max(end, start + 1)
    return found


def _file_facts(path: bytes, size: int) -> Dict[str, Any]:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        digest = hashlib.sha256()
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            digest.update(chunk)
        return {"size": size, "sha256": digest.hexdigest(), "segments": segments(fd, size)}
    finally:
        os.close(fd)


def entry_facts(path: bytes, keep_overlay_xattrs: bool = False) -> Tuple[Dict[str, Any], Optional[Tuple[int, int]]]:
    """The manifest entry of one path, and its inode's identity when other names may share it."""
    try:
        st = os.lstat(path)
    except FileNotFoundError as error:
        return {"type": "listed_only", "error": error.strerror}, None
    kind = _type(st.st_mode)
    info: Dict[str, Any] = {"type": kind, "mode": stat.S_IMODE(st.st_mode), "uid": st.st_uid, "gid": st.st_gid,
                            "mtime_ns": st.st_mtime_ns, "xattrs": _xattrs(path, keep_overlay_xattrs)}
    if kind == "file":
        info.update(_file_facts(path, st.st_size))
    elif kind == "symlink":
        info["target"] = os.readlink(path)
    elif kind in ("chr", "blk"):
        info["rdev"] = (os.major(st.st_rdev), os.minor(st.st_rdev))
    identity = (st.st_dev, st.st_ino) if kind != "dir" and st.st_nlink > 1 else None
    return info, identity


def manifest(root: str, keep_overlay_xattrs: bool = False) -> Manifest:
    """Every path below ``root`` (and ``b"."``, ``root`` itself) with its facts; see the module's doc."""
    base = os.fsencode(root)
    result: Manifest = {}
    inodes: Dict[Tuple[int, int], List[bytes]] = {}
    # "/." so that a root given as a link (/proc/self/fd/N of a detached mount) is the dir it leads to.
    result[b"."], _identity = entry_facts(base + b"/.", keep_overlay_xattrs)
    pending = [b""]
    while pending:
        rel = pending.pop()
        directory = base + b"/" + rel if rel else base
        for name in sorted(os.listdir(directory)):
            child = rel + b"/" + name if rel else name
            info, identity = entry_facts(directory + b"/" + name, keep_overlay_xattrs)
            result[child] = info
            if identity is not None:
                inodes.setdefault(identity, []).append(child)
            if info["type"] == "dir":
                pending.append(child)
    for names in inodes.values():
        if len(names) > 1:
            group = tuple(sorted(names))
            for name in names:
                result[name]["hardlinks"] = group
    return result


def _show(key: str, value: Any) -> str:
    text = oct(value) if key == "mode" and isinstance(value, int) else repr(value)
    return text if len(text) <= 200 else text[:200] + "..."


def compare(a: Manifest, b: Manifest, dir_mtimes: bool = True, names: Tuple[str, str] = ("a", "b")) -> List[str]:
    """The differences between two manifests, one readable line each; [] when they are equal.

    ``dir_mtimes=False`` leaves directories' mtimes out.
    """
    lines = []
    for path in sorted(set(a) | set(b)):
        if path not in b:
            lines.append("%r: only in %s (%s)" % (path, names[0], a[path]["type"]))
            continue
        if path not in a:
            lines.append("%r: only in %s (%s)" % (path, names[1], b[path]["type"]))
            continue
        left, right = a[path], b[path]
        for key in sorted(set(left) | set(right)):
            if key == "mtime_ns" and not dir_mtimes and left.get("type") == right.get("type") == "dir":
                continue
            if left.get(key) != right.get(key):
                lines.append("%r: %s: %s=%s %s=%s" % (path, key, names[0], _show(key, left.get(key)),
                                                      names[1], _show(key, right.get(key))))
    return lines


# ---------------------------------------------------------------------------------------------
# Trees with every case an upper dir can hold
# ---------------------------------------------------------------------------------------------

#: File names that take what a name may hold: spaces, newlines, non-ASCII, invalid UTF-8, the 255-byte maximum.
ODD_NAMES = (b"with space", b"new\nline", "\u00fcn\u00efc\u00f6d\u00e9 \u2603".encode("utf-8"), b"bad\xff\xfeutf8",
             b"tab\tback\\slash:colon,comma=eq", b"-dash", b"n" * 255)
#: A fixed time to the nanosecond, set on entries to see that copies keep it.
FIXED_NS = 1234567890123456789
# security.capability, revision 2: cap_net_bind_service (bit 10) permitted and effective.
_CAPABILITY = struct.pack("<IIIII", 0x02000001, 1 << 10, 0, 0, 0)


def _path(root: bytes, rel: bytes) -> bytes:
    return root + b"/" + rel


def write(path: bytes, data: bytes, mode: int = 0o644) -> None:
    """Create (or truncate) ``path`` with ``data``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def write_sparse(path: bytes, size: int, pieces: Sequence[Tuple[int, bytes]]) -> None:
    """A file of ``size`` bytes holding ``pieces`` (offset, data) and holes elsewhere."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    try:
        for offset, data in pieces:
            os.pwrite(fd, data, offset)
        os.ftruncate(fd, size)
    finally:
        os.close(fd)


def _tree(root: bytes, files: Dict[bytes, bytes]) -> None:
    for rel, data in files.items():
        path = _path(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        write(path, data)


def populate_lowers(lower_dirs: Sequence[str]) -> None:
    """Fill the lower dirs (top first; the first and the last are used) with what the cases change."""
    top, bottom = os.fsencode(lower_dirs[0]), os.fsencode(lower_dirs[-1])
    _tree(bottom, {
        b"base.txt": b"base\n", b"deleted.txt": b"to delete\n", b"deleted_dir/a/b.txt": b"b\n",
        b"replaced/a/x.txt": b"x\n", b"replaced/y.txt": b"y\n", b"file_to_dir": b"was a file\n",
        b"dir_to_file/f.txt": b"f\n", b"renamed/sub/deep.txt": b"deep\n", b"renamed/f.txt": b"f\n",
        b"renamed/gone.txt": b"gone\n", b"nested/inner/file.txt": b"inner\n", b"elsewhere/other.txt": b"other\n",
        b"meta.txt": b"metadata only\n", b"meta_renamed.txt": b"meta renamed\n", b"plain_renamed.txt": b"plain\n",
        b"lowlink1": b"lower hard link\n", b"modify.txt": b"original\n", b"truncate.txt": b"0123456789\n",
        b"shadowed.txt": b"bottom\n", b"xattr_lower.txt": b"xattr\n", b"dir_chmod/inside.txt": b"inside\n",
        b"lower_time.txt": b"time\n", b"xw/victim.txt": b"to be hidden by an xattr whiteout\n",
        b"xw/keep.txt": b"stays\n", b"big_lower.bin": bytes(range(256)) * 4096,
    })
    os.link(_path(bottom, b"lowlink1"), _path(bottom, b"lowlink2"))
    write_sparse(_path(bottom, b"meta_owner.bin"), 1 << 20, [(512 << 10, b"lower data in a hole")])
    _tree(top, {b"shadowed.txt": b"top\n", b"l1only/file.txt": b"only in the top lower\n",
                b"deleted_l1.txt": b"deleted from the top lower\n"})


def _try(notes: Dict[str, str], case: str, action: Callable[[], Any]) -> None:
    """Run one change; a refusal of the kernel or filesystem is noted, not raised."""
    try:
        action()
        notes[case] = "done"
    except OSError as error:
        notes[case] = "skipped: %s" % (error.strerror or error)


def _new_files(m: bytes, notes: Dict[str, str]) -> None:
    _tree(m, {b"new.txt": b"new\n", b"newdir/sub/deeper/file.txt": b"deep new\n", b"big_new.bin": os.urandom(3 << 20)})
    os.mkdir(_path(m, b"empty_dir"))
    os.mkdir(_path(m, b"odd"))
    for name in ODD_NAMES:
        write(_path(m, b"odd/" + name), b"named " + name)
        os.mkdir(_path(m, b"odd/dir " + name[:200]))
    write(_path(m, ODD_NAMES[1]), b"a newline in a name at the top\n")
    with open(_path(m, b"modify.txt"), "ab") as handle:
        handle.write(b"appended\n")
    os.truncate(_path(m, b"truncate.txt"), 3)
    write(_path(m, b"zero_mode.txt"), b"no permissions\n", 0o000)
    os.chmod(_path(m, b"zero_mode.txt"), 0o000)
    notes["new and modified files, odd names"] = "done"


def _deletions(m: bytes, notes: Dict[str, str]) -> None:
    for rel in (b"deleted.txt", b"deleted_l1.txt"):
        os.unlink(_path(m, rel))
    _rmtree(_path(m, b"deleted_dir"))
    _rmtree(_path(m, b"replaced"))
    os.mkdir(_path(m, b"replaced"))
    write(_path(m, b"replaced/new.txt"), b"in the recreated dir\n")
    os.unlink(_path(m, b"file_to_dir"))
    os.mkdir(_path(m, b"file_to_dir"))
    _rmtree(_path(m, b"dir_to_file"))
    write(_path(m, b"dir_to_file"), b"was a dir\n")
    notes["whiteouts and opaque dirs"] = "done"


def _rmtree(path: bytes) -> None:
    for top, dirs, files in os.walk(path, topdown=False):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(top, d))]:
            os.unlink(os.path.join(top, name))
        for name in dirs:
            if not os.path.islink(os.path.join(top, name)):
                os.rmdir(os.path.join(top, name))
    os.rmdir(path)


def _renames(m: bytes, notes: Dict[str, str]) -> None:
    def rename_dir():
        os.rename(_path(m, b"renamed"), _path(m, b"moved"))
        write(_path(m, b"moved/added.txt"), b"added after the rename\n")
        os.unlink(_path(m, b"moved/gone.txt"))
        with open(_path(m, b"moved/sub/deep.txt"), "ab") as handle:
            handle.write(b"changed after the rename\n")
    _try(notes, "renamed lower dir (redirect)", rename_dir)
    _try(notes, "lower dir moved to another dir (absolute redirect)",
         lambda: os.rename(_path(m, b"nested/inner"), _path(m, b"elsewhere/inner2")))
    _try(notes, "renamed lower file", lambda: os.rename(_path(m, b"plain_renamed.txt"), _path(m, b"plain_moved.txt")))


def _metadata(m: bytes, notes: Dict[str, str]) -> None:
    os.chmod(_path(m, b"meta.txt"), 0o600)
    _try(notes, "chown of a sparse lower file (metacopy)", lambda: os.chown(_path(m, b"meta_owner.bin"), 1, 2))

    def chmod_and_move():
        os.chmod(_path(m, b"meta_renamed.txt"), 0o640)
        os.rename(_path(m, b"meta_renamed.txt"), _path(m, b"meta_moved.txt"))
    _try(notes, "metacopy file renamed", chmod_and_move)
    os.setxattr(_path(m, b"xattr_lower.txt"), "user.added", b"on a lower file")
    os.chmod(_path(m, b"dir_chmod"), 0o750)
    _try(notes, "chown of a lower dir", lambda: os.chown(_path(m, b"dir_chmod"), 3, 4))
    os.utime(_path(m, b"lower_time.txt"), ns=(FIXED_NS, FIXED_NS))

    def setuid():
        write(_path(m, b"suid.bin"), b"#!/bin/sh\n", 0o755)
        os.chown(_path(m, b"suid.bin"), 1000, 1000)
        os.chmod(_path(m, b"suid.bin"), 0o4755)
        os.mkdir(_path(m, b"sgid_dir"))
        os.chmod(_path(m, b"sgid_dir"), 0o2775)
    _try(notes, "setuid file, setgid dir", setuid)
    notes["chmod of a lower file (metacopy)"] = "done"


def _links(m: bytes, notes: Dict[str, str]) -> None:
    write(_path(m, b"hl_a"), b"hard linked\n")
    os.link(_path(m, b"hl_a"), _path(m, b"hl_b"))
    os.link(_path(m, b"hl_a"), _path(m, b"newdir/hl_c"))
    _try(notes, "hard link into a renamed dir",
         lambda: os.link(_path(m, b"hl_a"), _path(m, b"moved/hl_in_moved")))
    os.link(_path(m, b"base.txt"), _path(m, b"base_link"))
    os.symlink(b"base.txt", _path(m, b"link_rel"))
    os.symlink(b"/etc/passwd", _path(m, b"link_abs"))
    os.symlink(b"nowhere/at all", _path(m, b"link_dangling"))
    os.symlink(b"odd \xff target\n", _path(m, b"newdir/link_odd"))
    os.link(_path(m, b"link_rel"), _path(m, b"link_hard"), follow_symlinks=False)
    os.utime(_path(m, b"link_abs"), ns=(FIXED_NS, FIXED_NS), follow_symlinks=False)
    notes["hard links and symlinks"] = "done"


def _specials(m: bytes, notes: Dict[str, str]) -> None:
    os.mkfifo(_path(m, b"fifo"), 0o640)
    _try(notes, "socket", lambda: os.mknod(_path(m, b"socket"), stat.S_IFSOCK | 0o755))
    _try(notes, "char device", lambda: os.mknod(_path(m, b"chardev"), stat.S_IFCHR | 0o620, os.makedev(1, 3)))
    _try(notes, "block device", lambda: os.mknod(_path(m, b"blockdev"), stat.S_IFBLK | 0o660, os.makedev(7, 200)))
    write_sparse(_path(m, b"sparse.bin"), 8 << 20, [(1 << 20, b"data in the middle"), ((8 << 20) - 5, b"tail!")])
    write_sparse(_path(m, b"sparse_end_hole.bin"), 4 << 20, [(0, b"x" * 8192)])
    write_sparse(_path(m, b"all_hole.bin"), 1 << 20, [])
    notes["fifo, sparse files"] = "done"


def _xattrs_cases(m: bytes, notes: Dict[str, str], prefix: str) -> None:
    os.setxattr(_path(m, b"new.txt"), "user.comment", b"a user xattr")
    os.setxattr(_path(m, b"newdir"), "user.dir", b"\x00binary\xff")
    os.setxattr(_path(m, b"odd/" + ODD_NAMES[3]), "user.odd", b"value")
    _try(notes, "security.* xattr", lambda: os.setxattr(_path(m, b"new.txt"), "security.test", b"sec"))
    _try(notes, "trusted.* xattr", lambda: os.setxattr(_path(m, b"new.txt"), "trusted.note", b"trusted"))
    _try(notes, "trusted.* xattr on a symlink",
         lambda: os.setxattr(_path(m, b"link_rel"), "trusted.linknote", b"on the link", follow_symlinks=False))
    _try(notes, "user xattr under the overlay's prefix (stored escaped)",
         lambda: os.setxattr(_path(m, b"new.txt"), prefix + "userdata", b"escaped"))

    def capability():
        write(_path(m, b"cap.bin"), b"\x7fELF", 0o755)
        os.chown(_path(m, b"cap.bin"), 0, 0)
        os.setxattr(_path(m, b"cap.bin"), "security.capability", _CAPABILITY)
    _try(notes, "security.capability", capability)


def _dir_times(m: bytes) -> None:
    """Fixed times on dirs, last: creating an entry in a dir changes its mtime."""
    for rel in (b"newdir/sub", b"empty_dir", b"odd/dir " + ODD_NAMES[2]):
        os.utime(_path(m, rel), ns=(FIXED_NS, FIXED_NS + 1))


def change_through(merged: str, prefix: str = "trusted.overlay.") -> Dict[str, str]:
    """Make every kind of change through the live overlay at ``merged``; ``{case: "done" or "skipped: why"}``.

    ``prefix``: the overlay's xattr prefix (``user.overlay.`` with ``userxattr``).
    """
    m = os.fsencode(merged)
    notes: Dict[str, str] = {}
    _new_files(m, notes)
    _deletions(m, notes)
    _renames(m, notes)
    _metadata(m, notes)
    _links(m, notes)
    _specials(m, notes)
    _xattrs_cases(m, notes, prefix)
    _dir_times(m)
    return notes


def build_cases(lower_dirs: Sequence[str], mount: Callable[[], str], prefix: str = "trusted.overlay.") -> Dict[str, str]:
    """Fill ``lower_dirs`` (top first, at least two), call ``mount()`` (it mounts the overlay and returns
    its merged dir), and make every case through it. ``{case: "done" or "skipped: why"}``."""
    populate_lowers(lower_dirs)
    return change_through(mount(), prefix)


def plant_xattr_whiteout(upper: str, rel_dir: bytes, name: bytes, prefix: str = "trusted.overlay.") -> None:
    """Write an xattr whiteout by hand into an UNMOUNTED upper: an empty regular file ``rel_dir/name``
    with ``prefix + "whiteout"``, its dir marked ``prefix + "opaque" = "x"`` (holds xattr whiteouts)."""
    directory = os.fsencode(upper) + b"/" + rel_dir
    if not os.path.isdir(directory):
        os.mkdir(directory, 0o755)
    write(directory + b"/" + name, b"", 0o644)
    os.setxattr(directory + b"/" + name, prefix + "whiteout", b"")
    os.setxattr(directory, prefix + "opaque", b"x")
