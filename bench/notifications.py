"""`homestream bench notifications`: notification event -> webhook received, end to end.

A bench home with one member whose one channel is ``json://127.0.0.1:<port>/bench``, a
webhook receiver in this process (``http.server``) on that port, and then:

1. Latency: ``events`` Notifications produced at a steady ``rate``; each one's latency is
   the receiver's clock when apprise's POST arrived minus the notification's ``ts`` (set
   when it was produced): p50 / p99 / max. The path: Kafka -> the notify service records
   the delivery in PostgreSQL and commits its offset -> its sender claims, POSTs through
   apprise and settles.
2. Throughput: ``burst`` Notifications produced at once; deliveries/s from the first
   produced to the last received.

It measures the stack's notify service (``homestream up`` runs one); when none is ready it
starts one process itself, in its own consumer group positioned at the end of the topic.
The bench's home, member, channel and deliveries are deleted afterwards. Everything shares
the machine: the broker, PostgreSQL, the notify service, the receiver and the producer.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from runtime.config import Settings
from topics import catalogue as t


@dataclass
class BenchResult:
    service: str  # "stack" (homestream up's) or "own" (started by the bench)
    senders: int
    events: int
    rate_target: float
    rate_achieved: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    burst: int
    burst_seconds: float
    burst_per_s: float
    burst_p50_ms: float
    burst_p99_ms: float
    lost: int
    duplicates: int


class Receiver:
    """The webhook: message -> the times its POSTs arrived."""

    def __init__(self) -> None:
        self.arrivals: dict[str, list[float]] = {}
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                at = time.time()
                message = json.loads(body).get("message", "")
                with receiver.lock:
                    receiver.arrivals.setdefault(message, []).append(at)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def count(self, messages: set[str]) -> int:
        with self.lock:
            return sum(1 for m in messages if m in self.arrivals)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@contextlib.contextmanager
def _bench_home(settings: Settings, run_id: str, url: str) -> Iterator[str]:
    from domain.notify import Channel
    from stores import accounts, db
    from stores.notify_channels import set_member_channels

    home, user = f"bench-notify-{run_id}", f"bench-notify-{run_id}"
    with db.connect(settings) as conn:
        accounts.add_user(conn, user, uuid.uuid4().hex)
        accounts.add_home(conn, home, user)
        set_member_channels(conn, home, user, [Channel(home, user, url)])
        conn.commit()
    try:
        yield home
    finally:
        with db.connect(settings) as conn:  # the home's channels, members and deliveries go too
            conn.execute("DELETE FROM homes WHERE home_id = %s", (home,))
            conn.execute("DELETE FROM users WHERE username = %s", (user,))
            conn.commit()


@contextlib.contextmanager
def _notify_service(settings: Settings, say: Callable[[str], None]) -> Iterator[str]:
    """The stack's notify service when it is ready, else one started here."""
    from compose.process import free_port
    from runtime.metrics import ready_at
    from sinks.notify import notify_argv

    if ready_at(settings.host, settings.ports.notify_metrics):
        say("measuring the stack's notify service")
        yield "stack"
        return
    group = f"homestream-notify-bench-{uuid.uuid4().hex[:8]}"
    _position_group_at_end(settings, group)
    workdir = Path(tempfile.mkdtemp(prefix="homestream-bench-notify-"))
    port = free_port()
    with (workdir / "notify.log").open("ab") as out:
        proc = subprocess.Popen(
            notify_argv(workdir, port, name="notify-bench", group=group),
            env={**os.environ, "HOMESTREAM_LOG_FORMAT": "text"},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while not ready_at(settings.host, port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the bench's notify process did not start; see {workdir}")
            time.sleep(0.2)
        say(f"no notify service ready in the stack: started one (pid {proc.pid}, log {workdir})")
        yield "own"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(40)
        except subprocess.TimeoutExpired:
            proc.kill()


def _position_group_at_end(settings: Settings, group: str) -> None:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": group})
    try:
        meta = consumer.list_topics(t.NOTIFICATIONS, timeout=10).topics[t.NOTIFICATIONS]
        offsets = [
            TopicPartition(
                t.NOTIFICATIONS,
                p,
                consumer.get_watermark_offsets(TopicPartition(t.NOTIFICATIONS, p), 10)[1],
            )
            for p in meta.partitions
        ]
        consumer.commit(offsets=offsets, asynchronous=False)
    finally:
        consumer.close()


def run_bench(
    settings: Settings,
    *,
    events: int = 2000,
    rate: float = 100.0,
    burst: int = 2000,
    say: Callable[[str], None] = print,
) -> BenchResult:
    from topics.codec import make_codec
    from topics.producer import EventProducer
    from topics.schemas import SchemaStore

    run_id = uuid.uuid4().hex[:8]
    receiver = Receiver()
    producer = EventProducer(
        settings.kafka_bootstrap,
        settings.partitions,
        make_codec(SchemaStore(), settings.schema_registry_url),
        **{"linger.ms": 0},
    )
    sent_at: dict[str, float] = {}

    def send(home: str, message: str) -> None:
        record = producer.send(
            t.NOTIFICATIONS,
            "Notification",
            home,
            kind="SYSTEM",
            severity="INFO",
            message=message,
            title="bench",
            device_id=None,
            automation_id=None,
            data=None,
        )
        sent_at[message] = record["ts"] / 1000

    def wait_for(messages: set[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while receiver.count(messages) < len(messages) and time.monotonic() < deadline:
            time.sleep(0.05)

    url = f"json://127.0.0.1:{receiver.port}/bench"
    try:
        with _bench_home(settings, run_id, url) as home, _notify_service(settings, say) as svc:
            say(f"bench {run_id}: home {home}, webhook {url}")
            warm = {f"warm-{i}" for i in range(20)}
            for m in warm:
                send(home, m)
            producer.producer.flush(10)
            wait_for(warm, 60)

            say(f"latency: {events} notifications at {rate:g}/s")
            steady = [f"steady-{i}" for i in range(events)]
            t0 = time.monotonic()
            for i, m in enumerate(steady):
                pause = t0 + i / rate - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                send(home, m)
                producer.producer.poll(0)
            producer.producer.flush(10)
            achieved = events / max(1e-9, time.monotonic() - t0)
            wait_for(set(steady), 60)

            say(f"throughput: a burst of {burst} notifications")
            bursty = [f"burst-{i}" for i in range(burst)]
            b0 = time.time()
            for m in bursty:
                send(home, m)
            producer.producer.flush(30)
            wait_for(set(bursty), 300)

        with receiver.lock:
            arrivals = {m: list(v) for m, v in receiver.arrivals.items()}
        latencies = [(arrivals[m][0] - sent_at[m]) * 1000 for m in steady if m in arrivals]
        burst_lat = [(arrivals[m][0] - sent_at[m]) * 1000 for m in bursty if m in arrivals]
        last = max((arrivals[m][0] for m in bursty if m in arrivals), default=b0)
        wanted = steady + bursty
        return BenchResult(
            service=svc,
            senders=settings.notify_senders,
            events=events,
            rate_target=rate,
            rate_achieved=round(achieved, 1),
            p50_ms=round(_percentile(latencies, 0.50), 1),
            p99_ms=round(_percentile(latencies, 0.99), 1),
            max_ms=round(max(latencies, default=float("nan")), 1),
            burst=burst,
            burst_seconds=round(last - b0, 2),
            burst_per_s=round(len(burst_lat) / max(1e-9, last - b0), 1),
            burst_p50_ms=round(_percentile(burst_lat, 0.50), 1),
            burst_p99_ms=round(_percentile(burst_lat, 0.99), 1),
            lost=sum(1 for m in wanted if m not in arrivals),
            duplicates=sum(len(arrivals[m]) - 1 for m in wanted if m in arrivals),
        )
    finally:
        receiver.close()


def print_result(result: BenchResult, as_json: bool = False) -> None:
    if as_json:
        print(json.dumps(asdict(result), indent=2))
        return
    r: Any = result
    print(f"notification -> webhook received ({r.service} notify service, {r.senders} senders)")
    print(
        f"  latency at {r.rate_achieved:g}/s (target {r.rate_target:g}) over {r.events} "
        f"notifications: p50 {r.p50_ms:.0f} ms, p99 {r.p99_ms:.0f} ms, max {r.max_ms:.0f} ms"
    )
    print(
        f"  burst of {r.burst}: all received in {r.burst_seconds:.2f} s = {r.burst_per_s:,.0f} "
        f"deliveries/s (latency p50 {r.burst_p50_ms:.0f} ms, p99 {r.burst_p99_ms:.0f} ms)"
    )
    print(f"  lost {r.lost}, received twice {r.duplicates}")
