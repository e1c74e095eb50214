"""`homestream bench gateway`: WebSocket fan-out measured on the running stack.

`clients` WebSocket clients (one asyncio process) each subscribe to one of `homes` bench
homes. Reports that change state are produced at `rate`/s. Latency is measured from a
report's production to its `device.state` frame arriving at a client, for every client that
receives it, so it covers Kafka, the stream worker, the gateway's fan-out and the socket.
Alongside, a plain read_committed consumer times the same StateChanges reaching Kafka: the
difference between the two is the gateway's own share.
The gateway's memory per connection is its RSS growth divided by the number of clients.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import threading
import time
import urllib.request
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from runtime.config import Settings
from topics import catalogue as t
from topics.producer import EventProducer
from topics.state_change import state_of

PASSWORD = "bench-password-1"


@dataclass
class GatewayBenchResult:
    clients: int
    homes: int
    rate_per_s: int
    seconds: float
    frames: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    kafka_p50_ms: float  # report -> its StateChange readable in Kafka (no gateway)
    kafka_p99_ms: float
    rss_before_mb: float
    rss_after_mb: float
    kb_per_connection: float


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _provision(settings: Settings, run: str, homes: list[str]) -> str:
    from stores import accounts
    from stores.db import connect

    user = f"bench-{run}"
    with connect(settings) as conn:
        accounts.add_user(conn, user, PASSWORD)
        for home in homes:
            accounts.add_home(conn, home, user)
        conn.commit()
    feed = EventProducer(settings.kafka_bootstrap, settings.partitions)
    for home in homes:
        feed.send(
            t.DEVICE_DISCOVERY,
            "DeviceDiscovered",
            home,
            device_id="thermo",
            name="Bench Thermometer",
            type="sensor.temperature",
            room="Bench",
            capabilities=["TEMPERATURE_SENSOR"],
        )
    feed.flush()
    return user


def _token(base: str, user: str) -> str:
    req = urllib.request.Request(
        f"{base}/v1/auth/token",
        data=json.dumps({"username": user, "password": PASSWORD}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return str(json.loads(resp.read())["access_token"])


async def _run(
    settings: Settings,
    base: str,
    token: str,
    homes: list[str],
    clients: int,
    rate: int,
    seconds: float,
    gateway_pid: int,
    say,
) -> GatewayBenchResult:
    from websockets.asyncio.client import connect

    sent: dict[tuple[str, float], float] = {}
    latencies: list[float] = []
    url = base.replace("http", "ws", 1) + f"/v1/ws?access_token={token}"
    rss_before = _rss_mb(gateway_pid)
    sockets = []
    for i in range(clients):
        ws = await connect(url, max_queue=None, open_timeout=30)
        await ws.send(json.dumps({"type": "subscribe", "home_id": homes[i % len(homes)]}))
        sockets.append(ws)
        if (i + 1) % 250 == 0:
            say(f"  {i + 1} clients connected")

    async def reader(ws) -> None:
        async for raw in ws:
            frame = json.loads(raw)
            if frame.get("type") != "device.state":
                continue
            temp = frame.get("reported", {}).get("temperature")
            started = sent.get((frame["home_id"], temp))
            if started is not None:
                latencies.append((time.time() - started) * 1000)

    kafka_latencies: list[float] = []
    stop_kafka = threading.Event()
    watcher = threading.Thread(
        target=_watch_state_changes,
        args=(settings, set(homes), sent, kafka_latencies, stop_kafka),
        daemon=True,
    )
    watcher.start()
    readers = [asyncio.create_task(reader(ws)) for ws in sockets]
    await asyncio.sleep(3)  # snapshots in
    rss_after = _rss_mb(gateway_pid)
    feed = EventProducer(settings.kafka_bootstrap, settings.partitions, **{"linger.ms": 1})
    n, t0 = 0, time.monotonic()
    while time.monotonic() - t0 < seconds:
        due = int((time.monotonic() - t0) * rate)
        while n < due:
            home = homes[n % len(homes)]
            # Each report moves the home's thermometer by 1 °C (deadband 0.5): a change.
            temp = 10.0 + (n // len(homes)) % 60
            now = time.time()
            sent[(home, temp)] = now
            feed.send(
                t.DEVICE_REPORTS,
                "DeviceReport",
                home,
                device_id="thermo",
                state={"temperature": temp},
                received_at=int(now * 1000),
                source="bench",
            )
            n += 1
        feed.producer.poll(0)
        await asyncio.sleep(0.002)
    feed.flush()
    await asyncio.sleep(3)  # the last frames
    stop_kafka.set()
    watcher.join(10)
    for task in readers:
        task.cancel()
    for ws in sockets:
        await ws.close()
    latencies.sort()
    q = _quantiles(latencies)
    kq = _quantiles(sorted(kafka_latencies))
    return GatewayBenchResult(
        clients=clients,
        homes=len(homes),
        rate_per_s=rate,
        seconds=seconds,
        frames=len(latencies),
        p50_ms=round(q[49], 1),
        p99_ms=round(q[98], 1),
        max_ms=round(latencies[-1] if latencies else 0.0, 1),
        kafka_p50_ms=round(kq[49], 1),
        kafka_p99_ms=round(kq[98], 1),
        rss_before_mb=round(rss_before, 1),
        rss_after_mb=round(rss_after, 1),
        kb_per_connection=round((rss_after - rss_before) * 1024 / max(clients, 1), 1),
    )


def _quantiles(values: list[float]) -> list[float]:
    return statistics.quantiles(values, n=100) if len(values) >= 2 else [0.0] * 99


def _watch_state_changes(
    settings: Settings,
    homes: set[str],
    sent: dict[tuple[str, float], float],
    out: list[float],
    stop: threading.Event,
) -> None:
    """The reference: when each bench StateChange becomes readable (read_committed)."""
    from confluent_kafka import Consumer, TopicPartition

    from topics.codec import make_codec
    from topics.schemas import SchemaStore

    codec = make_codec(SchemaStore(), settings.schema_registry_url)
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"homestream-gateway-bench-{uuid.uuid4().hex}",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
        }
    )
    parts = []
    for p in range(settings.partitions):
        _low, high = consumer.get_watermark_offsets(TopicPartition(t.STATE_CHANGES, p), timeout=10)
        parts.append(TopicPartition(t.STATE_CHANGES, p, high))
    consumer.assign(parts)
    try:
        while not stop.is_set():
            first = consumer.poll(0.2)
            if first is None:
                continue
            now = time.time()
            for msg in [first, *consumer.consume(499, timeout=0)]:
                if msg.error() or not msg.value():
                    continue
                try:
                    rec = codec.decode(msg.value()).record
                except Exception:
                    continue
                if rec.get("home_id") not in homes:
                    continue
                temp = state_of(rec).changed.get("temperature")
                started = sent.get((rec["home_id"], temp))
                if started is not None:
                    out.append((now - started) * 1000)
    finally:
        consumer.close()


def run_bench(
    settings: Settings,
    *,
    clients: int = 1000,
    homes: int = 100,
    rate: int = 1000,
    seconds: float = 20.0,
    say=print,
) -> GatewayBenchResult:
    from compose.services.gateway import GatewayService
    from runtime.secrets import load_secrets

    pid = GatewayService(settings, load_secrets(settings)).pid()
    if pid is None:
        raise RuntimeError("no gateway is running: start the stack with `homestream up`")
    base = f"http://{settings.host}:{settings.ports.gateway}"
    run = uuid.uuid4().hex[:6]
    home_ids = [f"gwb-{run}-{i:03d}" for i in range(homes)]
    say(f"provisioning {homes} homes with a thermometer each")
    user = _provision(settings, run, home_ids)
    time.sleep(5)  # the worker registers the thermometers
    token = _token(base, user)
    say(f"connecting {clients} WebSocket clients; then {rate} changes/s for {seconds:.0f} s")
    return asyncio.run(_run(settings, base, token, home_ids, clients, rate, seconds, pid, say))


def print_result(r: GatewayBenchResult, as_json: bool) -> None:
    if as_json:
        print(json.dumps(asdict(r), indent=2))
        return
    print(
        f"{r.clients} clients on {r.homes} homes, {r.rate_per_s} changes/s for {r.seconds:.0f} s:"
        f" {r.frames:,} device.state frames, report-in to client p50 {r.p50_ms} ms, "
        f"p99 {r.p99_ms} ms, max {r.max_ms} ms\n"
        f"the same StateChanges readable in Kafka (worker alone): p50 {r.kafka_p50_ms} ms, "
        f"p99 {r.kafka_p99_ms} ms\n"
        f"gateway RSS {r.rss_before_mb} -> {r.rss_after_mb} MB: "
        f"{r.kb_per_connection} KB per connection"
    )
