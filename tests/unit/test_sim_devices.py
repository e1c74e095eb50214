"""The device simulator's models, floor plans and scheduler (hub/sim), without a broker."""

from __future__ import annotations

import copy
import itertools
import json
import random
import threading
import time
from collections import Counter
from dataclasses import replace
from typing import Any

import pytest

from domain.capabilities import CAPABILITIES, DEVICE_TYPES, LAN_TYPES, Command, Kind, Parameter
from domain.commands import desired_satisfied, plan_command
from domain.dedupe import changes
from domain.validate import validate_descriptor, validate_event, validate_state
from hub.sim.devices import (
    MODELS,
    PROTOCOLS,
    TRAITS,
    Behaviour,
    DeviceSpec,
    Message,
    SimDevice,
    make_spec,
)
from hub.sim.floorplan import (
    DEMO_FLOORPLAN,
    TYPE_CAPS,
    demo_home,
    slug,
    synthetic_home,
    synthetic_home_ids,
)
from hub.sim.runner import HubPlan, SimConfig, Simulation, SimulationError

DAY_MS = 86_400_000
SENSOR_TYPES = ("sensor.motion", "sensor.contact", "sensor.temperature", "sensor.climate")
ACTUATOR_TYPES = (
    "light.switch",
    "light.dimmer",
    "light.color",
    "switch.plug",
    "thermostat",
    "lock",
    "blinds",
    "camera",
)


def spec_of(device_type: str, model: str | None = None, room: str = "Living Room") -> DeviceSpec:
    rng = random.Random(f"test/{device_type}/{model}")
    return make_spec(f"dev-{slug(device_type)}", f"Test {device_type}", device_type, room, rng,
                     model=model)  # fmt: skip


def all_specs() -> list[DeviceSpec]:
    return [spec_of(t, m.model) for t, models in MODELS.items() for m in models]


def run_device(device: SimDevice, until_ms: int, max_ticks: int = 200_000) -> list[Message]:
    """Tick the device at each moment it is due, as the runner does."""
    out: list[Message] = []
    for _ in range(max_ticks):
        due = device.next_due_ms
        if due > until_ms:
            break
        out += device.tick(due)
    return out


def states(messages: list[Message]) -> list[dict[str, Any]]:
    return [m.payload["state"] for m in messages if m.subtopic.startswith("state/")]  # type: ignore[index]


def command(capability: str, name: str, parameters: dict[str, Any] | None = None,
            command_id: str = "c-1", *, desired: Any = None) -> dict[str, Any]:  # fmt: skip
    """The contract's command message; ``desired`` is what the cloud (the worker) planned."""
    return {
        "command_id": command_id,
        "capability": capability,
        "command": name,
        "parameters": parameters or {},
        "desired": {} if desired is None else desired,
        "issued_at": 1,
    }


def example_parameters(cmd: Command) -> dict[str, Any]:
    """Valid parameters for ``cmd``, built from the capability table."""

    def value(p: Parameter) -> Any:
        if p.kind is Kind.ENUM:
            return p.values[-1]
        if p.kind is Kind.BOOLEAN:
            return True
        lo = p.minimum if p.minimum is not None else 0
        hi = p.maximum if p.maximum is not None else 100
        mid = lo + (hi - lo) * 0.37
        return round(mid) if p.kind is Kind.INTEGER else round(mid, 1)

    return {p.name: value(p) for p in cmd.parameters}


# -- the tables ----------------------------------------------------------------------------------


def test_every_contract_type_has_models_and_traits() -> None:
    assert set(MODELS) == set(DEVICE_TYPES) - LAN_TYPES  # found by mDNS, not simulated
    assert set(TRAITS) == set(MODELS)
    for dtype, models in MODELS.items():
        assert models
        for m in models:
            assert m.protocol in PROTOCOLS
            assert set(m.extra) <= set(DEVICE_TYPES[dtype].optional), (dtype, m)
        traits = TRAITS[dtype]
        assert 0 <= traits.change_probability <= 1
        assert {e for e, _ in traits.event_weights} <= set(DEVICE_TYPES[dtype].events)
        # What changes spontaneously is an attribute some capability of the type could have.
        caps = (*DEVICE_TYPES[dtype].capabilities, *DEVICE_TYPES[dtype].optional)
        attrs = {a.name for c in caps for a in CAPABILITIES[c].attributes}
        assert {a for a, _ in traits.changes} <= attrs, dtype


@pytest.mark.parametrize("spec", all_specs(), ids=lambda s: s.model)
def test_descriptor_has_the_contract_shape(spec: DeviceSpec) -> None:
    d = SimDevice(spec).descriptor()
    assert validate_descriptor(d) == []
    assert set(d) == {
        "name",
        "type",
        "room",
        "protocol",
        "manufacturer",
        "model",
        "capabilities",
        "endpoint",
    }
    assert all(isinstance(d[k], str) and d[k] for k in d if k != "capabilities")
    assert set(d["capabilities"]) <= set(CAPABILITIES)
    assert set(DEVICE_TYPES[spec.type].capabilities) <= set(d["capabilities"])
    assert d["endpoint"].startswith(f"{spec.protocol}://")
    assert d["protocol"] in PROTOCOLS


@pytest.mark.parametrize("spec", all_specs(), ids=lambda s: s.model)
def test_announce_then_reports_and_events_validate(spec: DeviceSpec) -> None:
    device = SimDevice(spec, seed=3, start_ms=0)
    first = device.announce(0)
    assert first[0] == Message(f"discovery/{spec.device_id}", spec.descriptor(), retain=True)
    assert first[1] == Message(f"availability/{spec.device_id}", "online", retain=True)
    if device.reports_state:
        assert first[2].payload == {"state": device.initial_state, "ts": 0}
        assert set(device.initial_state) == set(device.attributes)
    messages = first + run_device(device, 3 * DAY_MS)
    for m in messages:
        kind, device_id = m.subtopic.split("/")
        assert device_id == spec.device_id
        assert kind in ("discovery", "availability", "state", "event")
        assert m.retain == (kind in ("discovery", "availability"))
        if kind == "state":
            assert isinstance(m.payload, dict)
            assert set(m.payload) == {"state", "ts"}
            result = validate_state(spec.capabilities, m.payload["state"])
            assert result.ok, result.errors
        elif kind == "event":
            assert isinstance(m.payload, dict)
            assert validate_event(spec.type, m.payload["event"]) == []
            assert set(m.payload) <= {"event", "data", "ts"}
    if DEVICE_TYPES[spec.type].events:
        assert any(m.subtopic.startswith("event/") for m in messages), "no event in 3 days"


# -- periodic reports ----------------------------------------------------------------------------


def _noop_ratio(device_type: str, seeds: range, days: float = 2) -> tuple[int, int]:
    reports = noops = 0
    for seed in seeds:
        spec = spec_of(device_type)
        device = SimDevice(spec, seed=seed, behaviour=Behaviour(offline_every_s=None))
        previous = copy.deepcopy(device.state)
        for state in states(run_device(device, int(days * DAY_MS))):
            reports += 1
            noops += not changes(previous, state, spec.capabilities)
            previous = state
    return noops, reports


@pytest.mark.parametrize("device_type", [*SENSOR_TYPES, "thermostat"])
def test_about_90_percent_of_sensor_reports_change_nothing(device_type: str) -> None:
    noops, reports = _noop_ratio(device_type, range(3))
    assert reports > 10_000  # 2 days x 2880 reports x 3 devices, less a few
    assert 0.80 <= noops / reports <= 0.97, (device_type, noops / reports)


def test_whole_home_mostly_noop_reports() -> None:
    noops = reports = 0
    for spec in synthetic_home("h", 40, seed=5):
        device = SimDevice(spec, seed=5, behaviour=Behaviour(offline_every_s=None))
        previous = copy.deepcopy(device.state)
        for state in states(run_device(device, DAY_MS // 2)):
            reports += 1
            noops += not changes(previous, state, spec.capabilities)
            previous = state
    assert 0.85 <= noops / reports <= 0.97


def test_period_is_respected_and_phases_are_spread() -> None:
    spec = spec_of("sensor.temperature")
    b = Behaviour(period_s=10, offline_every_s=None)
    device = SimDevice(spec, seed=1, behaviour=b, start_ms=1_000_000)
    ts = [m.payload["ts"] for m in run_device(device, 1_000_000 + 100_000)]  # type: ignore[index]
    assert len(ts) == 10
    assert {b - a for a, b in itertools.pairwise(ts)} == {10_000}
    phases = {
        SimDevice(spec_of("sensor.motion"), seed=s, behaviour=b).next_due_ms for s in range(20)
    }
    assert len(phases) > 15 and all(0 <= p < 10_000 for p in phases)


def test_temperature_drifts_slowly_around_its_room() -> None:
    spec = spec_of("sensor.temperature", room="Bedroom")
    device = SimDevice(spec, seed=2, behaviour=Behaviour(offline_every_s=None))
    temps = [s["temperature"] for s in states(run_device(device, 7 * DAY_MS))]
    assert min(temps) >= 15 and max(temps) <= 25
    steps = [abs(b - a) for a, b in itertools.pairwise(temps) if a != b]
    assert steps and max(steps) <= 1.0 + 1e-9 and min(steps) >= 0.5 - 1e-9


def test_thermostat_room_follows_the_set_point() -> None:
    spec = spec_of("thermostat", "TQ-W9 Wall Thermostat")
    device = SimDevice(spec, seed=4, behaviour=Behaviour(offline_every_s=None))
    device.on_command(
        command("THERMOSTAT", "setTemperature", {"temperature": 26, "mode": "heat"},
                desired={"targetTemperature": 26.0, "mode": "heat"}), 0
    )  # fmt: skip
    device.traits = TRAITS["sensor.temperature"]  # no manual set-point changes in this test
    temps = [s["temperature"] for s in states(run_device(device, DAY_MS))]
    assert sum(temps[-200:]) / 200 > 24.5


def test_battery_drains_never_below_zero_and_is_replaced() -> None:
    spec = spec_of("sensor.contact")
    b = Behaviour(period_s=60, battery_drain_per_hour=2.0, offline_every_s=None)
    device = SimDevice(spec, seed=9, behaviour=b)
    start = device.state["battery"]
    messages = run_device(device, 10 * DAY_MS)
    levels = [s["battery"] for s in states(messages)]
    assert min(levels) >= 0 and max(levels) <= 100
    assert 0 in levels, "the battery ran flat"
    flat = levels.index(0)
    assert all(a >= b for a, b in itertools.pairwise(levels[: flat + 1]))
    assert levels[0] <= start
    # Flat -> offline until someone replaces the battery -> back online at 100%.
    kinds = [(m.subtopic.split("/")[0], m.payload) for m in messages]
    i = kinds.index(("availability", "offline"))
    assert kinds[i + 1] == ("availability", "online")
    assert kinds[i + 2][1]["state"]["battery"] == 100  # type: ignore[index]


def test_battery_drains_slowly_by_default() -> None:
    device = SimDevice(spec_of("sensor.motion"), seed=1, behaviour=Behaviour(offline_every_s=None))
    start = device.state["battery"]
    levels = [s["battery"] for s in states(run_device(device, DAY_MS))]
    assert 0 <= start - levels[-1] <= 6


def test_devices_go_offline_and_come_back() -> None:
    spec = spec_of("sensor.climate")
    b = Behaviour(offline_every_s=3600, offline_for_s=(60, 120))
    device = SimDevice(spec, seed=7, behaviour=b)
    messages = run_device(device, DAY_MS)
    avail = [(i, m.payload) for i, m in enumerate(messages) if m.subtopic.startswith("avail")]
    assert len(avail) >= 20
    assert [p for _, p in avail[:4]] == ["offline", "online", "offline", "online"]
    for (i, p), (j, q) in itertools.pairwise(avail):
        if p == "offline":
            assert q == "online" and j == i + 1, "no report while offline"
            assert messages[j + 1].subtopic.startswith("state/"), "full report on return"
    assert not device.online or device.next_due_ms > 0


def test_no_outages_when_disabled() -> None:
    device = SimDevice(spec_of("light.dimmer"), seed=1, behaviour=Behaviour(offline_every_s=None))
    assert not [m for m in run_device(device, 3 * DAY_MS) if m.subtopic.startswith("avail")]


def test_motion_and_contact_flip() -> None:
    for dtype, attr in (("sensor.motion", "motion"), ("sensor.contact", "contact")):
        device = SimDevice(spec_of(dtype), seed=1, behaviour=Behaviour(offline_every_s=None))
        values = {s[attr] for s in states(run_device(device, DAY_MS // 4))}
        assert len(values) == 2, dtype


def test_camera_detection_sets_motion_until_a_later_report_clears_it() -> None:
    spec = spec_of("camera", "VC-2 Indoor Camera")
    b = Behaviour(offline_every_s=None, event_every_s=120)
    device = SimDevice(spec, seed=1, behaviour=b)
    messages = run_device(device, DAY_MS // 8)
    events = [m for m in messages if m.subtopic.startswith("event/")]
    assert {m.payload["event"] for m in events} == {"person_detected", "motion_detected"}  # type: ignore[index]
    motion, last_detection, cleared = False, -(10**9), 0
    for m in messages:
        assert isinstance(m.payload, dict)
        if m.subtopic.startswith("event/"):
            last_detection = m.payload["ts"]
        elif "motion" in m.payload["state"]:
            now, new = m.payload["ts"], m.payload["state"]["motion"]
            if motion and not new:
                cleared += 1
                assert now - last_detection >= 30_000, "motion held 30 s after a detection"
            if now == last_detection:
                assert new is True
            motion = new
    assert cleared > 10
    # Privacy mode: a camera that is off detects nothing.
    device.on_command(command("ON_OFF", "turnOff", desired={"powerState": "OFF"}),
                      device.next_due_ms)  # fmt: skip
    device.traits = TRAITS["doorbell"]  # and nobody turns it back on by hand
    later = run_device(device, DAY_MS // 4)
    assert not [m for m in later if m.subtopic.startswith("event/")]


def test_buttons_and_doorbells_raise_their_events() -> None:
    for dtype, expected in (
        ("button", {"press", "double_press", "long_press"}),
        ("doorbell", {"ring"}),
    ):
        device = SimDevice(spec_of(dtype), seed=1, behaviour=Behaviour(offline_every_s=None))
        names = Counter(
            m.payload["event"]  # type: ignore[index]
            for m in run_device(device, 10 * DAY_MS)
            if m.subtopic.startswith("event/")
        )
        assert set(names) == expected
        if dtype == "button":
            assert names["press"] > names["double_press"] > names["long_press"]


def test_deterministic_with_a_seed() -> None:
    def trace(seed: int) -> list[Message]:
        out = []
        for spec in synthetic_home("det", 12, seed=1):
            device = SimDevice(spec, seed=seed, start_ms=5)
            out += device.announce(5) + run_device(device, DAY_MS // 4)
        return out

    assert trace(1) == trace(1)
    assert trace(1) != trace(2)


# -- commands -----------------------------------------------------------------------------------


def _command_cases() -> list[tuple[DeviceSpec, str, Command]]:
    cases = []
    for spec in all_specs():
        for cap in spec.capabilities:
            for cmd in CAPABILITIES[cap].commands:
                cases.append((spec, cap, cmd))
    return cases


@pytest.mark.parametrize(
    ("spec", "capability", "cmd"),
    _command_cases(),
    ids=lambda v: v.model if isinstance(v, DeviceSpec) else getattr(v, "name", v),
)
def test_commands_ack_state_completed(spec: DeviceSpec, capability: str, cmd: Command) -> None:
    device = SimDevice(spec, seed=1, behaviour=Behaviour(offline_every_s=None))
    params = example_parameters(cmd)
    # The worker's plan, as the bridge delivers it: every plan fits every model that has the
    # capability.
    desired = plan_command(spec.capabilities, capability, cmd.name, params, device.state)
    out = device.on_command(command(capability, cmd.name, params, "cmd-42", desired=desired), 1234)
    assert [m.subtopic for m in out] == [f"ack/{spec.device_id}", f"state/{spec.device_id}",
                                         f"ack/{spec.device_id}"]  # fmt: skip
    assert out[0].payload == {"command_id": "cmd-42", "status": "ACKNOWLEDGED"}
    assert out[2].payload == {"command_id": "cmd-42", "status": "COMPLETED"}
    assert not any(m.retain for m in out)
    report = out[1].payload
    assert isinstance(report, dict) and report["ts"] == 1234
    assert validate_state(spec.capabilities, report["state"]).ok
    assert desired_satisfied(desired, report["state"]), (desired, report["state"])
    assert desired_satisfied(desired, device.state)


def test_toggle_applies_what_the_cloud_planned() -> None:
    # The worker decided which way the toggle goes from the state it holds; the device does
    # not decide again from its own (here: already ON), so cloud and device cannot disagree.
    device = SimDevice(spec_of("light.switch"), seed=1)
    device.state["powerState"] = "ON"
    out = device.on_command(command("ON_OFF", "toggle", desired={"powerState": "ON"}), 1)
    assert [m.payload["status"] for m in out[::2]] == ["ACKNOWLEDGED", "COMPLETED"]  # type: ignore[index]
    assert out[1].payload["state"]["powerState"] == "ON"  # type: ignore[index]
    out = device.on_command(command("ON_OFF", "toggle", "c-2", desired={"powerState": "OFF"}), 2)
    assert out[1].payload["state"]["powerState"] == "OFF"  # type: ignore[index]


def test_set_color_merges_into_the_colour_object() -> None:
    device = SimDevice(spec_of("light.color"), seed=1)
    device.state["color"] = {"hue": 10, "saturation": 90}
    device.on_command(command("COLOR_CONTROL", "setColor", {"hue": 120, "saturation": 50},
                              desired={"color": {"hue": 120.0}}), 1)  # fmt: skip
    assert device.state["color"] == {"hue": 120, "saturation": 90}  # a leaf, not the object
    device.on_command(command("COLOR_CONTROL", "setColor", {"hue": 120, "saturation": 50},
                              desired={"color": {"hue": 120, "saturation": 50}}), 2)  # fmt: skip
    assert device.state["color"] == {"hue": 120, "saturation": 50}
    assert validate_state(device.spec.capabilities, device.state).ok


def _planned(capability: str, name: str, desired: Any) -> dict[str, Any]:
    return command(capability, name, desired=desired)


@pytest.mark.parametrize(
    ("dtype", "payload", "reason"),
    [
        # What the device cannot take, whoever planned it.
        ("light.switch", _planned("BRIGHTNESS", "setBrightness", {"brightness": 5}),
         "it belongs to BRIGHTNESS"),
        ("light.dimmer", _planned("BRIGHTNESS", "setBrightness", {"brightness": 500}), "500"),
        ("light.dimmer", _planned("BRIGHTNESS", "setBrightness", {"brightness": "5"}), "'5'"),
        ("light.dimmer", _planned("BRIGHTNESS", "setBrightness", {"level": 5}), "level"),
        ("thermostat", _planned("THERMOSTAT", "setMode", {"mode": "turbo"}), "turbo"),
        ("thermostat", _planned("THERMOSTAT", "setMode", {"temperature": 30}),
         "temperature is reported by the device"),
        ("sensor.motion", _planned("MOTION_SENSOR", "turnOn", {"motion": True}),
         "motion is reported by the device"),
        ("lock", _planned("LOCK", "lock", {"lockState": None}), "null"),
        ("light.color", _planned("COLOR_CONTROL", "setColor", {"color": {"hue": 999}}), "999"),
        # Nothing planned: the hub does not plan it itself (the cloud's worker does).
        ("light.dimmer", command("BRIGHTNESS", "setBrightness", {"brightness": 5}),
         "'BRIGHTNESS setBrightness' carries no desired state"),
        ("light.dimmer", {**command("ON_OFF", "turnOn"), "desired": None}, "no desired state"),
        ("blinds", {**command("POSITION", "open"), "desired": [100]}, "no desired state"),
        ("lock", {k: v for k, v in command("LOCK", "unlock").items() if k != "desired"},
         "plans no command itself"),
    ],
)  # fmt: skip
def test_invalid_commands_fail_with_a_reason(dtype: str, payload: dict, reason: str) -> None:
    device = SimDevice(spec_of(dtype), seed=1)
    before = copy.deepcopy(device.state)
    out = device.on_command(payload, 10)
    assert len(out) == 1
    ack = out[0].payload
    assert out[0].subtopic == f"ack/{device.device_id}"
    assert isinstance(ack, dict) and ack["status"] == "FAILED" and ack["command_id"] == "c-1"
    assert reason in ack["error"]
    assert device.state == before


def test_command_to_an_offline_device_fails() -> None:
    device = SimDevice(spec_of("light.dimmer"), seed=1, behaviour=Behaviour(offline_every_s=1))
    run_device(device, 10_000)  # within 10 s it has dropped off at least once
    while device.online:
        device.tick(device.next_due_ms)
    out = device.on_command(command("ON_OFF", "turnOn"), device._now_ms)
    assert out[0].payload["status"] == "FAILED" and "offline" in out[0].payload["error"]  # type: ignore[index]


@pytest.mark.parametrize("payload", [None, "on", [], {}, {"command_id": ""}, {"command_id": 5}])
def test_unanswerable_commands_give_nothing(payload: Any) -> None:
    assert SimDevice(spec_of("light.dimmer")).on_command(payload, 1) == []


def test_shadow_delta_applies_writable_attributes_only() -> None:
    device = SimDevice(spec_of("thermostat", "TQ-W9 Wall Thermostat"), seed=1)
    temp = device.state["temperature"]
    out = device.on_delta(
        {"state": {"targetTemperature": 23.5, "temperature": 99, "brightness": 3}, "version": 4}, 5
    )
    assert len(out) == 1 and out[0].subtopic == f"state/{device.device_id}"
    assert device.state["targetTemperature"] == 23.5 and device.state["temperature"] == temp
    assert device.on_delta({"state": {"temperature": 30}}, 6) == []
    assert device.on_delta("garbage", 7) == []


# -- floor plans ---------------------------------------------------------------------------------


def test_demo_floorplan() -> None:
    specs = demo_home()
    ids = [s.device_id for s in specs]
    assert len(ids) == len(set(ids))
    assert all(s.device_id == slug(s.name) for s in specs)
    assert {
        "living-room-ceiling",
        "kitchen-lights",
        "hallway-motion",
        "front-door-lock",
        "front-door-bell",
        "bedroom-thermostat",
        "living-room-blinds",
        "bathroom-climate",
    } <= set(ids)
    assert {s.type for s in specs} == set(DEVICE_TYPES) - LAN_TYPES
    assert {s.room for s in specs} == {room for room, _ in DEMO_FLOORPLAN}
    assert {"Living Room", "Kitchen", "Bedroom", "Hallway", "Front Door", "Bathroom", "Office"} <= {
        s.room for s in specs
    }
    assert demo_home() == specs  # descriptors are stable across runs
    for s in specs:
        assert validate_descriptor(s.descriptor()) == []


def test_synthetic_homes_are_deterministic_and_realistic() -> None:
    assert synthetic_home_ids(3) == ["sim-0001", "sim-0002", "sim-0003"]
    home = synthetic_home("sim-0001", 50, seed=1)
    assert home == synthetic_home("sim-0001", 50, seed=1)
    assert home != synthetic_home("sim-0001", 50, seed=2)
    assert home != synthetic_home("sim-0002", 50, seed=1)
    assert len(home) == 50
    assert len({s.device_id for s in home}) == 50
    counts = Counter(s.type for s in home)
    lights = sum(n for t, n in counts.items() if t.startswith("light."))
    sensors = sum(n for t, n in counts.items() if t.startswith("sensor."))
    assert lights > counts["lock"] and sensors > counts["lock"]
    for t, cap in TYPE_CAPS.items():
        assert counts[t] <= cap
    small = synthetic_home("sim-0001", 5, seed=0)
    assert [s.type for s in small][:2] == ["light.dimmer", "sensor.motion"]
    many = Counter(s.type for h in range(20) for s in synthetic_home(f"h{h}", 50, seed=0))
    assert set(many) == set(DEVICE_TYPES) - LAN_TYPES
    assert many["lock"] < many["light.dimmer"] < many["light.dimmer"] + many["sensor.contact"]


# -- the scheduler, with a fake MQTT client ------------------------------------------------------


class FakeClient:
    """The HubClient API, recording what is published."""

    instances: list[FakeClient] = []

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.home_id = kwargs["home_id"]
        self.on_message = kwargs["on_message"]
        self.published: list[tuple[str, Any, bool]] = []
        self.lock = threading.Lock()
        self.started = self.stopped = False
        FakeClient.instances.append(self)

    def start(self) -> None:
        self.started = True

    def publish(self, subtopic: str, payload: Any, *, retain: bool = False, qos: int = 1) -> None:
        with self.lock:
            self.published.append((subtopic, payload, retain))

    def pending(self) -> int:
        return 0

    def wait_drained(self, timeout: float) -> bool:
        return True

    @property
    def connected(self) -> bool:
        return self.started and not self.stopped

    def stop(self, *, offline: bool = True) -> None:
        self.stopped = True

    def of_kind(self, kind: str) -> list[tuple[str, Any, bool]]:
        with self.lock:
            return [p for p in self.published if p[0].split("/")[0] == kind]


def _plans(homes: int, devices: int) -> list[HubPlan]:
    return [
        HubPlan(h, f"hub-{h}", "pw", synthetic_home(h, devices, seed=0))
        for h in synthetic_home_ids(homes)
    ]


def _run_in_thread(sim: Simulation, hubs: int) -> threading.Thread:
    t = threading.Thread(target=sim.run, daemon=True)
    t.start()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        started = [c for c in FakeClient.instances if c.started]
        if len(started) == hubs:
            break
        time.sleep(0.01)
    return t


@pytest.fixture(autouse=True)
def _fresh_fakes() -> None:
    FakeClient.instances = []


def test_runner_announces_and_reports_at_the_rate(tmp_path) -> None:
    lines: list[str] = []
    config = SimConfig(state_dir=tmp_path, rate=50, duration_s=2.0, progress_s=0.5)
    sim = Simulation(_plans(3, 6), config, client_factory=FakeClient, say=lines.append)
    assert sim.period_s == pytest.approx(18 / 50)
    stats = sim.run()
    assert len(FakeClient.instances) == 3
    for client in FakeClient.instances:
        assert client.started and client.stopped
        assert client.kwargs["outbox"] == tmp_path / "outbox" / f"{client.home_id}.sqlite"
        discovery = client.of_kind("discovery")
        assert len(discovery) == 6 and all(retain for _, _, retain in discovery)
        assert all(validate_descriptor(p) == [] for _, p, _ in discovery)
        assert len(client.of_kind("availability")) >= 6
    # 50 reports/s for 2 s, plus the 18 first reports at start-up.
    assert 18 + 70 <= stats.reports <= 18 + 110, stats
    assert stats.devices == 18 and stats.hubs == 3
    assert any("hubs 3/3 connected" in line for line in lines)
    assert "stopped after" in lines[-1]


def test_runner_answers_commands_and_pairing(tmp_path, caplog) -> None:
    caplog.set_level("WARNING", logger="homestream.sim")
    config = SimConfig(state_dir=tmp_path, period_s=30, duration_s=1.5, progress_s=10)
    sim = Simulation(_plans(1, 5), config, client_factory=FakeClient, say=lambda _t: None)
    t = _run_in_thread(sim, 1)
    client = FakeClient.instances[0]
    light = next(s for s in synthetic_home("sim-0001", 5, seed=0) if s.type == "light.dimmer")
    body = command("BRIGHTNESS", "setBrightness", {"brightness": 42}, "k1",
                   desired={"brightness": 42})  # fmt: skip
    client.on_message(f"command/{light.device_id}", json.dumps(body).encode())
    client.on_message("command/no-such-device", b'{"command_id":"k2","capability":"ON_OFF"}')
    unplanned = command("BRIGHTNESS", "setBrightness", {"brightness": 7}, "k3")
    del unplanned["desired"]  # from a sender that did not plan it
    client.on_message(f"command/{light.device_id}", json.dumps(unplanned).encode())
    client.on_message("command/x", b"not json")
    client.on_message("pairing", b'{"permit": true, "duration": 2}')
    t.join(timeout=10)
    acks = [p for _, p, _ in client.of_kind("ack")]
    assert {"command_id": "k1", "status": "ACKNOWLEDGED"} in acks
    assert {"command_id": "k1", "status": "COMPLETED"} in acks
    assert acks.index({"command_id": "k1", "status": "ACKNOWLEDGED"}) < acks.index(
        {"command_id": "k1", "status": "COMPLETED"}
    )
    failed = [a for a in acks if a["command_id"] == "k2"]
    assert failed and failed[0]["status"] == "FAILED" and "no-such-device" in failed[0]["error"]
    [k3] = [a for a in acks if a["command_id"] == "k3"]
    assert k3["status"] == "FAILED" and "carries no desired state" in k3["error"]
    assert any("command k3 failed" in r.getMessage() for r in caplog.records)
    reports = [p for s, p, _ in client.published if s == f"state/{light.device_id}"]
    assert reports[-1]["state"]["brightness"] == 42
    assert sim.stats.commands == 4 and sim.stats.commands_failed == 2
    assert sim.stats.unreadable == 1
    assert sim.stats.paired == 1
    new = [s for s, p, _ in client.of_kind("discovery") if s.startswith("discovery/new-")]
    assert len(new) == 1


def test_runner_removes_devices_gone_since_the_last_run(tmp_path) -> None:
    config = SimConfig(state_dir=tmp_path, duration_s=0.2, progress_s=10)
    Simulation(_plans(1, 8), config, client_factory=FakeClient, say=lambda _t: None).run()
    FakeClient.instances = []
    Simulation(_plans(1, 5), config, client_factory=FakeClient, say=lambda _t: None).run()
    removed = [s for s, p, r in FakeClient.instances[0].of_kind("discovery") if p is None and r]
    gone = {s.device_id for s in synthetic_home("sim-0001", 8, 0)[5:]}
    assert {s.split("/")[1] for s in removed} == gone


def test_runner_stops_on_request(tmp_path) -> None:
    config = SimConfig(state_dir=tmp_path, period_s=1, progress_s=10)
    sim = Simulation(_plans(2, 3), config, client_factory=FakeClient, say=lambda _t: None)
    t = _run_in_thread(sim, 2)
    time.sleep(0.3)
    sim.stop()
    t.join(timeout=5)
    assert not t.is_alive()
    assert all(c.stopped for c in FakeClient.instances)


def test_one_simulator_per_home(tmp_path) -> None:
    config = SimConfig(state_dir=tmp_path, period_s=1, progress_s=10)
    first = Simulation(_plans(1, 2), config, client_factory=FakeClient, say=lambda _t: None)
    t = _run_in_thread(first, 1)
    try:
        second = Simulation(_plans(2, 2), config, client_factory=FakeClient, say=lambda _t: None)
        with pytest.raises(SimulationError, match="sim-0001 is already simulated"):
            second.run()
    finally:
        first.stop()
        t.join(timeout=5)
    # Released on stop: a new run may take the home.
    config = replace(config, duration_s=0.1)
    Simulation(_plans(1, 2), config, client_factory=FakeClient, say=lambda _t: None).run()
