"""`homestream bench graphql`: /v1/graphql against REST and the WebSocket, in the same run.

1. Reads: a home of ``devices`` devices (written to Redis as the Redis sink writes them),
   ``requests`` times each, alternating: ``devicesByHome`` (the fields REST lists, shadows
   included) against ``GET .../devices``, over one kept-alive HTTP connection each.
2. Fan-out: ``clients`` WebSocket clients (``/v1/ws``) and as many GraphQL subscribers
   (``deviceState`` over graphql-transport-ws, spoken here with the same ``websockets``
   library) follow ``homes`` homes. StateChanges are produced straight to Kafka at ``rate``/s
   (no stream worker in the way); latency runs from the produce call to each client reading
   the event, so both sides have the same Kafka feed, fan-out and socket in them.

Needs a running gateway (``homestream up``; stream workers and sinks are not used).
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any

from bench.fanout import PASSWORD, _quantiles, _token
from runtime.config import Settings
from topics import catalogue as t
from topics.producer import EventProducer

DEVICES_QUERY = """query($h: ID!) { devicesByHome(homeId: $h) {
  id homeId name type manufacturer model protocol online lastSeen battery version
  state desired delta metadata { room area } capabilities { type }
  shadow { version state metadata timestamp } } }"""
SUBSCRIPTION = "subscription($h: ID!) { deviceState(homeId: $h) { deviceId version ts } }"


@dataclass
class Percentiles:
    n: int
    p50_ms: float
    p99_ms: float
    max_ms: float


@dataclass
class GraphQLBenchResult:
    devices: int
    graphql_reads: Percentiles
    rest_reads: Percentiles
    homes: int
    clients_each: int
    rate_per_s: int
    seconds: float
    graphql_fanout: Percentiles
    websocket_fanout: Percentiles
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]


def _percentiles(values: list[float]) -> Percentiles:
    values = sorted(values)
    q = _quantiles(values)
    top = values[-1] if values else 0.0
    return Percentiles(len(values), round(q[49], 2), round(q[98], 2), round(top, 2))


PER_USER = 250  # reads per user and minute: under the gateway's default rate limit (600/60)


def _provision(
    settings: Settings, run: str, homes: list[str], devices: int, readers: int
) -> list[str]:
    """A user owning the homes and ``readers`` members of the first; ``devices`` devices
    with a shadow each in the first home, one in each of the others, written to Redis as
    the Redis sink writes them."""
    import redis

    from stores import accounts
    from stores.db import connect

    users = [f"bench-{run}", *(f"bench-{run}-r{i}" for i in range(readers))]
    with connect(settings) as conn:
        for user in users:
            accounts.add_user(conn, user, PASSWORD)
        for home in homes:
            accounts.add_home(conn, home, users[0])
        for user in users[1:]:
            accounts.set_member(conn, homes[0], user, "member")
        conn.commit()
    client = redis.Redis.from_url(settings.redis_url())
    try:
        for home in homes:
            write_devices(client, home, devices if home == homes[0] else 1)
    finally:
        client.close()
    return users


def write_devices(client: Any, home: str, count: int) -> None:
    """``count`` dimmable lights ``d000`` ... of a home, with a shadow each (version 1), in
    Redis as the Redis sink writes them (no stream worker needed)."""
    from sinks.redis_sink import Writer
    from stores.redis_state import Op, dumps, registry_entry

    now = int(time.time() * 1000)
    ops = []
    for i in range(count):
        dev = f"d{i:03}"
        entry = registry_entry(
            {
                "name": f"Light {i}",
                "type": "light.dimmer",
                "room": ("Hall", "Kitchen", "Bedroom")[i % 3],
                "capabilities": ["ON_OFF", "BRIGHTNESS"],
                "source": "bench",
                "registered_at": now,
            }
        )
        shadow = {
            "desired": {},
            "reported": {"powerState": "ON", "brightness": i % 100},
            "metadata": {"desired": {}, "reported": {}},
            "version": 1,
            "timestamp": now,
        }
        ops.append(Op("register", home, dev, (1_000 + i, dumps(entry), now)))
        ops.append(Op("shadow", home, dev, (1, now, dumps(shadow))))
    writer = Writer(client)
    for start in range(0, len(ops), 500):
        writer.apply(ops[start : start + 500])


def _reads(
    settings: Settings, tokens: list[str], home: str, requests: int, devices: int
) -> tuple[list[float], list[float]]:
    gql_conn = http.client.HTTPConnection(settings.host, settings.ports.gateway, timeout=30)
    rest_conn = http.client.HTTPConnection(settings.host, settings.ports.gateway, timeout=30)
    body = json.dumps({"query": DEVICES_QUERY, "variables": {"h": home}})
    gql_ms: list[float] = []
    rest_ms: list[float] = []

    def once(
        i: int, conn: http.client.HTTPConnection, method: str, path: str, data: str | None
    ) -> Any:
        token = tokens[i * 2 // PER_USER]
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        started = time.perf_counter()
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
        elapsed = (time.perf_counter() - started) * 1000
        if resp.status != 200:
            raise RuntimeError(f"{method} {path}: {resp.status} {raw[:300]!r}")
        return elapsed, json.loads(raw)

    try:
        for i in range(requests + 10):  # the first 10 of each warm up
            ms, doc = once(i, gql_conn, "POST", "/v1/graphql", body)
            if "errors" in doc or len(doc["data"]["devicesByHome"]) != devices:
                raise RuntimeError(f"devicesByHome: {str(doc)[:300]}")
            if i >= 10:
                gql_ms.append(ms)
            ms, doc = once(i, rest_conn, "GET", f"/v1/homes/{home}/devices", None)
            if len(doc["devices"]) != devices:
                raise RuntimeError("REST listed another number of devices")
            if i >= 10:
                rest_ms.append(ms)
    finally:
        gql_conn.close()
        rest_conn.close()
    return gql_ms, rest_ms


async def _fanout(
    settings: Settings,
    token: str,
    homes: list[str],
    clients: int,
    rate: int,
    seconds: float,
) -> tuple[list[float], list[float]]:
    from websockets.asyncio.client import connect

    base = f"ws://{settings.host}:{settings.ports.gateway}"
    sent: dict[tuple[str, int], float] = {}
    ws_ms: list[float] = []
    gql_ms: list[float] = []
    sockets = []

    def note(out: list[float], home: str, version: Any) -> None:
        started = sent.get((home, int(version or 0)))
        if started is not None:
            out.append((time.time() - started) * 1000)

    async def ws_reader(ws: Any) -> None:
        async for raw in ws:
            frame = json.loads(raw)
            if frame.get("type") == "device.state":
                note(ws_ms, frame["home_id"], frame.get("version"))

    async def gql_reader(ws: Any, home: str) -> None:
        async for raw in ws:
            msg = json.loads(raw)
            if msg.get("type") == "next":
                event = msg["payload"]["data"]["deviceState"]
                note(gql_ms, home, event["version"])
            elif msg.get("type") == "ping":
                await ws.send(json.dumps({"type": "pong"}))

    tasks = []
    for i in range(clients):
        home = homes[i % len(homes)]
        ws = await connect(f"{base}/v1/ws?access_token={token}", max_queue=None)
        await ws.send(json.dumps({"type": "subscribe", "home_id": home}))
        sockets.append(ws)
        tasks.append(asyncio.create_task(ws_reader(ws)))
        g = await connect(
            f"{base}/v1/graphql", subprotocols=["graphql-transport-ws"], max_queue=None
        )
        await g.send(json.dumps({"type": "connection_init", "payload": {"token": token}}))
        ack = json.loads(await g.recv())
        if ack.get("type") != "connection_ack":
            raise RuntimeError(f"graphql-transport-ws: {ack}")
        payload = {"query": SUBSCRIPTION, "variables": {"h": home}}
        await g.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
        sockets.append(g)
        tasks.append(asyncio.create_task(gql_reader(g, home)))
    await asyncio.sleep(3)  # snapshots in, subscriptions live
    producer = EventProducer(settings.kafka_bootstrap, settings.partitions, **{"linger.ms": 1})
    n, t0 = 0, time.monotonic()
    version = 1_000  # above the provisioned shadows' version
    while time.monotonic() - t0 < seconds:
        due = int((time.monotonic() - t0) * rate)
        while n < due:
            home = homes[n % len(homes)]
            if n % len(homes) == 0:
                version += 1
            now = time.time()
            sent[(home, version)] = now
            producer.send(
                t.STATE_CHANGES,
                "StateChange",
                home,
                device_id="d000",
                version=version,
                changed={"brightness": version % 100},
                reported={"brightness": version % 100},
                accepted_at=int(now * 1000),
            )
            n += 1
        producer.producer.poll(0)
        await asyncio.sleep(0.002)
    producer.flush()
    await asyncio.sleep(3)  # the last events
    for task in tasks:
        task.cancel()
    for ws in sockets:
        await ws.close()
    return gql_ms, ws_ms


def run_bench(
    settings: Settings,
    *,
    devices: int = 100,
    requests: int = 300,
    homes: int = 10,
    clients: int = 50,
    rate: int = 200,
    seconds: float = 15.0,
    say: Any = print,
) -> GraphQLBenchResult:
    base = f"http://{settings.host}:{settings.ports.gateway}"
    run = uuid.uuid4().hex[:6]
    home_ids = [f"gqb-{run}-{i:03d}" for i in range(homes)]
    load_before = os.getloadavg()
    say(f"provisioning {homes} homes, {devices} devices in the first")
    readers = ((requests + 10) * 2) // PER_USER + 1
    users = _provision(settings, run, home_ids, devices, readers)
    token = _token(base, users[0])
    tokens = [_token(base, u) for u in users[1:]]
    say(f"{requests} devicesByHome and {requests} GET .../devices, alternating")
    gql_reads, rest_reads = _reads(settings, tokens, home_ids[0], requests, devices)
    say(f"{clients} WebSocket and {clients} GraphQL clients; {rate} changes/s for {seconds:.0f} s")
    gql_fan, ws_fan = asyncio.run(_fanout(settings, token, home_ids, clients, rate, seconds))
    return GraphQLBenchResult(
        devices=devices,
        graphql_reads=_percentiles(gql_reads),
        rest_reads=_percentiles(rest_reads),
        homes=homes,
        clients_each=clients,
        rate_per_s=rate,
        seconds=seconds,
        graphql_fanout=_percentiles(gql_fan),
        websocket_fanout=_percentiles(ws_fan),
        load_before=load_before,
        load_after=os.getloadavg(),
    )


def print_result(r: GraphQLBenchResult, as_json: bool) -> None:
    if as_json:
        print(json.dumps(asdict(r), indent=2))
        return
    g, w = r.graphql_reads, r.rest_reads
    print(
        f"a home of {r.devices} devices, {g.n} reads each:\n"
        f"  devicesByHome (GraphQL)  p50 {g.p50_ms} ms  p99 {g.p99_ms} ms  max {g.max_ms} ms\n"
        f"  GET .../devices (REST)   p50 {w.p50_ms} ms  p99 {w.p99_ms} ms  max {w.max_ms} ms"
    )
    g, w = r.graphql_fanout, r.websocket_fanout
    print(
        f"fan-out, {r.clients_each} clients of each kind on {r.homes} homes, "
        f"{r.rate_per_s} StateChanges/s for {r.seconds:.0f} s (produce -> client):\n"
        f"  deviceState (GraphQL)    {g.n:,} events  p50 {g.p50_ms} ms  p99 {g.p99_ms} ms  "
        f"max {g.max_ms} ms\n"
        f"  /v1/ws (WebSocket)       {w.n:,} frames  p50 {w.p50_ms} ms  p99 {w.p99_ms} ms  "
        f"max {w.max_ms} ms\n"
        f"load average before {r.load_before[0]:.1f}, after {r.load_after[0]:.1f} (2 cores)"
    )
