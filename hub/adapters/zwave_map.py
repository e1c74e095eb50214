"""Z-Wave command classes and values <-> homestream capabilities (pure, no client library).

A value is named as Z-Wave JS names it: (command class, property, property key).
``capabilities`` reads a node's values; ``state_from_value`` maps one value to a partial
state; ``set_values`` turns a cloud command into the values to set. Color Switch maps its
red/green/blue to hue and saturation (no white channels: setColorTemperature fails with
the reason). Not mapped yet: Window Covering 106.
"""

from __future__ import annotations

import colorsys
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from hub.adapters.common import CommandError, in_contract_order, number_parameter

BINARY_SWITCH, MULTILEVEL_SWITCH, COLOR_SWITCH = 37, 38, 51
DOOR_LOCK, MULTILEVEL_SENSOR, NOTIFICATION, BATTERY = 98, 49, 113, 128
THERMOSTAT_MODE, THERMOSTAT_SETPOINT, WINDOW_COVERING = 64, 67, 106

SENSORS = {"Air temperature": "temperature", "Humidity": "humidity", "Illuminance": "illuminance"}
SENSOR_CAPABILITY = {
    "temperature": "TEMPERATURE_SENSOR",
    "humidity": "HUMIDITY_SENSOR",
    "illuminance": "ILLUMINANCE_SENSOR",
}
MOTION = ("Home Security", "Motion sensor status")
DOOR = ("Access Control", "Door state")
MODES = {0: "off", 1: "heat", 2: "cool", 3: "auto"}
MODE_CODES = {v: k for k, v in MODES.items()}
HEATING_SETPOINT = 1

ValueKey = tuple[int, str, Any]  # (command class, property, property key)


def capabilities(values: Iterable[ValueKey]) -> list[str]:
    caps: set[str] = set()
    for cc, prop, key in values:
        if cc == BINARY_SWITCH:
            caps.add("ON_OFF")
        elif cc == MULTILEVEL_SWITCH:
            caps |= {"ON_OFF", "BRIGHTNESS"}
        elif cc == COLOR_SWITCH and prop in ("currentColor", "hexColor"):
            caps.add("COLOR_CONTROL")
        elif cc == DOOR_LOCK:
            caps.add("LOCK")
        elif cc == MULTILEVEL_SENSOR and prop in SENSORS:
            caps.add(SENSOR_CAPABILITY[SENSORS[prop]])
        elif cc == NOTIFICATION and (prop, key) == MOTION:
            caps.add("MOTION_SENSOR")
        elif cc == NOTIFICATION and (prop, key) == DOOR:
            caps.add("CONTACT_SENSOR")
        elif cc == BATTERY:
            caps.add("BATTERY")
        elif cc in (THERMOSTAT_MODE, THERMOSTAT_SETPOINT):
            caps.add("THERMOSTAT")
    return in_contract_order(caps)


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _hue_saturation(red: Any, green: Any, blue: Any) -> dict[str, Any]:
    rgb = [_num(x) for x in (red, green, blue)]
    if any(x is None or not 0 <= x <= 255 for x in rgb):
        return {}
    h, s, _v = colorsys.rgb_to_hsv(*(float(x or 0) / 255 for x in rgb))
    return {"color": {"hue": round(h * 360) % 360, "saturation": round(s * 100)}}


def state_from_value(cc: int, prop: str, key: Any, value: Any) -> dict[str, Any]:
    """One Z-Wave JS value -> a partial state; {} when it maps to nothing (or is unknown)."""
    if value is None:
        return {}
    if cc == COLOR_SWITCH and prop == "currentColor" and key is None and isinstance(value, dict):
        return _hue_saturation(value.get("red"), value.get("green"), value.get("blue"))
    if cc == COLOR_SWITCH and prop == "hexColor" and isinstance(value, str) and len(value) == 6:
        try:
            return _hue_saturation(*(int(value[i : i + 2], 16) for i in (0, 2, 4)))
        except ValueError:
            return {}
    if cc == BINARY_SWITCH and prop == "currentValue" and isinstance(value, bool):
        return {"powerState": "ON" if value else "OFF"}
    n = _num(value)
    if cc == MULTILEVEL_SWITCH and prop == "currentValue" and n is not None and 0 <= n <= 99:
        # Z-Wave levels are percent with 99 as full on
        return {"powerState": "ON" if n > 0 else "OFF", "brightness": 100 if n >= 99 else round(n)}
    if cc == DOOR_LOCK and prop == "currentMode" and n is not None:
        return {"lockState": "LOCKED" if n == 0xFF else "UNLOCKED"}
    if cc == MULTILEVEL_SENSOR and prop in SENSORS and n is not None:
        attr = SENSORS[prop]
        if attr == "humidity" and not 0 <= n <= 100:
            return {}
        return {attr: round(n, 2)}
    if cc == NOTIFICATION and (prop, key) == MOTION and n is not None:
        return {"motion": n == 8}
    if cc == NOTIFICATION and (prop, key) == DOOR and n is not None:
        return {"contact": "open" if n == 22 else "closed"}
    if cc == BATTERY and prop == "level" and n is not None and 0 <= n <= 100:
        return {"battery": round(n)}
    if cc == THERMOSTAT_MODE and prop == "mode" and int(n or -1) in MODES:
        return {"mode": MODES[int(n or 0)]}
    if (
        cc == THERMOSTAT_SETPOINT
        and prop == "setpoint"
        and key == HEATING_SETPOINT
        and n is not None
    ):
        return {"targetTemperature": n}
    return {}


@dataclass(frozen=True)
class SetValue:
    cc: int
    prop: str
    key: Any
    value: Any


def set_values(
    ccs: set[int], capability: str, command: str, p: Mapping[str, Any], current: Mapping[str, Any]
) -> list[SetValue]:
    """A cloud command -> Z-Wave JS values to set; CommandError when it has no Z-Wave form."""
    dimmer = MULTILEVEL_SWITCH in ccs
    key = (capability, command)
    if capability == "ON_OFF" and command in ("turnOn", "turnOff", "toggle"):
        on = command == "turnOn" or (command == "toggle" and current.get("powerState") != "ON")
        if dimmer:
            return [SetValue(MULTILEVEL_SWITCH, "targetValue", None, 255 if on else 0)]
        return [SetValue(BINARY_SWITCH, "targetValue", None, on)]
    if key == ("BRIGHTNESS", "setBrightness") and dimmer:
        level = min(99, round(number_parameter(p, "brightness", 0, 100)))
        return [SetValue(MULTILEVEL_SWITCH, "targetValue", None, level)]
    if key == ("COLOR_CONTROL", "setColor") and COLOR_SWITCH in ccs:
        hue = number_parameter(p, "hue", 0, 360)
        sat = number_parameter(p, "saturation", 0, 100)
        rgb = colorsys.hsv_to_rgb(hue / 360, sat / 100, 1.0)
        red, green, blue = (round(x * 255) for x in rgb)
        return [
            SetValue(COLOR_SWITCH, "targetColor", None, {"red": red, "green": green, "blue": blue})
        ]
    if key == ("LOCK", "lock"):
        return [SetValue(DOOR_LOCK, "targetMode", None, 0xFF)]
    if key == ("LOCK", "unlock"):
        return [SetValue(DOOR_LOCK, "targetMode", None, 0x00)]
    if capability == "THERMOSTAT" and command in ("setMode", "setTemperature"):
        out = []
        if command == "setTemperature":
            temp = number_parameter(p, "temperature", 5, 35)
            out.append(SetValue(THERMOSTAT_SETPOINT, "setpoint", HEATING_SETPOINT, temp))
        mode = p.get("mode")
        if mode is not None or command == "setMode":
            if mode not in MODE_CODES:
                raise CommandError(f"mode must be one of {', '.join(MODE_CODES)}, got {mode!r}")
            out.append(SetValue(THERMOSTAT_MODE, "mode", None, MODE_CODES[mode]))
        return out
    raise CommandError(f"{capability}.{command} has no Z-Wave form on this device")
