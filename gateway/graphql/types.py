"""The GraphQL types of the design brief (device and command services) and what they are
made from: the REST views (``gateway.routes``), field for field, in camelCase.

Where the brief and homestream differ, homestream's data wins and the difference is in
docs/graphql.md: device types and capability names are open sets (scalars, not enums);
``Capability.commands`` lists command names (the brief's ``Command`` is a command run);
registry changes are asynchronous (``DeviceChange``), as REST's 202.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Annotated, Any, NewType

import strawberry
from strawberry.scalars import JSON

from domain import capabilities as caps
from domain.lifecycle import FINAL, STATUSES
from gateway.graphql.context import api_errors, invoke

DeviceType = strawberry.scalar(
    NewType("DeviceType", str),
    description="A device type, e.g. light.dimmer (docs/capabilities.md); an open set",
    serialize=str,
    parse_value=str,
)
CapabilityType = strawberry.scalar(
    NewType("CapabilityType", str),
    description="A capability, e.g. ON_OFF, BRIGHTNESS (docs/capabilities.md)",
    serialize=str,
    parse_value=str,
)

CommandStatus = strawberry.enum(
    enum.Enum("CommandStatus", {s: s for s in STATUSES}),  # type: ignore[misc]
    description="PENDING -> SENT -> ACKNOWLEDGED -> COMPLETED, or FAILED / TIMEOUT",
)


def when(ms: Any) -> dt.datetime | None:
    """Epoch milliseconds -> an aware datetime (GraphQL DateTime: ISO 8601)."""
    if ms is None or isinstance(ms, bool) or not isinstance(ms, int | float) or ms <= 0:
        return None
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


@strawberry.type(description="One attribute a capability reports")
class Attribute:
    name: str
    kind: str
    unit: str | None
    minimum: float | None
    maximum: float | None
    values: list[str]
    writable: bool


@strawberry.type
class Capability:
    type: CapabilityType  # type: ignore[valid-type]
    commands: list[str] = strawberry.field(description="the command names it takes")
    attributes: list[Attribute]


def capability_of(name: str) -> Capability:
    cap = caps.capability(name)
    if cap is None:  # a name the table does not know: shown, with nothing known of it
        return Capability(type=name, commands=[], attributes=[])
    return Capability(
        type=name,
        commands=[c.name for c in cap.commands],
        attributes=[
            Attribute(
                name=a.name,
                kind=a.kind.value,
                unit=a.unit,
                minimum=a.minimum,
                maximum=a.maximum,
                values=list(a.values),
                writable=a.name in cap.writable,
            )
            for a in cap.attributes
        ],
    )


@strawberry.type(description="Where a device is and how it is shown")
class DeviceMetadata:
    room: str | None
    area: str | None = strawberry.field(description="the area id of its room")
    icon: str | None
    tags: list[str]


@strawberry.type(description="The device's shadow document (AWS IoT Device Shadow shape)")
class Shadow:
    state: JSON
    metadata: JSON
    version: int
    timestamp: dt.datetime | None


def shadow_of(doc: dict[str, Any] | None) -> Shadow | None:
    if doc is None:
        return None
    return Shadow(
        state=doc.get("state") or {},
        metadata=doc.get("metadata") or {},
        version=int(doc.get("version") or 0),
        timestamp=when(doc.get("timestamp")),
    )


@strawberry.type
class HistoryPoint:
    ts: float
    time: dt.datetime
    attribute: str
    value: JSON | None = strawberry.field(description="raw rows: the value")
    data: JSON = strawberry.field(description="the whole row (roll-ups: avg, min, max ...)")


@strawberry.type
class History:
    bucket: str
    start: dt.datetime = strawberry.field(name="from")
    end: dt.datetime = strawberry.field(name="to")
    points: list[HistoryPoint]


def history_of(doc: dict[str, Any]) -> History:
    return History(
        bucket=doc["bucket"],
        start=dt.datetime.fromisoformat(doc["from"]),
        end=dt.datetime.fromisoformat(doc["to"]),
        points=[
            HistoryPoint(
                ts=p["ts"],
                time=dt.datetime.fromisoformat(p["time"]),
                attribute=p["attribute"],
                value=p.get("value"),
                data=p,
            )
            for p in doc["points"]
        ],
    )


def _extra(view: dict[str, Any], name: str) -> Any:
    extra = view.get("extra")
    return extra.get(name) if isinstance(extra, dict) else None


def _tags(value: Any) -> list[str]:
    return [str(t) for t in value] if isinstance(value, list) else []


@strawberry.type(description="A device: registry entry and current state")
class Device:
    id: strawberry.ID
    home_id: strawberry.ID
    name: str
    type: DeviceType  # type: ignore[valid-type]
    manufacturer: str | None
    model: str | None
    protocol: str | None
    capabilities: list[Capability]
    state: JSON = strawberry.field(description="reported state")
    desired: JSON
    delta: JSON
    online: bool
    last_seen: dt.datetime | None
    battery: float | None
    version: int = strawberry.field(description="the shadow version (rises per change)")
    firmware: str | None = strawberry.field(description="as the hub announced it (extra)")
    metadata: DeviceMetadata

    @strawberry.field(description="The shadow document; all devices' in one Redis read")
    async def shadow(self, info: strawberry.Info) -> Shadow | None:
        with api_errors():
            entry = await info.context.devices.load((str(self.home_id), str(self.id)))
        return shadow_of(entry.shadow if entry is not None else None)

    @strawberry.field(description="State history from the time-series store (REST .../history)")
    async def history(
        self,
        info: strawberry.Info,
        start: Annotated[str | None, strawberry.argument(name="from")] = None,
        end: Annotated[str | None, strawberry.argument(name="to")] = None,
        bucket: str | None = None,
        attribute: str | None = None,
    ) -> History:
        path = {"home_id": str(self.home_id), "device_id": str(self.id)}
        query = {"from": start, "to": end, "bucket": bucket, "attribute": attribute}
        with api_errors():
            return history_of(await invoke(info, "get_history", path, query=query))


def device_of(view: dict[str, Any]) -> Device:
    """A REST device view (``gateway.routes.devices``) as a GraphQL Device."""
    return Device(
        id=strawberry.ID(view["device_id"]),
        home_id=strawberry.ID(view["home_id"]),
        name=view.get("name") or view["device_id"],
        type=view.get("type") or "",
        manufacturer=view.get("manufacturer"),
        model=view.get("model"),
        protocol=view.get("protocol"),
        capabilities=[capability_of(c) for c in view.get("capabilities") or []],
        state=view.get("state") or {},
        desired=view.get("desired") or {},
        delta=view.get("delta") or {},
        online=bool(view.get("online")),
        last_seen=when(view.get("lastSeen")),
        battery=view.get("battery"),
        version=int(view.get("version") or 0),
        firmware=_extra(view, "firmware") or _extra(view, "sw_version"),
        metadata=DeviceMetadata(
            room=view.get("room"),
            area=view.get("area"),
            icon=view.get("icon") or _extra(view, "icon"),
            tags=_tags(view.get("tags") if "tags" in view else _extra(view, "tags")),
        ),
    )


@strawberry.type(description="A command run (REST: GET .../commands/{id})")
class Command:
    id: strawberry.ID
    home_id: strawberry.ID
    device_id: strawberry.ID | None
    group_id: str | None
    capability: str | None
    command: str | None
    parameters: JSON | None
    status: CommandStatus  # type: ignore[valid-type]
    reason: str | None
    request_id: str | None
    updated_at: dt.datetime | None = strawberry.field(description="when it reached its status")
    requested_at: dt.datetime | None = strawberry.field(
        description="when it was asked for (known to the gateway that took it)"
    )
    completed_at: dt.datetime | None = strawberry.field(description="when it ended, if it has")


def command_of(status: dict[str, Any], parameters: Any = None) -> Command:
    raw = str(status.get("status") or "PENDING")
    name = raw if raw in STATUSES else "PENDING"
    ts = when(status.get("ts"))
    return Command(
        id=strawberry.ID(str(status["command_id"])),
        home_id=strawberry.ID(str(status.get("home_id") or "")),
        device_id=status.get("device_id"),
        group_id=status.get("group_id"),
        capability=status.get("capability"),
        command=status.get("command"),
        parameters=parameters,
        status=CommandStatus[name],
        reason=status.get("reason"),
        request_id=status.get("request_id"),
        updated_at=ts,
        requested_at=ts if name == "PENDING" else None,
        completed_at=ts if name in FINAL else None,
    )


@strawberry.type(description="A registry change was accepted; the registry shows it shortly")
class DeviceChange:
    home_id: strawberry.ID
    device_id: strawberry.ID
    status: str = strawberry.field(description="registering | removing")


@strawberry.type
class Scene:
    id: strawberry.ID
    name: str | None
    document: JSON = strawberry.field(description="the scene as REST stores it")
    updated_at: dt.datetime | None


@strawberry.type
class Automation:
    id: strawberry.ID
    name: str | None
    enabled: bool | None
    document: JSON = strawberry.field(description="the automation as REST stores it")
    updated_at: dt.datetime | None


def scene_of(doc: dict[str, Any]) -> Scene:
    return Scene(
        id=strawberry.ID(doc["scene_id"]),
        name=doc.get("name"),
        document=doc,
        updated_at=when(doc.get("updated_at")),
    )


def automation_of(doc: dict[str, Any]) -> Automation:
    return Automation(
        id=strawberry.ID(doc["automation_id"]),
        name=doc.get("alias") or doc.get("name"),
        enabled=doc.get("enabled"),
        document=doc,
        updated_at=when(doc.get("updated_at")),
    )


@strawberry.type(description="A scene run's outcome (STARTED: its end did not come in time)")
class SceneRun:
    run_id: strawberry.ID
    scene_id: strawberry.ID
    status: str
    actions_succeeded: int
    actions_failed: int
    actions_skipped: int
    execution_time_ms: int | None
    command_ids: list[str]
    errors: JSON


def scene_run_of(doc: dict[str, Any]) -> SceneRun:
    return SceneRun(
        run_id=strawberry.ID(str(doc.get("run_id") or "")),
        scene_id=strawberry.ID(str(doc.get("scene_id") or "")),
        status=str(doc.get("status")),
        actions_succeeded=int(doc.get("actions_succeeded") or 0),
        actions_failed=int(doc.get("actions_failed") or 0),
        actions_skipped=int(doc.get("actions_skipped") or 0),
        execution_time_ms=doc.get("execution_time_ms"),
        command_ids=[str(c) for c in doc.get("command_ids") or []],
        errors=doc.get("errors") or [],
    )


@strawberry.type(
    description="A change of a device's state (the WebSocket's device.state / device.desired)"
)
class DeviceStateEvent:
    kind: str = strawberry.field(description="device.state | device.desired")
    home_id: strawberry.ID
    device_id: strawberry.ID
    version: int
    ts: dt.datetime | None
    changed: JSON
    reported: JSON | None
    desired: JSON | None
    delta: JSON | None
    command_id: str | None


def state_event_of(frame: dict[str, Any]) -> DeviceStateEvent:
    return DeviceStateEvent(
        kind=frame["type"],
        home_id=strawberry.ID(frame["home_id"]),
        device_id=strawberry.ID(frame["device_id"]),
        version=int(frame.get("version") or 0),
        ts=when(frame.get("ts")),
        changed=frame.get("changed") or {},
        reported=frame.get("reported"),
        desired=frame.get("desired"),
        delta=frame.get("delta"),
        command_id=frame.get("command_id"),
    )


@strawberry.type
class Notification:
    id: strawberry.ID
    home_id: strawberry.ID
    ts: dt.datetime | None
    kind: str | None
    severity: str | None
    title: str | None
    message: str | None
    device_id: str | None
    automation_id: str | None
    data: JSON | None


def notification_of(frame: dict[str, Any]) -> Notification:
    return Notification(
        id=strawberry.ID(str(frame.get("event_id") or "")),
        home_id=strawberry.ID(str(frame.get("home_id") or "")),
        ts=when(frame.get("ts")),
        kind=frame.get("kind"),
        severity=frame.get("severity"),
        title=frame.get("title"),
        message=frame.get("message"),
        device_id=frame.get("device_id"),
        automation_id=frame.get("automation_id"),
        data=frame.get("data"),
    )
