"""The whole story of a hub without its cloud, every hop real: the hub process (HubRuntime,
Zigbee through zigpy-znp and the ZNP simulator), Mosquitto, the bridge, the stream worker
and the history sink of the test stack.

The cloud syncs the home's automation to the hub (HomeConfig -> retained
hub/{home}/config/automation/{id}). Mosquitto stops; the motion sensor reports; the hub
runs the automation itself and the light's command reaches the device locally. Mosquitto
starts; the outbox replays; the cloud's history holds the motion report, ONE run of the
automation and the light's change, in the order they happened, and the cloud sent no
command of its own (it did not run the automation the hub had run).
"""

from __future__ import annotations

import asyncio
import json
import signal
import uuid
from pathlib import Path
from typing import Any

import pytest

from compose.process import free_port
from hub.adapters.recorder import until
from hub.bridge import forget_session
from hub.hubrun import HubRuntime, load_config
from hub.znpsim.server import ZnpSimulator
from tests.integration.bridge_support import BridgeProc
from tests.integration.streams_support import CODEC, Worker
from tests.integration.test_history_sink import Sink
from tests.integration.test_hub_local_control import OCCUPANCY, ON_OFF, dev, motion_light
from tests.integration.test_hub_store_forward import Broker
from topics import catalogue as t
from topics.producer import EventProducer

pytestmark = pytest.mark.integration


def _rows(settings, sql: str, home: str) -> list[tuple[Any, ...]]:
    from stores import db

    with db.connect(settings) as conn:
        return conn.execute(sql, (home,)).fetchall()


async def test_motion_light_offline_then_history(stack_env, settings, run_cli, tmp_path: Path):
    home = f"off-{uuid.uuid4().hex[:6]}"
    run_cli("users", "add", "--username", f"owner-{home}", "--password", "correct-horse-1")
    run_cli("homes", "add", "--home", home, "--owner", f"owner-{home}")
    creds = json.loads(run_cli("hubs", "add", "--home", home).stdout)
    tag = uuid.uuid4().hex[:4]
    broker = Broker(settings)
    bridge = BridgeProc(stack_env, f"off-{tag}", tmp_path, free_port())
    worker = Worker(stack_env, f"off-{tag}", tmp_path / "worker")
    sink = Sink(stack_env, tmp_path, f"test-off-{tag}", "off")
    sim = ZnpSimulator(tmp_path / "sim")
    await sim.start()
    (tmp_path / "hub.toml").write_text(
        f"""
[cloud]
home = "{home}"
username = "{creds["username"]}"
password = "{creds["password"]}"
host = "{settings.host}"
port = {settings.ports.mqtt}

[hub]
state_dir = "state"

[zigbee]
port = "socket://127.0.0.1:{sim.port}"
"""
    )
    runtime = HubRuntime(load_config(tmp_path / "hub.toml"))
    runtime.client.keepalive = 5
    stop = asyncio.Event()
    hub = asyncio.create_task(runtime.run(stop))
    pir, hall = dev("pir"), dev("hall")
    try:
        await asyncio.to_thread(bridge.wait_ready)
        await asyncio.to_thread(sink.wait_up)
        await until(lambda: runtime.client.connected, 30, "hub connected")
        zigbee = runtime.adapters[0]
        await asyncio.wait_for(zigbee.connected.wait(), 30)  # type: ignore[attr-defined]
        sim.add_device("pir", "motion")
        sim.add_device("hall", "bulb")
        await zigbee.permit(60)
        await until(lambda: {pir, hall} <= set(runtime.local.devices()), 60, "both paired")
        registered = "SELECT device_id FROM history.device_registry WHERE home_id = %s"
        await until(lambda: len(_rows(settings, registered, home)) == 2, 60, "cloud registry")

        # the cloud's automation: the worker runs it online, the bridge syncs it to the hub
        feed = EventProducer(settings.kafka_bootstrap, settings.partitions, CODEC)
        feed.send(
            t.HOME_CONFIG, "HomeConfig", home, kind="automation", doc_id="hall-light",
            document=json.dumps(motion_light(pir, hall)), by=f"owner-{home}",
        )  # fmt: skip
        # the user's name and room for the light (PATCH .../devices/{d}) reach its hub too
        named = {"name": "Hall ceiling", "room": "Hall"}
        feed.send(
            t.HOME_CONFIG, "HomeConfig", home, kind="device", doc_id=hall,
            document=json.dumps(named), by=f"owner-{home}",
        )  # fmt: skip
        feed.flush(10)
        await until(lambda: "hall-light" in runtime.local.automations(), 60, "synced to the hub")

        def shown_name() -> Any:
            return {d["device_id"]: d for d in runtime.local.shown()}[hall]["name"]

        await until(lambda: shown_name() == "Hall ceiling", 60, "the light's name on the hub")

        broker.stop()
        await until(lambda: not runtime.client.connected, 20, "hub noticed the outage")
        sim.set_attribute("pir", OCCUPANCY, 0, 1)
        await until(lambda: sim.device("hall").clusters[ON_OFF][0].value, 15, "light on, locally")
        await until(
            lambda: runtime.local.devices()[hall][1].get("powerState") == "ON", 10, "light state"
        )
        assert runtime.client.pending() >= 4  # motion, the run (twice), the light: queued

        broker.start()
        await until(lambda: runtime.client.connected, 60, "hub reconnected")
        await until(lambda: runtime.client.pending() == 0, 60, "outbox replayed")

        changes = (
            "SELECT device_id, attribute, coalesce(value_text, value_num::text),"
            " (extract(epoch FROM time) * 1000)::bigint"
            " FROM history.state_history WHERE home_id = %s ORDER BY time, version"
        )

        def seen() -> tuple[list[Any], list[Any]]:
            rows = _rows(settings, changes, home)
            motion = [r for r in rows if tuple(r[:3]) == (pir, "motion", "1")]
            light = [r for r in rows if tuple(r[:3]) == (hall, "powerState", "ON")]
            return motion, light

        try:
            await until(lambda: all(seen()), 60, "motion and light in history")
        except AssertionError as exc:
            raise AssertionError(f"{exc}: {_rows(settings, changes, home)}") from None
        runs_sql = (
            "SELECT run_id, status, (extract(epoch FROM time) * 1000)::bigint"
            " FROM history.automation_runs WHERE home_id = %s AND automation_id = 'hall-light'"
            " ORDER BY time"
        )
        await until(lambda: len(_rows(settings, runs_sql, home)) >= 2, 60, "the run in history")
        await asyncio.sleep(5)  # the cloud had its chance to run it again: it must not have

        runs = _rows(settings, runs_sql, home)
        assert len({r[0] for r in runs}) == 1, runs  # ONE run
        assert [r[1] for r in runs] == ["STARTED", "COMPLETED"]
        (motion, *_), (light, *_) = seen()
        assert motion[3] <= runs[0][2] <= light[3], (motion, runs, light)  # in order
        cloud_commands = _rows(
            settings,
            "SELECT command_id FROM history.command_requests WHERE home_id = %s"
            " AND requested_by LIKE 'automation:%%'",
            home,
        )
        assert cloud_commands == []  # the cloud did not run it again
    finally:
        broker.start()
        stop.set()
        await asyncio.wait_for(hub, 30)
        await sim.stop()
        sink.stop()
        worker.kill(signal.SIGTERM)
        bridge.kill(signal.SIGTERM)
        forget_session(settings, bridge.name)
