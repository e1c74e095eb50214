"""domain.strictjson, domain.ids and domain.timerange: the rules every service shares."""

from __future__ import annotations

import datetime as dt
import json
import math

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from domain import ids, strictjson, timerange
from domain.strictjson import JsonRejected

STORABLE = st.characters(codec="utf-8", exclude_characters="\x00")
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=strictjson.LONG_MIN, max_value=strictjson.LONG_MAX)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(STORABLE, max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(STORABLE), inner),
    max_leaves=30,
)


# -- strictjson ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "MALFORMED_JSON"),
        ("{", "MALFORMED_JSON"),
        ('{"a": 1, "a": 2}', "MALFORMED_JSON"),
        ("[" * 5000, "TOO_DEEP"),
        ("[" * 5000 + "]" * 5000, "TOO_DEEP"),
        ("[" * 65 + "]" * 65, "TOO_DEEP"),
        ("NaN", "WRONG_TYPE"),
        ('{"request_id": NaN}', "WRONG_TYPE"),
        ("[Infinity]", "WRONG_TYPE"),
        ("1e400", "OUT_OF_RANGE"),
        ("9223372036854775808", "OUT_OF_RANGE"),
        ("9" * 5000, "OUT_OF_RANGE"),
        ('"\\ud800"', "INVALID_UTF8"),
        ('{"\\udc00": 1}', "INVALID_UTF8"),
        ('"a\\u0000b"', "INVALID_UTF8"),
        ('{"k": ["\\u0000"]}', "INVALID_UTF8"),
        ("\ud800", "MALFORMED_JSON"),
    ],
)
def test_refused(text, reason):
    with pytest.raises(JsonRejected) as err:
        strictjson.loads(text)
    assert err.value.reason == reason
    assert err.value.message  # says why


def test_accepted_edges():
    assert strictjson.loads("[" * 64 + "]" * 64) is not None
    assert strictjson.loads('"\\\\u0000"') == "\\u0000"  # an escaped backslash, not a NUL
    assert strictjson.loads('"\\ud83d\\ude00"') == "\U0001f600"  # a paired surrogate
    assert strictjson.loads(b'{"a": [1, 2.5, "\xc3\xa9"]}') == {"a": [1, 2.5, "é"]}
    with pytest.raises(JsonRejected) as err:
        strictjson.loads(b'"\xff"')
    assert err.value.reason == "INVALID_UTF8"


def test_the_path_of_a_bad_string_is_named():
    with pytest.raises(JsonRejected) as err:
        strictjson.loads('{"actions": [{"name": "\\u0000"}]}')
    assert err.value.message.startswith("actions[0].name:")


@given(JSON)
def test_round_trip_of_storable_values(value):
    assert strictjson.loads(strictjson.dumps(value)) == value


@given(st.text(max_size=200) | st.binary(max_size=200))
def test_any_input_parses_or_is_refused_with_a_reason(data):
    try:
        value = strictjson.loads(data)
    except JsonRejected as exc:
        assert exc.reason in {
            "MALFORMED_JSON",
            "TOO_DEEP",
            "OUT_OF_RANGE",
            "WRONG_TYPE",
            "INVALID_UTF8",
        }
        return
    # What is accepted can be written back as strict JSON and stored as UTF-8 text.
    json.dumps(value, allow_nan=False).encode("utf-8")


@given(st.text(min_size=1, max_size=10), st.sampled_from(["\x00", "\ud800", "\udfff"]))
def test_text_with_nul_or_a_lone_surrogate_is_refused(text, bad):
    doc = json.dumps({"name": text + bad})  # ensure_ascii: both arrive as \u escapes
    with pytest.raises(JsonRejected):
        strictjson.loads(doc)


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_numbers(x):
    if math.isfinite(x):
        assert strictjson.loads(json.dumps(x)) == x
    else:
        with pytest.raises(JsonRejected):
            strictjson.loads(json.dumps(x))


# -- ids ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("home", ["h", "demo-home", "A_1", "x" * 64])
def test_home_ids(home):
    assert ids.home_id_problem(home) is None


@pytest.mark.parametrize(
    "home", ["", "-h", "h/1", "h+", "demo-home\x00", "\ud800", "h\n", "x" * 65, "é", None, 5]
)
def test_not_home_ids(home):
    assert ids.home_id_problem(home)


@pytest.mark.parametrize("device", ["lamp", "lamp 1", "zigbee:00:11", "é", "d" * 128])
def test_device_ids(device):
    assert ids.device_id_problem(device) is None


@pytest.mark.parametrize("device", ["", "a+b", "a#", "a/b", "a\x00", "\ud800", "\x7f", "d" * 129])
def test_not_device_ids(device):
    assert ids.device_id_problem(device)


@given(st.text(max_size=140))
def test_every_accepted_id_is_storable(text):
    for rule in (
        ids.home_id_problem,
        ids.device_id_problem,
        ids.doc_id_problem,
        ids.username_problem,
        ids.command_id_problem,
    ):
        if rule(text) is None:
            text.encode("utf-8")  # no lone surrogate
            assert "\x00" not in text


# -- timerange ---------------------------------------------------------------------------------
NOW = dt.datetime(2026, 6, 1, 10, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    "value",
    [
        "0001-01-01T00:00:00Z",
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-14:00",
        "9999-12-31T23:59:59.999999",
        "1969-12-31T23:59:59Z",
        "-1",
        "99999999999999999999999",
        str(10**18),
        -(10**30),
        1e300,
        "yesterday",
        "",
        True,
        [],
    ],
)
def test_times_out_of_range_or_unreadable(value):
    with pytest.raises(timerange.TimeError) as err:
        timerange.parse_time(value, "to")
    assert err.value.param == "to"


def test_time_forms_agree():
    want = dt.datetime(2026, 6, 1, 10, tzinfo=dt.UTC)
    for value in (
        "2026-06-01T10:00:00Z",
        "2026-06-01T12:00:00+02:00",
        "2026-06-01T10:00:00",
        "1780308000000",
        1780308000000,
        want,
    ):
        assert timerange.parse_time(value, "from") == want


def test_range_defaults_and_edges():
    assert timerange.time_range(None, None, now=NOW, default_span=dt.timedelta(days=1)) == (
        NOW - dt.timedelta(days=1),
        NOW,
    )
    start, end = timerange.time_range(
        None, "1970-01-01T00:00:01Z", now=NOW, default_span=dt.timedelta(days=1)
    )
    assert start == timerange.TIME_MIN and end > start  # never before the epoch
    with pytest.raises(timerange.TimeError) as err:
        timerange.time_range(NOW, NOW, now=NOW, default_span=dt.timedelta(days=1))
    assert err.value.param == "from"


@given(st.datetimes(timezones=st.timezones()) | st.integers() | st.text(max_size=40))
@example("²")  # a digit to str.isdigit(), not to int()
@example("-١٢")
def test_parse_time_never_overflows(value):
    try:
        parsed = timerange.parse_time(value, "from")
    except timerange.TimeError:
        return
    assert timerange.TIME_MIN <= parsed <= timerange.TIME_MAX
    assert parsed.tzinfo is dt.UTC
    timerange.iso(parsed)


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("30m", NOW - dt.timedelta(minutes=30)),
        ("2h", NOW - dt.timedelta(hours=2)),
        ("7d", NOW - dt.timedelta(days=7)),
        ("2026-05-01T00:00:00Z", dt.datetime(2026, 5, 1, tzinfo=dt.UTC)),
    ],
)
def test_since(text, want):
    assert timerange.parse_since(text, NOW) == want


@pytest.mark.parametrize("text", ["yesterday", "99999999999d", "1000000d", "-5m", "m", "²h"])
def test_since_refused(text):
    with pytest.raises(timerange.TimeError):
        timerange.parse_since(text, NOW)
