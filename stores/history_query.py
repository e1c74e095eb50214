"""Device history for the gateway: ``GET /v1/homes/{h}/devices/{d}/history?from=&to=&bucket=``.

Reads the analyst views of docs/history.md, so it works on both storage engines:
``bucket=raw`` -> history.state_history (one row per changed attribute), ``1m`` / ``1h`` ->
history.state_rollup_1m / _1h, ``1d`` -> the 1 h roll-up summed per UTC day. Roll-ups hold
numeric (and boolean, as 0/1) reported values only.

``build_query`` is pure (validation + SQL); ``history`` runs it on a psycopg connection.
Bad input raises ``HistoryQueryError`` whose ``param`` is the query parameter at fault
(``from``, ``to``, ``bucket``, ``attribute``, ``kind``, ``limit``), for a 400/422 reply.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from domain import timerange

BUCKETS = ("raw", "1m", "1h", "1d")
KINDS = ("reported", "desired")
DEFAULT_SPAN = dt.timedelta(hours=24)
MAX_LIMIT = 50_000
DEFAULT_LIMIT = 10_000


class HistoryQueryError(ValueError):
    """A query parameter the history cannot use; ``param`` names it."""

    def __init__(self, param: str, message: str):
        super().__init__(f"{param}: {message}")
        self.param = param
        self.message = message


@dataclass(frozen=True)
class HistoryQuery:
    sql: str
    params: tuple[Any, ...]
    bucket: str
    start: dt.datetime
    end: dt.datetime


def auto_bucket(span: dt.timedelta) -> str:
    """The bucket when none is asked for: raw up to 6 h, 1m up to 2 days, 1h up to 60 days."""
    if span <= dt.timedelta(hours=6):
        return "raw"
    if span <= dt.timedelta(days=2):
        return "1m"
    if span <= dt.timedelta(days=60):
        return "1h"
    return "1d"


def build_query(
    home_id: str,
    device_id: str,
    *,
    start: Any = None,
    end: Any = None,
    bucket: str | None = None,
    attribute: str | None = None,
    kind: str | None = "reported",
    limit: int = DEFAULT_LIMIT,
    now: dt.datetime | None = None,
) -> HistoryQuery:
    """Validate the parameters and build the SQL (pure)."""
    if not isinstance(home_id, str) or not home_id:
        raise HistoryQueryError("home_id", "required")
    if not isinstance(device_id, str) or not device_id:
        raise HistoryQueryError("device_id", "required")
    now = now or dt.datetime.now(dt.UTC)
    try:
        start_t, end_t = timerange.time_range(start, end, now=now, default_span=DEFAULT_SPAN)
    except timerange.TimeError as exc:
        raise HistoryQueryError(exc.param, exc.message) from None
    if bucket in (None, "", "auto"):
        bucket = auto_bucket(end_t - start_t)
    elif bucket not in BUCKETS:
        raise HistoryQueryError("bucket", f"{bucket!r} is not one of {', '.join(BUCKETS)}")
    if attribute is not None and (not isinstance(attribute, str) or not attribute):
        raise HistoryQueryError("attribute", "must be a non-empty attribute name")
    if attribute is not None and len(attribute) > 200:
        raise HistoryQueryError("attribute", "longer than 200 characters")
    if kind is not None and kind not in KINDS:
        raise HistoryQueryError("kind", f"{kind!r} is not one of {', '.join(KINDS)}")
    if kind == "desired" and bucket != "raw":
        raise HistoryQueryError("bucket", "roll-ups hold reported values only; use bucket=raw")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise HistoryQueryError("limit", f"must be a whole number from 1 to {MAX_LIMIT}")

    params: list[Any] = [home_id, device_id, start_t, end_t]
    attr_sql = ""
    if attribute is not None:
        attr_sql = " AND attribute = %s"
        params.append(attribute)
    if bucket == "raw":
        kind_sql = ""
        if kind is not None:
            kind_sql = " AND kind = %s"
            params.append(kind)
        sql = (
            "SELECT time, attribute, kind, value, version, source, command_id"
            " FROM history.state_history"
            " WHERE home_id = %s AND device_id = %s AND time >= %s AND time < %s"
            f"{attr_sql}{kind_sql}"
            " ORDER BY time, version, kind, attribute LIMIT %s"
        )
    elif bucket in ("1m", "1h"):
        unit = "minute" if bucket == "1m" else "hour"
        sql = (
            "SELECT bucket, attribute, samples, min_value, max_value, avg_value"
            f" FROM history.state_rollup_{bucket}"
            " WHERE home_id = %s AND device_id = %s"
            f" AND bucket >= date_trunc('{unit}', %s::timestamptz, 'UTC') AND bucket < %s"
            f"{attr_sql}"
            " ORDER BY bucket, attribute LIMIT %s"
        )
    else:  # 1d, from the 1 h roll-up
        sql = (
            "SELECT date_trunc('day', bucket, 'UTC') AS day, attribute, sum(samples),"
            " min(min_value), max(max_value), sum(sum_value) / nullif(sum(samples), 0)"
            " FROM history.state_rollup_1h"
            " WHERE home_id = %s AND device_id = %s"
            " AND bucket >= date_trunc('day', %s::timestamptz, 'UTC') AND bucket < %s"
            f"{attr_sql}"
            " GROUP BY 1, 2 ORDER BY 1, 2 LIMIT %s"
        )
    params.append(limit)
    return HistoryQuery(sql, tuple(params), bucket, start_t, end_t)


def shape(query: HistoryQuery, rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """Result rows as JSON-ready dicts; ``ts`` is epoch ms (UTC), as in the events."""
    if query.bucket == "raw":
        return [
            {
                "ts": timerange.to_ms(r[0]),
                "attribute": r[1],
                "kind": r[2],
                "value": r[3],
                "version": r[4],
                "source": r[5],
                "command_id": r[6],
            }
            for r in rows
        ]
    return [
        {
            "ts": timerange.to_ms(r[0]),
            "bucket": query.bucket,
            "attribute": r[1],
            "count": int(r[2]),
            "min": r[3],
            "max": r[4],
            "avg": r[5],
        }
        for r in rows
    ]


def history(
    conn: Any,
    home_id: str,
    device_id: str,
    *,
    start: Any = None,
    end: Any = None,
    bucket: str | None = None,
    attribute: str | None = None,
    kind: str | None = "reported",
    limit: int = DEFAULT_LIMIT,
) -> list[dict[str, Any]]:
    """A device's history between ``start`` (the ``from`` parameter; default ``end`` -
    24 h) and ``end`` (``to``; default now), oldest first. ``bucket``: raw, 1m, 1h, 1d or
    None (chosen from the span, see ``auto_bucket``). The caller checks the user may read
    the home; this only reads."""
    q = build_query(
        home_id,
        device_id,
        start=start,
        end=end,
        bucket=bucket,
        attribute=attribute,
        kind=kind,
        limit=limit,
    )
    with conn.cursor() as cur:
        cur.execute(q.sql, q.params)
        rows = cur.fetchall()
    return shape(q, rows)
