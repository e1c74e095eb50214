"""The Redis sink: device state and the gateway's side stores, from Kafka into Redis.

One process (``homestream sink redis``) in the consumer group ``homestream-redis-sink``
reads (read_committed):

- the compacted topics ``homestream.device.registry``, ``homestream.shadow.documents`` and
  ``homestream.device.availability``: each device's state (``stores.redis_state``);
- ``homestream.commands.status``: each command's latest status (``stores.command_log``);
- ``homestream.notifications`` and ``homestream.automations.runs``: the latest
  notifications per home and runs per automation (``stores.recent_events``).

Each record becomes one compare-and-set script call; a batch's calls go in one pipeline, and
the batch's offsets are committed only after Redis answered. A crash therefore repeats
writes, which the compare-and-set makes harmless (a status never goes back, a list entry is
named by its record's id); it never loses one.

- Undecodable or unusable records go to ``homestream.deadletter`` with the reason; the
  sink carries on.
- Redis down: the batch is retried with backoff while the consumer is paused (it stays in
  its group); then the sink catches up.
- ``--rebuild``: read the three compacted topics from the beginning into a new generation,
  then make it current in one step (``P:gen``) and delete the old one (docs/redis.md). The
  side stores are not generations: a rebuild leaves them alone.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException
from confluent_kafka import TopicPartition as TP

from runtime import kafka
from runtime.cli import command_line
from runtime.config import Settings
from runtime.deadletter import DeadLetters
from runtime.metrics import ServiceMetrics
from runtime.service import retry_while_running, stop_on_signals
from stores.command_log import RECORD_LUA, status_write
from stores.event_views import automation_run_view, command_view, notification_view
from stores.recent_events import KEEP_LUA, notification_write, run_write
from stores.redis_state import (
    AVAILABILITY_LUA,
    DEFAULT_PREFIX,
    REGISTER_LUA,
    REMOVE_LUA,
    SHADOW_LUA,
    SWAP_LUA,
    Keys,
    Op,
    op_for,
    tombstone_op,
)
from topics import catalogue as t
from topics.codec import make_codec
from topics.errors import CodecError
from topics.schemas import SchemaStore

log = logging.getLogger("homestream.sinks.redis")

GROUP = "homestream-redis-sink"
# Registry first: a rebuild reads the topics in this order, so every device's registration
# time is known before its shadow and availability records arrive.
STATE_TOPICS = (t.DEVICE_REGISTRY, t.DEVICE_AVAILABILITY, t.SHADOW_DOCUMENTS)
PROCESSOR = "redis-sink"
REDIS_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


@dataclass(frozen=True)
class SideOp:
    """One script call on a side store: ``keys`` below the prefix, no generation."""

    script: str  # a SIDE_STORES script name
    keys: tuple[str, ...]
    args: tuple[str | int, ...]


@dataclass(frozen=True)
class SideStore:
    """What the sink keeps of one topic's record: ``write(record)`` gives the script's keys
    and arguments, or raises ValueError for a record it cannot use."""

    record: str
    script: str
    lua: str
    write: Callable[[Mapping[str, Any]], tuple[tuple[str, ...], tuple[str | int, ...]]]


SIDE_STORES = {
    t.COMMANDS_STATUS: SideStore(
        "CommandStatus", "command_status", RECORD_LUA, lambda r: status_write(command_view(r))
    ),
    t.NOTIFICATIONS: SideStore(
        "Notification",
        "notification",
        KEEP_LUA,
        lambda r: notification_write(notification_view(r)),
    ),
    t.AUTOMATIONS_RUNS: SideStore(
        "AutomationFired",
        "automation_run",
        KEEP_LUA,
        lambda r: run_write(str(r.get("home_id") or ""), automation_run_view(r)),
    ),
}
TOPICS = (*STATE_TOPICS, *SIDE_STORES)


def side_op_for(topic: str, name: str, record: Mapping[str, Any]) -> SideOp | None:
    """The side store write of a decoded record of a SIDE_STORES topic; None for a record
    the store does not keep. Raises ValueError for a record it cannot use."""
    store = SIDE_STORES[topic]
    if name != store.record:
        return None
    keys, args = store.write(record)
    return SideOp(store.script, keys, args)


def redis_client(settings: Settings) -> redis.Redis:
    return redis.Redis.from_url(
        settings.redis_url(), socket_timeout=5, socket_connect_timeout=3, health_check_interval=15
    )


class Writer:
    """Runs Ops and SideOps through the compare-and-set scripts, one pipeline per batch."""

    def __init__(self, client: redis.Redis, prefix: str = DEFAULT_PREFIX) -> None:
        self.client = client
        self.keys = Keys(prefix)
        self.scripts = {
            "register": client.register_script(REGISTER_LUA),
            "remove": client.register_script(REMOVE_LUA),
            "shadow": client.register_script(SHADOW_LUA),
            "availability": client.register_script(AVAILABILITY_LUA),
            **{s.script: client.register_script(s.lua) for s in SIDE_STORES.values()},
        }
        self.swap_script = client.register_script(SWAP_LUA)

    def apply(self, ops: Sequence[Op | SideOp], target: str = "") -> list[Any]:
        """One result per op: generations (or side stores) changed (int), or the exception
        of that op. ``target`` "" writes the live generations (current and the one being
        rebuilt). Raises redis ConnectionError / TimeoutError when Redis cannot be reached."""
        if not ops:
            return []
        pipe = self.client.pipeline(transaction=False)
        for op in ops:
            if isinstance(op, SideOp):
                keys = [f"{self.keys.prefix}:{k}" for k in op.keys]
                self.scripts[op.script](keys=keys, args=list(op.args), client=pipe)
                continue
            args = [self.keys.prefix, target, op.home, op.device, *op.args]
            self.scripts[op.script](args=args, client=pipe)
        results = pipe.execute(raise_on_error=False)
        for r in results:
            if isinstance(r, REDIS_ERRORS):
                raise r
        return list(results)

    def generation(self) -> str | None:
        g = self.client.get(self.keys.gen)
        return None if g is None else (g.decode() if isinstance(g, bytes) else str(g))

    def delete_generation(self, gen: str) -> int:
        """Delete every data key of generation ``gen`` (UNLINK, in chunks)."""
        n = 0
        chunk: list[Any] = []
        for key in self.client.scan_iter(match=f"{self.keys.space(gen)}*", count=1000):
            chunk.append(key)
            if len(chunk) >= 1000:
                n += self.client.unlink(*chunk)
                chunk = []
        if chunk:
            n += self.client.unlink(*chunk)
        return n


@dataclass
class Planned:
    ops: list[Op | SideOp]
    msgs: list[Any]  # the message of each op
    offsets: dict[tuple[str, int], int]  # next offset to commit per topic partition


def plan(
    codec: Any,
    msgs: Iterable[Any],
    counters: Counter[str],
    bad: Callable[[Any, Exception], None],
) -> Planned:
    """Decode a batch into Ops; ``bad(msg, exc)`` gets each record that cannot be used."""
    out = Planned([], [], {})
    for msg in msgs:
        if kafka.consume_error(msg):
            continue
        topic, offset = msg.topic(), msg.offset()
        out.offsets[(topic, msg.partition())] = offset + 1
        counters["records"] += 1
        try:
            if msg.value() is None:
                counters["tombstones"] += 1
                op = tombstone_op(topic, offset, msg.key())
            else:
                decoded = codec.decode(msg.value())
                if topic in SIDE_STORES:
                    op = side_op_for(topic, decoded.name, decoded.record)
                else:
                    op = op_for(topic, offset, decoded.name, decoded.record)
        except (CodecError, ValueError, KeyError, TypeError) as exc:
            bad(msg, exc)
            continue
        if op is None:
            counters["ignored"] += 1
            continue
        out.ops.append(op)
        out.msgs.append(msg)
    return out


class RedisSink:
    def __init__(
        self,
        settings: Settings,
        name: str = "redis-1",
        *,
        client: redis.Redis | None = None,
        prefix: str = DEFAULT_PREFIX,
        group: str = GROUP,
        batch_size: int = 2000,
        metrics_port: int | None = None,
    ) -> None:
        self.settings = settings
        self.name = name
        self.group = group
        self.batch_size = batch_size
        self.metrics_port = metrics_port
        self.client = client or redis_client(settings)
        self.writer = Writer(self.client, prefix)
        self.codec = make_codec(SchemaStore(), settings.schema_registry_url)
        self.counters: Counter[str] = Counter()
        self.gauges: dict[str, int] = {"partitions": 0, "redis_up": 0, "generation": 0}
        self.metrics = ServiceMetrics(
            {"sink": name},
            "homestream_redis_sink_ready",
            "1 while the sink is in its consumer group with partitions assigned.",
            ready=lambda: self.gauges["partitions"] > 0,
        )
        self.metrics.outcomes(
            "homestream_redis_sink_records_total",
            "Records handled by the Redis sink, by outcome (applied_<op>, stale_<op> = "
            "refused by the compare-and-set, dead_letter_<reason>, ...).",
            self.counters,
        )
        for gauge, what in (
            ("partitions", "Partitions assigned to this sink."),
            ("redis_up", "1 when the last Redis call succeeded."),
            ("generation", "Current Redis key generation (P:gen)."),
        ):
            self.metrics.gauge(
                f"homestream_redis_sink_{gauge}", what, lambda g=gauge: self.gauges[g]
            )
        self._devices: tuple[float, tuple[int, int]] = (0.0, (0, 0))
        self.metrics.gauge(
            "homestream_devices_online",
            "Devices whose last availability is online (Redis, counted at most every 30 s).",
            lambda: self.device_counts()[0],
        )
        self.metrics.gauge(
            "homestream_devices_total",
            "Devices registered (Redis, counted at most every 30 s).",
            lambda: self.device_counts()[1],
        )
        self.running = True
        self.stopped = threading.Event()
        self.dead_letters = DeadLetters(settings, self.codec, PROCESSOR, self.counters, log)

    def device_counts(self) -> tuple[int, int]:
        """(online, total) devices of the current generation: a SCAN of their hashes, at
        most every 30 s (fine for a house or a street; at millions of devices the worker's
        state would keep the count, which is left for later: docs/operations.md)."""
        at, counts = self._devices
        if time.monotonic() - at < 30:
            return counts
        try:
            counts = count_devices(self.client, self.writer.keys)
        except redis.RedisError:
            return counts
        self._devices = (time.monotonic(), counts)
        return counts

    # -- lifecycle ----------------------------------------------------------------------
    def stop(self) -> None:
        self.running = False

    def run(
        self, *, rebuild: bool = False, rebuild_only: bool = False, signals: bool = True
    ) -> int:
        if signals:
            stop_on_signals(self.stop)
        server = None
        if self.metrics_port:
            server = self.metrics.serve(self.settings.host, self.metrics_port)
        try:
            if rebuild or rebuild_only:
                result = rebuild_state(
                    self.settings,
                    self.client,
                    self.writer.keys.prefix,
                    codec=self.codec,
                    counters=self.counters,
                    should_stop=lambda: not self.running,
                )
                if result is None:
                    return 1 if self.running else 0
                if rebuild_only:
                    return 0
            if self.running:
                self._consume_loop()
            return 0
        finally:
            if server is not None:
                server.shutdown()
            self.stopped.set()

    def _consume_loop(self) -> None:
        consumer = kafka.consumer(
            self.settings, self.group, {"client.id": f"homestream-{self.name}"}
        )

        def assigned(_c: Any, parts: list[TP]) -> None:
            self.gauges["partitions"] += len(parts)
            log.info("partitions assigned", extra={"sink": self.name, "count": len(parts)})

        def revoked(_c: Any, parts: list[TP]) -> None:
            self.gauges["partitions"] = max(0, self.gauges["partitions"] - len(parts))

        consumer.subscribe(list(TOPICS), on_assign=assigned, on_revoke=revoked, on_lost=revoked)
        log.info("redis sink started", extra={"sink": self.name, "group": self.group})
        self._check_redis()
        last_report = time.monotonic()
        try:
            while self.running:
                msgs = consumer.consume(self.batch_size, timeout=0.2)
                if msgs:
                    self._batch(consumer, msgs)
                if time.monotonic() - last_report > 30:
                    last_report = time.monotonic()
                    self._check_redis()
                    log.info("redis sink counters", extra={"sink": self.name, **self.counters})
        finally:
            with contextlib.suppress(Exception):
                consumer.close()
            self.dead_letters.close()
            log.info("redis sink stopped", extra={"sink": self.name, **self.counters})

    def _check_redis(self) -> None:
        try:
            self.client.ping()
            self.gauges["redis_up"] = 1
            self.gauges["generation"] = int(self.writer.generation() or 0)
        except REDIS_ERRORS:
            self.gauges["redis_up"] = 0

    # -- one batch ----------------------------------------------------------------------
    def _batch(self, consumer: Consumer, msgs: list[Any]) -> None:
        planned = plan(self.codec, msgs, self.counters, self.dead_letters.send)
        results = self._apply_retrying(consumer, planned)
        if results is None:  # stopping while Redis is down: nothing committed
            return
        for op, msg, r in zip(planned.ops, planned.msgs, results, strict=True):
            if isinstance(r, Exception):  # a script error for this record only
                log.error("redis refused %s for %s: %s", op.script, _what(op), r)
                self.dead_letters.send(msg, r)
            elif r:
                self.counters[f"applied_{op.script}"] += 1
            else:
                self.counters[f"stale_{op.script}"] += 1
        if not self.dead_letters.flush(lambda: self.running):
            return
        offsets = [TP(tp, p, o) for (tp, p), o in planned.offsets.items()]
        try:
            consumer.commit(offsets=offsets, asynchronous=False)
            self.counters["batches"] += 1
        except KafkaException as exc:  # e.g. a rebalance: the records come again, harmlessly
            self.counters["commit_errors"] += 1
            log.warning("offset commit failed: %s", exc)

    def _apply_retrying(self, consumer: Consumer, planned: Planned) -> list[Any] | None:
        paused: list[TP] = []

        def apply() -> list[Any]:
            results: list[Any] = self.writer.apply(planned.ops)
            self.gauges["redis_up"] = 1
            return results

        def failed(_exc: BaseException, _delay: float) -> None:
            nonlocal paused
            self.gauges["redis_up"] = 0
            self.counters["redis_errors"] += 1
            if not paused:  # the consumer waits with the batch, staying in the group
                paused = consumer.assignment()
                consumer.pause(paused)

        try:
            return retry_while_running(
                apply,
                running=lambda: self.running,
                retry_on=lambda exc: isinstance(exc, REDIS_ERRORS),
                log=log,
                what="Redis write",
                first=0.1,
                longest=5.0,
                on_retry=failed,
                sleep=lambda seconds: self._wait(consumer, seconds),
            )
        finally:
            if paused:
                with contextlib.suppress(KafkaException):
                    consumer.resume(consumer.assignment())
                log.info("redis back; catching up", extra={"sink": self.name})

    def _wait(self, consumer: Consumer, seconds: float) -> None:
        """Wait while staying in the group. A partition assigned meanwhile is not paused:
        whatever it delivers is put back, to be read again after the batch."""
        msg = consumer.poll(seconds)
        if msg is not None and msg.error() is None:
            topic, part, offset = msg.topic(), msg.partition(), msg.offset()
            if topic is not None and part is not None and offset is not None:
                with contextlib.suppress(KafkaException):
                    consumer.seek(TP(topic, part, offset))
            with contextlib.suppress(KafkaException):
                consumer.pause(consumer.assignment())


def _what(op: Op | SideOp) -> str:
    return ", ".join(op.keys) if isinstance(op, SideOp) else f"{op.home}/{op.device}"


# -- rebuild -------------------------------------------------------------------------------
@dataclass(frozen=True)
class RebuildResult:
    generation: str
    previous: str | None
    records: int
    devices: int
    seconds: float


def rebuild_state(
    settings: Settings,
    client: redis.Redis,
    prefix: str = DEFAULT_PREFIX,
    *,
    codec: Any = None,
    counters: Counter[str] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    batch_size: int = 5000,
) -> RebuildResult | None:
    """Rebuild the Redis state from the beginning of the compacted topics into a new
    generation, then swap it in atomically. Live sinks keep running meanwhile: they write
    to the generation being built as well (``P:building``), and the compare-and-set makes
    the overlap harmless. Returns None when stopped before the swap (nothing changed)."""
    started = time.monotonic()
    started_ms = int(time.time() * 1000)
    writer = Writer(client, prefix)
    keys = writer.keys
    codec = codec or make_codec(SchemaStore(), settings.schema_registry_url)
    counters = Counter() if counters is None else counters
    leftover = client.get(keys.building)
    if leftover is not None:
        leftover_gen = leftover.decode() if isinstance(leftover, bytes) else str(leftover)
        if leftover_gen != writer.generation():
            log.warning("discarding the unfinished rebuild of generation %s", leftover_gen)
            writer.delete_generation(leftover_gen)
    gen = str(client.incr(keys.genseq))
    client.set(keys.building, gen)
    log.info("rebuild started", extra={"generation": gen, "prefix": prefix})
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"homestream-redis-rebuild-{uuid.uuid4()}",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    records = 0

    def skip(msg: Any, exc: Exception) -> None:  # the live sink dead-letters them
        counters["rebuild_unusable"] += 1

    try:
        for topic in STATE_TOPICS:
            meta = consumer.list_topics(topic, timeout=10).topics[topic]
            if meta.error is not None:
                raise RuntimeError(f"topic {topic}: {meta.error}")
            parts = [TP(topic, p, OFFSET_BEGINNING) for p in sorted(meta.partitions)]
            left = set()
            for tp in parts:
                low, high = consumer.get_watermark_offsets(tp, timeout=10)
                if high > low:
                    left.add(tp.partition)
            consumer.assign(parts)
            while left:
                if should_stop():
                    client.delete(keys.building)
                    writer.delete_generation(gen)
                    return None
                msgs = consumer.consume(batch_size, timeout=0.5)
                for m in msgs:
                    err = m.error()
                    if err is not None and err.code() == KafkaError._PARTITION_EOF:
                        left.discard(m.partition())
                planned = plan(codec, msgs, counters, skip)
                records += sum(1 for m in msgs if m.error() is None)
                _apply_blocking(writer, planned.ops, gen, should_stop)
            consumer.unassign()
    finally:
        consumer.close()
    swept = _sweep(writer, gen, started_ms)
    previous = writer.swap_script(args=[prefix, gen])
    prev = previous.decode() if isinstance(previous, bytes) else (previous or None)
    if prev and prev != gen:
        writer.delete_generation(prev)
    devices = sum(1 for _ in client.scan_iter(match=f"{keys.space(gen)}dev:*", count=1000))
    result = RebuildResult(gen, prev, records, devices, time.monotonic() - started)
    log.info(
        "rebuild swapped in",
        extra={
            "generation": gen,
            "previous": prev,
            "records": records,
            "devices": devices,
            "swept": swept,
            "seconds": round(result.seconds, 3),
        },
    )
    return result


def _apply_blocking(
    writer: Writer, ops: Sequence[Op | SideOp], gen: str, should_stop: Callable[[], bool]
) -> None:
    delay = 0.1
    while True:
        try:
            writer.apply(ops, target=gen)
            return
        except REDIS_ERRORS as exc:
            if should_stop():
                raise
            log.warning("redis unavailable during rebuild, retrying: %s", exc)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def _sweep(writer: Writer, gen: str, before_ms: int) -> int:
    """Drop device hashes the registry does not know (shadow or availability of a device
    whose registry records compaction already removed), unless written during the
    rebuild by a live sink."""
    n = 0
    for key in writer.client.scan_iter(match=f"{writer.keys.space(gen)}dev:*", count=1000):
        reg, *times = writer.client.hmget(key, ["reg", "shadow_ts", "avail_ts", "pend_ts"])
        if reg is not None:
            continue
        newest = max(int(x or 0) for x in times)
        if newest < before_ms:
            n += writer.client.unlink(key)
    return n


# -- entry points ---------------------------------------------------------------------------
def run_redis_sink(
    settings: Settings,
    name: str = "redis-1",
    metrics_port: int | None = None,
    *,
    group: str = GROUP,
    prefix: str = DEFAULT_PREFIX,
    batch_size: int = 2000,
    rebuild: bool = False,
    rebuild_only: bool = False,
    loglevel: str = "info",
    data_dir: Path | None = None,
) -> int:
    from runtime.logs import setup

    setup(loglevel, settings.log_format)
    sink = RedisSink(
        settings,
        name,
        prefix=prefix,
        group=group,
        batch_size=batch_size,
        metrics_port=metrics_port,
    )
    code = sink.run(rebuild=rebuild, rebuild_only=rebuild_only)
    if data_dir is not None:  # the last counters, for post-mortems
        data_dir.mkdir(parents=True, exist_ok=True)
        (data_dir / "counters.json").write_text(json.dumps(dict(sink.counters), indent=1))
    return code


def redis_sink_argv(
    data_dir: Path, metrics_port: int | None = None, name: str = "redis-1"
) -> list[str]:
    """The command line of one Redis sink process (the launcher's and the tests')."""
    return command_line(
        "sink", "redis", name=name, data_dir=data_dir, metrics_port=metrics_port or None
    )


def count_devices(client: Any, keys: Keys) -> tuple[int, int]:
    """(online, total) device hashes of the current generation; a hash without an
    ``online`` field is online (``device_view``'s rule)."""
    gen = client.get(keys.gen)
    if gen is None:
        return (0, 0)
    gen = gen.decode() if isinstance(gen, bytes) else str(gen)
    online = total = 0
    names = list(client.scan_iter(match=f"{keys.space(gen)}dev:*", count=1000))
    for i in range(0, len(names), 500):
        pipe = client.pipeline(transaction=False)
        for name in names[i : i + 500]:
            pipe.hget(name, "online")
        for value in pipe.execute():
            total += 1
            online += value in (None, b"1", "1")
    return (online, total)
