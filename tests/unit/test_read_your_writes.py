"""After a waited command COMPLETES, the device's REST state shows it (gateway.routes.
commands.settle): the hub's COMPLETED may come before its report, and the state the REST
routes read is written by the Redis sink a moment after the status."""

from __future__ import annotations

import asyncio
import contextlib
import time

import httpx
import pytest

from gateway.app import create_app
from gateway.auth import issue_token
from gateway.memory import memory_backend
from gateway.routes import commands


@pytest.fixture
def backend():
    b = memory_backend()
    b.command_wait_max_s = 3.0
    b.store.add_user("alice", "password-1")
    b.store.add_home("h1", "alice")
    b.devices.add("h1", "lamp", ["ON_OFF", "BRIGHTNESS"], state={"powerState": "OFF"})
    return b


async def hub(backend, lag_s: float | None) -> None:
    """Complete each command at once; the new state lands ``lag_s`` later (None: never)."""
    seen = 0
    while True:
        sent = backend.producer.sent
        while seen < len(sent):
            _topic, name, rec = sent[seen]
            seen += 1
            if name != "CommandRequested":
                continue
            backend.fanout.note_status(
                {"command_id": rec["command_id"], "home_id": "h1", "status": "COMPLETED"}
            )
            if lag_s is not None:
                await asyncio.sleep(lag_s)
                backend.devices.items[("h1", "lamp")]["state"] = {"powerState": "ON"}
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def running(backend, lag_s):
    task = asyncio.create_task(hub(backend, lag_s))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def post_and_read(backend):
    transport = httpx.ASGITransport(app=create_app(backend=backend))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        c.headers["Authorization"] = f"Bearer {issue_token(backend.token_secret, 'alice')[0]}"
        t0 = time.monotonic()
        r = await c.post(
            "/v1/homes/h1/commands",
            json={"device_id": "lamp", "capability": "ON_OFF", "command": "turnOn", "wait": True},
        )
        took = time.monotonic() - t0
        device = (await c.get("/v1/homes/h1/devices/lamp")).json()
    return r, device, took


async def test_the_reply_waits_until_the_state_shows_the_command(backend):
    async with running(backend, lag_s=0.3):
        r, device, took = await post_and_read(backend)
    assert r.status_code == 200 and r.json()["status"] == "COMPLETED"
    assert device["state"]["powerState"] == "ON"
    assert took >= 0.3


async def test_a_device_that_never_shows_it_gets_its_reply_after_the_bound(backend, monkeypatch):
    monkeypatch.setattr(commands, "SETTLE_S", 0.2)
    async with running(backend, lag_s=None):
        r, device, took = await post_and_read(backend)
    assert r.json()["status"] == "COMPLETED"
    assert device["state"]["powerState"] == "OFF"
    assert took >= 0.2  # it waited for the state, then gave up at the bound
