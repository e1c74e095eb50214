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

Any other record, or one without a home, becomes no frame. The field lists of
``command.status``, ``notification`` and ``automation.run`` are the views the side stores
keep and the REST routes show (``stores.event_views``).
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from stores.event_views import (
    AUTOMATION_RUN_FIELDS,
    COMMAND_FIELDS,
    NOTIFICATION_FIELDS,
    Fields,
    Getter,
    Record,
    fields,
    project,
)
from topics import jsontext
from topics.descriptor import TEXT_FIELDS
from topics.state_change import state_of


@dataclass(frozen=True)
class Event:
    """One decoded event for the subscribers of a home; ``frame`` is the WebSocket frame."""

    type: str
    home_id: str
    frame: dict[str, Any]

    @functools.cached_property
    def data(self) -> bytes:
        """The frame as UTF-8 JSON, made once for all the home's subscribers."""
        return jsontext.encode(self.frame, default=str)

    @property
    def text(self) -> str:
        return self.data.decode()

    @functools.cached_property
    def wire(self) -> bytes:
        """The whole WebSocket message as it goes on the wire: a server's frames are not
        masked (RFC 6455 5.1), so these bytes are the same for every subscriber."""
        return ws_text_frame(self.data)


def ws_text_frame(payload: bytes) -> bytes:
    """One unfragmented, unmasked WebSocket text frame (RFC 6455 5.2) carrying ``payload``."""
    n = len(payload)
    if n < 126:
        return struct.pack("!BB", 0x81, n) + payload
    if n < 1 << 16:
        return struct.pack("!BBH", 0x81, 126, n) + payload
    return struct.pack("!BBQ", 0x81, 127, n) + payload


# -- fields ------------------------------------------------------------------------------
def _mapping(name: str) -> Getter:
    return lambda r: dict(r.get(name) or {})


def _home(r: Record) -> str:
    return str(r.get("home_id") or "")


def _device(r: Record) -> dict[str, Any]:
    device = {k: r.get(k) for k in ("device_id", *TEXT_FIELDS, "source", "registered_at")}
    device["capabilities"] = list(r.get("capabilities") or [])
    return device


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
