"""Scene runs and group commands through the gateway, with the stream worker's fold in
the loop: what the gateway produces is folded, and what the fold emits comes back as the
fan-out's events, as the Kafka feed would bring them. A hub that completes what it is
sent plays the devices, except those told to stay silent."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import httpx
import pytest

from domain.groups import child_command_id
from gateway.app import create_app
from gateway.auth import issue_token
from gateway.frames import to_events
from gateway.memory import memory_backend
from streams.fold.config import ProcessorConfig
from streams.fold.dispatch import Fold
from streams.fold.store import DictStore
from topics import catalogue as t

CAPS = {"lamp": ["ON_OFF", "BRIGHTNESS"], "plug": ["ON_OFF"], "fan": ["ON_OFF"]}


class Worker:
    """The fold behind the memory backend's producer, and a hub that acks."""

    def __init__(self, backend: Any, silent: set[str] = frozenset()) -> None:
        self.backend, self.silent = backend, silent
        self.fold = Fold(DictStore(), ProcessorConfig(default_timeout_ms=300))
        self.read = 0
        self.now = 0
        for dev, caps in CAPS.items():
            self.handle("DeviceDiscovered", {
                "event_id": f"disc-{dev}", "home_id": "h1", "ts": 1, "device_id": dev,
                "name": dev, "type": "light.dimmer", "capabilities": caps,
            })  # fmt: skip

    def handle(self, name: str, record: dict[str, Any]) -> None:
        out = self.fold.handle(name, record)
        for e in out:
            if e.topic == t.COMMANDS_REQUESTED:
                self.backend.producer.sent.append((e.topic, e.record_name, e.record))
            elif e.record_name == "CommandDispatched" and e.record["device_id"] not in self.silent:
                self.backend.producer.sent.append((t.COMMANDS_ACKS, "HubAck", {
                    "event_id": f"ack-{e.record['command_id']}", "home_id": "h1",
                    "ts": e.record["issued_at"] + 5, "device_id": e.record["device_id"],
                    "command_id": e.record["command_id"], "status": "COMPLETED",
                }))  # fmt: skip
        self.backend.fanout.publish([ev for e in out for ev in to_events(e.record_name, e.record)])

    async def run(self) -> None:
        while True:
            sent = self.backend.producer.sent
            while self.read < len(sent):
                _topic, name, record = sent[self.read]
                self.read += 1
                self.now = max(self.now, int(record.get("ts") or 0))
                self.handle(name, record)
            self.now += 100  # a tick every 100 ms of the test's time
            self.handle("StreamTick", {"event_id": f"t{self.now}", "home_id": "", "ts": self.now,
                                       "partition": 0})  # fmt: skip
            await asyncio.sleep(0.01)


@pytest.fixture
def backend():
    b = memory_backend(rate_limit="1000/60")
    b.scene_wait_s = 3.0
    b.command_wait_max_s = 3.0
    b.store.add_user("alice", "password-1")
    b.store.add_home("h1", "alice")
    for dev, caps in CAPS.items():
        b.devices.add("h1", dev, caps)
    return b


@contextlib.asynccontextmanager
async def running(backend, silent: set[str] = frozenset()):
    worker = Worker(backend, silent)
    task = asyncio.create_task(worker.run())
    try:
        yield worker
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.fixture
async def client(backend):
    transport = httpx.ASGITransport(app=create_app(backend=backend))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        c.headers["Authorization"] = f"Bearer {issue_token(backend.token_secret, 'alice')[0]}"
        yield c


SCENE = {
    "name": "Evening",
    "actions": [
        {"device_id": "lamp", "capability": "ON_OFF", "command": "turnOn"},
        {"group_id": "rest", "capability": "ON_OFF", "command": "turnOff", "delay_ms": 150},
        {
            "device_id": "lamp",
            "capability": "BRIGHTNESS",
            "command": "setBrightness",
            "parameters": {"brightness": 20},
            "conditions": [
                {
                    "condition": "state",
                    "device_id": "plug",
                    "attribute": "powerState",
                    "state": "ON",
                }
            ],
        },
    ],
}


async def test_a_scene_run_is_the_workers_and_the_request_gets_its_end(client, backend):
    r = await client.put("/v1/homes/h1/groups/rest", json={"name": "R", "devices": ["plug", "fan"]})
    assert r.status_code == 201
    assert (await client.put("/v1/homes/h1/scenes/evening", json=SCENE)).status_code == 201
    async with running(backend, silent={"fan"}) as worker:
        r = await client.post("/v1/homes/h1/scenes/evening/run", json={"request_id": "q1"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["status"], body["actions_succeeded"], body["actions_failed"]) == (
        "PARTIAL",
        1,
        1,
    )
    assert body["actions_skipped"] == 1  # the plug reports no powerState: not ON
    assert body["execution_time_ms"] >= 150
    run = body["run_id"]
    assert body["command_ids"] == [
        child_command_id(run, "0"),
        *(child_command_id(run, "1", d) for d in ("plug", "fan")),
    ]
    assert body["errors"][0]["action"] == 1 and "fan" in body["errors"][0]["message"]
    # The gateway sent one request; the worker sent the commands.
    mine = [(n, r["home_id"]) for (_t, n, r) in backend.producer.sent[: worker.read]]
    assert ("SceneRequested", "h1") in mine
    assert not [n for n, _h in mine if n == "SceneRun"]
    requested = [r for (_t, n, r) in backend.producer.sent if n == "SceneRequested"]
    assert requested[0]["request_id"] == "q1" and requested[0]["requested_by"] == "alice"


async def test_without_a_worker_the_run_request_answers_202_started(client, backend):
    assert (await client.put("/v1/homes/h1/scenes/one", json={
        "name": "One", "actions": [SCENE["actions"][0]]})).status_code == 201  # fmt: skip
    backend.scene_wait_s = 0.05
    r = await client.post("/v1/homes/h1/scenes/one/run")
    assert r.status_code == 202 and r.json()["status"] == "STARTED"
    assert backend.fanout.scenes.__len__() == 0  # the wait is forgotten
    assert (await client.post("/v1/homes/h1/scenes/nope/run")).status_code == 404


async def test_scene_conditions_are_checked_on_put(client):
    bad = {**SCENE, "conditions": [{"condition": "sometimes"}]}
    r = await client.put("/v1/homes/h1/scenes/x", json=bad)
    assert r.status_code == 422
    assert [d["path"] for d in r.json()["error"]["details"]] == [
        "conditions[0].condition",
        "actions[1].group_id",
    ]


async def test_a_group_command_is_one_request_the_worker_fans_out(client, backend):
    r = await client.put(
        "/v1/homes/h1/groups/all", json={"name": "All", "devices": ["lamp", "plug", "fan"]}
    )
    assert r.status_code == 201
    dim = {"capability": "BRIGHTNESS", "command": "setBrightness", "parameters": {"brightness": 9}}
    async with running(backend):
        r = await client.post("/v1/homes/h1/groups/all/commands", json=dim)
        assert r.status_code == 202
        body = r.json()
        parent = body["command_id"]
        assert [c["device_id"] for c in body["commands"]] == ["lamp"]
        assert body["commands"][0]["command_id"] == child_command_id(parent, "lamp")
        assert [s["device_id"] for s in body["skipped"]] == ["plug", "fan"]
        (req,) = [r for (_t, n, r) in backend.producer.sent if n == "CommandRequested"][:1]
        assert (req["command_id"], req["device_id"], req["group_id"]) == (parent, None, "all")
        r = await client.post(
            "/v1/homes/h1/groups/all/commands",
            json={"capability": "ON_OFF", "command": "turnOn", "wait": True},
        )
        assert r.status_code == 200
        waited = r.json()
        assert waited["status"] == "COMPLETED"
        assert [c["status"] for c in waited["commands"]] == ["COMPLETED"] * 3
        got = (await client.get(f"/v1/homes/h1/commands/{waited['command_id']}")).json()
        assert got["status"] == "COMPLETED" and len(got["commands"]) == 3
    r = await client.post(
        "/v1/homes/h1/groups/all/commands", json={"capability": "LOCK", "command": "lock"}
    )
    assert r.status_code == 422
    assert (await client.post("/v1/homes/h1/groups/none/commands", json=dim)).status_code == 404


async def test_a_group_command_the_worker_fails_is_failed_for_the_gateway_too(client, backend):
    r = await client.put("/v1/homes/h1/groups/two", json={"name": "2", "devices": ["lamp", "fan"]})
    assert r.status_code == 201
    async with running(backend, silent={"fan"}):
        r = await client.post(
            "/v1/homes/h1/groups/two/commands",
            json={"capability": "ON_OFF", "command": "turnOn", "wait": True},
        )
    body = r.json()
    assert body["status"] == "TIMEOUT", body
    assert "1 of 2 members completed" in body["reason"]
    statuses = {c["device_id"]: c["status"] for c in body["commands"]}
    assert statuses == {"lamp": "COMPLETED", "fan": "TIMEOUT"}
