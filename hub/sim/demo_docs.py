"""What the demo home comes with besides its devices: a place, scenes and automations.

`homestream up` puts these into ``demo-home`` through the gateway's REST API
(``compose.demo_seed``), so they are checked and published exactly as a user's would be.
They name the demo floor plan's device ids (``hub.sim.floorplan``); a unit test checks that
every id exists and every document passes the gateway's checks.

Commands name devices, not groups: each light and blind is its own action, so a scene or
an automation says exactly what it switches (and a newcomer can read it).
"""

from __future__ import annotations

from typing import Any, Final

from hub.sim.floorplan import DEMO_FLOORPLAN

Doc = dict[str, Any]

# Where the demo home is: sunrise and sunset (the blinds) and 23:00 are Berlin's. Change it
# with PUT /v1/homes/demo-home/settings.
SETTINGS: Final[Doc] = {"time_zone": "Europe/Berlin", "latitude": 52.52, "longitude": 13.405}

# The demo's devices by role (ids from the floor plan).
HALL_MOTION = "hallway-motion"
HALL_LIGHT = "hallway-light"
FRONT_DOOR = "front-door-contact"
FRONT_LOCK = "front-door-lock"
LIGHTS: Final = tuple(
    p.device_id for _room, planned in DEMO_FLOORPLAN for p in planned if p.type.startswith("light.")
)
BLINDS: Final = tuple(
    p.device_id for _room, planned in DEMO_FLOORPLAN for p in planned if p.type == "blinds"
)


def _do(device: str, capability: str, command: str, **parameters: Any) -> Doc:
    action: Doc = {"device_id": device, "capability": capability, "command": command}
    if parameters:
        action["parameters"] = parameters
    return action


def _lights_off() -> list[Doc]:
    return [_do(light, "ON_OFF", "turnOff") for light in LIGHTS]


def _blinds(command: str) -> list[Doc]:
    return [_do(blind, "POSITION", command) for blind in BLINDS]


SCENES: Final[dict[str, Doc]] = {
    "good-morning": {
        "name": "Good morning",
        "description": "Blinds up, kitchen lights and coffee on, the living room warm",
        "actions": [
            *_blinds("open"),
            _do("kitchen-lights", "ON_OFF", "turnOn"),
            _do("coffee-maker", "ON_OFF", "turnOn"),
            _do("living-room-thermostat", "THERMOSTAT", "setTemperature", temperature=21),
        ],
    },
    "good-night": {
        "name": "Good night",
        "description": "Every light off, blinds down, the front door locked, the bedroom cooler",
        "actions": [
            *_lights_off(),
            *_blinds("close"),
            _do(FRONT_LOCK, "LOCK", "lock"),
            _do("bedroom-thermostat", "THERMOSTAT", "setTemperature", temperature=18),
        ],
    },
    "movie-time": {
        "name": "Movie time",
        "description": "Ceiling off, the lamp dim and warm, blinds down, the TV on",
        "actions": [
            _do("living-room-ceiling", "ON_OFF", "turnOff"),
            _do("living-room-lamp", "BRIGHTNESS", "setBrightness", brightness=20),
            _do("living-room-lamp", "COLOR_CONTROL", "setColor", hue=30, saturation=80),
            _do("living-room-blinds", "POSITION", "close"),
            _do("tv-plug", "ON_OFF", "turnOn"),
        ],
    },
    "leave-home": {
        "name": "Leave home",
        "description": "Every light, the TV and the coffee maker off, the front door locked, "
        "the heating down (set the mode to away in the dashboard too)",
        "actions": [
            *_lights_off(),
            _do("tv-plug", "ON_OFF", "turnOff"),
            _do("coffee-maker", "ON_OFF", "turnOff"),
            _do(FRONT_LOCK, "LOCK", "lock"),
            _do("living-room-thermostat", "THERMOSTAT", "setTemperature", temperature=17),
            _do("bedroom-thermostat", "THERMOSTAT", "setTemperature", temperature=17),
        ],
    },
}

AUTOMATIONS: Final[dict[str, Doc]] = {
    "hall-motion-light": {
        "alias": "Hall light on motion",
        "description": "Motion in the hallway turns its light on; two minutes without "
        "motion turn it off. New motion restarts the wait.",
        "mode": "restart",
        "triggers": [
            {"trigger": "state", "device_id": HALL_MOTION, "attribute": "motion", "to": True}
        ],
        "actions": [
            _do(HALL_LIGHT, "ON_OFF", "turnOn"),
            {
                "wait_for_trigger": [
                    {
                        "trigger": "state",
                        "device_id": HALL_MOTION,
                        "attribute": "motion",
                        "to": False,
                        "for": "00:02:00",
                    }
                ]
            },
            _do(HALL_LIGHT, "ON_OFF", "turnOff"),
        ],
    },
    "front-door-away": {
        "alias": "Front door opened while away",
        "description": "A notification when the front door opens while the home is in away mode",
        "triggers": [
            {"trigger": "state", "device_id": FRONT_DOOR, "attribute": "contact", "to": "open"}
        ],
        "conditions": [{"condition": "mode", "mode": "away"}],
        "actions": [
            {
                "notify": {
                    "title": "Front door",
                    "message": "The front door opened while the home is in away mode",
                }
            }
        ],
    },
    "lights-off-2300": {
        "alias": "All lights off at 23:00",
        "triggers": [{"trigger": "time", "at": "23:00"}],
        "actions": _lights_off(),
    },
    "blinds-at-sunrise": {
        "alias": "Blinds open at sunrise",
        "description": "Sunrise where the home is (PUT .../settings has its location)",
        "triggers": [{"trigger": "sun", "event": "sunrise"}],
        "actions": _blinds("open"),
    },
}

# The demo's notification channel: a webhook (Apprise's json://) to the demo receiver.
WEBHOOK_PATH = "/demo-webhook"


def webhook_channels(port: int, host: str = "127.0.0.1") -> list[Doc]:
    return [{"url": f"json://{host}:{port}{WEBHOOK_PATH}"}]


def device_ids() -> set[str]:
    """Every device id the documents name (all must be in the demo floor plan)."""
    named: set[str] = set()
    for doc in (*SCENES.values(), *AUTOMATIONS.values()):
        named |= set(_ids(doc))
    return named


def _ids(value: Any) -> list[str]:
    if isinstance(value, dict):
        own = [value["device_id"]] if isinstance(value.get("device_id"), str) else []
        return own + [i for v in value.values() for i in _ids(v)]
    if isinstance(value, list):
        return [i for v in value for i in _ids(v)]
    return []
