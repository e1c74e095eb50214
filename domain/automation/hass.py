"""Home Assistant's entity ids and service calls -> the contract's automation document.

An automation written for Home Assistant names entities (``entity_id: light.hall``) and
calls services (``action: light.turn_on``, ``service:`` before 2024.8, ``target:``,
``data:``). homestream names devices and sends capability commands. :func:`translate`
rewrites the first into the second against the home's devices, so an automations.yaml
entry pastes in with only its ids changed: ``binary_sensor.hall_motion`` becomes
``binary_sensor.hall-pir`` or just ``hall-pir`` (the part after the domain is the device id;
a device whose own id has the dot matches first).

What a Home Assistant state means depends on the device: a state trigger or condition with
no ``attribute`` reads the device's main attribute (a lock's ``lockState``, a light's or
plug's ``powerState``, a sensor's ``motion`` or ``contact``, a thermostat's ``mode``; a
``numeric_state`` reads its one sensor number), and ``"on"``/``"off"``/``"locked"``/...
become that attribute's values. Home Assistant's attribute names (``brightness`` 0-255,
``current_temperature``, ``current_position``, ...) become ours. A bare number as a
duration is seconds in Home Assistant and milliseconds in the contract: a translated
document says ``{"seconds": n}``.

Anything without an equivalent (templates, ``choose``, services homestream has no
command for, a state a device cannot be in) is a problem with its path, never dropped;
the one exception is a light's ``transition``, which homestream's commands have no field
for (the light switches at once).

Pure: the devices are given, as :class:`Device` entries.
"""

from __future__ import annotations

import colorsys
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from domain.areas import matches as in_area
from domain.automation.fields import Problems
from domain.capabilities import Kind, attributes_of
from domain.strictjson import short

__all__ = ["Device", "translate", "uses_hass_spelling"]


@dataclass(frozen=True)
class Device:
    """What translation needs of a registered device."""

    capabilities: tuple[str, ...]
    type: str | None = None
    area: str | None = None  # its area id (``domain.areas.area_of``)


# A state trigger's main attribute, in the order a device's capabilities are tried; the
# entity domain (light., lock., ...) narrows the choice when the paste kept it.
_MAIN_STATE: Final = ("lockState", "powerState", "motion", "contact", "mode")
_STATE_BY_DOMAIN: Final = {
    "light": ("powerState",),
    "switch": ("powerState",),
    "fan": ("powerState",),
    "input_boolean": ("powerState",),
    "lock": ("lockState",),
    "binary_sensor": ("motion", "contact"),
    "climate": ("mode",),
}
_SENSOR_NUMBERS: Final = ("temperature", "humidity", "illuminance", "battery")
_NUMBER_BY_DOMAIN: Final = {"sensor": _SENSOR_NUMBERS, "cover": ("position",)}
# Home Assistant's state text -> the attribute's value.
_STATE_VALUES: Final[dict[str, dict[str, Any]]] = {
    "powerState": {"on": "ON", "off": "OFF"},
    "motion": {"on": True, "off": False},
    "contact": {"on": "open", "off": "closed"},
    "lockState": {"locked": "LOCKED", "unlocked": "UNLOCKED"},
    "mode": {"heat": "heat", "cool": "cool", "auto": "auto", "heat_cool": "auto", "off": "off"},
}
# Home Assistant's attribute name -> ours (and a factor for brightness' 0-255 scale).
_ATTRIBUTES: Final = {
    "brightness": ("brightness", 100 / 255),
    "current_temperature": ("temperature", 1.0),
    "current_humidity": ("humidity", 1.0),
    "current_position": ("position", 1.0),
    "battery_level": ("battery", 1.0),
    "color_temp_kelvin": ("colorTemperature", 1.0),
    "hvac_mode": ("mode", 1.0),
}
_DURATION_KEYS: Final = ("for", "delay", "timeout")
_SERVICE: Final = re.compile(r"[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*")


def uses_hass_spelling(doc: Any) -> bool:
    """True when the document names entities or calls services (anywhere in it)."""
    if isinstance(doc, dict):
        if "entity_id" in doc or "service" in doc or "target" in doc:
            return True
        if isinstance(doc.get("action"), str) and _SERVICE.fullmatch(doc["action"]):
            return True
        return any(uses_hass_spelling(v) for v in doc.values())
    if isinstance(doc, list):
        return any(uses_hass_spelling(v) for v in doc)
    return False


def translate(
    doc: dict[str, Any],
    devices: Mapping[str, Device],
    area_names: Mapping[str, str] | None = None,
) -> tuple[dict[str, Any], Problems]:
    """The document in the contract's terms, and every problem (path, message) found.
    ``area_names``: the home's stored areas, lower-case name -> id (``domain.areas``), so
    an ``area_id`` target may name an area by its id or its name, as ``?area=`` does.

    Paths are the pasted document's (``actions[2].target.entity_id``)."""
    t = _Translator(devices, area_names or {})
    out = dict(doc)
    for plural, singular in (("triggers", "trigger"), ("conditions", "condition")):
        for key in (plural, singular):
            if key in doc:
                read = t.trigger if plural == "triggers" else t.condition
                out[key] = _each(doc[key], key, read)
    for key in ("actions", "action"):
        if key in doc and not isinstance(doc[key], str):
            out[key] = t.actions(doc[key], key)
    return out, t.problems


def _each(raw: Any, path: str, read: Callable[[Any, str], Any]) -> Any:
    if isinstance(raw, dict):
        return read(raw, f"{path}[0]")
    if isinstance(raw, list):
        return [read(item, f"{path}[{i}]") for i, item in enumerate(raw)]
    return raw  # not a list: parse says so


class _Translator:
    def __init__(self, devices: Mapping[str, Device], area_names: Mapping[str, str]) -> None:
        self.devices = devices
        self.area_names = area_names
        self.problems: Problems = []

    # -- triggers and conditions ---------------------------------------------------------
    def trigger(self, raw: Any, path: str) -> Any:
        if not isinstance(raw, dict):
            return raw
        kind = raw.get("trigger", raw.get("platform"))
        return self._entity_rule(raw, path, kind, ("from", "to", "not_from", "not_to"))

    def condition(self, raw: Any, path: str) -> Any:
        if not isinstance(raw, dict):
            return raw
        kind = raw.get("condition")
        out = self._entity_rule(raw, path, kind, ("state",))
        if kind in ("and", "or", "not") and "conditions" in raw:
            out["conditions"] = _each(raw["conditions"], f"{path}.conditions", self.condition)
        return out

    def _entity_rule(
        self, raw: dict[str, Any], path: str, kind: Any, value_keys: tuple[str, ...]
    ) -> dict[str, Any]:
        out = _seconds(raw)
        if "wait_for_trigger" in raw:
            out["wait_for_trigger"] = _each(
                raw["wait_for_trigger"], f"{path}.wait_for_trigger", self.trigger
            )
        if "entity_id" not in raw:
            return out
        if "device_id" in raw:
            self.problems.append((f"{path}.entity_id", "give entity_id or device_id, not both"))
            return out
        found = self._entities(raw["entity_id"], f"{path}.entity_id")
        if found is None:
            return out
        del out["entity_id"]
        ids = [device for device, _ in found]
        out["device_id"] = ids[0] if isinstance(raw["entity_id"], str) and len(ids) == 1 else ids
        if kind not in ("state", "numeric_state"):
            return out
        numeric = kind == "numeric_state"
        attribute, factor = self._attribute(raw, path, found, numeric)
        if attribute is None:
            return out
        out["attribute"] = attribute
        if numeric:
            for key in ("above", "below"):
                value = raw.get(key)
                if isinstance(value, int | float) and not isinstance(value, bool) and factor != 1:
                    out[key] = round(value * factor, 2)
            return out
        for key in value_keys:
            if key in raw:
                out[key] = self._values(raw[key], attribute, factor, f"{path}.{key}")
        return out

    def _attribute(
        self, raw: dict[str, Any], path: str, found: list[tuple[str, str | None]], numeric: bool
    ) -> tuple[str | None, float]:
        given = raw.get("attribute")
        if isinstance(given, str):
            name, factor = _ATTRIBUTES.get(given, (given, 1.0))
            if given == "temperature" and all(
                "THERMOSTAT" in self.devices[d].capabilities for d, _ in found
            ):
                name = "targetTemperature"  # a climate entity's temperature is its setpoint
            return name, factor
        if given is not None:
            return None, 1.0  # parse says what is wrong with it
        chosen: set[str] = set()
        for device, domain in found:
            main = self._main_attribute(device, domain, numeric, path)
            if main is None:
                return None, 1.0
            chosen.add(main)
        if len(chosen) > 1:
            self.problems.append(
                (
                    f"{path}.attribute",
                    f"these devices' main states differ ({', '.join(sorted(chosen))}); "
                    "name the attribute, or give each device a trigger of its own",
                )
            )
            return None, 1.0
        return chosen.pop(), 1.0

    def _main_attribute(
        self, device: str, domain: str | None, numeric: bool, path: str
    ) -> str | None:
        attrs = attributes_of(self.devices[device].capabilities)
        if numeric:
            order = _NUMBER_BY_DOMAIN.get(domain or "", _SENSOR_NUMBERS)
            numbers = [a for a in order if a in attrs]
            if len(numbers) == 1:
                return numbers[0]
            every = [n for n, a in attrs.items() if a.kind in (Kind.NUMBER, Kind.INTEGER)]
            why = (
                f"device {device!r} measures {', '.join(numbers)}"
                if numbers
                else f"device {device!r} has no sensor number"
            )
            self.problems.append(
                (f"{path}.attribute", f"{why}: name the attribute ({', '.join(every) or 'none'})")
            )
            return None
        order = _STATE_BY_DOMAIN.get(domain or "", _MAIN_STATE)
        for name in order:
            if name in attrs:
                return name
        self.problems.append(
            (
                f"{path}.attribute",
                f"device {device!r} has no on/off, lock, motion, contact or mode state"
                f"{' for a ' + domain + ' entity' if domain else ''}: name the attribute "
                f"({', '.join(attrs) or 'it reports none'})",
            )
        )
        return None

    def _values(self, value: Any, attribute: str, factor: float, path: str) -> Any:
        if isinstance(value, list):
            return [self._values(v, attribute, factor, f"{path}[{i}]") for i, v in enumerate(value)]
        if isinstance(value, int | float) and not isinstance(value, bool) and factor != 1:
            return round(value * factor)
        table = _STATE_VALUES.get(attribute)
        if table is None or not isinstance(value, str):
            return value
        if value in table:
            return table[value]
        if value in table.values():
            return value  # already the contract's
        self.problems.append(
            (
                path,
                f"{short(value)} is not a state homestream tracks for {attribute}; "
                f"use one of {', '.join(table)}",
            )
        )
        return value

    def _entities(self, raw: Any, path: str) -> list[tuple[str, str | None]] | None:
        """(device id, the entity domain if the paste kept one) for each entity named."""
        names = _id_list(raw)
        if names is None:
            self.problems.append((path, "must be an entity id or a list of them"))
            return None
        found: list[tuple[str, str | None]] = []
        for i, name in enumerate(names):
            where = path if isinstance(raw, str) else f"{path}[{i}]"
            hit = self._device(name)
            if hit is None:
                self.problems.append((where, self._missing(name)))
            else:
                found.append(hit)
        return found if len(found) == len(names) else None

    def _device(self, name: str) -> tuple[str, str | None] | None:
        if name in self.devices:
            return name, None
        domain, dot, rest = name.partition(".")
        if dot and rest in self.devices:
            return rest, domain
        return None

    def _missing(self, name: str) -> str:
        _domain, dot, rest = name.partition(".")
        also = f" or {rest!r}" if dot else ""
        return (
            f"no device {name!r}{also} in this home; replace Home Assistant's entity id with "
            "the device id (GET .../devices lists them)"
        )

    # -- actions ---------------------------------------------------------------------------
    def actions(self, raw: Any, path: str) -> Any:
        if isinstance(raw, dict):
            raw = [raw]
        if not isinstance(raw, list):
            return raw
        out: list[Any] = []
        for i, item in enumerate(raw):
            out += self._action(item, f"{path}[{i}]")
        return out

    def _action(self, raw: Any, path: str) -> list[Any]:
        if not isinstance(raw, dict):
            return [raw]
        service = raw.get("service", raw.get("action"))
        if "service" in raw or (isinstance(service, str) and _SERVICE.fullmatch(service)):
            return self._service(raw, path, service)
        if "condition" in raw:
            return [self.condition(raw, path)]
        if "wait_for_trigger" in raw:
            return [self._entity_rule(raw, path, None, ())]
        for nested in ("choose", "repeat", "if", "parallel", "sequence", "variables", "stop"):
            if nested in raw:
                self.problems.append(
                    (
                        f"{path}.{nested}",
                        f"Home Assistant's {nested!r} has no equivalent here; write it as "
                        "separate automations (a condition action stops a run)",
                    )
                )
                return [raw]
        return [_seconds(raw)]

    def _service(self, raw: dict[str, Any], path: str, service: Any) -> list[Any]:
        key = "service" if "service" in raw else "action"
        if not isinstance(service, str) or not _SERVICE.fullmatch(service):
            self.problems.append((f"{path}.{key}", "must be a service like light.turn_on"))
            return [raw]
        known = {key, "target", "data", "service_data", "entity_id", "alias", "enabled"}
        known.add("continue_on_error")  # a run requests a command and goes on: always true here
        for extra in sorted(set(raw) - known, key=str):
            self.problems.append((f"{path}.{extra}", f"is not read in a {service} call"))
        data: dict[str, Any] = {}
        for data_key in ("data", "service_data"):
            if isinstance(raw.get(data_key), dict):
                data.update(raw[data_key])
            elif data_key in raw:
                self.problems.append((f"{path}.{data_key}", "must be an object"))
        domain, _, verb = service.partition(".")
        base: dict[str, Any] = {k: raw[k] for k in ("alias", "enabled") if k in raw}
        if domain in ("notify", "persistent_notification"):
            return [self._notify(data, path, base)]
        targets = self._targets(raw, data, path, domain)
        if targets is None:
            return [raw]
        if domain == "scene" and verb in ("turn_on", "apply"):
            return [{**base, "action": "scene", "scene_id": t} for t, _ in targets]
        plan = self._commands(domain, verb, data, path, key)
        if plan is None:
            return [raw]
        out: list[Any] = []
        for device, by_area in targets:
            caps = self.devices[device].capabilities if device in self.devices else ()
            for capability, command, parameters in plan:
                if by_area and capability not in caps:
                    continue  # an area target takes what can do it, as Home Assistant does
                action = {**base, "device_id": device, "capability": capability}
                action["command"] = command
                if parameters:
                    action["parameters"] = parameters
                out.append(action)
                base = {k: v for k, v in base.items() if k == "enabled"}  # alias once
        if not out:
            self.problems.append((f"{path}.target", f"no device in that area can take {service}"))
            return [raw]
        return out

    def _notify(self, data: dict[str, Any], path: str, base: dict[str, Any]) -> dict[str, Any]:
        message = data.get("message")
        if not isinstance(message, str):
            self.problems.append((f"{path}.data.message", "is required for a notification (text)"))
        action = {**base, "action": "notify", "message": message}
        if "title" in data:
            action["title"] = data["title"]
        return action

    def _targets(
        self, raw: dict[str, Any], data: dict[str, Any], path: str, domain: str
    ) -> list[tuple[str, bool]] | None:
        """(device or scene id, found through an area) for each target of a call."""
        target = raw.get("target", {})
        if not isinstance(target, dict):
            self.problems.append((f"{path}.target", "must be an object"))
            return None
        named: list[tuple[Any, str]] = []
        for where, holder in ((f"{path}.target", target), (path, raw), (f"{path}.data", data)):
            for key in ("entity_id", "device_id"):
                if key in holder:
                    named.append((holder[key], f"{where}.{key}"))
        out: list[tuple[str, bool]] = []
        for value, where in named:
            if domain == "scene":
                scenes = _id_list(value) or []
                out += [
                    (s.partition(".")[2] if s.startswith("scene.") else s, False) for s in scenes
                ]
                continue
            found = self._entities(value, where)
            if found is None:
                return None
            out += [(device, False) for device, _ in found]
        areas = target.get("area_id", data.get("area_id"))
        if areas is not None:
            wanted = _id_list(areas)
            if wanted is None:
                self.problems.append((f"{path}.target.area_id", "must be an area or a list"))
                return None
            for area in wanted:
                inside = [
                    d for d, dev in self.devices.items() if in_area(dev.area, area, self.area_names)
                ]
                if not inside:
                    self.problems.append(
                        (f"{path}.target.area_id", f"no device is in area {area!r}")
                    )
                    return None
                out += [(d, True) for d in sorted(inside) if _fits_domain(self.devices[d], domain)]
        if not out:
            why = (
                f"no device in that area takes {domain} services"
                if named or areas is not None
                else "names no entity, device or area"
            )
            self.problems.append((f"{path}.target", why))
            return None
        return out

    def _commands(
        self, domain: str, verb: str, data: dict[str, Any], path: str, key: str
    ) -> list[tuple[str, str, dict[str, Any]]] | None:
        """(capability, command, parameters) for one call, the same for every target."""
        plan: list[tuple[str, str, dict[str, Any]]] | None = None
        if verb == "turn_on" and domain in _SWITCHABLE:
            plan = [("ON_OFF", "turnOn", {}), *self._light_settings(data, path)]
        elif verb == "turn_off" and domain == "climate":
            plan = [("THERMOSTAT", "setMode", {"mode": "off"})]
        elif verb in ("turn_off", "toggle") and domain in _SWITCHABLE:
            plan = [("ON_OFF", "turnOff" if verb == "turn_off" else "toggle", {})]
        elif domain == "lock" and verb in ("lock", "unlock", "open"):
            plan = [("LOCK", "lock" if verb == "lock" else "unlock", {})]
        elif domain == "cover" and verb in ("open_cover", "close_cover"):
            plan = [("POSITION", "open" if verb == "open_cover" else "close", {})]
        elif domain == "cover" and verb == "set_cover_position":
            plan = [("POSITION", "setPosition", {"position": data.get("position")})]
        elif domain == "climate" and verb == "set_temperature":
            parameters = {"temperature": data.get("temperature")}
            if "hvac_mode" in data:
                parameters["mode"] = _hvac_mode(data["hvac_mode"])
            plan = [("THERMOSTAT", "setTemperature", parameters)]
        elif domain == "climate" and verb == "set_hvac_mode":
            plan = [("THERMOSTAT", "setMode", {"mode": _hvac_mode(data.get("hvac_mode"))})]
        if plan is None:
            self.problems.append(
                (
                    f"{path}.{key}",
                    f"Home Assistant's {domain}.{verb} has no homestream command; write a "
                    "command action (device_id, capability, command, parameters)",
                )
            )
        return plan

    def _light_settings(
        self, data: dict[str, Any], path: str
    ) -> list[tuple[str, str, dict[str, Any]]]:
        out: list[tuple[str, str, dict[str, Any]]] = []
        if "brightness_pct" in data or "brightness" in data:
            pct = data.get("brightness_pct")
            if pct is None and _number(data.get("brightness")):
                pct = data["brightness"] * 100 / 255
            out.append(("BRIGHTNESS", "setBrightness", {"brightness": _whole(pct)}))
        kelvin = data.get("color_temp_kelvin", data.get("kelvin"))
        if kelvin is None and _number(data.get("color_temp")) and data["color_temp"] > 0:
            kelvin = 1_000_000 / data["color_temp"]  # mireds
        if kelvin is not None:
            out.append(("COLOR_CONTROL", "setColorTemperature", {"kelvin": _whole(kelvin)}))
        hs: Any = data.get("hs_color")
        rgb: Any = data.get("rgb_color")
        if _numbers(rgb, 3) and not _numbers(hs, 2):
            h, s, _v = colorsys.rgb_to_hsv(*(max(0.0, min(255.0, c)) / 255 for c in rgb))
            hs = [round(h * 360, 1), round(s * 100, 1)]
        if _numbers(hs, 2):
            out.append(("COLOR_CONTROL", "setColor", {"hue": hs[0], "saturation": hs[1]}))
        elif hs is not None or rgb is not None:
            which = "hs_color" if hs is not None else "rgb_color"
            self.problems.append((f"{path}.data.{which}", "must be a list of numbers"))
        for unread in sorted(set(data) - _LIGHT_DATA, key=str):
            self.problems.append(
                (f"{path}.data.{unread}", "is not a setting homestream's commands take")
            )
        return out


_SWITCHABLE: Final = ("light", "switch", "fan", "input_boolean", "homeassistant")
_LIGHT_DATA: Final = frozenset(
    {
        "brightness_pct",
        "brightness",
        "color_temp_kelvin",
        "kelvin",
        "color_temp",
        "hs_color",
        "rgb_color",
        "transition",  # no field for it: the light switches at once
        "entity_id",
        "area_id",
        "device_id",
    }
)
_DOMAIN_CAPABILITY: Final = {  # light and switch go by the device type instead
    "fan": "ON_OFF",
    "lock": "LOCK",
    "cover": "POSITION",
    "climate": "THERMOSTAT",
}


def _fits_domain(device: Device, domain: str) -> bool:
    """Whether an area target of a ``domain.`` call includes the device: lights for
    light.*, switches and plugs for switch.*, anything able for homeassistant.*."""
    if domain == "light":
        return (device.type or "").startswith("light") or device.type is None
    if domain == "switch":
        return (device.type or "").startswith("switch") or device.type is None
    wanted = _DOMAIN_CAPABILITY.get(domain)
    return wanted is None or wanted in device.capabilities


def _hvac_mode(value: Any) -> Any:
    """Home Assistant's hvac mode -> the thermostat's (anything else as given: the
    command's check says what is wrong with it)."""
    return _STATE_VALUES["mode"].get(value, value) if isinstance(value, str) else value


def _id_list(raw: Any) -> list[str] | None:
    """An id, a comma-separated text of ids, or a list of ids (Home Assistant takes all)."""
    if isinstance(raw, str):
        return [p.strip() for p in raw.split(",") if p.strip()] or None
    if isinstance(raw, list) and raw and all(isinstance(x, str) for x in raw):
        return list(raw)
    return None


def _seconds(raw: dict[str, Any]) -> dict[str, Any]:
    """The item with bare-number durations as seconds (Home Assistant's unit)."""
    out = dict(raw)
    for key in _DURATION_KEYS:
        value = raw.get(key)
        if _number(value):
            out[key] = {"seconds": value}
    return out


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _numbers(value: Any, n: int) -> bool:
    return isinstance(value, list | tuple) and len(value) == n and all(map(_number, value))


def _whole(value: Any) -> Any:
    return round(value) if _number(value) else value
