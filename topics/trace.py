"""A command's correlation id in Kafka record headers, so `homestream trace` can follow it.

Every record a command causes carries two headers: ``homestream-correlation-id`` (the
command id: the request, its dispatch, the hub's ack, its statuses, the state changes it
made) and ``homestream-hop`` (who produced it: ``gateway``, ``worker-1``, ``bridge-1``...).
The same id is the ``correlation_id`` field of the JSON log lines each hop writes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

CORRELATION = "homestream-correlation-id"
HOP = "homestream-hop"

# confluent-kafka's type of a record's headers
Headers = list[tuple[str, str | bytes | None]]


def headers(correlation: str | None, hop: str) -> Headers | None:
    """The headers of a record that ``correlation`` (a command id) caused; None without."""
    if not correlation:
        return None
    return [(CORRELATION, correlation.encode()), (HOP, hop.encode())]


def correlation_of(record: Mapping[str, Any]) -> str | None:
    """The correlation id a record carries in its fields: its command id."""
    cid = record.get("command_id")
    return str(cid) if cid else None


def header(raw: Sequence[tuple[str, Any]] | None, name: str) -> str | None:
    """One header's value from confluent-kafka's ``msg.headers()`` (None: absent)."""
    for key, value in raw or ():
        if key == name and isinstance(value, bytes):
            return value.decode(errors="replace")
    return None
