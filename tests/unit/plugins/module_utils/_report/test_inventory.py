# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""overlay_mount_info's inventory over a container host's mountinfo, fstab and units."""

import dataclasses
import json
import pytest

from ansible_collections.overlayfs.mounts.plugins.module_utils._persist.fstab_backend import FstabBackend, fstab_line
from ansible_collections.overlayfs.mounts.plugins.module_utils._persist.systemd_backend import SystemdBackend, unit_plan
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.declaration import Declaration
from ansible_collections.overlayfs.mounts.plugins.module_utils._report.inventory import gather as gather_persisted
from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.mountinfo import parse
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.overlay_options import defaults_from_parameters

DEFAULTS = defaults_from_parameters({})
DOCKER_ROOT = "/var/lib/docker/overlay2"
DOCKER_ID = "3f1e9c4b7a2d"
CONTEXT = 'context="system_u:object_r:container_file_t:s0:c88,c409"'

# What dockerd (overlay2, SELinux enabled) leaves in mountinfo: it chdirs to
# its storage root and passes its short l/ links as relative lower paths.
DOCKER = (
    "1602 29 0:412 / {root}/{id}/merged rw,relatime shared:801 - overlay overlay "
    "rw,{context},lowerdir=l/6QXGFKGV5GQH7CMU2P5UT6I4:l/XB2O3UFG7FMXIGLSLIAV6MH2ZK:l/JQ2ZK7UDL4B5AQ,"
    "upperdir={root}/{id}/diff,workdir={root}/{id}/work,uuid=on"
).format(root=DOCKER_ROOT, id=DOCKER_ID, context=CONTEXT)
# What overlay_mount leaves: one lowerdir+ per layer (new mount API), a space in paths.
PLUS = (
    "1700 29 0:500 / /srv/app\\040data/merged rw,relatime shared:900 - overlay overlay "
    "rw,lowerdir+=/srv/layers/app\\040v2,lowerdir+=/srv/layers/base,"
    "upperdir=/srv/state/app\\040data/upper,workdir=/srv/state/app\\040data/work,uuid=on"
)
# Two overlays stacked on one mount point: the second one is the visible one.
STACK_LOW = "1710 29 0:510 / /srv/stack rw,relatime - overlay overlay ro,lowerdir=/srv/s1:/srv/s2,redirect_dir=on"
STACK_TOP = ("1711 1710 0:511 / /srv/stack rw,relatime - overlay overlay "
             "ro,lowerdir=/srv/s3:/srv/stack,redirect_dir=on")
MOUNTINFO = "\n".join([
    "22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,errors=remount-ro",
    "29 22 254:1 / /var/lib/docker rw,relatime shared:2 - xfs /dev/vdb rw,seclabel",
    "31 22 0:27 / /run rw,nosuid,nodev shared:12 - tmpfs tmpfs rw,size=1024k,mode=755",
    DOCKER, PLUS, STACK_LOW, STACK_TOP,
]) + "\n"


PERSISTED_BOTH = {"field": "persisted", "declared": None, "live": None, "persisted": "both", "source": None}


def fstab_overlays(text):
    return FstabBackend.configs_in([("/etc/fstab", text)])


def unit_overlays(units):
    return SystemdBackend.configs_in(units)


def gather(entries, defaults, fstab_text, units, **kwargs):
    """gather() over an fstab text and unit files, read as overlay_mount_info reads them."""
    persisted = {"fstab": fstab_overlays(fstab_text), "systemd": unit_overlays(units)}
    return gather_persisted(entries, defaults, persisted, **kwargs)


APP = {
    "path": "/srv/app data/merged", "lowerdir": ["/srv/layers/app v2", "/srv/layers/base"],
    "upperdir": "/srv/state/app data/upper", "workdir": "/srv/state/app data/work", "options": [],
}
STACK = {"path": "/srv/stack", "lowerdir": ["/srv/s3", "/srv/stack"], "upperdir": None, "workdir": None,
         "options": []}
CACHE = {"path": "/srv/cache", "lowerdir": ["/srv/c1", "/srv/c2"], "upperdir": "/srv/cu", "workdir": "/srv/cw",
         "options": ["index=off", "volatile"]}
USER_FSTAB = "\n".join([
    "# /etc/fstab: static file system information.",
    "UUID=4b1c /  ext4  errors=remount-ro  0 1",
    fstab_line(dataclasses.replace(Declaration(**APP), boot_extras=["nofail"])).text,
    "# a hand-written overlay, not ours",
    "overlay /srv/hand overlay lowerdir=/srv/h1:/srv/h2,noauto 0 0",
    fstab_line(Declaration(**CACHE)).text,
]) + "\n"
UNITS = [
    ("/etc/systemd/system/srv-stack.mount", unit_plan(Declaration(**STACK))[0]),
    ("/etc/systemd/system/srv-app\\x20data-merged.mount", unit_plan(Declaration(**APP))[0]),
    ("/etc/systemd/system/home.mount", "[Mount]\nWhat=/dev/vdc\nWhere=/home\nType=ext4\n"),
]

# The short links exist below the storage root; resolve_layers follows them.
LINKS = {
    DOCKER_ROOT + "/l/6QXGFKGV5GQH7CMU2P5UT6I4": DOCKER_ROOT + "/aa11/diff",
    DOCKER_ROOT + "/l/XB2O3UFG7FMXIGLSLIAV6MH2ZK": DOCKER_ROOT + "/bb22/diff",
    DOCKER_ROOT + "/l/JQ2ZK7UDL4B5AQ": DOCKER_ROOT + "/cc33/diff",
}


def exists(path):
    return path in LINKS or path == "/var/lib/docker/image/overlay2"  # Docker's own mark beside its storage root


def realpath(path):
    return LINKS.get(path, path)


def by_path(records):
    return {r["path"]: r for r in records}


def test_every_overlay_live_or_persisted_once_sorted():
    records = gather(parse(MOUNTINFO), DEFAULTS, USER_FSTAB, UNITS, exists=exists)
    assert [r["path"] for r in records] == [
        "/srv/app data/merged", "/srv/cache", "/srv/hand", "/srv/stack",
        DOCKER_ROOT + "/" + DOCKER_ID + "/merged"]


def test_docker_line_short_links_resolved_against_the_storage_root():
    record = by_path(gather(parse(MOUNTINFO), DEFAULTS, "", [], exists=exists))[
        DOCKER_ROOT + "/" + DOCKER_ID + "/merged"]
    assert record["lowerdir"] == [
        DOCKER_ROOT + "/l/6QXGFKGV5GQH7CMU2P5UT6I4",
        DOCKER_ROOT + "/l/XB2O3UFG7FMXIGLSLIAV6MH2ZK",
        DOCKER_ROOT + "/l/JQ2ZK7UDL4B5AQ",
    ]
    assert record["upperdir"] == DOCKER_ROOT + "/" + DOCKER_ID + "/diff"
    assert record["workdir"] == DOCKER_ROOT + "/" + DOCKER_ID + "/work"
    # Options differing from the module defaults (uuid=on is the kernel's choice
    # for a fresh upper dir); the SELinux context is no overlay option.
    assert record["options"] == ["uuid=on"]
    assert record["live"]["other_options"] == [CONTEXT]
    assert record["live"]["shown_options"] == [CONTEXT, "uuid=on"]
    assert record["live"]["form"] == "lowerdir"
    assert (record["mounted"], record["persisted"], record["managed"]) == (True, "none", False)
    assert (record["source"], record["mount_id"], record["stacked"]) == ("overlay", 1602, 1)
    assert record["drift"] == [] and record["fstab"] == [] and record["systemd"] is None


def test_docker_short_links_resolve_to_real_layers_when_asked():
    record = by_path(gather(parse(MOUNTINFO), DEFAULTS, "", [], exists=exists, realpath=realpath))[
        DOCKER_ROOT + "/" + DOCKER_ID + "/merged"]
    assert record["lowerdir"] == [DOCKER_ROOT + "/aa11/diff", DOCKER_ROOT + "/bb22/diff",
                                  DOCKER_ROOT + "/cc33/diff"]


def test_relative_layers_stay_relative_without_exists():
    record = by_path(gather(parse(MOUNTINFO), DEFAULTS, "", []))[DOCKER_ROOT + "/" + DOCKER_ID + "/merged"]
    assert record["lowerdir"] == [
        "l/6QXGFKGV5GQH7CMU2P5UT6I4", "l/XB2O3UFG7FMXIGLSLIAV6MH2ZK", "l/JQ2ZK7UDL4B5AQ"]


def test_every_relative_layer_is_taken_from_the_one_working_directory():
    # The mounting process had one working directory: once the first layer is
    # found below the storage root, every other layer is relative to it too.
    first_only = {DOCKER_ROOT + "/l/6QXGFKGV5GQH7CMU2P5UT6I4"}
    record = by_path(gather(parse(MOUNTINFO), DEFAULTS, "", [], exists=first_only.__contains__))[
        DOCKER_ROOT + "/" + DOCKER_ID + "/merged"]
    assert record["lowerdir"] == [DOCKER_ROOT + "/l/6QXGFKGV5GQH7CMU2P5UT6I4",
                                  DOCKER_ROOT + "/l/XB2O3UFG7FMXIGLSLIAV6MH2ZK",
                                  DOCKER_ROOT + "/l/JQ2ZK7UDL4B5AQ"]


def test_relative_layers_found_nowhere_are_shown_as_the_kernel_shows_them():
    record = by_path(gather(parse(MOUNTINFO), DEFAULTS, "", [], exists=lambda path: False))[
        DOCKER_ROOT + "/" + DOCKER_ID + "/merged"]
    assert record["lowerdir"] == [
        "l/6QXGFKGV5GQH7CMU2P5UT6I4", "l/XB2O3UFG7FMXIGLSLIAV6MH2ZK", "l/JQ2ZK7UDL4B5AQ"]


def test_lowerdir_plus_line_with_escaped_spaces_in_sync_with_fstab_and_unit():
    record = by_path(gather(parse(MOUNTINFO), DEFAULTS, USER_FSTAB, UNITS))["/srv/app data/merged"]
    assert record["lowerdir"] == ["/srv/layers/app v2", "/srv/layers/base"]
    assert record["upperdir"] == "/srv/state/app data/upper"
    assert record["workdir"] == "/srv/state/app data/work"
    assert record["live"]["form"] == "lowerdir+"
    assert (record["persisted"], record["managed"], record["mounted"]) == ("both", True, True)
    assert record["fstab"][0]["boot_options"] == ["nofail"]
    assert record["systemd"]["unit"] == "/etc/systemd/system/srv-app\\x20data-merged.mount"
    # Persisted twice: at boot both the line and the unit would mount it.
    assert record["drift"] == [PERSISTED_BOTH]


def test_stacked_overlays_report_the_visible_one_and_the_count():
    record = by_path(gather(parse(MOUNTINFO), DEFAULTS, USER_FSTAB, UNITS))["/srv/stack"]
    assert record["stacked"] == 2
    assert record["mount_id"] == 1711
    assert record["lowerdir"] == ["/srv/s3", "/srv/stack"]
    assert record["options"] == ["redirect_dir=on"]  # what a read-only overlay always runs
    assert (record["persisted"], record["managed"]) == ("systemd", True)
    assert record["drift"] == []


def test_persisted_only_overlays():
    records = by_path(gather(parse(MOUNTINFO), DEFAULTS, USER_FSTAB, UNITS))
    cache = records["/srv/cache"]
    assert (cache["mounted"], cache["persisted"], cache["managed"]) == (False, "fstab", True)
    assert cache["lowerdir"] == ["/srv/c1", "/srv/c2"]
    assert cache["upperdir"] == "/srv/cu" and cache["workdir"] == "/srv/cw"
    assert "volatile" in cache["options"]
    assert (cache["source"], cache["mount_id"], cache["stacked"], cache["live"]) == (None, None, 0, None)
    assert cache["drift"] == [
        {"field": "mounted", "declared": None, "live": False, "persisted": True, "source": "fstab"}]
    hand = records["/srv/hand"]
    assert (hand["mounted"], hand["persisted"], hand["managed"]) == (False, "fstab", False)
    assert hand["fstab"][0]["boot_options"] == ["noauto"]
    assert hand["drift"] == []  # noauto: not being mounted is what it asks for


def test_live_and_persisted_disagree():
    moved = MOUNTINFO.replace("lowerdir+=/srv/layers/app\\040v2,lowerdir+=/srv/layers/base",
                              "lowerdir+=/srv/layers/base,lowerdir+=/srv/layers/app\\040v2")
    record = by_path(gather(parse(moved), DEFAULTS, USER_FSTAB, UNITS))["/srv/app data/merged"]
    layers = ["/srv/layers/app v2", "/srv/layers/base"]
    assert record["lowerdir"] == layers[::-1]
    assert record["drift"] == [
        {"field": "lowerdir", "declared": None, "live": layers[::-1], "persisted": layers, "source": "fstab"},
        {"field": "lowerdir", "declared": None, "live": layers[::-1], "persisted": layers, "source": "systemd"},
        PERSISTED_BOTH,
    ]


def test_duplicate_fstab_lines_are_drift():
    text = USER_FSTAB + fstab_line(Declaration(**CACHE)).text + "\n"
    record = by_path(gather(parse(MOUNTINFO), DEFAULTS, text, []))["/srv/cache"]
    assert len(record["fstab"]) == 2
    assert record["drift"][-1] == {"field": "persisted", "declared": None, "live": None,
                                   "persisted": "fstab (2 lines)", "source": "fstab"}


@pytest.mark.parametrize("paths, expected", [
    (None, 5),
    ([], 5),
    (["/srv/stack"], ["/srv/stack"]),
    (["/srv/stack/", "/srv/app data/merged"], ["/srv/app data/merged", "/srv/stack"]),
    (["/srv/cache", "/nowhere"], ["/srv/cache"]),
    (["/nowhere"], []),
])
def test_paths_filter(paths, expected):
    records = gather(parse(MOUNTINFO), DEFAULTS, USER_FSTAB, UNITS, paths=paths)
    if isinstance(expected, int):
        assert len(records) == expected
    else:
        assert [r["path"] for r in records] == expected


def test_nothing_at_all():
    assert gather([], DEFAULTS, None, []) == []


def test_fstab_overlays_ignore_other_filesystems_and_comments():
    found = fstab_overlays(USER_FSTAB)
    assert sorted(found) == ["/srv/app data/merged", "/srv/cache", "/srv/hand"]
    assert [c["managed"] for c in found["/srv/app data/merged"]] == [True]
    assert fstab_overlays(None) == {} and fstab_overlays("") == {}


def test_unit_overlays_keep_only_overlay_units():
    found = unit_overlays(UNITS)
    assert sorted(found) == ["/srv/app data/merged", "/srv/stack"]
    assert [c["unit"] for c in found["/srv/stack"]] == ["/etc/systemd/system/srv-stack.mount"]
    assert found["/srv/stack"][0]["managed"] is True


def test_a_hand_written_unit_is_not_managed():
    text = "[Mount]\nWhat=overlay\nWhere=/srv/u/\nType=overlay\nOptions=lowerdir=/a:/b\n"
    found = unit_overlays([("/etc/systemd/system/srv-u.mount", text)])
    assert list(found) == ["/srv/u"] and found["/srv/u"][0]["managed"] is False


def test_two_thousand_container_mounts():
    lines = [DOCKER.replace("1602", str(3000 + i)).replace(DOCKER_ID, "c%04d" % i) for i in range(2000)]
    records = gather(parse("\n".join(lines)), DEFAULTS, USER_FSTAB, UNITS, exists=exists)
    assert len(records) == 2000 + 4
    assert records[-1]["path"] == DOCKER_ROOT + "/c1999/merged"


def test_engine_of_each_overlay():
    records = by_path(gather(parse(MOUNTINFO), DEFAULTS, USER_FSTAB, UNITS, exists=exists))
    # Laid out as Docker's overlay2, with Docker's image/overlay2 beside the storage root.
    assert records[DOCKER_ROOT + "/" + DOCKER_ID + "/merged"]["engine"] == "docker"
    # Persisted by this collection (a managed fstab line and unit).
    assert records["/srv/app data/merged"]["engine"] == "overlayfs.mounts"
    assert records["/srv/stack"]["engine"] == "overlayfs.mounts"
    # A hand-written fstab line, not mounted: no owner known.
    assert records["/srv/hand"]["engine"] == "none"
    assert [records[p]["resolved"] for p in sorted(records)] == [
        None if not records[p]["mounted"] else True for p in sorted(records)]


# Mounted by hand on directories whose names are not UTF-8 (the kernel shows those bytes raw)
# and hold a backslash (shown as \134), over a layer with a byte that is not UTF-8 either.
ODD_MOUNTINFO = (
    b"22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
    b"80 22 0:90 / /srv/bad\xff\xfe rw,relatime - overlay overlay rw,lowerdir=/srv/l\xe9:/srv/l2,"
    b"upperdir=/srv/u,workdir=/srv/w\n"
    b"81 22 0:91 / /srv/a\\134101 rw,relatime - overlay overlay ro,lowerdir=/srv/l1:/srv/l2\n"
).decode("utf-8", "surrogateescape")


def test_paths_that_are_not_utf8_are_returned_escaped_and_json_safe():
    records = by_path(gather(parse(ODD_MOUNTINFO), DEFAULTS, "", []))
    assert sorted(records) == ["/srv/a\\134101", "/srv/bad\\377\\376"]
    bad = records["/srv/bad\\377\\376"]
    assert bad["lowerdir"] == ["/srv/l\\351", "/srv/l2"]
    assert bad["live"]["path"] == "/srv/bad\\377\\376" and bad["live"]["lowerdir"] == bad["lowerdir"]
    assert (bad["mounted"], bad["engine"], bad["drift"], bad["aliases"]) == (True, "none", [], [])
    # A literal backslash before three octal digits: escaped, so that \NNN always means one byte.
    assert records["/srv/a\\134101"]["lowerdir"] == ["/srv/l1", "/srv/l2"]
    # Strict UTF-8 JSON, as ansible-core decodes a module's result.
    json.dumps(list(records.values()), ensure_ascii=False).encode("utf-8")


@pytest.mark.parametrize("given, found", [
    (["/srv/bad\\377\\376"], ["/srv/bad\\377\\376"]),
    (["/srv/bad\\377\\376/"], ["/srv/bad\\377\\376"]),
    (["/srv/a\\134101"], ["/srv/a\\134101"]),
    # Unescaped, \101 is the byte "A": another path.
    (["/srv/a\\101"], []),
])
def test_the_paths_filter_takes_paths_as_results_show_them(given, found):
    assert [r["path"] for r in gather(parse(ODD_MOUNTINFO), DEFAULTS, "", [], paths=given)] == found


# /srv/link -> /data/real: an overlay declared (and persisted) as /srv/link/m is mounted at /data/real/m.
LINKED_MOUNTINFO = MOUNTINFO + (
    "90 22 0:95 / /data/real/m rw,relatime - overlay overlay rw,lowerdir+=/srv/l1,lowerdir+=/srv/l2,"
    "upperdir=/srv/lu,workdir=/srv/lw\n")
LINKED = {"path": "/srv/link/m", "lowerdir": ["/srv/l1", "/srv/l2"], "upperdir": "/srv/lu", "workdir": "/srv/lw",
          "options": []}


def canonical(path):
    return "/data/real" + path[len("/srv/link"):] if path == "/srv/link" or path.startswith("/srv/link/") else path


def test_a_mount_point_spelled_through_a_symlink_is_one_entry():
    fstab = USER_FSTAB + fstab_line(Declaration(**LINKED)).text + "\n"
    records = gather(parse(LINKED_MOUNTINFO), DEFAULTS, fstab, UNITS, canonical=canonical)
    linked = [r for r in records if r["path"] in ("/srv/link/m", "/data/real/m")]
    assert [r["path"] for r in linked] == ["/data/real/m"]
    record = linked[0]
    assert record["aliases"] == ["/srv/link/m"]
    assert (record["mounted"], record["persisted"], record["managed"], record["engine"]) == (
        True, "fstab", True, "overlayfs.mounts")
    assert record["fstab"][0]["path"] == "/srv/link/m"
    assert record["drift"] == []
    # Without canonical (as before): the fstab line and the live mount are two entries, both drifted.
    apart = by_path(gather(parse(LINKED_MOUNTINFO), DEFAULTS, fstab, UNITS))
    assert apart["/srv/link/m"]["drift"][0]["field"] == "mounted"
    assert apart["/data/real/m"]["persisted"] == "none"


def test_the_paths_filter_compares_where_paths_lead():
    fstab = USER_FSTAB + fstab_line(Declaration(**LINKED)).text + "\n"
    for given in (["/srv/link/m"], ["/data/real/m"], ["/srv/link/./m/"]):
        records = gather(parse(LINKED_MOUNTINFO), DEFAULTS, fstab, UNITS, paths=given, canonical=canonical)
        assert [(r["path"], r["aliases"]) for r in records] == [("/data/real/m", ["/srv/link/m"])], given
    # Given through the link, with nothing persisted: the given spelling is the alias.
    records = gather(parse(LINKED_MOUNTINFO), DEFAULTS, "", [], paths=["/srv/link/m"], canonical=canonical)
    assert [(r["path"], r["aliases"], r["persisted"]) for r in records] == [("/data/real/m", ["/srv/link/m"], "none")]


def test_two_fstab_lines_for_one_mount_point_under_two_spellings_are_persisted_drift():
    linked = Declaration(**LINKED)
    fstab = fstab_line(linked).text + "\n" + fstab_line(dataclasses.replace(linked, path="/data/real/m")).text + "\n"
    [record] = gather(parse(LINKED_MOUNTINFO), DEFAULTS, fstab, [], paths=["/data/real/m"], canonical=canonical)
    assert len(record["fstab"]) == 2
    assert [row["field"] for row in record["drift"]] == ["persisted"]


def test_an_overlay_persisted_both_ways_is_drift_mounted_or_not():
    stack = fstab_line(Declaration(**STACK)).text + "\n"
    record = by_path(gather(parse(MOUNTINFO), DEFAULTS, USER_FSTAB + stack, UNITS))["/srv/stack"]
    assert (record["persisted"], record["mounted"]) == ("both", True)
    assert record["drift"] == [PERSISTED_BOTH]
    cache_unit = ("/etc/systemd/system/srv-cache.mount", unit_plan(Declaration(**CACHE))[0])
    cache = by_path(gather(parse(MOUNTINFO), DEFAULTS, USER_FSTAB, UNITS + [cache_unit]))["/srv/cache"]
    assert [(r["field"], r["source"]) for r in cache["drift"]] == [
        ("mounted", "fstab"), ("mounted", "systemd"), ("persisted", None)]
    assert cache["drift"][-1] == PERSISTED_BOTH


def test_boot_is_any_target_for_a_unit_and_no_noauto_for_a_line():
    from ansible_collections.overlayfs.mounts.plugins.module_utils._report.inventory import boots
    assert boots([{"boot_options": [], "unit_targets": ["multi-user.target"]}])
    assert not boots([{"boot_options": [], "unit_targets": []}])
    assert boots([{"boot_options": ["nofail"]}])
    assert not boots([{"boot_options": ["noauto"]}])
    assert boots([{"boot_options": ["noauto", "x-systemd.automount"]}])
    assert not boots([])
