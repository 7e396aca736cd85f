# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""layer_copy on plain directories: overlay marks written by hand in the ``user.overlay.`` family
(what a ``userxattr`` overlay writes), so most of it runs without root. The same code against a
real kernel's upper dirs is tests/integration/test_layer_copy_kernel.py."""

import os
import stat
import subprocess
import sys

import pytest

from ansible_collections.overlayfs.mounts.plugins.module_utils._host import layer_copy
from ansible_collections.overlayfs.mounts.plugins.module_utils._host.layer_copy import (
    copy_raw,
    data_segments,
    empty_counts,
    entry_kind,
    layer_xattrs,
    make_empty_like,
    merged_xattrs,
    mounts_inside,
    overlay_marks,
    plain_xattrs,
    remove_tree,
    sync_path,
    write_layer,
)
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), *[os.pardir] * 4, "integration"))
from upper_manifest import compare, manifest  # noqa: E402 pylint: disable=wrong-import-position

ROOT = os.geteuid() == 0
U = "user.overlay."
T = "trusted.overlay."
NS = 1234567890123456789


def _xattr(path, name, value=b""):
    try:
        os.setxattr(str(path), name, value, follow_symlinks=False)
    except OSError as error:
        pytest.skip("this filesystem takes no %s xattr here: %s" % (name, error.strerror))


def _write(path, data=b"", mode=0o644):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.chmod(str(path), mode)


@pytest.fixture(params=[0, 4], ids=["inline", "threads"])
def threads(request, monkeypatch):
    monkeypatch.setattr(layer_copy, "COPY_THREADS", request.param)
    return request.param


# ---------------------------------------------------------------------------------------------
# Pure decisions
# ---------------------------------------------------------------------------------------------

def test_marks_are_the_prefix_family_without_escaped_user_xattrs():
    xattrs = [(T + "opaque", b"y"), (T + "overlay.mine", b"1"), (U + "redirect", b"/a"), ("user.x", b"2")]
    assert overlay_marks(xattrs, T) == {"opaque": b"y"}
    assert overlay_marks(xattrs, U) == {"redirect": b"/a"}
    assert layer_xattrs(xattrs, T) == [(T + "overlay.mine", b"1"), (U + "redirect", b"/a"), ("user.x", b"2")]
    assert plain_xattrs(xattrs) == [("user.x", b"2")]


def test_xattrs_read_through_an_overlay_are_escaped_again():
    assert merged_xattrs([(T + "mine", b"1"), ("user.x", b"2")], T) == [(T + "overlay.mine", b"1"), ("user.x", b"2")]
    assert merged_xattrs([(T + "mine", b"1")], U) == [(T + "mine", b"1")]


@pytest.mark.parametrize("mode, rdev, size, marks, kind", [
    (stat.S_IFDIR, 0, 0, {}, "dir"),
    (stat.S_IFDIR, 0, 0, {"opaque": b"y"}, "opaque_dir"),
    (stat.S_IFDIR, 0, 0, {"opaque": b"x"}, "dir"),  # "may hold xattr whiteouts", not opaque
    (stat.S_IFDIR, 0, 0, {"redirect": b"old", "opaque": b"y"}, "redirect"),
    (stat.S_IFCHR, 0, 0, {}, "whiteout"),
    (stat.S_IFCHR, os.makedev(1, 3), 0, {}, "special"),
    (stat.S_IFREG, 0, 0, {"whiteout": b""}, "xwhiteout"),
    (stat.S_IFREG, 0, 5, {"whiteout": b""}, "file"),  # the kernel takes only an empty file as one
    (stat.S_IFREG, 0, 5, {"metacopy": b"", "redirect": b"/x"}, "metacopy"),
    (stat.S_IFREG, 0, 5, {"origin": b"..."}, "file"),
    (stat.S_IFLNK, 0, 3, {}, "symlink"),
    (stat.S_IFIFO, 0, 0, {}, "special"),
    (stat.S_IFSOCK, 0, 0, {}, "special"),
])
def test_entry_kind(mode, rdev, size, marks, kind):
    assert entry_kind(mode | 0o644, rdev, size, marks) == kind


def test_counts_have_every_key():
    assert sorted(empty_counts()) == sorted(["files", "dirs", "symlinks", "specials", "hardlinks", "whiteouts",
                                             "opaque_dirs", "redirects", "metacopy", "bytes", "linked"])


def test_mounts_inside_a_path():
    text = ("22 1 8:1 / / rw - ext4 /dev/sda1 rw\n"
            "40 22 0:5 / /srv/layers/a\\040b/m rw - tmpfs tmpfs rw\n"
            "41 22 0:6 / /srv/layersX rw - tmpfs tmpfs rw\n"
            "42 22 0:7 / /srv/layers rw - tmpfs tmpfs rw\n")
    assert mounts_inside("/srv/layers", text) == ["/srv/layers", "/srv/layers/a b/m"]
    assert mounts_inside("/srv/other", text) == []


def test_data_segments_of_a_sparse_file(tmp_path):
    path = tmp_path / "sparse"
    with open(str(path), "wb") as handle:
        handle.truncate(4 << 20)
        handle.seek(1 << 20)
        handle.write(b"x" * 10)
    fd = os.open(str(path), os.O_RDONLY)
    try:
        found = data_segments(fd, 4 << 20)
    finally:
        os.close(fd)
    if found == [(0, 4 << 20)]:
        pytest.skip("this filesystem reports no holes")
    assert len(found) == 1 and found[0][0] <= 1 << 20 < (1 << 20) + 10 <= found[0][1] < 4 << 20


# ---------------------------------------------------------------------------------------------
# write_layer on a hand-made upper and merged view
# ---------------------------------------------------------------------------------------------

def _whiteout(path):
    try:
        os.mknod(str(path), stat.S_IFCHR | 0o000, 0)
    except PermissionError:
        pytest.skip("this kernel lets only root make a whiteout (0/0 device)")


def _upper_and_merged(tmp_path):
    """An upper with every kind of mark (user.overlay.*), and the merged view it stands for."""
    upper, merged = tmp_path / "upper", tmp_path / "merged"
    _write(upper / "plain" / "a", b"plain a")
    _xattr(upper / "plain" / "a", "user.x", b"kept")
    _xattr(upper / "plain" / "a", U + "origin", b"dropped")
    _xattr(upper / "plain" / "a", U + "overlay.mine", b"escaped: kept as it is")
    _write(upper / "opaque" / "inside", b"in an opaque dir")
    _xattr(upper / "opaque", U + "opaque", b"y")
    _write(upper / "xdir" / "gone")
    _write(upper / "xdir" / "shown")
    _xattr(upper / "xdir" / "gone", U + "whiteout")
    _xattr(upper / "xdir" / "shown", U + "whiteout")
    _xattr(upper / "xdir", U + "opaque", b"x")
    _write(upper / "renamed" / "only-in-upper", b"the merged view decides")
    _xattr(upper / "renamed", U + "redirect", b"/old")
    _write(upper / "meta")
    os.truncate(str(upper / "meta"), 11)
    _xattr(upper / "meta", U + "metacopy")
    os.chmod(str(upper / "meta"), 0o600)
    _whiteout(upper / "deleted")
    _write(upper / "hl", b"linked")
    os.link(str(upper / "hl"), str(upper / "hl_too"))
    os.symlink("plain/a", str(upper / "sym"))
    os.mkfifo(str(upper / "fifo"))
    with open(str(upper / "sparse"), "wb") as handle:
        handle.truncate(2 << 20)
        handle.write(b"head")
    _write(merged / "renamed" / "from-lower", b"lower data")
    _write(merged / "renamed" / "sub" / "deep", b"deep")
    _xattr(merged / "renamed" / "from-lower", U + "mine", b"shown unescaped by the overlay")
    _write(merged / "meta", b"merged data")
    _write(merged / "xdir" / "shown")
    _write(merged / "hl", b"linked")
    os.link(str(merged / "hl"), str(merged / "renamed" / "hl_in_renamed"))
    for path in (upper / "plain" / "a", upper / "sym", merged / "renamed" / "sub"):
        os.utime(str(path), ns=(NS, NS), follow_symlinks=False)
    for path in (upper / "plain", upper / "renamed", upper, merged / "renamed"):
        os.utime(str(path), ns=(NS, NS + 1))
    return str(upper), str(merged)


def test_write_layer_translates_every_mark(tmp_path, threads):
    upper, merged = _upper_and_merged(tmp_path)
    layer = tmp_path / "layer"
    counts = write_layer(upper, merged, str(layer), prefix=U)
    assert counts == dict(empty_counts(), files=8, dirs=5, symlinks=1, specials=1, hardlinks=2, whiteouts=2,
                          opaque_dirs=1, redirects=1, metacopy=1, bytes=len(b"plain a") + len(b"in an opaque dir")
                          + 11 + len(b"linked") + (2 << 20) + len(b"lower data") + len(b"deep")), counts
    got = manifest(str(layer), keep_overlay_xattrs=True)
    assert got[b"plain/a"]["xattrs"] == {"user.x": b"kept", U + "overlay.mine": b"escaped: kept as it is"}
    assert got[b"plain/a"]["mtime_ns"] == NS and got[b"sym"]["mtime_ns"] == NS and got[b"sym"]["target"] == b"plain/a"
    assert got[b"opaque"]["xattrs"] == {U + "opaque": b"y"} and got[b"xdir"]["xattrs"] == {}
    assert got[b"xdir/gone"]["type"] == "chr" and got[b"xdir/gone"]["rdev"] == (0, 0) and got[b"deleted"]["rdev"] == (0, 0)
    assert got[b"xdir/shown"]["type"] == "file", "an xattr whiteout the view shows is a file"
    assert got[b"renamed"]["xattrs"] == {U + "opaque": b"y"} and b"renamed/only-in-upper" not in got
    assert got[b"renamed/from-lower"]["xattrs"] == {U + "overlay.mine": b"shown unescaped by the overlay"}
    assert got[b"renamed/sub"]["mtime_ns"] == NS and got[b"renamed"]["mtime_ns"] == NS + 1
    assert got[b"meta"]["sha256"] == manifest(merged)[b"meta"]["sha256"] and got[b"meta"]["mode"] == 0o600
    assert got[b"hl"]["hardlinks"] == (b"hl", b"hl_too", b"renamed/hl_in_renamed")
    assert got[b"sparse"]["segments"] == manifest(upper)[b"sparse"]["segments"]
    assert got[b"plain"]["mtime_ns"] == NS + 1 and got[b"."]["mtime_ns"] == NS + 1, "dir times are set after their children"
    assert got[b"fifo"]["type"] == "fifo"


def test_write_layer_refuses_an_existing_dest_and_removes_a_partial_one(tmp_path, monkeypatch, threads):
    upper, merged = _upper_and_merged(tmp_path)
    (tmp_path / "exists").mkdir()
    with pytest.raises(OverlayError, match="already exists"):
        write_layer(upper, merged, str(tmp_path / "exists"), prefix=U)

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "copy_file_range", broken)
    monkeypatch.setattr(os, "sendfile", broken)
    with pytest.raises(OverlayError, match="No space left on device.*partial copy") as caught:
        write_layer(upper, merged, str(tmp_path / "layer"), prefix=U)
    assert not os.path.lexists(str(tmp_path / "layer")), caught.value.message


def test_write_layer_needs_a_merged_view_for_renamed_dirs(tmp_path):
    upper = tmp_path / "upper"
    (upper / "renamed").mkdir(parents=True)
    _xattr(upper / "renamed", U + "redirect", b"/old")
    with pytest.raises(OverlayError, match="merged view is needed"):
        layer_copy._finish(layer_copy._Copy(str(tmp_path / "layer"), U, None), str(upper), layer_copy.UPPER, "test")


def test_copy_raw_is_exact(tmp_path, threads):
    upper, _merged = _upper_and_merged(tmp_path)
    counts = copy_raw(upper, str(tmp_path / "backup"))
    assert counts["whiteouts"] == 1 and counts["hardlinks"] == 1 and counts["metacopy"] == 0
    before = manifest(upper, keep_overlay_xattrs=True)
    assert compare(before, manifest(str(tmp_path / "backup"), keep_overlay_xattrs=True)) == []


@pytest.mark.skipif(not ROOT, reason="owners and trusted.* xattrs need root")
def test_owners_setuid_and_capabilities_survive(tmp_path):
    src = tmp_path / "src"
    _write(src / "suid", b"#!", 0o755)
    os.chown(str(src / "suid"), 1000, 1000)
    os.chmod(str(src / "suid"), 0o4755)
    _write(src / "cap", b"\x7fELF", 0o755)
    os.setxattr(str(src / "cap"), "security.capability", b"\x01\x00\x00\x02" + b"\x00\x04\x00\x00" + b"\x00" * 12)
    os.mknod(str(src / "dev"), stat.S_IFBLK | 0o660, os.makedev(7, 9))
    os.chown(str(src / "dev"), 6, 7)
    os.symlink("suid", str(src / "link"))
    os.chown(str(src / "link"), 8, 9, follow_symlinks=False)
    os.setxattr(str(src / "link"), "trusted.on_link", b"v", follow_symlinks=False)
    os.chown(str(src), 3, 4)
    copy_raw(str(src), str(tmp_path / "dst"))
    assert compare(manifest(str(src), True), manifest(str(tmp_path / "dst"), True)) == []
    assert manifest(str(tmp_path / "dst"))[b"suid"]["mode"] == 0o4755


# ---------------------------------------------------------------------------------------------
# make_empty_like, sync_path, remove_tree
# ---------------------------------------------------------------------------------------------

def test_make_empty_like_keeps_all_but_the_overlay_marks(tmp_path):
    src = tmp_path / "upper"
    _write(src / "content", b"not copied")
    _xattr(src, "user.keep", b"1")
    _xattr(src, U + "uuid", b"dropped")
    os.chmod(str(src), 0o751)
    os.utime(str(src), ns=(NS, NS))
    make_empty_like(str(src), str(tmp_path / "fresh"))
    got = manifest(str(tmp_path / "fresh"), keep_overlay_xattrs=True)
    assert list(got) == [b"."] and got[b"."]["xattrs"] == {"user.keep": b"1"}
    assert got[b"."]["mode"] == 0o751 and got[b"."]["mtime_ns"] == NS
    with pytest.raises(OverlayError, match="already exists"):
        make_empty_like(str(src), str(tmp_path / "fresh"))


def test_sync_path_on_a_file_and_a_dir(tmp_path):
    _write(tmp_path / "f", b"x")
    sync_path(str(tmp_path / "f"))
    sync_path(str(tmp_path))


def test_remove_tree_never_follows_a_symlink(tmp_path):
    outside = tmp_path / "outside"
    _write(outside / "keep", b"keep")
    _write(tmp_path / "tree" / "a" / "b" / "c", b"c")
    os.symlink(str(outside), str(tmp_path / "tree" / "a" / "link"))
    os.symlink(str(outside), str(tmp_path / "link_at_top"))
    remove_tree(str(tmp_path / "tree"))
    remove_tree(str(tmp_path / "link_at_top"))
    remove_tree(str(tmp_path / "missing"))
    assert not os.path.lexists(str(tmp_path / "tree")) and not os.path.lexists(str(tmp_path / "link_at_top"))
    assert (outside / "keep").read_bytes() == b"keep"


def test_remove_tree_refuses_a_mount_inside_before_removing_anything(tmp_path, monkeypatch):
    _write(tmp_path / "tree" / "m" / "f", b"f")
    point = str(tmp_path / "tree" / "m")
    monkeypatch.setattr(layer_copy, "_read_mountinfo",
                        lambda: "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n40 22 0:5 / %s rw - tmpfs tmpfs rw\n" % point)
    with pytest.raises(OverlayError) as caught:
        remove_tree(str(tmp_path / "tree"))
    assert point in caught.value.message and caught.value.details["mount_points"] == [point]
    assert (tmp_path / "tree" / "m" / "f").exists()


_UNPRIVILEGED_REMOVE = """
import concurrent.futures.thread  # imported lazily on first use: before the Python install is out of reach
import os, sys
from ansible_collections.overlayfs.mounts.plugins.module_utils._host.layer_copy import remove_tree
os.setgid(65534)
os.setuid(65534)
remove_tree(sys.argv[1])
"""


def test_remove_tree_opens_up_mode_000_dirs_of_its_own(tmp_path):
    """A work dir's work/work has mode 000: a user other than root must open it up to empty it."""
    import tempfile  # pylint: disable=import-outside-toplevel
    base = tempfile.mkdtemp()
    tree = os.path.join(base, "work")
    os.makedirs(os.path.join(tree, "work", "deep"))
    _write(tmp_path / "unused")
    with open(os.path.join(tree, "work", "deep", "f"), "wb") as handle:
        handle.write(b"x")
    os.chmod(os.path.join(tree, "work", "deep"), 0o500)
    os.chmod(os.path.join(tree, "work"), 0o000)
    if not ROOT:
        remove_tree(tree)
    else:
        for top, dirs, files in os.walk(base):
            for name in [top] + [os.path.join(top, n) for n in dirs + files]:
                os.chown(name, 65534, 65534)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
        done = subprocess.run([sys.executable, "-c", _UNPRIVILEGED_REMOVE, tree], env=env, stderr=subprocess.PIPE, check=False)
        assert done.returncode == 0, done.stderr.decode()
    assert not os.path.lexists(tree)
    os.rmdir(base)


def test_a_default_acl_above_the_dest_is_not_inherited(tmp_path, threads):
    import shutil  # pylint: disable=import-outside-toplevel
    if not shutil.which("setfacl"):
        pytest.skip("no setfacl")
    src, parent = tmp_path / "src", tmp_path / "parent"
    _write(src / "d" / "f", b"f", 0o640)
    _write(src / "acl", b"a", 0o640)
    parent.mkdir()
    for args in (["-m", "u:65534:rwx", str(src / "acl")], ["-d", "-m", "u:65534:rwx", str(parent)]):
        if subprocess.run(["setfacl"] + args, stderr=subprocess.PIPE, check=False).returncode:
            pytest.skip("this filesystem takes no ACLs")
    copy_raw(str(src), str(parent / "copy"))
    make_empty_like(str(src), str(parent / "fresh"))
    assert compare(manifest(str(src)), manifest(str(parent / "copy"))) == []
    assert manifest(str(parent / "fresh"))[b"."]["xattrs"] == {}


def test_a_copy_refuses_a_mount_inside_its_source(tmp_path, monkeypatch):
    _write(tmp_path / "upper" / "bound" / "f", b"f")
    point = str(tmp_path / "upper" / "bound")
    monkeypatch.setattr(layer_copy, "_read_mountinfo", lambda: "40 22 0:5 / %s rw - ext4 /dev/sda1 rw\n" % point)
    with pytest.raises(OverlayError) as caught:
        copy_raw(str(tmp_path / "upper"), str(tmp_path / "backup"))
    assert point in caught.value.message and not os.path.lexists(str(tmp_path / "backup"))
    monkeypatch.setattr(layer_copy, "_read_mountinfo", lambda: "40 22 0:5 / %s rw - ext4 /dev/sda1 rw\n" % (tmp_path / "upper"))
    copy_raw(str(tmp_path / "upper"), str(tmp_path / "backup"))  # an upper that is a mount point itself is fine
    assert (tmp_path / "backup" / "bound" / "f").read_bytes() == b"f"


@pytest.mark.parametrize("threads", [1, 4])
def test_remove_tree_on_threads_removes_deep_and_wide_trees(tmp_path, monkeypatch, threads):
    monkeypatch.setattr(layer_copy, "REMOVE_THREADS", threads)
    root = tmp_path / "tree"
    (root / "only" / "a" / "b").mkdir(parents=True)
    for number in range(6):
        (root / "only" / ("wide%d" % number) / "deeper").mkdir(parents=True)
        (root / "only" / ("wide%d" % number) / "deeper" / "file").write_text("x")
    (root / "only" / "a" / "b" / "file").write_text("x")
    (root / "top-file").write_text("x")
    os.symlink("/etc", str(root / "only" / "link-out"))
    layer_copy.remove_tree(str(root))
    assert not root.exists()
    assert os.path.isdir("/etc")


def test_write_layer_links_files_without_overlay_marks(tmp_path):
    upper = tmp_path / "upper"
    (upper / "dir").mkdir(parents=True)
    (upper / "dir" / "new").write_text("written through the overlay")
    (upper / "copied-up").write_text("from a lower layer")
    os.setxattr(str(upper / "copied-up"), "user.overlay.origin", b"\x00\xfb")
    os.link(str(upper / "dir" / "new"), str(upper / "second-name"))
    counts = layer_copy.write_layer(str(upper), None, str(tmp_path / "layer"), "user.overlay.", link=True)
    layer = tmp_path / "layer"
    assert os.lstat(str(layer / "dir" / "new")).st_ino == os.lstat(str(upper / "dir" / "new")).st_ino
    assert os.lstat(str(layer / "second-name")).st_ino == os.lstat(str(upper / "dir" / "new")).st_ino
    assert os.lstat(str(layer / "copied-up")).st_ino != os.lstat(str(upper / "copied-up")).st_ino
    assert "user.overlay.origin" not in os.listxattr(str(layer / "copied-up"))
    assert (counts["linked"], counts["files"], counts["hardlinks"]) == (1, 2, 1)
