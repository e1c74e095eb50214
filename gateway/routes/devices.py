"""The device registry (+ current state), shadows and history.

Reads come from Redis (``stores.redis_state.RedisState``, kept by the Redis sink) and the
history schema in PostgreSQL. Registry changes go through Kafka, like a hub's:

- ``POST .../devices`` produces a ``DeviceDiscovered`` (the stream worker registers it);
- ``DELETE .../devices/{d}`` produces a ``DeviceRemoved`` with ``source: "api"`` and
  ``removed_by``;
- ``PATCH .../devices/{d}`` (name, room) stores the user's choice in PostgreSQL
  (``device_overrides``), which wins whenever the gateway shows the device, even after the
  hub announces its own descriptor again, and produces a ``DeviceDiscovered`` with the new
  name/room so the registry, the Redis snapshot and the WebSocket see it too.

Registry changes are asynchronous: they answer 202 and show up in the registry once the
stream worker has handled the event.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from starlette.responses import Response

from domain import areas
from domain.timerange import iso
from domain.validate import validate_descriptor
from gateway.api import Ctx, Endpoint, Param, Reply, ok
from gateway.backend import Backend
from gateway.errors import ApiError, validation_error
from gateway.roles import Permission
from gateway.routes.common import (
    DEVICE_SCHEMA,
    NAME,
    TIME_RANGE,
    apply_override,
    device_or_404,
    publish_config,
)
from stores.home_documents import DEVICE
from topics import catalogue as t
from topics.descriptor import TEXT_FIELDS

OPT_TEXT = {"type": "string", "maxLength": 200, "nullable": True}

NEW_DEVICE = {
    "type": "object",
    "required": ["device_id", "name", "type", "capabilities"],
    "additionalProperties": False,
    "properties": {
        "device_id": {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$"},
        "name": NAME,
        "type": {"type": "string", "minLength": 1, "maxLength": 64},
        "capabilities": {"type": "array", "maxItems": 32, "items": {"type": "string"}},
        "room": OPT_TEXT,
        "protocol": OPT_TEXT,
        "manufacturer": OPT_TEXT,
        "model": OPT_TEXT,
        "endpoint": {"type": "string", "maxLength": 500, "nullable": True},
    },
}
PATCH_DEVICE = {
    "type": "object",
    "minProperties": 1,
    "additionalProperties": False,
    "properties": {
        "name": NAME,
        "room": OPT_TEXT,
        "area": {
            "type": "string",
            "pattern": r"^[a-z0-9][a-z0-9_]{0,63}$",
            "description": "move it to this area (GET .../areas); sets room to its name",
        },
        "icon": {
            "type": "string",
            "pattern": r"^[a-z0-9][a-z0-9_-]{0,63}$",
            "description": "an icon name for apps, e.g. lightbulb (the brief's metadata.icon)",
        },
        "tags": {
            "type": "array",
            "maxItems": 20,
            "uniqueItems": True,
            "items": {"type": "string", "minLength": 1, "maxLength": 40},
            "description": "the user's labels; the list given replaces the stored one",
        },
    },
}
ACCEPTED = {
    "type": "object",
    "required": ["home_id", "device_id", "status"],
    "properties": {
        "home_id": {"type": "string"},
        "device_id": {"type": "string"},
        "status": {"type": "string"},
    },
}
SHADOW = {
    "type": "object",
    "required": ["state", "metadata", "version", "timestamp"],
    "properties": {
        "state": {"type": "object"},
        "metadata": {"type": "object"},
        "version": {"type": "integer"},
        "timestamp": {"type": "integer"},
    },
}
HISTORY = {
    "type": "object",
    "required": ["home_id", "device_id", "bucket", "from", "to", "points"],
    "properties": {
        "home_id": {"type": "string"},
        "device_id": {"type": "string"},
        "bucket": {"type": "string", "enum": ["raw", "1m", "1h", "1d"]},
        "from": {"type": "string"},
        "to": {"type": "string"},
        "points": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["ts", "time", "attribute"],
                "properties": {
                    "ts": {"type": "integer"},
                    "time": {"type": "string"},
                    "attribute": {"type": "string"},
                },
            },
        },
    },
}


async def _overrides(ctx: Ctx) -> dict[str, dict[str, Any]]:
    b = ctx.backend
    return await b.run(b.store.overrides, ctx.home_id)


async def shown_devices(
    b: Backend, home: str, devices: list[dict[str, Any]] | None = None
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The home's devices as shown (overrides applied, each with its ``area``) and the
    stored areas' lower-case names -> ids. ``devices``: the registry's entries when the
    caller has read them already (else read here)."""
    if devices is None:
        devices = await b.run(b.devices.devices, home)
    overrides = await b.run(b.store.overrides, home)
    names = areas.by_name(await b.run(b.store.areas, home))
    shown = [apply_override(d, overrides.get(d["device_id"])) for d in devices]
    return [{**d, "area": areas.area_of(d.get("room"), names)} for d in shown], names


async def home_devices(ctx: Ctx) -> tuple[list[dict[str, Any]], dict[str, str]]:
    return await shown_devices(ctx.backend, ctx.home_id)


async def list_devices(ctx: Ctx) -> Response:
    devices, names = await home_devices(ctx)
    wanted = ctx.query.get("area") or ctx.query.get("room")
    if wanted:
        devices = [d for d in devices if areas.matches(d["area"], wanted, names)]
    return ok({"home_id": ctx.home_id, "devices": devices})


async def get_device(ctx: Ctx) -> Response:
    device = await device_or_404(ctx, ctx.path["device_id"])
    return ok(await show_device(ctx.backend, ctx.home_id, device))


async def show_device(b: Backend, home: str, device: dict[str, Any]) -> dict[str, Any]:
    """One registry entry as shown: the user's name/room applied, with its ``area``."""
    overrides = await b.run(b.store.overrides, home)
    names = areas.by_name(await b.run(b.store.areas, home))
    shown = apply_override(device, overrides.get(device["device_id"]))
    return {**shown, "area": areas.area_of(shown.get("room"), names)}


def _discovered(device: dict[str, Any]) -> dict[str, Any]:
    fields = {k: device.get(k) for k in TEXT_FIELDS}
    fields["capabilities"] = list(device.get("capabilities") or [])
    extra = device.get("extra")
    if extra is not None and not isinstance(extra, str):
        import json

        extra = json.dumps(extra)
    fields["extra"] = extra
    return fields


async def patch_device(ctx: Ctx) -> Response:
    device_id = ctx.path["device_id"]
    device = await device_or_404(ctx, device_id)
    changes: dict[str, Any] = dict(ctx.body)
    if "name" in changes and not str(changes["name"]).strip():
        raise validation_error([("name", "must not be blank")])
    if "area" in changes:
        area_id = changes.pop("area")
        known = {a["area_id"]: a["name"] for a in await area_list(ctx)}
        if area_id not in known:
            raise validation_error([("area", f"no area {area_id!r}: GET .../areas lists them")])
        changes["room"] = known[area_id]
    updated = await change_device(ctx, device_id, device, changes)
    names = areas.by_name(await ctx.backend.run(ctx.backend.store.areas, ctx.home_id))
    return ok({**updated, "area": areas.area_of(updated.get("room"), names)})


async def area_list(ctx: Ctx) -> list[dict[str, Any]]:
    devices, _names = await home_devices(ctx)
    stored = await ctx.backend.run(ctx.backend.store.areas, ctx.home_id)
    return areas.list_areas(stored, devices)


async def change_device(
    ctx: Ctx, device_id: str, device: dict[str, Any], changes: dict[str, Any]
) -> dict[str, Any]:
    """Store the user's name/room for a device and tell the registry (DeviceDiscovered)
    and the home's hub (its ``device`` document, for the hub's own registry)."""
    b = ctx.backend
    await b.run(b.store.set_override, ctx.home_id, device_id, changes, ctx.user)
    overrides = await _overrides(ctx)
    mine = overrides.get(device_id) or {}
    await b.run(publish_config, b, ctx.home_id, DEVICE, device_id, mine, ctx.user)
    updated = apply_override(device, mine)
    await b.run(
        b.producer.send,
        t.DEVICE_DISCOVERY,
        "DeviceDiscovered",
        ctx.home_id,
        device_id=device_id,
        **_discovered(updated),
    )
    return updated


async def delete_device(ctx: Ctx) -> Response:
    b = ctx.backend
    device_id = ctx.path["device_id"]
    await device_or_404(ctx, device_id)
    await b.run(
        b.producer.send,
        t.DEVICE_DISCOVERY,
        "DeviceRemoved",
        ctx.home_id,
        device_id=device_id,
        source="api",
        removed_by=ctx.user,
    )
    await b.run(b.store.delete_override, ctx.home_id, device_id)
    await b.run(publish_config, b, ctx.home_id, DEVICE, device_id, None, ctx.user)
    return ok({"home_id": ctx.home_id, "device_id": device_id, "status": "removing"}, 202)


async def add_device(ctx: Ctx) -> Response:
    b = ctx.backend
    body = dict(ctx.body)
    device_id = body.pop("device_id")
    problems = [(e.path, e.reason) for e in validate_descriptor(body)]
    if problems:
        raise validation_error(problems)
    if await b.run(b.devices.device, ctx.home_id, device_id) is not None:
        raise ApiError(409, f"device {device_id!r} exists already in {ctx.home_id!r}")
    fields = {k: body.get(k) for k in TEXT_FIELDS}
    fields["capabilities"] = list(body.get("capabilities") or [])
    await b.run(
        b.producer.send,
        t.DEVICE_DISCOVERY,
        "DeviceDiscovered",
        ctx.home_id,
        device_id=device_id,
        extra=None,
        **fields,
    )
    return ok({"home_id": ctx.home_id, "device_id": device_id, "status": "registering"}, 202)


async def get_shadow(ctx: Ctx) -> Response:
    b = ctx.backend
    device_id = ctx.path["device_id"]
    doc = await b.run(b.devices.shadow, ctx.home_id, device_id)
    if doc is None:
        await device_or_404(ctx, device_id)
        raise ApiError(404, f"device {device_id!r} has no shadow yet")
    return ok(doc)


async def get_history(ctx: Ctx) -> Response:
    from stores.history_query import HistoryQueryError, build_query

    b = ctx.backend
    q = ctx.query
    args = {
        "start": q.get("from"),
        "end": q.get("to"),
        "bucket": q.get("bucket"),
        "attribute": q.get("attribute"),
        "kind": q.get("kind", "reported"),
        "limit": q.get("limit", 10_000),
    }
    try:
        plan = build_query(ctx.home_id, ctx.path["device_id"], **args)
        args.update(start=plan.start, end=plan.end, bucket=plan.bucket)
        rows = await b.run(b.store.history, ctx.home_id, ctx.path["device_id"], **args)
    except HistoryQueryError as exc:
        raise validation_error([(exc.param, exc.message)]) from None
    points = []
    for row in rows:
        ts = int(row.get("ts") or 0)
        when = dt.datetime.fromtimestamp(ts / 1000, dt.UTC)
        points.append({**row, "time": iso(when)})
    return ok(
        {
            "home_id": ctx.home_id,
            "device_id": ctx.path["device_id"],
            "bucket": plan.bucket,
            "from": iso(plan.start),
            "to": iso(plan.end),
            "points": points,
        }
    )


_DEV = "/v1/homes/{home_id}/devices"
ENDPOINTS = [
    Endpoint(
        "GET",
        _DEV,
        list_devices,
        Permission.VIEW,
        "The registry of a home, with each device's current state, online, lastSeen, battery",
        "devices",
        {
            200: Reply(
                "Devices, by room then name",
                {
                    "type": "object",
                    "required": ["home_id", "devices"],
                    "properties": {
                        "home_id": {"type": "string"},
                        "devices": {"type": "array", "items": DEVICE_SCHEMA},
                    },
                },
            )
        },
        query=(
            Param(
                "area",
                {"type": "string", "minLength": 1, "maxLength": 200},
                "only devices in this area: its id or its name (GET .../areas)",
            ),
            Param(
                "room",
                {"type": "string", "minLength": 1, "maxLength": 200},
                "the same as area (a room is an area)",
            ),
        ),
    ),
    Endpoint(
        "POST",
        _DEV,
        add_device,
        Permission.CONFIGURE,
        "Register a device by hand (a DeviceDiscovered event; the stream worker registers it)",
        "devices",
        {202: Reply("Accepted: the registry will have it shortly", ACCEPTED)},
        body=NEW_DEVICE,
        extra={"errors": [409]},
    ),
    Endpoint(
        "GET",
        _DEV + "/{device_id}",
        get_device,
        Permission.VIEW,
        "One device: registry entry, current state, online, lastSeen, battery",
        "devices",
        {200: Reply("The device", DEVICE_SCHEMA)},
    ),
    Endpoint(
        "PATCH",
        _DEV + "/{device_id}",
        patch_device,
        Permission.CONFIGURE,
        "Rename a device or move it to another room or area",
        "devices",
        {200: Reply("The device as it is shown from now on", DEVICE_SCHEMA)},
        body=PATCH_DEVICE,
    ),
    Endpoint(
        "DELETE",
        _DEV + "/{device_id}",
        delete_device,
        Permission.CONFIGURE,
        "Remove a device from the home (a DeviceRemoved event)",
        "devices",
        {202: Reply("Accepted: the registry will drop it shortly", ACCEPTED)},
    ),
    Endpoint(
        "GET",
        _DEV + "/{device_id}/shadow",
        get_shadow,
        Permission.VIEW,
        "The device's shadow document (AWS IoT Device Shadow shape)",
        "devices",
        {200: Reply("The shadow", SHADOW)},
    ),
    Endpoint(
        "GET",
        _DEV + "/{device_id}/history",
        get_history,
        Permission.VIEW,
        "The device's state history from the time-series store",
        "devices",
        {200: Reply("Points, oldest first", HISTORY)},
        query=(
            *TIME_RANGE,
            Param(
                "bucket",
                {"type": "string", "enum": ["raw", "1m", "1h", "1d", "auto"]},
                "raw rows or roll-ups; chosen from the span when absent",
            ),
            Param("attribute", {"type": "string", "minLength": 1, "maxLength": 200}, "one only"),
            Param("kind", {"type": "string", "enum": ["reported", "desired"]}, "raw only"),
            Param("limit", {"type": "integer", "minimum": 1, "maximum": 50_000}, "max points"),
        ),
        extra={"errors": [503]},
    ),
]
