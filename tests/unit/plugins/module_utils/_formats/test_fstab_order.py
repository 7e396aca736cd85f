# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The order mount -a needs among fstab lines: tables of files, edits and the order they end in."""

import time

import pytest

from ansible_collections.overlayfs.mounts.plugins.module_utils._formats import fstab_syntax as _fstab
from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.fstab_order import FstabDraft, Layout, line_needs
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError


def overlay(point, lower, upper=None):
    """A line this collection writes (with its marker)."""
    upper = upper or "/srv/state%s" % point.replace("/", "-")
    return "overlay %s overlay lowerdir=%s:/srv/base,upperdir=%s/u,workdir=%s/w,x-overlayfs.managed 0 0" % (
        point, lower, upper, upper)


A = overlay("/mnt/a", "/srv/a")
B = overlay("/mnt/b", "/mnt/a/sub")           # lower under A's mount point
C = overlay("/mnt/c", "/srv/c", "/mnt/b/st")  # upper and work under B's
NFS = "srv:/export /mnt/nfs nfs noauto,_netdev 0 0"
ON_NFS = overlay("/mnt/n", "/mnt/nfs/l")
ROOT = "UUID=1 / ext4 defaults 0 1"


def points(lines):
    return [line.entry.file if line.entry else line.text for line in lines]


def add(text, line, resolve=None):
    draft = FstabDraft(_fstab.parse(text), resolve)
    draft.append(line)
    return points(draft.result())


@pytest.mark.parametrize("text, line, expected", [
    # A new line with nothing that needs it goes at the end.
    (ROOT + "\n" + A + "\n", B, ["/", "/mnt/a", "/mnt/b"]),
    # A line that needs the new one: the new one goes before it.
    (ROOT + "\n" + B + "\n# end\n", A, ["/", "/mnt/a", "/mnt/b", "# end"]),
    # The triple declared backwards, one task each.
    (ROOT + "\n" + C + "\n" + B + "\n", A, ["/", "/mnt/c", "/mnt/a", "/mnt/b"]),
    # A foreign line counts: an overlay on an nfs export goes after it.
    (ON_NFS + "\n" + ROOT + "\n", NFS, ["/mnt/nfs", "/mnt/n", "/"]),
    (NFS + "\n" + ROOT + "\n", ON_NFS, ["/mnt/nfs", "/", "/mnt/n"]),
    # A mount point under another one's: after it.
    ("tmpfs /mnt/a/deep tmpfs noauto 0 0\n", A, ["/mnt/a", "/mnt/a/deep"]),
])
def test_a_new_line_goes_after_what_it_needs_and_before_what_needs_it(text, line, expected):
    assert add(text, line) == expected


def test_the_triple_in_any_order_of_tasks_ends_in_dependency_order():
    for order in ([A, B, C], [C, B, A], [B, C, A], [C, A, B]):
        text = ""
        for line in order:
            draft = FstabDraft(_fstab.parse(text))
            draft.append(line)
            text = _fstab.render(draft.result())
        assert points(_fstab.parse(text)).index("/mnt/a") < points(_fstab.parse(text)).index("/mnt/b") \
            < points(_fstab.parse(text)).index("/mnt/c"), order


def test_a_dependency_through_a_symlink_counts():
    # B2's lower /opt/link/sub leads into A's mount point.
    b2 = overlay("/mnt/b2", "/opt/link/sub")

    def resolve(path):
        return path.replace("/opt/link", "/mnt/a")

    assert add(b2 + "\n", A, resolve) == ["/mnt/a", "/mnt/b2"]
    assert add(b2 + "\n", A) == ["/mnt/b2", "/mnt/a"]  # as written alone, no dependency shows


def test_a_line_rewritten_in_the_wrong_place_moves_and_other_lines_keep_their_order():
    text = "\n".join([ROOT, "# comment", B, NFS, A]) + "\n"
    lines = _fstab.parse(text)
    draft = FstabDraft(lines)
    slot = [slot for slot, entry in draft.at("/mnt/a")][0]
    draft.replace(slot, A.replace("0 0", "0 0 "))
    assert points(draft.result()) == ["/", "# comment", "/mnt/a", "/mnt/b", "/mnt/nfs"]


def test_a_kept_line_in_place_changes_nothing():
    lines = _fstab.parse("\n".join([ROOT, A, B]) + "\n")
    draft = FstabDraft(lines)
    draft.keep(draft.at("/mnt/b")[0][0])
    assert draft.result() is lines


def test_an_order_the_file_makes_impossible_is_refused_with_the_lines_named():
    # /mnt/p must follow the tmpfs at /mnt/o and precede the hand-written
    # /mnt/q, which the file has before /mnt/o: no place works, and the
    # user's lines are never reordered.
    hand = overlay("/mnt/q", "/mnt/p/l").replace(",x-overlayfs.managed", "")
    draft = FstabDraft(_fstab.parse("\n".join([hand, "tmpfs /mnt/o tmpfs noauto 0 0"]) + "\n"))
    draft.append(overlay("/mnt/p", "/mnt/o/l"))
    with pytest.raises(OverlayError, match="line for /mnt/p must come after the line for /mnt/o .* before the line for /mnt/q"):
        draft.result()


def test_lines_the_collection_wrote_move_when_a_new_one_must_go_between():
    # C and A were written first (unrelated then); B needs A and C needs B.
    draft = FstabDraft(_fstab.parse("\n".join([ROOT, C, "# mine", A]) + "\n"))
    draft.append(B)
    assert points(draft.result()) == ["/", "# mine", "/mnt/a", "/mnt/b", "/mnt/c"]


def test_new_lines_that_need_each_other_are_a_cycle():
    draft = FstabDraft(_fstab.parse(""))
    draft.append(overlay("/mnt/x", "/mnt/y/l"))
    draft.append(overlay("/mnt/y", "/mnt/x/l"))
    with pytest.raises(OverlayError, match="cycle"):
        draft.result()


def test_needs_of_foreign_lines():
    entry = _fstab.parse("/srv/data /mnt/d none bind,x-systemd.requires-mounts-for=/srv/other 0 0\n")[0].entry
    assert sorted(line_needs(entry)) == ["/srv/data", "/srv/other"]
    assert line_needs(_fstab.parse("tmpfs /t tmpfs defaults 0 0\n")[0].entry) == []


def test_endings_survive_a_move_and_a_file_without_a_final_newline():
    text = B + "\r\n" + ROOT
    draft = FstabDraft(_fstab.parse(text))
    draft.append(A)
    out = _fstab.render(draft.result())
    assert out == A + "\r\n" + B + "\r\n" + ROOT


def test_excerpt_holds_our_lines_and_the_lines_above_them_with_resolved_targets():
    text = "\n".join([ROOT, NFS, "tmpfs /opt/lnk tmpfs noauto 0 0", "tmpfs /elsewhere tmpfs noauto 0 0"]) + "\n"

    def resolve(path):
        return path.replace("/opt/lnk", "/mnt")

    draft = FstabDraft(_fstab.parse(text), resolve)
    draft.append(overlay("/mnt/n", "/srv/l"))
    draft.result()
    excerpt, targets = draft.excerpt()
    assert targets == ["/mnt/n"]
    assert [line.split()[1] for line in excerpt.splitlines()] == ["/", "/mnt", "/mnt/n"]


def test_a_big_fstab_is_indexed_and_edited_in_linear_time():
    def build(count):
        return "".join("tmpfs /srv/t%d tmpfs noauto 0 0\n" % i for i in range(count))

    def cost(count):
        text = build(count)
        start = time.perf_counter()
        lines = _fstab.parse(text)
        draft = FstabDraft(lines, layout=Layout(lines, lambda p: p))
        for i in range(count // 2):
            draft.append(overlay("/mnt/o%d" % i, "/srv/t%d/l" % i))
        _fstab.render(draft.result())
        draft.excerpt()
        return time.perf_counter() - start

    cost(200)
    small, big = min(cost(1000) for _attempt in range(3)), min(cost(4000) for _attempt in range(3))
    assert big < small * 8, "4x the lines cost %.1fx the time" % (big / small)
