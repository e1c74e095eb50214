"""The logbook: what happened in a home, newest first (``GET /v1/homes/{h}/logbook``).

Built from the history schema (docs/history.md): reported state changes, device events,
availability, commands with who sent them and how they ended (``command_requests`` +
``command_status``), automation runs and notifications. ``entry_message`` turns a row
into the sentence a person reads; it is pure, like ``build_query``.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from domain import timerange
from stores.history_query import HistoryQueryError

DEFAULT_SPAN = dt.timedelta(hours=24)
MAX_LIMIT = 5_000
DEFAULT_LIMIT = 500
KINDS = ("state", "event", "availability", "command", "automation", "notification")

_SQL = """
SELECT time, kind, device_id, detail FROM (
    SELECT time, 'state' AS kind, device_id,
           jsonb_build_object('attribute', attribute, 'value', value, 'source', source,
                              'command_id', command_id) AS detail
    FROM history.state_changes
    WHERE home_id = %(home)s AND kind = 'reported' AND time >= %(start)s AND time < %(end)s
      AND (%(devices)s::text[] IS NULL OR device_id = ANY(%(devices)s))
    UNION ALL
    SELECT time, 'event', device_id, jsonb_build_object('event', event, 'data', data)
    FROM history.device_event_log
    WHERE home_id = %(home)s AND time >= %(start)s AND time < %(end)s
      AND (%(devices)s::text[] IS NULL OR device_id = ANY(%(devices)s))
    UNION ALL
    SELECT time, 'availability', device_id, jsonb_build_object('online', online)
    FROM history.availability
    WHERE home_id = %(home)s AND time >= %(start)s AND time < %(end)s
      AND (%(devices)s::text[] IS NULL OR device_id = ANY(%(devices)s))
    UNION ALL
    SELECT r.time, 'command', r.device_id,
           jsonb_build_object('command_id', r.command_id, 'group_id', r.group_id,
                              'capability', r.capability, 'command', r.command,
                              'parameters', r.parameters, 'requested_by', r.requested_by,
                              'status', o.status, 'reason', o.reason)
    FROM history.command_requests r
    LEFT JOIN LATERAL (
        SELECT status, reason FROM history.command_status c
        WHERE c.home_id = r.home_id AND c.command_id = r.command_id
        ORDER BY c.time DESC, (c.status IN ('COMPLETED', 'FAILED', 'TIMEOUT')) DESC
        LIMIT 1
    ) o ON true
    WHERE r.home_id = %(home)s AND r.time >= %(start)s AND r.time < %(end)s
      AND r.parent_command_id IS NULL
      AND (%(devices)s::text[] IS NULL OR r.device_id = ANY(%(devices)s))
    UNION ALL
    SELECT time, 'automation', NULL,
           jsonb_build_object('automation_id', automation_id, 'run_id', run_id,
                              'alias', alias, 'trigger', trigger, 'status', status,
                              'error', error)
    FROM history.automation_runs
    WHERE home_id = %(home)s AND time >= %(start)s AND time < %(end)s
      AND status <> 'STARTED' AND %(devices)s::text[] IS NULL
    UNION ALL
    SELECT time, 'notification', device_id,
           jsonb_build_object('kind', kind, 'severity', severity, 'title', title,
                              'message', message, 'automation_id', automation_id)
    FROM history.notification_log
    WHERE home_id = %(home)s AND time >= %(start)s AND time < %(end)s
      AND (%(devices)s::text[] IS NULL OR device_id = ANY(%(devices)s))
) feed
WHERE %(kinds)s::text[] IS NULL OR kind = ANY(%(kinds)s)
ORDER BY time DESC
LIMIT %(limit)s
"""


# A bad parameter: the history's error (``param`` names it), for the same 422.
LogbookQueryError = HistoryQueryError


@dataclass(frozen=True)
class LogbookQuery:
    start: dt.datetime
    end: dt.datetime
    limit: int
    kinds: tuple[str, ...] | None


def build_query(
    *,
    start: Any = None,
    end: Any = None,
    limit: Any = DEFAULT_LIMIT,
    kinds: str | None = None,
    now: dt.datetime | None = None,
) -> LogbookQuery:
    """Check the parameters (pure); the span defaults to the last 24 hours."""
    now = now or dt.datetime.now(dt.UTC)
    try:
        start_t, end_t = timerange.time_range(start, end, now=now, default_span=DEFAULT_SPAN)
    except timerange.TimeError as exc:
        raise LogbookQueryError(exc.param, exc.message) from None
    try:
        n = int(limit)
    except (TypeError, ValueError):
        raise LogbookQueryError("limit", "must be a whole number") from None
    if not 1 <= n <= MAX_LIMIT:
        raise LogbookQueryError("limit", f"must be 1 to {MAX_LIMIT}")
    wanted = None
    if kinds:
        wanted = tuple(k.strip() for k in kinds.split(",") if k.strip())
        unknown = [k for k in wanted if k not in KINDS]
        if unknown:
            raise LogbookQueryError("kind", f"unknown {unknown[0]!r}: use {', '.join(KINDS)}")
    return LogbookQuery(start_t, end_t, n, wanted)


def logbook(
    conn: Any, home_id: str, *, query: LogbookQuery, devices: list[str] | None = None
) -> list[dict[str, Any]]:
    """The rows of the feed: {ts, kind, device_id, detail}, newest first."""
    rows = conn.execute(
        _SQL,
        {
            "home": home_id,
            "start": query.start,
            "end": query.end,
            "devices": devices,
            "kinds": list(query.kinds) if query.kinds else None,
            "limit": query.limit,
        },
    ).fetchall()
    return [
        {"ts": int(t.timestamp() * 1000), "kind": k, "device_id": d, "detail": detail or {}}
        for t, k, d, detail in rows
    ]


def home_devices(conn: Any, home_id: str) -> list[dict[str, Any]]:
    """The home's devices as the history knows them, with the users' names and rooms
    (device_overrides) applied: for the CLI, which has no Redis view of the registry."""
    rows = conn.execute(
        "SELECT d.device_id, coalesce(o.name, d.name),"
        " CASE WHEN o.room IS NULL THEN d.room WHEN o.room = '' THEN NULL ELSE o.room END"
        " FROM history.devices d LEFT JOIN device_overrides o"
        "   ON o.home_id = d.home_id AND o.device_id = d.device_id"
        " WHERE d.home_id = %s AND d.removed_at IS NULL ORDER BY d.device_id",
        (home_id,),
    ).fetchall()
    return [{"device_id": d, "name": n, "room": r} for d, n, r in rows]


def stored_areas(conn: Any, home_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT area_id, name FROM areas WHERE home_id = %s ORDER BY lower(name)", (home_id,)
    ).fetchall()
    return [{"area_id": a, "name": n} for a, n in rows]


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "on" if v else "off"
    if isinstance(v, (dict, list)):
        return json.dumps(v, separators=(",", ":"))
    return str(v)


def _who(requested_by: str | None) -> str:
    if not requested_by:
        return "someone"
    kind, _, name = requested_by.partition(":")
    if kind == "automation" and name:
        return f"automation {name}"
    if kind == "scene" and name:
        return f"scene {name}"
    return requested_by


def entry_message(entry: dict[str, Any], device_name: str | None = None) -> str:
    """One readable sentence for a logbook row."""
    d = entry.get("detail") or {}
    who = device_name or entry.get("device_id") or ""
    kind = entry.get("kind")
    if kind == "state":
        attr = str(d.get("attribute") or "state")
        return f"{who} {attr} changed to {_value(d.get('value'))}"
    if kind == "event":
        return f"{who}: {d.get('event')}"
    if kind == "availability":
        return f"{who} went {'online' if d.get('online') else 'offline'}"
    if kind == "command":
        target = who or f"group {d.get('group_id')}"
        params = d.get("parameters") or {}
        shown = f" {_value(params)}" if params else ""
        status = str(d.get("status") or "sent").lower()
        reason = f" ({d['reason']})" if d.get("reason") else ""
        return (
            f"{_who(d.get('requested_by'))} sent {d.get('command')}{shown} to {target}: "
            f"{status}{reason}"
        )
    if kind == "automation":
        name = d.get("alias") or d.get("automation_id")
        error = f": {d['error']}" if d.get("error") else ""
        return f"automation {name} ran ({str(d.get('status')).lower()}){error}"
    if kind == "notification":
        title = f"{d['title']}: " if d.get("title") else ""
        return f"notification: {title}{d.get('message')}"
    return str(kind)
