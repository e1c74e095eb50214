"""The capability table: the one place where capabilities, attributes and commands are defined.

CONTRACT.md section 3 names the capabilities, their camelCase attributes and their commands.
This module gives each of them a precise shape (kind, allowed values or range, unit, deadband)
and says how every command turns into a desired-state patch. Validation (``domain.validate``),
no-op detection (``domain.dedupe``) and command planning (``domain.commands``) read it; nothing
else should hard-code an attribute name or a range.

Everything here is immutable and pure: frozen dataclasses and read-only mappings.
``docs/capabilities.md`` embeds ``markdown_tables()``; a unit test keeps the two in step.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType


class Kind(StrEnum):
    """The JSON shape of an attribute or a command parameter."""

    ENUM = "enum"  # a string from a fixed set
    INTEGER = "integer"  # a whole number (40.0 is accepted as 40, 40.5 is not)
    NUMBER = "number"  # any finite number; integers are accepted and become floats
    BOOLEAN = "boolean"  # true / false, never 0 / 1
    OBJECT = "object"  # named fields, each an attribute of its own


@dataclass(frozen=True, kw_only=True)
class ValueSpec:
    """What a value may be: shared by attributes (and their fields) and command parameters."""

    name: str
    kind: Kind
    values: tuple[str, ...] = ()  # ENUM: the allowed strings, exact case
    minimum: float | None = None  # INTEGER / NUMBER: inclusive bounds
    maximum: float | None = None
    unit: str | None = None
    description: str = ""

    def range_text(self) -> str:
        """``0..100%``, ``5..35 °C``; empty when the value has no bounds."""
        if self.minimum is None and self.maximum is None:
            return ""
        lo = "" if self.minimum is None else format_number(self.minimum)
        hi = "" if self.maximum is None else format_number(self.maximum)
        return f"{lo}..{hi}{unit_suffix(self.unit)}"

    def shape_text(self) -> str:
        """A short human description: ``integer 0..100%``, ``one of 'ON', 'OFF'``."""
        if self.kind is Kind.ENUM:
            return "one of " + quote_list(self.values)
        if self.kind is Kind.BOOLEAN:
            return "true or false"
        if self.kind in (Kind.INTEGER, Kind.NUMBER):
            word = "whole number" if self.kind is Kind.INTEGER else "number"
            rng = self.range_text()
            return f"{word} {rng}" if rng else word
        return "object"


@dataclass(frozen=True, kw_only=True)
class Attribute(ValueSpec):
    """A piece of reported (and, when a command sets it, desired) state."""

    # A numeric change smaller than this, measured from the last accepted value, is no change.
    deadband: float = 0.0
    fields: tuple[Attribute, ...] = ()  # OBJECT: its fields; reports may carry only some

    def field(self, name: str) -> Attribute | None:
        for f in self.fields:
            if f.name == name:
                return f
        return None

    def shape_text(self) -> str:
        if self.kind is Kind.OBJECT:
            return "object {" + ", ".join(f"{f.name}: {f.shape_text()}" for f in self.fields) + "}"
        return super().shape_text()


@dataclass(frozen=True, kw_only=True)
class Parameter(ValueSpec):
    """A command parameter. Parameters are scalars (enum, integer, number or boolean)."""

    required: bool = True


# -- how a command becomes desired state ------------------------------------------------------


@dataclass(frozen=True)
class SetValue:
    """desired[path] = value (a constant: turnOn sets powerState to ON)."""

    path: str
    value: str | int | float | bool

    def text(self) -> str:
        return f"{self.path} = {format_value(self.value)}"


@dataclass(frozen=True)
class FromParameter:
    """desired[path] = parameters[parameter]; skipped when an optional parameter is absent."""

    path: str
    parameter: str

    def text(self) -> str:
        return f"{self.path} = {self.parameter}"


@dataclass(frozen=True)
class Toggle:
    """desired[path] = ``off`` when the reported value is ``on``, else ``on``.

    An unknown current value (never reported) counts as "not on", so toggle then switches on.
    """

    path: str
    on: str
    off: str

    def text(self) -> str:
        return (
            f"{self.path} = {format_value(self.off)} if reported {self.path} is "
            f"{format_value(self.on)}, else {format_value(self.on)}"
        )


Effect = SetValue | FromParameter | Toggle


@dataclass(frozen=True, kw_only=True)
class Command:
    name: str
    parameters: tuple[Parameter, ...] = ()
    effects: tuple[Effect, ...] = ()
    description: str = ""

    def parameter(self, name: str) -> Parameter | None:
        for p in self.parameters:
            if p.name == name:
                return p
        return None

    def signature(self) -> str:
        """``setTemperature {temperature, mode?}``"""
        if not self.parameters:
            return self.name
        names = ", ".join(p.name + ("" if p.required else "?") for p in self.parameters)
        return f"{self.name} {{{names}}}"

    def desired_text(self) -> str:
        parts = []
        for e in self.effects:
            text = e.text()
            if isinstance(e, FromParameter):
                p = self.parameter(e.parameter)
                if p is not None and not p.required:
                    text += " (if given)"
            parts.append(text)
        return "; ".join(parts)


@dataclass(frozen=True, kw_only=True)
class Capability:
    name: str
    attributes: tuple[Attribute, ...]
    commands: tuple[Command, ...] = ()
    description: str = ""

    def attribute(self, name: str) -> Attribute | None:
        for a in self.attributes:
            if a.name == name:
                return a
        return None

    def command(self, name: str) -> Command | None:
        for c in self.commands:
            if c.name == name:
                return c
        return None

    @property
    def writable(self) -> frozenset[str]:
        """Top-level attributes some command of this capability sets (the rest are report-only)."""
        return frozenset(e.path.split(".")[0] for c in self.commands for e in c.effects)


@dataclass(frozen=True, kw_only=True)
class DeviceType:
    name: str
    capabilities: tuple[str, ...]  # what a device of this type typically has
    optional: tuple[str, ...] = ()  # what it often has as well
    events: tuple[str, ...] = ()  # momentary events it sends on hub/{home}/event/{device}
    description: str = ""


# -- formatting helpers (shared with validate / commands so messages read the same) ------------


def format_number(x: float) -> str:
    """``40`` for 40 and 40.0, ``40.5`` for 40.5."""
    if isinstance(x, float) and x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    return repr(x)


def unit_suffix(unit: str | None) -> str:
    if not unit:
        return ""
    return unit if unit == "%" else f" {unit}"


def format_value(v: object) -> str:
    """A JSON value as a person reads it in a message: 'on', 40, true, null."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return format_number(v)
    if isinstance(v, str):
        s = v if len(v) <= 40 else v[:37] + "..."
        return f"'{s}'"
    return json_type(v)


def quote_list(values: Iterable[str]) -> str:
    return ", ".join(f"'{v}'" for v in values)


def json_type(v: object) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, Mapping):
        return "object"
    if isinstance(v, list | tuple):
        return "array"
    return type(v).__name__


# -- the table ---------------------------------------------------------------------------------

PERCENT = "%"
CELSIUS = "°C"
KELVIN = "K"
LUX = "lx"
DEGREE = "°"

# Ranges the contract leaves open (documented in docs/capabilities.md).
TEMPERATURE_RANGE = (-55.0, 125.0)  # °C, what common sensor chips measure
TARGET_TEMPERATURE_RANGE = (5.0, 35.0)  # °C, what common thermostats accept
COLOR_TEMPERATURE_RANGE = (1000, 10000)  # kelvin, candle light to blue sky
ILLUMINANCE_RANGE = (0.0, 200000.0)  # lux, darkness to beyond direct sunlight

# Deadbands: sensor jitter smaller than this is not a change.
TEMPERATURE_DEADBAND = 0.5  # °C
HUMIDITY_DEADBAND = 1.0  # %
ILLUMINANCE_DEADBAND = 10.0  # lx
BATTERY_DEADBAND = 1.0  # %

_MODES = ("heat", "cool", "auto", "off")


def _percent(
    name: str, description: str, *, integer: bool = True, deadband: float = 0.0
) -> Attribute:
    return Attribute(
        name=name,
        kind=Kind.INTEGER if integer else Kind.NUMBER,
        minimum=0,
        maximum=100,
        unit=PERCENT,
        deadband=deadband,
        description=description,
    )


_CAPABILITY_LIST: tuple[Capability, ...] = (
    Capability(
        name="ON_OFF",
        description="Something that can be switched on and off.",
        attributes=(Attribute(name="powerState", kind=Kind.ENUM, values=("ON", "OFF")),),
        commands=(
            Command(name="turnOn", effects=(SetValue("powerState", "ON"),)),
            Command(name="turnOff", effects=(SetValue("powerState", "OFF"),)),
            Command(
                name="toggle",
                effects=(Toggle("powerState", on="ON", off="OFF"),),
                description="Flips the reported powerState; switches on when none was reported.",
            ),
        ),
    ),
    Capability(
        name="BRIGHTNESS",
        description="A dimmable light level.",
        attributes=(_percent("brightness", "0 is fully dimmed, 100 full brightness"),),
        commands=(
            Command(
                name="setBrightness",
                parameters=(
                    Parameter(
                        name="brightness", kind=Kind.INTEGER, minimum=0, maximum=100, unit=PERCENT
                    ),
                ),
                effects=(FromParameter("brightness", "brightness"),),
            ),
        ),
    ),
    Capability(
        name="COLOR_CONTROL",
        description="Colour as hue/saturation, or white as a colour temperature.",
        attributes=(
            Attribute(
                name="color",
                kind=Kind.OBJECT,
                fields=(
                    Attribute(name="hue", kind=Kind.NUMBER, minimum=0, maximum=360, unit=DEGREE),
                    Attribute(
                        name="saturation", kind=Kind.NUMBER, minimum=0, maximum=100, unit=PERCENT
                    ),
                ),
            ),
            Attribute(
                name="colorTemperature",
                kind=Kind.INTEGER,
                minimum=COLOR_TEMPERATURE_RANGE[0],
                maximum=COLOR_TEMPERATURE_RANGE[1],
                unit=KELVIN,
            ),
        ),
        commands=(
            Command(
                name="setColor",
                parameters=(
                    Parameter(name="hue", kind=Kind.NUMBER, minimum=0, maximum=360, unit=DEGREE),
                    Parameter(
                        name="saturation", kind=Kind.NUMBER, minimum=0, maximum=100, unit=PERCENT
                    ),
                ),
                effects=(
                    FromParameter("color.hue", "hue"),
                    FromParameter("color.saturation", "saturation"),
                ),
            ),
            Command(
                name="setColorTemperature",
                parameters=(
                    Parameter(
                        name="kelvin",
                        kind=Kind.INTEGER,
                        minimum=COLOR_TEMPERATURE_RANGE[0],
                        maximum=COLOR_TEMPERATURE_RANGE[1],
                        unit=KELVIN,
                    ),
                ),
                effects=(FromParameter("colorTemperature", "kelvin"),),
            ),
        ),
    ),
    Capability(
        name="THERMOSTAT",
        description="A set point and an operating mode. The measured temperature is "
        "TEMPERATURE_SENSOR's.",
        attributes=(
            Attribute(
                name="targetTemperature",
                kind=Kind.NUMBER,
                minimum=TARGET_TEMPERATURE_RANGE[0],
                maximum=TARGET_TEMPERATURE_RANGE[1],
                unit=CELSIUS,
            ),
            Attribute(name="mode", kind=Kind.ENUM, values=_MODES),
        ),
        commands=(
            Command(
                name="setTemperature",
                parameters=(
                    Parameter(
                        name="temperature",
                        kind=Kind.NUMBER,
                        minimum=TARGET_TEMPERATURE_RANGE[0],
                        maximum=TARGET_TEMPERATURE_RANGE[1],
                        unit=CELSIUS,
                    ),
                    Parameter(name="mode", kind=Kind.ENUM, values=_MODES, required=False),
                ),
                effects=(
                    FromParameter("targetTemperature", "temperature"),
                    FromParameter("mode", "mode"),
                ),
            ),
            Command(
                name="setMode",
                parameters=(Parameter(name="mode", kind=Kind.ENUM, values=_MODES),),
                effects=(FromParameter("mode", "mode"),),
            ),
        ),
    ),
    Capability(
        name="TEMPERATURE_SENSOR",
        description="A measured temperature.",
        attributes=(
            Attribute(
                name="temperature",
                kind=Kind.NUMBER,
                minimum=TEMPERATURE_RANGE[0],
                maximum=TEMPERATURE_RANGE[1],
                unit=CELSIUS,
                deadband=TEMPERATURE_DEADBAND,
            ),
        ),
    ),
    Capability(
        name="HUMIDITY_SENSOR",
        description="Relative humidity.",
        attributes=(
            _percent("humidity", "relative humidity", integer=False, deadband=HUMIDITY_DEADBAND),
        ),
    ),
    Capability(
        name="ILLUMINANCE_SENSOR",
        description="Light level.",
        attributes=(
            Attribute(
                name="illuminance",
                kind=Kind.NUMBER,
                minimum=ILLUMINANCE_RANGE[0],
                maximum=ILLUMINANCE_RANGE[1],
                unit=LUX,
                deadband=ILLUMINANCE_DEADBAND,
            ),
        ),
    ),
    Capability(
        name="MOTION_SENSOR",
        description="Motion (occupancy) detected or not.",
        attributes=(Attribute(name="motion", kind=Kind.BOOLEAN),),
    ),
    Capability(
        name="CONTACT_SENSOR",
        description="A door or window contact.",
        attributes=(Attribute(name="contact", kind=Kind.ENUM, values=("open", "closed")),),
    ),
    Capability(
        name="LOCK",
        description="A lock.",
        attributes=(Attribute(name="lockState", kind=Kind.ENUM, values=("LOCKED", "UNLOCKED")),),
        commands=(
            Command(name="lock", effects=(SetValue("lockState", "LOCKED"),)),
            Command(name="unlock", effects=(SetValue("lockState", "UNLOCKED"),)),
        ),
    ),
    Capability(
        name="POSITION",
        description="Blinds, shades, covers, valves: 0 is closed, 100 fully open.",
        attributes=(_percent("position", "0 closed, 100 fully open"),),
        commands=(
            Command(
                name="setPosition",
                parameters=(
                    Parameter(
                        name="position", kind=Kind.INTEGER, minimum=0, maximum=100, unit=PERCENT
                    ),
                ),
                effects=(FromParameter("position", "position"),),
            ),
            Command(name="open", effects=(SetValue("position", 100),)),
            Command(name="close", effects=(SetValue("position", 0),)),
        ),
    ),
    Capability(
        name="BATTERY",
        description="Remaining battery charge.",
        attributes=(_percent("battery", "remaining charge", deadband=BATTERY_DEADBAND),),
    ),
)

CAPABILITIES: Mapping[str, Capability] = MappingProxyType({c.name: c for c in _CAPABILITY_LIST})

_DEVICE_TYPE_LIST: tuple[DeviceType, ...] = (
    DeviceType(name="light.switch", capabilities=("ON_OFF",), description="on/off light"),
    DeviceType(
        name="light.dimmer", capabilities=("ON_OFF", "BRIGHTNESS"), description="dimmable light"
    ),
    DeviceType(
        name="light.color",
        capabilities=("ON_OFF", "BRIGHTNESS", "COLOR_CONTROL"),
        description="colour or tunable-white light",
    ),
    DeviceType(name="switch.plug", capabilities=("ON_OFF",), description="smart plug or relay"),
    DeviceType(
        name="thermostat",
        capabilities=("THERMOSTAT", "TEMPERATURE_SENSOR"),
        optional=("HUMIDITY_SENSOR", "BATTERY"),
        description="thermostat or radiator valve",
    ),
    DeviceType(
        name="lock",
        capabilities=("LOCK", "BATTERY"),
        optional=("CONTACT_SENSOR",),
        description="door lock",
    ),
    DeviceType(
        name="sensor.motion",
        capabilities=("MOTION_SENSOR", "BATTERY"),
        optional=("ILLUMINANCE_SENSOR", "TEMPERATURE_SENSOR"),
        description="motion / occupancy sensor",
    ),
    DeviceType(
        name="sensor.contact",
        capabilities=("CONTACT_SENSOR", "BATTERY"),
        optional=("TEMPERATURE_SENSOR",),
        description="door / window contact",
    ),
    DeviceType(
        name="sensor.temperature",
        capabilities=("TEMPERATURE_SENSOR", "BATTERY"),
        description="temperature sensor",
    ),
    DeviceType(
        name="sensor.climate",
        capabilities=("TEMPERATURE_SENSOR", "HUMIDITY_SENSOR", "BATTERY"),
        optional=("ILLUMINANCE_SENSOR",),
        description="temperature + humidity sensor",
    ),
    DeviceType(
        name="blinds",
        capabilities=("POSITION",),
        optional=("BATTERY",),
        description="blinds, shades, curtains",
    ),
    DeviceType(
        name="camera",
        capabilities=(),
        optional=("ON_OFF", "MOTION_SENSOR", "BATTERY"),
        events=("person_detected", "motion_detected"),
        description="camera; detections are events",
    ),
    DeviceType(
        name="doorbell",
        capabilities=(),
        optional=("BATTERY",),
        events=("ring",),
        description="doorbell",
    ),
    DeviceType(
        name="button",
        capabilities=("BATTERY",),
        events=("press", "double_press", "long_press"),
        description="wireless button / remote",
    ),
    # Found on the LAN by mDNS (hub/adapters/mdns_map.py), not controlled through a capability.
    DeviceType(name="bridge", capabilities=(), description="a bridge of other devices (Hue)"),
    DeviceType(name="media_player", capabilities=(), description="networked speaker or screen"),
    DeviceType(
        name="network.device", capabilities=(), description="a WiFi device of an unknown kind"
    ),
)

DEVICE_TYPES: Mapping[str, DeviceType] = MappingProxyType({t.name: t for t in _DEVICE_TYPE_LIST})
# The kinds mDNS finds on the LAN: found, not controlled, and not radio devices (the
# simulator has no models of them).
LAN_TYPES: frozenset[str] = frozenset({"bridge", "media_player", "network.device"})


def _owner_index() -> Mapping[str, Capability]:
    index: dict[str, Capability] = {}
    for cap in _CAPABILITY_LIST:
        for attr in cap.attributes:
            if attr.name in index:  # a table error: an attribute must have one owner
                raise RuntimeError(
                    f"attribute {attr.name} in {index[attr.name].name} and {cap.name}"
                )
            index[attr.name] = cap
    return MappingProxyType(index)


_OWNERS = _owner_index()
ATTRIBUTE_NAMES: frozenset[str] = frozenset(_OWNERS)


# -- lookups -----------------------------------------------------------------------------------


def attribute_owner(name: str) -> Capability | None:
    """The capability that defines top-level attribute ``name`` (None if no capability does)."""
    return _OWNERS.get(name) if isinstance(name, str) else None


def capability(name: str) -> Capability | None:
    return CAPABILITIES.get(name) if isinstance(name, str) else None


def known_capabilities(names: Iterable[object]) -> tuple[Capability, ...]:
    """The known capabilities among ``names``, in the order given, without duplicates.

    Unknown names (and non-strings) are skipped: ``validate_descriptor`` reports them.
    A bare string counts as one name, not as a sequence of letters.
    """
    if isinstance(names, str):
        names = (names,)
    seen: dict[str, Capability] = {}
    try:
        for n in names:
            cap = capability(n) if isinstance(n, str) else None
            if cap is not None and cap.name not in seen:
                seen[cap.name] = cap
    except TypeError:  # not iterable at all
        return ()
    return tuple(seen.values())


def attributes_of(capabilities: Iterable[object]) -> dict[str, Attribute]:
    """Top-level attribute name -> Attribute for a device with these capabilities."""
    return {a.name: a for c in known_capabilities(capabilities) for a in c.attributes}


def events_of(device_type: str) -> tuple[str, ...]:
    t = DEVICE_TYPES.get(device_type) if isinstance(device_type, str) else None
    return t.events if t is not None else ()


# -- documentation -----------------------------------------------------------------------------


def markdown_tables() -> str:
    """The capability, command and device-type tables of docs/capabilities.md."""
    lines = [
        "### Attributes",
        "",
        "| capability | attribute | kind | allowed | unit | deadband |",
        "|---|---|---|---|---|---|",
    ]

    def attr_rows(cap: str, attr: Attribute, prefix: str = "") -> None:
        if attr.kind is Kind.ENUM:
            allowed = quote_list(attr.values).replace("'", "`")
        elif attr.kind is Kind.BOOLEAN:
            allowed = "`true` / `false`"
        elif attr.kind is Kind.OBJECT:
            allowed = "fields " + ", ".join(f"`{f.name}`" for f in attr.fields) + " (partial ok)"
        else:
            lo = "" if attr.minimum is None else format_number(attr.minimum)
            hi = "" if attr.maximum is None else format_number(attr.maximum)
            allowed = f"{lo}..{hi}"
        deadband = format_number(float(attr.deadband)) if attr.deadband else "-"
        unit = attr.unit or "-"
        lines.append(
            f"| {cap} | `{prefix}{attr.name}` | {attr.kind.value} | {allowed} | {unit} "
            f"| {deadband} |"
        )
        for f in attr.fields:
            attr_rows(cap, f, prefix=f"{prefix}{attr.name}.")

    for cap in _CAPABILITY_LIST:
        for attr in cap.attributes:
            attr_rows(cap.name, attr)

    lines += [
        "",
        "### Commands",
        "",
        "| capability | command | parameters | desired state |",
        "|---|---|---|---|",
    ]
    for cap in _CAPABILITY_LIST:
        if not cap.commands:
            continue
        for cmd in cap.commands:
            params = (
                "; ".join(
                    f"`{p.name}`{'' if p.required else ' (optional)'}: {p.shape_text()}"
                    for p in cmd.parameters
                )
                or "-"
            )
            lines.append(f"| {cap.name} | `{cmd.name}` | {params} | {cmd.desired_text()} |")
    lines.append("")
    lines.append(
        "Report-only capabilities (no commands): "
        + ", ".join(c.name for c in _CAPABILITY_LIST if not c.commands)
        + "."
    )

    lines += [
        "",
        "### Device types",
        "",
        "| type | typical capabilities | often also | events |",
        "|---|---|---|---|",
    ]
    for t in _DEVICE_TYPE_LIST:
        caps = ", ".join(t.capabilities) or "-"
        optional = ", ".join(t.optional) or "-"
        events = ", ".join(f"`{e}`" for e in t.events) or "-"
        lines.append(f"| `{t.name}` | {caps} | {optional} | {events} |")
    return "\n".join(lines) + "\n"
