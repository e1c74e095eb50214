"""Spike (issue 12): the stream worker's fold on Quix Streams instead of our own loop.

Not part of the product: our loop stayed (docs/design/spike-quix.md, with the figures). This
folder is outside the package. To run it again, ``pip install quixstreams`` (3.28.1 was
measured), copy this file to ``streams/quix_engine.py`` and restore the wiring of commit
c44cb67 on branch ``quix-spike`` (``streams worker --engine quix``, and
``HOMESTREAM_TEST_STREAMS_ENGINE=quix`` for the streams tests' ``workers`` fixture).

The same inputs (``streams.processor.INPUT_TOPICS``), the same Avro codec, the same pure
fold (``HomeProcessor``) and the same outputs as ``streams.txloop``; only the runtime
differs. Quix owns the consume loop, the Kafka transaction (``processing_guarantee=
"exactly-once"``), the RocksDB state, its changelog topics and their recovery.

Where Quix's public API does not reach, the spike uses two of its internals, both read
from quixstreams 3.28 and named here so the judgement can weigh them:

- **Outputs.** ``StreamingDataFrame.to_topic`` cannot choose a record's partition, and
  ours must be ``topics.partitioning.partition_for_key`` (Java's murmur2 over the *home*
  part of a ``home/device`` key). So each output goes through the application's own
  transactional producer (``app._producer``), inside the checkpoint's transaction.
- **State scope.** Quix prefixes state with the message key, so one home's events see only
  that home's keys. A tick (key ``b""``) must see every home of its partition. The store
  uses one constant prefix per partition instead, through the transaction behind the
  ``State`` it is given (``state._transaction.as_state``). Quix state cannot be iterated
  inside a transaction, so the adapter keeps the partition's home ids in one state key.

Ticks: Quix has no wall-clock timers. A thread writes one ``StreamTick`` per second to
``homestream.streams.ticks`` for each partition the consumer is assigned, with the time
``streams.txloop.tick_time`` gives (a plain producer, as the txloop's ticker).
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from confluent_kafka import Producer

from runtime.config import Settings
from runtime.deadletter import input_dead_letter
from streams.fold.config import ProcessorConfig
from streams.fold.context import TOMBSTONE
from streams.fold.dispatch import INPUT_TOPICS
from streams.fold.dispatch import Fold as HomeProcessor
from streams.txloop import GROUP, tick_time
from topics import catalogue as t
from topics.codec import make_codec
from topics.errors import CodecError
from topics.partitioning import partition_for_key
from topics.schemas import SchemaStore

log = logging.getLogger("homestream.streams")

# Seconds between Quix checkpoints (one Kafka transaction each); 0 commits after every
# message. Quix's own default is 5 s, which would be the latency floor.
COMMIT_INTERVAL = float(os.environ.get("HOMESTREAM_QUIX_COMMIT_INTERVAL", "0.05"))
# Seconds Quix's consumer waits to fill a batch. With several input topics Quix aligns
# them by timestamp (buffered polling) and fetches with consume(10,000, timeout): its
# default of 1 s held each batch back up to that long.
POLL_TIMEOUT = float(os.environ.get("HOMESTREAM_QUIX_POLL_TIMEOUT", "1.0"))
PREFIX = b"homestream"  # every state key of a partition under one prefix (see above)
HOMES_KEY = "#/homes"  # the partition's home ids (a "/" in it: never a home key)


class QuixStore:
    """The processor's ``Store`` over Quix state (one partition's transaction)."""

    def __init__(self, state: Any) -> None:
        self.state = state
        self.get = state.get

    def put(self, key: str, value: dict[str, Any] | None) -> None:
        if value is None:
            self.state.delete(key)
        else:
            self.state.set(key, value)
        if "/" in key:  # a device, or the tick time
            return
        homes = self.homes()
        if value is None and key in homes:
            self.state.set(HOMES_KEY, [h for h in homes if h != key])
        elif value is not None and key not in homes:
            self.state.set(HOMES_KEY, [*homes, key])

    def homes(self) -> list[str]:
        return list(self.state.get(HOMES_KEY) or [])

    def due_homes(self, last_tick: int, now: int) -> Iterable[str]:
        # Every home of the partition; the fold's own scan_due decides the rest.
        return self.homes()


class QuixWorker:
    def __init__(
        self,
        settings: Settings,
        name: str,
        *,
        config: ProcessorConfig | None = None,
        data_dir: Path,
        metrics_port: int | None = None,
        commit_interval: float = COMMIT_INTERVAL,
    ) -> None:
        from quixstreams import Application

        self.settings = settings
        self.name = name
        self.metrics_port = metrics_port
        self.codec = make_codec(SchemaStore(), settings.schema_registry_url)
        self.processor = HomeProcessor(QuixStore({}), config)
        self.input_seen: dict[int, dict[str, tuple[int, int]]] = {}
        self.assigned_ms: dict[int, int] = {}
        self.stopping = threading.Event()
        self.app = Application(
            broker_address=settings.kafka_bootstrap,
            consumer_group=GROUP,
            processing_guarantee="exactly-once",
            commit_interval=commit_interval,
            consumer_poll_timeout=POLL_TIMEOUT,
            auto_offset_reset="earliest",
            state_dir=data_dir / "quix",
            loglevel=None,  # ours (homestream.logs) is set up already
            consumer_extra_config={
                # The txloop's settings, so the A/B compares the runtimes.
                "session.timeout.ms": 10_000,
                "heartbeat.interval.ms": 1_000,
                "fetch.wait.max.ms": 2,
                "fetch.min.bytes": 100_000,
            },
            producer_extra_config={
                # Quix's default transactional.id is a random uuid per process: a
                # restarted worker would not fence its dead predecessor. Ours, per name.
                "transactional.id": f"{GROUP}-{name}",
                "transaction.timeout.ms": 10_000,
                "linger.ms": 0,
                "retry.backoff.ms": settings.streams_retry_backoff_ms,
                "retry.backoff.max.ms": 1_000,
            },
        )
        self.producer = self.app._producer  # the checkpoint's transactional producer
        topics = [
            self.app.topic(n, key_deserializer="bytes", value_deserializer="bytes")
            for n in INPUT_TOPICS
        ]
        sdf = self.app.dataframe(topics[0])
        for topic in topics[1:]:
            sdf = sdf.concat(self.app.dataframe(topic))
        sdf.update(self._handle, stateful=True, metadata=True)

    # -- life cycle --------------------------------------------------------------------
    def run(self) -> None:
        if self.metrics_port:
            from streams.metrics import render, serve, snapshot

            serve(
                self.settings.host,
                self.metrics_port,
                lambda: render(
                    snapshot(self.processor.counters),
                    self.name,
                    {
                        "homestream_streams_ready": 1,
                        "homestream_streams_partitions": len(self.assigned_ms),
                    },
                ),
            )
        # the txloop's garbage-collection settings (docs/streams.md)
        if self.settings.streams_gc_tuning:
            gc.set_threshold(50_000, 50, 100)
        ticker = threading.Thread(target=self._ticker, name="ticks", daemon=True)
        ticker.start()
        log.info(
            "worker %s started (quix, commit_interval %ss, poll timeout %ss)",
            self.name,
            COMMIT_INTERVAL,
            POLL_TIMEOUT,
        )
        try:
            self.app.run()
        finally:
            self.stopping.set()
            ticker.join(5)
            log.info("worker %s stopped", self.name)

    # -- processing --------------------------------------------------------------------
    def _handle(self, value: bytes, key: Any, timestamp: int, _headers: Any, state: Any) -> None:
        from quixstreams import message_context

        mc = message_context()
        topic, p = mc.topic, mc.partition
        self.processor.store = QuixStore(state._transaction.as_state(prefix=PREFIX))
        try:
            decoded = self.codec.decode(value)
        except CodecError as exc:
            self._dead_letter(topic, p, mc.offset, key, value, exc)
            return
        try:
            emits = self.processor.handle(decoded.name, decoded.record)
        except Exception as exc:  # never crash the worker on one event
            log.exception("processing %s at %s[%s]@%s", decoded.name, topic, p, mc.offset)
            self._dead_letter(topic, p, mc.offset, key, value, exc)
            return
        for e in emits:
            self._produce(e.topic, e.key, e.record_name, e.record)
        if topic != t.STREAM_TICKS:
            self.input_seen.setdefault(p, {})[topic] = (_wall_ms(), timestamp)

    def _produce(self, topic: str, key: str, record_name: str, record: dict[str, Any]) -> None:
        try:
            value = (
                None
                if record_name == TOMBSTONE
                else self.codec.encode(record_name, record, trusted=True)
            )
        except CodecError as exc:
            log.error("cannot encode %s for %s: %s", record_name, topic, exc)
            self.processor.counters["encode_errors"] += 1
            return
        self.producer.produce(
            topic=topic,
            key=key.encode(),
            value=value,
            partition=partition_for_key(key, self.settings.partitions),
        )

    def _dead_letter(
        self, topic: str, p: int, offset: int, key: Any, value: Any, exc: Exception
    ) -> None:
        home, record = input_dead_letter(topic, p, offset, key, value, exc, _wall_ms())
        self._produce(t.DEADLETTER, home, "DeadLetter", record)

    # -- time --------------------------------------------------------------------------
    def _ticker(self) -> None:
        """One tick per second per assigned partition (plain producer), as the txloop."""
        producer = Producer(
            {
                "bootstrap.servers": self.settings.kafka_bootstrap,
                "enable.idempotence": True,
                "linger.ms": 0,
            }
        )
        next_freeze = time.monotonic()
        while not self.stopping.wait(1.0):
            if self.settings.streams_gc_tuning and time.monotonic() >= next_freeze:
                gc.freeze()  # as the txloop: long-lived state out of full collections
                next_freeze = time.monotonic() + 10.0
            try:
                owned = {
                    tp.partition
                    for tp in self.app._consumer.assignment()
                    if tp.topic == t.STREAM_TICKS
                }
            except Exception:  # the consumer is being closed or rebalanced
                continue
            wall = _wall_ms()
            for p in set(self.assigned_ms) - owned:
                self.assigned_ms.pop(p, None)
                self.input_seen.pop(p, None)
            for p in sorted(owned):
                self.assigned_ms.setdefault(p, wall)
                now = tick_time(wall, dict(self.input_seen.get(p, {})), self.assigned_ms[p])
                if now is None:
                    continue
                record = {"event_id": str(uuid.uuid4()), "home_id": "", "ts": now, "partition": p}
                producer.produce(
                    t.STREAM_TICKS,
                    key=b"",
                    value=self.codec.encode("StreamTick", record),
                    partition=p,
                )
            producer.poll(0)
        producer.flush(5)


def _wall_ms() -> int:
    return int(time.time() * 1000)
