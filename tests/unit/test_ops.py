"""Pure parts of the ops commands (time parsing, recognising stream-fold dead letters)."""

from __future__ import annotations

import json

import pytest

from homestream.ops import OpsError, _folded_record, parse_since

NOW = 1_800_000_000_000


@pytest.mark.parametrize(
    ("text", "want"),
    [
        (None, 0),
        ("0", 0),
        ("30m", NOW - 30 * 60_000),
        ("2h", NOW - 2 * 3_600_000),
        ("7d", NOW - 7 * 86_400_000),
        ("1700000000000", 1_700_000_000_000),
        ("2023-11-14T22:13:20+00:00", 1_700_000_000_000),
        ("2023-11-14T22:13:20", 1_700_000_000_000),  # naive means UTC
    ],
)
def test_parse_since(text, want):
    assert parse_since(text, NOW) == want


@pytest.mark.parametrize("text", ["yesterday", "5x", "-3h", "2023-13-01"])
def test_parse_since_says_what_it_accepts(text):
    with pytest.raises(OpsError, match="30m, 2h, 7d"):
        parse_since(text, NOW)


def test_folded_record_recognises_only_the_fold_shape():
    value = {"home_id": "h1", "device_id": "d", "state": {"x": 1}}
    assert _folded_record(json.dumps({"record": "DeviceReport", "value": value}).encode()) == (
        "DeviceReport",
        value,
    )
    for other in (b"\x00garbage", b"[]", b'{"record": "X"}', b'{"value": {}}'):
        assert _folded_record(other) is None
