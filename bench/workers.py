"""`homestream bench streams`: the stream workers measured through the real Kafka.

Runs against a running stack and its worker(s) (`homestream up`):
1. throughput: a backlog of reports (90 % unchanged, as in the design brief) is
   produced first, then timed until the workers' committed offsets reach its end;
2. latency: reports at a steady rate; for each report that changes state, the time
   from its production to its StateChange being readable (read_committed).
"""

from __future__ import annotations

import json
import random
import statistics
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass

from confluent_kafka import Consumer, TopicPartition

from runtime.config import Settings
from topics import catalogue as t
from topics.producer import EventProducer
from topics.state_change import state_of

GROUP = "homestream-streams"


@dataclass
class BenchResult:
    homes: int
    devices: int
    backlog_reports: int
    throughput_reports_per_s: float
    latency_rate_per_s: int
    latency_seconds: float
    latency_samples: int
    latency_p50_ms: float
    latency_p99_ms: float
    latency_max_ms: float


class _Feed(EventProducer):
    def __init__(self, settings: Settings, homes: int, seed: int = 3):
        super().__init__(
            settings.kafka_bootstrap,
            settings.partitions,
            # Linger adds to the measured latency: keep it to the bridge's order (1 ms).
            **{"queue.buffering.max.messages": 1_000_000, "linger.ms": 1},
        )
        self.settings = settings
        self.rng = random.Random(seed)
        run = uuid.uuid4().hex[:6]
        self.homes = [f"bench-{run}-{i:04d}" for i in range(homes)]
        self.devices = [f"thermo-{i}" for i in range(5)]
        self.last: dict[tuple[str, str], float] = {}

    def discover_all(self) -> None:
        for home in self.homes:
            for dev in self.devices:
                self.send(
                    t.DEVICE_DISCOVERY,
                    "DeviceDiscovered",
                    home,
                    device_id=dev,
                    name=dev,
                    type="sensor.temperature",
                    capabilities=["TEMPERATURE_SENSOR"],
                )
        self.flush(60)

    def report(self, n: int, change_share: float = 0.1) -> bool:
        """Report n; True when it changes the device's state."""
        home = self.homes[n % len(self.homes)]
        dev = self.devices[(n // len(self.homes)) % len(self.devices)]
        key = (home, dev)
        change = key not in self.last or self.rng.random() < change_share
        if change:  # a step far outside the 0.5 °C deadband
            self.last[key] = round(self.last.get(key, 20.0) + self.rng.choice([-2, 2]), 1)
        now = int(time.time() * 1000)
        self.send(
            t.DEVICE_REPORTS,
            "DeviceReport",
            home,
            device_id=dev,
            state={"temperature": self.last[key]},
            received_at=now,
        )
        return change


class _Lag:
    """Reports not yet committed by the workers' group, over all partitions."""

    def __init__(self, settings: Settings):
        # One consumer for every look: the bench shares the CPU it is measuring.
        self.consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": GROUP})
        self.tps = [TopicPartition(t.DEVICE_REPORTS, p) for p in range(settings.partitions)]

    def __call__(self) -> int:
        lag = 0
        for tp in self.consumer.committed(self.tps, timeout=10):
            _low, high = self.consumer.get_watermark_offsets(tp, timeout=10)
            lag += high - max(tp.offset, 0)
        return lag

    def close(self) -> None:
        self.consumer.close()


def _wait(pred: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.2)
    raise RuntimeError(
        f"timed out waiting for {what}: is a stream worker running (homestream status)?"
    )


def run_bench(
    settings: Settings,
    *,
    homes: int = 200,
    backlog: int = 50_000,
    rate: int = 2_000,
    seconds: float = 15.0,
    say: Callable[[str], None] = print,
) -> BenchResult:
    feed = _Feed(settings, homes)
    say(f"registering {homes} homes x {len(feed.devices)} devices")
    feed.discover_all()
    for n in range(homes * len(feed.devices)):  # first state of every device
        feed.report(n)
    feed.flush(60)
    lag = _Lag(settings)
    _wait(lambda: lag() == 0, 120, "the workers to catch up")

    say(f"throughput: {backlog:,} reports, 90% unchanged")
    base = homes * len(feed.devices)
    for n in range(backlog):
        feed.report(base + n)
    feed.flush(120)
    started = time.monotonic()
    last_print = started
    while (left := lag()) > 0:
        if time.monotonic() - last_print > 5:
            say(f"  ... {left:,} left")
            last_print = time.monotonic()
        if time.monotonic() - started > 600:
            raise RuntimeError("the workers did not drain the backlog in 10 minutes")
        time.sleep(0.05)
    throughput = backlog / (time.monotonic() - started)
    lag.close()
    say(f"  {throughput:,.0f} reports/s")

    say(f"latency: {rate:,} reports/s for {seconds:.0f} s")
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"bench-{uuid.uuid4().hex}",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
        }
    )
    parts = [TopicPartition(t.STATE_CHANGES, p) for p in range(settings.partitions)]
    ends = [consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in parts]
    consumer.assign(
        [TopicPartition(tp.topic, tp.partition, end) for tp, end in zip(parts, ends, strict=True)]
    )
    sent_at: dict[tuple[str, str, float], float] = {}
    latencies: list[float] = []
    n = base + backlog
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        due = int((time.monotonic() - start) * rate)
        while n - (base + backlog) < due:
            if feed.report(n):
                home = feed.homes[n % len(feed.homes)]
                dev = feed.devices[(n // len(feed.homes)) % len(feed.devices)]
                sent_at[(home, dev, feed.last[(home, dev)])] = time.monotonic()
            n += 1
        _collect(consumer, feed, sent_at, latencies)
    feed.flush(30)
    drain_until = time.monotonic() + 10
    while sent_at and time.monotonic() < drain_until:
        _collect(consumer, feed, sent_at, latencies)
    consumer.close()
    q = statistics.quantiles(latencies, n=100) if len(latencies) >= 100 else [float("nan")] * 99
    return BenchResult(
        homes=homes,
        devices=homes * len(feed.devices),
        backlog_reports=backlog,
        throughput_reports_per_s=round(throughput),
        latency_rate_per_s=rate,
        latency_seconds=seconds,
        latency_samples=len(latencies),
        latency_p50_ms=round(q[49] * 1000, 1),
        latency_p99_ms=round(q[98] * 1000, 1),
        latency_max_ms=round(max(latencies, default=float("nan")) * 1000, 1),
    )


def _collect(consumer, feed: _Feed, sent_at: dict, latencies: list[float]) -> None:
    for msg in consumer.consume(500, timeout=0.001):
        if msg.error():
            continue
        rec = feed.codec.decode(msg.value()).record
        temp = state_of(rec).changed.get("temperature")
        key = (rec["home_id"], rec["device_id"], temp)
        if key in sent_at:
            latencies.append(time.monotonic() - sent_at.pop(key))


def print_result(result: BenchResult, as_json: bool) -> None:
    if as_json:
        print(json.dumps(asdict(result), indent=2))
        return
    r = result
    print(
        f"\nstreams bench: {r.homes} homes, {r.devices} devices, "
        f"{r.backlog_reports:,}-report backlog"
    )
    print(f"  throughput          {r.throughput_reports_per_s:,.0f} reports/s (90% unchanged)")
    print(
        f"  latency at {r.latency_rate_per_s:,}/s  p50 {r.latency_p50_ms} ms, "
        f"p99 {r.latency_p99_ms} ms, max {r.latency_max_ms} ms "
        f"({r.latency_samples} state changes, report produced -> StateChange readable)"
    )
