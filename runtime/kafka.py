"""Kafka clients for every service, with the settings they share in one place.

Each service states only what is its own (its group, its fetch tuning, a transactional
id); what every consumer and producer of homestream needs is here:

- consumers read committed data only (``read_committed``: never an aborted transaction's
  records), commit offsets themselves (after their work is durable), start from the
  earliest offset when they have none, and leave the group 10 s after a crash, not 45 s;
- producers are idempotent with ``acks=all``: a retry never duplicates, a broker loss
  never drops an acknowledged record;
- every record goes to its home's partition (``topics.partitioning``: Kafka's murmur2 of
  the home id), never to confluent-kafka's own default partitioner.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from confluent_kafka import Consumer, KafkaError, Message, Producer

from runtime.config import Settings
from topics.partitioning import partition_for_key

log = logging.getLogger("homestream.kafka")

CONSUMER_DEFAULTS: Mapping[str, Any] = {
    "isolation.level": "read_committed",
    "enable.auto.commit": False,
    "auto.offset.reset": "earliest",
    "session.timeout.ms": 10_000,
    "heartbeat.interval.ms": 1_000,
}
PRODUCER_DEFAULTS: Mapping[str, Any] = {
    "enable.idempotence": True,
    "acks": "all",
}


def consumer_config(
    settings: Settings, group: str, overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "bootstrap.servers": settings.kafka_bootstrap,
        "group.id": group,
        **CONSUMER_DEFAULTS,
        **(overrides or {}),
    }


def producer_config(
    settings: Settings, overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    return {"bootstrap.servers": settings.kafka_bootstrap, **PRODUCER_DEFAULTS, **(overrides or {})}


def consumer(
    settings: Settings, group: str, overrides: Mapping[str, Any] | None = None
) -> Consumer:
    """A consumer of ``group`` with the shared settings, plus the service's ``overrides``;
    its lag goes to the process's /metrics (``homestream_consumer_lag``)."""
    from runtime.metrics import LAG_INTERVAL_MS, record_lag

    stats = {
        "statistics.interval.ms": LAG_INTERVAL_MS,
        "stats_cb": lambda text: record_lag(group, text),
    }
    return Consumer({**stats, **consumer_config(settings, group, overrides)})


def producer(settings: Settings, overrides: Mapping[str, Any] | None = None) -> Producer:
    """An idempotent producer with the shared settings, plus the service's ``overrides``."""
    return Producer(producer_config(settings, overrides))


def produce_to_home(
    client: Producer,
    settings: Settings,
    topic: str,
    home: str,
    value: bytes | None,
    *,
    key: bytes | str | None = None,
    **kwargs: Any,
) -> None:
    """Produce ``value`` to ``home``'s partition of ``topic``. ``home`` may also be a
    ``home/device`` key: the partition is its home part's. The record key defaults to it."""
    if key is None:
        key = home
    client.produce(
        topic,
        key=key.encode() if isinstance(key, str) else key,
        value=value,
        partition=partition_for_key(home, settings.partitions),
        **kwargs,
    )


def consume_error(msg: Message) -> bool:
    """Whether a consumed message is an error rather than a record (every service skips
    it). Logged, except the end-of-partition notices a consumer asks for to know it is
    caught up."""
    err = msg.error()
    if err is None:
        return False
    if err.code() != KafkaError._PARTITION_EOF:
        log.warning("consume error", extra={"error": str(err), "topic": msg.topic()})
    return True
