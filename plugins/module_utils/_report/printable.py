# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Host text made safe to return and to show. Pure.

A path is a string of bytes; the host's texts are read as UTF-8 with
surrogate escapes (``_host.system.read_mountinfo``), so a byte that is not
UTF-8 is a lone surrogate here, which JSON cannot carry. Results therefore
show such a byte as mountinfo does, ``\\NNN`` (three octal digits), and a
backslash that a reader would take for the start of such an escape as
``\\134``: every ``\\NNN`` in a returned path then stands for one byte, and
``_formats.escape.decode_octal`` gives the path back exactly. A path that is
UTF-8 and has no backslash followed by three octal digits is returned as it
is.

Texts meant to be read by people (the report's Markdown and console lines)
also show every control character (C0, DEL, C1) in that form, so that no
escape sequence or carriage return reaches a terminal or a table.
"""

import json
import re
from typing import Any

from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.escape import decode_octal

# A lone surrogate (a byte that was not UTF-8), or a backslash that reads as an octal escape.
_NOT_RETURNABLE = re.compile(r"[\ud800-\udfff]|\\(?=[0-7]{3})")
# Control characters (C0, DEL, C1) and lone surrogates.
_NOT_VISIBLE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def _octal_bytes(char: str) -> str:
    """``\\NNN`` for each byte ``char`` stands for (a surrogate escape: its one byte)."""
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:
        return "\\%03o" % (code - 0xDC00)
    return "".join("\\%03o" % b for b in char.encode("utf-8", "surrogatepass"))


def _returnable(match):
    char = match.group()
    return "\\134" if char == "\\" else _octal_bytes(char)


def escape_bytes(text: str) -> str:
    """``text`` with every byte that is not UTF-8 as ``\\NNN``, and a backslash before three octal digits as ``\\134``.

    The inverse is :func:`unescape_bytes`. UTF-8 text without such a
    backslash comes back unchanged (the common case costs one scan).
    """
    if text.isascii() and "\\" not in text:
        return text
    return _NOT_RETURNABLE.sub(_returnable, text)


def unescape_bytes(text: str) -> str:
    """The path :func:`escape_bytes` made ``text`` from (surrogate escapes for bytes that are not UTF-8)."""
    return decode_octal(text)


def returnable(value: Any) -> Any:
    """``value`` with :func:`escape_bytes` applied to every string in it, dictionary keys included.

    A list, tuple or dictionary is copied only when something in it changed
    (a tuple then becomes a list); other values are returned as they are.
    This runs over every result of a container host (thousands of entries):
    a string or a list of strings that needs nothing is passed at C speed.
    """
    kind = type(value)
    if kind is str:
        return value if value.isascii() and "\\" not in value else escape_bytes(value)
    if kind is dict:
        return _returnable_dict(value)
    if kind is list or kind is tuple:
        return _returnable_list(value)
    if isinstance(value, str):
        return escape_bytes(value)
    if isinstance(value, dict):
        return _returnable_dict(value)
    if isinstance(value, (list, tuple)):
        return _returnable_list(value)
    return value


def _returnable_dict(value):
    out = None
    for key, item in value.items():
        new_key = returnable(key) if not isinstance(key, str) or not key.isascii() or "\\" in key else key
        kind = type(item)
        if kind is str:
            new = item if item.isascii() and "\\" not in item else escape_bytes(item)
        elif kind is bool or kind is int or item is None:
            new = item
        else:
            new = returnable(item)
        if out is None and (new is not item or new_key is not key):
            out = {}
            for done_key, done_item in value.items():
                if done_key is key:
                    break
                out[done_key] = done_item
        if out is not None:
            out[new_key] = new
    return value if out is None else out


def _returnable_list(value):
    try:
        joined = "".join(value)  # a list of strings, the common case (layers)
    except TypeError:
        pass
    else:
        if joined.isascii() and "\\" not in joined:
            return value
    items = [returnable(item) for item in value]
    if any(new is not old for new, old in zip(items, value)):
        return items
    return value


def visible(text: str) -> str:
    """``text`` with each control character (C0, DEL, C1) and each byte that is not UTF-8 as ``\\NNN``.

    For texts people read. Apply it to text already made by
    :func:`escape_bytes` (a result), so that a backslash is not escaped twice.
    """
    if text.isprintable() and text.isascii():
        return text
    return _NOT_VISIBLE.sub(lambda m: _octal_bytes(m.group()), text)


def utf8_result(value: Any) -> Any:
    """``value`` as it is when all of it is UTF-8, else :func:`returnable` of it.

    For the converging modules, whose results name paths as declared: only a
    result that carries a path with bytes that are not UTF-8 (a holder's or
    a submount's, from the host) is escaped, so that ansible-core can carry
    it; any other result is returned unchanged.
    """
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return returnable(value)
    except (TypeError, ValueError):
        return value
    return value
