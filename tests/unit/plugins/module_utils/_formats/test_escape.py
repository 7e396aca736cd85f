# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

import pytest

from ansible_collections.overlayfs.mounts.plugins.module_utils._formats.escape import (
    decode_octal,
    encode_octal,
    escape_layer,
    join_layers,
    split_layers,
    split_options,
    unescape_layer,
)

AWKWARD = [
    "/plain",
    "/with space",
    "/tab\there",
    "/comma,dir",
    "/colon:dir",
    "/back\\slash",
    "/equals=sign",
    "/trailing\\",
    "/all ,:\\=\t mixed",
    "/unicode/d\u00e9j\u00e0",
]


@pytest.mark.parametrize("text, expected", [
    ("/a\\040b", "/a b"),
    ("/a\\011b\\012c\\134d", "/a\tb\nc\\d"),
    ("/x\\054y", "/x,y"),
    ("/no/escape", "/no/escape"),
    ("/not\\9octal", "/not\\9octal"),
])
def test_decode_octal(text, expected):
    assert decode_octal(text) == expected


@pytest.mark.parametrize("path", AWKWARD)
def test_octal_round_trip(path):
    encoded = encode_octal(path)
    assert " " not in encoded and "\t" not in encoded
    assert decode_octal(encoded) == path


@pytest.mark.parametrize("path", AWKWARD)
def test_layer_escape_round_trip(path):
    assert unescape_layer(escape_layer(path)) == path


def test_join_and_split_layers_round_trip():
    layers, data = split_layers(join_layers(AWKWARD))
    assert layers == AWKWARD
    assert data == []


@pytest.mark.parametrize("value, layers, data", [
    ("/a:/b:/c", ["/a", "/b", "/c"], []),
    ("/a\\:b:/c", ["/a:b", "/c"], []),
    ("/a:/b::/d1::/d2", ["/a", "/b"], ["/d1", "/d2"]),
    ("/a\\\\:/b", ["/a\\", "/b"], []),
    ("l/ABC:l/DEF", ["l/ABC", "l/DEF"], []),
])
def test_split_layers(value, layers, data):
    assert split_layers(value) == (layers, data)


@pytest.mark.parametrize("text, expected", [
    ("", []),
    ("rw", ["rw"]),
    ("rw,lowerdir=/a:/b,upperdir=/u", ["rw", "lowerdir=/a:/b", "upperdir=/u"]),
    ('rw,context="system_u:object_r:container_file_t:s0:c88,c409",lowerdir=/a',
     ["rw", 'context="system_u:object_r:container_file_t:s0:c88,c409"', "lowerdir=/a"]),
    ("lowerdir=/a\\,b,index=off", ["lowerdir=/a\\,b", "index=off"]),
    ("lowerdir=/x\\054y,workdir=/w", ["lowerdir=/x\\054y", "workdir=/w"]),
])
def test_split_options(text, expected):
    assert split_options(text) == expected
