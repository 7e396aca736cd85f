# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

import dataclasses
import pytest

from ansible_collections.overlayfs.mounts.plugins.module_utils._host import files
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError
from ansible_collections.overlayfs.mounts.plugins.module_utils._persist.backend import HostFacts, boot_extras
from ansible_collections.overlayfs.mounts.plugins.module_utils._persist.fstab_backend import (
    FstabBackend,
    edit_fstab,
    fstab_line,
    persisted_entries,
)
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.declaration import Declaration

DECL = Declaration("/srv/m", ["/srv/l1", "/srv/l2"], "/srv/u", "/srv/w", ["index=off"])
USER_FSTAB = "# /etc/fstab: static file system information.\nUUID=1\t/\text4\terrors=remount-ro 0 1\n\n# end"


def test_an_unmarked_line_is_taken_over_and_marked():
    hand = "overlay /srv/m overlay lowerdir=/srv/l1:/srv/l2,upperdir=/srv/u,workdir=/srv/w,index=off 0 0\n"
    assert persisted_entries(hand, "/srv/m")[0]["managed"] is False
    text, _info = edit_fstab(hand, DECL, True)
    assert persisted_entries(text, "/srv/m")[0]["managed"] is True
    assert text.count("\n") == 1


def test_add_keeps_every_user_line_and_the_final_newline_convention():
    text, info = edit_fstab(USER_FSTAB, DECL, True)
    assert text.startswith(USER_FSTAB + "\n")
    assert not text.endswith("\n")
    assert text.count("\n") == USER_FSTAB.count("\n") + 1
    assert info == {"duplicates": 0, "removed": 0, "notes": []}
    assert persisted_entries(text, "/srv/m")[0]["lowerdir"] == ["/srv/l1", "/srv/l2"]


def test_second_edit_is_a_no_op():
    once, _info = edit_fstab(USER_FSTAB, dataclasses.replace(DECL, boot_extras=["nofail"]), True)
    twice, info = edit_fstab(once, dataclasses.replace(DECL, boot_extras=["nofail"]), True)
    assert twice == once and info["duplicates"] == 0


def test_an_equivalent_hand_written_line_is_kept_as_written():
    hand = ("overlay\t/srv/m/  overlay  index=off,workdir=/srv/w,lowerdir=/srv/l1:/srv/l2,upperdir=/srv/u,"
            "x-overlayfs.managed,"
            "x-systemd.requires-mounts-for=/srv/w,x-systemd.requires-mounts-for=/srv/l1,"
            "x-systemd.requires-mounts-for=/srv/l2,x-systemd.requires-mounts-for=/srv/u\t0 0\n")
    text, _info = edit_fstab(hand, DECL, True)
    assert text == hand


def test_a_changed_declaration_replaces_the_line_in_place():
    before, _info = edit_fstab("a /b c\n", DECL, True)
    before += "d /e f\n"
    changed = Declaration(**dict(DECL.config(), lowerdir=["/srv/l2", "/srv/l1"]))
    after, _info = edit_fstab(before, changed, True)
    lines = after.splitlines()
    assert lines[0] == "a /b c" and lines[2] == "d /e f"
    assert persisted_entries(after, "/srv/m")[0]["lowerdir"] == ["/srv/l2", "/srv/l1"]


def test_duplicates_are_collapsed_into_one():
    line = fstab_line(DECL).text
    text = "a /b c\n" + line + "\n# between\n" + line.replace("index=off", "index=on") + "\n"
    after, info = edit_fstab(text, DECL, True)
    assert info["duplicates"] == 1
    assert after == "a /b c\n" + line + "\n# between\n"


def test_remove_takes_every_overlay_line_of_the_mount_point_only():
    line = fstab_line(DECL).text
    other = fstab_line(Declaration(**dict(DECL.config(), path="/srv/other"))).text
    text = line + "\n" + other + "\n" + line + "\n"
    after, info = edit_fstab(text, DECL, False)
    assert after == other + "\n" and info["removed"] == 2


def test_a_non_overlay_entry_for_the_mount_point_is_an_error():
    with pytest.raises(OverlayError, match="already has a ext4 entry for /srv/m"):
        edit_fstab("/dev/sdb1 /srv/m ext4 defaults 0 2\n", DECL, True)


def test_noauto_when_not_at_boot():
    text, _info = edit_fstab("", dataclasses.replace(DECL, boot_extras=boot_extras(False, ["nofail"])), True)
    assert persisted_entries(text, "/srv/m")[0]["boot_options"] == ["noauto", "nofail"]


# 16 layers of about 100 bytes with a comma in one: no lowerdir+ (mount(8)
# splits at the comma), so only the one-page lowerdir= form holds them.
COMMA_DECL = Declaration("/srv/m", ["/srv/" + "x" * 90 + "/layer-%d" % i for i in range(16)] + ["/srv/with,comma"],
                         "/srv/u", "/srv/w")


def test_fstab_refuses_the_one_page_form_where_mount_uses_fsconfig():
    with pytest.raises(OverlayError, match="^lowerdir: .*fsconfig.*persist: systemd"):
        edit_fstab(USER_FSTAB, COMMA_DECL, True, HostFacts(True, True, False))


def test_a_line_written_for_mount2_is_not_kept_once_mount_uses_fsconfig():
    # Written on util-linux 2.38; after an upgrade to 2.39+ it would not mount at boot.
    before, _info = edit_fstab(USER_FSTAB, COMMA_DECL, True, HostFacts(True, False, False))
    assert edit_fstab(before, COMMA_DECL, True, HostFacts(True, False, False))[0] == before
    with pytest.raises(OverlayError, match="fsconfig"):
        edit_fstab(before, COMMA_DECL, True, HostFacts(True, True, False))
    # A line that fits one value per option is kept as it is.
    short, _info = edit_fstab(USER_FSTAB, DECL, True, HostFacts(True, False, False))
    assert edit_fstab(short, DECL, True, HostFacts(True, True, False))[0] == short


def test_defaults_in_boot_options_causes_no_drift():
    decl = Declaration("/m", ["/l1", "/l2"])
    extras = boot_extras(True, ["defaults", "nofail"])
    assert extras == ["nofail"]
    text, _info = edit_fstab("", dataclasses.replace(decl, boot_extras=extras), True)
    assert edit_fstab(text, dataclasses.replace(decl, boot_extras=boot_extras(True, ["defaults", "nofail"])), True)[0] == text


@pytest.mark.parametrize("text", ["UUID=1 / ext4 defaults 0 1\r", "a\nb c d e 0 0\r", "x\r\ny\r"])
def test_bare_cr_at_the_end_survives_add_and_remove(text):
    decl = Declaration("/m", ["/l1", "/l2"])
    added, _info = edit_fstab(text, decl, True)
    assert added.startswith(text)
    assert edit_fstab(added, decl, False)[0] == text


# write_together: a batch group's edits in one write ---------------------------

class _Member:
    """What write_together needs of an entry: its result."""

    def __init__(self):
        self.result = {}


def _group(fstab, booted, backup=False):
    members = []
    for name in ("a", "b"):
        decl = Declaration("/srv/%s" % name, ["/srv/l1"], "/srv/%s.u" % name, "/srv/%s.w" % name, [],
                           fstab=str(fstab), backup=backup)
        backend = FstabBackend(decl, HostFacts(True, False, booted))
        backend.keep = True
        members.append((_Member(), backend))
    return members


@pytest.mark.parametrize("booted", [True, False])
def test_write_together_makes_every_edit_in_one_write(tmp_path, module, monkeypatch, booted):
    fstab = tmp_path / "fstab"
    fstab.write_text(USER_FSTAB)
    calls = []
    monkeypatch.setattr(files, "systemctl", lambda _module, *args: calls.append(args))
    writes = []
    real_write = files.write_atomic
    monkeypatch.setattr(files, "write_atomic", lambda *a, **k: writes.append(a[1]) or real_write(*a, **k))
    assert FstabBackend.write_together(module, str(fstab), _group(fstab, booted)) == []
    text = fstab.read_text()
    assert text.startswith(USER_FSTAB + "\n") and "overlay /srv/a " in text and "overlay /srv/b " in text
    assert writes == [str(fstab)]
    assert calls == ([("daemon-reload",)] if booted else [])  # systemd's fstab generator sees the lines


def test_a_failed_reload_puts_fstab_back_and_fails_the_whole_write(tmp_path, module, monkeypatch):
    fstab = tmp_path / "fstab"
    fstab.write_text(USER_FSTAB)
    calls = []

    def systemctl(_module, *args):
        calls.append(args)
        if len(calls) == 1:
            raise OverlayError("systemctl daemon-reload failed (rc=1): Access denied")

    monkeypatch.setattr(files, "systemctl", systemctl)
    members = _group(fstab, booted=True, backup=True)
    failed = FstabBackend.write_together(module, str(fstab), members)
    assert [task for task, _error in failed] == [task for task, _backend in members]
    message = failed[0][1].message
    assert "daemon-reload after writing" in message and "Access denied" in message and "put back" in message
    assert fstab.read_text() == USER_FSTAB and calls == [("daemon-reload",)] * 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fstab"]  # no backup of a file that did not change


def test_write_together_checks_the_new_lines_with_one_findmnt_run(tmp_path, module, monkeypatch):
    fstab = tmp_path / "fstab"
    fstab.write_text(USER_FSTAB)
    runs = []
    monkeypatch.setattr(files, "findmnt_verify", lambda _module, text, targets, missing_ok=False: runs.append(
        (text, list(targets), missing_ok)))
    members = _group(fstab, booted=False)
    assert FstabBackend.write_together(module, str(fstab), members) == []
    # One run: the new lines and the root line they mount under, not the comments.
    assert len(runs) == 1
    text, targets, missing_ok = runs[0]
    assert targets == ["/srv/a", "/srv/b"] and missing_ok
    assert text.splitlines() == ["UUID=1 / ext4 errors=remount-ro 0 1"] + [b._line() for _entry, b in members]


def test_a_line_findmnt_faults_fails_the_whole_group_write(tmp_path, module, monkeypatch):
    fstab = tmp_path / "fstab"
    fstab.write_text(USER_FSTAB)

    def verify(_module, _text, targets, missing_ok=False):
        if "/srv/b" in targets:
            raise OverlayError("findmnt --verify refused the fstab entry for /srv/b: bad")

    monkeypatch.setattr(files, "findmnt_verify", verify)
    members = _group(fstab, booted=False)
    failed = FstabBackend.write_together(module, str(fstab), members)
    assert [entry for entry, _error in failed] == [entry for entry, _backend in members]
    assert "refused the fstab entry for /srv/b" in failed[0][1].message
    assert fstab.read_text() == USER_FSTAB


def test_a_symlinked_layer_is_persisted_as_spelled():
    decl = DECL.canonical(lambda p: {"/srv/l1": "/srv/rel/v1"}.get(p, p))
    line = fstab_line(decl).text
    assert "lowerdir=/srv/l1:/srv/l2," in line
    # Where the link leads now is needed at boot too: its mount comes first.
    assert "x-systemd.requires-mounts-for=/srv/rel/v1 " in line and "lowerdir=/srv/rel/v1" not in line
    text, _info = edit_fstab("", decl, True)
    assert edit_fstab(text, decl, True)[0] == text


def test_a_line_spelling_the_same_paths_differently_is_adopted():
    line, _notes = fstab_line(DECL)
    respelled = line.replace("lowerdir=/srv/l1:/srv/l2,", "lowerdir=/srv/l1/:/srv//./l2,")
    respelled = respelled.replace("requires-mounts-for=/srv/u,", "requires-mounts-for=/srv/u/,")
    assert respelled != line
    text, _info = edit_fstab(respelled + "\n", DECL, True)
    assert text == respelled + "\n"


def test_flags_are_written_after_the_overlay_options_and_read_back():
    decl = dataclasses.replace(DECL, flags=["ro", "nosuid"], boot_extras=["nofail"])
    text, _info = edit_fstab("", decl, True)
    assert ",index=off,ro,nosuid,nofail,x-overlayfs.managed," in text
    entry = persisted_entries(text, "/srv/m")[0]
    assert (entry["options"], entry["flags"], entry["boot_options"]) == (["index=off"], ["ro", "nosuid"], ["nofail"])
    assert edit_fstab(text, decl, True)[0] == text


def test_a_hand_written_line_with_flags_in_another_order_is_kept():
    line = ("overlay /srv/m overlay nosuid,lowerdir=/srv/l1:/srv/l2,upperdir=/srv/u,workdir=/srv/w,index=off,rw,"
            "x-overlayfs.managed,x-systemd.requires-mounts-for=/srv/l1,x-systemd.requires-mounts-for=/srv/l2,"
            "x-systemd.requires-mounts-for=/srv/u,x-systemd.requires-mounts-for=/srv/w 0 0\n")
    decl = dataclasses.replace(DECL, flags=["nosuid"])
    assert edit_fstab(line, decl, True)[0] == line
    assert edit_fstab(line, DECL, True)[0] != line


# Paths are identities: a line spelled through a symlink is the overlay's line.
LINKS = {"/mnt/link": "/srv/m", "/opt/l1": "/srv/l1", "/mnt/tlink": "/srv/t"}


def _resolve(path):
    for link, target in LINKS.items():
        if path == link or path.startswith(link + "/"):
            return target + path[len(link):]
    return path


def test_a_line_whose_mount_point_is_spelled_through_a_symlink_is_adopted_not_duplicated():
    line, _notes = fstab_line(DECL)
    text = line.replace(" /srv/m ", " /mnt/link ") + "\n"
    assert edit_fstab(text, DECL, True, realpath=_resolve)[0] == text
    assert persisted_entries(text, "/srv/m", _resolve)[0]["managed"] is True
    # Without a resolver the spelling differs: a second line would be added.
    assert len(edit_fstab(text, DECL, True)[0].splitlines()) == 2
    removed, info = edit_fstab(text, DECL, False, realpath=_resolve)
    assert removed == "" and info["removed"] == 1


def test_a_layer_spelled_through_a_symlink_to_the_declared_one_is_adopted():
    line, _notes = fstab_line(DECL)
    linked = line.replace("lowerdir=/srv/l1:", "lowerdir=/opt/l1:").replace(
        "requires-mounts-for=/srv/l1,", "requires-mounts-for=/opt/l1,x-systemd.requires-mounts-for=/srv/l1,")
    text = linked + "\n"
    assert edit_fstab(text, DECL, True, realpath=_resolve)[0] == text
    # A line that would not bring up where its link leads first is rewritten.
    unsafe = line.replace("lowerdir=/srv/l1:", "lowerdir=/opt/l1:").replace(
        "requires-mounts-for=/srv/l1,", "requires-mounts-for=/opt/l1,") + "\n"
    assert edit_fstab(unsafe, DECL, True, realpath=_resolve)[0] == line + "\n"


def test_a_prune_removes_only_the_marked_line_at_the_mount_point():
    marked, _notes = fstab_line(DECL)
    hand = "overlay /srv/m overlay lowerdir=/srv/l1:/srv/l2,upperdir=/srv/u,workdir=/srv/w 0 0"
    text = "\n".join([USER_FSTAB.split("\n")[1], hand, marked]) + "\n"
    prune = dataclasses.replace(DECL, state="absent", marked_only=True)
    after, info = edit_fstab(text, prune, False)
    assert after == "\n".join([USER_FSTAB.split("\n")[1], hand]) + "\n" and info["removed"] == 1
    assert edit_fstab(after, prune, False)[0] == after  # the hand-written line stays, run after run
    # state: absent declared by the user removes every overlay line there.
    assert edit_fstab(text, dataclasses.replace(DECL, state="absent"), False)[1]["removed"] == 2


def test_the_backend_takes_a_resolver_and_its_line_goes_after_the_mount_it_needs(tmp_path):
    fstab = tmp_path / "fstab"
    decl = Declaration("/srv/m", ["/mnt/tlink/l1", "/srv/l2"], "/srv/u", "/srv/w", fstab=str(fstab)).canonical(_resolve)
    fstab.write_text("overlay /srv/other overlay lowerdir=/srv/m/x:/y,x-overlayfs.managed 0 0\n"
                     "tmpfs /srv/t tmpfs noauto 0 0\n")
    backend = FstabBackend(decl, HostFacts(True, False, False), realpath=_resolve)
    backend.read(True)
    backend.plan(True)
    points = [line.split()[1] for line in backend.after.splitlines()]
    # After the tmpfs its lower (spelled through a link) lies on; before the
    # overlay that needs its mount, which the collection wrote and so may move.
    assert points == ["/srv/t", "/srv/m", "/srv/other"]
