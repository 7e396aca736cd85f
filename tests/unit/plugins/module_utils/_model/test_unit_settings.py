# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

import pytest

from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.unit_file import LIST_KEYS, effective
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError
from ansible_collections.overlayfs.mounts.plugins.module_utils._model.unit_settings import (
    KEYS,
    LIST_KINDS,
    OWNED,
    REFUSED_OPTIONS,
    SECTIONS,
    check_time_span,
    check_unit_settings,
    merge_settings,
    options_to_settings,
    setting_items,
    settings_to_options,
    targets,
    time_span_usec,
)


def _error(call, *args):
    with pytest.raises(OverlayError) as info:
        call(*args)
    return info.value.message


def test_none_is_not_declared():
    assert check_unit_settings(None) is None


def test_the_example_normalises_to_unit_file_text():
    declared = {
        "Unit": {"DefaultDependencies": False, "After": ["a.service"], "Description": "x"},
        "Mount": {"TimeoutSec": 30, "LazyUnmount": True},
        "Install": {"WantedBy": ["multi-user.target"]},
        "Automount": {"TimeoutIdleSec": 60},
    }
    assert check_unit_settings(declared) == {
        "Unit": {"DefaultDependencies": "no", "After": "a.service", "Description": "x"},
        "Mount": {"TimeoutSec": "30", "LazyUnmount": "yes"},
        "Install": {"WantedBy": "multi-user.target"},
        "Automount": {"TimeoutIdleSec": "60"},
    }


def test_empty_sections_are_kept():
    assert check_unit_settings({"Automount": {}}) == {"Automount": {}}
    assert check_unit_settings({"Automount": None}) == {"Automount": {}}
    assert check_unit_settings({}) == {}


@pytest.mark.parametrize("value, expected", [
    (True, "yes"), (False, "no"), (1, "yes"), (0, "no"),
    ("yes", "yes"), ("No", "no"), ("TRUE", "yes"), ("false", "no"), ("on", "yes"), ("off", "no"),
    ("1", "yes"), ("0", "no"), ("y", "yes"), ("n", "no"), ("t", "yes"), ("f", "no"),
])
def test_booleans(value, expected):
    assert check_unit_settings({"Mount": {"LazyUnmount": value}})["Mount"]["LazyUnmount"] == expected


@pytest.mark.parametrize("value", [2, "maybe", "", 1.0])
def test_not_booleans(value):
    message = _error(check_unit_settings, {"Mount": {"LazyUnmount": value}})
    assert message.startswith("unit_settings.Mount.LazyUnmount: ")
    assert "give true or false" in message


@pytest.mark.parametrize("value, expected", [
    (30, "30"), (0, "0"), (1.5, "1.5"), (2.0, "2"), ("30", "30"), ("1.5", "1.5"), ("30s", "30s"),
    ("1min 30s", "1min 30s"), ("1min30s", "1min30s"), ("5 min", "5 min"), ("500ms", "500ms"),
    ("2h", "2h"), ("1d 2hr", "1d 2hr"), ("1w", "1w"), ("1M", "1M"), ("1y", "1y"), ("10us", "10us"),
    ("3 seconds", "3 seconds"), ("1 minute", "1 minute"), ("2 hours", "2 hours"), ("infinity", "infinity"),
    ("0.5min", "0.5min"), ("10\u00b5s", "10\u00b5s"),
])
def test_time_spans_keep_their_spelling(value, expected):
    assert check_unit_settings({"Mount": {"TimeoutSec": value}})["Mount"]["TimeoutSec"] == expected


@pytest.mark.parametrize("value", [-1, True, "abc", "30 x", "min", "1min -2s", "infinite", float("inf"),
                                   float("nan"), " 30s", "30s ", "1,5s", ""])
def test_not_time_spans(value):
    message = _error(check_unit_settings, {"Mount": {"TimeoutSec": value}})
    assert message.startswith("unit_settings.Mount.TimeoutSec: ")


def test_time_span_errors_say_what_a_span_is():
    assert "give seconds (30) or a span such as '1min 30s'" in _error(check_time_span, "f", "abc")


@pytest.mark.parametrize("text, usec", [
    ("30", 30 * 10 ** 6), ("30s", 30 * 10 ** 6), ("0.5min", 30 * 10 ** 6), ("1min 30s", 90 * 10 ** 6),
    ("1.5", 1500000), ("500ms", 500000), ("1h", 3600 * 10 ** 6), ("10us", 10), ("infinity", float("inf")),
])
def test_time_span_length(text, usec):
    assert time_span_usec(text) == usec


@pytest.mark.parametrize("value, expected", [(0o755, "0755"), ("0755", "0755"), ("755", "0755"), ("7", "0007"),
                                             (0, "0000"), ("01777", "1777"), (0o7777, "7777")])
def test_modes(value, expected):
    assert check_unit_settings({"Mount": {"DirectoryMode": value}})["Mount"]["DirectoryMode"] == expected


@pytest.mark.parametrize("value", ["0855", "rwx", 0o10000, -1, True, "u+x", ""])
def test_not_modes(value):
    message = _error(check_unit_settings, {"Automount": {"DirectoryMode": value}})
    assert message.startswith("unit_settings.Automount.DirectoryMode: ")
    assert "'0755'" in message


@pytest.mark.parametrize("key, value, expected", [
    ("Nice", -5, "-5"), ("Nice", "10", "10"), ("Nice", "+3", "3"), ("IOWeight", 100, "100"),
])
def test_integers(key, value, expected):
    assert check_unit_settings({"Mount": {key: value}})["Mount"][key] == expected


@pytest.mark.parametrize("key, value, fragment", [
    ("Nice", 20, "out of range; give a number from -20 to 19"),
    ("Nice", "x", "not an integer"),
    ("Nice", True, "not an integer"),
    ("Nice", 1.5, "not an integer"),
    ("IOWeight", 0, "from 1 to 10000"),
])
def test_not_integers(key, value, fragment):
    message = _error(check_unit_settings, {"Mount": {key: value}})
    assert message.startswith("unit_settings.Mount.%s: " % key)
    assert fragment in message


def test_unbounded_integer():
    assert check_unit_settings({"Unit": {"StartLimitBurst": 10 ** 6}})["Unit"]["StartLimitBurst"] == "1000000"
    assert "from 0 to any higher" in _error(check_unit_settings, {"Unit": {"StartLimitBurst": -1}})


def test_strings_double_percent_signs():
    assert check_unit_settings({"Unit": {"Description": "50% of %n"}})["Unit"]["Description"] == "50%% of %%n"
    assert check_unit_settings({"Mount": {"MemoryMax": "80%"}})["Mount"]["MemoryMax"] == "80%%"
    assert check_unit_settings({"Mount": {"CPUWeight": 100}})["Mount"]["CPUWeight"] == "100"


@pytest.mark.parametrize("value, fragment", [
    ("a\nb", "line break"), (" a", "whitespace"), ("a\\", "backslash"), ("", "empty"), (True, "not a string"),
])
def test_strings_a_unit_line_cannot_carry(value, fragment):
    message = _error(check_unit_settings, {"Unit": {"Description": value}})
    assert message.startswith("unit_settings.Unit.Description")
    assert fragment in message


@pytest.mark.parametrize("key, value, expected", [
    ("After", ["a.service", "b.target"], "a.service b.target"),
    ("After", "a.service", "a.service"),
    ("After", ["a.service", "a.service"], "a.service"),
    ("After", ["srv-my\\x20dir.mount"], "srv-my\\x20dir.mount"),
    ("RequiresMountsFor", ["/srv/a", "/srv/my dir"], '/srv/a "/srv/my dir"'),
    ("RequiresMountsFor", "/srv/50%", "/srv/50%%"),
    ("RequiresMountsFor", ['/srv/q"uote', "/srv/back\\slash"], '"/srv/q\\"uote" "/srv/back\\\\slash"'),
    ("Documentation", ["man:mount(8)", "https://example.org/a b"], 'man:mount(8) "https://example.org/a b"'),
])
def test_lists(key, value, expected):
    assert check_unit_settings({"Unit": {key: value}})["Unit"][key] == expected


def test_lists_read_back():
    declared = check_unit_settings({"Unit": {"RequiresMountsFor": ["/srv/a b", "/srv/50%", '/srv/"q"']}})
    value = declared["Unit"]["RequiresMountsFor"]
    assert setting_items("Unit", "RequiresMountsFor", value) == ["/srv/a b", "/srv/50%", '/srv/"q"']
    # And systemd's view of the same line (specifiers untouched) agrees.
    unit = effective([("/m", "[Unit]\nRequiresMountsFor=%s\n" % value)])
    assert unit.settings["Unit"]["RequiresMountsFor"] == value


def test_an_empty_list_leaves_the_key_out():
    assert check_unit_settings({"Unit": {"After": []}}) == {"Unit": {}}


@pytest.mark.parametrize("key, value, field, fragment", [
    ("After", "a.service b.service", "unit_settings.Unit.After", "give each unit as one item"),
    ("After", ["a.service", "b"], "unit_settings.Unit.After[1]", "no unit type suffix"),
    ("After", ["a.service", 3], "unit_settings.Unit.After[1]", "not a string"),
    ("After", [""], "unit_settings.Unit.After[0]", "empty item"),
    ("After", ["x" * 250 + ".service"], "unit_settings.Unit.After[0]", "longer than 255 bytes"),
    ("After", {"a": 1}, "unit_settings.Unit.After", "expected a list of unit names"),
    ("Wants", ["%i.service"], "unit_settings.Unit.Wants[0]", "characters a unit name cannot"),
    ("RequiresMountsFor", ["srv/a"], "unit_settings.Unit.RequiresMountsFor[0]", "not an absolute path"),
    ("RequiresMountsFor", ["/srv/a\nb"], "unit_settings.Unit.RequiresMountsFor", "line break"),
])
def test_bad_list_items(key, value, field, fragment):
    message = _error(check_unit_settings, {"Unit": {key: value}})
    assert message.startswith(field + ": ")
    assert fragment in message


def test_a_list_for_a_single_key_is_refused():
    message = _error(check_unit_settings, {"Mount": {"TimeoutSec": [1, 2]}})
    assert message == "unit_settings.Mount.TimeoutSec: TimeoutSec takes one value, not a list; give one time span"


def test_a_missing_value_is_refused():
    message = _error(check_unit_settings, {"Mount": {"TimeoutSec": None}})
    assert message == "unit_settings.Mount.TimeoutSec: no value; give one, or remove the setting"


@pytest.mark.parametrize("value, fragment", [
    ([], "expected a mapping from section (Unit, Mount, Automount, Install) to settings, got list"),
    ("Unit", "to settings, got str"),
])
def test_the_parameter_is_a_mapping(value, fragment):
    message = _error(check_unit_settings, value)
    assert message.startswith("unit_settings: expected a mapping")
    assert message.endswith(fragment)


def test_a_section_is_a_mapping():
    assert _error(check_unit_settings, {"Mount": ["TimeoutSec"]}) == (
        "unit_settings.Mount: expected a mapping of Mount settings, got list")


@pytest.mark.parametrize("section, hint", [
    ("unit", "did you mean Unit?"), ("MOUNT", "did you mean Mount?"), ("Automnt", "did you mean Automount?"),
    ("Service", None),
])
def test_unknown_sections(section, hint):
    message = _error(check_unit_settings, {section: {}})
    assert message.startswith("unit_settings.%s: no such section; the sections are Unit, Mount, Automount, "
                              "Install (case matters)" % section)
    assert (hint in message) if hint else ("did you mean" not in message)


def test_section_names_are_strings():
    assert "section names are strings" in _error(check_unit_settings, {1: {}})


@pytest.mark.parametrize("section, key, fragment", [
    ("Unit", "TimeoutSec", "TimeoutSec is not a [Unit] setting; it belongs in Mount: give it as "
                           "unit_settings.Mount.TimeoutSec"),
    ("Mount", "WantedBy", "it belongs in Install"),
    ("Mount", "TimeoutIdleSec", "it belongs in Automount"),
    ("Install", "After", "it belongs in Unit"),
    ("Mount", "LazyUnmout", "no such [Mount] setting (see systemd.mount(5)"),
    ("Mount", "LazyUnmout", "did you mean LazyUnmount?"),
    ("Mount", "lazyunmount", "did you mean LazyUnmount?"),
    ("Unit", "TimeoutSecs", "did you mean TimeoutSec (a [Mount] setting)?"),
    ("Unit", "Wnats", "did you mean Wants?"),
    ("Automount", "Zzzzzz", "no such [Automount] setting (see systemd.automount(5))"),
    ("Mount", "PrivateMounts", "no such [Mount] setting"),
])
def test_unknown_keys(section, key, fragment):
    message = _error(check_unit_settings, {section: {key: "x"}})
    assert message.startswith("unit_settings.%s.%s: " % (section, key))
    assert fragment in message


def test_a_typo_far_from_every_key_gets_no_guess():
    assert "did you mean" not in _error(check_unit_settings, {"Automount": {"Zzzzzz": 1}})


@pytest.mark.parametrize("section, key, fix", [
    ("Mount", "What", "the module writes What=overlay itself"),
    ("Mount", "Where", "use path"),
    ("Mount", "Type", "always overlay"),
    ("Mount", "Options", "use options for overlay options and per-mount flags, and boot_options for the others"),
    ("Mount", "WorkingDirectory", "see method and links_dir"),
    ("Automount", "Where", "use path"),
    ("Install", "Alias", "systemd cannot alias mount or automount units"),
    ("Install", "DefaultInstance", "cannot be templates"),
])
def test_owned_keys_are_refused_with_the_option_to_use(section, key, fix):
    message = _error(check_unit_settings, {section: {key: "x"}})
    assert message.startswith("unit_settings.%s.%s: " % (section, key))
    assert fix in message


def test_a_misplaced_owned_key_points_to_its_section():
    assert "it belongs in Mount" in _error(check_unit_settings, {"Unit": {"What": "x"}})


def test_requires_mounts_for_is_allowed():
    assert check_unit_settings({"Unit": {"RequiresMountsFor": "/srv/x"}}) == {"Unit": {"RequiresMountsFor": "/srv/x"}}


def test_conditions_are_single_strings():
    assert check_unit_settings({"Unit": {"ConditionPathExists": "!/etc/skip"}}) == {
        "Unit": {"ConditionPathExists": "!/etc/skip"}}
    assert "takes one value" in _error(check_unit_settings, {"Unit": {"ConditionPathExists": ["/a", "/b"]}})


def test_custom_field_name():
    assert _error(check_unit_settings, {"Mount": {"Nice": "x"}}, "overlays[2].unit_settings").startswith(
        "overlays[2].unit_settings.Mount.Nice: ")


def test_the_key_table():
    assert SECTIONS == ("Unit", "Mount", "Automount", "Install")
    assert set(KEYS) == set(SECTIONS)
    assert set(KEYS["Automount"]) == {"ExtraOptions", "DirectoryMode", "TimeoutIdleSec"}
    assert {"SloppyOptions", "LazyUnmount", "ReadWriteOnly", "ForceUnmount", "DirectoryMode", "TimeoutSec",
            "User", "Group", "Nice", "Environment", "KillMode", "KillSignal", "SendSIGKILL", "Slice",
            "CPUWeight", "MemoryMax", "IOWeight"} <= set(KEYS["Mount"])
    for section, key in OWNED:
        assert key not in KEYS[section]


def test_list_kinds_agree_with_the_unit_reader():
    # A key the module writes as a list must be one systemd gathers, or drop-ins would be misread.
    for section, keys in KEYS.items():
        for key, kind in keys.items():
            if kind in LIST_KINDS:
                assert (section, key) in LIST_KEYS, (section, key)


# Boot behaviour between fstab and units.

def test_options_to_settings_carries_generator_options():
    settings, kept = options_to_settings([
        "nofail", "x-systemd.automount", "x-systemd.idle-timeout=60", "x-systemd.mount-timeout=1min 30s",
        "x-systemd.requires=network-online.target", "x-systemd.after=b.service", "x-systemd.before=c.service",
        "x-systemd.wanted-by=multi-user.target", "x-systemd.required-by=d.target",
        "x-systemd.requires-mounts-for=/srv/a", "x-systemd.wants-mounts-for=/srv/b", "_netdev",
        "x-mount.mkdir", "comment=hello",
    ])
    assert settings == {
        "Unit": {"Requires": "network-online.target", "After": "network-online.target b.service",
                 "Before": "c.service", "RequiresMountsFor": "/srv/a", "WantsMountsFor": "/srv/b"},
        "Mount": {"TimeoutSec": "1min 30s"},
        "Automount": {"TimeoutIdleSec": "60"},
        "Install": {"WantedBy": "multi-user.target", "RequiredBy": "d.target"},
    }
    assert kept == ["nofail", "_netdev", "x-mount.mkdir", "comment=hello"]


def test_options_to_settings_plain_options():
    assert options_to_settings(["nofail"]) == ({}, ["nofail"])
    assert options_to_settings([]) == ({}, [])
    assert options_to_settings(["x-systemd.automount"]) == ({"Automount": {}}, [])
    assert options_to_settings(["comment=systemd.automount"]) == ({"Automount": {}}, [])
    assert options_to_settings(["x-systemd.rw-only"]) == ({"Mount": {"ReadWriteOnly": "yes"}}, [])


@pytest.mark.parametrize("value, unit", [
    ("/srv/data", "srv-data.mount"),
    ("/srv/my dir", "srv-my\\x20dir.mount"),
    ("/dev/sdb1", "dev-sdb1.device"),
    ("remote", "remote.mount"),
    ("a.service", "a.service"),
    ("srv-x.mount", "srv-x.mount"),
])
def test_dependencies_become_unit_names_as_the_generator_makes_them(value, unit):
    settings, _kept = options_to_settings(["x-systemd.after=" + value])
    assert settings == {"Unit": {"After": unit}}


def test_quoted_mounts_for_paths():
    settings, _kept = options_to_settings(['x-systemd.requires-mounts-for="/srv/a b"', "x-systemd.requires-mounts-for=/srv/c\\,d"])
    assert setting_items("Unit", "RequiresMountsFor", settings["Unit"]["RequiresMountsFor"]) == ["/srv/a b", "/srv/c,d"]


@pytest.mark.parametrize("option", sorted(REFUSED_OPTIONS))
def test_options_that_need_a_device_or_the_initrd_are_refused(option):
    message = _error(options_to_settings, [option + "=5"] if option != "x-initrd.mount" else [option])
    assert message.startswith("boot_options: '%s" % option)
    assert message.endswith(": remove it")


def test_refusals_name_the_reason():
    message = _error(options_to_settings, ["x-systemd.makefs"])
    assert message == ("boot_options: 'x-systemd.makefs' makes a file system on the device, and an overlay "
                       "has no device: remove it")


@pytest.mark.parametrize("options, fragment", [
    (["x-systemd.idle-timeout=60"], "sets the automount's idle time, but there is no x-systemd.automount"),
    (["x-systemd.mount-timeout=20", "x-systemd.mount-timeout=30"], "x-systemd.mount-timeout is given twice"),
    (["x-systemd.mount-timeout=soon"], "'x-systemd.mount-timeout=soon': 'soon' is not a time span"),
    (["x-systemd.requires"], "needs a value (x-systemd.requires=VALUE)"),
    (["x-systemd.after="], "needs a value"),
    (["x-systemd.wanted-by=multi-user"], "no unit type suffix"),
    (["x-systemd.after=a b.service"], "characters a unit name cannot"),
    (["x-systemd.requires-mounts-for=srv/a"], "not an absolute path"),
    (['x-systemd.requires-mounts-for="/srv/a'], "no path in it"),
    (["x-systemd.after=/srv/../x"], "contains '..'"),
])
def test_options_to_settings_errors(options, fragment):
    message = _error(options_to_settings, options)
    assert message.startswith("boot_options: ")
    assert fragment in message


def test_the_same_option_twice_with_one_value_is_fine():
    settings, _kept = options_to_settings(["x-systemd.mount-timeout=20", "x-systemd.mount-timeout=20"])
    assert settings == {"Mount": {"TimeoutSec": "20"}}


ROUND_TRIPS = [
    [],
    ["x-systemd.automount"],
    ["x-systemd.automount", "x-systemd.idle-timeout=5min"],
    ["x-systemd.mount-timeout=30"],
    ["x-systemd.requires=a.service"],
    ["x-systemd.requires=a.service", "x-systemd.after=b.service", "x-systemd.before=c.service"],
    ["x-systemd.wanted-by=multi-user.target"],
    ["x-systemd.wanted-by=local-fs.target", "x-systemd.wanted-by=multi-user.target"],
    ["x-systemd.required-by=local-fs.target"],
    ["x-systemd.requires-mounts-for=/srv/a", 'x-systemd.requires-mounts-for="/srv/b c"'],
    ["x-systemd.wants-mounts-for=/srv/a", 'x-systemd.wants-mounts-for="/srv/it\'s"'],
    ["x-systemd.rw-only"],
    ["x-systemd.automount", "x-systemd.mount-timeout=1min 30s", "x-systemd.requires=srv-a.mount",
     "x-systemd.wanted-by=remote-fs.target"],
]


@pytest.mark.parametrize("options", ROUND_TRIPS)
def test_round_trip_options_settings_options(options):
    settings, kept = options_to_settings(options)
    assert kept == []
    assert sorted(settings_to_options(settings)) == sorted(options)


def test_round_trip_normalises_spellings():
    # The generator's own reading: a path becomes its unit; After= of a required unit is implied.
    settings, _kept = options_to_settings(["x-systemd.requires=/srv/a", "x-systemd.after=srv-a.mount"])
    assert settings_to_options(settings) == ["x-systemd.requires=srv-a.mount"]
    # The module's default target gives no option.
    settings, _kept = options_to_settings(["x-systemd.wanted-by=local-fs.target"])
    assert settings_to_options(settings) == []


def test_settings_to_options_from_declared_settings():
    declared = check_unit_settings({
        "Unit": {"Requires": ["a.service"], "After": ["a.service", "b.service"]},
        "Mount": {"TimeoutSec": "1min", "ReadWriteOnly": False},
        "Automount": {},
        "Install": {"WantedBy": ["local-fs.target"]},
    })
    assert settings_to_options(declared) == [
        "x-systemd.automount", "x-systemd.mount-timeout=1min", "x-systemd.requires=a.service",
        "x-systemd.after=b.service"]


def test_settings_to_options_names_every_setting_without_fstab_form():
    message = _error(settings_to_options, {"Mount": {"LazyUnmount": "yes", "TimeoutSec": "3"},
                                           "Automount": {"DirectoryMode": "0700"}})
    assert message == ("unit_settings.Mount.LazyUnmount, unit_settings.Automount.DirectoryMode have no fstab "
                       "form: persist the overlay as a unit (persist: systemd) or remove the settings")


def test_settings_to_options_one_setting_without_fstab_form():
    assert _error(settings_to_options, {"Mount": {"LazyUnmount": "yes"}}) == (
        "unit_settings.Mount.LazyUnmount has no fstab form: persist the overlay as a unit (persist: systemd) "
        "or remove the setting")


def test_requires_without_after_has_no_fstab_form():
    message = _error(settings_to_options, {"Unit": {"Requires": "a.service"}})
    assert message.startswith("unit_settings.Unit.Requires=a.service has no fstab form without After=a.service")
    assert "add it to After" in message


def test_upheld_by_has_no_fstab_form():
    assert "unit_settings.Install.UpheldBy has no fstab form" in _error(
        settings_to_options, {"Install": {"UpheldBy": "a.target"}})


def test_mounts_for_paths_fstab_cannot_carry():
    message = _error(settings_to_options, {"Unit": {"RequiresMountsFor": '"/srv/a\\"b"'}})
    assert message.startswith("unit_settings.Unit.RequiresMountsFor: '/srv/a\"b' has a double quote or backslash")


def test_percent_signs_go_back_to_fstab_as_they_are():
    declared = check_unit_settings({"Unit": {"RequiresMountsFor": ["/srv/50%"]}})
    assert settings_to_options(declared) == ["x-systemd.requires-mounts-for=/srv/50%"]
    assert options_to_settings(["x-systemd.requires-mounts-for=/srv/50%"])[0] == declared


def test_merge_unites_lists_and_keeps_agreeing_values():
    first = {"Unit": {"After": "a.service b.service"}, "Mount": {"TimeoutSec": "30"}}
    second = {"Unit": {"After": "b.service c.service", "Before": "d.service"}, "Mount": {"TimeoutSec": "30s"},
              "Automount": {}}
    assert merge_settings(first, second) == {
        "Unit": {"After": "a.service b.service c.service", "Before": "d.service"},
        "Mount": {"TimeoutSec": "30"},
        "Automount": {},
    }
    # The inputs stay as they were.
    assert first == {"Unit": {"After": "a.service b.service"}, "Mount": {"TimeoutSec": "30"}}


def test_merge_unites_quoted_lists():
    first = check_unit_settings({"Unit": {"RequiresMountsFor": ["/srv/a b"]}})
    second = check_unit_settings({"Unit": {"RequiresMountsFor": ["/srv/c", "/srv/a b"]}})
    assert merge_settings(first, second) == {"Unit": {"RequiresMountsFor": '"/srv/a b" /srv/c'}}


def test_merge_with_nothing():
    assert merge_settings(None, None) is None
    assert merge_settings({"Automount": {}}, None) == {"Automount": {}}
    assert merge_settings(None, {"Mount": {"TimeoutSec": "1"}}) == {"Mount": {"TimeoutSec": "1"}}


@pytest.mark.parametrize("first, second, message", [
    ({"Mount": {"TimeoutSec": "30"}}, {"Mount": {"TimeoutSec": "20"}},
     "unit_settings.Mount.TimeoutSec (30) and boot_options x-systemd.mount-timeout=20 disagree; give it once"),
    ({"Automount": {"TimeoutIdleSec": "1min"}}, {"Automount": {"TimeoutIdleSec": "30"}},
     "unit_settings.Automount.TimeoutIdleSec (1min) and boot_options x-systemd.idle-timeout=30 disagree; give it once"),
    ({"Mount": {"ReadWriteOnly": "no"}}, {"Mount": {"ReadWriteOnly": "yes"}},
     "unit_settings.Mount.ReadWriteOnly (no) and boot_options x-systemd.rw-only disagree; give it once"),
])
def test_merge_disagreements_name_both_fields(first, second, message):
    assert _error(merge_settings, first, second) == message


def test_merge_disagreement_with_other_names():
    message = _error(merge_settings, {"Unit": {"Description": "a"}}, {"Unit": {"Description": "b"}}, "defaults",
                     "unit_settings")
    assert message == "defaults.Unit.Description (a) and unit_settings.Unit.Description (b) disagree; give it once"


def test_merge_with_carried_options():
    declared = check_unit_settings({"Mount": {"TimeoutSec": 30}, "Unit": {"After": ["a.service"]}})
    carried, kept = options_to_settings(["nofail", "x-systemd.mount-timeout=30", "x-systemd.requires=b.service"])
    assert kept == ["nofail"]
    assert merge_settings(declared, carried) == {
        "Mount": {"TimeoutSec": "30"}, "Unit": {"After": "a.service b.service", "Requires": "b.service"}}


@pytest.mark.parametrize("settings, expected", [
    (None, [("wants", "local-fs.target")]),
    ({}, [("wants", "local-fs.target")]),
    ({"Install": {}}, [("wants", "local-fs.target")]),
    ({"Mount": {"TimeoutSec": "3"}}, [("wants", "local-fs.target")]),
    ({"Install": {"WantedBy": "multi-user.target"}}, [("wants", "multi-user.target")]),
    ({"Install": {"WantedBy": "a.target b.target", "RequiredBy": "c.target"}},
     [("wants", "a.target"), ("wants", "b.target"), ("requires", "c.target")]),
    ({"Install": {"RequiredBy": "local-fs.target"}}, [("requires", "local-fs.target")]),
    ({"Install": {"UpheldBy": "a.target"}}, [("upholds", "a.target")]),
])
def test_targets(settings, expected):
    assert targets(settings) == expected
