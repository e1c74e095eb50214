"""History rows: decoded events -> the staging rows the history sink COPYs (pure, no I/O).

``rows_for(name, record)`` gives ``[(staging table, row)]`` for one decoded event;
``STAGES`` names each staging table's columns in row order (``history_schema`` builds its
COPY statements from it), and ``partition_days`` tells which daily partitions a batch of
rows needs. The runner that consumes Kafka and writes PostgreSQL is ``sinks/history.py``;
the DDL is ``stores/migrations/0002_history.sql`` (docs/history.md).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterable
from typing import Any

from topics.state_change import state_of

# Staging table -> the columns COPY writes, in the order the row tuples use.
STAGES: dict[str, tuple[str, ...]] = {
    "stage_state": (
        "time_ms",
        "home_id",
        "device_id",
        "kind",
        "attribute",
        "value",
        "value_num",
        "value_text",
        "version",
        "source",
        "command_id",
        "accepted_ms",
        "event_id",
        "clamped_ms",
    ),
    "stage_events": (
        "time_ms",
        "event_id",
        "home_id",
        "device_id",
        "event",
        "data",
        "received_ms",
        "source",
        "clamped_ms",
    ),
    "stage_commands": (
        "time_ms",
        "event_id",
        "home_id",
        "command_id",
        "status",
        "reason",
        "device_id",
        "group_id",
        "capability",
        "command",
        "request_id",
        "parent_command_id",
    ),
    "stage_notifications": (
        "time_ms",
        "event_id",
        "home_id",
        "kind",
        "severity",
        "title",
        "message",
        "device_id",
        "automation_id",
        "data",
    ),
    "stage_availability": ("time_ms", "event_id", "home_id", "device_id", "online", "source"),
    # Not time-partitioned (migration 0007_logbook.sql).
    "stage_requests": (
        "time_ms",
        "event_id",
        "home_id",
        "command_id",
        "device_id",
        "group_id",
        "capability",
        "command",
        "parameters",
        "requested_by",
        "parent_command_id",
    ),
    "stage_runs": (
        "time_ms",
        "event_id",
        "home_id",
        "automation_id",
        "run_id",
        "alias",
        "trigger",
        "status",
        "error",
    ),
    "stage_devices": (
        "seq",
        "time_ms",
        "home_id",
        "device_id",
        "removed",
        "name",
        "type",
        "room",
        "protocol",
        "manufacturer",
        "model",
        "capabilities",
        "endpoint",
        "registered_ms",
    ),
}

# Staging tables whose rows go into a time-partitioned table (first column: time_ms).
TIMED_STAGES = (
    "stage_state",
    "stage_events",
    "stage_commands",
    "stage_notifications",
    "stage_availability",
)

DAY_MS = 86_400_000
# Daily partitions are created for event days within this window around today; rows
# outside it (a hub clock far off) go to the DEFAULT partition.
PARTITION_PAST_DAYS = 90
PARTITION_FUTURE_DAYS = 2
# Event time (the hub's ts) is trusted within these bounds around the time the cloud
# received the report; outside them it is clamped to the receive time and flagged
# (clamped_from keeps what the hub sent). The past bound is the retention (history.meta).
FUTURE_TOLERANCE_MS = 5 * 60_000
RETENTION_DAYS = 90

Row = tuple[Any, ...]


# -- pure row building -------------------------------------------------------------------
def clean_text(s: str) -> str:
    """PostgreSQL text and jsonb cannot hold NUL: replace it."""
    return s.replace("\x00", "\ufffd") if "\x00" in s else s


def _clean(v: Any) -> Any:
    if isinstance(v, str):
        return clean_text(v)
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)  # NaN / inf are not JSON: kept as text
    if isinstance(v, dict):
        return {clean_text(str(k)): _clean(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_clean(x) for x in v]
    return v


def value_columns(v: Any) -> tuple[str, float | None, str | None]:
    """(value as JSON text, value_num, value_text) of one attribute value.

    Numbers go to value_num (booleans as 1/0, so roll-ups show the share of samples that
    were true); strings to value_text; everything to value (JSON, null when deleted)."""
    if v is None:
        return "null", None, None
    if isinstance(v, bool):
        return ("true" if v else "false"), (1.0 if v else 0.0), None
    if isinstance(v, int):
        return str(v), float(v), None
    if isinstance(v, float):
        if math.isfinite(v):
            return repr(v), v, None
        return json.dumps(str(v)), None, str(v)
    if isinstance(v, str):
        v = clean_text(v)
        return json.dumps(v), None, v
    return json.dumps(_clean(v), separators=(",", ":")), None, None


def json_text(raw: str | None) -> str | None:
    """A JSON text field (data) as jsonb input: kept if it parses, else as a JSON string."""
    if raw is None:
        return None
    try:
        parsed = json.loads(raw)
    except ValueError:
        return json.dumps(clean_text(raw))
    if "\x00" in raw or "\\u0000" in raw:
        return json.dumps(_clean(parsed))
    return raw


def event_time(ts: int, received: int) -> tuple[int, int | None]:
    """(the row's time, the ts it was clamped from or None) of an event the hub stamped
    ``ts`` and the cloud received at ``received`` (both epoch ms). Relative to the receive
    time, not to now, so a replay gives the same time and the natural key skips it."""
    if ts > received + FUTURE_TOLERANCE_MS or ts < received - RETENTION_DAYS * DAY_MS:
        return received, ts
    return ts, None


def state_rows(rec: dict[str, Any]) -> list[tuple[str, Row]]:
    """One row per changed attribute of a StateChange: kind 'reported' for ``changed``,
    'desired' for ``desired_changed``, from either schema version (topics.state_change)."""
    state = state_of(rec)
    changed, desired_changed = state.changed, state.desired_changed
    home = clean_text(rec["home_id"])
    device = clean_text(rec["device_id"])
    version, event_id = rec["version"], rec["event_id"]
    source = clean_text(rec.get("source") or "report")
    command_id = rec.get("command_id")
    accepted = rec.get("accepted_at", rec["ts"])
    ts, clamped = event_time(rec["ts"], accepted)
    out: list[tuple[str, Row]] = []
    for kind, attrs in (("reported", changed), ("desired", desired_changed)):
        for attr, v in attrs.items():
            value, num, text = value_columns(v)
            out.append(
                (
                    "stage_state",
                    (
                        ts,
                        home,
                        device,
                        kind,
                        clean_text(attr),
                        value,
                        num,
                        text,
                        version,
                        source,
                        command_id,
                        accepted,
                        event_id,
                        clamped,
                    ),
                )
            )
    return out


def _opt(v: Any) -> Any:
    return clean_text(v) if isinstance(v, str) else v


def rows_for(name: str, rec: dict[str, Any] | None, seq: int = 0) -> list[tuple[str, Row]]:
    """The staging rows of one decoded event: [(staging table, row)], [] to ignore it."""
    if rec is None:
        return []
    if name == "StateChange":
        return state_rows(rec)
    if name == "DeviceEvent":
        received = rec.get("received_at", rec["ts"])
        ts, clamped = event_time(rec["ts"], received)
        return [
            (
                "stage_events",
                (
                    ts,
                    rec["event_id"],
                    _opt(rec["home_id"]),
                    _opt(rec["device_id"]),
                    _opt(rec["event"]),
                    json_text(rec.get("data")),
                    received,
                    _opt(rec.get("source") or "mqtt"),
                    clamped,
                ),
            )
        ]
    if name == "CommandStatus":
        return [
            (
                "stage_commands",
                (
                    rec["ts"],
                    rec["event_id"],
                    _opt(rec["home_id"]),
                    _opt(rec["command_id"]),
                    rec["status"],
                    _opt(rec.get("reason")),
                    _opt(rec.get("device_id")),
                    _opt(rec.get("group_id")),
                    _opt(rec.get("capability")),
                    _opt(rec.get("command")),
                    _opt(rec.get("request_id")),
                    _opt(rec.get("parent_command_id")),
                ),
            )
        ]
    if name == "CommandRequested":
        return [
            (
                "stage_requests",
                (
                    rec["ts"],
                    rec["event_id"],
                    _opt(rec["home_id"]),
                    _opt(rec["command_id"]),
                    _opt(rec.get("device_id")),
                    _opt(rec.get("group_id")),
                    _opt(rec.get("capability")),
                    _opt(rec.get("command")),
                    json.dumps(_clean(rec.get("parameters") or {})),
                    _opt(rec.get("requested_by")),
                    _opt(rec.get("parent_command_id")),
                ),
            )
        ]
    if name == "AutomationFired":
        return [
            (
                "stage_runs",
                (
                    rec["ts"],
                    rec["event_id"],
                    _opt(rec["home_id"]),
                    _opt(rec["automation_id"]),
                    _opt(rec["run_id"]),
                    _opt(rec.get("alias")),
                    _opt(rec.get("trigger")),
                    str(rec["status"]),
                    _opt(rec.get("error")),
                ),
            )
        ]
    if name == "Notification":
        return [
            (
                "stage_notifications",
                (
                    rec["ts"],
                    rec["event_id"],
                    _opt(rec["home_id"]),
                    rec["kind"],
                    rec["severity"],
                    _opt(rec.get("title")),
                    _opt(rec["message"]),
                    _opt(rec.get("device_id")),
                    _opt(rec.get("automation_id")),
                    json_text(rec.get("data")),
                ),
            )
        ]
    if name == "Availability":
        return [
            (
                "stage_availability",
                (
                    rec["ts"],
                    rec["event_id"],
                    _opt(rec["home_id"]),
                    _opt(rec["device_id"]),
                    bool(rec["online"]),
                    _opt(rec.get("source") or "mqtt"),
                ),
            )
        ]
    if name == "DeviceRegistered":
        return [
            (
                "stage_devices",
                (
                    seq,
                    rec["ts"],
                    _opt(rec["home_id"]),
                    _opt(rec["device_id"]),
                    False,
                    _opt(rec["name"]),
                    _opt(rec["type"]),
                    _opt(rec.get("room")),
                    _opt(rec.get("protocol")),
                    _opt(rec.get("manufacturer")),
                    _opt(rec.get("model")),
                    [clean_text(c) for c in rec.get("capabilities") or []],
                    _opt(rec.get("endpoint")),
                    rec.get("registered_at"),
                ),
            )
        ]
    if name == "DeviceRemoved":
        return [
            (
                "stage_devices",
                (
                    seq,
                    rec["ts"],
                    _opt(rec["home_id"]),
                    _opt(rec["device_id"]),
                    True,
                    *([None] * 9),
                ),
            )
        ]
    return []  # another record type on a topic we read: not history


def day_of(ms: int) -> dt.date:
    return dt.date(1970, 1, 1) + dt.timedelta(days=ms // DAY_MS)


def partition_days(rows: Iterable[tuple[str, Row]], today: dt.date) -> set[dt.date]:
    """Days whose daily partitions these rows need (within the window around today)."""
    lo = today - dt.timedelta(days=PARTITION_PAST_DAYS)
    hi = today + dt.timedelta(days=PARTITION_FUTURE_DAYS)
    # Day numbers first: a date object per row cost ~10% of the writer thread.
    numbers = {row[0] // DAY_MS for stage, row in rows if stage in TIMED_STAGES}
    days = {day_of(n * DAY_MS) for n in numbers}
    return {day for day in days if lo <= day <= hi}
