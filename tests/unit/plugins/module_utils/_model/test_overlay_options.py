# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

import pytest

from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.overlay_options import (
    canonical_options,
    defaults_from_parameters,
    live_config,
    option_differences,
    parse_options,
    resolve,
    visible_options,
)

# /sys/module/overlay/parameters on Debian 12 and on our kernel 6.18.
DEBIAN = {"redirect_dir": "N", "redirect_always_follow": "Y", "index": "N", "nfs_export": "N",
          "metacopy": "N", "xino_auto": "N", "check_copy_up": "N", "redirect_max": "256"}
DEFAULTS = defaults_from_parameters(DEBIAN)


def test_defaults_from_parameters():
    assert DEFAULTS["redirect_dir"] == "follow"
    assert DEFAULTS["index"] == "off"
    assert DEFAULTS["xino"] == "off"
    assert DEFAULTS["uuid"] == "auto"
    on = defaults_from_parameters({"redirect_dir": "Y", "index": "Y", "xino_auto": "Y", "metacopy": "Y"})
    assert (on["redirect_dir"], on["index"], on["xino"], on["metacopy"]) == ("on", "on", "auto", "on")
    assert defaults_from_parameters({"redirect_always_follow": "N"})["redirect_dir"] == "nofollow"
    # Module not loaded yet: Kconfig defaults.
    assert defaults_from_parameters({}) == DEFAULTS


@pytest.mark.parametrize("options, expected", [
    ([], []),
    (["volatile", "index=off"], ["index=off", "volatile"]),
    (["index=on", "index=on"], ["index=on"]),
    ([" metacopy=on "], ["metacopy=on"]),
    (["verity=require", "redirect_dir=on", "default_permissions"],
     ["default_permissions", "redirect_dir=on", "verity=require"]),
    (["fsync=volatile"], ["volatile"]),
    (["fsync=volatile", "volatile"], ["volatile"]),
    (["fsync=strict"], ["fsync=strict"]),
])
def test_canonical_options(options, expected):
    assert canonical_options(options) == expected


@pytest.mark.parametrize("options, fragment", [
    (["nodev"], "'nodev' is not an overlay mount option"),
    (["index=maybe"], "needs one of the values on, off"),
    (["index"], "needs one of the values"),
    (["volatile=on"], "is a flag and takes no value"),
    (["lowerdir=/a"], "set by the lowerdir parameter"),
    (["upperdir=/u"], "set by the upperdir parameter"),
    (["lowerdir+=/a"], "set by the lowerdir parameter"),
    (["index=on", "index=off"], "given twice with different values"),
    (["volatile", "fsync=strict"], "set the same thing differently"),
    (["fsync=strict", "volatile"], "set the same thing differently"),
    (["fsync=sometimes"], "needs one of the values auto, strict, volatile"),
    ([""], "empty option"),
])
def test_bad_options_name_the_field(options, fragment):
    with pytest.raises(OverlayError) as info:
        canonical_options(options)
    assert info.value.message.startswith("options:")
    assert fragment in info.value.message


def _resolve(options, has_upper=True):
    return resolve(parse_options(options), DEFAULTS, has_upper)


@pytest.mark.parametrize("options, has_upper, expected", [
    ([], True, {}),
    (["redirect_dir=off"], True, {}),
    (["redirect_dir=nofollow"], True, {"redirect_dir": "nofollow"}),
    (["metacopy=on"], True, {"metacopy": "on", "redirect_dir": "on"}),
    (["verity=on"], True, {"verity": "on"}),
    (["verity=on", "metacopy=on"], True, {"verity": "on", "metacopy": "on", "redirect_dir": "on"}),
    (["nfs_export=on"], True, {"nfs_export": "on", "index": "on"}),
    (["nfs_export=on", "metacopy=on", "index=on"], True, None),
    (["userxattr"], True, {"userxattr": True, "redirect_dir": "nofollow"}),
    (["index=on", "volatile"], False, {"redirect_dir": "on"}),
    (["uuid=on"], False, {"uuid": "null", "redirect_dir": "on"}),
    (["metacopy=on", "redirect_dir=nofollow"], True, None),
])
def test_resolve_follows_the_kernel(options, has_upper, expected):
    if expected is None:
        with pytest.raises(OverlayError) as info:
            _resolve(options, has_upper)
        assert "conflicting options" in info.value.message
        return
    config = _resolve(options, has_upper)
    changed = {k: v for k, v in config.items() if not k.startswith("_") and DEFAULTS[k] != v}
    assert changed == expected


@pytest.mark.parametrize("options", [
    ["nfs_export=on", "index=off"],
    ["userxattr", "redirect_dir=on"],
    ["userxattr", "metacopy=on"],
    ["userxattr", "verity=on"],
])
def test_conflicts_are_errors(options):
    with pytest.raises(OverlayError, match="conflicting options"):
        _resolve(options)


def _drift(declared, shown, has_upper=True, defaults=None):
    defaults = DEFAULTS if defaults is None else defaults
    pairs = parse_options(declared)
    config = resolve(pairs, defaults, has_upper)
    live, _foreign = live_config(shown, defaults, has_upper=has_upper)
    return option_differences(pairs, config, live, shown)


# Kernels before 6.6 (Debian 11's 5.10, Debian 12's 6.1): uuid is a plain
# on/off switch, on by default, and only uuid=off is shown.
OLD_DEFAULTS = defaults_from_parameters(DEBIAN, uuid_default="on")


@pytest.mark.parametrize("declared, shown, has_upper", [
    # What 5.10 and 6.1 show for these declarations (read off their mountinfo).
    ([], [], True),
    ([], [], False),
    (["uuid=on"], [], True),
    (["uuid=off"], ["uuid=off"], True),
    (["uuid=off"], [], False),       # falls back to on without upper
    (["uuid=off"], [], True),        # ... and with upper and lowers on other filesystems
    (["redirect_dir=off"], ["redirect_dir=off"], True),
    (["redirect_dir=off"], ["redirect_dir=off"], False),
    (["redirect_dir=on"], ["redirect_dir=on"], True),
    (["redirect_dir=on"], ["redirect_dir=on"], False),
    (["redirect_dir=nofollow"], ["redirect_dir=nofollow"], False),
    (["metacopy=on"], ["metacopy=on"], True),
    (["metacopy=on"], ["metacopy=on"], False),
    (["userxattr"], ["userxattr"], True),
    (["volatile"], ["volatile"], True),
    (["index=on"], ["index=on"], True),
    (["xino=off"], [], True),
])
def test_no_false_drift_on_older_kernels(declared, shown, has_upper):
    assert _drift(declared, shown, has_upper, OLD_DEFAULTS) == []


@pytest.mark.parametrize("declared, shown, has_upper, expected", [
    (["uuid=on"], ["uuid=off"], True, [("uuid", "on", "off")]),
    (["redirect_dir=nofollow"], [], True, [("redirect_dir", "nofollow", "follow")]),
    (["redirect_dir=nofollow"], [], False, [("redirect_dir", "nofollow", "on")]),
    (["volatile"], [], True, [("volatile", True, False)]),
])
def test_real_drift_on_older_kernels(declared, shown, has_upper, expected):
    assert _drift(declared, shown, has_upper, OLD_DEFAULTS) == expected


def test_read_only_overlay_reads_the_same_on_every_kernel():
    # 6.5+ shows redirect_dir=on on a mount without upper; 5.10 and 6.1 show nothing.
    new, _f = live_config(["redirect_dir=on"], DEFAULTS, has_upper=False)
    old, _f = live_config([], OLD_DEFAULTS, has_upper=False)
    assert new["redirect_dir"] == old["redirect_dir"] == "on"


def test_uuid_fallback_to_null_only_where_the_kernel_has_it():
    assert resolve(parse_options(["uuid=off"]), DEFAULTS, False)["uuid"] == "null"
    assert resolve(parse_options(["uuid=off"]), OLD_DEFAULTS, False)["uuid"] == "on"
    assert OLD_DEFAULTS["uuid"] == "on"


@pytest.mark.parametrize("declared, shown", [
    ([], []),
    ([], ["uuid=on"]),
    ([], ["uuid=null"]),
    (["uuid=auto"], ["uuid=on"]),
    (["index=off"], []),
    (["redirect_dir=off"], []),
    (["redirect_dir=nofollow"], ["redirect_dir=nofollow"]),
    (["metacopy=on"], ["redirect_dir=on", "metacopy=on"]),
    (["xino=on"], []),
    (["userxattr"], ["redirect_dir=nofollow", "userxattr"]),
    (["volatile"], ["fsync=volatile"]),
    (["fsync=volatile"], ["fsync=volatile"]),
    (["fsync=strict"], ["uuid=on", "fsync=strict"]),
    (["fsync=auto"], []),
    (["verity=on"], ["uuid=on", "verity=on"]),
    (["verity=on"], ["redirect_dir=on", "metacopy=on", "verity=on"]),
    (["uuid=off"], ["uuid=null"]),
    ([], ['context="system_u:object_r:container_file_t:s0:c88,c409"']),
])
def test_no_false_drift(declared, shown):
    assert _drift(declared, shown) == []


@pytest.mark.parametrize("declared, shown, expected", [
    (["index=on"], [], [("index", "on", "off")]),
    ([], ["index=on"], [("index", "off", "on")]),
    (["uuid=off"], ["uuid=on"], [("uuid", "off", "on")]),
    (["uuid=on"], [], [("uuid", "on", "auto")]),
    (["xino=on"], ["xino=auto"], [("xino", "on", "auto")]),
    (["volatile"], [], [("volatile", True, False)]),
    (["metacopy=on"], [], [("redirect_dir", "on", "follow"), ("metacopy", "on", "off")]),
])
def test_real_drift(declared, shown, expected):
    assert _drift(declared, shown) == expected


def test_visible_options_is_what_the_kernel_would_show():
    config = _resolve(["metacopy=on", "index=off", "volatile"])
    assert visible_options(config, DEFAULTS) == ["redirect_dir=on", "metacopy=on", "volatile"]
