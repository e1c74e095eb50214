"""``homestream bench offline``: the hub with its cloud unreachable, BLE and mDNS (issue #16).

No stack needed; everything runs in this process.

* local motion -> light: ``HubRuntime`` (the real hub process's runtime) with the Zigbee
  adapter (unpatched zigpy + zigpy-znp against the ZNP simulator on this loop), the cloud
  broker's port closed, a local automation "motion -> turn the light on". Timed per round
  from the motion report reaching the hub (its ``state`` event) to the light's command
  confirmed by the radio (``execute`` returned: MT request and AF confirm), and, end to
  end, from the simulated sensor's report to the simulated bulb being on;
* BLE notify -> state report: a bumble GATT peripheral on bumble's virtual link notifies a
  new temperature -> the BLE adapter's state event (bleak over the bumble backend);
* mDNS discovery: a zeroconf registration on a private network namespace's LAN -> the
  mDNS adapter's ``device_added`` (registration probes the LAN first: RFC 6762's three
  250 ms probes are most of it), and unregistered -> availability offline.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class OfflineResult:
    rounds: int = 0
    decide_p50_ms: float = 0.0  # report in -> the command handed to the radio
    decide_p99_ms: float = 0.0
    hub_p50_ms: float = 0.0  # report in -> the radio confirmed the command
    hub_p99_ms: float = 0.0
    e2e_p50_ms: float = 0.0
    e2e_p99_ms: float = 0.0
    ble_notifies: int = 0
    ble_p50_ms: float = 0.0
    ble_p99_ms: float = 0.0
    mdns_services: int = 0
    mdns_found_p50_ms: float = 0.0
    mdns_found_max_ms: float = 0.0
    mdns_gone_p50_ms: float = 0.0
    mdns_skipped: str | None = None
    load_average: list[float] = field(default_factory=list)


def _pct(values: list[float], q: float) -> float:
    from bench.radio import _pct as nearest_rank

    return round(nearest_rank(values, q), 2)


async def _motion_light(
    rounds: int, say: Callable[[str], None]
) -> tuple[list[float], list[float], list[float]]:
    from compose.process import free_port
    from hub.adapters.zigbee import device_id_for
    from hub.hubrun import HubRuntime, load_config
    from hub.znpsim.devices import ieee_for, ieee_text
    from hub.znpsim.server import ZnpSimulator

    def dev(name: str) -> str:
        return device_id_for(ieee_text(ieee_for(name)))

    tmp = Path(tempfile.mkdtemp(prefix="homestream-bench-offline-"))
    sim = ZnpSimulator(tmp / "sim")
    await sim.start()
    (tmp / "hub.toml").write_text(
        f'[cloud]\nhome = "bench"\nusername = "u"\npassword = "p"\nport = {free_port()}\n'
        f'[hub]\nstate_dir = "state"\n[zigbee]\nport = "socket://127.0.0.1:{sim.port}"\n'
    )
    runtime = HubRuntime(load_config(tmp / "hub.toml"))
    stop = asyncio.Event()
    task = asyncio.create_task(runtime.run(stop))
    pir, hall = dev("pir"), dev("hall")
    hub_ms: list[float] = []
    decide_ms: list[float] = []
    e2e_ms: list[float] = []
    try:
        zigbee = runtime.adapters[0]
        await asyncio.wait_for(zigbee.connected.wait(), 60)  # type: ignore[attr-defined]
        sim.add_device("pir", "motion")
        sim.add_device("hall", "bulb")
        await zigbee.permit(60)
        await _until(lambda: {pir, hall} <= set(runtime.local.devices()), 60)
        doc = {
            "alias": "bench",
            "mode": "parallel",
            "triggers": [{"trigger": "state", "device_id": pir, "attribute": "motion", "to": True}],
            "actions": [{"device_id": hall, "capability": "ON_OFF", "command": "turnOn"}],
        }
        runtime.local.on_config("automation", "bench", json.dumps(doc).encode())
        marks: dict[str, float] = {}
        state, execute = runtime.state, zigbee.execute

        def timed_state(device_id: str, patch: Any) -> None:
            if device_id == pir and patch.get("motion") is True and "in" not in marks:
                marks["in"] = time.perf_counter()
            state(device_id, patch)

        async def timed_execute(device_id: str, cap: str, cmd: str, params: Any) -> None:
            if device_id == hall and cmd == "turnOn":
                marks["radio"] = time.perf_counter()
            await execute(device_id, cap, cmd, params)
            if device_id == hall and cmd == "turnOn":
                marks["done"] = time.perf_counter()

        runtime.state = timed_state  # type: ignore[method-assign]
        zigbee.execute = timed_execute  # type: ignore[method-assign]
        bulb = sim.device("hall").clusters[0x0006][0]
        started = 0.0
        for i in range(rounds):
            # Rounds start >= 100 ms apart: the sensor's 8-bit ZCL sequence number wraps every
            # 128 rounds, and zigpy drops a frame identical to one seen in the last 10 s as a
            # duplicate (PACKET_DEBOUNCE_WINDOW), as it should for a real sensor.
            await asyncio.sleep(max(0.0, started + 0.1 - time.perf_counter()))
            marks.clear()
            started = time.perf_counter()
            sim.set_attribute("pir", 0x0406, 0, 1)
            deadline = started + 10
            while not bulb.value:
                if time.perf_counter() > deadline:
                    raise RuntimeError(
                        f"round {i + 1}: the light did not turn on within 10 s of the motion"
                        f" (hub marks: {sorted(marks)})"
                    )
                await asyncio.sleep(0.0005)
            e2e_ms.append((time.perf_counter() - started) * 1000)
            await _until(lambda: "done" in marks and "in" in marks, 10)
            hub_ms.append((marks["done"] - marks["in"]) * 1000)
            decide_ms.append((marks["radio"] - marks["in"]) * 1000)
            # reset: no motion, light off (the hub's registry sees both)
            sim.set_attribute("pir", 0x0406, 0, 0)
            await execute(hall, "ON_OFF", "turnOff", {})
            await _until(
                lambda: (
                    runtime.local.devices()[pir][1].get("motion") is False
                    and runtime.local.devices()[hall][1].get("powerState") == "OFF"
                ),
                10,
            )
            if (i + 1) % 50 == 0:
                say(f"motion -> light: {i + 1}/{rounds} rounds")
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        await sim.stop()
    return decide_ms, hub_ms, e2e_ms


async def _ble(notifies: int) -> list[float]:
    from hub.adapters.ble import BleAdapter, BleConfig
    from hub.adapters.recorder import Recorder
    from hub.blesim.peripherals import Sensor, VirtualAir

    air = VirtualAir()
    rec = Recorder()
    tmp = Path(tempfile.mkdtemp(prefix="homestream-bench-ble-"))
    adapter = BleAdapter(BleConfig(state_file=tmp / "ble.json", central=await air.central()), rec)
    await adapter.start()
    sensor = Sensor(air, "Bench Thermometer", humidity=50.0, battery=80)
    got: asyncio.Queue[float] = asyncio.Queue()
    rec.on_state = lambda _d, s: got.put_nowait(time.perf_counter()) if "temperature" in s else None
    out: list[float] = []
    try:
        await adapter.permit(60)
        await sensor.power_on()
        await asyncio.wait_for(got.get(), 30)  # the first read
        await asyncio.sleep(1)  # ... then the adapter subscribes to the notifications
        for i in range(notifies):
            started = time.perf_counter()
            await sensor.set(temperature=15 + (i % 100) / 10)
            out.append((await asyncio.wait_for(got.get(), 10) - started) * 1000)
    finally:
        await adapter.stop()
    return out


async def _mdns(services: int) -> tuple[list[float], list[float]]:
    from zeroconf import IPVersion
    from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

    from hub.adapters.mdns import MdnsAdapter, MdnsConfig
    from hub.adapters.mdns_map import device_id_for
    from hub.adapters.recorder import Recorder

    rec = Recorder()
    found: dict[str, float] = {}
    rec.on_added = lambda d: found.setdefault(d, time.perf_counter())
    adapter = MdnsAdapter(MdnsConfig(), rec)
    await adapter.start()
    devices = AsyncZeroconf(ip_version=IPVersion.V4Only)
    found_ms: list[float] = []
    gone_ms: list[float] = []
    try:
        for i in range(services):
            kind = "_hue._tcp.local." if i % 2 else "_shelly._tcp.local."
            info = AsyncServiceInfo(
                kind, f"bench-{i}.{kind}", addresses=[socket.inet_aton("127.0.0.1")], port=80,
                server=f"bench-{i}.local.",
            )  # fmt: skip
            device = device_id_for(info.name, kind)
            started = time.perf_counter()
            await (await devices.async_register_service(info))
            await _until(lambda d=device: d in found, 20)  # type: ignore[misc]
            found_ms.append((found[device] - started) * 1000)
            started = time.perf_counter()
            await (await devices.async_unregister_service(info))
            await _until(lambda d=device: rec.online.get(d) is False, 20)  # type: ignore[misc]
            gone_ms.append((time.perf_counter() - started) * 1000)
    finally:
        await devices.async_close()
        await adapter.stop()
    return found_ms, gone_ms


async def _until(pred: Callable[[], Any], timeout: float) -> None:
    from hub.adapters.recorder import until

    await until(pred, timeout, "the bench's next step (is the machine overloaded?)")


def run_bench(
    *, rounds: int, notifies: int, services: int, say: Callable[[str], None]
) -> OfflineResult:
    result = OfflineResult(load_average=[round(x, 1) for x in os.getloadavg()])
    say(f"local motion -> light, cloud unreachable: {rounds} rounds")
    decide_ms, hub_ms, e2e_ms = asyncio.run(_motion_light(rounds, say))
    result.rounds = len(hub_ms)
    result.decide_p50_ms, result.decide_p99_ms = _pct(decide_ms, 0.5), _pct(decide_ms, 0.99)
    result.hub_p50_ms, result.hub_p99_ms = _pct(hub_ms, 0.5), _pct(hub_ms, 0.99)
    result.e2e_p50_ms, result.e2e_p99_ms = _pct(e2e_ms, 0.5), _pct(e2e_ms, 0.99)
    say(f"BLE notify -> state report: {notifies} notifications")
    ble = asyncio.run(_ble(notifies))
    result.ble_notifies = len(ble)
    result.ble_p50_ms, result.ble_p99_ms = _pct(ble, 0.5), _pct(ble, 0.99)
    say(f"mDNS discovery: {services} services on a private network namespace")
    from hub.netns import NamespaceRefused, private_lan

    try:
        with private_lan(f"hs-bench-{os.getpid()}"):
            found, gone = asyncio.run(_mdns(services))
        result.mdns_services = len(found)
        result.mdns_found_p50_ms, result.mdns_found_max_ms = _pct(found, 0.5), _pct(found, 1.0)
        result.mdns_gone_p50_ms = _pct(gone, 0.5)
    except NamespaceRefused as exc:
        result.mdns_skipped = str(exc)
    load_after = [round(x, 1) for x in os.getloadavg()]
    result.load_average = [*result.load_average, *load_after]
    return result


def print_result(result: OfflineResult, as_json: bool) -> None:
    if as_json:
        print(json.dumps(asdict(result)))
        return
    r = result
    print(f"load average before/after: {r.load_average}")
    print(
        f"local motion -> light ({r.rounds} rounds), p50/p99: report in -> command to the radio "
        f"{r.decide_p50_ms} / {r.decide_p99_ms} ms; -> radio confirmed {r.hub_p50_ms} / "
        f"{r.hub_p99_ms} ms; simulated sensor -> bulb on {r.e2e_p50_ms} / {r.e2e_p99_ms} ms"
    )
    print(f"BLE notify -> state ({r.ble_notifies}): {r.ble_p50_ms} / {r.ble_p99_ms} ms p50/p99")
    if r.mdns_skipped:
        print(f"mDNS: skipped: {r.mdns_skipped}")
    else:
        print(
            f"mDNS ({r.mdns_services} services): found {r.mdns_found_p50_ms} ms p50, "
            f"{r.mdns_found_max_ms} ms max; gone -> offline {r.mdns_gone_p50_ms} ms p50"
        )
