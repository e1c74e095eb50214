"""topics.state_change: the one encoding of a StateChange's state, and reading any version."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from topics.state_change import PARTS, encode_state, state_of

scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=8)
values = st.recursive(
    scalars | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=12,
)
states = st.dictionaries(st.text(max_size=8), values, max_size=4)


@given(st.fixed_dictionaries({p: states for p in PARTS}))
def test_any_shadow_state_round_trips(parts) -> None:
    got = state_of({"state": encode_state(**parts)})
    assert {p: getattr(got, p) for p in PARTS} == parts


def test_version_1_maps_are_read_when_there_is_no_text() -> None:
    got = state_of({"changed": {"a": 1}, "reported": {"a": 1}, "state_json": None, "state": ""})
    assert got.changed == {"a": 1} and got.desired == {} and got.delta == {}


def test_version_1_state_json_wins_over_its_empty_maps() -> None:
    got = state_of({"reported": {}, "state_json": json.dumps({"reported": {"a": [1]}})})
    assert got.reported == {"a": [1]} and got.changed == {}


@pytest.mark.parametrize("text", ["[]", "1", '{"changed": [1]}', '{"delta": "x"}'])
def test_text_that_is_not_objects_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a JSON object"):
        state_of({"state": text})


def test_nan_is_never_written_as_text_strict_readers_refuse() -> None:
    # Shadows refuse NaN before a StateChange is written; were one to slip through, the
    # text stays JSON every reader takes (null), never the bare NaN json.dumps writes.
    text = encode_state(
        changed={"t": float("nan")}, reported={}, desired={}, desired_changed={}, delta={}
    )
    assert json.loads(text, parse_constant=lambda c: pytest.fail(c))["changed"] == {"t": None}
