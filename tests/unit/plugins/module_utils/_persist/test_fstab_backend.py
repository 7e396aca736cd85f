# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

import dataclasses
import json
import shutil
import subprocess

import pytest

from ansible_collections.overlayfs.mounts.plugins.module_utils._host import files
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError
from ansible_collections.overlayfs.mounts.plugins.module_utils._persist.backend import HostFacts, boot_extras
from ansible_collections.overlayfs.mounts.plugins.module_utils._persist import fstab_backend
from ansible_collections.overlayfs.mounts.plugins.module_utils._persist.fstab_backend import (
    FstabBackend,
    edit_fstab,
    fstab_line,
    new_info,
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
    assert info == new_info() == {"duplicates": 0, "removed": 0, "notes": [], "changes": [], "adopted": False}
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


def test_an_fstab_edit_asks_about_fsconfig_only_for_a_value_longer_than_one_call_takes(counted_read):
    # Short values fit either way: the line is written and kept without running mount -V.
    reader = counted_read(True)
    short, _info = edit_fstab(USER_FSTAB, DECL, True, HostFacts(True, reader, False))
    assert edit_fstab(short, DECL, True, HostFacts(True, reader, False))[0] == short
    assert reader.calls == 0
    # The one-page lower list of COMMA_DECL is kept only where mount(8) uses mount(2): asked, once per reading.
    before, _info = edit_fstab(USER_FSTAB, COMMA_DECL, True, HostFacts(True, False, False))
    kept = counted_read(False)
    assert edit_fstab(before, COMMA_DECL, True, HostFacts(True, kept, False))[0] == before
    assert kept.calls == 1
    refused = counted_read(True)
    with pytest.raises(OverlayError, match="fsconfig"):
        edit_fstab(before, COMMA_DECL, True, HostFacts(True, refused, False))
    assert refused.calls == 1


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
    # A line that would not bring up where its link leads first gets that requirement, in the rendered order.
    unsafe = line.replace("lowerdir=/srv/l1:", "lowerdir=/opt/l1:").replace(
        "requires-mounts-for=/srv/l1,", "requires-mounts-for=/opt/l1,")
    text, info = edit_fstab(unsafe + "\n", DECL, True, realpath=_resolve)
    assert text == linked + "\n"
    assert info["changes"] == [{"option": "x-systemd.requires-mounts-for=/srv/l1", "change": "added"}]
    assert not info["adopted"]


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


# Adoption: an existing line that says something else is edited, not rewritten ---------

PLAIN = Declaration("/srv/m", ["/srv/l1", "/srv/l2"], "/srv/u", "/srv/w")
LAYERS = "lowerdir=/srv/l1:/srv/l2,upperdir=/srv/u,workdir=/srv/w"
REQUIRES = ",".join("x-systemd.requires-mounts-for=" + p for p in ("/srv/l1", "/srv/l2", "/srv/u", "/srv/w"))
MANAGED = "x-overlayfs.managed"
MARKED = MANAGED + "," + REQUIRES


def added(*options):
    return [{"option": option, "change": "added"} for option in options]


MARKED_ADDED = added("x-overlayfs.managed", *REQUIRES.split(","))
LONG = ["/srv/" + "x" * 100 + "/layer-%d" % i for i in range(3)]

# (id, declaration, existing line, the line after the edit, changes)
ADOPTION_CASES = [
    ("hand-written: none and defaults stay", PLAIN,
     "none /srv/m overlay defaults," + LAYERS + " 0 0",
     "none /srv/m overlay defaults," + LAYERS + "," + MARKED + " 0 0", MARKED_ADDED),
    ("ansible.posix.mount's spelling becomes the rendered line", PLAIN,
     "overlay /srv/m overlay " + LAYERS + " 0 0", fstab_line(PLAIN).text, MARKED_ADDED),
    ("boot options: kept in place, removed, added; tabs and passno", dataclasses.replace(PLAIN, boot_extras=["nofail", "_netdev"]),
     "none\t/srv/m\toverlay\tnofail,lowerdir=/srv/l1:/srv/l2,x-systemd.after=network-online.target,upperdir=/srv/u,"
     "workdir=/srv/w\t0\t2",
     "none\t/srv/m\toverlay\tnofail," + LAYERS + ",_netdev," + MARKED + "\t0\t0",
     [{"option": "x-systemd.after=network-online.target", "change": "removed"}] + added("_netdev") + MARKED_ADDED
     + [{"field": "freq/passno", "change": "changed", "old": "0 2", "new": "0 0"}]),
    ("noauto beside x-systemd.automount stays", dataclasses.replace(PLAIN, boot_extras=["x-systemd.automount"]),
     "overlay /srv/m overlay noauto,x-systemd.automount," + LAYERS + " 0 0",
     "overlay /srv/m overlay noauto,x-systemd.automount," + LAYERS + "," + MARKED + " 0 0", MARKED_ADDED),
    ("a flag and an overlay option change in place", dataclasses.replace(PLAIN, flags=["ro"], options=["index=off"]),
     "overlay /srv/m overlay rw," + LAYERS + ",index=on,nosuid,xino=off 0 0",
     "overlay /srv/m overlay ro," + LAYERS + ",index=off," + MARKED + " 0 0",
     [{"option": "ro", "change": "changed", "old": "rw", "new": "ro"},
      {"option": "index", "change": "changed", "old": "index=on", "new": "index=off"},
      {"option": "nosuid", "change": "removed"}, {"option": "xino=off", "change": "removed"}] + MARKED_ADDED),
    ("a new upper and work dir go after the layers", PLAIN,
     "overlay /srv/m overlay defaults,lowerdir=/srv/l1:/srv/l2,nofail 0 0",
     "overlay /srv/m overlay defaults," + LAYERS + "," + MARKED + " 0 0",
     [{"option": "nofail", "change": "removed"}] + added("upperdir=/srv/u", "workdir=/srv/w") + MARKED_ADDED),
    ("the collection's own line: only what the declaration changed", dataclasses.replace(PLAIN, lowerdir=["/srv/l2", "/srv/l1"]),
     fstab_line(PLAIN).text, fstab_line(PLAIN).text.replace("lowerdir=/srv/l1:/srv/l2", "lowerdir=/srv/l2:/srv/l1"),
     [{"option": "lowerdir", "change": "changed", "old": "lowerdir=/srv/l1:/srv/l2", "new": "lowerdir=/srv/l2:/srv/l1"}]),
    ("the collection's own line: new boot options go before the marker",
     dataclasses.replace(PLAIN, boot_extras=["nofail", "x-systemd.device-timeout=10s"]),
     fstab_line(dataclasses.replace(PLAIN, boot_extras=["noauto", "nofail"])).text,
     fstab_line(dataclasses.replace(PLAIN, boot_extras=["nofail", "x-systemd.device-timeout=10s"])).text,
     [{"option": "noauto", "change": "removed"}] + added("x-systemd.device-timeout=10s")),
    ("escapes: a space in a layer, quoted requirement", dataclasses.replace(PLAIN, lowerdir=["/srv/my l1", "/srv/l2"]),
     "overlay /srv/m overlay lowerdir=/srv/my\\040l1:/srv/l2,upperdir=/srv/u,workdir=/srv/w 0 0",
     fstab_line(dataclasses.replace(PLAIN, lowerdir=["/srv/my l1", "/srv/l2"])).text,
     added("x-overlayfs.managed", 'x-systemd.requires-mounts-for="/srv/my l1"', *REQUIRES.split(",")[1:])),
]


@pytest.mark.parametrize("decl, before, after, changes", [case[1:] for case in ADOPTION_CASES],
                         ids=[case[0] for case in ADOPTION_CASES])
def test_an_existing_line_is_edited_as_little_as_it_takes(decl, before, after, changes):
    text, info = edit_fstab(USER_FSTAB + "\n" + before + "\n", decl, True)
    assert text == USER_FSTAB + "\n" + after + "\n"
    assert info["changes"] == changes
    assert info["adopted"] is ("x-overlayfs.managed" not in before)
    again, info = edit_fstab(text, decl, True)
    assert again == text and info["changes"] == []  # idempotent: the edited line is the overlay's line


def test_a_symlinked_spelling_of_the_layers_is_kept():
    hand = "overlay /srv/m/ overlay lowerdir=/opt/l1/:/srv//l2,upperdir=/srv/u,workdir=/srv/w 0 0\n"
    text, info = edit_fstab(hand, PLAIN, True, realpath=_resolve)
    # The requirements in the rendered line's order; the link's own one after them.
    needs = ",".join("x-systemd.requires-mounts-for=" + p for p in ("/srv/l1", "/srv/l2", "/srv/u", "/srv/w", "/opt/l1"))
    assert text == hand.replace(" 0 0", ",x-overlayfs.managed," + needs + " 0 0")
    assert info["changes"] == added("x-overlayfs.managed", *needs.split(","))
    assert edit_fstab(text, PLAIN, True, realpath=_resolve)[0] == text


def test_a_lower_list_too_long_for_fsconfig_is_replaced_as_a_block():
    decl = Declaration("/srv/m", LONG, "/srv/u", "/srv/w")
    facts = HostFacts(True, True, False)  # the kernel takes lowerdir+, mount(8) uses fsconfig()
    hand = "none /srv/m overlay defaults,lowerdir=%s,upperdir=/srv/u,workdir=/srv/w,nofail 0 0\n" % ":".join(LONG)
    text, info = edit_fstab(hand, decl, True, facts)
    block = ",".join("lowerdir+=" + p for p in LONG)
    assert text.startswith("none /srv/m overlay defaults,%s,upperdir=/srv/u,workdir=/srv/w,x-overlayfs.managed," % block)
    assert info["changes"][0] == {"option": "lowerdir=" + ":".join(LONG), "change": "removed"}
    assert info["changes"][1:5] == [{"option": "nofail", "change": "removed"}] + added(*block.split(","))
    assert edit_fstab(text, decl, True, facts)[0] == text


def test_a_nonzero_freq_or_passno_is_no_match():
    line = fstab_line(PLAIN).text
    text, info = edit_fstab(line.replace(" 0 0", " 1 0") + "\n", PLAIN, True)
    assert text == line + "\n"
    assert info["changes"] == [{"field": "freq/passno", "change": "changed", "old": "1 0", "new": "0 0"}]


def test_a_line_that_means_the_same_in_another_order_and_source_is_kept():
    line = ("none /srv/m overlay defaults,x-systemd.automount,x-systemd.requires-mounts-for=/srv/w,noauto,"
            "workdir=/srv/w,upperdir=/srv/u,x-overlayfs.managed,lowerdir=/srv/l1:/srv/l2," + REQUIRES + " 0 0\n")
    decl = dataclasses.replace(PLAIN, boot_extras=["x-systemd.automount"])
    assert edit_fstab(line, decl, True)[0] == line
    assert edit_fstab(line, dataclasses.replace(decl, boot_extras=["noauto", "x-systemd.automount"]), True)[0] == line
    assert edit_fstab(line, PLAIN, True)[0] != line  # no automount declared: noauto and the automount go


def test_where_no_edit_makes_the_overlay_s_line_the_rendered_one_is_written(monkeypatch):
    hand = "none /srv/m/ overlay defaults," + LAYERS + " 0 0\n"
    monkeypatch.setattr(fstab_backend, "_assemble", lambda options, kept, missing, want: options)  # an edit that misses
    text, info = edit_fstab(hand, PLAIN, True)
    assert text == fstab_line(PLAIN).text + "\n"
    assert info["changes"] == [
        {"field": "source", "change": "changed", "old": "none", "new": "overlay"},
        {"field": "path", "change": "changed", "old": "/srv/m/", "new": "/srv/m"},
        {"option": "defaults", "change": "removed"}] + MARKED_ADDED


def test_the_backend_names_the_changes_of_an_adopted_line(tmp_path):
    fstab = tmp_path / "fstab"
    fstab.write_text("none /srv/m overlay defaults," + LAYERS + ",nosuid 0 0\n")
    backend = FstabBackend(dataclasses.replace(PLAIN, fstab=str(fstab)), HostFacts(True, False, False))
    backend.read(True)
    backend.plan(True)
    assert backend.adopted_changes() == [{"option": "nosuid", "change": "removed"}] + MARKED_ADDED
    assert backend.info["adopted"] is True
    warnings = backend.plan_warnings(check_mode=True)
    assert len(warnings) == 1
    assert warnings[0].startswith("%s: the overlay line for /srv/m was not written by this collection; it would be "
                                  "taken over with these changes: removed nosuid, added x-overlayfs.managed, "
                                  "added x-systemd.requires-mounts-for=/srv/l1," % fstab)
    # The collection's own line changed by the declaration: the diff shows it, no warning.
    fstab.write_text(backend.after)
    moved = FstabBackend(dataclasses.replace(PLAIN, fstab=str(fstab), lowerdir=["/srv/l2", "/srv/l1"]),
                         HostFacts(True, False, False))
    moved.read(True)
    moved.plan(True)
    assert [c["option"] for c in moved.adopted_changes()] == ["lowerdir"]
    assert moved.plan_warnings(check_mode=False) == []


def _conf(line):
    return persisted_entries(line + "\n", "/srv/m")[0]


def test_boot_drift_names_a_missing_requirement_and_keeps_its_other_rows():
    hand = _conf("none /srv/m overlay defaults," + LAYERS + " 0 0")
    assert FstabBackend.boot_drift(hand, {}, ["nofail"], True) == [
        ("boot_options", ["nofail"], []), ("managed", True, False),
        ("requires_mounts_for", ["/srv/l1", "/srv/l2", "/srv/u", "/srv/w"], [])]
    ours = _conf(fstab_line(PLAIN).text)
    assert FstabBackend.boot_drift(ours, {}, [], True) == []
    # Where a path leads now (the drift report adds it) must be required too.
    assert FstabBackend.boot_drift(dict(ours, also_needs=["/srv/rel/v1"]), {}, [], True) == [
        ("requires_mounts_for", ["/srv/l1", "/srv/l2", "/srv/u", "/srv/w", "/srv/rel/v1"],
         ["/srv/l1", "/srv/l2", "/srv/u", "/srv/w"])]
    # A requirement spelled with a trailing slash is the same one; noauto beside an automount is no drift.
    automount = _conf(fstab_line(dataclasses.replace(PLAIN, boot_extras=["noauto", "x-systemd.automount"])).text
                      .replace("for=/srv/u,", "for=/srv/u/,"))
    assert FstabBackend.boot_drift(automount, {}, ["x-systemd.automount"], True) == []


def _findmnt(path):
    listed = subprocess.run(["findmnt", "--tab-file", str(path), "--json", "-o", "SOURCE,TARGET,FSTYPE,OPTIONS"],
                            stdout=subprocess.PIPE, check=True, universal_newlines=True)
    return json.loads(listed.stdout)["filesystems"]


@pytest.mark.skipif(shutil.which("findmnt") is None, reason="findmnt (util-linux) is not installed")
def test_an_adopted_line_mounts_as_the_rendered_line_would(tmp_path):
    decl = Declaration("/srv/my m", ["/srv/my l1", "/srv/l,2"], "/srv/u", "/srv/w", ["index=off"])
    hand = r"none /srv/my\040m overlay defaults,lowerdir=/srv/my\040l1:/srv/l\,2,upperdir=/srv/u,workdir=/srv/w 0 0" + "\n"
    adopted, rendered = tmp_path / "adopted", tmp_path / "rendered"
    adopted.write_text(edit_fstab(hand, decl, True)[0])
    rendered.write_text(fstab_line(decl).text + "\n")
    [mine], [theirs] = _findmnt(adopted), _findmnt(rendered)
    assert (mine["source"], mine["target"], theirs["source"]) == ("none", "/srv/my m", "overlay")
    parsed = fstab_backend.parse_overlay_options(mine["options"])
    assert parsed == dict(fstab_backend.parse_overlay_options(theirs["options"]), extra_options=["defaults", MANAGED])
    assert parsed["lowerdir"] == ["/srv/my l1", "/srv/l,2"] and "/srv/my l1" in parsed["requires_mounts_for"]
