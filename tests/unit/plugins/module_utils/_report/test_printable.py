# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Host text made safe to return (JSON) and to show (report text): reversible, unambiguous."""

import json
import os
import random

import pytest

from ansible_collections.overlayfs.mounts.plugins.module_utils._report.printable import (
    escape_bytes,
    returnable,
    unescape_bytes,
    visible,
)


def from_bytes(raw):
    """A path as the host's texts are read: UTF-8 with surrogate escapes."""
    return raw.decode("utf-8", "surrogateescape")


@pytest.mark.parametrize("raw, shown", [
    (b"/srv/plain", "/srv/plain"),
    (b"/srv/caf\xc3\xa9", "/srv/caf\u00e9"),
    (b"/srv/bad\xff\xfe", "/srv/bad\\377\\376"),
    # A lone continuation byte, and a truncated sequence before a valid one.
    (b"/srv/\x80", "/srv/\\200"),
    (b"/srv/\xc3/\xc3\xa9", "/srv/\\303/\u00e9"),
    # A backslash that reads as an octal escape is escaped itself; other backslashes are not.
    (b"/srv/a\\101", "/srv/a\\134101"),
    (b"/srv/a\\x2d\\", "/srv/a\\x2d\\"),
    (b"/srv/a\\10", "/srv/a\\10"),
    (b"/srv/a\\\\101", "/srv/a\\\\134101"),
    (b"/srv/a\\\xff", "/srv/a\\\\377"),
    # Control characters are valid UTF-8: JSON carries them, so results keep them.
    (b"/srv/esc\x1b[31m\r", "/srv/esc\x1b[31m\r"),
])
def test_escape_bytes(raw, shown):
    path = from_bytes(raw)
    assert escape_bytes(path) == shown
    json.dumps(shown, ensure_ascii=False).encode("utf-8")  # strict UTF-8: no surrogate left
    assert unescape_bytes(shown) == path
    assert os.fsencode(unescape_bytes(shown)) == raw


def test_every_byte_string_comes_back_exactly():
    alphabet = [b"\\", b"0", b"1", b"7", b"8", b"x", b"/", b"\xff", b"\x80", b"\xc3", b"\xa9", b"\xe2\x82\xac", b"\x1b"]
    rng = random.Random(1)
    seen = {}
    for _round in range(5000):
        raw = b"".join(rng.choice(alphabet) for _byte in range(rng.randint(0, 10)))
        shown = escape_bytes(from_bytes(raw))
        shown.encode("utf-8")  # strict: raises on a surrogate left
        assert os.fsencode(unescape_bytes(shown)) == raw
        # Unambiguous: no two byte strings share a shown form.
        assert seen.setdefault(shown, raw) == raw
    assert len(seen) > 3000


def test_no_two_paths_share_a_shown_form():
    pairs = {}
    for raw in (b"/a\xff", b"/a\\377", b"/a\\134377", b"/a\\\xff", b"/a\\\\377"):
        shown = escape_bytes(from_bytes(raw))
        assert shown not in pairs, (raw, pairs.get(shown))
        pairs[shown] = raw
    assert sorted(pairs) == sorted(["/a\\377", "/a\\134377", "/a\\134134377", "/a\\\\377", "/a\\\\134377"])


def test_returnable_escapes_every_string_and_copies_only_what_changed():
    clean = {"path": "/srv/m", "lowerdir": ["/a", "/b"], "stacked": 1, "live": None, "ok": True}
    assert returnable(clean) is clean
    bad = from_bytes(b"/srv/\xff")
    value = {"path": bad, "lowerdir": ["/a", bad], "live": {"unknown": [{"path": bad}]}, bad: ("t", bad), "n": 2}
    out = returnable(value)
    assert out == {"path": "/srv/\\377", "lowerdir": ["/a", "/srv/\\377"], "live": {"unknown": [{"path": "/srv/\\377"}]},
                   "/srv/\\377": ["t", "/srv/\\377"], "n": 2}
    json.dumps(out, ensure_ascii=False).encode("utf-8")
    assert value["path"] == bad  # the input is left as it was


@pytest.mark.parametrize("text, shown", [
    ("/srv/plain", "/srv/plain"),
    ("/srv/caf\u00e9", "/srv/caf\u00e9"),
    ("esc\x1b[31mred\rcr\nnl\ttab", "esc\\033[31mred\\015cr\\012nl\\011tab"),
    ("nul\x00del\x7f", "nul\\000del\\177"),
    # C1 controls as their UTF-8 bytes (U+009B is the one-character CSI).
    ("csi\x9b31m", "csi\\302\\23331m"),
    ("bad" + from_bytes(b"\xff"), "bad\\377"),
    # Results already escaped: a backslash is not escaped twice.
    ("/srv/bad\\377", "/srv/bad\\377"),
])
def test_visible(text, shown):
    assert visible(text) == shown
    assert shown.isprintable()
