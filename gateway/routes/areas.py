"""Rooms as areas (domain.areas): ``GET/POST .../areas``, ``PATCH .../areas/{area_id}``.

Renaming an area moves every device in it to the new name (each a device override, as
``PATCH .../devices/{d}`` does), and the area keeps its id.
"""

from __future__ import annotations

from starlette.responses import Response

from domain import areas
from gateway.api import Ctx, Endpoint, Reply, ok
from gateway.errors import ApiError, validation_error
from gateway.roles import Permission
from gateway.routes.common import NAME
from gateway.routes.devices import area_list, change_device, home_devices

AREA = {
    "type": "object",
    "required": ["area_id", "name", "devices"],
    "properties": {
        "area_id": {"type": "string"},
        "name": {"type": "string"},
        "devices": {"type": "array", "items": {"type": "string"}},
    },
}
NAME_BODY = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {"name": NAME},
}


def _name(ctx: Ctx) -> str:
    name = str(ctx.body["name"]).strip()
    if not name:
        raise validation_error([("name", "must not be blank")])
    return name


async def list_areas(ctx: Ctx) -> Response:
    return ok({"home_id": ctx.home_id, "areas": await area_list(ctx)})


async def create_area(ctx: Ctx) -> Response:
    b = ctx.backend
    name = _name(ctx)
    area_id = areas.area_id_for(name)
    if any(a["area_id"] == area_id for a in await area_list(ctx)):
        raise ApiError(409, f"area {area_id!r} exists already: PATCH it to rename it")
    await b.run(b.store.put_area, ctx.home_id, area_id, name)
    return ok({"area_id": area_id, "name": name, "devices": []}, 201)


async def rename_area(ctx: Ctx) -> Response:
    b = ctx.backend
    area_id, name = ctx.path["area_id"], _name(ctx)
    current = {a["area_id"]: a for a in await area_list(ctx)}
    if area_id not in current:
        raise ApiError(404, f"area {area_id!r} not found in home {ctx.home_id!r}")
    await b.run(b.store.put_area, ctx.home_id, area_id, name)
    devices, _names = await home_devices(ctx)
    for d in devices:
        if d["area"] == area_id:
            await change_device(ctx, d["device_id"], d, {"room": name})
    return ok({"area_id": area_id, "name": name, "devices": current[area_id]["devices"]})


_A = "/v1/homes/{home_id}/areas"
ENDPOINTS = [
    Endpoint(
        "GET",
        _A,
        list_areas,
        Permission.VIEW,
        "The home's areas (rooms): stored ones and the rooms its devices are in",
        "areas",
        {
            200: Reply(
                "Areas, by name",
                {
                    "type": "object",
                    "required": ["home_id", "areas"],
                    "properties": {
                        "home_id": {"type": "string"},
                        "areas": {"type": "array", "items": AREA},
                    },
                },
            )
        },
    ),
    Endpoint(
        "POST",
        _A,
        create_area,
        Permission.CONFIGURE,
        "Create an area (its id is made from the name: Living Room -> living_room)",
        "areas",
        {201: Reply("The area", AREA)},
        body=NAME_BODY,
        extra={"errors": [409]},
    ),
    Endpoint(
        "PATCH",
        _A + "/{area_id}",
        rename_area,
        Permission.CONFIGURE,
        "Rename an area: it keeps its id, its devices move to the new name",
        "areas",
        {200: Reply("The area", AREA)},
        body=NAME_BODY,
        extra={"errors": [409]},
    ),
]
