# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The tmpfs line, the tmpfs unit and the dirs service of a volatile upper, and reading them back."""

import shutil
import subprocess

import pytest

from ansible_collections.overlayfs.mounts.plugins.module_utils._formats import tmpfs_units as units
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.upper_tmpfs import UpperTmpfs

TMPFS = UpperTmpfs("/var/lib/vol ume", "64M", 0o750, "root", "root")
USER_FSTAB = "# comment\nproc /proc proc defaults 0 0\noverlay /srv/m overlay lowerdir=/l,upperdir=/u 0 0\n/dev/sda1 /data ext4 defaults 0 2"


def test_service_name_is_escaped_as_systemd_does():
    assert units.service_name("/srv/my-merged") == "overlayfs-upper-srv-my\\x2dmerged.service"
    assert units.requires_option("/srv/m") == "x-systemd.requires=overlayfs-upper-srv-m.service"


@pytest.mark.skipif(shutil.which("systemd-escape") is None, reason="needs systemd-escape")
def test_service_name_matches_systemd_escape():
    path = "/srv/a b-c/ü"
    escaped = subprocess.run(["systemd-escape", "--path", path], capture_output=True, text=True, check=True).stdout.strip()
    assert units.service_name(path) == "overlayfs-upper-%s.service" % escaped


def test_fstab_line():
    assert units.fstab_line(TMPFS, 0, 0) == (
        "tmpfs /var/lib/vol\\040ume tmpfs size=64M,mode=0750,uid=0,gid=0,x-overlayfs.managed 0 0")
    assert units.fstab_line(TMPFS, 1, 2, boot=False).startswith("tmpfs /var/lib/vol\\040ume tmpfs noauto,size=64M")


def test_service_makes_the_dirs_with_quoting_and_specifiers_escaped():
    text = units.render_service("/srv/m", UpperTmpfs("/v 1%", "1M"), ["/v 1%/upper", "/v 1%/$w"], 0o700, 33, 44)
    assert 'RequiresMountsFor="/v 1%%"' in text
    assert 'ExecStart=/usr/bin/install -d -m 0700 -o 33 -g 44 "/v 1%%/upper" /v 1%%/$$w' not in text
    assert 'ExecStart=/usr/bin/install -d -m 0700 -o 33 -g 44 "/v 1%%/upper" "/v 1%%/$$w"' in text
    assert "Before=srv-m.mount" in text and "DefaultDependencies=no" in text
    assert units.service_tmpfs(text) == "/v 1%"


def test_mount_unit():
    text = units.render_mount_unit("/srv/m", TMPFS, 0, 0)
    assert "Where=/var/lib/vol ume\nType=tmpfs\nOptions=size=64M,mode=0750,uid=0,gid=0\n" in text
    assert "WantedBy=local-fs.target" in text
    assert "[Install]" not in units.render_mount_unit("/srv/m", TMPFS, 0, 0, boot=False)
    assert units.mount_unit_options(text) == ("/var/lib/vol ume", ["size=64M", "mode=0750", "uid=0", "gid=0"])
    assert units.mount_unit_options("[Mount]\nType=tmpfs\n") is None  # not the collection's


def test_the_line_goes_before_the_overlay_line_and_stays():
    line = units.fstab_line(TMPFS, 0, 0)
    new = units.edit_fstab(USER_FSTAB, TMPFS.path, line, "/srv/m")
    assert new.split("\n")[2] == line
    assert new.replace(line + "\n", "") == USER_FSTAB
    assert units.edit_fstab(new, TMPFS.path, line, "/srv/m") == new


def test_a_line_after_the_overlay_line_moves_before_it():
    line = units.fstab_line(TMPFS, 0, 0)
    late = USER_FSTAB + "\n" + line.replace("64M", "32M") + "\n"
    new = units.edit_fstab(late, TMPFS.path, line, "/srv/m")
    assert new.split("\n")[2] == line and new.count("tmpfs /var") == 1


def test_without_an_overlay_line_it_is_appended_keeping_the_file_convention():
    line = units.fstab_line(TMPFS, 0, 0)
    new = units.edit_fstab("proc /proc proc defaults 0 0", TMPFS.path, line, "/srv/m")
    assert new == "proc /proc proc defaults 0 0\n" + line


def test_removal_takes_only_marked_lines():
    line = units.fstab_line(TMPFS, 0, 0)
    written = units.edit_fstab(USER_FSTAB, TMPFS.path, line, "/srv/m")
    assert units.edit_fstab(written, TMPFS.path, None, "/srv/m") == USER_FSTAB
    hand = "tmpfs /var/lib/vol\\040ume tmpfs size=1M 0 0\n"
    assert units.edit_fstab(hand, TMPFS.path, None, "/srv/m") == hand


def test_reading_the_line_back():
    line = units.fstab_line(TMPFS, 0, 0)
    found = units.fstab_tmpfs(line + "\n", TMPFS.path)
    assert found == {"line": line, "options": ["size=64M", "mode=0750", "uid=0", "gid=0"], "managed": True}
    assert units.fstab_tmpfs(USER_FSTAB, TMPFS.path) is None


def test_the_service_of_a_long_mount_point_is_still_a_file_name():
    path = "/srv/" + "m" * 200 + "/" + "n" * 100
    name = units.service_name(path)
    assert len(name.encode()) <= 255 and name.endswith(".service") and name.startswith("overlayfs-upper-")
    assert units.service_name(path) == name
