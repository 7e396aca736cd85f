# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backend registry: drift, inventory and pruning handle any registered backend."""

import pytest

from ansible_collections.overlayfs.mounts.plugins.module_utils._persist import registry as _backends
from ansible_collections.overlayfs.mounts.plugins.module_utils._persist.backend import Backend
from ansible_collections.overlayfs.mounts.plugins.module_utils._persist.fstab_backend import FstabBackend, fstab_line
from ansible_collections.overlayfs.mounts.plugins.module_utils._converge.order import prune_targets
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.declaration import Declaration
from ansible_collections.overlayfs.mounts.plugins.module_utils._compare.drift import declared_drift
from ansible_collections.overlayfs.mounts.plugins.module_utils._report.inventory import gather
from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.mountinfo import parse
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.overlay_options import defaults_from_parameters

DEFAULTS = defaults_from_parameters({})
DECL = Declaration("/srv/m", ["/srv/l1", "/srv/l2"], "/srv/u", "/srv/w")
LIVE = "412 22 0:50 / /srv/m rw,relatime - overlay overlay rw,lowerdir=/srv/l2:/srv/l1,upperdir=/srv/u,workdir=/srv/w"


class TableBackend(Backend):
    """A made-up backend: one ``<mount point> <lower>:<lower> <upper> <work> [managed]`` line per overlay."""

    name = "table"
    location = "table_file"

    @classmethod
    def configs_in(cls, sources, readlink=None):
        found = {}
        for _file, text in sources:
            for line in (text or "").splitlines():
                path, lowers, upper, work = line.split()[:4]
                found.setdefault(path, []).append({
                    "path": path, "lowerdir": lowers.split(":"), "datadir": [], "upperdir": upper,
                    "workdir": work, "options": [], "boot_options": [], "managed": line.endswith(" managed")})
        return found

    @classmethod
    def boot_drift(cls, conf, persisted, extras, boot):
        return [] if conf["managed"] else [("managed", True, False)]


@pytest.fixture
def with_table(monkeypatch):
    monkeypatch.setattr(_backends, "BACKENDS", _backends.BACKENDS + (TableBackend,))
    monkeypatch.setattr(_backends, "BY_NAME", dict(_backends.BY_NAME, table=TableBackend))


def test_the_registered_backends():
    assert [b.name for b in _backends.BACKENDS] == ["fstab", "systemd"]
    assert all(issubclass(b, Backend) and b.location for b in _backends.BACKENDS)


@pytest.mark.parametrize("persisted, kind", [
    ({}, "none"),
    ({"fstab": [], "systemd": None}, "none"),
    ({"fstab": [{}]}, "fstab"),
    ({"systemd": {}}, "systemd"),
    ({"fstab": [{}], "systemd": {}}, "both"),
])
def test_persisted_kind(persisted, kind):
    assert _backends.persisted_kind(persisted) == kind


def test_a_new_backend_shows_in_the_inventory_with_its_drift(with_table):
    table = TableBackend.configs_in([("t", "/srv/m /srv/l1:/srv/l2 /srv/u /srv/w managed")])
    fstab = FstabBackend.configs_in([("f", fstab_line(DECL).text)])
    [record] = gather(parse(LIVE), DEFAULTS, {"table": table, "fstab": fstab})
    assert record["table"] == table["/srv/m"][0] and record["persisted"] == "both"
    assert record["managed"] is True and record["systemd"] is None
    assert [(r["field"], r["source"]) for r in record["drift"]] == [
        ("lowerdir", "fstab"), ("lowerdir", "table"), ("persisted", None)]


def test_a_new_backend_is_compared_with_the_declaration(with_table):
    table = TableBackend.configs_in([("t", "/srv/m /srv/l2:/srv/l1 /srv/u /srv/w")])
    persisted = {"fstab": [], "systemd": None, "table": TableBackend.public(table["/srv/m"])}
    rows = declared_drift(DECL, "table", [], True, None, persisted, DEFAULTS)
    assert [(r["field"], r["declared"], r["persisted"]) for r in rows] == [
        ("mounted", True, True), ("lowerdir", ["/srv/l1", "/srv/l2"], ["/srv/l2", "/srv/l1"]),
        ("managed", True, False)]
    rows = declared_drift(DECL, "fstab", [], True, None, persisted, DEFAULTS)
    assert ("persisted", "fstab", "table") in [(r["field"], r["declared"], r["persisted"]) for r in rows]


def test_a_new_backend_is_pruned(with_table):
    found = {"table": {"/t": TableBackend.configs_in([("t", "/srv/gone /a:/b /u /w managed\n/srv/hand /a:/b /u /w")])}}
    assert prune_targets(["/srv/m"], found) == {"/srv/gone": {"table": ["/t"]}}


def _params(**given):
    params = {"path": "/srv/m", "lowerdir": ["/srv/l1", "/srv/l2"], "upperdir": "/srv/u", "workdir": "/srv/w",
              "options": [], "state": "mounted", "persist": "fstab", "boot": True, "boot_options": []}
    params.update(given)
    return params


def test_flags_in_options_are_declared_flags():
    decl = _backends.declare(_params(options=["nosuid", "index=off", "rw"]))
    assert (decl.options, decl.flags, decl.boot_extras, decl.notes) == (["index=off"], ["nosuid"], [], [])


def test_flags_in_boot_options_count_as_declared_with_a_note():
    decl = _backends.declare(_params(options=["nosuid"], boot_options=["nofail", "noexec"]))
    assert (decl.flags, decl.boot_extras) == (["nosuid", "noexec"], ["nofail"])
    assert decl.notes == ["boot_options: noexec is a per-mount flag, applied to the live mount as well as persisted; "
                          "move it to options"]


def test_a_boot_option_flag_that_contradicts_options_is_refused():
    with pytest.raises(Exception, match="boot_options: 'exec' contradicts 'noexec' in options"):
        _backends.declare(_params(options=["noexec"], boot_options=["exec"]))


def test_unit_settings_become_fstab_options_or_are_refused_by_name():
    from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError
    params = dict(path="/srv/m", lowerdir=["/srv/l1", "/srv/l2"], upperdir=None, workdir=None, options=[],
                  state="present", persist="fstab", boot_options=["nofail"],
                  unit_settings={"Mount": {"TimeoutSec": 20}, "Unit": {"After": ["db.service"]}})
    decl = _backends.declare(params)
    assert decl.boot_extras == ["nofail", "x-systemd.mount-timeout=20", "x-systemd.after=db.service"]
    for settings, named in (({"Mount": {"LazyUnmount": True}}, "unit_settings.Mount.LazyUnmount"),
                            ({"Unit": {"RequiresMountsFor": ["/data"]}}, "unit_settings.Unit.RequiresMountsFor")):
        with pytest.raises(OverlayError, match=named.replace(".", r"\.")):
            _backends.declare(dict(params, unit_settings=settings))


def test_unit_settings_and_boot_options_that_disagree_are_refused_for_a_unit():
    from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError
    params = dict(path="/srv/m", lowerdir=["/srv/l1", "/srv/l2"], upperdir=None, workdir=None, options=[],
                  state="present", persist="systemd", boot_options=["x-systemd.mount-timeout=20"],
                  unit_settings={"Mount": {"TimeoutSec": 30}})
    with pytest.raises(OverlayError, match="TimeoutSec"):
        _backends.declare(params)
    with pytest.raises(OverlayError, match="persist is none"):
        _backends.declare(dict(params, persist="none", boot_options=[]))
