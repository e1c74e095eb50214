"""The caller's homes, with their role."""

from __future__ import annotations

from starlette.responses import Response

from gateway.api import AUTHENTICATED, Ctx, Endpoint, Reply, ok
from gateway.errors import ApiError
from gateway.roles import Permission, permissions_of

HOME = {
    "type": "object",
    "required": ["home_id", "name", "role", "permissions"],
    "properties": {
        "home_id": {"type": "string"},
        "name": {"type": "string"},
        "role": {"type": "string", "enum": ["owner", "admin", "member", "guest"]},
        "permissions": {"type": "array", "items": {"type": "string"}},
    },
}


async def list_homes(ctx: Ctx) -> Response:
    b = ctx.backend
    homes = await b.run(b.store.homes_of, ctx.user)
    return ok({"homes": [{**h, "permissions": permissions_of(h["role"])} for h in homes]})


async def get_home(ctx: Ctx) -> Response:
    b = ctx.backend
    home = await b.run(b.store.home, ctx.home_id)
    if home is None or ctx.role is None:
        raise ApiError(404, f"home {ctx.home_id!r} not found")
    return ok({**home, "role": ctx.role, "permissions": permissions_of(ctx.role)})


ENDPOINTS = [
    Endpoint(
        "GET",
        "/v1/homes",
        list_homes,
        AUTHENTICATED,
        "The homes of the caller, with the caller's role in each",
        "homes",
        {
            200: Reply(
                "Homes",
                {
                    "type": "object",
                    "required": ["homes"],
                    "properties": {"homes": {"type": "array", "items": HOME}},
                },
            )
        },
    ),
    Endpoint(
        "GET",
        "/v1/homes/{home_id}",
        get_home,
        Permission.VIEW,
        "One home, with the caller's role",
        "homes",
        {200: Reply("The home", HOME)},
    ),
]
