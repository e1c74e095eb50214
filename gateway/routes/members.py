"""Who may do what in a home: ``GET/PUT/DELETE .../members/{username}`` (+ the list).

Reading the members needs ``view``; changing them needs ``manage`` (owners only). A home
always keeps at least one owner (409 otherwise). The user must exist (404).
"""

from __future__ import annotations

from starlette.responses import Response

from gateway.api import Ctx, Endpoint, Reply, no_content, ok
from gateway.errors import ApiError
from gateway.roles import ROLES, Permission

MEMBER = {
    "type": "object",
    "required": ["username", "role"],
    "properties": {
        "username": {"type": "string"},
        "role": {"type": "string", "enum": list(ROLES)},
        "since": {"type": "integer", "nullable": True},
        "home_id": {"type": "string"},
    },
}
ROLE_BODY = {
    "type": "object",
    "required": ["role"],
    "additionalProperties": False,
    "properties": {"role": {"type": "string", "enum": list(ROLES)}},
}


async def list_members(ctx: Ctx) -> Response:
    b = ctx.backend
    members = await b.run(b.store.members, ctx.home_id)
    return ok({"home_id": ctx.home_id, "members": members})


async def get_member(ctx: Ctx) -> Response:
    b = ctx.backend
    username = ctx.path["username"]
    for m in await b.run(b.store.members, ctx.home_id):
        if m["username"] == username:
            return ok({**m, "home_id": ctx.home_id})
    raise ApiError(404, f"{username!r} is not a member of {ctx.home_id!r}")


async def put_member(ctx: Ctx) -> Response:
    b = ctx.backend
    username, role = ctx.path["username"], ctx.body["role"]
    created = await b.run(b.store.set_member, ctx.home_id, username, role)
    return ok({"home_id": ctx.home_id, "username": username, "role": role}, 201 if created else 200)


async def delete_member(ctx: Ctx) -> Response:
    b = ctx.backend
    username = ctx.path["username"]
    if not await b.run(b.store.remove_member, ctx.home_id, username):
        raise ApiError(404, f"{username!r} is not a member of {ctx.home_id!r}")
    return no_content()


_M = "/v1/homes/{home_id}/members"
ENDPOINTS = [
    Endpoint(
        "GET",
        _M,
        list_members,
        Permission.VIEW,
        "The members of a home with their roles",
        "members",
        {
            200: Reply(
                "Members",
                {
                    "type": "object",
                    "required": ["home_id", "members"],
                    "properties": {
                        "home_id": {"type": "string"},
                        "members": {"type": "array", "items": MEMBER},
                    },
                },
            )
        },
    ),
    Endpoint(
        "GET",
        _M + "/{username}",
        get_member,
        Permission.VIEW,
        "One member",
        "members",
        {200: Reply("The member", MEMBER)},
    ),
    Endpoint(
        "PUT",
        _M + "/{username}",
        put_member,
        Permission.MANAGE,
        "Add a member or change their role (owners only)",
        "members",
        {200: Reply("Role changed", MEMBER), 201: Reply("Member added", MEMBER)},
        body=ROLE_BODY,
        extra={"errors": [409]},
    ),
    Endpoint(
        "DELETE",
        _M + "/{username}",
        delete_member,
        Permission.MANAGE,
        "Remove a member (owners only; the last owner stays)",
        "members",
        {204: Reply("Removed")},
        extra={"errors": [409]},
    ),
]
