# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Escaping rules shared by mountinfo, fstab, mount(2) option data and unit files.

Pure functions, no Ansible imports, so they can be unit-tested anywhere.
"""

import re
from typing import Collection, Iterable, List, Tuple

# mountinfo and fstab both write "\" followed by three octal digits for a byte
# that would otherwise break the line into fields. The escape stands for one
# byte, so a UTF-8 character may take several (\303\251 is "\u00e9").
_OCTAL_BYTES = re.compile(br"\\([0-7]{3})")

# A backslash-escaped double quote, which opens or closes nothing.
_UNESCAPED_QUOTE = re.compile(r'\\"')

# What util-linux and the kernel escape in a whitespace-separated table field.
TABLE_SPECIALS = " \t\n\\"


def decode_octal(text: str) -> str:
    """Turn every ``\\NNN`` octal escape of ``text`` back into the byte it stands for.

    The bytes are then read as UTF-8, as the text around them was; a byte
    sequence that is not UTF-8 comes back as surrogate escapes, like a path
    Python reads from the filesystem. Like libmount, a value above 255 keeps
    its low eight bits.
    """
    if "\\" not in text:
        return text
    raw = text.encode("utf-8", "surrogateescape")
    raw = _OCTAL_BYTES.sub(lambda m: bytes([int(m.group(1), 8) & 0xFF]), raw)
    return raw.decode("utf-8", "surrogateescape")


def encode_octal(text: str, specials: str = TABLE_SPECIALS) -> str:
    """Escape each character of ``specials`` in ``text`` as ``\\NNN``."""
    if not any(c in text for c in specials):
        return text
    return "".join("\\%03o" % ord(c) if c in specials else c for c in text)


def escape_layer(path: str) -> str:
    """Escape one path for the overlay's legacy ``lowerdir=a:b`` option syntax.

    The kernel splits option data on ``,`` and the lower list on ``:`` unless
    the character is preceded by a backslash, and drops one backslash before
    any character. So ``\\``, ``:`` and ``,`` all get a backslash.
    """
    if not any(c in path for c in "\\:,"):
        return path
    return "".join("\\" + c if c in "\\:," else c for c in path)


def join_layers(paths: Iterable[str]) -> str:
    """The legacy ``lowerdir=`` value for ``paths`` (top layer first)."""
    return ":".join(escape_layer(p) for p in paths)


def unescape_layer(text: str) -> str:
    """Undo :func:`escape_layer` (the kernel's own unescape: drop one backslash)."""
    if "\\" not in text:
        return text
    out = []
    chars = iter(text)
    for c in chars:
        if c == "\\":
            c = next(chars, "")
        out.append(c)
    return "".join(out)


def split_layers(value: str) -> Tuple[List[str], List[str]]:
    """Split a legacy ``lowerdir=`` value into its layers, unescaped.

    Returns ``(layers, data_layers)``: ``::`` separates regular lower layers
    from data-only layers, as the kernel does.
    """
    if "\\" not in value:
        # The common case, at C speed: no escapes, so every ':' separates.
        regular, _sep, rest = value.partition("::")
        layers = [p for p in regular.split(":") if p]
        data = [p for p in rest.split("::") if p] if rest else []
        return layers, data
    layers, data = [], []
    current = []
    target = layers
    i, n = 0, len(value)
    while i < n:
        c = value[i]
        if c == "\\" and i + 1 < n:
            current.append(value[i + 1])
            i += 2
            continue
        if c == ":":
            target.append("".join(current))
            current = []
            if i + 1 < n and value[i + 1] == ":":
                target = data
                i += 1
            i += 1
            continue
        current.append(c)
        i += 1
    target.append("".join(current))
    return [p for p in layers if p != ""], [p for p in data if p != ""]


def split_options(text: str, literal_keys: Collection[str] = ()) -> List[str]:
    """Split a comma-separated option string, keeping commas inside double quotes.

    SELinux contexts such as ``context="system_u:object_r:x:s0:c1,c2"`` carry
    commas inside quotes; a backslash also protects the next character, which
    is how the overlay's own option data escapes commas in paths. An option
    whose key is in ``literal_keys`` is taken as it stands: a ``"`` in its
    value opens nothing (mountinfo's layer paths, whose own commas the
    kernel shows as ``\\054``).
    """
    if "," not in text:
        return [text] if text else []
    if '"' not in text and "\\" not in text:
        return [o for o in text.split(",") if o]
    # Split at every comma, then glue back the pieces that a quote or a
    # trailing backslash says belong together: few pieces, all at C speed.
    out = []
    held = None
    for piece in text.split(","):
        if held is not None:
            piece = held + "," + piece
        elif literal_keys and piece.partition("=")[0] in literal_keys:
            out.append(piece)
            continue
        if _open_quote(piece) or _escapes_next(piece):
            held = piece
            continue
        held = None
        if piece:
            out.append(piece)
    if held:
        out.append(held)
    return out


def _open_quote(piece):
    """True when a double quote in ``piece`` is still open at its end."""
    if '"' not in piece:
        return False
    if "\\" not in piece:
        return piece.count('"') % 2 == 1
    return _UNESCAPED_QUOTE.sub("", piece.replace("\\\\", "")).count('"') % 2 == 1


def _escapes_next(piece):
    """True when ``piece`` ends in an odd number of backslashes."""
    return piece.endswith("\\") and (len(piece) - len(piece.rstrip("\\"))) % 2 == 1
