"""Removing a home everywhere: `homestream homes remove` and ``DELETE /v1/homes/{h}``.

In order: the stream workers are told (a ``DeviceRemoved`` per device, a deleted
``HomeConfig`` per stored document, so their state forgets the home), the rows in
PostgreSQL go (members, hub logins, documents, overrides, areas: ``ON DELETE CASCADE``),
then every key of the home on every compacted topic gets a tombstone, so compaction drops
it and the Redis sink (which reads the registry) drops its devices. Only the home's own
partition is read and only keys whose home part is this home are written: nothing of
another home is touched. The time-series history stays for analysts (docs/operations.md).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from confluent_kafka import Consumer, KafkaError, TopicPartition

from stores import accounts
from stores.home_documents import config_fields, config_key, stored_documents
from topics import catalogue as t
from topics.keys import parse_key
from topics.partitioning import partition_for_key
from topics.producer import EventProducer


@dataclass
class Removal:
    home_id: str
    devices: list[str] = field(default_factory=list)
    documents: int = 0
    tombstones: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "home_id": self.home_id,
            "removed": True,
            "devices": len(self.devices),
            "documents": self.documents,
            "tombstones": dict(self.tombstones),
        }


def home_keys(bootstrap: str, topic: str, home: str, partitions: int) -> set[str]:
    """Every key of ``home`` on ``topic`` (read from its partition start to its end)."""
    part = partition_for_key(home, partitions)
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"homestream-remove-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": "read_committed",
        }
    )
    keys: set[str] = set()
    try:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, part), timeout=10)
        if high <= low:
            return keys
        consumer.assign([TopicPartition(topic, part, low)])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            err = msg.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    break
                continue
            raw = msg.key() or b""
            try:
                key_home, _device = parse_key(raw)
            except (ValueError, UnicodeDecodeError):
                continue
            if key_home == home:
                keys.add(raw.decode())
            if (msg.offset() or 0) + 1 >= high:
                break
    finally:
        consumer.close()
    return keys


def remove_home(
    conn: psycopg.Connection,
    producer: EventProducer,
    bootstrap: str,
    home: str,
    *,
    by: str,
    say: Callable[[str], None] = lambda _line: None,
) -> Removal:
    """Remove ``home`` (see the module doc); AccountError when it does not exist."""
    accounts.home_must_exist(conn, home)
    removal = Removal(home)
    compacted = [spec.name for spec in t.catalogue() if spec.compacted]
    say(f"reading the keys of {home} on {len(compacted)} compacted topics")
    keys = {topic: home_keys(bootstrap, topic, home, producer.partitions) for topic in compacted}
    removal.devices = sorted(
        {d for k in keys.get(t.DEVICE_REGISTRY, ()) if (d := parse_key(k)[1]) is not None}
    )
    for device in removal.devices:
        producer.send(
            t.DEVICE_DISCOVERY,
            "DeviceRemoved",
            home,
            device_id=device,
            source="api",
            removed_by=by,
        )
    for _home, kind, doc_id, _doc, _by in list(stored_documents(conn, home)):
        producer.send(
            t.HOME_CONFIG,
            "HomeConfig",
            home,
            key=config_key(home, kind, doc_id),
            **config_fields(kind, doc_id, None, by),
        )
        keys.setdefault(t.HOME_CONFIG, set()).add(config_key(home, kind, doc_id))
        removal.documents += 1
    say(f"told the workers: {len(removal.devices)} devices, {removal.documents} documents")
    accounts.delete_home(conn, home)
    raw = producer.producer
    for topic, topic_keys in keys.items():
        for key in sorted(topic_keys):
            raw.produce(topic, key=key.encode(), value=None,
                        partition=partition_for_key(key, producer.partitions))  # fmt: skip
        removal.tombstones[topic] = len(topic_keys)
    producer.flush(30)
    say(f"tombstoned {sum(removal.tombstones.values())} keys")
    return removal
