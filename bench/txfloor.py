"""`homestream bench txfloor`: the floor Kafka's transactions set on this machine.

The raw limit under every stream processor of ours: an echo that does nothing but what the
worker's loop must do (consume read_committed -> produce the same record -> send the input
offsets -> commit, one transaction per batch, the worker's own client settings), in a
process of its own, fed at a steady rate. A read_committed consumer times each record from
its production to its copy being readable. The same echo without transactions
(read_uncommitted, auto-committed offsets) shows what the transaction protocol adds.

A processor's "input -> output readable" latency can be no better than this floor; the
automation and gateway benches' figures read as a ratio to it.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import statistics
import struct
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from confluent_kafka import KafkaError, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from runtime import kafka
from runtime.config import Settings

Say = Callable[[str], None]
_STAMP = struct.Struct(">d")  # the producer's wall clock, seconds


@dataclass
class FloorPoint:
    mode: str  # "transactions" | "plain"
    rate_per_s: int
    records: int
    expected: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    transactions: int  # the echo's commits (0 without transactions)
    load: float


def _echo(settings: Settings, mode: str, src: str, dst: str, stop: Any, counts: Any) -> None:
    """The echo process: the worker's loop with nothing folded."""
    transactional = mode == "transactions"
    consumer = kafka.consumer(
        settings,
        f"bench-txfloor-{uuid.uuid4().hex[:8]}",
        {
            "isolation.level": "read_committed" if transactional else "read_uncommitted",
            "enable.auto.commit": not transactional,
            "fetch.wait.max.ms": 2,  # the worker's fetch tuning (streams/txloop.py)
            "fetch.min.bytes": 100_000,
        },
    )
    consumer.subscribe([src])
    conf: dict[str, Any] = {"linger.ms": 0}
    if transactional:
        conf |= {
            "transactional.id": f"bench-txfloor-{uuid.uuid4().hex[:8]}",
            "transaction.timeout.ms": 10_000,
            "retry.backoff.ms": settings.streams_retry_backoff_ms,
            "retry.backoff.max.ms": 1_000,
        }
    producer = kafka.producer(settings, conf)
    if transactional:
        producer.init_transactions(30)
    while not stop.is_set():
        # as the worker's loop: what queued during the last transaction, else wait for one
        msgs = consumer.consume(500, timeout=0)
        if not msgs:
            first = consumer.poll(0.1)
            msgs = [] if first is None else [first, *consumer.consume(499, timeout=0)]
        msgs = [m for m in msgs if m.error() is None]
        if not msgs:
            continue
        if transactional:
            producer.begin_transaction()
        for m in msgs:
            producer.produce(dst, m.value(), key=m.key(), partition=m.partition())
        if transactional:
            offsets: dict[int, int] = {}
            for m in msgs:
                offsets[m.partition()] = m.offset() + 1
            producer.send_offsets_to_transaction(
                [TopicPartition(src, p, o) for p, o in offsets.items()],
                consumer.consumer_group_metadata(),
                30,
            )
            producer.commit_transaction(30)
            counts.value += 1
        else:
            producer.poll(0)
    producer.flush(10)
    consumer.close()


def _topic(settings: Settings, name: str) -> None:
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    for fut in admin.create_topics([NewTopic(name, settings.partitions, 1)]).values():
        fut.result(30)


def _point(settings: Settings, mode: str, rate: int, seconds: float, say: Say) -> FloorPoint:
    run = uuid.uuid4().hex[:8]
    src, dst = f"bench.txfloor.{run}.in", f"bench.txfloor.{run}.out"
    _topic(settings, src)
    _topic(settings, dst)
    ctx = mp.get_context("spawn")
    stop, commits = ctx.Event(), ctx.Value("q", 0)
    echo = ctx.Process(target=_echo, args=(settings, mode, src, dst, stop, commits))
    echo.start()
    watcher = kafka.consumer(
        settings, f"bench-txfloor-watch-{run}", {"fetch.wait.max.ms": 2}
    )  # read_committed: what a downstream consumer sees
    watcher.subscribe([dst])
    feed = kafka.producer(settings, {"linger.ms": 0})
    latencies: list[float] = []
    expected = int(rate * seconds)
    try:
        # warm-up: the echo's group has joined and its first transaction is done
        deadline = time.monotonic() + 60
        warm = 0
        while time.monotonic() < deadline and warm == 0:
            feed.produce(src, _STAMP.pack(0.0), key=b"warm", partition=0)
            feed.poll(0)
            for m in watcher.consume(100, timeout=0.5):
                warm += m.error() is None
        if warm == 0:
            raise RuntimeError("the echo produced nothing in 60 s: is Kafka up?")
        say(f"  {mode}, {rate:,} records/s for {seconds:g} s")
        start = time.monotonic()
        sent = 0
        homes = [f"home-{i}".encode() for i in range(200)]
        while sent < expected or time.monotonic() < start + seconds + 5:
            now = time.monotonic()
            due = min(expected, int((now - start) * rate))
            while sent < due:
                key = homes[sent % len(homes)]
                part = sent % settings.partitions
                feed.produce(src, _STAMP.pack(time.time()), key=key, partition=part)
                sent += 1
            feed.poll(0)
            for m in watcher.consume(1000, timeout=0.001):
                if m.error() is not None:
                    if m.error().code() != KafkaError._PARTITION_EOF:
                        say(f"  watcher: {m.error()}")
                    continue
                stamp = _STAMP.unpack(m.value())[0]
                if stamp > 0:
                    latencies.append((time.time() - stamp) * 1000)
            if len(latencies) >= expected:
                break
    finally:
        stop.set()
        echo.join(30)
        if echo.is_alive():
            echo.kill()
        watcher.close()
        feed.flush(10)
        admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
        for fut in admin.delete_topics([src, dst]).values():
            try:
                fut.result(30)
            except Exception as exc:  # a leftover bench topic is harmless
                say(f"  could not delete a bench topic: {exc}")
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [float("nan")] * 99
    return FloorPoint(
        mode=mode,
        rate_per_s=rate,
        records=len(latencies),
        expected=expected,
        p50_ms=round(q[49], 1),
        p99_ms=round(q[98], 1),
        max_ms=round(max(latencies, default=float("nan")), 1),
        transactions=int(commits.value),
        load=round(os.getloadavg()[0], 2),
    )


def run_bench(
    settings: Settings, rates: list[int], seconds: float, rounds: int, say: Say
) -> list[FloorPoint]:
    """Each rate, transactions then plain, ``rounds`` times alternating (A/B in one sitting)."""
    points = []
    for r in range(rounds):
        for rate in rates:
            for mode in ("transactions", "plain"):
                point = _point(settings, mode, rate, seconds, say)
                say(
                    f"  round {r + 1}: {mode:>12} {rate:>6,}/s: p50 {point.p50_ms} ms, p99"
                    f" {point.p99_ms} ms, {point.records:,}/{point.expected:,} records,"
                    f" {point.transactions:,} transactions, load {point.load}"
                )
                points.append(point)
    return points


def print_result(points: list[FloorPoint], as_json: bool) -> None:
    import json

    if as_json:
        print(json.dumps([asdict(p) for p in points], indent=2))
        return
    print("| echo | records/s | p50 ms | p99 ms | max ms | records | transactions | load |")
    print("|---|---|---|---|---|---|---|---|")
    for p in points:
        print(
            f"| {p.mode} | {p.rate_per_s:,} | {p.p50_ms} | {p.p99_ms} | {p.max_ms} |"
            f" {p.records:,}/{p.expected:,} | {p.transactions:,} | {p.load} |"
        )
