"""`homestream bench scenes`: scene runs through the stream worker, measured via Kafka.

Runs against a running stack and its worker(s) (`homestream up`). One home with
``devices`` plugs and one scene that switches all of them at once (one step). The bench
plays the hub on Kafka itself: it acks COMPLETED every command dispatched to the home as
soon as it reads it (read_committed), so what is measured is the worker, not MQTT. Runs
go one after the other; for each, from producing the SceneRequested to:
- the last of its commands dispatched (readable by the bridge);
- its final SceneRun readable (what a gateway waiting on the run sees).
"""

from __future__ import annotations

import json
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass

from confluent_kafka import Consumer, TopicPartition

from domain.groups import child_command_id
from runtime.config import Settings
from topics import catalogue as t
from topics.partitioning import partition_for
from topics.producer import EventProducer


@dataclass
class BenchResult:
    devices: int
    runs: int
    completed: int
    dispatched_p50_ms: float
    dispatched_p99_ms: float
    run_p50_ms: float
    run_p99_ms: float
    run_max_ms: float
    execution_time_p50_ms: float  # the worker's own figure (SceneRun.execution_time_ms)


def _read(consumer: Consumer, timeout: float) -> list:
    """What is there, waiting only for the first: consume(n, timeout) would wait for n
    records or the whole timeout, which is latency here."""
    first = consumer.poll(timeout)
    return [] if first is None else [first, *consumer.consume(500, timeout=0)]


def _quantiles(values: list[float]) -> tuple[float, float]:
    if len(values) < 2:
        return (values[0], values[0]) if values else (float("nan"), float("nan"))
    q = statistics.quantiles(values, n=100, method="inclusive")
    return round(q[49], 1), round(q[98], 1)


def _consumer(settings: Settings, topic: str, partition: int) -> Consumer:
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"bench-{uuid.uuid4().hex}",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 2,
        }
    )
    tp = TopicPartition(topic, partition)
    _low, high = consumer.get_watermark_offsets(tp, timeout=10)
    consumer.assign([TopicPartition(topic, partition, high)])
    return consumer


class _Hub(threading.Thread):
    """Acks every command dispatched to the home, and notes when each was readable."""

    def __init__(self, settings: Settings, home: str) -> None:
        super().__init__(daemon=True)
        self.home = home
        self.seen: dict[str, float] = {}  # command id -> monotonic time read
        self.stop = threading.Event()
        self.consumer = _consumer(
            settings, t.COMMANDS_DISPATCHED, partition_for(home, settings.partitions)
        )
        self.producer = EventProducer(
            settings.kafka_bootstrap, settings.partitions, **{"linger.ms": 0}
        )

    def run(self) -> None:
        codec = self.producer.codec
        while not self.stop.is_set():
            for msg in _read(self.consumer, 0.05):
                if msg.error() or msg.value() is None:
                    continue
                rec = codec.decode(msg.value()).record
                if rec["home_id"] != self.home:
                    continue
                self.seen[rec["command_id"]] = time.monotonic()
                self.producer.send(
                    t.COMMANDS_ACKS,
                    "HubAck",
                    self.home,
                    device_id=rec["device_id"],
                    command_id=rec["command_id"],
                    status="COMPLETED",
                )
            self.producer.producer.poll(0)
        self.consumer.close()
        self.producer.flush(10)


def run_bench(
    settings: Settings,
    *,
    devices: int = 10,
    runs: int = 200,
    say: Callable[[str], None] = print,
) -> BenchResult:
    home = f"bench-scenes-{uuid.uuid4().hex[:6]}"
    feed = EventProducer(settings.kafka_bootstrap, settings.partitions, **{"linger.ms": 0})
    plugs = [f"plug-{i}" for i in range(devices)]
    say(f"home {home}: {devices} plugs and a scene that toggles them all at once")
    for plug in plugs:
        feed.send(
            t.DEVICE_DISCOVERY,
            "DeviceDiscovered",
            home,
            device_id=plug,
            name=plug,
            type="switch.plug",
            capabilities=["ON_OFF"],
        )
    scene = {
        "name": "All",
        "actions": [{"device_id": p, "capability": "ON_OFF", "command": "toggle"} for p in plugs],
    }
    feed.send(
        t.HOME_CONFIG,
        "HomeConfig",
        home,
        key=f"{home}/scene:all",
        kind="scene",
        doc_id="all",
        document=json.dumps(scene),
    )
    feed.flush(30)
    hub = _Hub(settings, home)
    hub.start()
    results = _consumer(settings, t.SCENES_RUNS, partition_for(home, settings.partitions))
    codec = feed.codec
    dispatched: list[float] = []
    latencies: list[float] = []
    execution: list[float] = []
    completed = 0
    try:
        for n in range(-5, runs):  # five warm-up runs, not counted
            run_id = str(uuid.uuid4())
            sent = time.monotonic()
            feed.send(
                t.COMMANDS_REQUESTED,
                "SceneRequested",
                home,
                scene_id="all",
                run_id=run_id,
                requested_by="bench",
            )
            feed.producer.flush(5)
            final = None
            deadline = sent + 30
            while final is None and time.monotonic() < deadline:
                for msg in _read(results, 0.05):
                    if msg.error() or msg.value() is None:
                        continue
                    rec = codec.decode(msg.value()).record
                    if rec.get("run_id") == run_id and rec["status"] != "STARTED":
                        final = (time.monotonic(), rec)
            if final is None:
                raise RuntimeError(
                    f"run {n} got no final SceneRun in 30 s: is a stream worker running "
                    "(homestream status)?"
                )
            if n < 0:
                continue
            ids = [child_command_id(run_id, str(i)) for i in range(devices)]
            last = max(hub.seen.get(cid, float("nan")) for cid in ids)
            dispatched.append((last - sent) * 1000)
            latencies.append((final[0] - sent) * 1000)
            execution.append(float(final[1]["execution_time_ms"] or 0))
            completed += final[1]["status"] == "COMPLETED"
    finally:
        hub.stop.set()
        hub.join(10)
        results.close()
    d50, d99 = _quantiles(dispatched)
    r50, r99 = _quantiles(latencies)
    e50, _e99 = _quantiles(execution)
    return BenchResult(
        devices=devices,
        runs=runs,
        completed=completed,
        dispatched_p50_ms=d50,
        dispatched_p99_ms=d99,
        run_p50_ms=r50,
        run_p99_ms=r99,
        run_max_ms=round(max(latencies, default=float("nan")), 1),
        execution_time_p50_ms=e50,
    )


def print_result(result: BenchResult, as_json: bool) -> None:
    if as_json:
        print(json.dumps(asdict(result), indent=2))
        return
    r = result
    print(f"\nscenes bench: {r.runs} runs of a {r.devices}-device scene, {r.completed} COMPLETED")
    print(
        f"  request -> last command dispatched  p50 {r.dispatched_p50_ms} ms, "
        f"p99 {r.dispatched_p99_ms} ms"
    )
    print(
        f"  request -> final SceneRun readable  p50 {r.run_p50_ms} ms, p99 {r.run_p99_ms} ms, "
        f"max {r.run_max_ms} ms (worker's execution_time_ms p50 {r.execution_time_p50_ms})"
    )
