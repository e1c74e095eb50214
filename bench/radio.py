"""``homestream bench radio``: the Zigbee adapter against the ZNP simulator (no cloud).

The simulator runs as its own process (``homestream zigbee-sim``), the adapter (unpatched
zigpy + zigpy-znp) in this one, so the two do not share a core's time slice more than
they must. Measured:

* pairing: permit-join opened -> the device joined, interviewed, bound, configured and
  its descriptor out (the adapter's ``device_added``), one device at a time;
* command -> state: ``execute(setBrightness)`` -> the device's attribute report back as
  a state with that brightness (MT request, AF confirm, the device's report, zigpy's
  parsing, our mapping), p50/p99;
* reports/s: every paired device sends a storm of attribute reports at once; how many
  states per second the adapter turns them into.
"""

from __future__ import annotations

import asyncio
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from compose.process import free_port


@dataclass
class RadioResult:
    devices: int
    pairing_p50_ms: float
    pairing_max_ms: float
    commands: int
    command_p50_ms: float
    command_p99_ms: float
    reports: int
    reports_per_s: float


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class _Control:
    def __init__(self, port: int) -> None:
        deadline = time.monotonic() + 30
        while True:
            try:
                self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        self.file = self.sock.makefile("rwb")

    def __call__(self, **msg: Any) -> dict[str, Any]:
        self.file.write(json.dumps(msg).encode() + b"\n")
        self.file.flush()
        answer: dict[str, Any] = json.loads(self.file.readline())
        if not answer.get("ok"):
            raise RuntimeError(f"simulator: {answer.get('error')}")
        return answer


async def _time_commands(adapter: Any, rec: Any, device: str, commands: int) -> list[float]:
    """ms from ``execute(setBrightness)`` to the state event carrying that brightness,
    one command at a time; the target alternates so every command changes the state."""
    latencies: list[float] = []
    for i in range(commands):
        target = 10 + (i % 2) * 50
        seen = asyncio.Event()

        def on_state(dev: str, state: Any, want: int = target, ev: asyncio.Event = seen) -> None:
            if dev == device and state.get("brightness") == want:
                ev.set()

        rec.on_state = on_state
        t0 = time.perf_counter()
        await adapter.execute(device, "BRIGHTNESS", "setBrightness", {"brightness": target})
        await asyncio.wait_for(seen.wait(), 10)
        latencies.append((time.perf_counter() - t0) * 1000)
    rec.on_state = None
    return latencies


async def _run(
    devices: int, commands: int, reports: int, say: Callable[[str], None]
) -> RadioResult:
    from hub.adapters.recorder import Recorder
    from hub.adapters.zigbee import ZigbeeAdapter, ZigbeeConfig, device_id_for

    work = Path(tempfile.mkdtemp(prefix="homestream-bench-radio-"))
    port, control_port = free_port(), free_port()
    sim = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "homestream.cli",
            "zigbee-sim",
            "--port",
            str(port),
            "--control-port",
            str(control_port),
            "--state-dir",
            str(work / "sim"),
            "--loglevel",
            "warning",
        ],
        stdout=subprocess.DEVNULL,
    )
    rec = Recorder()
    adapter = ZigbeeAdapter(
        ZigbeeConfig(port=f"socket://127.0.0.1:{port}", database=work / "zigbee.db"), rec
    )
    try:
        ctl = await asyncio.to_thread(_Control, control_port)
        await adapter.start()
        await asyncio.wait_for(adapter.connected.wait(), 60)
        say(f"network up; pairing {devices} dimmers one at a time")
        added = asyncio.Event()
        rec.on_added = lambda _dev: added.set()
        pairing: list[float] = []
        ieees: list[str] = []
        for i in range(devices):
            added.clear()
            ieee = ctl(op="add", name=f"bench-{i}", kind="dimmer")["ieee"]
            ieees.append(ieee)
            t0 = time.perf_counter()
            await adapter.permit(60)
            await asyncio.wait_for(added.wait(), 60)
            pairing.append((time.perf_counter() - t0) * 1000)
            await adapter.permit(0)
            assert device_id_for(ieee) in rec.added
        lamp = device_id_for(ieees[0])  # bench-0: the one that answers and storms

        say(f"{commands} setBrightness commands, one at a time")
        latencies = await _time_commands(adapter, rec, lamp, commands)

        # A device's ZCL sequence number wraps at 256 and zigpy drops a repeated one as a
        # duplicate, so each device storms at most 250 reports; the storm is spread over
        # every paired device.
        per_device = min(250, max(1, reports // devices))
        reports = per_device * devices
        say(f"a storm of {reports} reports from {devices} devices at once")
        count = 0
        done = asyncio.Event()

        def on_report(dev: str, state: Any) -> None:
            nonlocal count
            count += 1
            if count >= reports:
                done.set()

        rec.on_state = on_report
        t0 = time.perf_counter()
        for i in range(devices):
            ctl(op="burst", name=f"bench-{i}", count=per_device)
        try:
            await asyncio.wait_for(done.wait(), 120)
        except TimeoutError:
            raise RuntimeError(f"only {count} of {reports} reports arrived within 120 s") from None
        elapsed = time.perf_counter() - t0
        return RadioResult(
            devices=devices,
            pairing_p50_ms=round(statistics.median(pairing), 1),
            pairing_max_ms=round(max(pairing), 1),
            commands=commands,
            command_p50_ms=round(_pct(latencies, 0.50), 2),
            command_p99_ms=round(_pct(latencies, 0.99), 2),
            reports=reports,
            reports_per_s=round(reports / elapsed),
        )
    finally:
        await adapter.stop()
        sim.terminate()
        sim.wait(10)


async def _run_zwave(commands: int, say: Callable[[str], None]) -> RadioResult:
    """Real zwave-js (its mock serial server + @zwave-js/server): inclusion of the one
    waiting node, and command -> state on the mock dimmer. No report storm: the mock
    nodes report only what they are asked."""
    from hub.adapters.recorder import Recorder
    from hub.adapters.zwave import ZWaveAdapter, ZWaveConfig
    from hub.zwavesim.processes import ZWaveJsPeer

    work = Path(tempfile.mkdtemp(prefix="homestream-bench-zwave-"))
    peer = await asyncio.to_thread(ZWaveJsPeer, work)
    await asyncio.to_thread(peer.start)
    rec = Recorder()
    adapter = ZWaveAdapter(ZWaveConfig(url=peer.url), rec)
    try:
        await adapter.start()
        await asyncio.wait_for(adapter.connected.wait(), 120)
        while len(rec.added) < 6:
            await asyncio.sleep(0.1)
        say("including the waiting node")
        added = asyncio.Event()
        rec.on_added = lambda _dev: added.set()
        t0 = time.perf_counter()
        await adapter.permit(60)
        await asyncio.wait_for(added.wait(), 60)
        pairing = (time.perf_counter() - t0) * 1000
        dimmer = next(d for d, desc in rec.added.items() if desc["type"] == "light.dimmer")
        say(f"{commands} setBrightness commands, one at a time")
        latencies = await _time_commands(adapter, rec, dimmer, commands)
        return RadioResult(
            devices=1,
            pairing_p50_ms=round(pairing, 1),
            pairing_max_ms=round(pairing, 1),
            commands=commands,
            command_p50_ms=round(_pct(latencies, 0.50), 2),
            command_p99_ms=round(_pct(latencies, 0.99), 2),
            reports=0,
            reports_per_s=0,
        )
    finally:
        await adapter.stop()
        await asyncio.to_thread(peer.stop)


def run_bench(
    *,
    protocol: str = "zigbee",
    devices: int = 10,
    commands: int = 500,
    reports: int = 5000,
    say: Callable[[str], None],
) -> RadioResult:
    if protocol == "zwave":
        return asyncio.run(_run_zwave(commands, say))
    return asyncio.run(_run(devices, commands, reports, say))


def print_result(result: RadioResult, as_json: bool = False) -> None:
    if as_json:
        print(json.dumps(asdict(result)))
        return
    r = result
    print(f"pairing ({r.devices} devices): p50 {r.pairing_p50_ms} ms, max {r.pairing_max_ms} ms")
    print(f"command -> state ({r.commands}): p50 {r.command_p50_ms} ms, p99 {r.command_p99_ms} ms")
    if r.reports:
        print(f"reports: {r.reports_per_s}/s over {r.reports}")
