"""Decoded Kafka records -> the WebSocket frames of CONTRACT.md section 5 (pure, no I/O).

One table, :data:`FRAMES`, has an entry per record type: the frames it becomes, each
with its ``type`` and the fields it carries, in order. A field is a record field of the
same name, or a (name, getter) pair when the value is computed:

| record | frame type |
|---|---|
| StateChange | ``device.state`` (reported changes, or no change at all) and/or ``device.desired`` |
| Availability | ``device.online`` |
| DeviceRegistered, DeviceRemoved | ``device.added``, ``device.removed`` |
| CommandStatus | ``command.status`` |
| Notification | ``notification`` |
| SceneRun | ``scene.status`` |
| AutomationFired | ``automation.run`` |

Any other record, or one without a home, becomes no frame. The views the gateway keeps
in Redis and shows over REST (:func:`command_view`, :func:`notification_view`,
:func:`automation_run_view`) are the same field lists.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from topics.descriptor import TEXT_FIELDS
from topics.state_change import state_of

Record = Mapping[str, Any]
Getter = Callable[[Record], Any]
Fields = tuple[tuple[str, Getter], ...]


@dataclass(frozen=True)
class Event:
    """One decoded event for the subscribers of a home; ``frame`` is the WebSocket frame."""

    type: str
    home_id: str
    frame: dict[str, Any]

    @functools.cached_property
    def text(self) -> str:
        """The frame as JSON, made once for all the home's subscribers."""
        return json.dumps(self.frame, separators=(",", ":"), default=str)


# -- fields ------------------------------------------------------------------------------
def _json(text: Any, default: Any) -> Any:
    if not isinstance(text, str) or not text:
        return default
    try:
        return json.loads(text)
    except ValueError:
        return default


def _get(name: str) -> Getter:
    return lambda r: r.get(name)


def _parsed(name: str) -> Getter:
    """A JSON text field, parsed; kept as it is when it is not JSON."""
    return lambda r: _json(r.get(name), r.get(name))


def _mapping(name: str) -> Getter:
    return lambda r: dict(r.get(name) or {})


def _home(r: Record) -> str:
    return str(r.get("home_id") or "")


def _device(r: Record) -> dict[str, Any]:
    device = {k: r.get(k) for k in ("device_id", *TEXT_FIELDS, "source", "registered_at")}
    device["capabilities"] = list(r.get("capabilities") or [])
    return device


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
    ("data", _parsed("data")),
)
AUTOMATION_RUN_FIELDS = fields(
    "run_id",
    "automation_id",
    "alias",
    "status",
    "ts",
    ("trigger", _parsed("trigger")),
    ("trace", _parsed("trace")),
    "error",
)
SCENE_RUN_FIELDS = fields(
    ("home_id", _home),
    "scene_id",
    "run_id",
    "status",
    "actions_succeeded",
    "actions_failed",
    "execution_time_ms",
    "request_id",
    "error",
    "ts",
    # added with SceneRun v2 (a v1 record has none: 0 and empty lists)
    ("actions_skipped", lambda r: int(r.get("actions_skipped") or 0)),
    ("command_ids", lambda r: list(r.get("command_ids") or [])),
    ("errors", lambda r: [dict(e) for e in r.get("errors") or []]),
)
# What device.state and device.desired share.
STATE_FIELDS = fields(("home_id", _home), "device_id", "version", "ts", "source", "command_id")


def command_view(record: Record) -> dict[str, Any]:
    """A CommandStatus record as the API shows it."""
    return project(COMMAND_FIELDS, record)


def notification_view(record: Record) -> dict[str, Any]:
    return project(NOTIFICATION_FIELDS, record)


def automation_run_view(record: Record) -> dict[str, Any]:
    return project(AUTOMATION_RUN_FIELDS, record)


# -- the table ---------------------------------------------------------------------------
def _always(_r: Record) -> bool:
    return True


@dataclass(frozen=True)
class Frame:
    """One frame a record becomes: ``{"type": type, **fields}``, when ``when(record)``."""

    type: str
    fields: Fields
    when: Callable[[Record], bool] = _always


@dataclass(frozen=True)
class RecordFrames:
    """The frames of one record type, in order; ``prepare`` runs once per record first."""

    frames: tuple[Frame, ...]
    prepare: Callable[[Record], Record] | None = None


def _shadow_state(r: Record) -> Record:
    """The record with its state as plain dicts, whichever version wrote it."""
    st = state_of(r)
    return {
        **r,
        "changed": st.changed,
        "reported": st.reported,
        "desired": st.desired,
        "desired_changed": st.desired_changed,
        "delta": st.delta,
    }


FRAMES: dict[str, RecordFrames] = {
    "StateChange": RecordFrames(
        prepare=_shadow_state,
        frames=(
            Frame(
                "device.state",
                STATE_FIELDS + fields(("changed", _mapping("changed")), "reported", "delta"),
                when=lambda r: bool(r.get("changed")) or not r.get("desired_changed"),
            ),
            Frame(
                "device.desired",
                STATE_FIELDS + fields(("changed", _mapping("desired_changed")), "desired", "delta"),
                when=lambda r: bool(r.get("desired_changed")),
            ),
        ),
    ),
    "Availability": RecordFrames(
        (
            Frame(
                "device.online",
                fields(
                    ("home_id", _home),
                    "device_id",
                    ("online", lambda r: bool(r.get("online"))),
                    "ts",
                ),
            ),
        )
    ),
    "DeviceRegistered": RecordFrames(
        (Frame("device.added", fields(("home_id", _home), "device_id", "ts", ("device", _device))),)
    ),
    "DeviceRemoved": RecordFrames(
        (Frame("device.removed", fields(("home_id", _home), "device_id", "ts", "removed_by")),)
    ),
    "CommandStatus": RecordFrames((Frame("command.status", COMMAND_FIELDS),)),
    "Notification": RecordFrames((Frame("notification", NOTIFICATION_FIELDS),)),
    "SceneRun": RecordFrames((Frame("scene.status", SCENE_RUN_FIELDS),)),
    "AutomationFired": RecordFrames(
        (Frame("automation.run", fields(("home_id", _home)) + AUTOMATION_RUN_FIELDS),)
    ),
}


def to_events(name: str, record: Record) -> list[Event]:
    """The WebSocket events (CONTRACT.md section 5) of one decoded record."""
    home = str(record.get("home_id") or "")
    entry = FRAMES.get(name)
    if not home or entry is None:
        return []
    if entry.prepare is not None:
        record = entry.prepare(record)
    return [
        Event(f.type, home, {"type": f.type, **project(f.fields, record)})
        for f in entry.frames
        if f.when(record)
    ]
