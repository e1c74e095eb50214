"""What the API shows of a CommandStatus, a Notification and an AutomationFired record
(pure, no I/O).

Each view is a field list: a field is a record field of the same name, or a (name, getter)
pair when the value is computed. The gateway's WebSocket frames carry the same lists
(``gateway.frames``) and the Redis side stores keep the views (``stores.command_log``,
``stores.recent_events``), so a frame, a stored entry and a REST reply agree. They live
here, below both the Redis sink (the writer) and the gateway (the reader).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

Record = Mapping[str, Any]
Getter = Callable[[Record], Any]
Fields = tuple[tuple[str, Getter], ...]


def _json_or(text: Any, default: Any) -> Any:
    """``text`` parsed as JSON; ``default`` when it is not JSON text."""
    if not isinstance(text, str) or not text:
        return default
    try:
        return json.loads(text)
    except ValueError:
        return default


def _get(name: str) -> Getter:
    return lambda r: r.get(name)


def parsed(name: str) -> Getter:
    """A JSON text field, parsed; kept as it is when it is not JSON."""
    return lambda r: _json_or(r.get(name), r.get(name))


def fields(*spec: str | tuple[str, Getter]) -> Fields:
    """Field names (copied from the record) or (name, getter) pairs, in frame order."""
    return tuple((s, _get(s)) if isinstance(s, str) else s for s in spec)


def project(spec: Fields, record: Record) -> dict[str, Any]:
    return {name: get(record) for name, get in spec}


COMMAND_FIELDS = fields(
    "command_id",
    "home_id",
    "device_id",
    "group_id",
    "capability",
    "command",
    "status",
    "reason",
    "request_id",
    "parent_command_id",
    "ts",
)
NOTIFICATION_FIELDS = fields(
    "event_id",
    "home_id",
    "ts",
    "kind",
    "severity",
    "title",
    "message",
    "device_id",
    "automation_id",
    ("data", parsed("data")),
)
AUTOMATION_RUN_FIELDS = fields(
    "run_id",
    "automation_id",
    "alias",
    "status",
    "ts",
    ("trigger", parsed("trigger")),
    ("trace", parsed("trace")),
    "error",
)


def command_view(record: Record) -> dict[str, Any]:
    """A CommandStatus record as the API shows it."""
    return project(COMMAND_FIELDS, record)


def notification_view(record: Record) -> dict[str, Any]:
    return project(NOTIFICATION_FIELDS, record)


def automation_run_view(record: Record) -> dict[str, Any]:
    """An AutomationFired record as the API shows it (without its home: the URL has it)."""
    return project(AUTOMATION_RUN_FIELDS, record)
