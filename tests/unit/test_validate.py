"""State, descriptor and event validation (domain/validate.py).

The hypothesis strategies at the top are shared with test_dedupe.py and test_commands.py.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.capabilities import (
    ATTRIBUTE_NAMES,
    CAPABILITIES,
    DEVICE_TYPES,
    Attribute,
    Kind,
    ValueSpec,
    attributes_of,
)
from domain.validate import (
    AttributeError_,
    ErrorCode,
    validate_descriptor,
    validate_event,
    validate_state,
)

# -- strategies --------------------------------------------------------------------------------

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
)
NAMES = st.sampled_from(sorted(ATTRIBUTE_NAMES | {"hue", "saturation"})) | st.text(max_size=10)
JSON = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(NAMES, inner, max_size=4),
    max_leaves=12,
)
CAPABILITY_SETS = st.lists(
    st.sampled_from(sorted(CAPABILITIES)) | st.sampled_from(["FOO", "on_off", ""]),
    max_size=6,
)


def valid_value(spec: ValueSpec) -> st.SearchStrategy[Any]:
    """Any value ``spec`` accepts (objects: any subset of fields, nulls included)."""
    if spec.kind is Kind.ENUM:
        return st.sampled_from(spec.values)
    if spec.kind is Kind.BOOLEAN:
        return st.booleans()
    if spec.kind is Kind.OBJECT:
        assert isinstance(spec, Attribute)
        return st.fixed_dictionaries(
            {}, optional={f.name: st.none() | valid_value(f) for f in spec.fields}
        )
    lo, hi = spec.minimum, spec.maximum
    assert lo is not None and hi is not None
    ints = st.integers(min_value=math.ceil(lo), max_value=math.floor(hi))
    if spec.kind is Kind.INTEGER:
        return ints | ints.map(float)
    return ints | st.floats(min_value=lo, max_value=hi)


@st.composite
def valid_states(draw: st.DrawFn, capabilities: list[str]) -> dict[str, Any]:
    attrs = attributes_of(capabilities)
    names = draw(st.lists(st.sampled_from(sorted(attrs)), unique=True)) if attrs else []
    return {n: draw(st.none() | valid_value(attrs[n])) for n in names}


@st.composite
def device_and_state(draw: st.DrawFn) -> tuple[list[str], dict[str, Any]]:
    caps = draw(st.lists(st.sampled_from(sorted(CAPABILITIES)), unique=True, min_size=1))
    return caps, draw(valid_states(caps))


def codes(errors: list[AttributeError_]) -> list[str]:
    return [e.code for e in errors]


# -- valid reports for every capability ---------------------------------------------------------

VALID_CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("ON_OFF", {"powerState": "ON"}, {"powerState": "ON"}),
    ("ON_OFF", {"powerState": "OFF"}, {"powerState": "OFF"}),
    ("BRIGHTNESS", {"brightness": 0}, {"brightness": 0}),
    ("BRIGHTNESS", {"brightness": 100}, {"brightness": 100}),
    ("BRIGHTNESS", {"brightness": 40.0}, {"brightness": 40}),
    (
        "COLOR_CONTROL",
        {"color": {"hue": 360, "saturation": 0}},
        {"color": {"hue": 360.0, "saturation": 0.0}},
    ),
    ("COLOR_CONTROL", {"color": {"hue": 12.5}}, {"color": {"hue": 12.5}}),
    ("COLOR_CONTROL", {"color": {}}, {"color": {}}),
    ("COLOR_CONTROL", {"colorTemperature": 2700}, {"colorTemperature": 2700}),
    ("COLOR_CONTROL", {"colorTemperature": 10000.0}, {"colorTemperature": 10000}),
    (
        "THERMOSTAT",
        {"targetTemperature": 21, "mode": "heat"},
        {"targetTemperature": 21.0, "mode": "heat"},
    ),
    (
        "THERMOSTAT",
        {"targetTemperature": 5, "mode": "off"},
        {"targetTemperature": 5.0, "mode": "off"},
    ),
    ("THERMOSTAT", {"mode": "cool"}, {"mode": "cool"}),
    ("THERMOSTAT", {"mode": "auto"}, {"mode": "auto"}),
    ("TEMPERATURE_SENSOR", {"temperature": -12.25}, {"temperature": -12.25}),
    ("TEMPERATURE_SENSOR", {"temperature": 125}, {"temperature": 125.0}),
    ("HUMIDITY_SENSOR", {"humidity": 45.3}, {"humidity": 45.3}),
    ("ILLUMINANCE_SENSOR", {"illuminance": 0}, {"illuminance": 0.0}),
    ("ILLUMINANCE_SENSOR", {"illuminance": 120000.5}, {"illuminance": 120000.5}),
    ("MOTION_SENSOR", {"motion": True}, {"motion": True}),
    ("MOTION_SENSOR", {"motion": False}, {"motion": False}),
    ("CONTACT_SENSOR", {"contact": "open"}, {"contact": "open"}),
    ("CONTACT_SENSOR", {"contact": "closed"}, {"contact": "closed"}),
    ("LOCK", {"lockState": "LOCKED"}, {"lockState": "LOCKED"}),
    ("LOCK", {"lockState": "UNLOCKED"}, {"lockState": "UNLOCKED"}),
    ("POSITION", {"position": 55}, {"position": 55}),
    ("BATTERY", {"battery": 3}, {"battery": 3}),
    ("BATTERY", {"battery": None}, {"battery": None}),
]


@pytest.mark.parametrize(("capability", "state", "expected"), VALID_CASES)
def test_valid_reports(capability: str, state: dict[str, Any], expected: dict[str, Any]) -> None:
    result = validate_state([capability], state)
    assert result.errors == []
    assert result.ok
    assert result.valid == expected
    for key, value in expected.items():  # normalised types, not just equal values
        assert type(result.valid[key]) is type(value)


def test_every_capability_has_a_valid_case() -> None:
    assert {c for c, _, _ in VALID_CASES} == set(CAPABILITIES)


# -- every error code, with the sentences people read -------------------------------------------

INVALID_CASES: list[tuple[list[str], dict[str, Any], str, str, str]] = [
    (["ON_OFF", "BRIGHTNESS"], {"brightness": 140}, "brightness", "out_of_range",
     "brightness 140 is out of range 0..100"),
    (["ON_OFF"], {"powerState": "on"}, "powerState", "not_allowed",
     "powerState 'on' is not one of 'ON', 'OFF'"),
    (["ON_OFF", "BRIGHTNESS"], {"foo": 1}, "foo", "unknown_attribute",
     "attribute 'foo' is not part of this device's capabilities (ON_OFF, BRIGHTNESS)"),
    (["ON_OFF"], {"brightness": 1}, "brightness", "unknown_attribute",
     "it belongs to BRIGHTNESS"),
    ([], {"powerState": "ON"}, "powerState", "unknown_attribute", "capabilities (none)"),
    (["TEMPERATURE_SENSOR"], {"temperture": 1}, "temperture", "unknown_attribute",
     "did you mean temperature?"),
    (["BRIGHTNESS"], {"brightness": 40.5}, "brightness", "wrong_type",
     "brightness 40.5 is not a whole number (0..100%)"),
    (["BRIGHTNESS"], {"brightness": True}, "brightness", "wrong_type",
     "brightness must be a whole number 0..100%, got boolean true"),
    (["BRIGHTNESS"], {"brightness": "50"}, "brightness", "wrong_type", "got string '50'"),
    (["BRIGHTNESS"], {"brightness": -1}, "brightness", "out_of_range", "out of range"),
    (["TEMPERATURE_SENSOR"], {"temperature": False}, "temperature", "wrong_type",
     "got boolean false"),
    (["TEMPERATURE_SENSOR"], {"temperature": float("nan")}, "temperature", "wrong_type",
     "finite number"),
    (["TEMPERATURE_SENSOR"], {"temperature": float("inf")}, "temperature", "wrong_type",
     "finite number"),
    (["TEMPERATURE_SENSOR"], {"temperature": 10**400}, "temperature", "out_of_range",
     "out of range -55..125 °C"),
    (["TEMPERATURE_SENSOR"], {"temperature": 200}, "temperature", "out_of_range",
     "temperature 200 is out of range -55..125 °C"),
    (["HUMIDITY_SENSOR"], {"humidity": 100.5}, "humidity", "out_of_range", "0..100%"),
    (["ILLUMINANCE_SENSOR"], {"illuminance": -1}, "illuminance", "out_of_range", "lx"),
    (["MOTION_SENSOR"], {"motion": "true"}, "motion", "wrong_type",
     "motion must be true or false, got string 'true'"),
    (["MOTION_SENSOR"], {"motion": 1}, "motion", "wrong_type", "got integer 1"),
    (["CONTACT_SENSOR"], {"contact": "OPEN"}, "contact", "not_allowed", "did you mean open?"),
    (["CONTACT_SENSOR"], {"contact": ["open"]}, "contact", "wrong_type", "got array"),
    (["LOCK"], {"lockState": "JAMMED"}, "lockState", "not_allowed",
     "lockState 'JAMMED' is not one of 'LOCKED', 'UNLOCKED'"),
    (["POSITION"], {"position": 101}, "position", "out_of_range", "0..100%"),
    (["BATTERY"], {"battery": 99.9}, "battery", "wrong_type", "not a whole number"),
    (["THERMOSTAT"], {"mode": "dry"}, "mode", "not_allowed", "'heat', 'cool', 'auto', 'off'"),
    (["THERMOSTAT"], {"targetTemperature": 40}, "targetTemperature", "out_of_range",
     "targetTemperature 40 is out of range 5..35 °C"),
    (["COLOR_CONTROL"], {"colorTemperature": 500}, "colorTemperature", "out_of_range",
     "1000..10000 K"),
    (["COLOR_CONTROL"], {"color": "red"}, "color", "wrong_type",
     "color must be an object with fields hue, saturation, got string 'red'"),
    (["COLOR_CONTROL"], {"color": {"hue": 400}}, "color.hue", "out_of_range",
     "color.hue 400 is out of range 0..360 °"),
    (["COLOR_CONTROL"], {"color": {"saturation": "x"}}, "color.saturation", "wrong_type",
     "got string 'x'"),
    (["COLOR_CONTROL"], {"color": {"brightness": 3}}, "color.brightness", "unknown_attribute",
     "color.brightness is not a field of color (fields: hue, saturation)"),
]  # fmt: skip


@pytest.mark.parametrize(("caps", "state", "path", "code", "reason"), INVALID_CASES)
def test_invalid_reports(
    caps: list[str], state: dict[str, Any], path: str, code: str, reason: str
) -> None:
    result = validate_state(caps, state)
    assert len(result.errors) == 1, result.errors
    error = result.errors[0]
    assert (error.path, error.code) == (path, code)
    assert reason in error.reason
    assert result.valid == {}
    assert error.as_dict() == {"path": path, "reason": error.reason, "code": code}


def test_every_state_error_code_is_exercised() -> None:
    assert {c for *_, c, _ in INVALID_CASES} == {
        "unknown_attribute",
        "wrong_type",
        "out_of_range",
        "not_allowed",
    }


def test_good_attributes_pass_beside_bad_ones() -> None:
    result = validate_state(
        ["ON_OFF", "BRIGHTNESS", "COLOR_CONTROL"],
        {"powerState": "ON", "brightness": 140, "color": {"hue": 10, "saturation": 200}, "x": 1},
    )
    assert result.valid == {"powerState": "ON", "color": {"hue": 10.0}}
    assert sorted(e.path for e in result.errors) == ["brightness", "color.saturation", "x"]
    assert not result.ok


def test_object_with_no_valid_field_is_left_out() -> None:
    result = validate_state(["COLOR_CONTROL"], {"color": {"hue": -1, "saturation": 101}})
    assert result.valid == {}
    assert codes(result.errors) == ["out_of_range", "out_of_range"]


def test_null_clears_attributes_and_fields() -> None:
    result = validate_state(["COLOR_CONTROL", "BATTERY"], {"battery": None, "color": {"hue": None}})
    assert result.ok
    assert result.valid == {"battery": None, "color": {"hue": None}}


def test_state_that_is_not_an_object() -> None:
    states: list[Any] = [[], "ON", None, 3]
    for state in states:
        result = validate_state(["ON_OFF"], state)
        assert result.valid == {}
        assert [(e.path, e.code) for e in result.errors] == [("", "wrong_type")]


def test_capabilities_given_loosely() -> None:
    assert validate_state("ON_OFF", {"powerState": "ON"}).ok  # a bare name
    assert validate_state(["ON_OFF", "FOO"], {"powerState": "ON"}).ok  # unknown ignored
    assert not validate_state(None, {"powerState": "ON"}).ok  # type: ignore[arg-type]


def test_non_string_keys() -> None:
    result = validate_state(["ON_OFF"], {1: "ON"})  # type: ignore[dict-item]
    assert [(e.path, e.code) for e in result.errors] == [("1", "wrong_type")]


# -- descriptors -------------------------------------------------------------------------------

CONTRACT_DESCRIPTOR = {
    "name": "Living Room Ceiling",
    "type": "light.dimmer",
    "room": "Living Room",
    "protocol": "zigbee",
    "manufacturer": "...",
    "model": "...",
    "capabilities": ["ON_OFF", "BRIGHTNESS"],
    "endpoint": "zigbee://00:11:22:33",
}


def test_contract_descriptor_is_valid() -> None:
    assert validate_descriptor(CONTRACT_DESCRIPTOR) == []


def test_minimal_and_extended_descriptors() -> None:
    assert validate_descriptor({"name": "Cam", "type": "camera", "capabilities": []}) == []
    extra = {**CONTRACT_DESCRIPTOR, "firmware": "1.2", "room": None, "ieee": [1, 2]}
    assert validate_descriptor(extra) == []


@pytest.mark.parametrize("device_type", sorted(DEVICE_TYPES))
def test_every_device_type_with_its_typical_capabilities(device_type: str) -> None:
    t = DEVICE_TYPES[device_type]
    descriptor = {"name": "d", "type": device_type, "capabilities": [*t.capabilities, *t.optional]}
    assert validate_descriptor(descriptor) == []


DESCRIPTOR_CASES: list[tuple[dict[str, Any], str, str, str]] = [
    ({"type": "lock", "capabilities": []}, "name", "missing", "needs 'name'"),
    ({"name": "x", "capabilities": []}, "type", "missing", "needs 'type'"),
    ({"name": "x", "type": "lock"}, "capabilities", "missing", "needs 'capabilities'"),
    ({"name": "x", "type": "lock", "capabilities": None}, "capabilities", "missing", ""),
    ({"name": 5, "type": "lock", "capabilities": []}, "name", "wrong_type", "got integer 5"),
    ({"name": "  ", "type": "lock", "capabilities": []}, "name", "out_of_range", "empty"),
    ({"name": "x" * 201, "type": "lock", "capabilities": []}, "name", "out_of_range", "201"),
    ({"name": "x", "type": "light.dimer", "capabilities": []}, "type", "not_allowed",
     "type 'light.dimer' is not a known device type; did you mean light.dimmer?"),
    ({"name": "x", "type": "toaster", "capabilities": []}, "type", "not_allowed",
     "known: light.switch"),
    ({"name": "x", "type": ["lock"], "capabilities": []}, "type", "wrong_type", "got array"),
    ({"name": "x", "type": "lock", "capabilities": "LOCK"}, "capabilities", "wrong_type",
     "array of capability names"),
    ({"name": "x", "type": "lock", "capabilities": ["LOCK", "FOO"]}, "capabilities[1]",
     "unknown_capability", "capability 'FOO' is unknown; known: ON_OFF"),
    ({"name": "x", "type": "lock", "capabilities": ["lock"]}, "capabilities[0]",
     "unknown_capability", "did you mean LOCK?"),
    ({"name": "x", "type": "lock", "capabilities": ["LOCK", 7]}, "capabilities[1]",
     "wrong_type", "got integer 7"),
    ({"name": "x", "type": "lock", "capabilities": ["LOCK", "LOCK"]}, "capabilities[1]",
     "not_allowed", "listed twice"),
    ({"name": "x", "type": "lock", "capabilities": [], "protocol": 1}, "protocol",
     "wrong_type", "protocol must be a string"),
    ({"name": "x", "type": "lock", "capabilities": [], "endpoint": {}}, "endpoint",
     "wrong_type", "got object"),
]  # fmt: skip


@pytest.mark.parametrize(("descriptor", "path", "code", "reason"), DESCRIPTOR_CASES)
def test_invalid_descriptors(descriptor: dict[str, Any], path: str, code: str, reason: str) -> None:
    errors = validate_descriptor(descriptor)
    assert [(e.path, e.code) for e in errors] == [(path, code)]
    assert reason in errors[0].reason


def test_descriptor_that_is_not_an_object() -> None:
    errors = validate_descriptor(["x"])  # type: ignore[arg-type]
    assert [(e.path, e.code) for e in errors] == [("", "wrong_type")]


def test_empty_descriptor_lists_every_missing_field() -> None:
    errors = validate_descriptor({})
    assert [(e.path, e.code) for e in errors] == [
        ("name", "missing"),
        ("type", "missing"),
        ("capabilities", "missing"),
    ]


# -- events ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("device_type", "event"),
    [
        ("camera", "person_detected"),
        ("camera", "motion_detected"),
        ("doorbell", "ring"),
        ("button", "press"),
        ("button", "double_press"),
        ("button", "long_press"),
    ],
)
def test_known_events(device_type: str, event: str) -> None:
    assert validate_event(device_type, event) == []


@pytest.mark.parametrize(
    ("device_type", "event", "code", "reason"),
    [
        ("camera", "ring", "not_allowed", "not one a camera sends"),
        ("button", "pres", "not_allowed", "did you mean press?"),
        ("light.dimmer", "press", "not_allowed", "light.dimmer devices send no events"),
        ("toaster", "ring", "not_allowed", "device type 'toaster' is not known"),
        ("doorbell", "", "wrong_type", "non-empty string"),
        ("doorbell", 3, "wrong_type", "got integer 3"),
    ],
)
def test_bad_events(device_type: str, event: Any, code: str, reason: str) -> None:
    errors = validate_event(device_type, event)
    assert [(e.path, e.code) for e in errors] == [("event", code)]
    assert reason in errors[0].reason


def test_error_codes_compare_as_strings() -> None:
    assert ErrorCode.WRONG_TYPE == "wrong_type"
    assert f"{ErrorCode.OUT_OF_RANGE}" == "out_of_range"


# -- properties --------------------------------------------------------------------------------


@given(caps=CAPABILITY_SETS, state=JSON)
def test_validate_state_never_raises(caps: list[str], state: Any) -> None:
    result = validate_state(caps, state)
    assert isinstance(result.valid, dict)
    for error in result.errors:
        assert error.reason and error.code in set(ErrorCode)


@given(caps=CAPABILITY_SETS, state=st.dictionaries(NAMES, JSON, max_size=6))
def test_valid_part_revalidates_cleanly_and_nothing_is_dropped_silently(
    caps: list[str], state: dict[str, Any]
) -> None:
    result = validate_state(caps, state)
    again = validate_state(caps, result.valid)
    assert again.errors == []
    assert again.valid == result.valid
    for key in state:  # every attribute either passed or has a reason
        paths = [e.path for e in result.errors]
        assert key in result.valid or any(p == key or p.startswith(key + ".") for p in paths)


@given(device_and_state())
def test_generated_valid_states_pass(case: tuple[list[str], dict[str, Any]]) -> None:
    caps, state = case
    result = validate_state(caps, state)
    assert result.errors == []
    assert set(result.valid) == set(state)


@given(descriptor=st.dictionaries(st.sampled_from(list(CONTRACT_DESCRIPTOR)), JSON) | JSON)
def test_validate_descriptor_never_raises(descriptor: Any) -> None:
    for error in validate_descriptor(descriptor):
        assert error.reason and error.code in set(ErrorCode)


@given(device_type=st.sampled_from(sorted(DEVICE_TYPES)) | JSON, event=JSON)
def test_validate_event_never_raises(device_type: Any, event: Any) -> None:
    validate_event(device_type, event)
