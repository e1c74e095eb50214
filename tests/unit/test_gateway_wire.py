"""/v1/ws under the gateway's own server (gateway.wire): the real uvicorn server in this
process, real WebSocket clients, the in-memory backend.

- a bad token: an ``unauthorized`` error frame, then close code 4401;
- subscribe -> snapshot, then the home's events as the frames of CONTRACT.md section 5, in
  order, pre-encoded (the same bytes for every subscriber), a batch in one write;
- bad frames get an error frame and the socket stays open; ping -> pong;
- a client that stops reading falls behind: the others get every event at once, and it
  gets ``resync`` (with the count dropped) and a fresh snapshot once it reads again;
- the rest of the app (REST) is served through ASGI on the same port;
- two servers on one port with SO_REUSEPORT share the connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import urllib.request
from collections.abc import AsyncIterator

import pytest
import uvicorn
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from compose.process import free_port
from gateway import wire
from gateway.app import create_app
from gateway.auth import issue_token
from gateway.frames import Event, to_events
from gateway.memory import memory_backend
from gateway.service import listening_socket
from gateway.wire import WireProtocol
from gateway.ws import wire_session


async def _serve(backend, port: int, *, reuse_port: bool = False) -> uvicorn.Server:
    app = create_app(backend=backend)
    protocol = WireProtocol.serving(
        "/v1/ws", lambda w, headers, query: wire_session(backend, w, headers, query)
    )
    config = uvicorn.Config(
        app, ws=protocol, log_level="warning", lifespan="on", ws_per_message_deflate=False
    )
    server = uvicorn.Server(config)
    sock = listening_socket("127.0.0.1", port, reuse_port=reuse_port)
    asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.02)
    return server


@pytest.fixture
def backend():
    b = memory_backend()
    b.store.add_user("alice", "password-1")
    b.store.add_home("h1", "alice")
    b.store.add_home("h2", "alice")
    b.devices.add("h1", "lamp", ["SWITCH"], state={"on": False})
    return b


@pytest.fixture
async def url(backend) -> AsyncIterator[str]:
    port = free_port()
    server = await _serve(backend, port)
    token = issue_token(backend.token_secret, "alice")[0]
    yield f"ws://127.0.0.1:{port}/v1/ws?access_token={token}"
    server.should_exit = True
    await asyncio.sleep(0.3)


def _state(home: str, version: int, **reported) -> list[Event]:
    return to_events(
        "StateChange",
        {
            "home_id": home,
            "device_id": "lamp",
            "version": version,
            "ts": 1,
            "source": "hub",
            "changed": reported,
            "reported": reported,
            "delta": {},
        },
    )


async def _until(ws, kind: str) -> dict:
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if frame["type"] == kind:
            return frame


async def test_a_bad_token_gets_an_error_frame_and_4401(url):
    async with connect(url.rsplit("=", 1)[0] + "=nope") as ws:
        frame = json.loads(await ws.recv())
        assert frame["type"] == "error" and frame["code"] == "unauthorized"
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd.code == 4401


async def test_subscribe_snapshot_then_events_in_order(url, backend):
    async with connect(url) as a, connect(url) as b:
        for ws in (a, b):
            await ws.send(json.dumps({"type": "subscribe", "home_id": "h1"}))
            snap = await _until(ws, "snapshot")
            assert [d["device_id"] for d in snap["devices"]] == ["lamp"]
        batch = [e for v in range(2, 7) for e in _state("h1", v, on=v % 2 == 0)]
        backend.fanout.publish([*batch, *_state("h2", 9, on=True)])
        for ws in (a, b):
            got = [json.loads(await asyncio.wait_for(ws.recv(), 5)) for _ in batch]
            assert got == [e.frame for e in batch]  # the contract's frames, in order
            assert all(f["home_id"] == "h1" for f in got)
        assert backend.fanout.stats.delivered == 2 * len(batch)


async def test_bad_frames_get_errors_and_the_socket_stays_open(url):
    async with connect(url) as ws:
        await ws.send(b"\x00binary")
        assert (await _until(ws, "error"))["code"] == "bad_frame"
        await ws.send("{not json")
        assert (await _until(ws, "error"))["code"] == "bad_json"
        await ws.send(json.dumps({"type": "nope", "request_id": 7}))
        frame = await _until(ws, "error")
        assert frame["code"] == "unknown_type" and frame["request_id"] == 7
        await ws.send(json.dumps({"type": "subscribe", "home_id": "not-mine"}))
        assert (await _until(ws, "error"))["code"] == "not_found"
        await ws.send(json.dumps({"type": "ping", "request_id": "p"}))
        assert await _until(ws, "pong") == {"type": "pong", "request_id": "p"}


async def test_a_client_that_stops_reading_is_resynced_and_delays_nobody(url, backend, monkeypatch):
    monkeypatch.setattr(wire, "HIGH_WATER", 64 * 1024)
    async with connect(url, max_queue=None) as fast, connect(url, max_queue=4) as slow:
        for ws in (fast, slow):
            await ws.send(json.dumps({"type": "subscribe", "home_id": "h1"}))
            await _until(ws, "snapshot")
        # The slow client's connection stops reading once its queue of 4 messages is full:
        # the kernel's buffers fill, then the server's, past the high water mark. The
        # fast one reads all along.
        big = "x" * 100_000
        total = 300

        async def read_all() -> int:
            got = 0
            while got < total:
                frame = json.loads(await asyncio.wait_for(fast.recv(), 10))
                got += frame["type"] == "device.state"
            return got

        reader = asyncio.create_task(read_all())
        for v in range(total):
            backend.fanout.publish(_state("h1", 10 + v, on=True, label=big))
            await asyncio.sleep(0.005)
        assert await reader == total  # every event, nobody waited for the slow one
        assert backend.fanout.stats.dropped > 0
        resync = await _until(slow, "resync")
        assert resync["home_id"] == "h1" and resync["dropped"] > 0
        assert (await _until(slow, "snapshot"))["home_id"] == "h1"
        # What raced the snapshot follows it (the client drops those by version, as
        # CONTRACT.md says); once it has caught up, it follows the home again.
        with contextlib.suppress(TimeoutError):
            while True:
                frame = json.loads(await asyncio.wait_for(slow.recv(), 1.0))
                assert frame["type"] in ("device.state", "resync", "snapshot")
        backend.fanout.publish(_state("h1", 5000, on=False))
        assert (await _until(slow, "device.state"))["version"] == 5000


async def test_rest_on_the_same_port(url):
    http = url.replace("ws://", "http://").split("/v1/ws")[0]
    body = await asyncio.to_thread(lambda: urllib.request.urlopen(http + "/healthz").read())
    assert json.loads(body)["status"]


async def test_two_servers_share_one_port_with_so_reuseport(backend):
    port = free_port()
    servers = [await _serve(backend, port, reuse_port=True) for _ in range(2)]
    token = issue_token(backend.token_secret, "alice")[0]
    try:
        conns = [
            await connect(f"ws://127.0.0.1:{port}/v1/ws?access_token={token}") for _ in range(40)
        ]
        await asyncio.sleep(0.2)
        # Each server counts its own connections (uvicorn's server state).
        counts = [len(s.server_state.connections) for s in servers]
        assert sum(counts) == 40 and min(counts) > 0, counts
        for ws in conns:
            await ws.close()
    finally:
        for s in servers:
            s.should_exit = True
        await asyncio.sleep(0.3)
