"""topics.jsontext: the stream's JSON text by msgspec reads back as the standard library's
would, and takes whatever json.dumps took."""

from __future__ import annotations

import json
from datetime import date

from hypothesis import given
from hypothesis import strategies as st

from topics import jsontext

text = st.text(st.characters(blacklist_categories=("Cs",)))
values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=20,
)


@given(values)
def test_what_it_writes_reads_back_the_same_with_either_reader(value: object) -> None:
    written = jsontext.dumps(value)
    assert json.loads(written) == value
    assert jsontext.loads(written) == value
    assert jsontext.loads(json.dumps(value)) == value
    assert jsontext.encode(value) == written.encode()
    assert jsontext.copy(value) == value


def test_a_copy_is_a_copy() -> None:
    value = {"runs": {"r1": {"steps": [1, 2]}}}
    copied = jsontext.copy(value)
    copied["runs"]["r1"]["steps"].append(3)
    assert value == {"runs": {"r1": {"steps": [1, 2]}}}


def test_what_msgspec_refuses_goes_through_the_standard_library() -> None:
    lone = "\ud800"  # a lone surrogate: not UTF-8, json.dumps escapes it
    assert json.loads(jsontext.dumps({"x": lone})) == {"x": lone}
    assert jsontext.copy({"x": lone}) == {"x": lone}
    assert json.loads(jsontext.dumps({"at": date(2026, 12, 3)}, default=str)) == {
        "at": "2026-12-03"
    }
    assert jsontext.dumps({1: "a"}) == '{"1":"a"}'  # keys become text, as json.dumps does


def test_text_only_the_standard_library_reads_still_reads() -> None:
    assert jsontext.loads('{"t": NaN}')["t"] != 0  # NaN (json's extension) still parses
