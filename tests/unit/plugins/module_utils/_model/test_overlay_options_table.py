# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A new overlay option needs one row in _options.OPTIONS and nothing else.

The fixture adds a fictitious option, ``frobnicate`` (on/off, off unless the
overlay module parameter ``frobnicate`` reads Y), and the tests run it
through parsing, defaults, resolution, live reading, drift and the fstab and
unit renderers.
"""

import importlib
import re
import sys

import pytest

from ansible_collections.overlayfs.mounts.plugins.module_utils._model.declaration import Declaration
from ansible_collections.overlayfs.mounts.plugins.module_utils._model import overlay_options as _options
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.overlay_options import Option, Parameter

PACKAGE = "ansible_collections.overlayfs.mounts.plugins.module_utils"
FROBNICATE = Option("frobnicate", ("on", "off"), "off", (Parameter("frobnicate", False, "on"),))
LAYERS = dict(lowerdir=["/srv/l1", "/srv/l2"], upperdir="/srv/upper", workdir="/srv/work")
# What every module but _options and _errors reads of the table happens at
# their import, or through a name they imported: they are imported anew.
KEEP = ("_model", "overlay_options", "errors")


@pytest.fixture
def frobnicate(monkeypatch):
    """The option table with one more row; OPTION_VALUES is the one view _options derives at import."""
    table = _options.OPTIONS + (FROBNICATE,)
    monkeypatch.setattr(_options, "OPTIONS", table)
    monkeypatch.setattr(_options, "OPTION_VALUES", tuple((o.name, o.values) for o in table))
    return FROBNICATE


@pytest.fixture
def fresh(frobnicate):
    """``fresh(name)``: the module_utils module ``name`` imported anew, seeing the patched table.

    Every module of the package but KEEP is dropped from sys.modules first, so
    that what they import from each other is fresh too; afterwards the
    original modules come back and the fresh ones are gone.
    """
    package = importlib.import_module(PACKAGE)
    saved = {n: m for n, m in sys.modules.items() if n.startswith(PACKAGE + ".")}
    attributes = {n: getattr(package, n) for n in dir(package) if n.startswith("_") and n[1:2] != "_"}
    for name in saved:
        if name.rsplit(".", 1)[1] not in KEEP:
            del sys.modules[name]
    try:
        yield lambda name: importlib.import_module("%s.%s" % (PACKAGE, name))
    finally:
        for name in [n for n in sys.modules if n.startswith(PACKAGE + ".")]:
            del sys.modules[name]
        sys.modules.update(saved)
        for name in [n for n in dir(package) if n.startswith("_") and n[1:2] != "_"]:
            if name not in attributes:
                delattr(package, name)
        for name, value in attributes.items():
            setattr(package, name, value)


def test_frobnicate_is_not_an_option_without_its_row():
    with pytest.raises(OverlayError, match="'frobnicate=on' is not an overlay mount option"):
        _options.parse_options(["frobnicate=on"])


def test_parsing(frobnicate):
    assert _options.parse_options(["frobnicate=on", "index=on", "volatile"]) == [
        ("index", "on"), ("volatile", True), ("frobnicate", "on")]
    assert _options.canonical_options(["frobnicate=off", "frobnicate=off"]) == ["frobnicate=off"]
    with pytest.raises(OverlayError, match="'frobnicate=maybe' needs one of the values on, off"):
        _options.parse_options(["frobnicate=maybe"])
    with pytest.raises(OverlayError, match=re.escape("fsync=auto|strict|volatile, frobnicate=on|off") + "$"):
        _options.parse_options(["nodev"])


def test_defaults_come_from_its_row_and_parameter(frobnicate):
    assert _options.defaults_from_parameters({})["frobnicate"] == "off"
    assert _options.defaults_from_parameters({"frobnicate": "N"})["frobnicate"] == "off"
    assert _options.defaults_from_parameters({"frobnicate": "Y"})["frobnicate"] == "on"
    # The rows already there are unchanged by the new one.
    assert _options.defaults_from_parameters({"redirect_always_follow": "N", "frobnicate": "Y"})[
        "redirect_dir"] == "nofollow"


def test_resolve_live_and_drift(frobnicate):
    defaults = _options.defaults_from_parameters({})
    pairs = _options.parse_options(["frobnicate=on"])
    declared = _options.resolve(pairs, defaults, has_upper=True)
    assert declared["frobnicate"] == "on"
    live_on, foreign = _options.live_config(["frobnicate=on", "context=x"], defaults, has_upper=True)
    assert (live_on["frobnicate"], foreign) == ("on", ["context=x"])
    live_off, foreign = _options.live_config([], defaults, has_upper=True)
    assert (live_off["frobnicate"], foreign) == ("off", [])
    assert "frobnicate" in _options.compared_keys(pairs)
    assert _options.option_differences(pairs, declared, live_on, ["frobnicate=on"]) == []
    assert _options.option_differences(pairs, declared, live_off, []) == [("frobnicate", "on", "off")]
    assert _options.visible_options(declared, defaults) == ["frobnicate=on"]
    # Where the module parameter makes on the default, the kernel shows nothing.
    param_on = _options.defaults_from_parameters({"frobnicate": "Y"})
    assert _options.visible_options(_options.resolve(pairs, param_on, True), param_on) == []
    assert _options.live_config([], param_on)[0]["frobnicate"] == "on"


def _overlay(**fields):
    """The overlay of LAYERS mounted at /srv/merged, with ``fields``."""
    return Declaration("/srv/merged", **dict(LAYERS, **fields))


def test_fstab_line_round_trip(fresh):
    fstab, optstring = fresh("_formats.fstab_syntax"), fresh("_formats.mount_data")
    mntops = optstring.format_mount_options(_overlay(options=["frobnicate=on"]), None, ["nofail"]).text
    assert mntops == "lowerdir=/srv/l1:/srv/l2,upperdir=/srv/upper,workdir=/srv/work,frobnicate=on,nofail"
    parsed = optstring.parse_overlay_options(mntops)
    assert (parsed["options"], parsed["extra_options"]) == (["frobnicate=on"], ["nofail"])
    line = fstab.render_entry(_overlay(options=["frobnicate=on"])).text
    assert ",frobnicate=on,x-systemd.requires-mounts-for=" in line
    with pytest.raises(OverlayError, match="'frobnicate=on' is an overlay option; give it in options"):
        fstab.check_boot_option("frobnicate=on")


def test_unit_round_trip(fresh):
    systemd = fresh("_formats.unit_syntax")
    unit = systemd.render_unit(_overlay(options=["frobnicate=on"]), None, ["nofail"]).text
    assert "Options=lowerdir=/srv/l1:/srv/l2,upperdir=/srv/upper,workdir=/srv/work,frobnicate=on,nofail\n" in unit
    parsed = systemd.parse_unit(unit)
    assert (parsed["options"], parsed["extra_options"]) == (["frobnicate=on"], ["nofail"])


def test_drift_between_declared_and_persisted(fresh):
    drift = fresh("_compare.drift")
    defaults = _options.defaults_from_parameters({})
    declared = dict(LAYERS, options=["frobnicate=on"])
    persisted = dict(LAYERS, options=[])
    assert drift.against_config(declared, persisted, defaults) == {"options.frobnicate": ("on", "off")}
    assert drift.value_of(declared, "options.frobnicate", defaults) == "on"


def test_fresh_modules_are_gone_afterwards():
    """The fixture put the original modules back: they refuse frobnicate again."""
    from ansible_collections.overlayfs.mounts.plugins.module_utils._formats import mount_data as _optstring

    assert sys.modules[PACKAGE + "._formats.mount_data"] is _optstring
    with pytest.raises(OverlayError, match="not an overlay mount option"):
        _optstring.format_mount_options(_overlay(options=["frobnicate=on"]))
