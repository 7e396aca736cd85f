# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Declared unit settings (the ``unit_settings`` parameter), and boot behaviour
carried between fstab options and unit settings. Pure.

``unit_settings`` maps a unit file section (:data:`SECTIONS`) to its
settings. :func:`check_unit_settings` checks every key against
:data:`KEYS` (the keys systemd 257 defines for that section, see
systemd.unit(5), systemd.mount(5), systemd.automount(5)) and turns every
value into the text that follows ``Key=`` on a unit file line: booleans
``yes``/``no``, modes four octal digits, lists one line of words, and a
literal ``%`` written ``%%`` (so specifiers are not available). That form
compares as it stands with ``_formats.unit_file.Effective.settings``;
write it as it is, without escaping it again.

:func:`options_to_settings` and :func:`settings_to_options` carry boot
behaviour between the two ways an overlay is persisted, with the
semantics of systemd-fstab-generator (systemd.mount(5), "fstab"):
``x-systemd.automount``, ``x-systemd.mount-timeout=``, ``x-systemd.requires=``
and the rest become unit settings, and back.
"""

import difflib
import math
import re
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError
from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.mount_data import (
    REQUIRES_MOUNTS_FOR,
    requires_mounts_for_option,
    split_unit_words,
)
from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.unit_file import (
    ASSERTS,
    CONDITIONS,
    LIST_KEYS,
    join_values,
    split_value,
)
from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.unit_syntax import (
    check_unit_value,
    escape_path,
    hash_long_name,
    unit_name_for,
)

SECTIONS = ("Unit", "Mount", "Automount", "Install")

# Kinds of value. The last three are lists: a YAML list (or one string, one
# item), written as words on one line.
BOOL = "bool"     # true/false, yes/no, on/off, 1/0 -> yes or no
TIME = "time"     # seconds, or a systemd time span ("1min 30s", "500ms", "infinity")
INT = "int"       # a decimal integer
MODE = "mode"     # file mode bits -> four octal digits
STR = "str"       # one value as it stands
LIST = "list"     # words (quoted when they hold blanks or quotes)
UNITS = "units"   # unit names (a.service b.target)
PATHS = "paths"   # absolute paths (quoted when they hold blanks or quotes)
LIST_KINDS = frozenset((LIST, UNITS, PATHS))


def _table(*groups):
    return {name: kind for kind, names in groups for name in names.split()}


KEYS = {
    # systemd.unit(5), [Unit].
    "Unit": _table(
        (STR, "Description SourcePath OnFailureJobMode OnSuccessJobMode CollectMode FailureAction "
              "SuccessAction JobTimeoutAction JobTimeoutRebootArgument StartLimitAction RebootArgument"),
        (LIST, "Documentation"),
        (UNITS, "Wants Requires Requisite BindsTo PartOf Upholds Conflicts Before After OnFailure OnSuccess "
                "PropagatesReloadTo ReloadPropagatedFrom PropagatesStopTo StopPropagatedFrom JoinsNamespaceOf"),
        (PATHS, "RequiresMountsFor WantsMountsFor"),
        (BOOL, "StopWhenUnneeded RefuseManualStart RefuseManualStop AllowIsolate DefaultDependencies "
               "IgnoreOnIsolate SurviveFinalKillSignal"),
        (TIME, "JobTimeoutSec JobRunningTimeoutSec StartLimitIntervalSec"),
        (INT, "StartLimitBurst FailureActionExitStatus SuccessActionExitStatus"),
        # One condition each: a unit file line holds one.
        (STR, " ".join(["Condition" + name for name in CONDITIONS] + ["Assert" + name for name in ASSERTS])),
    ),
    "Mount": _table(
        # systemd.mount(5), [Mount] (What=, Where=, Type=, Options= are the module's: see OWNED).
        (BOOL, "SloppyOptions LazyUnmount ReadWriteOnly ForceUnmount"),
        (MODE, "DirectoryMode"),
        (TIME, "TimeoutSec"),
        # A mount unit also takes the settings of systemd.exec(5), systemd.kill(5) and
        # systemd.resource-control(5) for the mount(8) process it runs. These are the
        # common ones that leave the mount visible; the sandboxing settings
        # (PrivateMounts=, ProtectSystem=, ...) are left out: mount(8) would then mount
        # the overlay in a namespace of its own, where nobody sees it.
        (STR, "User Group IOSchedulingClass CPUSchedulingPolicy CPUAffinity StandardOutput StandardError "
              "SyslogIdentifier SyslogFacility SyslogLevel LogLevelMax EnvironmentFile TimerSlackNSec "
              "SELinuxContext AppArmorProfile SmackProcessLabel"),
        (STR, "LimitCPU LimitFSIZE LimitDATA LimitSTACK LimitCORE LimitRSS LimitNOFILE LimitAS LimitNPROC "
              "LimitMEMLOCK LimitLOCKS LimitSIGPENDING LimitMSGQUEUE LimitNICE LimitRTPRIO LimitRTTIME"),
        (INT, "Nice OOMScoreAdjust IOSchedulingPriority CPUSchedulingPriority LogRateLimitBurst"),
        (MODE, "UMask"),
        (TIME, "LogRateLimitIntervalSec"),
        (LIST, "Environment PassEnvironment UnsetEnvironment SupplementaryGroups"),
        # systemd.kill(5).
        (STR, "KillMode KillSignal RestartKillSignal FinalKillSignal WatchdogSignal"),
        (BOOL, "SendSIGHUP SendSIGKILL"),
        # systemd.resource-control(5).
        (STR, "Slice CPUWeight StartupCPUWeight CPUQuota AllowedCPUs StartupAllowedCPUs AllowedMemoryNodes "
              "StartupAllowedMemoryNodes MemoryMin MemoryLow StartupMemoryLow MemoryHigh StartupMemoryHigh "
              "MemoryMax StartupMemoryMax MemorySwapMax StartupMemorySwapMax MemoryZSwapMax "
              "StartupMemoryZSwapMax TasksMax DevicePolicy DeviceAllow IODeviceWeight IOReadBandwidthMax "
              "IOWriteBandwidthMax IOReadIOPSMax IOWriteIOPSMax IODeviceLatencyTargetSec ManagedOOMSwap "
              "ManagedOOMMemoryPressure ManagedOOMMemoryPressureLimit ManagedOOMPreference"),
        (BOOL, "CPUAccounting MemoryAccounting MemoryZSwapWriteback TasksAccounting IOAccounting IPAccounting"),
        (INT, "IOWeight StartupIOWeight"),
        (TIME, "CPUQuotaPeriodSec"),
        (LIST, "IPAddressAllow IPAddressDeny"),
    ),
    # systemd.automount(5) (Where= is the module's).
    "Automount": _table(
        (STR, "ExtraOptions"),
        (MODE, "DirectoryMode"),
        (TIME, "TimeoutIdleSec"),
    ),
    # systemd.unit(5), [Install] (Alias= and DefaultInstance= do not apply: see OWNED).
    "Install": _table(
        (UNITS, "WantedBy RequiredBy UpheldBy Also"),
    ),
}

_BOUNDS = {
    ("Unit", "StartLimitBurst"): (0, None),
    ("Unit", "FailureActionExitStatus"): (0, 255),
    ("Unit", "SuccessActionExitStatus"): (0, 255),
    ("Mount", "Nice"): (-20, 19),
    ("Mount", "OOMScoreAdjust"): (-1000, 1000),
    ("Mount", "IOSchedulingPriority"): (0, 7),
    ("Mount", "CPUSchedulingPriority"): (0, 99),
    ("Mount", "LogRateLimitBurst"): (0, None),
    ("Mount", "IOWeight"): (1, 10000),
    ("Mount", "StartupIOWeight"): (1, 10000),
}

# Keys the module writes itself, or that cannot apply to a mount unit: what to do instead.
OWNED = {
    ("Mount", "What"): "the module writes What=overlay itself: remove it",
    ("Mount", "Where"): "the module writes it from path: use path",
    ("Mount", "Type"): "the type is always overlay: remove it",
    ("Mount", "Options"): ("use options for overlay options and per-mount flags, and boot_options for the "
                           "others (such as nofail)"),
    ("Mount", "WorkingDirectory"): ("the module sets it when it mounts through short links (see method and "
                                    "links_dir): remove it"),
    ("Automount", "Where"): "the module writes it from path: use path",
    ("Install", "Alias"): "systemd cannot alias mount or automount units: remove it",
    ("Install", "DefaultInstance"): "mount and automount units cannot be templates: remove it",
}

_MAN_PAGES = {"Unit": "systemd.unit(5)", "Install": "systemd.unit(5)", "Automount": "systemd.automount(5)",
              "Mount": "systemd.mount(5), systemd.exec(5), systemd.kill(5), systemd.resource-control(5)"}

_TRUE = frozenset(("1", "yes", "y", "true", "t", "on"))
_FALSE = frozenset(("0", "no", "n", "false", "f", "off"))

# parse_time()'s units (src/basic/time-util.c), in microseconds.
_TIME_UNITS = {
    "seconds": 10 ** 6, "second": 10 ** 6, "sec": 10 ** 6, "s": 10 ** 6,
    "minutes": 60 * 10 ** 6, "minute": 60 * 10 ** 6, "min": 60 * 10 ** 6, "m": 60 * 10 ** 6,
    "months": 2629800 * 10 ** 6, "month": 2629800 * 10 ** 6, "M": 2629800 * 10 ** 6,
    "msec": 1000, "ms": 1000, "usec": 1, "us": 1, "\u03bcs": 1, "\u00b5s": 1,
    "hours": 3600 * 10 ** 6, "hour": 3600 * 10 ** 6, "hr": 3600 * 10 ** 6, "h": 3600 * 10 ** 6,
    "days": 86400 * 10 ** 6, "day": 86400 * 10 ** 6, "d": 86400 * 10 ** 6,
    "weeks": 604800 * 10 ** 6, "week": 604800 * 10 ** 6, "w": 604800 * 10 ** 6,
    "years": 31557600 * 10 ** 6, "year": 31557600 * 10 ** 6, "y": 31557600 * 10 ** 6,
}
_NUMBER = r"(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)"
_UNIT_ALTERNATIVES = "|".join(re.escape(unit) for unit in sorted(_TIME_UNITS, key=len, reverse=True))
_SPAN_PART = re.compile(r"[ \t]*(%s)[ \t]*(%s)" % (_NUMBER, _UNIT_ALTERNATIVES))
_TIME_SPAN = re.compile(r"(?:%s)+|%s" % (_SPAN_PART.pattern, _NUMBER))
_INTEGER = re.compile(r"[+-]?[0-9]+")
_OCTAL = re.compile(r"[0-7]{1,5}")

_UNIT_TYPES = frozenset(("service", "socket", "device", "mount", "automount", "swap", "target", "path",
                         "timer", "slice", "scope"))
_UNIT_NAME_CHARS = re.compile(r"[A-Za-z0-9:_.\\@-]+")
_UNIT_NAME_MAX = 255


def check_unit_settings(value: Any, field: str = "unit_settings") -> Optional[Dict[str, Dict[str, str]]]:
    """``value`` (the parameter) checked and normalised: section -> key -> unit file value text.

    None stays None (nothing declared). An empty section is kept (an empty
    ``Automount`` asks for an automount unit with its defaults); an empty
    list leaves its key out. Raises OverlayError naming
    ``unit_settings.<Section>.<Key>`` and the fix.
    """
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise OverlayError(
            "%s: expected a mapping from section (%s) to settings, got %s"
            % (field, ", ".join(SECTIONS), type(value).__name__))
    result = {}
    for section, settings in value.items():
        _check_section(section, field)
        if settings is None:
            settings = {}
        if not isinstance(settings, Mapping):
            raise OverlayError(
                "%s.%s: expected a mapping of %s settings, got %s"
                % (field, section, section, type(settings).__name__))
        checked = result[section] = {}
        for key, item in settings.items():
            key_field = "%s.%s.%s" % (field, section, key)
            _check_key(section, key, field, key_field)
            text = check_setting(section, key, item, key_field)
            if text is not None:
                checked[key] = text
    return result


def _closest(word, choices):
    """The choice ``word`` most likely meant, or None."""
    for choice in choices:
        if choice.lower() == word.lower():
            return choice
    found = difflib.get_close_matches(word, list(choices), n=1)
    return found[0] if found else None


def _closest_key(section, key):
    """``did you mean`` text for an unknown ``key`` of ``section``: the nearest key of any section."""
    # The same key in another case first, then the best difflib ratio; ties go to ``section``.
    candidates = [(other, name) for other in (section,) + tuple(s for s in SECTIONS if s != section)
                  for name in KEYS[other]]
    found = next(((other, name) for other, name in candidates if name.lower() == key.lower()), None)
    if found is None:
        scored = [(difflib.SequenceMatcher(None, key, name).ratio(), -index, other, name)
                  for index, (other, name) in enumerate(candidates)]
        best = max(scored) if scored else None
        found = (best[2], best[3]) if best and best[0] >= 0.6 else None
    if found is None:
        return None
    return found[1] if found[0] == section else "%s (a [%s] setting)" % (found[1], found[0])


def _check_section(section, field):
    if section in SECTIONS:
        return
    if not isinstance(section, str):
        raise OverlayError("%s: section names are strings (%s), got %r" % (field, ", ".join(SECTIONS), section))
    hint = _closest(section, SECTIONS)
    raise OverlayError(
        "%s.%s: no such section; the sections are %s (case matters)%s"
        % (field, section, ", ".join(SECTIONS), "; did you mean %s?" % hint if hint else ""))


def _check_key(section, key, field, key_field):
    if not isinstance(key, str):
        raise OverlayError("%s.%s: setting names are strings, got %r" % (field, section, key))
    if (section, key) in OWNED:
        raise OverlayError("%s: %s" % (key_field, OWNED[(section, key)]))
    if key in KEYS[section]:
        return
    homes = [other for other in SECTIONS if key in KEYS[other] or (other, key) in OWNED]
    if homes:
        raise OverlayError(
            "%s: %s is not a [%s] setting; it belongs in %s: give it as %s.%s.%s"
            % (key_field, key, section, homes[0], field, homes[0], key))
    hint = _closest_key(section, key)
    raise OverlayError(
        "%s: no such [%s] setting (see %s)%s"
        % (key_field, section, _MAN_PAGES[section], "; did you mean %s?" % hint if hint else ""))


def check_setting(section: str, key: str, value: Any, field: str) -> Optional[str]:
    """One value of :data:`KEYS` ``[section][key]`` as unit file text (None: an empty list, leave the key out)."""
    kind = KEYS[section][key]
    if value is None:
        raise OverlayError("%s: no value; give one, or remove the setting" % field)
    if kind in LIST_KINDS:
        return _list(section, key, kind, value, field)
    if isinstance(value, (list, tuple, Mapping)):
        raise OverlayError(
            "%s: %s takes one value, not a %s; give one %s" % (field, key, type(value).__name__, _KIND_NAMES[kind]))
    if kind == BOOL:
        text = _bool(field, value)
    elif kind == TIME:
        text = check_time_span(field, value)
    elif kind == INT:
        text = _int(field, value, _BOUNDS.get((section, key), (None, None)))
    elif kind == MODE:
        text = _mode(field, value)
    else:
        text = _str(field, value)
    check_unit_value(field, text)
    return text.replace("%", "%%")


_KIND_NAMES = {BOOL: "boolean", TIME: "time span", INT: "integer", MODE: "octal mode such as '0755'",
               STR: "string", LIST: "list", UNITS: "list of unit names", PATHS: "list of absolute paths"}


def _bool(field, value):
    if isinstance(value, bool) or (isinstance(value, int) and value in (0, 1)):
        return "yes" if value else "no"
    if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
        return "yes" if value.lower() in _TRUE else "no"
    raise OverlayError("%s: %r is not a boolean; give true or false" % (field, value))


def check_time_span(field: str, value: Any) -> str:
    """``value`` as a systemd time span: an integer or decimal of seconds, or text such as
    ``1min 30s``, ``500ms``, ``infinity`` (kept as written)."""
    if isinstance(value, bool):
        text = None
    elif isinstance(value, int) and value >= 0:
        text = str(value)
    elif isinstance(value, float) and math.isfinite(value) and value >= 0:
        text = ("%.6f" % value).rstrip("0").rstrip(".")
    elif isinstance(value, str) and (value == "infinity" or _TIME_SPAN.fullmatch(value)):
        text = value
    else:
        text = None
    if text is None:
        raise OverlayError(
            "%s: %r is not a time span; give seconds (30) or a span such as '1min 30s', '500ms' or "
            "'infinity'" % (field, value))
    return text


def time_span_usec(text: str) -> float:
    """The length of a span :func:`check_time_span` accepted, in microseconds (inf for infinity)."""
    if text == "infinity":
        return math.inf
    if "." not in text and text.isdigit():
        return int(text) * 10 ** 6
    parts = _SPAN_PART.findall(text)
    if not parts:
        return round(float(text) * 10 ** 6)
    return sum(round(float(number) * _TIME_UNITS[unit]) for number, unit in parts)


def _int(field, value, bounds):
    if isinstance(value, str) and _INTEGER.fullmatch(value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise OverlayError("%s: %r is not an integer; give a whole number" % (field, value))
    low, high = bounds
    if (low is not None and value < low) or (high is not None and value > high):
        raise OverlayError(
            "%s: %d is out of range; give a number from %s to %s"
            % (field, value, low, "any higher" if high is None else high))
    return str(value)


def _mode(field, value):
    number = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and _OCTAL.fullmatch(value):
        number = int(value, 8)
    if number is None or not 0 <= number <= 0o7777:
        raise OverlayError(
            "%s: %r is not a file mode; give octal digits as a string such as '0755' (an unquoted 755 "
            "in YAML is the decimal number 755)" % (field, value))
    return "%04o" % number


def _str(field, value):
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise OverlayError("%s: %r is not a string; give the value as text" % (field, value))
    text = str(value)
    if not text:
        raise OverlayError("%s: the value is empty; give one, or remove the setting" % field)
    return text


def _list(section, key, kind, value, field):
    if isinstance(value, str):
        items = [(field, value)]
    elif isinstance(value, (list, tuple)):
        items = [("%s[%d]" % (field, index), item) for index, item in enumerate(value)]
    else:
        raise OverlayError(
            "%s: expected a %s (or one string), got %s" % (field, _KIND_NAMES[kind], type(value).__name__))
    words = []
    for item_field, item in items:
        word = _list_item(kind, item, item_field)
        if word not in words:
            words.append(word)
    if not words:
        return None
    text = join_setting(section, key, words)
    check_unit_value(field, text)
    return text


def _list_item(kind, item, field):
    if isinstance(item, bool) or not isinstance(item, (str, int)) or (kind != LIST and not isinstance(item, str)):
        raise OverlayError("%s: %r is not a string; give each item as text" % (field, item))
    item = str(item)
    if not item:
        raise OverlayError("%s: an empty item; remove it" % field)
    if kind == UNITS:
        check_unit_name(field, item)
    elif kind == PATHS and not item.startswith("/"):
        raise OverlayError("%s: %r is not an absolute path; give one starting with /" % (field, item))
    return item


def check_unit_name(field: str, name: str) -> None:
    """Refuse ``name`` unless it is one unit name with its type suffix (``foo.service``)."""
    problem = None
    stem, _dot, suffix = name.rpartition(".")
    if not _UNIT_NAME_CHARS.fullmatch(name):
        problem = "holds characters a unit name cannot (only letters, digits and :-_.\\@)"
    elif not stem or suffix not in _UNIT_TYPES:
        problem = "has no unit type suffix such as .service, .mount or .target"
    elif len(name.encode("utf-8")) > _UNIT_NAME_MAX:
        problem = "is longer than %d bytes" % _UNIT_NAME_MAX
    if problem:
        raise OverlayError(
            "%s: %r is not a unit name: it %s; give each unit as one item, e.g. 'network-online.target'"
            % (field, name, problem))


def setting_items(section: str, key: str, value: str) -> List[str]:
    """The items of a normalised list setting as plain text (``%%`` read as ``%``)."""
    return [item.replace("%%", "%") for item in split_value(section, key, value)]


def join_setting(section: str, key: str, items: Sequence[str]) -> str:
    """The normalised value of a list setting holding ``items`` (plain text); :func:`setting_items` reverses it."""
    return join_values(section, key, [item.replace("%", "%%") for item in items])


def _is_list(section, key):
    kind = KEYS.get(section, {}).get(key)
    return kind in LIST_KINDS if kind is not None else (section, key) in LIST_KEYS


# Boot behaviour: fstab option -> unit settings (systemd-fstab-generator).
AUTOMOUNT_OPTIONS = ("x-systemd.automount", "comment=systemd.automount")
RW_ONLY_OPTION = "x-systemd.rw-only"
_TIME_OPTIONS = {
    "x-systemd.mount-timeout": ("Mount", "TimeoutSec"),
    "x-systemd.idle-timeout": ("Automount", "TimeoutIdleSec"),
}
# Options whose value names a unit (or a path, turned into its unit as the generator does).
_DEPENDENCY_OPTIONS = {
    "x-systemd.requires": (("Unit", "Requires"), ("Unit", "After")),
    "x-systemd.after": (("Unit", "After"),),
    "x-systemd.before": (("Unit", "Before"),),
}
# Options whose value is a unit name as it stands (the generator links into it).
_INSTALL_OPTIONS = {
    "x-systemd.wanted-by": ("Install", "WantedBy"),
    "x-systemd.required-by": ("Install", "RequiredBy"),
}
WANTS_MOUNTS_FOR = "x-systemd.wants-mounts-for"
_PATH_OPTIONS = {
    REQUIRES_MOUNTS_FOR: ("Unit", "RequiresMountsFor"),
    WANTS_MOUNTS_FOR: ("Unit", "WantsMountsFor"),
}
REFUSED_OPTIONS = {
    "x-systemd.device-timeout": "waits for the device of the file system, and an overlay has no device",
    "x-systemd.makefs": "makes a file system on the device, and an overlay has no device",
    "x-systemd.growfs": "grows the file system on its device, and an overlay has no device",
    "x-systemd.pcrfs": "measures the file system's device identity into a TPM PCR, and an overlay has no device",
    "x-systemd.device-bound": "binds the mount to its device, and an overlay has no device",
    "x-systemd.validatefs": "checks a mount point recorded in the file system, and an overlay records none",
    "x-initrd.mount": ("asks the initrd to mount it, before the root file system and this collection's "
                       "units exist; the collection manages overlays of the running system only"),
}
# The fstab option of a single-valued setting, for messages.
_SINGLE_OPTIONS = {target: name for name, target in _TIME_OPTIONS.items()}
_SINGLE_OPTIONS[("Mount", "ReadWriteOnly")] = RW_ONLY_OPTION
_GENERATOR_ESCAPE = re.compile(r"\\([,\\])")


class _Carried:
    """Unit settings gathered from fstab options."""

    def __init__(self, field):
        self.field = field
        self.lists = {}
        self.singles = {}
        self.automount = False

    def add(self, target, items):
        found = self.lists.setdefault(target, [])
        found.extend(item for item in items if item not in found)

    def set(self, target, text, option):
        previous = self.singles.get(target)
        if previous is not None and previous[0] != text:
            raise OverlayError(
                "%s: %s is given twice, as %r and %r; give it once"
                % (self.field, option.partition("=")[0], previous[1], option))
        self.singles[target] = (text, option)

    def settings(self):
        result = {}
        for (section, key), items in self.lists.items():
            result.setdefault(section, {})[key] = join_setting(section, key, items)
        for (section, key), (text, _option) in self.singles.items():
            result.setdefault(section, {})[key] = text
        if self.automount:
            result.setdefault("Automount", {})
        return {section: result[section] for section in SECTIONS if section in result}


def options_to_settings(options: Sequence[str], field: str = "boot_options") -> Tuple[Dict[str, Dict[str, str]], List[str]]:
    """Split fstab boot options (``noauto``/``auto`` already taken out) into unit settings and the
    options a unit's ``Options=`` keeps.

    The settings are normalised as :func:`check_unit_settings` gives them;
    a unit given as a path becomes its unit name, and one without a type
    suffix gets ``.mount``, as the generator makes them. Times keep their
    spelling. Options that need a device, or the initrd, are refused;
    ``x-systemd.idle-timeout=`` needs ``x-systemd.automount``. The others
    (``nofail``, ``_netdev``, ``x-mount.*``, ...) are kept, in order.
    """
    carried = _Carried(field)
    kept = []
    for option in options:
        if not _carry(carried, option, field):
            kept.append(option)
    if ("Automount", "TimeoutIdleSec") in carried.singles and not carried.automount:
        raise OverlayError(
            "%s: %r sets the automount's idle time, but there is no x-systemd.automount: add it, or remove "
            "the idle timeout" % (field, carried.singles[("Automount", "TimeoutIdleSec")][1]))
    return carried.settings(), kept


def _carry(carried, option, field):
    """Put ``option`` into ``carried``; False when it stays a mount option."""
    name, sep, value = option.partition("=")
    if option in AUTOMOUNT_OPTIONS or option == RW_ONLY_OPTION:
        if option == RW_ONLY_OPTION:
            carried.set(("Mount", "ReadWriteOnly"), "yes", option)
        else:
            carried.automount = True
        return True
    if name in REFUSED_OPTIONS:
        raise OverlayError("%s: %r %s: remove it" % (field, option, REFUSED_OPTIONS[name]))
    if name not in _TIME_OPTIONS and name not in _DEPENDENCY_OPTIONS and name not in _INSTALL_OPTIONS \
            and name not in _PATH_OPTIONS:
        return False
    if not sep or not value:
        raise OverlayError("%s: %r needs a value (%s=VALUE)" % (field, option, name))
    option_field = "%s: %r" % (field, option)
    if name in _TIME_OPTIONS:
        carried.set(_TIME_OPTIONS[name], check_time_span(option_field, value), option)
    elif name in _DEPENDENCY_OPTIONS:
        unit = _dependency_unit(option_field, value)
        for target in _DEPENDENCY_OPTIONS[name]:
            carried.add(target, [unit])
    elif name in _INSTALL_OPTIONS:
        check_unit_name(option_field, value)
        carried.add(_INSTALL_OPTIONS[name], [value])
    else:
        carried.add(_PATH_OPTIONS[name], _option_paths(option_field, value))
    return True


def _dependency_unit(field, value):
    """The unit systemd-fstab-generator makes of an ``x-systemd.requires=``/``after=``/``before=`` value."""
    if value.startswith("/"):
        try:
            if value.startswith(("/dev/", "/sys/")):
                return hash_long_name(escape_path(value) + ".device")
            return unit_name_for(value)
        except OverlayError as error:
            raise OverlayError("%s: %s" % (field, error.message)) from None
    stem, dot, suffix = value.rpartition(".")
    if _UNIT_NAME_CHARS.fullmatch(value) and not (dot and stem and suffix in _UNIT_TYPES):
        value += ".mount"  # unit_name_mangle_with_suffix() adds the suffix it was given
    check_unit_name(field, value)
    return value


def _option_paths(field, value):
    """The paths of an ``x-systemd.requires-mounts-for=`` value, as the generator reads them."""
    paths = split_unit_words(_GENERATOR_ESCAPE.sub(r"\1", value))
    if not paths:
        raise OverlayError("%s: no path in it (an unbalanced quote?); give absolute paths" % field)
    for path in paths:
        if not path.startswith("/"):
            raise OverlayError("%s: %r is not an absolute path; give one starting with /" % (field, path))
    return paths


def settings_to_options(settings: Mapping[str, Mapping[str, str]], field: str = "unit_settings") -> List[str]:
    """The fstab options that carry normalised ``settings``; the reverse of :func:`options_to_settings`.

    Raises OverlayError naming every setting without an fstab form. A
    ``Requires=`` unit needs the same unit in ``After=`` (fstab's
    ``x-systemd.requires=`` orders after it too); ``WantedBy=local-fs.target``
    alone is the default and gives no option.
    """
    unit, mount, install = (settings.get(name) or {} for name in ("Unit", "Mount", "Install"))
    automount = settings.get("Automount")
    options = []
    if automount is not None:
        options.append(AUTOMOUNT_OPTIONS[0])
    for name, (section, key) in _TIME_OPTIONS.items():
        if key in (settings.get(section) or {}):
            options.append("%s=%s" % (name, settings[section][key]))
    if mount.get("ReadWriteOnly") == "yes":
        options.append(RW_ONLY_OPTION)
    problems = []
    options += _dependency_options(unit, field, problems)
    options += _install_options(install)
    options += _mounts_for_options(unit, field, problems)
    carried = set(_SINGLE_OPTIONS) | set(_DEPENDENCY_KEYS) | set(_PATH_OPTIONS.values()) | set(
        _INSTALL_OPTIONS.values())
    unmapped = ["%s.%s.%s" % (field, section, key) for section, keys in settings.items() for key in (keys or {})
                if (section, key) not in carried]
    if unmapped:
        problems.insert(0, "%s %s no fstab form: persist the overlay as a unit (persist: systemd) or remove %s"
                        % (", ".join(unmapped), "has" if len(unmapped) == 1 else "have",
                           "the setting" if len(unmapped) == 1 else "the settings"))
    if problems:
        raise OverlayError("; ".join(problems))
    return options


_DEPENDENCY_KEYS = (("Unit", "Requires"), ("Unit", "After"), ("Unit", "Before"))


def _dependency_options(unit, field, problems):
    requires = setting_items("Unit", "Requires", unit.get("Requires", ""))
    after = setting_items("Unit", "After", unit.get("After", ""))
    options = []
    for name in requires:
        if name in after:
            options.append("x-systemd.requires=" + name)
        else:
            problems.append(
                "%s.Unit.Requires=%s has no fstab form without After=%s (x-systemd.requires= also orders the "
                "mount after it): add it to After, persist the overlay as a unit (persist: systemd), or remove "
                "it" % (field, name, name))
    options += ["x-systemd.after=" + name for name in after if name not in requires]
    options += ["x-systemd.before=" + name for name in setting_items("Unit", "Before", unit.get("Before", ""))]
    return options


def _install_options(install):
    wanted = setting_items("Install", "WantedBy", install.get("WantedBy", ""))
    required = setting_items("Install", "RequiredBy", install.get("RequiredBy", ""))
    if wanted == ["local-fs.target"] and not required:
        return []  # the default
    return ["x-systemd.wanted-by=" + name for name in wanted] + ["x-systemd.required-by=" + name for name in required]


def _mounts_for_options(unit, field, problems):
    options = []
    for name, (section, key) in _PATH_OPTIONS.items():
        for path in setting_items(section, key, unit.get(key, "")):
            if '"' in path or "\\" in path:
                problems.append(
                    "%s.%s.%s: %r has a double quote or backslash, which an fstab option cannot carry: persist "
                    "the overlay as a unit (persist: systemd)" % (field, section, key, path))
                continue
            options.append(name + requires_mounts_for_option(path)[len(REQUIRES_MOUNTS_FOR):])
    return options


def merge_settings(first: Optional[Mapping[str, Mapping[str, str]]], second: Optional[Mapping[str, Mapping[str, str]]],
                   first_name: str = "unit_settings", second_name: str = "boot_options") -> Optional[Dict[str, Dict[str, str]]]:
    """``first`` and ``second`` (normalised) in one: list settings united in order, single ones must agree.

    None when both are None. A disagreement names both sources: a setting
    from a source named ``boot_options`` is shown as its fstab option.
    """
    if first is None and second is None:
        return None
    result = {section: dict(keys or {}) for section, keys in (first or {}).items()}
    for section, keys in (second or {}).items():
        merged = result.setdefault(section, {})
        for key, value in (keys or {}).items():
            mine = merged.get(key)
            if mine is None:
                merged[key] = value
            elif _is_list(section, key):
                items = setting_items(section, key, mine)
                items += [item for item in setting_items(section, key, value) if item not in items]
                merged[key] = join_setting(section, key, items)
            elif not _same(section, key, mine, value):
                raise OverlayError(
                    "%s and %s disagree; give it once"
                    % (_describe(first_name, section, key, mine), _describe(second_name, section, key, value)))
    return result


def _same(section, key, one, other):
    if one == other:
        return True
    if KEYS.get(section, {}).get(key) == TIME:
        try:
            return time_span_usec(one) == time_span_usec(other)
        except (KeyError, ValueError):
            return False
    return False


def _describe(name, section, key, value):
    option = _SINGLE_OPTIONS.get((section, key))
    if name == "boot_options" and option is not None:
        return "boot_options " + (option if option == RW_ONLY_OPTION else "%s=%s" % (option, value))
    return "%s.%s.%s (%s)" % (name, section, key, value)


def targets(settings: Optional[Mapping[str, Mapping[str, str]]] = None) -> List[Tuple[str, str]]:
    """The links ``systemctl enable`` makes for the [Install] section: ``[(kind, target)]``.

    ``kind`` is ``wants`` (WantedBy=), ``requires`` (RequiredBy=) or
    ``upholds`` (UpheldBy=), the ``.wants/``, ``.requires/`` or ``.upholds/``
    directory of ``target``. Without any of them (or without settings),
    ``[("wants", "local-fs.target")]``, what the module writes by default.
    """
    install = (settings or {}).get("Install") or {}
    links = []
    for key, kind in (("WantedBy", "wants"), ("RequiredBy", "requires"), ("UpheldBy", "upholds")):
        links += [(kind, name) for name in setting_items("Install", key, install.get(key, ""))]
    return links or [("wants", "local-fs.target")]
