"""Which devices a simulated home has: the demo floor plan, and synthetic homes.

``demo_home()`` is the home `make up` simulates (``demo-home``): seven rooms with named devices
and stable ids (the slug of the name: "Living Room Ceiling" -> ``living-room-ceiling``), so
scenes, automations and voice commands in the docs can refer to them. Its descriptors (models,
radio endpoints) do not depend on the run's seed either: a restart re-publishes the same ones.

``synthetic_home(home_id, devices, seed)`` makes a home of any size with a realistic mix of the
contract's device types (many lights and sensors, few locks and doorbells), deterministic from
the seed and the home id.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from hub.sim.devices import DeviceSpec, make_spec


def slug(name: str) -> str:
    """``Living Room Ceiling`` -> ``living-room-ceiling`` (a valid MQTT topic level)."""
    s = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return s or "device"


@dataclass(frozen=True)
class Planned:
    """A device of a floor plan: its name, type and (optionally) which model it is."""

    name: str
    type: str
    model: str | None = None

    @property
    def device_id(self) -> str:
        return slug(self.name)


DEMO_HOME_ID = "demo-home"

DEMO_FLOORPLAN: tuple[tuple[str, tuple[Planned, ...]], ...] = (
    (
        "Living Room",
        (
            Planned("Living Room Ceiling", "light.dimmer", "LX-D20 Dimmable Bulb"),
            Planned("Living Room Lamp", "light.color", "LX-C30 Colour Bulb"),
            Planned("Living Room Blinds", "blinds", "SL-M2 Blind Motor"),
            Planned("Living Room Motion", "sensor.motion", "SM-2 Motion + Lux"),
            Planned("Living Room Thermostat", "thermostat", "TQ-W9 Wall Thermostat"),
            Planned("TV Plug", "switch.plug", "VP-1 Smart Plug"),
            Planned("Living Room Camera", "camera", "VC-2 Indoor Camera"),
        ),
    ),
    (
        "Kitchen",
        (
            Planned("Kitchen Lights", "light.switch", "RT-S1 Wall Switch"),
            Planned("Kitchen Counter Lights", "light.dimmer", "BW-210 Dimmable Bulb"),
            Planned("Coffee Maker", "switch.plug", "VP-2W Wi-Fi Plug"),
            Planned("Kitchen Window", "sensor.contact", "SC-1 Door/Window Sensor"),
            Planned("Kitchen Climate", "sensor.climate", "SH-2 Temperature & Humidity"),
        ),
    ),
    (
        "Bedroom",
        (
            Planned("Bedroom Light", "light.color", "LX-C30 Colour Bulb"),
            Planned("Bedroom Thermostat", "thermostat", "TQ-R5 Radiator Valve"),
            Planned("Bedroom Blinds", "blinds", "SL-R1 Roller Blind"),
            Planned("Bedroom Window", "sensor.contact", "SC-1 Door/Window Sensor"),
            Planned("Bedside Button", "button", "LX-RB Remote Button"),
        ),
    ),
    (
        "Hallway",
        (
            Planned("Hallway Light", "light.switch", "LX-B10 White Bulb"),
            Planned("Hallway Motion", "sensor.motion", "SM-1 Motion Sensor"),
            Planned("Hallway Temperature", "sensor.temperature", "ST-1 Temperature Sensor"),
        ),
    ),
    (
        "Front Door",
        (
            Planned("Front Door Lock", "lock", "KS-700 Deadbolt"),
            Planned("Front Door Bell", "doorbell", "VD-1 Video Doorbell"),
            Planned("Front Door Contact", "sensor.contact", "CX-C2 Contact + Temp"),
            Planned("Front Door Camera", "camera", "VC-5 Outdoor Camera"),
            Planned("Porch Light", "light.switch", "RT-S1 Wall Switch"),
        ),
    ),
    (
        "Bathroom",
        (
            Planned("Bathroom Light", "light.dimmer", "RT-D2 Wall Dimmer"),
            Planned("Bathroom Climate", "sensor.climate", "SH-2 Temperature & Humidity"),
            Planned("Bathroom Motion", "sensor.motion", "BM-1 Motion Sensor"),
        ),
    ),
    (
        "Office",
        (
            Planned("Office Desk Lamp", "light.dimmer", "LX-D20 Dimmable Bulb"),
            Planned("Office Plug", "switch.plug", "RT-P3 Plug"),
            Planned("Office Climate", "sensor.climate", "CX-A5 Air Sensor"),
            Planned("Office Blinds", "blinds", "SL-M3 Shade"),
        ),
    ),
)


def demo_home() -> list[DeviceSpec]:
    """The demo home's devices, in floor-plan order (same descriptors on every call)."""
    out = []
    for room, planned in DEMO_FLOORPLAN:
        for p in planned:
            rng = random.Random(f"floorplan/demo/{p.device_id}")
            out.append(make_spec(p.device_id, p.name, p.type, room, rng, model=p.model))
    return out


def demo_registry(
    states: Mapping[str, Mapping[str, object]] | None = None,
) -> list[dict[str, object]]:
    """The demo home's devices as registry entries (id, name, room, type, capabilities,
    state): what voice's vocabulary is built from in tests and benches."""
    states = states or {}
    return [
        {
            "device_id": s.device_id,
            "name": s.name,
            "room": s.room,
            "type": s.type,
            "capabilities": list(s.capabilities),
            "state": dict(states.get(s.device_id) or {}),
        }
        for s in demo_home()
    ]


# -- synthetic homes ---------------------------------------------------------------------------

# How common each type is in a home (lights and sensors dominate; a home has few locks).
TYPE_WEIGHTS: Mapping[str, float] = {
    "light.dimmer": 12,
    "light.switch": 9,
    "light.color": 7,
    "switch.plug": 8,
    "sensor.motion": 10,
    "sensor.contact": 12,
    "sensor.temperature": 7,
    "sensor.climate": 7,
    "thermostat": 5,
    "blinds": 6,
    "camera": 4,
    "button": 4,
    "lock": 3,
    "doorbell": 2,
}
# At most this many per home, whatever the draw.
TYPE_CAPS: Mapping[str, int] = {"lock": 3, "doorbell": 2, "thermostat": 8, "camera": 6}
# The first devices of every home, in this order: what nearly every smart home starts with.
CORE_TYPES = (
    "light.dimmer",
    "sensor.motion",
    "sensor.climate",
    "sensor.contact",
    "light.switch",
    "thermostat",
    "lock",
    "switch.plug",
)
TYPE_ROOMS: Mapping[str, tuple[str, ...]] = {
    "light.switch": ("Hallway", "Kitchen", "Garage", "Bathroom", "Dining Room", "Porch"),
    "light.dimmer": ("Living Room", "Bedroom", "Office", "Dining Room", "Kids Room", "Bathroom"),
    "light.color": ("Living Room", "Bedroom", "Kids Room", "Office"),
    "switch.plug": ("Living Room", "Kitchen", "Office", "Garage", "Bedroom"),
    "thermostat": ("Living Room", "Bedroom", "Kids Room", "Office", "Bathroom"),
    "lock": ("Front Door", "Back Door", "Garage"),
    "sensor.motion": ("Hallway", "Living Room", "Kitchen", "Garage", "Bathroom", "Stairs"),
    "sensor.contact": ("Front Door", "Back Door", "Kitchen", "Bedroom", "Living Room", "Garage"),
    "sensor.temperature": ("Bedroom", "Kids Room", "Basement", "Garage", "Office"),
    "sensor.climate": ("Bathroom", "Living Room", "Basement", "Kitchen", "Bedroom"),
    "blinds": ("Living Room", "Bedroom", "Office", "Kids Room"),
    "camera": ("Front Door", "Garden", "Garage", "Living Room"),
    "doorbell": ("Front Door", "Back Door"),
    "button": ("Bedroom", "Living Room", "Kids Room", "Hallway"),
}
TYPE_LABELS: Mapping[str, str] = {
    "light.switch": "Light",
    "light.dimmer": "Ceiling Light",
    "light.color": "Colour Lamp",
    "switch.plug": "Plug",
    "thermostat": "Thermostat",
    "lock": "Lock",
    "sensor.motion": "Motion",
    "sensor.contact": "Contact",
    "sensor.temperature": "Temperature",
    "sensor.climate": "Climate",
    "blinds": "Blinds",
    "camera": "Camera",
    "doorbell": "Doorbell",
    "button": "Button",
}
MAX_DEVICES = 1000


def synthetic_home_ids(homes: int, prefix: str = "sim") -> list[str]:
    """``sim-0001``, ``sim-0002``, ..."""
    return [f"{prefix}-{i:04d}" for i in range(1, homes + 1)]


def synthetic_types(devices: int, rng: random.Random) -> list[str]:
    """``devices`` device types: the core types first, then a weighted draw within the caps."""
    types = list(CORE_TYPES[:devices])
    counts = Counter(types)
    names = list(TYPE_WEIGHTS)
    weights = [TYPE_WEIGHTS[n] for n in names]
    while len(types) < devices:
        t = rng.choices(names, weights=weights)[0]
        if counts[t] >= TYPE_CAPS.get(t, MAX_DEVICES):
            continue
        counts[t] += 1
        types.append(t)
    return types


def synthetic_home(home_id: str, devices: int, seed: int | str = 0) -> list[DeviceSpec]:
    """A home of ``devices`` devices, the same for the same (seed, home id, devices)."""
    if not 0 <= devices <= MAX_DEVICES:
        raise ValueError(f"devices per home must be 0..{MAX_DEVICES}, got {devices}")
    rng = random.Random(f"synthetic/{seed}/{home_id}")
    names: Counter[str] = Counter()
    out = []
    for dtype in synthetic_types(devices, rng):
        room = rng.choice(TYPE_ROOMS[dtype])
        base = f"{room} {TYPE_LABELS[dtype]}"
        names[base] += 1
        name = base if names[base] == 1 else f"{base} {names[base]}"
        out.append(make_spec(slug(name), name, dtype, room, rng))
    return out


FLOORPLANS: Mapping[str, Callable[[], list[DeviceSpec]]] = {"demo": demo_home}
