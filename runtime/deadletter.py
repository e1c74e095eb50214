"""The dead letter for a Kafka input a service could not decode or process."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable
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


class DeadLetters:
    """A consuming service's dead letters: each input record it cannot use goes to
    ``homestream.deadletter`` with why, and the service commits its offsets only once
    ``flush`` says they are delivered (so a crash never loses a record it skipped)."""

    def __init__(
        self, settings: Any, codec: Any, processor: str, counters: Counter[str], log: Any
    ) -> None:
        self.settings, self.codec, self.processor = settings, codec, processor
        self.counters, self.log = counters, log
        self.producer: Any = None

    def send(self, msg: Any, exc: Exception) -> None:
        from runtime import kafka  # the client library only where a service runs
        from topics import catalogue as t

        home, record = message_dead_letter(msg, exc, int(time.time() * 1000))
        record["processor"] = self.processor
        self.counters[f"dead_letter_{record['reason'].lower()}"] += 1
        self.log.warning(
            "dead letter",
            extra={
                "reason": record["reason"],
                "topic": msg.topic(),
                "partition": msg.partition(),
                "offset": msg.offset(),
                "error": str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__,
            },
        )
        if self.producer is None:
            self.producer = kafka.producer(self.settings, {"linger.ms": 5})
        value = self.codec.encode("DeadLetter", record, topic=t.DEADLETTER)
        kafka.produce_to_home(self.producer, self.settings, t.DEADLETTER, home, value)

    def flush(self, running: Callable[[], bool]) -> bool:
        """True once every dead letter is delivered; False if the service stops first."""
        while self.producer is not None and len(self.producer):
            if self.producer.flush(5) == 0:
                break
            self.log.warning("dead letters not yet delivered; offsets wait")
            if not running():
                return False
        return True

    def close(self) -> None:
        if self.producer is not None:
            self.producer.flush(10)
