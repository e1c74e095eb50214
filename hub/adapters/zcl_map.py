"""Zigbee ZCL <-> homestream capabilities: the one place that knows both (pure, no zigpy).

* ``capabilities``: a device's server clusters (and, for an IAS zone, its zone type) ->
  CONTRACT.md section 3 capabilities (``common.device_type`` makes the type of them).
* ``state_from_attribute`` / ``state_from_zone_status``: one reported ZCL attribute value
  -> a partial state in capability attributes (units converted: 0..254 levels to percent,
  mireds to kelvin, hundredths of a degree to degrees, ...).
* ``cluster_commands``: a cloud command (capability, command, parameters) -> the ZCL
  cluster commands that carry it out, named as zigpy names them.

Values outside what a device may report (a level of 255 "invalid", a temperature of
0x8000 "unknown") map to nothing rather than to a wrong number.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hub.adapters.common import CommandError, in_contract_order, number_parameter

POWER_CONFIG = 0x0001
ON_OFF = 0x0006
LEVEL = 0x0008
DOOR_LOCK = 0x0101
WINDOW_COVERING = 0x0102
COLOR = 0x0300
ILLUMINANCE = 0x0400
TEMPERATURE = 0x0402
HUMIDITY = 0x0405
OCCUPANCY = 0x0406
IAS_ZONE = 0x0500

# IAS zone types (ZCL 8.2.2.2.1.2) that carry a capability
ZONE_MOTION = 0x000D
ZONE_CONTACT = 0x0015
ZONE_CAPABILITY = {ZONE_MOTION: "MOTION_SENSOR", ZONE_CONTACT: "CONTACT_SENSOR"}

CLUSTER_CAPABILITY: Mapping[int, str] = {
    ON_OFF: "ON_OFF",
    LEVEL: "BRIGHTNESS",
    COLOR: "COLOR_CONTROL",
    TEMPERATURE: "TEMPERATURE_SENSOR",
    HUMIDITY: "HUMIDITY_SENSOR",
    ILLUMINANCE: "ILLUMINANCE_SENSOR",
    OCCUPANCY: "MOTION_SENSOR",
    DOOR_LOCK: "LOCK",
    WINDOW_COVERING: "POSITION",
    POWER_CONFIG: "BATTERY",
}

# (cluster, attribute id) the adapter binds, configures reporting for and reads at interview
REPORTED: Mapping[int, tuple[int, ...]] = {
    ON_OFF: (0x0000,),
    LEVEL: (0x0000,),
    COLOR: (0x0000, 0x0001, 0x0007),
    TEMPERATURE: (0x0000,),
    HUMIDITY: (0x0000,),
    ILLUMINANCE: (0x0000,),
    OCCUPANCY: (0x0000,),
    DOOR_LOCK: (0x0000,),
    WINDOW_COVERING: (0x0008,),
    POWER_CONFIG: (0x0021,),
    IAS_ZONE: (0x0002,),
}


def capabilities(clusters: Iterable[int], zone_type: int | None = None) -> list[str]:
    """Capabilities in CONTRACT order for a device's server (input) clusters."""
    present = set(clusters)
    caps = {CLUSTER_CAPABILITY[c] for c in present if c in CLUSTER_CAPABILITY}
    if IAS_ZONE in present and zone_type in ZONE_CAPABILITY:
        caps.add(ZONE_CAPABILITY[zone_type])
    return in_contract_order(caps)


def _pct_of_254(v: int) -> int:
    return max(0, min(100, round(v * 100 / 254)))


def state_from_attribute(cluster: int, attr: int, value: Any) -> dict[str, Any]:
    """One ZCL attribute value -> a partial state (empty when it maps to nothing)."""
    if isinstance(value, bool):
        value = int(value)
    if not isinstance(value, int | float) or (
        isinstance(value, float) and not math.isfinite(value)
    ):
        return {}
    v = int(value)
    if cluster == ON_OFF and attr == 0x0000:
        return {"powerState": "ON" if v else "OFF"}
    if cluster == LEVEL and attr == 0x0000 and 0 <= v <= 254:
        return {"brightness": _pct_of_254(v)}
    if cluster == COLOR and attr == 0x0000 and 0 <= v <= 254:
        return {"color": {"hue": round(v * 360 / 254)}}
    if cluster == COLOR and attr == 0x0001 and 0 <= v <= 254:
        return {"color": {"saturation": _pct_of_254(v)}}
    if cluster == COLOR and attr == 0x0007 and 0 < v < 0xFFFF:
        return {"colorTemperature": round(1_000_000 / v)}
    if cluster == TEMPERATURE and attr == 0x0000 and v != -0x8000:
        return {"temperature": round(v / 100, 2)}
    if cluster == HUMIDITY and attr == 0x0000 and 0 <= v <= 10000:
        return {"humidity": round(v / 100, 1)}
    if cluster == ILLUMINANCE and attr == 0x0000 and 0 <= v < 0xFFFF:
        # MeasuredValue = 10000 * log10(lux) + 1
        return {"illuminance": round(10 ** ((v - 1) / 10000), 1) if v else 0}
    if cluster == OCCUPANCY and attr == 0x0000:
        return {"motion": bool(v & 0x01)}
    if cluster == DOOR_LOCK and attr == 0x0000 and v in (1, 2):
        return {"lockState": "LOCKED" if v == 1 else "UNLOCKED"}
    if cluster == WINDOW_COVERING and attr == 0x0008 and 0 <= v <= 100:
        return {"position": 100 - v}  # ZCL counts percent closed; POSITION counts open
    if cluster == POWER_CONFIG and attr == 0x0021 and 0 <= v <= 200:
        return {"battery": round(v / 2)}
    return {}


def state_from_zone_status(zone_type: int | None, zone_status: int) -> dict[str, Any]:
    """An IAS zone status (bit 0: alarm 1) -> contact or motion; {} for other zones."""
    alarm = bool(zone_status & 0x0001)
    if zone_type == ZONE_CONTACT:
        return {"contact": "open" if alarm else "closed"}
    if zone_type == ZONE_MOTION:
        return {"motion": alarm}
    return {}


@dataclass(frozen=True)
class ClusterCommand:
    cluster: int
    command: str  # zigpy's name of the server command
    args: dict[str, Any] = field(default_factory=dict)


def cluster_commands(
    capability: str,
    command: str,
    parameters: Mapping[str, Any],
    *,
    current: Mapping[str, Any] | None = None,
) -> list[ClusterCommand]:
    """A cloud command -> ZCL commands; CommandError when it has no Zigbee form."""
    p = parameters
    key = (capability, command)
    if key == ("ON_OFF", "turnOn"):
        return [ClusterCommand(ON_OFF, "on")]
    if key == ("ON_OFF", "turnOff"):
        return [ClusterCommand(ON_OFF, "off")]
    if key == ("ON_OFF", "toggle"):
        return [ClusterCommand(ON_OFF, "toggle")]
    if key == ("BRIGHTNESS", "setBrightness"):
        level = round(number_parameter(p, "brightness", 0, 100) * 254 / 100)
        return [
            ClusterCommand(
                LEVEL, "move_to_level_with_on_off", {"level": level, "transition_time": 0}
            )
        ]
    if key == ("COLOR_CONTROL", "setColor"):
        hue = round(number_parameter(p, "hue", 0, 360) * 254 / 360)
        sat = round(number_parameter(p, "saturation", 0, 100) * 254 / 100)
        return [
            ClusterCommand(
                COLOR,
                "move_to_hue_and_saturation",
                {"hue": hue, "saturation": sat, "transition_time": 0},
            )
        ]
    if key == ("COLOR_CONTROL", "setColorTemperature"):
        kelvin = number_parameter(p, "kelvin", 1000, 20000)
        mireds = round(1_000_000 / kelvin)
        return [
            ClusterCommand(
                COLOR, "move_to_color_temp", {"color_temp_mireds": mireds, "transition_time": 0}
            )
        ]
    if key == ("LOCK", "lock"):
        return [ClusterCommand(DOOR_LOCK, "lock_door")]
    if key == ("LOCK", "unlock"):
        return [ClusterCommand(DOOR_LOCK, "unlock_door")]
    if key == ("POSITION", "open"):
        return [ClusterCommand(WINDOW_COVERING, "up_open")]
    if key == ("POSITION", "close"):
        return [ClusterCommand(WINDOW_COVERING, "down_close")]
    if key == ("POSITION", "setPosition"):
        closed = 100 - round(number_parameter(p, "position", 0, 100))
        return [
            ClusterCommand(
                WINDOW_COVERING, "go_to_lift_percentage", {"percentage_lift_value": closed}
            )
        ]
    raise CommandError(f"{capability}.{command} has no Zigbee command")
