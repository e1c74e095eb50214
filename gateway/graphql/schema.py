"""``/v1/graphql``: the design brief's device and command services, plus shadows, history,
scenes, automations and live subscriptions (docs/graphql.md; SDL in docs/schema.graphql).

Queries read through a per-request dataloader (``GraphQLContext.devices``): a home's
devices, their shadows included, are one Redis round trip however many there are.
Mutations run the REST routes' handlers (``gateway.graphql.context.invoke``). Subscriptions
follow the process's one Kafka fan-out, as the WebSocket does, and never send a client a
version (or a command status) older than one it was sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import AddValidationRules, MaxAliasesLimiter
from strawberry.scalars import JSON

from domain.lifecycle import FINAL
from gateway.api import check_path_params
from gateway.errors import ApiError
from gateway.graphql.context import GraphQLContext, admitted, api_errors, invoke
from gateway.graphql.limits import MAX_ALIASES, CostRule
from gateway.graphql.types import (
    Automation,
    Command,
    Device,
    DeviceChange,
    DeviceStateEvent,
    DeviceType,
    Notification,
    Scene,
    SceneRun,
    automation_of,
    command_of,
    device_of,
    notification_of,
    scene_of,
    scene_run_of,
    state_event_of,
)
from gateway.routes.devices import show_device, shown_devices
from gateway.versions import DeviceVersions, StatusProgress
from stores.redis_state import snapshot_order

MAX_BATCH = 50  # executeBatchCommands

Info = strawberry.Info[GraphQLContext, None]


def _home(home_id: strawberry.ID) -> dict[str, str]:
    return {"home_id": str(home_id)}


async def _devices(info: Info, home: str) -> list[Device]:
    """The home's devices as REST shows them, read in one Redis round trip; the dataloader
    is primed with every entry, so their shadows need no read of their own."""
    ctx = info.context
    await admitted(info, "list_devices", {"home_id": home})
    entries = await ctx.backend.run(ctx.backend.devices.entries, home)
    for dev, entry in entries.items():
        ctx.devices.prime((home, dev), entry)
    views = sorted((e.device for e in entries.values() if e.device), key=snapshot_order)
    shown, _names = await shown_devices(ctx.backend, home, views)
    return [device_of(v) for v in shown]


@strawberry.input
class RegisterDeviceInput:
    id: strawberry.ID
    name: str
    type: DeviceType  # type: ignore[valid-type]
    capabilities: list[str]
    room: str | None = None
    protocol: str | None = None
    manufacturer: str | None = None
    model: str | None = None
    endpoint: str | None = None


@strawberry.input(description="What to change; a field left out is kept, room null clears it")
class UpdateDeviceInput:
    name: str | None = strawberry.UNSET
    room: str | None = strawberry.UNSET
    area: str | None = strawberry.field(
        default=strawberry.UNSET, description="an area id (moves its room)"
    )
    icon: str | None = strawberry.field(
        default=strawberry.UNSET, description="an icon name for apps, e.g. lightbulb"
    )
    tags: list[str] | None = strawberry.field(
        default=strawberry.UNSET, description="the user's labels; replaces the stored list"
    )


@strawberry.input
class ExecuteCommandInput:
    device_id: strawberry.ID
    capability: str
    command: str
    parameters: JSON | None = None
    timeout_ms: int | None = None
    request_id: str | None = None
    wait: bool = strawberry.field(default=False, description="reply with the final status")


def _given(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


@strawberry.type
class Query:
    @strawberry.field(description="One device of a home")
    async def device(self, info: Info, home_id: strawberry.ID, id: strawberry.ID) -> Device | None:
        home, dev = str(home_id), str(id)
        with api_errors():
            await admitted(info, "get_device", {"home_id": home, "device_id": dev})
            entry = await info.context.devices.load((home, dev))
            if entry is None or entry.device is None:
                return None
            return device_of(await show_device(info.context.backend, home, entry.device))

    @strawberry.field(description="A home's devices, by room then name")
    async def devices_by_home(self, info: Info, home_id: strawberry.ID) -> list[Device]:
        with api_errors():
            return await _devices(info, str(home_id))

    @strawberry.field(description="A home's devices of one type (e.g. light.dimmer)")
    async def devices_by_type(
        self,
        info: Info,
        home_id: strawberry.ID,
        type: DeviceType,  # type: ignore[valid-type]
    ) -> list[Device]:
        with api_errors():
            return [d for d in await _devices(info, str(home_id)) if d.type == type]

    @strawberry.field(description="A command's latest status")
    async def command(self, info: Info, home_id: strawberry.ID, id: strawberry.ID) -> Command:
        with api_errors():
            path = {"home_id": str(home_id), "command_id": str(id)}
            return command_of(await invoke(info, "get_command", path))

    @strawberry.field(description="The home's scenes")
    async def scenes(self, info: Info, home_id: strawberry.ID) -> list[Scene]:
        with api_errors():
            doc = await invoke(info, "list_scenes", _home(home_id))
        return [scene_of(s) for s in doc["scenes"]]

    @strawberry.field(description="The home's automations")
    async def automations(self, info: Info, home_id: strawberry.ID) -> list[Automation]:
        with api_errors():
            doc = await invoke(info, "list_automations", _home(home_id))
        return [automation_of(a) for a in doc["automations"]]


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Register a device by hand (asynchronous, as REST's 202)")
    async def register_device(
        self, info: Info, home_id: strawberry.ID, input: RegisterDeviceInput
    ) -> DeviceChange:
        body = _given(
            device_id=str(input.id),
            name=input.name,
            type=input.type,
            capabilities=list(input.capabilities),
            room=input.room,
            protocol=input.protocol,
            manufacturer=input.manufacturer,
            model=input.model,
            endpoint=input.endpoint,
        )
        with api_errors():
            doc = await invoke(info, "add_device", _home(home_id), body=body)
        return DeviceChange(
            home_id=doc["home_id"], device_id=doc["device_id"], status=doc["status"]
        )

    @strawberry.mutation(description="Rename a device or move it to another room or area")
    async def update_device(
        self, info: Info, home_id: strawberry.ID, id: strawberry.ID, input: UpdateDeviceInput
    ) -> Device:
        body = {
            k: v
            for k, v in (
                ("name", input.name),
                ("room", input.room),
                ("area", input.area),
                ("icon", input.icon),
                ("tags", input.tags),
            )
            if v is not strawberry.UNSET
        }
        path = {"home_id": str(home_id), "device_id": str(id)}
        with api_errors():
            return device_of(await invoke(info, "patch_device", path, body=body))

    @strawberry.mutation(description="Rename a device")
    async def rename_device(
        self, info: Info, home_id: strawberry.ID, id: strawberry.ID, name: str
    ) -> Device:
        path = {"home_id": str(home_id), "device_id": str(id)}
        with api_errors():
            return device_of(await invoke(info, "patch_device", path, body={"name": name}))

    @strawberry.mutation(description="Remove a device (asynchronous: true once accepted)")
    async def delete_device(self, info: Info, home_id: strawberry.ID, id: strawberry.ID) -> bool:
        path = {"home_id": str(home_id), "device_id": str(id)}
        with api_errors():
            await invoke(info, "delete_device", path)
        return True

    @strawberry.mutation(description="Send a command to a device")
    async def execute_command(
        self, info: Info, home_id: strawberry.ID, input: ExecuteCommandInput
    ) -> Command:
        with api_errors():
            return await _execute(info, str(home_id), input)

    @strawberry.mutation(description=f"Send up to {MAX_BATCH} commands; one result each")
    async def execute_batch_commands(
        self, info: Info, home_id: strawberry.ID, inputs: list[ExecuteCommandInput]
    ) -> list[Command]:
        with api_errors():
            if len(inputs) > MAX_BATCH:
                raise ApiError(422, f"inputs: at most {MAX_BATCH} commands per batch")
            results = await asyncio.gather(
                *(_execute(info, str(home_id), i) for i in inputs), return_exceptions=True
            )
            return _batch(results)

    @strawberry.mutation(description="Run a scene; waits for its outcome like REST")
    async def run_scene(
        self,
        info: Info,
        home_id: strawberry.ID,
        scene_id: strawberry.ID,
        request_id: str | None = None,
    ) -> SceneRun:
        path = {"home_id": str(home_id), "scene_id": str(scene_id)}
        with api_errors():
            doc = await invoke(info, "post_scene_run", path, body=_given(request_id=request_id))
        return scene_run_of(doc)


def _batch(results: list[Command | BaseException]) -> list[Command]:
    """The commands, or one error naming each input refused and the commands sent anyway
    (they were checked and sent one by one, as REST would)."""
    refused = [(i, r) for i, r in enumerate(results) if isinstance(r, BaseException)]
    if not refused:
        return [r for r in results if isinstance(r, Command)]
    for _i, exc in refused:
        if not isinstance(exc, ApiError):
            raise exc
    sent = [str(r.id) for r in results if isinstance(r, Command)]
    first = refused[0][1]
    assert isinstance(first, ApiError)
    problems = "; ".join(f"inputs[{i}]: {e}" for i, e in refused)
    note = f" ({len(sent)} other command(s) were sent: extensions.sent)" if sent else ""
    raise GraphQLError(
        problems + note,
        extensions={
            "code": first.code,
            "status": first.status,
            "refused": [i for i, _e in refused],
            "sent": sent,
        },
    )


async def _execute(info: Info, home: str, input: ExecuteCommandInput) -> Command:
    body = _given(
        device_id=str(input.device_id),
        capability=input.capability,
        command=input.command,
        parameters=input.parameters,
        timeout_ms=input.timeout_ms,
        request_id=input.request_id,
        wait=input.wait or None,
    )
    doc = await invoke(info, "post_command", _home(home), body=body)
    return command_of(doc, input.parameters)


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="A home's device state changes (one device with deviceId); with "
        "snapshot, each device's current state first. Never a version older than one sent."
    )
    async def device_state(
        self,
        info: Info,
        home_id: strawberry.ID,
        device_id: strawberry.ID | None = None,
        snapshot: bool = False,
    ) -> AsyncGenerator[DeviceStateEvent, None]:
        home = str(home_id)
        only = str(device_id) if device_id is not None else None
        backend = info.context.backend
        with api_errors():
            await admitted(info, "list_devices", {"home_id": home})
            if only is not None:
                check_path_params("GET", {"device_id": only})
        sub = backend.fanout.subscribe(home)  # before the read: nothing in between is lost
        try:
            versions = DeviceVersions()

            async def current() -> list[DeviceStateEvent]:
                with api_errors():
                    entries = await backend.run(
                        backend.devices.entries, home, [only] if only else None
                    )
                out = []
                for dev, entry in sorted(entries.items()):
                    view = entry.device or {}
                    versions.seed(dev, int(view.get("version") or 0))
                    out.append(state_event_of(_snapshot_frame(home, dev, view)))
                return out

            for event in await current():
                if snapshot:
                    yield event
            while True:
                item = await sub.get()
                frame = item.frame
                if item.type in ("device.added", "device.removed"):
                    versions.forget(str(frame.get("device_id")))
                if item.type not in ("device.state", "device.desired"):
                    continue
                if only is not None and frame.get("device_id") != only:
                    continue
                if versions.admit(str(frame.get("device_id")), frame.get("version")):
                    yield state_event_of(frame)
                if sub.overflowed and sub.queue.empty():  # events were dropped: resync
                    sub.clear_overflow()
                    for event in await current():
                        yield event
        finally:
            backend.fanout.unsubscribe(sub)

    @strawberry.subscription(description="A command's status steps until a final one")
    async def command_status(
        self, info: Info, home_id: strawberry.ID, command_id: strawberry.ID
    ) -> AsyncGenerator[Command, None]:
        home, cid = str(home_id), str(command_id)
        backend = info.context.backend
        with api_errors():
            await admitted(info, "get_command", {"home_id": home, "command_id": cid})
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

        def listen(status: dict[str, Any]) -> None:
            if status.get("command_id") == cid:
                queue.put_nowait(status)

        backend.fanout.add_status_listener(listen)
        try:
            progress = StatusProgress()
            with api_errors():
                latest = await backend.fanout.status(cid)
                if latest is None:
                    latest = await backend.run(backend.store.command_outcome, home, cid)
                if latest is None or latest.get("home_id") not in (None, home):
                    raise ApiError(404, f"command {cid!r} not found in {home!r}")
            while True:
                if progress.admit(latest.get("status")):
                    yield command_of(latest)
                if latest.get("status") in FINAL:
                    return
                latest = await queue.get()
        finally:
            backend.fanout.remove_status_listener(listen)

    @strawberry.subscription(description="A home's notifications as they are raised")
    async def notifications(
        self, info: Info, home_id: strawberry.ID
    ) -> AsyncGenerator[Notification, None]:
        home = str(home_id)
        backend = info.context.backend
        with api_errors():
            await admitted(info, "list_notifications", {"home_id": home})
        sub = backend.fanout.subscribe(home)
        try:
            while True:
                item = await sub.get()
                if item.type == "notification":
                    yield notification_of(item.frame)
                if sub.overflowed and sub.queue.empty():
                    sub.clear_overflow()  # notifications are kept: GET .../notifications
        finally:
            backend.fanout.unsubscribe(sub)


def _snapshot_frame(home: str, dev: str, view: dict[str, Any]) -> dict[str, Any]:
    """A device's current state as a device.state event (nothing changed)."""
    return {
        "type": "device.state",
        "home_id": home,
        "device_id": dev,
        "version": int(view.get("version") or 0),
        "ts": view.get("lastSeen"),
        "changed": {},
        "reported": view.get("state") or {},
        "desired": view.get("desired") or {},
        "delta": view.get("delta") or {},
    }


schema = strawberry.Schema(
    query=Query,
    mutation=Mutation,
    subscription=Subscription,
    extensions=[
        lambda: MaxAliasesLimiter(max_alias_count=MAX_ALIASES),
        lambda: AddValidationRules([CostRule]),
    ],
)
