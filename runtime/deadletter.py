"""The dead letter for a Kafka input a service could not decode or process."""

from __future__ import annotations

import uuid
from typing import Any

from topics.errors import CodecError
from topics.keys import home_of


def input_dead_letter(
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    exc: Exception,
    now: int,
) -> tuple[str, dict[str, Any]]:
    """(home id, DeadLetter record) for the input at topic/partition/offset."""
    try:
        home = home_of((key or b"").decode())
    except (UnicodeDecodeError, ValueError):
        home = ""
    if type(exc).__name__ == "UnknownSchemaError":
        reason = "UNKNOWN_SCHEMA"
    elif isinstance(exc, CodecError):
        reason = "DECODE_ERROR"
    else:
        reason = "PROCESSING_ERROR"
    position = f"{topic}/{partition}/{offset}"
    return home, {
        # Derived from the position: a replayed bad record yields the same id.
        "event_id": str(uuid.uuid5(uuid.NAMESPACE_URL, position)),
        "home_id": home,
        "ts": now,
        "reason": reason,
        "message": str(exc)[:2000],
        "original": bytes(value or b""),
        "original_key": bytes(key) if key else None,
        "source": {
            "transport": "kafka",
            "kafka_topic": topic,
            "kafka_partition": partition,
            "kafka_offset": offset,
        },
        "first_seen": now,
        "processor": "streams",
    }


def message_dead_letter(msg: Any, exc: Exception, now: int) -> tuple[str, dict[str, Any]]:
    """``input_dead_letter`` of a consumed confluent-kafka message."""
    return input_dead_letter(
        msg.topic(), msg.partition(), msg.offset(), msg.key(), msg.value(), exc, now
    )
