"""`homestream trace COMMAND_ID`: a command's hops, read back from the topics.

Each record a command caused carries its id in the ``homestream-correlation-id`` header
and who produced it in ``homestream-hop`` (``topics.trace``); the record's Kafka timestamp
is when that hop produced it. The timeline is those records, in time order.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from dataclasses import asdict, dataclass
from typing import Any

from confluent_kafka import KafkaError, TopicPartition

from runtime.cli import CliError, Commands, out, require_kafka
from runtime.config import Settings
from topics import catalogue as t
from topics import trace

# What a command causes, in the order it usually happens.
TOPICS = (
    t.COMMANDS_REQUESTED,
    t.COMMANDS_DISPATCHED,
    t.COMMANDS_ACKS,
    t.COMMANDS_STATUS,
    t.STATE_CHANGES,
)


@dataclass(frozen=True)
class Hop:
    ts: int  # ms: the record's Kafka timestamp (when that hop produced it)
    hop: str  # who produced it (homestream-hop header)
    topic: str
    record: str
    what: str  # the status, the desired state, the ack ...


def describe(name: str, record: dict[str, Any]) -> str:
    """One line about a command's record (pure)."""
    if name == "CommandRequested":
        return f"{record.get('command')} {record.get('device_id')} by {record.get('requested_by')}"
    if name == "CommandDispatched":
        return f"to the hub: desired {json.dumps(record.get('desired'), sort_keys=True)}"
    if name in ("HubAck", "CommandStatus"):
        reason = record.get("reason") or record.get("error")
        return str(record.get("status")) + (f" ({reason})" if reason else "")
    if name == "StateChange":
        from topics.state_change import state_of

        st = state_of(record)
        part = st.changed or st.desired_changed
        return f"{record.get('source')}: {json.dumps(part, sort_keys=True)}"
    return name


def timeline(
    settings: Settings, command_id: str, *, since_ms: int, home: str | None = None
) -> list[Hop]:
    """The records of ``command_id`` on TOPICS since ``since_ms``, oldest first."""
    from homestream.ops import _consumer, _partitions, _start_offsets
    from topics.codec import make_codec
    from topics.partitioning import partition_for_key
    from topics.schemas import SchemaStore

    codec = make_codec(SchemaStore(), settings.schema_registry_url)
    consumer = _consumer(settings)
    hops: list[Hop] = []
    try:
        starts, ends = [], {}
        for topic in TOPICS:
            parts = _partitions(consumer, topic)
            if home is not None:
                parts = [partition_for_key(home, len(parts))]
            for tp in _start_offsets(consumer, topic, parts, since_ms):
                high = consumer.get_watermark_offsets(TopicPartition(topic, tp.partition), 10)[1]
                if tp.offset < high:
                    starts.append(tp)
                    ends[(topic, tp.partition)] = high
        if not starts:
            return []
        consumer.assign(starts)
        open_parts = set(ends)
        idle_since = time.monotonic()
        while open_parts and time.monotonic() - idle_since < 10:
            for msg in consumer.consume(1000, timeout=0.5):
                key = (msg.topic(), msg.partition())
                if msg.error() is not None:
                    if msg.error().code() == KafkaError._PARTITION_EOF:
                        open_parts.discard(key)
                    continue
                idle_since = time.monotonic()
                if (msg.offset() or 0) + 1 >= ends[key]:
                    open_parts.discard(key)
                headers = msg.headers()
                if trace.header(headers, trace.CORRELATION) != command_id:
                    continue
                try:
                    decoded = codec.decode(msg.value() or b"")
                except Exception:
                    continue
                hops.append(
                    Hop(
                        ts=msg.timestamp()[1],
                        hop=trace.header(headers, trace.HOP) or "?",
                        topic=msg.topic() or "",
                        record=decoded.name,
                        what=describe(decoded.name, decoded.record),
                    )
                )
    finally:
        consumer.close()
    return sorted(hops, key=lambda h: (h.ts, TOPICS.index(h.topic)))


def render(command_id: str, hops: list[Hop]) -> list[str]:
    """The timeline as text lines: time, +ms since the request, hop, topic, what (pure)."""
    if not hops:
        return [f"no record of command {command_id} (check --since and --home)"]
    first = hops[0].ts
    lines = [f"command {command_id}: {len(hops)} hops in {hops[-1].ts - first} ms"]
    for h in hops:
        when = dt.datetime.fromtimestamp(h.ts / 1000, dt.UTC).strftime("%H:%M:%S.%f")[:-3]
        lines.append(
            f"{when}  +{h.ts - first:>6} ms  {h.hop:<10} {h.topic:<30} {h.record:<17} {h.what}"
        )
    return lines


def cmd_trace(args: argparse.Namespace, settings: Settings) -> int:
    from homestream.ops import parse_since

    since_ms = parse_since(args.since)
    require_kafka(settings)
    hops = timeline(settings, args.command_id, since_ms=since_ms, home=args.home)
    if args.json:
        out(json.dumps([asdict(h) for h in hops], indent=2))
    else:
        for line in render(args.command_id, hops):
            out(line)
    if not hops and not args.json:
        raise CliError(f"command {args.command_id} not found on the command topics")
    return 0


def register(commands: Commands) -> None:
    p = commands.add(
        "trace",
        cmd_trace,
        "a command's timeline from the topics: request (gateway), dispatch (worker), the "
        "hub's ack (bridge), each status and the state changes it made, with times",
    )
    p.add_argument(
        "command_id", help="the command's id (REST answers it; logs carry it as correlation_id)"
    )
    p.add_argument("--home", help="its home: read only that home's partition (faster)")
    p.add_argument("--since", default="24h", help="from: 30m, 2h, 7d, ISO time or epoch ms [24h]")
    p.add_argument("--json", action="store_true", help="print the hops as JSON")
