"""No-op detection (domain/dedupe.py): equality, deadbands, null deletes, merge."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from domain.capabilities import CAPABILITIES
from domain.dedupe import changes, covers, same
from domain.shadow import merge
from tests.unit.test_validate import CAPABILITY_SETS, JSON, NAMES, device_and_state, valid_states

ALL = sorted(CAPABILITIES)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (1, 1.0, True),
        (0, 0.0, True),
        (True, 1, False),
        (False, 0, False),
        (0.0, False, False),
        (True, True, True),
        ("1", 1, False),
        ("ON", "ON", True),
        (None, None, True),
        (None, 0, False),
        ({"hue": 1, "saturation": 2}, {"saturation": 2.0, "hue": 1.0}, True),
        ({"hue": 1}, {"hue": 1, "saturation": 2}, False),
        ({"hue": True}, {"hue": 1}, False),
        ([1, 2], [1.0, 2.0], True),
        ([1, 2], [2, 1], False),
        ([1], {"0": 1}, False),
        # NaN is not JSON: validate_state rejects it before dedupe compares anything.
        (float("nan"), float("nan"), False),
    ],
)
def test_same(a: Any, b: Any, expected: bool) -> None:
    assert same(a, b) is expected
    assert same(b, a) is expected


def test_missing_attribute_is_always_a_change() -> None:
    assert changes({}, {"powerState": "OFF"}, ["ON_OFF"]) == {"powerState": "OFF"}
    # Even inside the deadband of a value that was never accepted.
    assert changes({}, {"temperature": 0.1}, ["TEMPERATURE_SENSOR"]) == {"temperature": 0.1}
    assert changes({"temperature": None}, {"temperature": 3.0}, ALL) == {"temperature": 3.0}


def test_equal_values_are_no_change() -> None:
    reported = {"powerState": "ON", "brightness": 40, "color": {"hue": 10.0, "saturation": 50.0}}
    incoming = {"powerState": "ON", "brightness": 40.0, "color": {"hue": 10, "saturation": 50}}
    assert changes(reported, incoming, ALL) == {}


def test_only_changed_attributes_are_returned() -> None:
    reported = {"powerState": "ON", "brightness": 40}
    assert changes(reported, {"powerState": "ON", "brightness": 41}, ALL) == {"brightness": 41}


def test_bool_is_never_a_number() -> None:
    assert changes({"x": 1}, {"x": True}) == {"x": True}
    assert changes({"x": False}, {"x": 0}) == {"x": 0}


def test_objects_compared_field_by_field() -> None:
    reported = {"color": {"hue": 10.0, "saturation": 50.0}}
    assert changes(reported, {"color": {"hue": 10}}, ALL) == {}
    assert changes(reported, {"color": {"hue": 20}}, ALL) == {"color": {"hue": 20}}
    assert changes(reported, {"color": {"hue": 10, "saturation": 60}}, ALL) == {
        "color": {"saturation": 60}
    }
    assert changes({}, {"color": {"hue": 20}}, ALL) == {"color": {"hue": 20}}


@pytest.mark.parametrize(
    ("attribute", "accepted", "small", "big"),
    [
        ("temperature", 21.0, 21.4, 21.5),
        ("temperature", 21.0, 20.6, 20.5),
        ("humidity", 45.0, 45.9, 46.0),
        ("humidity", 45.0, 44.2, 44.0),
        ("illuminance", 300.0, 309.0, 310.0),
        ("illuminance", 300.0, 291.0, 290.0),
        ("battery", 80, 80.5, 79),
    ],
)
def test_deadbands(attribute: str, accepted: float, small: float, big: float) -> None:
    reported = {attribute: accepted}
    assert changes(reported, {attribute: small}, ALL) == {}
    assert changes(reported, {attribute: big}, ALL) == {attribute: big}


def test_deadband_edges_survive_float_noise() -> None:
    # 21.3 - 20.8 is 0.5000000000000018 and 20.3 - 19.8 is 0.5 - tiny: both are a full band.
    assert changes({"temperature": 20.8}, {"temperature": 21.3}, ALL) == {"temperature": 21.3}
    assert changes({"temperature": 20.3}, {"temperature": 19.8}, ALL) == {"temperature": 19.8}


def test_slow_drift_gets_through_once_it_exceeds_the_band() -> None:
    reported: dict[str, Any] = {"temperature": 21.0}
    accepted = []
    for reading in (21.1, 21.2, 21.3, 21.4, 21.5, 21.6, 21.7, 21.9, 22.0):
        delta = changes(reported, {"temperature": reading}, ["TEMPERATURE_SENSOR"])
        if delta:
            accepted.append(reading)
            reported = merge(reported, delta)
    assert accepted == [21.5, 22.0]


def test_no_deadband_on_commanded_attributes() -> None:
    assert changes({"brightness": 40}, {"brightness": 41}, ALL) == {"brightness": 41}
    assert changes({"targetTemperature": 21.0}, {"targetTemperature": 21.1}, ALL) == {
        "targetTemperature": 21.1
    }
    assert changes({"color": {"hue": 1.0}}, {"color": {"hue": 1.1}}, ALL) == {"color": {"hue": 1.1}}


def test_deadband_needs_the_capability() -> None:
    # Without TEMPERATURE_SENSOR among the capabilities there is no band to apply.
    assert changes({"temperature": 21.0}, {"temperature": 21.1}, ["ON_OFF"]) == {
        "temperature": 21.1
    }


def test_deadband_overrides() -> None:
    reported = {"temperature": 21.0, "color": {"hue": 100.0}}
    assert changes(reported, {"temperature": 21.2}, ALL, deadbands={"temperature": 0.1}) == {
        "temperature": 21.2
    }
    assert changes(reported, {"temperature": 21.9}, ALL, deadbands={"temperature": 1}) == {}
    assert changes(reported, {"color": {"hue": 102}}, ALL, deadbands={"color.hue": 5}) == {}


def test_type_change_is_a_change() -> None:
    assert changes({"temperature": 21.0}, {"temperature": "21"}, ALL) == {"temperature": "21"}
    assert changes({"color": "red"}, {"color": {"hue": 1}}, ALL) == {"color": {"hue": 1}}
    assert changes({"color": {"hue": 1}}, {"color": 5}, ALL) == {"color": 5}


def test_null_deletes_and_deleting_nothing_is_no_change() -> None:
    reported = {"battery": 50, "color": {"hue": 1.0, "saturation": 2.0}}
    assert changes(reported, {"battery": None}, ALL) == {"battery": None}
    assert changes({}, {"battery": None}, ALL) == {}
    assert changes(reported, {"color": {"hue": None}}, ALL) == {"color": {"hue": None}}
    assert changes({}, {"color": {"hue": None}}, ALL) == {}
    assert changes({}, {"color": {}}, ALL) == {}


def test_reports_that_are_not_objects() -> None:
    assert changes(None, {"a": 1}) == {"a": 1}  # type: ignore[arg-type]
    assert changes({"a": 1}, None) == {}  # type: ignore[arg-type]


def test_merge() -> None:
    reported = {"powerState": "ON", "color": {"hue": 1.0, "saturation": 2.0}, "battery": 50}
    merged = merge(reported, {"color": {"hue": 5.0}, "battery": None, "brightness": 3})
    assert merged == {"powerState": "ON", "color": {"hue": 5.0, "saturation": 2.0}, "brightness": 3}
    assert reported["battery"] == 50  # the input is not modified
    assert merge({"color": {"hue": 1.0}}, {"color": {"hue": None}}) == {}  # emptied object goes
    assert merge({"color": 3}, {"color": {"hue": 1}}) == {"color": {"hue": 1}}


def test_merged_values_are_copies() -> None:
    patch = {"tags": [1, 2]}
    merged = merge({}, patch)
    patch["tags"].append(3)
    assert merged == {"tags": [1, 2]}


def test_covers() -> None:
    reported = {"powerState": "ON", "color": {"hue": 10.0, "saturation": 50.0}}
    assert covers(reported, {"powerState": "ON"})
    assert covers(reported, {"color": {"hue": 10}})
    assert not covers(reported, {"color": {"hue": 11}})
    assert not covers(reported, {"brightness": 1})
    assert covers(reported, {"brightness": None})
    assert not covers(reported, {"powerState": None})
    assert covers(reported, {})


# -- properties --------------------------------------------------------------------------------


@given(caps=CAPABILITY_SETS, reported=st.dictionaries(NAMES, JSON), incoming=JSON)
def test_changes_is_idempotent_on_anything(caps: list[str], reported: Any, incoming: Any) -> None:
    # NaN never reaches dedupe (validate_state rejects it), and NaN != NaN by design (test_same).
    assume(not _has_nan(incoming))
    delta = changes(reported, incoming, caps)
    merged = merge(reported, delta)
    assert changes(merged, incoming, caps) == {}


@given(case=device_and_state(), data=st.data())
def test_changes_is_idempotent_on_valid_states(
    case: tuple[list[str], dict[str, Any]], data: st.DataObject
) -> None:
    caps, reported = case
    reported = merge({}, reported)  # a stored state holds no nulls
    incoming = data.draw(valid_states(caps))
    delta = changes(reported, incoming, caps)
    merged = merge(reported, delta)
    assert changes(merged, incoming, caps) == {}
    # What changes() returns is part of what came in.
    for key in delta:
        assert key in incoming
    # Without deadbands nothing is lost: applying the changes equals applying the report.
    no_bands = {"temperature": 0, "humidity": 0, "illuminance": 0, "battery": 0}
    delta = changes(reported, incoming, caps, deadbands=no_bands)
    assert same(merge(reported, delta), merge(reported, incoming))
    assert covers(merge(reported, delta), incoming)


@given(case=device_and_state())
def test_a_state_changes_nothing_against_itself(case: tuple[list[str], dict[str, Any]]) -> None:
    caps, state = case
    stored = merge({}, state)
    assert changes(stored, stored, caps) == {}


def _has_nan(value: Any) -> bool:
    if isinstance(value, float):
        return value != value
    if isinstance(value, dict):
        return any(_has_nan(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_nan(v) for v in value)
    return False
