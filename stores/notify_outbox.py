"""The notification delivery outbox in PostgreSQL (migration 0005, docs/notifications.md).

``record`` writes one ``pending`` row per notification and channel; the notify service
calls it before committing its Kafka offset, and the primary key (event_id, channel_id)
makes a replay's insert a no-op. Senders then:

1. ``claim`` due rows: raise ``attempts`` and push ``next_at`` a lease ahead, in one
   statement that skips rows another sender holds (``FOR UPDATE SKIP LOCKED``), so several
   notify processes share the work and a crashed sender's rows are due again after the
   lease;
2. send, outside any transaction (``release`` gives back claims a stopping sender never
   sent);
3. ``settle`` each: delivered, failed, or pending again with ``next_at`` at the backoff's
   next try. A settlement names the attempt it settles, so a sender whose lease ran out
   cannot overwrite a newer claim.

``statuses`` is what the gateway shows a member of their own deliveries. Times are the
database's (``now()``), so several senders agree on what is due.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import psycopg

from domain.notify import Delivery

Status = Literal["pending", "delivered", "failed"]


@dataclass(frozen=True)
class Claimed:
    """A delivery this sender holds until its lease ends; ``url`` None: the member
    removed the channel meanwhile."""

    event_id: str
    channel_id: str
    home_id: str
    username: str
    channel: str
    kind: str
    severity: str | None
    title: str
    body: str
    event_ts_ms: int
    attempts: int  # including this one
    url: str | None


@dataclass(frozen=True)
class Settlement:
    """What became of a claimed attempt: ``status`` pending retries after ``delay_s``."""

    event_id: str
    channel_id: str
    attempts: int
    status: Status
    delay_s: float = 0.0
    error: str | None = None


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(str(text))
        return True
    except ValueError:
        return False


def _ms(value: Any) -> int | None:
    return int(value.timestamp() * 1000) if isinstance(value, dt.datetime) else None


def record(conn: psycopg.Connection[Any], deliveries: Sequence[Delivery]) -> int:
    """Insert the deliveries as pending; returns how many were new (a replay's are not)."""
    if not deliveries:
        return 0
    cols = list(zip(*((d.event_id, d.channel_id, d.home_id, d.username, d.channel, d.kind,
                       d.severity, d.title, d.body, d.event_ts_ms) for d in deliveries),
                    strict=True))  # fmt: skip
    cur = conn.execute(
        "INSERT INTO notification_deliveries (event_id, channel_id, home_id, username, channel,"
        " kind, severity, title, body, event_ts)"
        " SELECT e, c, h, u, ch, k, s, t, b, to_timestamp(ts / 1000.0)"
        " FROM unnest(%s::uuid[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[],"
        "   %s::text[], %s::text[], %s::text[], %s::bigint[]) AS x(e, c, h, u, ch, k, s, t, b, ts)"
        " ON CONFLICT (event_id, channel_id) DO NOTHING",
        [list(col) for col in cols],
    )
    return max(cur.rowcount, 0)


_CLAIM = """
WITH due AS (
    SELECT event_id, channel_id FROM notification_deliveries
    WHERE status = 'pending' AND next_at <= now()
    ORDER BY next_at LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE notification_deliveries d
SET attempts = d.attempts + 1, next_at = now() + make_interval(secs => %(lease)s)
FROM due
WHERE d.event_id = due.event_id AND d.channel_id = due.channel_id
RETURNING d.event_id::text, d.channel_id, d.home_id, d.username, d.channel, d.kind,
    d.severity, d.title, d.body, d.event_ts, d.attempts,
    (SELECT c.url FROM notification_channels c
     WHERE c.home_id = d.home_id AND c.username = d.username AND c.channel_id = d.channel_id)
"""


def claim(conn: psycopg.Connection[Any], limit: int, lease_s: float) -> list[Claimed]:
    """Up to ``limit`` due deliveries, oldest due first, held for ``lease_s``."""
    if limit <= 0:
        return []
    rows = conn.execute(_CLAIM, {"limit": limit, "lease": float(lease_s)}).fetchall()
    return [
        Claimed(
            event_id=r[0],
            channel_id=r[1],
            home_id=r[2],
            username=r[3],
            channel=r[4],
            kind=r[5],
            severity=r[6],
            title=r[7],
            body=r[8],
            event_ts_ms=_ms(r[9]) or 0,
            attempts=r[10],
            url=r[11],
        )
        for r in sorted(rows, key=lambda r: r[9])
    ]


def settle(conn: psycopg.Connection[Any], settlements: Sequence[Settlement]) -> int:
    """Apply settlements in one statement; returns how many still held their claim (the
    others were claimed again after their lease ran out, and are left to that claim)."""
    if not settlements:
        return 0
    cur = conn.execute(
        "UPDATE notification_deliveries d SET"
        " status = s.status,"
        " next_at = CASE WHEN s.status = 'pending'"
        "   THEN now() + make_interval(secs => s.delay) ELSE d.next_at END,"
        " last_error = coalesce(s.error, d.last_error),"
        " finished_at = CASE WHEN s.status = 'pending' THEN NULL ELSE now() END"
        " FROM unnest(%s::uuid[], %s::text[], %s::int[], %s::text[], %s::float8[], %s::text[])"
        "   AS s(event_id, channel_id, attempts, status, delay, error)"
        " WHERE d.event_id = s.event_id AND d.channel_id = s.channel_id"
        "   AND d.attempts = s.attempts AND d.status = 'pending'",
        [
            [s.event_id for s in settlements],
            [s.channel_id for s in settlements],
            [s.attempts for s in settlements],
            [s.status for s in settlements],
            [float(s.delay_s) for s in settlements],
            [s.error for s in settlements],
        ],
    )
    return max(cur.rowcount, 0)


def release(conn: psycopg.Connection[Any], claims: Sequence[Claimed]) -> int:
    """Give back claims that were never sent (a sender stopping with deliveries queued):
    due at once, the attempt not counted. Returns how many still held their claim."""
    if not claims:
        return 0
    cur = conn.execute(
        "UPDATE notification_deliveries d SET attempts = d.attempts - 1, next_at = now()"
        " FROM unnest(%s::uuid[], %s::text[], %s::int[]) AS s(event_id, channel_id, attempts)"
        " WHERE d.event_id = s.event_id AND d.channel_id = s.channel_id"
        "   AND d.attempts = s.attempts AND d.status = 'pending'",
        [
            [c.event_id for c in claims],
            [c.channel_id for c in claims],
            [c.attempts for c in claims],
        ],
    )
    return max(cur.rowcount, 0)


def next_due_s(conn: psycopg.Connection[Any]) -> float | None:
    """Seconds until the earliest pending delivery is due (<= 0: now); None: none pending."""
    row = conn.execute(
        "SELECT extract(epoch FROM min(next_at) - now())::float8"
        " FROM notification_deliveries WHERE status = 'pending'"
    ).fetchone()
    return None if row is None or row[0] is None else float(row[0])


def pending_count(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute(
        "SELECT count(*) FROM notification_deliveries WHERE status = 'pending'"
    ).fetchone()
    return int(row[0]) if row else 0


def purge(conn: psycopg.Connection[Any], keep_days: int) -> int:
    """Delete deliveries finished more than ``keep_days`` ago; returns how many."""
    cur = conn.execute(
        "DELETE FROM notification_deliveries WHERE status <> 'pending'"
        " AND finished_at < now() - make_interval(days => %s)",
        (keep_days,),
    )
    return max(cur.rowcount, 0)


def statuses(
    conn: psycopg.Connection[Any], home_id: str, username: str, event_ids: Sequence[str]
) -> dict[str, list[dict[str, Any]]]:
    """The member's deliveries of these notifications, by event id: what
    ``GET .../notifications`` shows them (the channel masked)."""
    out: dict[str, list[dict[str, Any]]] = {}
    event_ids = [e for e in event_ids if _is_uuid(e)]  # only a UUID can be a delivery's
    if not event_ids:
        return out
    rows = conn.execute(
        "SELECT event_id::text, channel, status, attempts, last_error, next_at, finished_at"
        " FROM notification_deliveries"
        " WHERE home_id = %s AND username = %s AND event_id = ANY(%s::uuid[])"
        " ORDER BY event_id, created_at, channel_id",
        (home_id, username, list(event_ids)),
    ).fetchall()
    for event_id, channel, status, attempts, error, next_at, finished_at in rows:
        out.setdefault(event_id, []).append(
            {
                "channel": channel,
                "status": status,
                "attempts": attempts,
                "last_error": error,
                "next_at": _ms(next_at) if status == "pending" else None,
                "finished_at": _ms(finished_at),
            }
        )
    return out
