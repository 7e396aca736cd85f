# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Drift rows of overlay_mount (declared_drift) and overlay_mount_info (live_vs_persisted).

The live side is built from mountinfo lines as the kernel writes them, the
persisted side from the fstab lines and unit files the collection itself
writes (``_backend_fstab.fstab_line``/``_backend_systemd.unit_plan``), read back as the modules do.
"""

import dataclasses
import pytest

from ansible_collections.overlayfs.mounts.plugins.module_utils._persist.fstab_backend import fstab_line, persisted_entries
from ansible_collections.overlayfs.mounts.plugins.module_utils._persist.systemd_backend import unit_config, unit_plan
from ansible_collections.overlayfs.mounts.plugins.module_utils._persist.registry import persisted_kind
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.declaration import Declaration
from ansible_collections.overlayfs.mounts.plugins.module_utils._compare.drift import (
    against_config,
    against_live,
    declared_drift,
    live_vs_persisted,
)
from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.mountinfo import parse_line
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.overlay_options import defaults_from_parameters
from ansible_collections.overlayfs.mounts.plugins.module_utils._compare.live import live_state

DEFAULTS = defaults_from_parameters({})
# A distribution whose overlay module turns index and redirect_dir on by default.
INDEX_ON = defaults_from_parameters({"index": "Y", "redirect_dir": "Y"})

L1, L2, L3 = "/srv/l1", "/srv/l2", "/srv/l3"
DECL = {"path": "/srv/m", "lowerdir": [L1, L2], "upperdir": "/srv/u", "workdir": "/srv/w", "options": []}
RO_DECL = {"path": "/srv/ro", "lowerdir": [L1, L2], "upperdir": None, "workdir": None, "options": []}


def decl(**changes):
    fields = dict(DECL)
    fields.update(changes)
    return fields


def mountinfo(lowerdir=(L1, L2), upperdir="/srv/u", workdir="/srv/w", shown=("uuid=on",),
              form="lowerdir+", path="/srv/m"):
    """A mountinfo line for an overlay, in the form overlay_mount (lowerdir+) or mount(8) makes."""
    if form == "lowerdir+":
        layers = ["lowerdir+=" + p for p in lowerdir]
    else:
        layers = ["lowerdir=" + ":".join(lowerdir)]
    upper = ["upperdir=" + upperdir, "workdir=" + workdir] if upperdir else []
    vfs = "rw" if upperdir else "ro"
    return "412 22 0:50 / %s rw,relatime - overlay overlay %s" % (
        path, ",".join([vfs] + layers + upper + list(shown)))


def live(defaults=None, **kwargs):
    return live_state(parse_line(mountinfo(**kwargs)), defaults or DEFAULTS)


def persisted(fstab=(), unit=None, enabled=False, path="/srv/m"):
    """overlay_mount's ``persisted`` before the task: fstab lines given as text, unit text or None."""
    return {
        "fstab": persisted_entries("".join(line + "\n" for line in fstab), path),
        "systemd": unit_config(unit) if unit is not None else None,
        "unit_enabled": enabled,
    }


LINE = fstab_line(Declaration(**DECL)).text
UNIT = unit_plan(Declaration(**DECL))[0]
NOTHING = persisted()
IN_FSTAB = persisted([LINE])
AS_UNIT = persisted(unit=UNIT, enabled=True)


def drift(declared, state, persist, extras, boot, live_state_, persisted_, defaults):
    """declared_drift of a declaration given as a dict of fields, with its state."""
    return declared_drift(Declaration(**dict(declared, state=state)), persist, extras, boot, live_state_, persisted_,
                          defaults)


def row(field, declared, live_value, persisted_value):
    return {"field": field, "declared": declared, "live": live_value, "persisted": persisted_value}


# (id, declaration, state, persist, boot_options (extras), boot, live, persisted, expected rows)
DECLARED_CASES = [
    # ---- in sync: no false drift ------------------------------------------------------
    ("in sync, lowerdir+ form", DECL, "mounted", "fstab", [], True, live(), IN_FSTAB, []),
    ("in sync, legacy form", DECL, "mounted", "fstab", [], True, live(form="lowerdir"), IN_FSTAB, []),
    ("kernel-added uuid=on is no drift", DECL, "mounted", "fstab", [], True,
     live(shown=("uuid=on",)), IN_FSTAB, []),
    ("declared default index=off, never shown", decl(options=["index=off"]), "mounted", "fstab", [], True,
     live(shown=()), IN_FSTAB, []),
    ("declared default redirect_dir=follow, xino=off", decl(options=["redirect_dir=follow", "xino=off"]),
     "mounted", "fstab", [], True, live(shown=()), IN_FSTAB, []),
    ("read-only overlay shows redirect_dir=on", RO_DECL, "mounted", "fstab", [], True,
     live(path="/srv/ro", upperdir=None, shown=("redirect_dir=on",), form="lowerdir"),
     persisted([fstab_line(Declaration(**RO_DECL)).text], path="/srv/ro"), []),
    ("in sync as a unit", DECL, "mounted", "systemd", [], True, live(), AS_UNIT, []),
    ("boot=false: noauto in fstab", DECL, "mounted", "fstab", ["noauto"], False, live(),
     persisted([fstab_line(dataclasses.replace(Declaration(**DECL), boot_extras=["noauto"])).text]), []),
    ("boot=false: unit not linked", DECL, "mounted", "systemd", ["noauto"], False, live(),
     persisted(unit=unit_plan(dataclasses.replace(Declaration(**DECL), boot_extras=["noauto"]))[0], enabled=False), []),
    ("persist none ignores fstab", DECL, "mounted", "none", [], True, live(), NOTHING, []),

    # ---- mounted ------------------------------------------------------------------------
    ("not mounted, persisted", DECL, "mounted", "fstab", [], True, None, IN_FSTAB,
     [row("mounted", True, False, True)]),
    ("not mounted, not persisted", DECL, "mounted", "fstab", [], True, None, NOTHING,
     [row("mounted", True, False, False), row("persisted", "fstab", None, "none")]),

    # ---- layers -------------------------------------------------------------------------
    ("lowerdir: layer added on the host", DECL, "mounted", "fstab", [], True,
     live(lowerdir=(L1, L3, L2)), IN_FSTAB,
     [row("lowerdir", [L1, L2], [L1, L3, L2], [L1, L2])]),
    ("lowerdir: layer removed on the host", DECL, "mounted", "fstab", [], True,
     live(lowerdir=(L2,)), IN_FSTAB,
     [row("lowerdir", [L1, L2], [L2], [L1, L2])]),
    ("lowerdir: reordered on the host", DECL, "mounted", "fstab", [], True,
     live(lowerdir=(L2, L1), form="lowerdir"), IN_FSTAB,
     [row("lowerdir", [L1, L2], [L2, L1], [L1, L2])]),
    ("lowerdir: declaration grew, fstab and live are old", decl(lowerdir=[L3, L1, L2]), "mounted", "fstab",
     [], True, live(), IN_FSTAB,
     [row("lowerdir", [L3, L1, L2], [L1, L2], [L1, L2])]),
    ("lowerdir: only the fstab line was edited", DECL, "mounted", "fstab", [], True, live(),
     persisted([fstab_line(Declaration(**decl(lowerdir=[L2]))).text]),
     [row("lowerdir", [L1, L2], [L1, L2], [L2])]),
    ("lowerdir: only the unit differs", DECL, "mounted", "systemd", [], True, live(),
     persisted(unit=unit_plan(Declaration(**decl(lowerdir=[L1, L3])))[0], enabled=True),
     [row("lowerdir", [L1, L2], [L1, L2], [L1, L3])]),
    ("upperdir and workdir", DECL, "mounted", "fstab", [], True,
     live(upperdir="/srv/u2", workdir="/srv/w2"), IN_FSTAB,
     [row("upperdir", "/srv/u", "/srv/u2", "/srv/u"), row("workdir", "/srv/w", "/srv/w2", "/srv/w")]),
    ("workdir only in fstab", DECL, "mounted", "fstab", [], True, live(),
     persisted([fstab_line(Declaration(**decl(workdir="/srv/w9"))).text]),
     [row("workdir", "/srv/w", "/srv/w", "/srv/w9")]),
    ("live has no upper at all", DECL, "mounted", "fstab", [], True,
     live(upperdir=None, shown=("redirect_dir=on",)), IN_FSTAB,
     # Without an upper dir the kernel runs redirect_dir=on (params.c): a real difference.
     [row("upperdir", "/srv/u", None, "/srv/u"), row("workdir", "/srv/w", None, "/srv/w"),
      row("options.redirect_dir", "follow", "on", "follow")]),

    # ---- options ------------------------------------------------------------------------
    ("options.index live on", DECL, "mounted", "fstab", [], True,
     live(shown=("index=on", "uuid=on")), IN_FSTAB,
     [row("options.index", "off", "on", "off")]),
    ("options.index declared on, live default", decl(options=["index=on"]), "mounted", "fstab", [], True,
     live(), IN_FSTAB,
     [row("options.index", "on", "off", "off")]),
    ("options.uuid declared off, kernel says on", decl(options=["uuid=off"]), "mounted", "fstab", [], True,
     live(shown=("uuid=on",)), persisted([fstab_line(Declaration(**decl(options=["uuid=off"]))).text]),
     [row("options.uuid", "off", "on", "off")]),
    ("options.volatile flag", decl(options=["volatile"]), "mounted", "fstab", [], True, live(), IN_FSTAB,
     [row("options.volatile", True, False, False)]),
    ("options: only fstab differs", DECL, "mounted", "fstab", [], True, live(),
     persisted([fstab_line(Declaration(**decl(options=["redirect_dir=nofollow"]))).text]),
     [row("options.redirect_dir", "follow", "follow", "nofollow")]),
    ("options: metacopy=on implies redirect_dir=on", decl(options=["metacopy=on"]), "mounted", "fstab", [],
     True, live(shown=("redirect_dir=on", "metacopy=on", "uuid=on")),
     persisted([fstab_line(Declaration(**decl(options=["metacopy=on"]))).text]), []),

    # ---- persistence --------------------------------------------------------------------
    ("persisted missing", DECL, "mounted", "fstab", [], True, live(), NOTHING,
     [row("persisted", "fstab", None, "none")]),
    ("persisted as the other kind (unit, fstab declared)", DECL, "mounted", "fstab", [], True, live(),
     AS_UNIT, [row("persisted", "fstab", None, "systemd")]),
    ("persisted as the other kind (fstab, unit declared)", DECL, "mounted", "systemd", [], True, live(),
     IN_FSTAB, [row("persisted", "systemd", None, "fstab")]),
    ("persisted both ways", DECL, "mounted", "systemd", [], True, live(),
     persisted([LINE], unit=UNIT, enabled=True), [row("persisted", "systemd", None, "both")]),
    ("duplicate fstab lines", DECL, "mounted", "fstab", [], True, live(), persisted([LINE, LINE]),
     [row("persisted", "fstab (1 line)", None, "fstab (2 lines)")]),
    ("boot_options added in the declaration", DECL, "mounted", "fstab", ["nofail"], True, live(), IN_FSTAB,
     [row("boot_options", ["nofail"], None, [])]),
    ("boot_options removed from the declaration", DECL, "mounted", "systemd", [], True, live(),
     persisted(unit=unit_plan(dataclasses.replace(Declaration(**DECL), boot_extras=["nofail"]))[0], enabled=True),
     [row("boot_options", [], None, ["nofail"])]),
    ("boot_options in another order are the same", DECL, "mounted", "fstab", ["nofail", "_netdev"], True,
     live(), persisted([fstab_line(dataclasses.replace(Declaration(**DECL), boot_extras=["_netdev", "nofail"])).text]), []),
    ("boot=false in fstab means noauto", DECL, "mounted", "fstab", ["noauto"], False, live(), IN_FSTAB,
     [row("boot_options", ["noauto"], None, [])]),
    ("boot: unit not linked for boot", DECL, "mounted", "systemd", [], True, live(),
     persisted(unit=UNIT, enabled=False), [row("boot", True, None, False)]),
    ("boot: unit linked though boot=false", DECL, "mounted", "systemd", ["noauto"], False, live(),
     persisted(unit=UNIT, enabled=True), [row("boot", False, None, True)]),
    ("managed: a hand-written line", DECL, "mounted", "fstab", [], True, live(),
     persisted(["overlay /srv/m overlay lowerdir=/srv/l1:/srv/l2,upperdir=/srv/u,workdir=/srv/w 0 0"]),
     [row("managed", True, None, False), row("requires_mounts_for", [L1, L2, "/srv/u", "/srv/w"], None, [])]),
    ("requires_mounts_for: the line lacks one of its dirs", DECL, "mounted", "fstab", [], True, live(),
     persisted([LINE.replace("x-systemd.requires-mounts-for=/srv/u,", "")]),
     [row("requires_mounts_for", [L1, L2, "/srv/u", "/srv/w"], None, [L1, L2, "/srv/w"])]),
    ("requires_mounts_for: one more than needed is no drift", DECL, "mounted", "fstab", [], True, live(),
     persisted([LINE.replace(" 0 0", ",x-systemd.requires-mounts-for=/srv 0 0")]), []),
    ("noauto beside x-systemd.automount is no boot_options drift", DECL, "mounted", "fstab",
     ["x-systemd.automount"], True, live(),
     persisted([fstab_line(dataclasses.replace(Declaration(**DECL), boot_extras=["noauto", "x-systemd.automount"])).text]),
     []),

    # ---- present ------------------------------------------------------------------------
    ("present ignores what is live", DECL, "present", "fstab", [], True,
     live(lowerdir=(L2, L1)), IN_FSTAB, []),
    ("present, not mounted, in sync", DECL, "present", "fstab", [], True, None, IN_FSTAB, []),
    ("present, not persisted", DECL, "present", "fstab", [], True, None, NOTHING,
     [row("persisted", "fstab", None, "none")]),
    ("present, fstab line has other layers", DECL, "present", "fstab", [], True, None,
     persisted([fstab_line(Declaration(**decl(lowerdir=[L3]))).text]),
     [row("lowerdir", [L1, L2], None, [L3])]),
    ("present, unit has other options", DECL, "present", "systemd", [], True, live(),
     persisted(unit=unit_plan(Declaration(**decl(options=["index=on"])))[0], enabled=True),
     [row("options.index", "off", None, "on")]),

    # ---- unmounted ----------------------------------------------------------------------
    ("unmounted, in sync", DECL, "unmounted", "fstab", [], True, None, IN_FSTAB, []),
    ("unmounted but mounted", DECL, "unmounted", "fstab", [], True, live(lowerdir=(L3, L2)), IN_FSTAB,
     [row("mounted", False, True, True)]),
    ("unmounted but mounted, not persisted", DECL, "unmounted", "fstab", [], True, live(), NOTHING,
     [row("mounted", False, True, False)]),

    # ---- absent -------------------------------------------------------------------------
    ("absent, in sync", DECL, "absent", "fstab", [], True, None, NOTHING, []),
    ("absent but mounted and in fstab", DECL, "absent", "fstab", [], True, live(), IN_FSTAB,
     [row("mounted", False, True, True), row("persisted", "none", None, "fstab")]),
    ("absent, unit left behind, whatever persist says", DECL, "absent", "fstab", [], True, None, AS_UNIT,
     [row("persisted", "none", None, "systemd")]),
    ("absent, persisted both ways", DECL, "absent", "none", [], True, None,
     persisted([LINE], unit=UNIT), [row("persisted", "none", None, "both")]),
]


@pytest.mark.parametrize(
    "declared, state, persist, extras, boot, live_state_, persisted_, expected",
    [case[1:] for case in DECLARED_CASES], ids=[case[0] for case in DECLARED_CASES])
def test_drift(declared, state, persist, extras, boot, live_state_, persisted_, expected):
    assert drift(declared, state, persist, extras, boot, live_state_, persisted_, DEFAULTS) == expected


@pytest.mark.parametrize("declared, shown, expected", [
    # The module defaults of this host turn index and redirect_dir on: the kernel hides both.
    (DECL, (), []),
    (decl(options=["index=on", "redirect_dir=on"]), (), []),
    (decl(options=["index=off"]), ("index=off",), []),
    (decl(options=["index=off"]), (), [row("options.index", "off", "on", None)]),
])
def test_declared_drift_against_other_module_defaults(declared, shown, expected):
    state = live(defaults=INDEX_ON, shown=shown)
    assert drift(declared, "mounted", "none", [], True, state, NOTHING, INDEX_ON) == expected


def test_rows_come_in_field_order():
    rows = drift(
        decl(options=["index=on", "volatile"]), "mounted", "fstab", ["nofail"], True,
        live(lowerdir=(L2,), upperdir="/srv/u2", workdir="/srv/w2", shown=("metacopy=on", "redirect_dir=on")),
        persisted([LINE, LINE]), DEFAULTS)
    assert [r["field"] for r in rows] == [
        "lowerdir", "upperdir", "workdir", "options.redirect_dir", "options.index", "options.metacopy",
        "options.volatile", "persisted", "boot_options"]


def test_an_invalid_persisted_option_is_reported_whole():
    hand = "overlay /srv/m overlay lowerdir=/srv/l1:/srv/l2,upperdir=/srv/u,workdir=/srv/w,index=maybe," \
           "x-overlayfs.managed 0 0"
    rows = drift(DECL, "present", "fstab", [], True, None, persisted([hand]), DEFAULTS)
    assert rows == [row("options", [], None, ["index=maybe"]),
                    row("requires_mounts_for", [L1, L2, "/srv/u", "/srv/w"], None, [])]


def test_a_data_only_layer_on_the_host_is_drift():
    line = "412 22 0:50 / /srv/m rw,relatime - overlay overlay rw,lowerdir+=/srv/l1,lowerdir+=/srv/l2," \
           "datadir+=/srv/data,upperdir=/srv/u,workdir=/srv/w,metacopy=on,redirect_dir=on"
    state = live_state(parse_line(line), DEFAULTS)
    fields = [r["field"] for r in drift(DECL, "mounted", "none", [], True, state, NOTHING, DEFAULTS)]
    assert fields == ["datadir", "options.redirect_dir", "options.metacopy"]


@pytest.mark.parametrize("value, kind", [
    ({"fstab": [], "systemd": None}, "none"),
    ({"fstab": [{}], "systemd": None}, "fstab"),
    ({"fstab": None, "systemd": {"path": "/m"}}, "systemd"),
    ({"fstab": [{}, {}], "systemd": {"path": "/m"}}, "both"),
    ({}, "none"),
])
def test_persisted_kind(value, kind):
    assert persisted_kind(value) == kind


def test_against_live_and_against_config_agree_on_a_converged_overlay():
    assert against_live(DECL, live(), DEFAULTS) == {}
    conf = persisted_entries(LINE + "\n", "/srv/m")[0]
    assert against_config(DECL, conf, DEFAULTS) == {}
    assert against_config(DECL, unit_config(UNIT), DEFAULTS) == {}


# ---- overlay_mount_info: live versus persisted ------------------------------------------

FSTAB_CONF = persisted_entries(LINE + "\n", "/srv/m")[0]
UNIT_CONF = unit_config(UNIT)


def info_row(field, live_value, persisted_value, source):
    return {"field": field, "declared": None, "live": live_value, "persisted": persisted_value, "source": source}


INFO_CASES = [
    ("in sync with fstab", live(), {"fstab": FSTAB_CONF, "systemd": None}, []),
    ("in sync with both", live(form="lowerdir"), {"fstab": FSTAB_CONF, "systemd": UNIT_CONF}, []),
    ("not persisted at all", live(), {"fstab": None, "systemd": None}, []),
    ("persisted, not mounted", None, {"fstab": FSTAB_CONF, "systemd": None},
     [info_row("mounted", False, True, "fstab")]),
    ("persisted both ways, not mounted", None, {"fstab": FSTAB_CONF, "systemd": UNIT_CONF},
     [info_row("mounted", False, True, "fstab"), info_row("mounted", False, True, "systemd")]),
    ("noauto line, not mounted: no drift", None,
     {"fstab": persisted_entries(fstab_line(dataclasses.replace(Declaration(**DECL), boot_extras=["noauto"])).text + "\n", "/srv/m")[0], "systemd": None}, []),
    ("layers reordered", live(lowerdir=(L2, L1)), {"fstab": FSTAB_CONF, "systemd": None},
     [info_row("lowerdir", [L2, L1], [L1, L2], "fstab")]),
    ("unit has another upper", live(), {"fstab": None, "systemd": unit_config(unit_plan(Declaration(**decl(upperdir="/srv/u9", workdir="/srv/w9")))[0])},
     [info_row("upperdir", "/srv/u", "/srv/u9", "systemd"), info_row("workdir", "/srv/w", "/srv/w9", "systemd")]),
    ("options differ from one source only", live(shown=("index=on", "uuid=on")),
     {"fstab": FSTAB_CONF, "systemd": unit_config(unit_plan(Declaration(**decl(options=["index=on"])))[0])},
     [info_row("options.index", "on", "off", "fstab")]),
]


@pytest.mark.parametrize("live_state_, persisted_, expected",
                         [case[1:] for case in INFO_CASES], ids=[case[0] for case in INFO_CASES])
def test_live_vs_persisted(live_state_, persisted_, expected):
    assert live_vs_persisted(live_state_, persisted_, DEFAULTS) == expected


CURRENT, V1, V2 = "/srv/current", "/srv/rel/v1", "/srv/rel/v2"


def _symlinked(target):
    """The declaration lowerdir [/srv/current, /srv/l2] with the link pointing at ``target`` now."""
    return Declaration(**decl(lowerdir=[CURRENT, L2])).canonical(lambda p: target if p == CURRENT else p)


def test_a_symlinked_layer_shows_both_spellings_and_the_persisted_one_matches():
    declared = _symlinked(V2)
    persisted_ = persisted([fstab_line(declared).text])
    rows = declared_drift(declared, "fstab", [], True, live(lowerdir=(V1, L2)), persisted_, DEFAULTS)
    assert rows == [dict(row("lowerdir", [V2, L2], [V1, L2], [CURRENT, L2]), declared_as=[CURRENT, L2])]


def test_a_symlinked_layer_in_sync_has_no_drift():
    declared = _symlinked(V1)
    persisted_ = persisted([fstab_line(declared).text])
    assert declared_drift(declared, "fstab", [], True, live(lowerdir=(V1, L2)), persisted_, DEFAULTS) == []


def test_persisted_paths_compare_as_paths():
    respelled = persisted([LINE.replace("lowerdir=/srv/l1:/srv/l2,", "lowerdir=/srv/l1/:/srv//./l2,")])
    assert respelled["fstab"][0]["lowerdir"] == ["/srv/l1/", "/srv//./l2"]
    assert declared_drift(Declaration(**DECL), "fstab", [], True, live(), respelled, DEFAULTS) == []
    assert against_config(DECL, respelled["fstab"][0], DEFAULTS) == {}
    assert live_vs_persisted(live(), {"fstab": respelled["fstab"][0]}, DEFAULTS) == []


def test_info_compares_a_persisted_link_by_where_it_leads_now():
    conf = persisted([fstab_line(_symlinked(V2)).text])["fstab"][0]
    assert live_vs_persisted(live(lowerdir=(CURRENT, L2)), {"fstab": conf}, DEFAULTS) == []  # as shown, unresolved
    rows = live_vs_persisted(live(lowerdir=(V1, L2)), {"fstab": conf}, DEFAULTS,
                             resolve=lambda p: V2 if p == CURRENT else p)
    assert [(r["field"], r["live"], r["persisted"]) for r in rows] == [("lowerdir", [V1, L2], [CURRENT, L2])]


def _flagged_live(mount_options):
    line = mountinfo().replace(" rw,relatime - ", " %s - " % mount_options)
    return live_state(parse_line(line), DEFAULTS)


def test_a_flag_changed_by_hand_is_drift_against_the_declaration_and_what_is_persisted():
    flagged = decl(flags=["nosuid"])
    persisted_ = persisted([fstab_line(Declaration(**flagged)).text])
    assert drift(flagged, "mounted", "fstab", [], True, _flagged_live("rw,relatime"), persisted_, DEFAULTS) == [
        row("flags.suid", "nosuid", "suid", "nosuid")]
    assert live_vs_persisted(_flagged_live("rw,relatime"), {"fstab": persisted_["fstab"][0]}, DEFAULTS) == [
        {"field": "flags.suid", "declared": None, "live": "suid", "persisted": "nosuid", "source": "fstab"}]
    assert drift(flagged, "mounted", "fstab", [], True, _flagged_live("rw,nosuid,relatime"), persisted_, DEFAULTS) == []


def test_flags_persisted_otherwise_are_drift():
    assert drift(decl(flags=["noexec"]), "present", "fstab", [], True, None, IN_FSTAB, DEFAULTS) == [
        row("flags.exec", "noexec", None, "exec")]
