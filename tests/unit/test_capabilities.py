"""The capability table (domain/capabilities.py) against CONTRACT.md section 3."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from domain.capabilities import (
    ATTRIBUTE_NAMES,
    CAPABILITIES,
    DEVICE_TYPES,
    LAN_TYPES,
    Attribute,
    FromParameter,
    Kind,
    SetValue,
    Toggle,
    attribute_owner,
    attributes_of,
    events_of,
    format_number,
    format_value,
    known_capabilities,
    markdown_tables,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "capabilities.md"

CONTRACT_CAPABILITIES = {
    "ON_OFF": ({"powerState"}, {"turnOn", "turnOff", "toggle"}),
    "BRIGHTNESS": ({"brightness"}, {"setBrightness"}),
    "COLOR_CONTROL": ({"color", "colorTemperature"}, {"setColor", "setColorTemperature"}),
    "THERMOSTAT": ({"targetTemperature", "mode"}, {"setTemperature", "setMode"}),
    "TEMPERATURE_SENSOR": ({"temperature"}, set()),
    "HUMIDITY_SENSOR": ({"humidity"}, set()),
    "ILLUMINANCE_SENSOR": ({"illuminance"}, set()),
    "MOTION_SENSOR": ({"motion"}, set()),
    "CONTACT_SENSOR": ({"contact"}, set()),
    "LOCK": ({"lockState"}, {"lock", "unlock"}),
    "POSITION": ({"position"}, {"setPosition", "open", "close"}),
    "BATTERY": ({"battery"}, set()),
}

CONTRACT_TYPES = [
    "light.switch",
    "light.dimmer",
    "light.color",
    "switch.plug",
    "thermostat",
    "lock",
    "sensor.motion",
    "sensor.contact",
    "sensor.temperature",
    "sensor.climate",
    "blinds",
    "camera",
    "doorbell",
    "button",
]


def test_capabilities_match_the_contract() -> None:
    assert set(CAPABILITIES) == set(CONTRACT_CAPABILITIES)
    for name, (attrs, commands) in CONTRACT_CAPABILITIES.items():
        cap = CAPABILITIES[name]
        assert cap.name == name
        assert {a.name for a in cap.attributes} == attrs, name
        assert {c.name for c in cap.commands} == commands, name


def test_attribute_names_are_camel_case() -> None:
    camel = re.compile(r"^[a-z][a-zA-Z0-9]*$")
    for cap in CAPABILITIES.values():
        for attr in cap.attributes:
            assert camel.match(attr.name), attr.name
            for f in attr.fields:
                assert camel.match(f.name), f.name


@pytest.mark.parametrize(
    ("attribute", "kind", "values"),
    [
        ("powerState", Kind.ENUM, ("ON", "OFF")),
        ("mode", Kind.ENUM, ("heat", "cool", "auto", "off")),
        ("contact", Kind.ENUM, ("open", "closed")),
        ("lockState", Kind.ENUM, ("LOCKED", "UNLOCKED")),
        ("motion", Kind.BOOLEAN, ()),
    ],
)
def test_enums_and_booleans(attribute: str, kind: Kind, values: tuple[str, ...]) -> None:
    attr = attributes_of(CAPABILITIES)[attribute]
    assert attr.kind is kind
    assert attr.values == values


@pytest.mark.parametrize(
    ("attribute", "kind", "lo", "hi", "unit", "deadband"),
    [
        ("brightness", Kind.INTEGER, 0, 100, "%", 0),
        ("colorTemperature", Kind.INTEGER, 1000, 10000, "K", 0),
        ("targetTemperature", Kind.NUMBER, 5, 35, "°C", 0),
        ("temperature", Kind.NUMBER, -55, 125, "°C", 0.5),
        ("humidity", Kind.NUMBER, 0, 100, "%", 1),
        ("illuminance", Kind.NUMBER, 0, 200000, "lx", 10),
        ("position", Kind.INTEGER, 0, 100, "%", 0),
        ("battery", Kind.INTEGER, 0, 100, "%", 1),
    ],
)
def test_numeric_attributes(
    attribute: str, kind: Kind, lo: float, hi: float, unit: str, deadband: float
) -> None:
    attr = attributes_of(CAPABILITIES)[attribute]
    assert (attr.kind, attr.minimum, attr.maximum, attr.unit, attr.deadband) == (
        kind,
        lo,
        hi,
        unit,
        deadband,
    )


def test_color_is_an_object_of_hue_and_saturation() -> None:
    color = attributes_of(["COLOR_CONTROL"])["color"]
    assert color.kind is Kind.OBJECT
    hue, sat = color.field("hue"), color.field("saturation")
    assert hue is not None and (hue.kind, hue.minimum, hue.maximum) == (Kind.NUMBER, 0, 360)
    assert sat is not None and (sat.kind, sat.minimum, sat.maximum) == (Kind.NUMBER, 0, 100)
    assert color.field("brightness") is None


def test_deadbands_only_on_noisy_sensors() -> None:
    banded = {a.name: a.deadband for c in CAPABILITIES.values() for a in c.attributes if a.deadband}
    assert banded == {"temperature": 0.5, "humidity": 1, "illuminance": 10, "battery": 1}
    for cap in CAPABILITIES.values():
        for attr in cap.attributes:
            assert all(f.deadband == 0 for f in attr.fields)
            if attr.deadband:
                assert not cap.commands, f"{attr.name} is commanded; a deadband would hide it"


def test_every_attribute_has_one_owner() -> None:
    for cap in CAPABILITIES.values():
        for attr in cap.attributes:
            assert attribute_owner(attr.name) is cap
    assert sum(len(c.attributes) for c in CAPABILITIES.values()) == len(ATTRIBUTE_NAMES)
    assert attribute_owner("foo") is None
    assert attribute_owner("hue") is None  # a field, not a top-level attribute
    assert attribute_owner(3) is None  # type: ignore[arg-type]


def test_commands_are_consistent_with_attributes() -> None:
    """Every effect targets an attribute of its own capability with a value it accepts."""
    for cap in CAPABILITIES.values():
        for cmd in cap.commands:
            assert cmd.effects, cmd.name
            used = set()
            for effect in cmd.effects:
                top, _, sub = effect.path.partition(".")
                target: Attribute | None = cap.attribute(top)
                assert target is not None, (cap.name, cmd.name, effect.path)
                if sub:
                    target = target.field(sub)
                    assert target is not None, effect.path
                if isinstance(effect, FromParameter):
                    p = cmd.parameter(effect.parameter)
                    assert p is not None, (cmd.name, effect.parameter)
                    used.add(p.name)
                    assert (p.kind, p.values, p.minimum, p.maximum, p.unit) == (
                        target.kind,
                        target.values,
                        target.minimum,
                        target.maximum,
                        target.unit,
                    ), (cmd.name, p.name)
                elif isinstance(effect, SetValue | Toggle):
                    consts = [effect.value] if isinstance(effect, SetValue) else [effect.on]
                    if isinstance(effect, Toggle):
                        consts.append(effect.off)
                    for v in consts:
                        if target.kind is Kind.ENUM:
                            assert v in target.values
                        else:
                            assert target.minimum is not None and target.maximum is not None
                            assert isinstance(v, int | float)
                            assert target.minimum <= v <= target.maximum
            assert used == {p.name for p in cmd.parameters}, cmd.name


def test_command_signatures_and_writable_attributes() -> None:
    thermostat = CAPABILITIES["THERMOSTAT"]
    set_temperature = thermostat.command("setTemperature")
    assert set_temperature is not None
    assert set_temperature.signature() == "setTemperature {temperature, mode?}"
    assert "mode = mode (if given)" in set_temperature.desired_text()
    assert thermostat.writable == {"targetTemperature", "mode"}
    assert CAPABILITIES["TEMPERATURE_SENSOR"].writable == frozenset()
    assert CAPABILITIES["COLOR_CONTROL"].writable == {"color", "colorTemperature"}
    assert thermostat.command("warm") is None


def test_device_types_cover_the_contract() -> None:
    # CONTRACT's list "includes" these; the others are the kinds mDNS finds on the LAN
    assert set(DEVICE_TYPES) - set(CONTRACT_TYPES) == LAN_TYPES
    assert set(CONTRACT_TYPES) <= set(DEVICE_TYPES)
    for t in DEVICE_TYPES.values():
        for cap in (*t.capabilities, *t.optional):
            assert cap in CAPABILITIES, (t.name, cap)
        assert not set(t.capabilities) & set(t.optional)
    assert DEVICE_TYPES["light.dimmer"].capabilities == ("ON_OFF", "BRIGHTNESS")
    assert DEVICE_TYPES["sensor.climate"].capabilities[:2] == (
        "TEMPERATURE_SENSOR",
        "HUMIDITY_SENSOR",
    )


@pytest.mark.parametrize(
    ("device_type", "events"),
    [
        ("camera", ("person_detected", "motion_detected")),
        ("doorbell", ("ring",)),
        ("button", ("press", "double_press", "long_press")),
        ("light.dimmer", ()),
        ("toaster", ()),
    ],
)
def test_events(device_type: str, events: tuple[str, ...]) -> None:
    assert events_of(device_type) == events


def test_known_capabilities() -> None:
    names = [c.name for c in known_capabilities(["BRIGHTNESS", "FOO", "ON_OFF", "BRIGHTNESS", 3])]
    assert names == ["BRIGHTNESS", "ON_OFF"]
    assert [c.name for c in known_capabilities("ON_OFF")] == ["ON_OFF"]  # not O, N, _, ...
    assert known_capabilities(None) == ()  # type: ignore[arg-type]
    assert set(attributes_of(["ON_OFF", "BRIGHTNESS"])) == {"powerState", "brightness"}


def test_table_is_immutable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        CAPABILITIES["ON_OFF"].name = "X"  # type: ignore[misc]
    with pytest.raises(TypeError):
        CAPABILITIES["X"] = CAPABILITIES["ON_OFF"]  # type: ignore[index]
    with pytest.raises(TypeError):
        DEVICE_TYPES["x"] = DEVICE_TYPES["lock"]  # type: ignore[index]


def test_formatting_helpers() -> None:
    assert format_number(40.0) == "40"
    assert format_number(40.5) == "40.5"
    assert format_number(-55) == "-55"
    assert format_value("on") == "'on'"
    assert format_value(True) == "true"
    assert format_value(None) == "null"
    assert format_value([1]) == "array"
    assert format_value("x" * 100).endswith("...'")
    assert attributes_of(["BRIGHTNESS"])["brightness"].range_text() == "0..100%"
    assert attributes_of(["THERMOSTAT"])["targetTemperature"].range_text() == "5..35 °C"


def test_docs_embed_the_generated_tables() -> None:
    """docs/capabilities.md carries markdown_tables() verbatim between its markers."""
    text = DOC.read_text(encoding="utf-8")
    begin, end = "<!-- capability-tables:begin -->\n", "<!-- capability-tables:end -->"
    assert begin in text and end in text
    embedded = text.split(begin, 1)[1].split(end, 1)[0]
    assert embedded.strip() == markdown_tables().strip(), (
        "docs/capabilities.md is out of date: paste domain.capabilities.markdown_tables() "
        "between the markers"
    )
