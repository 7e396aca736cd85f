# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""SipHash-2-4 (Aumasson and Bernstein), the 64-bit keyed hash systemd names long units with.

Pure Python, no imports beyond ``struct``. systemd hashes a unit name that
would pass 255 bytes with it (``unit_name_hash_long``), so a mount point
with a long path has a name only this hash can predict.
"""

import struct

_MASK = (1 << 64) - 1


def _rotl(value, bits):
    return ((value << bits) | (value >> (64 - bits))) & _MASK


def _sipround(v0, v1, v2, v3):
    v0 = (v0 + v1) & _MASK
    v1 = _rotl(v1, 13) ^ v0
    v0 = _rotl(v0, 32)
    v2 = (v2 + v3) & _MASK
    v3 = _rotl(v3, 16) ^ v2
    v0 = (v0 + v3) & _MASK
    v3 = _rotl(v3, 21) ^ v0
    v2 = (v2 + v1) & _MASK
    v1 = _rotl(v1, 17) ^ v2
    v2 = _rotl(v2, 32)
    return v0, v1, v2, v3


def siphash24(key: bytes, data: bytes) -> int:
    """The SipHash-2-4 of ``data`` under the 16-byte ``key``, as an unsigned 64-bit integer.

    systemd prints it as the hex of its little-endian bytes (see
    ``_formats.unit_syntax.unit_name_for``).
    """
    if len(key) != 16:
        raise ValueError("siphash24 takes a 16-byte key, not %d bytes" % len(key))
    k0, k1 = struct.unpack("<QQ", key)
    v0, v1 = k0 ^ 0x736F6D6570736575, k1 ^ 0x646F72616E646F6D
    v2, v3 = k0 ^ 0x6C7967656E657261, k1 ^ 0x7465646279746573
    whole = len(data) - len(data) % 8
    for offset in range(0, whole, 8):
        (word,) = struct.unpack_from("<Q", data, offset)
        v3 ^= word
        v0, v1, v2, v3 = _sipround(*_sipround(v0, v1, v2, v3))
        v0 ^= word
    # The last word: the remaining bytes, and the length's low byte on top.
    last = (len(data) & 0xFF) << 56
    for shift, byte in enumerate(bytearray(data[whole:])):
        last |= byte << (8 * shift)
    v3 ^= last
    v0, v1, v2, v3 = _sipround(*_sipround(v0, v1, v2, v3))
    v0 ^= last
    v2 ^= 0xFF
    for _round in range(4):
        v0, v1, v2, v3 = _sipround(v0, v1, v2, v3)
    return v0 ^ v1 ^ v2 ^ v3
