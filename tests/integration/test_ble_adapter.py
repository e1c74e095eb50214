"""The BLE adapter driving bleak (through its backend hook) over bumble's virtual link, with
real bumble GATT peripherals as the peers: a thermometer and a battery-powered climate
sensor. No cloud here: the adapter's events are recorded.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from domain.validate import validate_descriptor
from hub.adapters.base import CommandFailed
from hub.adapters.ble import BleAdapter, BleConfig
from hub.adapters.ble_map import device_id_for
from hub.adapters.recorder import Recorder, until
from hub.blesim.peripherals import Sensor, VirtualAir


@pytest.fixture
async def air(tmp_path: Path) -> AsyncIterator[tuple[VirtualAir, BleAdapter, Recorder]]:
    air = VirtualAir()
    rec = Recorder()
    adapter = BleAdapter(
        BleConfig(state_file=tmp_path / "ble.json", central=await air.central(), backoff_max_s=2),
        rec,
    )
    await adapter.start()
    try:
        yield air, adapter, rec
    finally:
        await adapter.stop()


async def test_sensors_pair_describe_and_report(
    air: tuple[VirtualAir, BleAdapter, Recorder],
) -> None:
    vair, adapter, rec = air
    thermo = Sensor(vair, "Porch Thermometer", model="T-100", temperature=18.25)
    climate = Sensor(vair, "Bath Climate", temperature=22.5, humidity=55.5, battery=87)
    stray = Sensor(vair, "Neighbour")  # advertising before the permit: not taken
    await stray.power_on()
    await asyncio.sleep(0.3)
    assert rec.added == {}
    await stray.power_off()
    await asyncio.sleep(0.3)  # its last advertisements, still on the way, are heard first

    await adapter.permit(60)
    await thermo.power_on()
    await climate.power_on()
    t_id, c_id = device_id_for(thermo.address), device_id_for(climate.address)
    await until(lambda: t_id in rec.added and c_id in rec.added, 20, "both sensors added")

    t_desc, c_desc = rec.added[t_id], rec.added[c_id]
    assert t_desc["type"] == "sensor.temperature"
    assert t_desc["capabilities"] == ["TEMPERATURE_SENSOR"]
    assert (t_desc["name"], t_desc["manufacturer"], t_desc["model"]) == (
        "Porch Thermometer", "Homestream Labs", "T-100",
    )  # fmt: skip
    assert t_desc["protocol"] == "ble" and t_desc["endpoint"].startswith("ble://")
    assert c_desc["type"] == "sensor.climate"
    assert c_desc["capabilities"] == ["TEMPERATURE_SENSOR", "HUMIDITY_SENSOR", "BATTERY"]
    for desc in (t_desc, c_desc):
        assert validate_descriptor(desc) == []
    assert adapter.owns(t_id) and adapter.owns(c_id) and not adapter.owns("ble-000000000000")

    # the first read
    await until(
        lambda: rec.states.get(c_id, {}).get("battery") == 87 and t_id in rec.states,
        5,
        "both read",
    )
    assert rec.states[t_id] == {"temperature": 18.25}
    assert rec.states[c_id] == {"temperature": 22.5, "humidity": 55.5, "battery": 87}
    assert rec.online == {t_id: True, c_id: True}

    # notifications -> partial state reports
    n = len(rec.reports)
    await climate.set(humidity=61.25)
    await thermo.set(temperature=-4.5)
    await climate.set(battery=86)
    await until(lambda: len(rec.reports) >= n + 3, 10, "three notifications")
    # in order per device (two links: their notifications may cross)
    assert [r for r in rec.reports[n:] if r[0] == c_id] == [
        (c_id, {"humidity": 61.25}),
        (c_id, {"battery": 86}),
    ]
    assert [r for r in rec.reports[n:] if r[0] == t_id] == [(t_id, {"temperature": -4.5})]
    with pytest.raises(CommandFailed, match="takes no commands"):
        await adapter.execute(t_id, "ON_OFF", "turnOn", {})
    assert rec.dead == []


async def test_lost_link_goes_offline_and_reconnects(
    air: tuple[VirtualAir, BleAdapter, Recorder], tmp_path: Path
) -> None:
    vair, adapter, rec = air
    climate = Sensor(vair, "Hall Climate", humidity=40.0, battery=70)
    await adapter.permit(60)
    await climate.power_on()
    c_id = device_id_for(climate.address)
    await until(lambda: rec.online.get(c_id) is True, 10, "connected")
    await adapter.permit(0)

    await climate.power_off()
    await until(lambda: rec.online.get(c_id) is False, 5, "offline after the link dropped")
    climate.temperature = 30.0  # changed while away: read again on reconnect
    await climate.power_on()
    await until(lambda: rec.online.get(c_id) is True, 10, "reconnected")
    await until(lambda: rec.states[c_id].get("temperature") == 30.0, 5, "state read again")
    n = len(rec.reports)
    await climate.set(temperature=31.5)  # notifications subscribed anew
    await until(lambda: len(rec.reports) > n, 5, "notification after reconnect")
    assert rec.reports[-1] == (c_id, {"temperature": 31.5})
    assert len(rec.added) == 1  # the same device, not a new one

    # a hub restart remembers it: connected at its next advertisement, no permit needed
    await adapter.stop()
    rec2 = Recorder()
    again = BleAdapter(
        BleConfig(state_file=tmp_path / "ble.json", central=await vair.central("hub2")), rec2
    )
    await again.start()
    try:
        await until(lambda: rec2.online.get(c_id) is True, 10, "remembered device reconnected")
        assert rec2.added == {} and again.owns(c_id)
    finally:
        await again.stop()


async def test_garbage_from_a_device_is_dead_lettered(
    air: tuple[VirtualAir, BleAdapter, Recorder],
) -> None:
    vair, adapter, rec = air
    thermo = Sensor(vair, "Odd Thermometer", battery=50)
    await adapter.permit(60)
    await thermo.power_on()
    t_id = device_id_for(thermo.address)
    await until(lambda: rec.online.get(t_id) is True, 10, "connected")
    await until(lambda: "battery" in rec.states.get(t_id, {}), 5, "first read")
    # three bytes where a sint16 belongs; a battery level over 100
    await thermo.device.notify_subscribers(thermo.chars[_uuid(0x2A6E)], b"\x01\x02\x03")
    await thermo.set(battery=250)
    await until(lambda: len(rec.dead) >= 2, 5, "two dead letters")
    reasons = sorted(reason for _d, reason, _detail in rec.dead)
    assert reasons == ["MALFORMED", "OUT_OF_RANGE"]
    assert all(d == t_id for d, _r, _x in rec.dead)
    assert rec.states[t_id]["battery"] == 50  # nothing invalid reached the state
    await thermo.set(temperature=19.0)  # and the device still works
    await until(lambda: rec.states[t_id]["temperature"] == 19.0, 5, "valid report after garbage")


def _uuid(short: int):  # bumble UUID
    from bumble.core import UUID

    return UUID.from_16_bits(short)
