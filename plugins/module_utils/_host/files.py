# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Host glue for persistence: locked atomic file writes, findmnt, systemd.

Only side effects live here; what to write is decided in ``_persist``.
"""

import errno
import fcntl
import os
import shutil
import stat
import tempfile
import time
from typing import Any, Callable, Dict, Iterable, List, Optional

from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError
from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.fstab_syntax import mount_uses_fsconfig

WANTS_DIR = "local-fs.target.wants"

_MOUNT_FSCONFIG = {}


def read_text(path: str) -> Optional[str]:
    """The text of ``path`` exactly as stored, or None when it does not exist."""
    try:
        with open(path, "r", newline="", encoding="utf-8", errors="surrogateescape") as handle:
            return handle.read()
    except OSError as error:
        if error.errno == errno.ENOENT:
            return None
        raise OverlayError("cannot read %s: %s" % (path, error.strerror))


_TEXTS = {}


def read_text_again(path: str) -> Optional[str]:
    """:func:`read_text`, answered from memory while the file is unchanged.

    For planning only: a batch plans every overlay against the same fstab,
    and a text read once is the same object each time (so its parse and its
    index are found again without rehashing 1,000 lines). Unchanged means the
    same device, inode, size, mtime and ctime; every write (ours is a rename)
    changes one of them. What is written is always edited on a fresh
    :func:`read_text` under the lock.
    """
    try:
        st = os.stat(path)
    except OSError:
        _TEXTS.pop(path, None)
        return read_text(path)
    key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    kept = _TEXTS.get(path)
    if kept is not None and kept[0] == key:
        return kept[1]
    text = read_text(path)  # a change after the stat shows as a new key next time
    if text is not None:
        _TEXTS[path] = (key, text)
    return text


class DirectoryLock:
    """An exclusive flock on a directory, held while fstab is read, edited and used.

    Locking the directory rather than the file survives the rename that
    replaces the file, and leaves no lock file behind.
    """

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.fd = None

    def __enter__(self) -> "DirectoryLock":
        self.fd = os.open(self.directory, os.O_RDONLY)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: Any) -> bool:
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = None
        return False


# Temp files carry the writer's pid: a later run removes those whose writer is
# gone (a run killed half-way), never another live run's.
TEMP_MARK = ".overlayfs-tmp."


def _temp_stem(name):
    # A unit name may take all 255 bytes a file name has (systemd hashes longer
    # ones): the temp file's name keeps its start, leaving room for the rest.
    return name[:200]


def _temp_prefix(name):
    return ".%s%s%d." % (_temp_stem(name), TEMP_MARK, os.getpid())


def real_target(path: str) -> str:
    """Where writing ``path`` must happen: the file a symlink points to, else ``path``.

    A configuration-managed /etc often has fstab as a link; replacing the
    link with a regular file would cut it off from its source.
    """
    return os.path.realpath(path) if os.path.islink(path) else path


def _fail(step, path, error):
    """An OverlayError for what a file step raised (ansible-core raises a bare Exception)."""
    cause = error
    while getattr(cause, "__cause__", None) is not None:
        cause = cause.__cause__
    detail = cause.strerror if isinstance(cause, OSError) and cause.strerror else str(cause)
    return OverlayError("%s %s failed: %s" % (step, path, detail or type(cause).__name__))


def write_atomic(module: Optional[Any], path: str, text: str, validate: Optional[Callable[[str], Any]] = None,
                 step: str = "writing") -> None:
    """Replace ``path`` with ``text``: temp file in the same dir, fsync, check, rename.

    ``validate(tmp_path)`` may raise OverlayError to abort before the rename.
    The mode, owner and SELinux context of an existing file are kept
    (``atomic_move``); a new file gets mode 0644. With no ``module`` (on the
    controller, in an action) the rename is a plain one that keeps the
    existing file's mode only. When ``path`` is a symlink
    its target is replaced, in the target's directory. Any failure raises
    OverlayError naming ``step`` and the path, and leaves the file and its
    directory as they were (no temp file).
    """
    path = real_target(path)
    directory = os.path.dirname(path) or "."
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(os.path.basename(path)), dir=directory)
        with os.fdopen(fd, "w", newline="", encoding="utf-8", errors="surrogateescape") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if validate is not None:
            validate(tmp)
        existed = os.path.exists(path)
        if module is None:
            os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode) if existed else 0o644)
            os.replace(tmp, path)
        else:
            module.atomic_move(tmp, path, unsafe_writes=False)
        if not existed:
            os.chmod(path, 0o644)
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OverlayError:
        raise
    except Exception as error:  # atomic_move raises a bare Exception
        raise _fail(step, path, error)
    finally:
        if tmp is not None and os.path.lexists(tmp):
            os.unlink(tmp)


def backup(path: str) -> str:
    """Copy ``path`` to ``path.PID.DATE~`` (ansible's backup name) complete or not at all.

    Written through a temp file and renamed, so a full disk leaves no
    truncated backup. Returns the backup's path.
    """
    path = real_target(path)
    dest = "%s.%s.%s" % (path, os.getpid(), time.strftime("%Y-%m-%d@%H:%M:%S~", time.localtime()))
    directory = os.path.dirname(path) or "."
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(os.path.basename(path)), dir=directory)
        with os.fdopen(fd, "wb") as out, open(path, "rb") as src:
            shutil.copyfileobj(src, out)
            out.flush()
            os.fsync(out.fileno())
        shutil.copystat(path, tmp)
        st = os.stat(path)
        os.chown(tmp, st.st_uid, st.st_gid)
        os.rename(tmp, dest)
        tmp = None
    except Exception as error:
        raise _fail("backing up", path, error)
    finally:
        if tmp is not None and os.path.lexists(tmp):
            os.unlink(tmp)
    return dest


def _writer_alive(name):
    """False when the pid in a temp file's name is not a running process."""
    try:
        pid = int(name.split(TEMP_MARK, 1)[1].split(".", 1)[0])
    except (IndexError, ValueError):
        return True
    try:
        os.kill(pid, 0)
    except OSError as error:
        return error.errno != errno.ESRCH
    return pid != os.getpid()


def clean_stale_temps(path: str) -> List[str]:
    """Remove temp files a killed run left next to ``path`` (and next to its link target).

    Only regular files named by :func:`write_atomic` whose writer is no
    longer running are removed. Returns the paths removed.
    """
    removed = []
    base = os.path.basename(path)
    places = {(os.path.dirname(path) or ".", base)}
    target = real_target(path)
    places.add((os.path.dirname(target) or ".", os.path.basename(target)))
    for directory, name in places:
        prefix = ".%s%s" % (_temp_stem(name), TEMP_MARK)
        try:
            names = os.listdir(directory)
        except OSError:
            continue
        for entry in names:
            if not entry.startswith(prefix) or _writer_alive(entry):
                continue
            full = os.path.join(directory, entry)
            try:
                if stat.S_ISREG(os.lstat(full).st_mode):
                    os.unlink(full)
                    removed.append(full)
            except OSError:
                continue
    return removed


def remove_file(path: str) -> None:
    """Remove ``path``; a file that is already gone is no error."""
    try:
        os.unlink(path)
    except OSError as error:
        if error.errno != errno.ENOENT:
            raise


def path_resolver(realpath: Callable[[str], str]) -> Callable[[str], str]:
    """``realpath`` for the many paths of one file: each dir resolved and listed once.

    An fstab's mount points mostly share a few parent dirs; resolving each
    in full costs several system calls, this one ``listdir`` per parent and
    one ``lstat`` per name found there (a symlink, ``..`` or a root path goes
    to ``realpath`` itself). What it returns is what ``realpath`` returns:
    the resolved parent, then the name, which is no link (or does not exist,
    which ``os.path.realpath`` keeps as written).
    """
    parents: Dict[str, Any] = {}

    def resolve(path):
        parent, name = os.path.split(path)
        if not name or not parent or path[:1] != "/" or name in (".", "..") or "/../" in parent + "/":
            return realpath(path)
        known = parents.get(parent)
        if known is None:
            base = realpath(parent)
            try:
                names = frozenset(os.listdir(base))
            except OSError:
                names = frozenset()  # no such dir (or not one): nothing under it is a link
            known = parents[parent] = (base, names)
        base, names = known
        candidate = os.path.join(base, name)
        if name in names:
            try:
                if stat.S_ISLNK(os.lstat(candidate).st_mode):
                    return realpath(path)
            except OSError:
                return realpath(path)
        return candidate

    return resolve


def findmnt_problems(module: Any, text: str, targets: Iterable[str]) -> Optional[Dict[str, List[str]]]:
    """``{target: [its [E] lines]}`` of ``findmnt --verify`` over ``text``; None when findmnt is not installed.

    ``text`` holds a few fstab lines: the ones being written and the lines
    findmnt needs to judge them (see ``_formats.fstab_order.FstabDraft.excerpt``),
    not the whole fstab. findmnt checks each line's target, options, source
    and type, and the order of every pair of targets: on a whole fstab of
    2,000 lines that pairwise check, with libmount canonicalizing each
    target through a cache it searches line by line, took minutes. The
    excerpt's targets are canonical already, so findmnt runs with
    ``--nocanonicalize``. Each target in ``targets`` gets a list (empty when
    findmnt found nothing wrong).
    """
    findmnt = module.get_bin_path("findmnt")
    if not findmnt:
        return None
    fd, path = tempfile.mkstemp(prefix="overlayfs-mounts-verify.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as handle:
            handle.write(text)
        _rc, out, _err = module.run_command([findmnt, "--verify", "--verbose", "--nocanonicalize", "--tab-file", path])
    finally:
        os.unlink(path)
    found = problems_by_target(out)
    return {target: found.get(target, []) for target in targets}


def findmnt_verify(module: Any, text: str, targets: Iterable[str], missing_ok: bool = False) -> bool:
    """Check the fstab lines for ``targets`` among ``text`` with one findmnt run (:func:`findmnt_problems`).

    Raises OverlayError naming every line findmnt finds fault with. Errors
    of other lines (a disk that is not plugged in) are the user's and are
    not ours to refuse; parse errors are checked by the caller's round trip.
    ``missing_ok``: a mount point that does not exist yet is no fault (the
    run that writes the line may create it later). Returns False when
    findmnt is not installed.
    """
    found = findmnt_problems(module, text, targets)
    if found is None:
        return False
    faults = []
    for target, problems in found.items():
        if missing_ok and not os.path.exists(target):
            problems = [p for p in problems if not p.startswith("unreachable on boot required target")]
        if problems:
            faults.append("%s: %s" % (target, "; ".join(problems)))
    if faults:
        raise OverlayError(
            "findmnt --verify refused the fstab %s for %s (findmnt --verify --nocanonicalize --tab-file "
            "over the new lines and the lines they are mounted under)"
            % ("entry" if len(faults) == 1 else "entries", ", ".join(faults)))
    return True


def problems_by_target(output: str) -> Dict[str, List[str]]:
    """``{mount point: [its [E] lines]}`` of findmnt --verify --verbose output, in one pass."""
    found = {}
    current = None
    for line in output.splitlines():
        if line and not line.startswith(" "):
            current = found.setdefault(line.strip(), [])
        elif current is not None:
            text = line.strip()
            if text.startswith("[E]"):
                current.append(text[3:].strip())
    return found


def verify_problems(output: str, target: str) -> List[str]:
    """The ``[E]`` lines findmnt --verify --verbose prints for ``target``."""
    return problems_by_target(output).get(target, [])


def mount_fsconfig(module: Any) -> Optional[bool]:
    """Whether this host's mount(8), which mounts fstab lines and units at boot, uses fsconfig().

    Read once per run from the feature list ``mount -V`` prints (see
    ``_formats.fstab_syntax.mount_uses_fsconfig``); None when there is no mount(8) or it
    prints no such list.
    """
    if "result" not in _MOUNT_FSCONFIG:
        result = None
        binary = module.get_bin_path("mount")
        if binary:
            rc, out, _err = module.run_command([binary, "-V"], environ_update={"LC_ALL": "C"})
            if rc == 0:
                result = mount_uses_fsconfig(out)
        _MOUNT_FSCONFIG["result"] = result
    return _MOUNT_FSCONFIG["result"]


_SYSTEMD_VERSION: Dict[str, Optional[int]] = {}


def systemd_version(module: Any) -> Optional[int]:
    """The version of the installed systemd, as ``systemctl --version`` says (``systemd 252 (...)``); read once.

    None when there is no systemctl or it says something else.
    """
    if "result" not in _SYSTEMD_VERSION:
        result = None
        binary = module.get_bin_path("systemctl")
        if binary:
            rc, out, _err = module.run_command([binary, "--version"], environ_update={"LC_ALL": "C"})
            words = out.split() if rc == 0 else []
            if len(words) > 1 and words[0] == "systemd" and words[1].isdigit():
                result = int(words[1])
        _SYSTEMD_VERSION["result"] = result
    return _SYSTEMD_VERSION["result"]


def systemd_booted() -> bool:
    """True when systemd is PID 1 here (what sd_booted() checks)."""
    return os.path.isdir("/run/systemd/system")


def systemctl(module: Any, *args: str) -> str:
    """Run systemctl; raise OverlayError with the command, rc and stderr on failure."""
    binary = module.get_bin_path("systemctl", required=True)
    cmd = [binary] + list(args)
    rc, out, err = module.run_command(cmd)
    if rc != 0:
        raise OverlayError(
            "%s failed (rc=%d): %s" % (" ".join(cmd), rc, (err or out).strip()),
            rc=rc, stderr=err, cmd=cmd)
    return out


def wants_link(unit_dir: str, name: str) -> str:
    """The path of the unit's link in ``local-fs.target.wants`` under ``unit_dir``."""
    return os.path.join(unit_dir, WANTS_DIR, name)


def is_enabled(unit_dir: str, name: str) -> bool:
    """True when the unit is linked into ``local-fs.target.wants``."""
    return os.path.islink(wants_link(unit_dir, name))


def enable(unit_dir: str, name: str) -> bool:
    """Link the unit into local-fs.target.wants, as ``systemctl enable`` does for WantedBy=.

    Done by hand so it also works in a chroot or image build with no running
    systemd, and for a unit_dir systemd does not search.
    """
    link = wants_link(unit_dir, name)
    target = os.path.join(unit_dir, name)
    if os.path.islink(link) and os.readlink(link) == target:
        return False
    if not os.path.isdir(os.path.dirname(link)):
        os.makedirs(os.path.dirname(link))
    remove_file(link)
    os.symlink(target, link)
    return True


def disable(unit_dir: str, name: str) -> bool:
    """Remove the unit's ``local-fs.target.wants`` link; True when there was one."""
    if os.path.islink(wants_link(unit_dir, name)):
        os.unlink(wants_link(unit_dir, name))
        return True
    return False
