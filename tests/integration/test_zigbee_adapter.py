"""The Zigbee adapter driving unpatched zigpy + zigpy-znp against our ZNP simulator over TCP.

No cloud here (test_hub_pairing.py has that): the adapter's events are recorded. Every
device kind joins, is interviewed and described; commands change device state and come
back as reports; a device that leaves is removed; a device that never answers or answers
garbage is dead-lettered while the others work; a radio that goes away takes its devices
offline and the adapter reconnects, with the state read again.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from domain.validate import validate_descriptor, validate_state
from hub.adapters.base import CommandFailed
from hub.adapters.recorder import Recorder, until
from hub.adapters.zigbee import ZigbeeAdapter, ZigbeeConfig, device_id_for
from hub.znpsim.devices import ieee_for, ieee_text
from hub.znpsim.server import ZnpSimulator


def dev_id(name: str) -> str:
    return device_id_for(ieee_text(ieee_for(name)))


KINDS = {
    "bulb": ("light.switch", ["ON_OFF"]),
    "dimmer": ("light.dimmer", ["ON_OFF", "BRIGHTNESS"]),
    "color_bulb": ("light.color", ["ON_OFF", "BRIGHTNESS", "COLOR_CONTROL"]),
    "plug": ("switch.plug", ["ON_OFF"]),
    "motion": ("sensor.motion", ["ILLUMINANCE_SENSOR", "MOTION_SENSOR", "BATTERY"]),
    "contact": ("sensor.contact", ["CONTACT_SENSOR", "BATTERY"]),
    "climate": ("sensor.climate", ["TEMPERATURE_SENSOR", "HUMIDITY_SENSOR", "BATTERY"]),
    "lock": ("lock", ["LOCK", "BATTERY"]),
    "blinds": ("blinds", ["POSITION"]),
}


@pytest.fixture
async def radio(tmp_path: Path) -> AsyncIterator[tuple[ZnpSimulator, ZigbeeAdapter, Recorder]]:
    sim = ZnpSimulator(tmp_path / "sim")
    await sim.start()
    rec = Recorder()
    adapter = ZigbeeAdapter(
        ZigbeeConfig(
            port=f"socket://127.0.0.1:{sim.port}",
            database=tmp_path / "hub" / "zigbee.db",
            interview_timeout_s=8,
            backoff_max_s=2,
        ),
        rec,
    )
    await adapter.start()
    await asyncio.wait_for(adapter.connected.wait(), 30)
    try:
        yield sim, adapter, rec
    finally:
        await adapter.stop()
        await sim.stop()


async def test_every_kind_joins_is_described_and_reports(radio) -> None:
    sim, adapter, rec = radio
    # the network was formed by zigpy-znp through the simulator's BDB commissioning
    nib = sim.coordinator.nib()
    assert nib is not None and nib.nwkLogicalChannel == 15 and sim.coordinator.on_network
    for kind in KINDS:
        sim.add_device(f"t-{kind}", kind)
    await adapter.permit(60)
    await until(lambda: len(rec.added) == len(KINDS), 40, "every device described")
    for kind, (dtype, caps) in KINDS.items():
        d = rec.added[dev_id(f"t-{kind}")]
        assert (d["type"], d["capabilities"]) == (dtype, caps), kind
        assert d["protocol"] == "zigbee" and d["endpoint"].startswith("zigbee://")
        assert d["manufacturer"] == "homestream-sim"
        assert validate_descriptor(d) == []
        assert rec.online[dev_id(f"t-{kind}")] is True
    # the first state read after the interview
    await until(lambda: rec.states.get(dev_id("t-climate"), {}).get("humidity") == 45.0)
    assert rec.states[dev_id("t-climate")] == {"temperature": 21.5, "humidity": 45.0, "battery": 90}
    await until(lambda: "lockState" in rec.states.get(dev_id("t-lock"), {}))
    assert rec.states[dev_id("t-lock")]["lockState"] == "LOCKED"
    await until(lambda: "position" in rec.states.get(dev_id("t-blinds"), {}))
    assert rec.states[dev_id("t-blinds")]["position"] == 0  # fully closed
    for dev, state in rec.states.items():
        assert validate_state(rec.added[dev]["capabilities"], state).errors == [], (dev, state)

    # commands -> cluster commands -> the device's reports -> state
    commands = [
        (
            "t-dimmer",
            "BRIGHTNESS",
            "setBrightness",
            {"brightness": 40},
            {"brightness": 40, "powerState": "ON"},
        ),
        ("t-bulb", "ON_OFF", "turnOn", {}, {"powerState": "ON"}),
        ("t-plug", "ON_OFF", "toggle", {}, {"powerState": "ON"}),
        (
            "t-color_bulb",
            "COLOR_CONTROL",
            "setColor",
            {"hue": 120, "saturation": 50},
            {"color": {"hue": 120, "saturation": 50}},
        ),
        (
            "t-color_bulb",
            "COLOR_CONTROL",
            "setColorTemperature",
            {"kelvin": 4000},
            {"colorTemperature": 4000},
        ),
        ("t-lock", "LOCK", "unlock", {}, {"lockState": "UNLOCKED"}),
        ("t-blinds", "POSITION", "setPosition", {"position": 30}, {"position": 30}),
        ("t-blinds", "POSITION", "open", {}, {"position": 100}),
    ]
    for name, cap, cmd, params, expect in commands:
        await adapter.execute(dev_id(name), cap, cmd, params)
        await until(
            lambda n=name, e=expect: all(
                rec.states.get(dev_id(n), {}).get(k) == v for k, v in e.items()
            ),
            10,
            f"{name} {cmd}",
        )

    # devices' own changes: motion, a door opened, a temperature change
    sim.set_attribute("t-motion", 0x0406, 0x0000, 1)
    sim.set_attribute("t-contact", 0x0500, 0x0002, 1)
    sim.set_attribute("t-climate", 0x0402, 0x0000, 1987)
    await until(lambda: rec.states[dev_id("t-motion")].get("motion") is True)
    await until(lambda: rec.states[dev_id("t-contact")].get("contact") == "open")
    await until(lambda: rec.states[dev_id("t-climate")].get("temperature") == 19.87)
    # a reading TEMPERATURE_SENSOR cannot hold (-60 °C): dead-lettered, the state kept
    sim.set_attribute("t-climate", 0x0402, 0x0000, -6000)
    await until(
        lambda: any(r == "BAD_VALUE" for _, r, _ in rec.dead), 10, "bad value dead-lettered"
    )
    assert rec.states[dev_id("t-climate")]["temperature"] == 19.87

    # a command the device has no cluster for, and one with a bad parameter
    with pytest.raises(CommandFailed, match="cluster 0x0008"):
        await adapter.execute(dev_id("t-bulb"), "BRIGHTNESS", "setBrightness", {"brightness": 5})
    with pytest.raises(CommandFailed, match=r"within 0\.\.100"):
        await adapter.execute(
            dev_id("t-dimmer"), "BRIGHTNESS", "setBrightness", {"brightness": 500}
        )

    # a device that leaves is removed
    sim.leave("t-plug")
    await until(lambda: dev_id("t-plug") in rec.removed, 10, "plug removed")


async def test_bad_devices_are_dead_lettered_and_the_others_join(radio) -> None:
    sim, adapter, rec = radio
    sim.add_device("t-silent", "dimmer", behaviour="silent")
    sim.add_device("t-garbage", "plug", behaviour="garbage")
    sim.add_device("t-good", "contact")
    await adapter.permit(60)
    await until(lambda: dev_id("t-good") in rec.added, 30, "the good device")
    dead = await until(
        lambda: (
            {d for d, _, _ in rec.dead} >= {dev_id("t-silent"), dev_id("t-garbage")} and rec.dead
        ),
        40,
        "both bad devices dead-lettered",
    )
    reasons = {d: r for d, r, _ in dead}
    assert reasons[dev_id("t-silent")] in ("INTERVIEW_TIMEOUT", "INTERVIEW_FAILED")
    assert reasons[dev_id("t-garbage")] == "INTERVIEW_FAILED"
    assert all(detail.get("error") for _, _, detail in dead)
    assert len(dead) == 2  # once per device, however often zigpy retries
    assert set(rec.added) == {dev_id("t-good")}
    # the good device works while the others keep failing
    sim.set_attribute("t-good", 0x0500, 0x0002, 1)
    await until(lambda: rec.states.get(dev_id("t-good"), {}).get("contact") == "open")


async def test_radio_loss_takes_devices_offline_and_reconnects(radio) -> None:
    sim, adapter, rec = radio
    sim.add_device("t-lamp", "dimmer")
    await adapter.permit(60)
    lamp = dev_id("t-lamp")
    await until(lambda: rec.online.get(lamp) is True, 30, "lamp online")
    await until(lambda: "brightness" in rec.states.get(lamp, {}))

    await sim.stop()  # the dongle unplugged
    await until(lambda: rec.online.get(lamp) is False, 60, "lamp offline")
    assert any(not online for online, _ in rec.radio_events)
    # while the radio is away the device changes (someone at the wall switch)
    sim.device("t-lamp").clusters[0x0008][0x0000].value = 127
    reads_before = len(rec.reports)
    await sim.start()  # plugged back: the same NVRAM, the same network
    await until(lambda: rec.online.get(lamp) is True, 60, "lamp back online")
    await until(lambda: rec.states[lamp].get("brightness") == 50, 20, "state re-read")
    assert len(rec.reports) > reads_before
    await adapter.execute(lamp, "ON_OFF", "turnOff", {})
    await until(lambda: rec.states[lamp].get("powerState") == "OFF", 10)
