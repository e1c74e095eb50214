"""The Faust app of the stream workers: Kafka in, the per-home fold, Kafka out.

All inputs are keyed and partitioned by home, so one worker owns every event and
all the state of a home (``topics.partitioning``); the state table is partitioned
the same way and lives in RocksDB (rocksdict). The logic itself is
``streams.fold`` (``Fold``); this module only moves bytes.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import faust

from runtime.config import Settings
from runtime.deadletter import input_dead_letter
from streams.fold.config import ProcessorConfig
from streams.fold.context import TOMBSTONE
from streams.fold.dispatch import Fold
from topics import catalogue as t
from topics.codec import Decoded, make_codec
from topics.errors import CodecError
from topics.partitioning import partition_for, partition_for_key
from topics.schemas import SchemaStore

log = logging.getLogger("homestream.streams")

APP_ID = "homestream-streams"


class TableStore:
    """``streams.fold.store.Store`` over the Faust table, seen from one partition."""

    def __init__(self, table: Any, partition: int, partitions: int):
        self.table = table
        self.partition = partition
        self.partitions = partitions

    def get(self, key: str) -> dict[str, Any] | None:
        return self.table.get(key)

    def put(self, key: str, value: dict[str, Any] | None) -> None:
        if value is None:
            self.table.pop(key, None)
        else:
            self.table[key] = value

    def homes(self) -> Iterator[str]:
        for key in list(self.table.keys()):
            if "/" not in key and partition_for(key, self.partitions) == self.partition:
                yield key

    def due_homes(self, last_tick: int, now: int) -> Iterator[str]:
        return self.homes()  # no DueIndex on this engine: a tick visits every home


def create_app(
    settings: Settings,
    *,
    data_dir: Path,
    guarantee: str = "exactly_once",
    config: ProcessorConfig | None = None,
    tick_interval: float = 1.0,
    commit_interval: float = 0.1,
) -> faust.App:
    app = faust.App(
        APP_ID,
        broker=f"kafka://{settings.kafka_bootstrap}",
        store="rocksdb://",
        datadir=str(data_dir),
        topic_partitions=settings.partitions,
        processing_guarantee=guarantee,
        broker_commit_interval=commit_interval,
        key_serializer="raw",
        value_serializer="raw",
        web_enabled=False,
        table_standby_replicas=0,
        # A killed worker's partitions move after 10 s of silence, not Faust's default 60 s.
        broker_session_timeout=10.0,
        broker_heartbeat_interval=1.0,
        consumer_auto_offset_reset="earliest",
    )
    codec = make_codec(SchemaStore(), settings.schema_registry_url)
    # Keys are "home" or "home/device" strings, values JSON dicts. Changelog records go
    # to the partition of the event being processed, which is the home's partition.
    state = app.Table(
        "homestream-state",
        default=None,
        partitions=settings.partitions,
        schema=faust.Schema(key_type=str, key_serializer="json", value_serializer="json"),
    )
    fold = Fold(_NullStore(), config)
    app.homestream_fold = fold  # type: ignore[attr-defined]
    inputs = app.topic(*fold.input_topics, key_type=bytes, value_type=bytes)
    outputs: dict[str, faust.TopicT] = {}

    def out_topic(name: str) -> faust.TopicT:
        if name not in outputs:
            outputs[name] = app.topic(name, key_type=bytes, value_type=bytes)
        return outputs[name]

    async def send(
        name: str, key: str, record_name: str, record: dict[str, Any], source: Any
    ) -> None:
        try:
            value = None if record_name == TOMBSTONE else codec.encode(record_name, record)
        except CodecError as exc:  # a bug of ours: say so loudly, keep the worker up
            log.error("cannot encode %s for %s: %s", record_name, name, exc)
            fold.counters["encode_errors"] += 1
            return
        partition = partition_for_key(key, settings.partitions)
        if app.in_transaction:
            # Faust picks a transaction by the *output* topic's co-partition group, and
            # output topics are in none (nobody here subscribes to them): such sends
            # would bypass the transaction. Send through the transaction of the input
            # partition instead: the one that commits its offset and the table's
            # changelog, so outputs, state and offsets commit or abort together.
            group = app.assignor.group_for_topic(source.topic)
            txn = f"{app.conf.id}-{group}-{source.partition}"
            await app.producer.send(
                name, key.encode(), value, partition, None, None, transactional_id=txn
            )
        else:
            await out_topic(name).send(key=key.encode(), value=value, partition=partition)

    @app.agent(inputs)
    async def process(stream: faust.StreamT) -> Any:
        async for event in stream.events():
            msg = event.message
            try:
                decoded: Decoded = codec.decode(event.value)
            except CodecError as exc:
                await _dead_letter_undecodable(send, msg, event.key, event.value, exc)
                continue
            fold.store = TableStore(state, msg.partition, settings.partitions)
            try:
                emits = fold.handle(decoded.name, decoded.record)
            except Exception as exc:  # never crash the worker on one event
                log.exception(
                    "processing %s at %s[%s]@%s", decoded.name, msg.topic, msg.partition, msg.offset
                )
                await _dead_letter_undecodable(send, msg, event.key, event.value, exc)
                continue
            for e in emits:
                await send(e.topic, e.key, e.record_name, e.record, msg)

    # Ticks go through a plain (non-transactional) producer: sent from a timer, outside
    # any event, a transactional send would never be committed and read_committed
    # consumers (the workers themselves) would never see it.
    from confluent_kafka import Producer

    tick_producer = Producer(
        {"bootstrap.servers": settings.kafka_bootstrap, "enable.idempotence": True, "linger.ms": 0}
    )

    @app.timer(tick_interval)
    async def ticker() -> None:
        """Time passes, in the log: one tick per partition this worker owns."""
        if not fold.timed:  # no processor has timers
            return
        now = int(time.time() * 1000)
        for tp in app.assignor.assigned_actives():
            if tp.topic != t.STREAM_TICKS:
                continue
            record = {
                "event_id": str(uuid.uuid4()),
                "home_id": "",
                "ts": now,
                "partition": tp.partition,
            }
            tick_producer.produce(
                t.STREAM_TICKS,
                key=b"",
                value=codec.encode("StreamTick", record),
                partition=tp.partition,
            )
        tick_producer.poll(0)

    return app


async def _dead_letter_undecodable(send, msg, key, value, exc: Exception) -> None:
    home, record = input_dead_letter(
        msg.topic, msg.partition, msg.offset, key, value, exc, int(time.time() * 1000)
    )
    await send(t.DEADLETTER, home, "DeadLetter", record, msg)


class _NullStore:
    def get(self, key: str) -> None:
        return None

    def put(self, key: str, value: Any) -> None:
        raise RuntimeError("no partition bound")

    def homes(self) -> Iterator[str]:
        return iter(())

    def due_homes(self, last_tick: int, now: int) -> Iterator[str]:
        return iter(())
