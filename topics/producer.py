"""Produce Avro events by record name, each to its home's partition."""

from __future__ import annotations

import time
import uuid
from typing import Any

from confluent_kafka import Producer

from topics import trace
from topics.codec import SingleObjectCodec
from topics.partitioning import partition_for_key
from topics.schemas import SchemaStore


class EventProducer:
    """confluent-kafka producer that encodes with the codec and partitions by home.

    confluent-kafka's default partitioner is not Kafka's murmur2, so the partition is
    always given explicitly (``topics.partitioning``).
    """

    def __init__(
        self, bootstrap: str, partitions: int, codec: Any = None, hop: str = "app", **config: Any
    ) -> None:
        self.partitions = partitions
        self.hop = hop  # the homestream-hop header of the records it sends (topics.trace)
        self.codec = codec or SingleObjectCodec(SchemaStore())
        self.producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "enable.idempotence": True,
                "linger.ms": 5,
                **config,
            }
        )

    def send(
        self, topic: str, record_name: str, home: str, /, key: str | None = None, **fields: Any
    ) -> dict[str, Any]:
        """Encode and produce one event of ``home``; event_id and ts are filled in. ``key``
        (``home/...``) for a compacted topic's per-document records; the home by default."""
        record = {
            "event_id": str(uuid.uuid4()),
            "home_id": home,
            "ts": int(time.time() * 1000),
            **fields,
        }
        value = self.codec.encode(record_name, record)
        while True:
            try:
                self.producer.produce(
                    topic,
                    key=(key or home).encode(),
                    value=value,
                    partition=partition_for_key(key or home, self.partitions),
                    headers=trace.headers(trace.correlation_of(record), self.hop),
                )
                break
            except BufferError:  # local queue full: let deliveries drain
                self.producer.poll(0.05)
        self.producer.poll(0)
        return record

    def flush(self, timeout: float = 30.0) -> None:
        left = self.producer.flush(timeout)
        if left:
            raise RuntimeError(f"{left} events still unsent after {timeout:.0f} s")
