"""What every radio's mapping shares: the command error, parameter checks, the device type
a set of capabilities makes, and merging partial states (pure)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any


def in_contract_order(caps: Iterable[str]) -> list[str]:
    """Capabilities in CONTRACT.md section 3's order (the domain table's), once each."""
    from domain.capabilities import CAPABILITIES

    present = set(caps)
    return [c for c in CAPABILITIES if c in present]


# HA (Zigbee) device ids that mean "plug" when the device only switches on and off
PLUG_DEVICE_IDS = frozenset({0x0009, 0x0051, 0x010A})


class CommandError(ValueError):
    """A command this device cannot carry out; the message says why (sent in the ack)."""


def device_type(caps: Iterable[str], ha_device_id: int | None = None) -> str | None:
    """The CONTRACT device type for a set of capabilities; None when nothing fits."""
    cs = set(caps)
    if "COLOR_CONTROL" in cs:
        return "light.color"
    if "BRIGHTNESS" in cs:
        return "light.dimmer"
    if "ON_OFF" in cs:
        return "switch.plug" if ha_device_id in PLUG_DEVICE_IDS else "light.switch"
    if "THERMOSTAT" in cs:
        return "thermostat"
    if "LOCK" in cs:
        return "lock"
    if "POSITION" in cs:
        return "blinds"
    if "CONTACT_SENSOR" in cs:
        return "sensor.contact"
    if "MOTION_SENSOR" in cs:
        return "sensor.motion"
    if "TEMPERATURE_SENSOR" in cs and "HUMIDITY_SENSOR" in cs:
        return "sensor.climate"
    if "TEMPERATURE_SENSOR" in cs:
        return "sensor.temperature"
    return None


def number_parameter(parameters: Mapping[str, Any], name: str, lo: float, hi: float) -> float:
    v = parameters.get(name)
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise CommandError(f"parameter {name!r} must be a number, got {v!r}")
    if not lo <= v <= hi:
        raise CommandError(f"parameter {name!r} must be within {lo:g}..{hi:g}, got {v!r}")
    return float(v)


def merge_state(into: dict[str, Any], patch: Mapping[str, Any]) -> None:
    """Merge a partial state; object attributes (color) merge field by field."""
    for k, v in patch.items():
        if isinstance(v, dict) and isinstance(into.get(k), dict):
            into[k] = {**into[k], **v}
        else:
            into[k] = v


def checked_state(
    caps: Iterable[str], patch: Mapping[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """The part of a mapped state the device's capabilities accept (domain.validate, the
    one place that knows the ranges), and why the rest was left out: a radio may report
    what a capability cannot hold (a freezer's -60 °C), which becomes a dead letter."""
    from domain.validate import validate_state

    result = validate_state(caps, patch)
    return result.valid, [e.reason for e in result.errors]
