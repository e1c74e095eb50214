"""`homestream bench history`: the history sink against the running stack.

1. Throughput: a backlog of StateChanges (each with ``attributes`` changed numeric
   attributes, so ``attributes`` rows each) is produced first; then one sink process, in its
   own consumer group positioned at the start of the backlog, is timed storing it: rows/s
   into PostgreSQL, from the sink's own counters polled every 0.1 s.
2. Lag: with the sink caught up, StateChanges are produced at a steady ``rate`` for
   ``seconds``; the lag of each is its row's ``ingested_at`` minus its ``accepted_at`` (set
   when it was produced): p50 / p99 / max.

The bench's rows (homes ``bench-hist-<id>-*``) and its consumer group are deleted afterwards.
Everything shares the machine: the broker, PostgreSQL, the sink and the bench's producer.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from compose.process import terminate
from runtime.config import Settings
from sinks.history import TOPICS, sink_argv
from topics import catalogue as t
from topics.state_change import encode_state


@dataclass
class BenchResult:
    engine: str
    changes: int
    attributes: int
    rows: int
    backlog_seconds: float
    rows_per_s: float
    changes_per_s: float
    lag_rate_target: int
    lag_rate_achieved: float
    lag_changes: int
    lag_p50_ms: float
    lag_p99_ms: float
    lag_max_ms: float
    batches: int


def run_bench(
    settings: Settings,
    *,
    changes: int = 100_000,
    attributes: int = 3,
    rate: int = 5_000,
    seconds: float = 20.0,
    homes: int = 50,
    devices_per_home: int = 10,
    say: Callable[[str], None] = print,
    database: str | None = None,
) -> BenchResult:
    """``database``: another database of the same server than the stack's (e.g. one of
    ``bench.history_storage``'s, to measure each engine)."""
    from confluent_kafka import Producer

    from compose.process import free_port
    from stores import db
    from topics.codec import make_codec
    from topics.partitioning import partition_for_key
    from topics.schemas import SchemaStore

    env = {**os.environ, "HOMESTREAM_LOG_FORMAT": "text"}
    if database:
        settings = settings.model_copy(update={"pg_database": database})
        env["HOMESTREAM_PG_DATABASE"] = database
    run_id = uuid.uuid4().hex[:8]
    group = f"homestream-history-bench-{run_id}"
    home_ids = [f"bench-hist-{run_id}-{i}" for i in range(homes)]
    devices = [(h, f"sensor-{d}") for h in home_ids for d in range(devices_per_home)]
    attrs = [f"value_{a}" for a in range(attributes)]
    codec = make_codec(SchemaStore(), settings.schema_registry_url)
    versions: dict[tuple[str, str], int] = {}
    producer = Producer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "enable.idempotence": True,
            "linger.ms": 5,
            "queue.buffering.max.messages": 1_000_000,
        }
    )

    def send(i: int, now_ms: int) -> None:
        home, device = devices[i % len(devices)]
        v = versions[(home, device)] = versions.get((home, device), 0) + 1
        vals = {a: 20.0 + ((i + k) % 100) / 10 for k, a in enumerate(attrs)}
        record = {
            "event_id": str(uuid.uuid4()),
            "home_id": home,
            "ts": now_ms,
            "device_id": device,
            "version": v,
            "state": encode_state(
                changed=vals, reported=vals, desired={}, desired_changed={}, delta={}
            ),
            "source": "report",
            "client_token": None,
            "command_id": None,
            "accepted_at": now_ms,
        }
        value = codec.encode("StateChange", record, trusted=True)
        while True:
            try:
                producer.produce(
                    t.STATE_CHANGES,
                    key=home.encode(),
                    value=value,
                    partition=partition_for_key(home, settings.partitions),
                )
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)

    with db.connect(settings) as conn:
        found = conn.execute("SELECT value FROM history.meta WHERE key='engine'").fetchone()
        engine = str(found[0]) if found else "native"

    say(f"bench {run_id}: positioning group {group} at the end of the sink's topics")
    _position_group_at_end(settings, group)
    say(f"producing a backlog of {changes} StateChanges x {attributes} attributes")
    t0 = time.monotonic()
    now = int(time.time() * 1000)
    for i in range(changes):
        send(i, now - changes + i)
    producer.flush(120)
    say(f"  produced in {time.monotonic() - t0:.1f} s")

    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="homestream-bench-history-"))
    log_path = workdir / "sink.log"
    with log_path.open("ab") as out:
        proc = subprocess.Popen(
            sink_argv(workdir, port, name="bench", group=group),
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    expected = changes * attributes
    try:
        say(f"sink started (pid {proc.pid}); timing {expected} rows")
        first: tuple[float, float] | None = None
        last_t, last_rows = time.monotonic(), 0.0
        deadline = time.monotonic() + max(300.0, changes / 500)
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"the sink exited ({proc.returncode}); see {log_path}")
            rows = _metric(port, "rows_state_changes")
            now_m = time.monotonic()
            if rows > 0 and first is None:
                first = (now_m, rows)
            if rows >= expected:
                last_t, last_rows = now_m, rows
                break
            time.sleep(0.1)
        else:
            raise RuntimeError(
                f"the sink stored {_metric(port, 'rows_state_changes')} of "
                f"{expected} rows in time; see {log_path}"
            )
        assert first is not None
        span = max(last_t - first[0], 1e-3)
        # The first poll that saw rows saw one batch already: count from there.
        rows_per_s = (last_rows - first[1]) / span if last_rows > first[1] else last_rows / span
        say(f"  backlog stored: {rows_per_s:,.0f} rows/s")

        say(f"lag phase: {rate} changes/s for {seconds:.0f} s")
        sent = 0
        start = time.monotonic()
        lag_from = int(time.time() * 1000)
        while (elapsed := time.monotonic() - start) < seconds:
            due = int(elapsed * rate)
            while sent < due:
                send(changes + sent, int(time.time() * 1000))
                sent += 1
            time.sleep(0.002)
        producer.flush(60)
        achieved = sent / (time.monotonic() - start)
        total = expected + sent * attributes
        wait_until = time.monotonic() + 120
        while _metric(port, "rows_state_changes") < total and time.monotonic() < wait_until:
            time.sleep(0.2)
        with db.connect(settings) as conn:
            row = conn.execute(
                "SELECT count(*),"
                " percentile_cont(0.5) WITHIN GROUP (ORDER BY lag),"
                " percentile_cont(0.99) WITHIN GROUP (ORDER BY lag), max(lag)"
                " FROM (SELECT extract(epoch FROM ingested_at - accepted_at) * 1000 AS lag"
                "       FROM history.state_changes"
                "       WHERE home_id = ANY(%s) AND attribute = %s AND accepted_at >= %s) x",
                (home_ids, attrs[0], _ts(lag_from)),
            ).fetchone()
        lag_n, p50, p99, pmax = row if row else (0, 0, 0, 0)
        batches = int(_metric(port, "batches"))
    finally:
        terminate(proc)
        _cleanup(settings, group, home_ids, say)

    return BenchResult(
        engine=engine,
        changes=changes,
        attributes=attributes,
        rows=expected,
        backlog_seconds=round(span, 2),
        rows_per_s=round(rows_per_s),
        changes_per_s=round(rows_per_s / attributes),
        lag_rate_target=rate,
        lag_rate_achieved=round(achieved),
        lag_changes=int(lag_n or 0),
        lag_p50_ms=round(float(p50 or 0), 1),
        lag_p99_ms=round(float(p99 or 0), 1),
        lag_max_ms=round(float(pmax or 0), 1),
        batches=batches,
    )


def print_result(result: BenchResult, as_json: bool = False) -> None:
    if as_json:
        print(json.dumps(asdict(result), indent=2))
        return
    r = result
    print(f"history sink ({r.engine} engine), one process")
    print(
        f"  throughput: {r.rows:,} rows ({r.changes:,} changes x {r.attributes} attributes) "
        f"in {r.backlog_seconds:.2f} s = {r.rows_per_s:,.0f} rows/s ({r.changes_per_s:,.0f} "
        "changes/s)"
    )
    print(
        f"  lag at {r.lag_rate_achieved:,.0f} changes/s (target {r.lag_rate_target:,}): "
        f"p50 {r.lag_p50_ms:.0f} ms, p99 {r.lag_p99_ms:.0f} ms, max {r.lag_max_ms:.0f} ms "
        f"over {r.lag_changes:,} changes"
    )


def _ts(ms: int):
    import datetime as dt

    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


def _metric(port: int, outcome: str) -> float:
    from runtime.metrics import outcomes_at

    try:
        counts = outcomes_at("127.0.0.1", port, "homestream_sink_events_total")
    except OSError:
        return 0.0
    return counts.get(outcome, 0.0)


def _position_group_at_end(settings: Settings, group: str) -> None:
    """Commit the group's offsets at the end of every topic the sink reads, so it starts
    with the backlog produced next and not with the topics' whole history."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
        }
    )
    try:
        offsets = []
        for topic in TOPICS:
            meta = consumer.list_topics(topic, timeout=10).topics[topic]
            for p in meta.partitions:
                offsets.append(TopicPartition(topic, p, _high_watermark(consumer, topic, p)))
        consumer.commit(offsets=offsets, asynchronous=False)
    finally:
        consumer.close()


def _high_watermark(consumer: Any, topic: str, partition: int) -> int:
    from confluent_kafka import KafkaException, TopicPartition

    deadline = time.monotonic() + 30
    while True:
        try:
            return int(consumer.get_watermark_offsets(TopicPartition(topic, partition), 10)[1])
        except KafkaException:  # e.g. a fresh topic without a leader yet
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _cleanup(
    settings: Settings, group: str, home_ids: list[str], say: Callable[[str], None]
) -> None:
    from confluent_kafka.admin import AdminClient

    from stores import db

    try:
        with db.connect(settings) as conn:
            n = conn.execute(
                "DELETE FROM history.state_changes WHERE home_id = ANY(%s)", (home_ids,)
            ).rowcount
            native = conn.execute(
                "SELECT value = 'native' FROM history.meta WHERE key = 'engine'"
            ).fetchone()
            if native and native[0]:
                conn.execute("DELETE FROM history.rollup_1m WHERE home_id = ANY(%s)", (home_ids,))
                conn.execute("DELETE FROM history.rollup_1h WHERE home_id = ANY(%s)", (home_ids,))
            conn.commit()
        say(f"deleted the bench's {n} rows")
    except Exception as exc:  # best effort: say what is left behind
        print(f"could not delete the bench rows ({exc}); homes {home_ids[0]}...", file=sys.stderr)
    try:
        admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
        admin.delete_consumer_groups([group], request_timeout=10)[group].result(timeout=15)
    except Exception:  # the group may take a moment to empty: harmless leftover
        pass
