# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

import struct

import pytest

from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.siphash import siphash24

# The reference test vectors of SipHash-2-4 (vectors.h of the reference
# implementation): key 00 01 .. 0f, message 00 01 .. (n-1), the output's
# little-endian bytes.
KEY = bytes(bytearray(range(16)))
VECTORS = [
    (0, "310e0edd47db6f72"),
    (1, "fd67dc93c539f874"),
    (7, "37d1018bf50002ab"),
    (8, "6224939a79f5f593"),
    (15, "e545be4961ca29a1"),
    (16, "db9bc2577fcc2a3f"),
    (63, "724506eb4c328a95"),
]


@pytest.mark.parametrize("length, expected", VECTORS)
def test_reference_vectors(length, expected):
    assert struct.pack("<Q", siphash24(KEY, bytes(bytearray(range(length))))).hex() == expected


def test_systemd_long_unit_name_key():
    """The hash behind a hashed unit name systemd-fstab-generator (systemd 252) wrote: the name and its NUL."""
    key = bytes(bytearray.fromhex("ecf237fb58324a32849f069b0d21eb9a"))
    name = b"a" * 250 + b".mount\0"
    assert struct.pack("<Q", siphash24(key, name)).hex() == "506d9c632ced75cd"


def test_refuses_a_wrong_key():
    with pytest.raises(ValueError, match="16-byte key"):
        siphash24(b"short", b"")
