# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Overlay mount options: names, values, defaults and the kernel's resolution rules.

The kernel shows in mountinfo only the options whose value differs from the
module defaults (/sys/module/overlay/parameters), and it silently adjusts
some options when others imply them (metacopy=on turns redirect_dir on, and
so on; see ovl_fs_params_verify in fs/overlayfs/params.c). Comparing the
declared option strings with the shown ones would report drift forever, so
both sides are resolved into one effective configuration and compared there.
"""

from collections import namedtuple
from typing import Any, Collection, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from ansible_collections.overlayfs.mounts.plugins.module_utils._model.errors import OverlayError

ON_OFF = ("on", "off")


class Parameter(namedtuple("Parameter", "name kconfig value")):
    """A file of /sys/module/overlay/parameters that sets an option's default.

    ``name`` is the file, ``kconfig`` its value (True for ``Y``) while the
    overlay module is not loaded, ``value`` the option's default when the
    file reads ``Y``.
    """

    __slots__ = ()


class Option(namedtuple("Option", "name values default parameters")):
    """One overlay mount option: a row of :data:`OPTIONS`.

    ``values`` are the allowed values, or None for a flag (given as just its
    name). ``default`` is the kernel's default: False for a flag, else the
    value it takes when none of ``parameters`` reads ``Y``; the first that
    does gives its own ``value`` instead.
    """

    __slots__ = ()

    def __new__(cls, name: str, values: Optional[Tuple[str, ...]], default: Any,
                parameters: Iterable[Parameter] = ()) -> "Option":
        return super().__new__(cls, name, values, default, tuple(parameters))


# Every overlay option, in the kernel's display order (mountinfo, and the
# order options are written in). Adding a row is all a new option needs here;
# every lookup below reads this table.
OPTIONS = (
    Option("default_permissions", None, False),
    Option("redirect_dir", ("on", "follow", "nofollow", "off"), "nofollow",
           (Parameter("redirect_dir", False, "on"), Parameter("redirect_always_follow", True, "follow"))),
    Option("index", ON_OFF, "off", (Parameter("index", False, "on"),)),
    # Probed, not a parameter: defaults_from_parameters takes it (uuid_default).
    Option("uuid", ("on", "off", "null", "auto"), "auto"),
    Option("nfs_export", ON_OFF, "off", (Parameter("nfs_export", False, "on"),)),
    Option("xino", ("on", "off", "auto"), "off", (Parameter("xino_auto", False, "auto"),)),
    Option("metacopy", ON_OFF, "off", (Parameter("metacopy", False, "on"),)),
    Option("volatile", None, False),
    Option("userxattr", None, False),
    Option("verity", ("on", "off", "require"), "off"),
    # Linux 6.15+; fsync=volatile is the volatile flag (see parse_option).
    Option("fsync", ("auto", "strict", "volatile"), "auto"),
)

# ``(name, allowed values or None)`` in display order, for the modules that
# import the option names (derived from OPTIONS once, at import).
OPTION_VALUES = tuple((option.name, option.values) for option in OPTIONS)

# Given as their own parameters, never inside ``options``.
_LAYER_KEYS = {
    "lowerdir": "lowerdir", "lowerdir+": "lowerdir", "datadir+": "lowerdir",
    "upperdir": "upperdir", "workdir": "workdir",
}


def _row(name):
    """The OPTIONS row of ``name``, or None for a name overlayfs does not have."""
    for option in OPTIONS:
        if option.name == name:
            return option
    return None


def _position(name):
    return [option.name for option in OPTIONS].index(name)


def _kconfig(name):
    """The Kconfig default of an overlay module parameter, used while the module is not loaded."""
    for option in OPTIONS:
        for parameter in option.parameters:
            if parameter.name == name:
                return parameter.kconfig
    raise KeyError(name)


def defaults_from_parameters(parameters: Mapping[str, Any], uuid_default: str = "auto") -> Dict[str, Any]:
    """Effective default configuration from /sys/module/overlay/parameters values.

    ``parameters`` maps a parameter file name to its text (``Y``/``N``) or bool;
    missing names fall back to the Kconfig defaults. ``uuid_default`` is
    ``auto`` on kernels with the uuid modes (6.6+) and ``on`` before, where
    uuid was a plain on/off switch (probed, see _features.uuid_default).
    """
    def flag(name):
        value = parameters.get(name, _kconfig(name))
        if isinstance(value, bool):
            return value
        return str(value).strip().upper() in ("Y", "1", "ON", "TRUE")

    config = {}
    for option in OPTIONS:
        config[option.name] = next(
            (parameter.value for parameter in option.parameters if flag(parameter.name)), option.default)
    config["uuid"] = uuid_default
    # What an explicit redirect_dir=off turns into (6.5+ never shows "off").
    config["_redirect_off"] = "follow" if flag("redirect_always_follow") else "nofollow"
    # Kernels with uuid modes fall back to uuid=null without an upper dir.
    config["_uuid_null"] = uuid_default == "auto"
    return config


def parse_option(text: Any, field: str = "options") -> Tuple[str, Union[str, bool]]:
    """Split and check one declared option; return ``(name, value)``.

    ``value`` is True for a flag. Raises OverlayError naming the field and fix.
    """
    if not isinstance(text, str) or not text.strip():
        raise OverlayError("%s: an empty option was given; remove it" % field)
    text = text.strip()
    name, sep, value = text.partition("=")
    if name in _LAYER_KEYS:
        raise OverlayError(
            "%s: '%s' is set by the %s parameter of this module, not through options"
            % (field, text, _LAYER_KEYS[name]))
    option = _row(name)
    if option is None:
        raise OverlayError(
            "%s: '%s' is not an overlay mount option; valid options are %s"
            % (field, text, ", ".join(
                o.name if o.values is None else "%s=%s" % (o.name, "|".join(o.values)) for o in OPTIONS)))
    allowed = option.values
    if allowed is None:
        if sep:
            raise OverlayError("%s: '%s' is a flag and takes no value; write just '%s'" % (field, text, name))
        return name, True
    if not sep or value not in allowed:
        raise OverlayError(
            "%s: '%s' needs one of the values %s, as in '%s=%s'"
            % (field, text, ", ".join(allowed), name, allowed[0]))
    if (name, value) == ("fsync", "volatile"):
        # The kernel keeps one setting for both spellings.
        return "volatile", True
    return name, value


def parse_options(options: Optional[Iterable[str]], field: str = "options") -> List[Tuple[str, Union[str, bool]]]:
    """Check a declared option list; return an ordered dict-like list of pairs.

    The same option given twice with different values is an error, since the
    kernel would silently keep the last one.
    """
    chosen = {}
    for text in options or ():
        name, value = parse_option(text, field)
        other = {"volatile": "fsync", "fsync": "volatile"}.get(name)
        if other in chosen and (name == "fsync" or chosen[other] != "auto") and value != "auto":
            raise OverlayError(
                "%s: 'volatile' and 'fsync=%s' set the same thing differently; keep one"
                % (field, value if name == "fsync" else chosen[other]))
        if name in chosen and chosen[name] != value:
            raise OverlayError(
                "%s: '%s' is given twice with different values (%s and %s); keep one"
                % (field, name, format_option(name, chosen[name]), format_option(name, value)))
        chosen[name] = value
    return sorted(chosen.items(), key=lambda item: _position(item[0]))


def format_option(name: str, value: Union[str, bool]) -> str:
    """``name`` for a flag (``value`` True), else ``name=value``."""
    return name if value is True else "%s=%s" % (name, value)


def canonical_options(options: Optional[Iterable[str]], field: str = "options") -> List[str]:
    """Declared options as canonical strings in the kernel's order, deduplicated."""
    return [format_option(n, v) for n, v in parse_options(options, field)]


def resolve(pairs: Sequence[Tuple[str, Any]], defaults: Mapping[str, Any], has_upper: bool,
            field: str = "options") -> Dict[str, Any]:
    """The effective configuration the kernel ends up with for these options.

    Follows ovl_parse_param and ovl_fs_params_verify (Linux 6.18; the
    verity-implies-metacopy rule of 6.6 to 6.1x is left to compared_keys):
    explicit conflicts are
    errors (with the kernel's own wording of the pair), implied options are
    switched on, options that mean nothing without an upper dir are dropped.
    """
    config = dict(defaults)
    explicit = set()
    for name, value in pairs:
        explicit.add(name)
        if name == "redirect_dir" and value == "off":
            value = defaults["_redirect_off"]
        config[name] = value
    if not has_upper:
        _without_upper(config, defaults)
    _metacopy_rules(config, explicit, pairs, field)
    _nfs_export_rules(config, explicit, pairs, has_upper, field)
    if config["userxattr"]:
        _userxattr_rules(config, explicit, pairs, field)
    return config


def _conflict(field, text):
    return OverlayError("%s: conflicting options %s; the kernel refuses this combination" % (field, text))


def _without_upper(config, defaults):
    """What the kernel drops or changes for a mount without an upper dir (``resolve``)."""
    config["index"] = "off"
    config["volatile"] = False
    # uuid=on needs an upper fs (params.c); uuid=off needs one fs for
    # upper and lower, which a mount without upper never has (super.c):
    # the kernel falls back to uuid=null for both, or to on where it has
    # no null (before 6.6).
    if config["uuid"] in ("on", "off"):
        config["uuid"] = "null" if defaults.get("_uuid_null", True) else "on"
    if config["redirect_dir"] == "follow":
        config["redirect_dir"] = "on"


def _metacopy_rules(config, explicit, pairs, field):
    """metacopy=on needs redirect_dir=on (``resolve``)."""
    if config["metacopy"] == "on" and config["redirect_dir"] != "on":
        if "metacopy" in explicit and "redirect_dir" in explicit:
            raise _conflict(field, "metacopy=on,redirect_dir=%s" % _declared(pairs, "redirect_dir"))
        if "redirect_dir" in explicit:
            config["metacopy"] = "off"
        else:
            config["redirect_dir"] = "on"


def _nfs_export_rules(config, explicit, pairs, has_upper, field):
    """nfs_export=on needs index=on and rules out metacopy=on (``resolve``)."""
    if config["nfs_export"] == "on" and config["index"] == "off":
        if not has_upper and config["redirect_dir"] != "nofollow":
            config["nfs_export"] = "off"
        elif "nfs_export" in explicit and "index" in explicit:
            raise _conflict(field, "nfs_export=on,index=off")
        elif "index" in explicit:
            config["nfs_export"] = "off"
        else:
            config["index"] = "on"
    if config["nfs_export"] == "on" and config["metacopy"] == "on":
        if "nfs_export" in explicit and "metacopy" in explicit:
            raise _conflict(field, "nfs_export=on,metacopy=on")
        if "metacopy" in explicit or config["verity"] != "off":
            config["nfs_export"] = "off"
        else:
            config["metacopy"] = "off"


def _userxattr_rules(config, explicit, pairs, field):
    """userxattr rules out redirect_dir (but nofollow), metacopy and verity (``resolve``)."""
    if "redirect_dir" in explicit and config["redirect_dir"] != "nofollow":
        raise _conflict(field, "userxattr,redirect_dir=%s" % _declared(pairs, "redirect_dir"))
    if config["metacopy"] == "on" and "metacopy" in explicit:
        raise _conflict(field, "userxattr,metacopy=on")
    if config["verity"] != "off":
        raise _conflict(field, "userxattr,verity=%s" % config["verity"])
    config["redirect_dir"] = "nofollow"
    config["metacopy"] = "off"


def _declared(pairs, name):
    return dict(pairs).get(name)


def live_config(shown: Iterable[str], defaults: Mapping[str, Any],
                has_upper: Optional[bool] = None) -> Tuple[Dict[str, Any], List[str]]:
    """Effective configuration of a live overlay from the options mountinfo shows.

    Anything not shown has its default value: that is the kernel's rule.
    Unknown options (an LSM's ``context=...``) are returned separately.
    Kernels before 6.5 show the redirect_dir they were given, not the one
    they apply: ``off`` as given, nothing on a mount without upper or with
    ``metacopy=on`` (both act as ``on``), nothing under ``userxattr`` (which
    acts as ``nofollow`` without metacopy). ``has_upper`` (when known) lets those be
    read as the newer kernels show them, so one declaration compares equal
    on every kernel.
    """
    config = dict(defaults)
    foreign = []
    for text in shown:
        if text == "fsync=volatile":
            # Linux 6.15+ shows the volatile flag as its fsync mode.
            config["volatile"] = True
            continue
        name, sep, value = text.partition("=")
        option = _row(name)
        if option is None:
            foreign.append(text)
        elif option.values is None:
            config[name] = True
        else:
            config[name] = value
    if config["redirect_dir"] == "off":
        config["redirect_dir"] = defaults["_redirect_off"]
    if (has_upper is False and config["redirect_dir"] == "follow") or config["metacopy"] == "on":
        # Every kernel turns redirect_dir on for these; only 6.5+ shows it.
        config["redirect_dir"] = "on"
    if config["userxattr"]:
        config["redirect_dir"], config["metacopy"] = "nofollow", "off"
    return config, foreign


def compared_keys(declared_pairs: Iterable[Tuple[str, Any]]) -> List[str]:
    """The option names whose live value can be compared with the declaration.

    uuid is only compared when declared as on, off or null: with the default
    ``auto`` the kernel picks a value per upper dir (``uuid=on`` on a fresh
    one). xino is handled in :func:`option_differences`.
    """
    declared = dict(declared_pairs)
    keys = [option.name for option in OPTIONS if option.name != "uuid"]
    if declared.get("uuid") in ("on", "off", "null"):
        keys.append("uuid")
    if declared.get("verity", "off") != "off" and "metacopy" not in declared:
        # Kernels 6.6 to 6.1x switch metacopy (and so redirect_dir) on for
        # verity; 6.18 does not. Either is what the declaration asked for.
        keys.remove("metacopy")
        if "redirect_dir" not in declared:
            keys.remove("redirect_dir")
    return keys


def option_differences(declared_pairs: Iterable[Tuple[str, Any]], declared_config: Mapping[str, Any],
                       live_cfg: Mapping[str, Any], shown: Iterable[str]) -> List[Tuple[str, Any, Any]]:
    """``[(name, declared_value, live_value)]`` for every option that differs."""
    shown_names = {text.partition("=")[0] for text in shown}
    out = []
    for name in compared_keys(declared_pairs):
        want, have = declared_config[name], live_cfg[name]
        if name == "xino" and "xino" not in shown_names:
            # Hidden both when it equals the default and whenever all layers
            # share one filesystem, where xino has no effect at all.
            continue
        fallback = "null" if declared_config.get("_uuid_null", True) else "on"
        if name == "uuid" and want == "off" and have == fallback:
            # uuid=off needs upper and lowers on one filesystem; elsewhere the
            # kernel falls back to null (before 6.6: on), which is all off can be there.
            continue
        if want != have:
            out.append((name, want, have))
    return out


def visible_options(config: Mapping[str, Any], defaults: Mapping[str, Any],
                    skip: Collection[str] = ()) -> List[str]:
    """Options as the kernel would show them: the non-default ones, canonical."""
    out = []
    for option in OPTIONS:
        name = option.name
        if name in skip:
            continue
        value = config[name]
        if value != defaults[name]:
            if value is True:
                out.append(name)
            elif value is not False:
                out.append("%s=%s" % (name, value))
    return out
