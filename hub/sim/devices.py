"""Pure models of the contract's device types (CONTRACT.md sections 2 and 3).

Nothing here does I/O or reads a clock: every device owns a seeded ``random.Random`` and is
given the time (epoch milliseconds) by its caller, so a run is reproducible from its seed.
A device produces ``Message`` values (subtopic under ``hub/{home}/``, payload, retain) that the
runner publishes through the hub's MQTT client.

Behaviour, per device:

- ``announce``: the retained discovery descriptor, retained availability ``online`` and a full
  state report;
- ``tick(now_ms)``: at most one periodic state report per period (30 s by default). On most
  reports nothing has changed: a report changes the state with the type's probability (about
  10% for sensors, less for actuators someone rarely touches), which gives the design brief's
  ~90% no-op reports. Temperatures and humidity drift in steps at least as large as the
  capability table's deadband, pulled back towards the room's baseline (a thermostat's room
  towards its set point); batteries drain slowly with time; devices occasionally drop off
  (retained availability ``offline``) and come back with a full report; cameras, doorbells
  and buttons raise their type's events at random (Poisson) times;
- ``on_command(payload)``: the contract's command message. The cloud has planned it: its
  ``desired`` is the state to reach (the stream worker alone plans, against the state it
  holds), so the device applies that, as a real hub's adapter would, and answers ack
  ACKNOWLEDGED, the new state, ack COMPLETED. A command without a ``desired`` object, or with
  one the device cannot take (an attribute it lacks or only reports, a value out of range),
  gets ack FAILED with the reason;
- ``on_delta(payload)``: a shadow ``update/delta`` (AWS semantics): writable attributes of
  the delta are applied and reported, the way a shadow-driven device converges.
"""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from domain.capabilities import (
    DEVICE_TYPES,
    TEMPERATURE_RANGE,
    Attribute,
    attributes_of,
    events_of,
    known_capabilities,
)
from domain.validate import validate_state

Payload = dict[str, Any] | str | None

PROTOCOLS = ("zigbee", "zwave", "ble", "wifi", "matter")
ONLINE = "online"
OFFLINE = "offline"


@dataclass(frozen=True)
class Message:
    """One MQTT publish: ``subtopic`` is relative to ``hub/{home}/``."""

    subtopic: str
    payload: Payload
    retain: bool = False


# -- models: who makes what ---------------------------------------------------------------


@dataclass(frozen=True)
class Model:
    """A product: its radio, maker and the optional capabilities of its type it has."""

    protocol: str
    manufacturer: str
    model: str
    extra: tuple[str, ...] = ()  # optional capabilities of the device type (DeviceType.optional)
    weight: float = 1.0  # how common it is among models of its type


# Made-up brands: the simulator names no real vendor's products.
MODELS: Mapping[str, tuple[Model, ...]] = {
    "light.switch": (
        Model("zigbee", "Lumenix", "LX-B10 White Bulb", weight=2),
        Model("zwave", "Relaytech", "RT-S1 Wall Switch"),
        Model("wifi", "Brightway", "BW-100 Smart Bulb"),
    ),
    "light.dimmer": (
        Model("zigbee", "Lumenix", "LX-D20 Dimmable Bulb", weight=3),
        Model("zwave", "Relaytech", "RT-D2 Wall Dimmer"),
        Model("matter", "Brightway", "BW-210 Dimmable Bulb"),
    ),
    "light.color": (
        Model("zigbee", "Lumenix", "LX-C30 Colour Bulb", weight=3),
        Model("zigbee", "Lumenix", "LX-S40 Light Strip"),
        Model("wifi", "Brightway", "BW-300 RGBW Bulb"),
        Model("matter", "Prismo", "PR-1 Colour Bulb"),
    ),
    "switch.plug": (
        Model("zigbee", "Voltic", "VP-1 Smart Plug", weight=2),
        Model("wifi", "Voltic", "VP-2W Wi-Fi Plug"),
        Model("zwave", "Relaytech", "RT-P1 Plug"),
        Model("matter", "Relaytech", "RT-P3 Plug"),
    ),
    "thermostat": (
        Model("zigbee", "Thermiq", "TQ-R5 Radiator Valve", extra=("BATTERY",), weight=2),
        Model("wifi", "Thermiq", "TQ-W9 Wall Thermostat", extra=("HUMIDITY_SENSOR",)),
        Model("zwave", "Climax", "CX-T2 Thermostat"),
    ),
    "lock": (
        Model("zwave", "Keystone", "KS-700 Deadbolt", weight=2),
        Model("ble", "Keystone", "KS-B2 Smart Lock", extra=("CONTACT_SENSOR",)),
        Model("matter", "Boltline", "BL-1 Lock"),
    ),
    "sensor.motion": (
        Model("zigbee", "Sentrio", "SM-1 Motion Sensor", weight=3),
        Model("zigbee", "Sentrio", "SM-2 Motion + Lux", extra=("ILLUMINANCE_SENSOR",)),
        Model(
            "zwave",
            "Climax",
            "CX-M4 Multisensor",
            extra=("ILLUMINANCE_SENSOR", "TEMPERATURE_SENSOR"),
        ),
        Model("ble", "Beacona", "BM-1 Motion Sensor"),
    ),
    "sensor.contact": (
        Model("zigbee", "Sentrio", "SC-1 Door/Window Sensor", weight=3),
        Model("zwave", "Climax", "CX-C2 Contact + Temp", extra=("TEMPERATURE_SENSOR",)),
        Model("ble", "Beacona", "BC-1 Contact Sensor"),
    ),
    "sensor.temperature": (
        Model("zigbee", "Sentrio", "ST-1 Temperature Sensor", weight=2),
        Model("ble", "Beacona", "BT-1 Thermometer"),
    ),
    "sensor.climate": (
        Model("zigbee", "Sentrio", "SH-2 Temperature & Humidity", weight=3),
        Model("ble", "Beacona", "BH-1 Hygrometer"),
        Model("matter", "Climax", "CX-A5 Air Sensor", extra=("ILLUMINANCE_SENSOR",)),
    ),
    "blinds": (
        Model("zigbee", "Shadeline", "SL-R1 Roller Blind", extra=("BATTERY",), weight=2),
        Model("zwave", "Shadeline", "SL-M2 Blind Motor"),
        Model("matter", "Shadeline", "SL-M3 Shade"),
    ),
    "camera": (
        Model("wifi", "Vigil", "VC-2 Indoor Camera", extra=("ON_OFF", "MOTION_SENSOR"), weight=2),
        Model("wifi", "Vigil", "VC-5 Outdoor Camera", extra=("ON_OFF", "MOTION_SENSOR", "BATTERY")),
    ),
    "doorbell": (
        Model("wifi", "Vigil", "VD-1 Video Doorbell", extra=("BATTERY",), weight=2),
        Model("wifi", "Vigil", "VD-2 Wired Doorbell"),
    ),
    "button": (
        Model("zigbee", "Lumenix", "LX-RB Remote Button", weight=2),
        Model("ble", "Beacona", "BB-1 Smart Button"),
    ),
}


# -- per-type behaviour ----------------------------------------------------------------------


@dataclass(frozen=True)
class Traits:
    """How a device type behaves on its own (without commands)."""

    change_probability: float  # per periodic report: the chance that something changed
    changes: tuple[tuple[str, float], ...] = ()  # (attribute, weight) of what changes
    event_every_s: float | None = None  # mean time between events (Poisson)
    event_weights: tuple[tuple[str, float], ...] = ()  # event -> weight (others: 1)


MOTION_HOLD_MS = 30_000  # a camera reports motion for this long after a detection
SENSOR_CHANGE = 0.10  # the design brief: ~10% of periodic sensor reports are real changes
MANUAL_CHANGE = 0.03  # someone flips a light switch by hand now and then

TRAITS: Mapping[str, Traits] = {
    "light.switch": Traits(MANUAL_CHANGE, (("powerState", 1),)),
    "light.dimmer": Traits(MANUAL_CHANGE, (("powerState", 3), ("brightness", 2))),
    "light.color": Traits(
        MANUAL_CHANGE,
        (("powerState", 3), ("brightness", 2), ("color", 1), ("colorTemperature", 1)),
    ),
    "switch.plug": Traits(MANUAL_CHANGE, (("powerState", 1),)),
    "thermostat": Traits(
        SENSOR_CHANGE,
        (("temperature", 10), ("humidity", 4), ("targetTemperature", 1)),
    ),
    "lock": Traits(0.02, (("lockState", 4), ("contact", 1))),
    "sensor.motion": Traits(SENSOR_CHANGE, (("motion", 6), ("illuminance", 3), ("temperature", 2))),
    "sensor.contact": Traits(0.08, (("contact", 5), ("temperature", 1))),
    "sensor.temperature": Traits(SENSOR_CHANGE, (("temperature", 1),)),
    "sensor.climate": Traits(
        SENSOR_CHANGE, (("temperature", 5), ("humidity", 4), ("illuminance", 2))
    ),
    "blinds": Traits(0.02, (("position", 1),)),
    # A camera's motion is set by its detections (events) and clears on the next report.
    "camera": Traits(
        0.005,
        (("powerState", 1),),
        event_every_s=600.0,
        event_weights=(("motion_detected", 7), ("person_detected", 3)),
    ),
    "doorbell": Traits(0.0, event_every_s=3600.0),
    "button": Traits(
        0.0,
        event_every_s=1800.0,
        event_weights=(("press", 7), ("double_press", 2), ("long_press", 1)),
    ),
}


@dataclass(frozen=True)
class Behaviour:
    """Knobs of the simulation, shared by all devices of a run."""

    period_s: float = 30.0  # time between periodic state reports
    first_report_s: float | None = None  # None: a random phase within the first period
    change_probability: float | None = None  # None: the type's (Traits.change_probability)
    offline_every_s: float | None = 12 * 3600.0  # mean time between drop-outs; None: never
    offline_for_s: tuple[float, float] = (20.0, 300.0)  # how long a drop-out lasts
    battery_drain_per_hour: float = 0.15  # percent (about four weeks from full to empty)
    battery_swap_s: tuple[float, float] = (3600.0, 12 * 3600.0)  # flat until replaced
    events: bool = True
    event_every_s: float | None = None  # None: the type's (Traits.event_every_s)


# -- device specs ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceSpec:
    """What a device is: everything its discovery descriptor says, plus its id."""

    device_id: str
    name: str
    type: str
    room: str
    protocol: str
    manufacturer: str
    model: str
    capabilities: tuple[str, ...]
    endpoint: str

    def descriptor(self) -> dict[str, Any]:
        """The discovery descriptor of CONTRACT.md section 2."""
        return {
            "name": self.name,
            "type": self.type,
            "room": self.room,
            "protocol": self.protocol,
            "manufacturer": self.manufacturer,
            "model": self.model,
            "capabilities": list(self.capabilities),
            "endpoint": self.endpoint,
        }


def make_spec(
    device_id: str,
    name: str,
    device_type: str,
    room: str,
    rng: random.Random,
    *,
    model: str | None = None,
) -> DeviceSpec:
    """A device of ``device_type``: a model (weighted, or the one named), its capabilities
    (the type's typical ones plus the model's optional ones) and a radio endpoint."""
    dtype = DEVICE_TYPES.get(device_type)
    if dtype is None or device_type not in MODELS:
        raise ValueError(f"no simulated device type {device_type!r}; known: {', '.join(MODELS)}")
    models = MODELS[device_type]
    if model is None:
        chosen = rng.choices(models, weights=[m.weight for m in models])[0]
    else:
        found = [m for m in models if m.model == model]
        if not found:
            raise ValueError(f"no {device_type} model {model!r}")
        chosen = found[0]
    caps = tuple(dict.fromkeys((*dtype.capabilities, *chosen.extra)))
    return DeviceSpec(
        device_id=device_id,
        name=name,
        type=device_type,
        room=room,
        protocol=chosen.protocol,
        manufacturer=chosen.manufacturer,
        model=chosen.model,
        capabilities=caps,
        endpoint=endpoint_for(chosen.protocol, rng),
    )


def endpoint_for(protocol: str, rng: random.Random) -> str:
    """A plausible radio address: IEEE address, Z-Wave home/node, BLE MAC, IP, Matter node."""
    if protocol == "zigbee":
        octets = [0x00, 0x15, 0x8D, 0x00] + [rng.randrange(256) for _ in range(4)]
        return "zigbee://" + ":".join(f"{b:02x}" for b in octets)
    if protocol == "zwave":
        return f"zwave://{rng.getrandbits(32):08x}/{rng.randint(2, 232)}"
    if protocol == "ble":
        return "ble://" + ":".join(f"{rng.randrange(256):02X}" for _ in range(6))
    if protocol == "wifi":
        return f"wifi://192.168.1.{rng.randint(20, 250)}"
    if protocol == "matter":
        return f"matter://{rng.randint(1, 4)}/{rng.getrandbits(64):016X}"
    raise ValueError(f"unknown protocol {protocol!r}; known: {', '.join(PROTOCOLS)}")


# -- room climate ------------------------------------------------------------------------------

_ROOM_TEMPERATURE = {
    "bathroom": 23.0,
    "bedroom": 19.5,
    "kitchen": 22.0,
    "garage": 14.0,
    "garden": 12.0,
    "front door": 18.0,
    "back door": 18.0,
    "hallway": 19.0,
    "basement": 16.0,
}
_ROOM_HUMIDITY = {"bathroom": 62.0, "kitchen": 52.0, "garden": 70.0, "basement": 60.0}


def _room_key(room: str) -> str:
    return room.strip().lower()


# -- the device --------------------------------------------------------------------------------


class SimDevice:
    """One simulated device. Not thread-safe: one scheduler drives it."""

    def __init__(
        self,
        spec: DeviceSpec,
        *,
        seed: int | str = 0,
        behaviour: Behaviour | None = None,
        start_ms: int = 0,
    ) -> None:
        if spec.type not in TRAITS:
            raise ValueError(f"no behaviour for device type {spec.type!r}")
        self.spec = spec
        self.behaviour = b = behaviour or Behaviour()
        self.traits = TRAITS[spec.type]
        self.rng = random.Random(f"{seed}/{spec.device_id}")
        self.attributes: Mapping[str, Attribute] = attributes_of(spec.capabilities)
        self._writable = frozenset(
            a for c in known_capabilities(spec.capabilities) for a in c.writable
        )
        room = _room_key(spec.room)
        self._base_temperature = _ROOM_TEMPERATURE.get(room, 21.0) + self.rng.uniform(-1.0, 1.0)
        self._base_humidity = _ROOM_HUMIDITY.get(room, 45.0) + self.rng.uniform(-5.0, 5.0)
        self._battery_level = float(self.rng.randint(55, 100))
        self._drain_factor = self.rng.uniform(0.5, 1.5)
        self._battery_at_ms = start_ms
        self.state: dict[str, Any] = self._initial_state()
        self.initial_state: dict[str, Any] = copy.deepcopy(self.state)
        self.online = True
        self._motion_until_ms: int | None = None  # a camera detection holds motion until then
        self._period_ms = max(1, round(b.period_s * 1000))
        phase = (
            b.first_report_s * 1000
            if b.first_report_s is not None
            else self.rng.uniform(0, self._period_ms)
        )
        self._next_report_ms = start_ms + round(phase)
        self._offline_at_ms: int | None = self._next_outage(start_ms)
        self._back_at_ms = 0
        self._battery_flat = False
        self._event_names = events_of(spec.type) if b.events else ()
        self._next_event_ms: int | None = self._schedule_event(start_ms)
        self._now_ms = start_ms

    # -- what it is --------------------------------------------------------------------------

    @property
    def device_id(self) -> str:
        return self.spec.device_id

    def descriptor(self) -> dict[str, Any]:
        return self.spec.descriptor()

    @property
    def reports_state(self) -> bool:
        """Whether the device has attributes to report periodically (a plain doorbell has not)."""
        return bool(self.attributes)

    @property
    def next_due_ms(self) -> int:
        """When ``tick`` has something to do next."""
        if not self.online:
            return self._back_at_ms
        due = [self._next_report_ms] if self.reports_state else []
        if self._next_event_ms is not None:
            due.append(self._next_event_ms)
        if self._offline_at_ms is not None:
            due.append(self._offline_at_ms)
        return min(due) if due else 2**62

    # -- messages ----------------------------------------------------------------------------

    def announce(self, now_ms: int) -> list[Message]:
        """What a hub publishes for the device when it starts: descriptor, availability, state."""
        self._now_ms = now_ms
        out = [
            Message(f"discovery/{self.device_id}", self.descriptor(), retain=True),
            Message(f"availability/{self.device_id}", ONLINE if self.online else OFFLINE, True),
        ]
        if self.online and self.reports_state:
            out.append(self._state_message(self.state, now_ms))
        return out

    def tick(self, now_ms: int) -> list[Message]:
        """Everything that is due at ``now_ms``: availability changes, events, the report."""
        self._now_ms = now_ms
        if not self.online:
            if now_ms < self._back_at_ms:
                return []
            return self._come_back(now_ms)
        if self._offline_at_ms is not None and now_ms >= self._offline_at_ms:
            lo, hi = self.behaviour.offline_for_s
            return self._go_offline(now_ms, self.rng.uniform(lo, hi))

        out: list[Message] = []
        while self._next_event_ms is not None and now_ms >= self._next_event_ms:
            out += self._fire_event(now_ms)
            self._next_event_ms = self._schedule_event(self._next_event_ms)
        if self.reports_state and now_ms >= self._next_report_ms:
            self._next_report_ms += self._period_ms
            if self._next_report_ms <= now_ms:  # more than a period behind: skip, not burst
                self._next_report_ms = now_ms + self._period_ms
            self._drain_battery(now_ms)
            self._spontaneous_change(now_ms)
            out.append(self._state_message(self.state, now_ms))
            if self._battery_flat:
                lo, hi = self.behaviour.battery_swap_s
                out += self._go_offline(now_ms, self.rng.uniform(lo, hi))
        return out

    def on_command(self, payload: Any, now_ms: int | None = None) -> list[Message]:
        """A command from the cloud: ack ACKNOWLEDGED, new state, ack COMPLETED (or FAILED).

        A payload without a ``command_id`` cannot be acknowledged; it gives no messages.
        """
        now = self._now_ms if now_ms is None else now_ms
        self._now_ms = now
        if not isinstance(payload, Mapping):
            return []
        command_id = payload.get("command_id")
        if not isinstance(command_id, str) or not command_id:
            return []
        if not self.online:
            return [self._ack(command_id, "FAILED", f"device {self.device_id} is offline")]
        patch, problem = self._planned(payload)
        if problem is not None:
            return [self._ack(command_id, "FAILED", problem)]
        self._apply(patch)
        return [
            self._ack(command_id, "ACKNOWLEDGED"),
            self._state_message(self.state, now),
            self._ack(command_id, "COMPLETED"),
        ]

    def on_delta(self, payload: Any, now_ms: int | None = None) -> list[Message]:
        """A shadow ``update/delta``: apply its writable attributes and report the new state."""
        now = self._now_ms if now_ms is None else now_ms
        self._now_ms = now
        if not self.online or not isinstance(payload, Mapping):
            return []
        delta = payload.get("state")
        if not isinstance(delta, Mapping):
            return []
        checked = validate_state(self.spec.capabilities, delta)
        patch = {k: v for k, v in checked.valid.items() if k in self._writable and v is not None}
        if not patch:
            return []
        self._apply(patch)
        return [self._state_message(self.state, now)]

    # -- internals ---------------------------------------------------------------------------

    def _planned(self, payload: Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
        """The command's ``desired`` as a patch this device can apply, or why it cannot.

        A command without one (a worker older than the contract's ``desired`` field, or a
        hand-written publish) fails with a reason rather than being planned here: planning in
        two places is how the device and the cloud came to disagree (a toggle read against two
        different states), and the FAILED ack puts the reason in the command's status and the
        logbook, where whoever sent it looks.
        """
        desired = payload.get("desired")
        if not isinstance(desired, Mapping) or not desired:
            what = " ".join(str(payload.get(k)) for k in ("capability", "command"))
            return {}, (
                f"command '{what}' carries no desired state; this hub applies the state "
                "the cloud planned and plans no command itself"
            )
        checked = validate_state(self.spec.capabilities, desired)
        if checked.errors:
            return {}, checked.errors[0].reason
        for name, value in checked.valid.items():
            if value is None:
                return {}, f"desired {name} is null; a command sets values, it deletes none"
            if name not in self._writable:
                return {}, f"{name} is reported by the device; no command sets it"
        return checked.valid, None

    def _ack(self, command_id: str, status: str, error: str | None = None) -> Message:
        body: dict[str, Any] = {"command_id": command_id, "status": status}
        if error is not None:
            body["error"] = error
        return Message(f"ack/{self.device_id}", body)

    def _state_message(self, state: Mapping[str, Any], now_ms: int) -> Message:
        return Message(
            f"state/{self.device_id}", {"state": copy.deepcopy(dict(state)), "ts": now_ms}
        )

    def _apply(self, patch: Mapping[str, Any]) -> None:
        _deep_merge(self.state, patch)

    def _next_outage(self, from_ms: int) -> int | None:
        every = self.behaviour.offline_every_s
        if not every or every <= 0:
            return None
        return from_ms + max(1, round(self.rng.expovariate(1.0 / every) * 1000))

    def _schedule_event(self, from_ms: int) -> int | None:
        if not self._event_names:
            return None
        every = self.behaviour.event_every_s or self.traits.event_every_s
        if not every or every <= 0:
            return None
        return from_ms + max(1, round(self.rng.expovariate(1.0 / every) * 1000))

    def _go_offline(self, now_ms: int, seconds: float) -> list[Message]:
        self.online = False
        self._back_at_ms = now_ms + max(1, round(seconds * 1000))
        return [Message(f"availability/{self.device_id}", OFFLINE, retain=True)]

    def _come_back(self, now_ms: int) -> list[Message]:
        self.online = True
        if self._battery_flat:  # someone put in a new battery
            self._battery_flat = False
            self._battery_level = 100.0
            self._battery_at_ms = now_ms
            if "battery" in self.state:
                self.state["battery"] = 100
        self._offline_at_ms = self._next_outage(now_ms)
        self._next_event_ms = self._schedule_event(now_ms)
        self._next_report_ms = now_ms + self._period_ms
        out = [Message(f"availability/{self.device_id}", ONLINE, retain=True)]
        if self.reports_state:
            self._drain_battery(now_ms)
            out.append(self._state_message(self.state, now_ms))
        return out

    def _drain_battery(self, now_ms: int) -> None:
        if "battery" not in self.attributes:
            return
        hours = max(0, now_ms - self._battery_at_ms) / 3_600_000
        self._battery_at_ms = now_ms
        self._battery_level -= hours * self.behaviour.battery_drain_per_hour * self._drain_factor
        level = min(100, max(0, math.ceil(self._battery_level)))
        self.state["battery"] = level
        if level <= 0:
            self._battery_level = 0.0
            self._battery_flat = True

    def _fire_event(self, now_ms: int) -> list[Message]:
        if self.state.get("powerState") == "OFF":  # a camera in privacy mode sees nothing
            return []
        weights = dict(self.traits.event_weights)
        names = list(self._event_names)
        name = self.rng.choices(names, weights=[weights.get(n, 1.0) for n in names])[0]
        body: dict[str, Any] = {"event": name}
        if name.endswith("_detected"):
            body["data"] = {"confidence": round(self.rng.uniform(0.6, 0.99), 2)}
        body["ts"] = now_ms
        out = [Message(f"event/{self.device_id}", body)]
        if "motion" in self.attributes and name.endswith("_detected"):
            self._motion_until_ms = now_ms + MOTION_HOLD_MS
            if self.state.get("motion") is not True:
                self.state["motion"] = True
                out.append(self._state_message({"motion": True}, now_ms))
        return out

    # -- initial state and spontaneous changes -----------------------------------------------

    def _initial_state(self) -> dict[str, Any]:
        rng = self.rng
        makers: dict[str, Any] = {
            # Cameras watch unless someone turned them off; lights and plugs are mostly off.
            "powerState": lambda: (
                "ON" if self.spec.type == "camera" or rng.random() < 0.3 else "OFF"
            ),
            "brightness": lambda: rng.choice(range(20, 101, 5)),
            "color": lambda: {"hue": rng.randrange(0, 360), "saturation": rng.randrange(40, 101)},
            "colorTemperature": lambda: rng.choice((2200, 2700, 3000, 4000)),
            "targetTemperature": lambda: rng.choice((19.0, 20.0, 20.5, 21.0, 21.5)),
            "mode": lambda: "heat",
            "temperature": lambda: round(self._base_temperature, 1),
            "humidity": lambda: round(self._base_humidity, 1),
            "illuminance": lambda: float(rng.randrange(20, 400)),
            "motion": lambda: False,
            "contact": lambda: "closed",
            "lockState": lambda: "LOCKED",
            "position": lambda: rng.choice((0, 50, 100)),
            "battery": lambda: math.ceil(self._battery_level),
        }
        return {name: makers[name]() for name in self.attributes}

    def _spontaneous_change(self, now_ms: int) -> None:
        if self._motion_until_ms is not None and now_ms >= self._motion_until_ms:
            self._motion_until_ms = None  # the camera's detection is over
            if self.state.get("motion") is True:
                self.state["motion"] = False
                return
        p = self.behaviour.change_probability
        if p is None:
            p = self.traits.change_probability
        if p <= 0 or self.rng.random() >= p:
            return
        options = [(a, w) for a, w in self.traits.changes if a in self.state and w > 0]
        if not options:
            return
        attr = self.rng.choices([a for a, _ in options], weights=[w for _, w in options])[0]
        self._change(attr)

    def _change(self, attr: str) -> None:
        rng, s = self.rng, self.state
        if attr == "powerState":
            s[attr] = "OFF" if s[attr] == "ON" else "ON"
        elif attr in ("brightness", "color", "colorTemperature") and s.get("powerState") == "OFF":
            s["powerState"] = "ON"  # adjusting a light that is off turns it on
        elif attr == "brightness":
            s[attr] = _other(rng, range(5, 101, 5), s[attr])
        elif attr == "color":
            s[attr] = {"hue": rng.randrange(0, 360), "saturation": rng.randrange(40, 101)}
        elif attr == "colorTemperature":
            s[attr] = _other(rng, (2200, 2700, 3000, 4000, 5000, 6500), s[attr])
        elif attr == "temperature":
            target = self._base_temperature
            if s.get("mode") in ("heat", "cool", "auto") and "targetTemperature" in s:
                target = float(s["targetTemperature"])
            lo, hi = TEMPERATURE_RANGE
            s[attr] = _drift(rng, float(s[attr]), target, (0.5, 1.0), lo, hi)
        elif attr == "humidity":
            s[attr] = _drift(rng, float(s[attr]), self._base_humidity, (1.0, 3.0), 0.0, 100.0)
        elif attr == "illuminance":
            old = float(s[attr])
            new = max(0.0, min(2000.0, round(old * rng.uniform(0.5, 1.6) + rng.uniform(-30, 30))))
            if abs(new - old) < 10:
                new = old + 10 if old < 1000 else old - 10
            s[attr] = float(new)
        elif attr == "targetTemperature":
            s[attr] = _other(rng, (17.0, 18.0, 19.0, 19.5, 20.0, 20.5, 21.0, 21.5, 22.0), s[attr])
        elif attr == "motion":
            s[attr] = not s[attr]
        elif attr == "contact":
            s[attr] = "open" if s[attr] == "closed" else "closed"
        elif attr == "lockState":
            s[attr] = "UNLOCKED" if s[attr] == "LOCKED" else "LOCKED"
        elif attr == "position":
            s[attr] = _other(rng, (0, 25, 50, 75, 100), s[attr])


def _other(rng: random.Random, choices: Sequence[Any], current: Any) -> Any:
    """A random choice that differs from ``current``."""
    options = [c for c in choices if c != current]
    return rng.choice(options) if options else current


def _drift(
    rng: random.Random,
    current: float,
    target: float,
    step: tuple[float, float],
    lo: float,
    hi: float,
) -> float:
    """One step of a random walk pulled towards ``target``; steps are at least ``step[0]``
    (the attribute's deadband), so every step is a real change."""
    size = round(rng.uniform(*step), 1)
    p_up = min(0.9, max(0.1, 0.5 + (target - current) / (4 * step[1])))
    sign = 1 if rng.random() < p_up else -1
    new = current + sign * size
    if not lo <= new <= hi:
        new = current - sign * size
    return round(min(hi, max(lo, new)), 1)


def _deep_merge(into: dict[str, Any], patch: Mapping[str, Any]) -> None:
    for key, value in patch.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _deep_merge(into[key], value)
        else:
            into[key] = copy.deepcopy(value)
