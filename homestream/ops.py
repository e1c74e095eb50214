"""Ops on the running stack: inspect and re-drive dead letters, re-process a topic range.

`homestream dlq list|redrive` and `homestream replay`. Re-driving puts a dead letter's
original back where it failed, so a fix (a device discovered late, a parser bug fixed)
gets it through this time: an MQTT original goes through the bridge's parser again, a
Kafka original is produced again to its source topic, and a record the stream worker
refused is produced again as the event it was.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from domain import timerange
from runtime.config import Settings
from topics import catalogue as t
from topics.codec import make_codec
from topics.partitioning import partition_for_key
from topics.schemas import SchemaStore


class OpsError(RuntimeError):
    """A problem an operator can fix; the message says how."""


@dataclass(frozen=True)
class DeadLetterRow:
    partition: int
    offset: int
    record: dict[str, Any]

    @property
    def when(self) -> str:
        return datetime.fromtimestamp(self.record["ts"] / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")

    @property
    def where(self) -> str:
        src = self.record.get("source") or {}
        if src.get("mqtt_topic"):
            return f"mqtt {src['mqtt_topic']}"
        if src.get("kafka_topic"):
            return (
                f"kafka {src['kafka_topic']}/{src.get('kafka_partition')}@{src.get('kafka_offset')}"
            )
        return str(src.get("transport") or "?")


def parse_since(text: str | None, now_ms: int | None = None) -> int:
    """Epoch ms from ``30m`` / ``2h`` / ``7d`` (ago), an ISO time, or epoch ms; None = 0."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    if not text:
        return 0
    now = timerange.EPOCH + timedelta(milliseconds=now_ms)
    try:
        return timerange.to_ms(timerange.parse_since(text, now, "--since"))
    except timerange.TimeError as exc:
        raise OpsError(f"cannot read time {text!r}: {exc.message}") from None


def dead_letter_reasons() -> list[str]:
    """The DeadLetterReason symbols producers write (the latest DeadLetter schema's enum)."""
    from topics.schemas import default_avro_dir

    latest = max((default_avro_dir() / "DeadLetter").glob("v*.avsc"), key=lambda p: int(p.stem[1:]))
    for fld in json.loads(latest.read_text())["fields"]:
        if fld["name"] == "reason":
            return [s for s in fld["type"]["symbols"] if s != "UNKNOWN"]
    return []


def check_reason(reason: str | None) -> str | None:
    """``reason`` in upper case, or OpsError listing the valid ones."""
    if reason is None:
        return None
    known = dead_letter_reasons()
    if reason.upper() not in known:
        raise OpsError(f"unknown reason {reason!r}: use one of {', '.join(known)}")
    return reason.upper()


def _consumer(settings: Settings) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"homestream-ops-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
        }
    )


def _partitions(consumer: Consumer, topic: str) -> list[int]:
    md = consumer.list_topics(topic, timeout=10)
    meta = md.topics.get(topic)
    if meta is None or meta.error is not None or not meta.partitions:
        raise OpsError(f"topic {topic} does not exist: run `homestream topics create`")
    return sorted(meta.partitions)


def _start_offsets(
    consumer: Consumer, topic: str, parts: list[int], since_ms: int
) -> list[TopicPartition]:
    if since_ms <= 0:
        return [TopicPartition(topic, p, 0) for p in parts]
    found = consumer.offsets_for_times([TopicPartition(topic, p, since_ms) for p in parts], 10)
    # -1: nothing at or after that time in this partition: start at its end.
    out = []
    for tp in found:
        if tp.offset < 0:
            _low, high = consumer.get_watermark_offsets(TopicPartition(topic, tp.partition), 10)
            tp = TopicPartition(topic, tp.partition, high)
        out.append(tp)
    return out


def dead_letters(
    settings: Settings,
    *,
    home: str | None = None,
    reason: str | None = None,
    since_ms: int = 0,
    limit: int | None = None,
) -> Iterator[DeadLetterRow]:
    """Dead letters, oldest first per partition, filtered by home and reason."""
    codec = make_codec(SchemaStore(), settings.schema_registry_url)
    consumer = _consumer(settings)
    try:
        parts = _partitions(consumer, t.DEADLETTER)
        if home is not None:
            parts = [partition_for_key(home, len(parts))]
        starts = _start_offsets(consumer, t.DEADLETTER, parts, since_ms)
        ends = {
            tp.partition: consumer.get_watermark_offsets(
                TopicPartition(t.DEADLETTER, tp.partition), 10
            )[1]
            for tp in starts
        }
        open_parts = {tp.partition for tp in starts if tp.offset < ends[tp.partition]}
        if not open_parts:
            return
        consumer.assign([tp for tp in starts if tp.partition in open_parts])
        n = 0
        idle_since = time.monotonic()
        while open_parts and time.monotonic() - idle_since < 10:
            for msg in consumer.consume(500, timeout=0.5):
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        open_parts.discard(msg.partition())
                    continue
                idle_since = time.monotonic()
                part, offset = msg.partition() or 0, msg.offset() or 0
                if offset + 1 >= ends[part]:
                    open_parts.discard(part)
                try:
                    record = codec.decode(msg.value() or b"").record
                except Exception:
                    continue  # not a DeadLetter record: nothing to show or re-drive
                if home is not None and record.get("home_id") != home:
                    continue
                if reason is not None and record.get("reason") != reason:
                    continue
                yield DeadLetterRow(part, offset, record)
                n += 1
                if limit is not None and n >= limit:
                    return
    finally:
        consumer.close()


@dataclass
class RedriveResult:
    redriven: int = 0
    still_bad: int = 0
    skipped: int = 0


# What the bridge's parser makes of an MQTT original: (Kafka topic, record name, home id,
# fields) of the event, a sentence saying why it is still refused, or None (nothing to do).
# The CLI passes the bridge's parser in, so this module needs nothing of hub/.
Reparsed = tuple[str, str, str, dict[str, Any]] | str | None
Reparse = Callable[[str, bytes, int], Reparsed]


def redrive(
    settings: Settings,
    rows: list[DeadLetterRow],
    *,
    reparse: Reparse,
    dry_run: bool = False,
    say: Callable[[str], None] = print,
) -> RedriveResult:
    """Put each dead letter's original back on its way (see the module doc)."""
    codec = make_codec(SchemaStore(), settings.schema_registry_url)
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "enable.idempotence": True})
    result = RedriveResult()
    now = int(time.time() * 1000)
    for row in rows:
        rec, src = row.record, row.record.get("source") or {}
        original: bytes = rec.get("original") or b""
        target: tuple[str, bytes, bytes] | None = None  # topic, key, value
        if src.get("mqtt_topic"):
            parsed = reparse(src["mqtt_topic"], original, now)
            if isinstance(parsed, tuple):
                kafka_topic, record_name, home_id, fields = parsed
                event = {"event_id": str(uuid.uuid4()), "home_id": home_id, **fields}
                target = (kafka_topic, home_id.encode(), codec.encode(record_name, event))
            elif isinstance(parsed, str):
                say(f"  {row.partition}@{row.offset}: still refused: {parsed}")
                result.still_bad += 1
                continue
        elif (folded := _folded_record(original)) is not None:  # refused by the stream fold
            name, event = folded
            try:
                spec = t.topics_for_record(name)[0]
                fresh = {**event, "event_id": str(uuid.uuid4())}
                target = (spec.name, str(event["home_id"]).encode(), codec.encode(name, fresh))
            except Exception as exc:  # not something we can rebuild
                say(f"  {row.partition}@{row.offset}: cannot re-drive: {exc}")
                result.skipped += 1
                continue
        elif src.get("kafka_topic"):  # undecodable as read: the same bytes again
            key = rec.get("original_key") or str(rec.get("home_id", "")).encode()
            target = (src["kafka_topic"], key, original)
        if target is None:
            result.skipped += 1
            continue
        topic, key, value = target
        if not dry_run:
            producer.produce(
                topic,
                key=key,
                value=value,
                partition=partition_for_key(key.decode(), settings.partitions),
            )
        result.redriven += 1
    producer.flush(30)
    return result


def _folded_record(original: bytes) -> tuple[str, dict[str, Any]] | None:
    """(record name, value) of a dead letter the stream fold wrote, else None."""
    try:
        doc = json.loads(original)
    except ValueError:
        return None
    if isinstance(doc, dict) and isinstance(doc.get("value"), dict) and "record" in doc:
        return str(doc["record"]), doc["value"]
    return None


def replay(
    settings: Settings,
    *,
    group: str,
    topic: str,
    since_ms: int,
    dry_run: bool = False,
) -> list[tuple[int, int | None, int]]:
    """Move consumer group ``group`` back to ``since_ms`` on ``topic``, so its consumers
    re-process the range when they next start. Returns (partition, old, new) offsets; old
    is None where the group had committed nothing.

    Kafka only lets a group's offsets move while it has no members, so its consumers must
    be stopped first (`homestream down` stops them all, or stop the one process). A dry run
    only reads, so it works on a running group too."""
    from topics.admin import group_members, known_groups

    if not dry_run and group_members(settings.kafka_bootstrap, group) > 0:
        raise OpsError(
            f"group {group} has running members: stop its consumers first, replay, then start "
            "them again (--dry-run previews while they run)"
        )
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
        }
    )
    try:
        parts = _partitions(consumer, topic)
        committed = consumer.committed([TopicPartition(topic, p) for p in parts], timeout=10)
        # Negative offsets are librdkafka's "nothing committed" (-1001).
        old = {tp.partition: tp.offset for tp in committed if tp.offset >= 0}
        if not old:
            groups = [g for g in known_groups(settings.kafka_bootstrap) if g != group]
            raise OpsError(
                f"group {group} has consumed nothing of {topic}: check the names "
                f"(groups: {', '.join(sorted(groups)) or 'none'})"
            )
        new = _start_offsets(consumer, topic, parts, since_ms)
        if not dry_run:
            consumer.commit(offsets=new, asynchronous=False)
    finally:
        consumer.close()
    return [(tp.partition, old.get(tp.partition), tp.offset) for tp in new]
