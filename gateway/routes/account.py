"""The caller (``GET /v1/me``) and what owners manage beyond members: removing the home
(``DELETE /v1/homes/{h}``) and its hubs' MQTT logins (``.../hubs``). See
gateway.account_admin for what removal and a login change do (the broker drops a revoked
or rotated login at once)."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from gateway.api import AUTHENTICATED, Ctx, Endpoint, Reply, check_rate, no_content, ok
from gateway.errors import ApiError, validation_error
from gateway.roles import Permission, permissions_of
from gateway.routes.homes import HOME
from stores.accounts import AccountError

ME = {
    "type": "object",
    "required": ["username", "homes"],
    "properties": {"username": {"type": "string"}, "homes": {"type": "array", "items": HOME}},
}
HUB = {
    "type": "object",
    "required": ["username", "home_id", "revoked"],
    "properties": {
        "username": {"type": "string"},
        "home_id": {"type": "string"},
        "created_at": {"type": "string", "nullable": True},
        "revoked": {"type": "boolean"},
        "revoked_at": {"type": "string", "nullable": True},
    },
}
HUB_SECRET = {
    "type": "object",
    "required": ["username", "password", "home_id"],
    "properties": {
        "username": {"type": "string"},
        "password": {"type": "string", "description": "shown once; stored hashed"},
        "home_id": {"type": "string"},
    },
}
REMOVED = {
    "type": "object",
    "required": ["home_id", "removed"],
    "properties": {
        "home_id": {"type": "string"},
        "removed": {"type": "boolean"},
        "devices": {"type": "integer"},
        "documents": {"type": "integer"},
        "tombstones": {"type": "object", "additionalProperties": {"type": "integer"}},
    },
}


async def get_me(ctx: Ctx) -> Response:
    b = ctx.backend
    homes = await b.run(b.store.homes_of, ctx.user)
    return ok(
        {
            "username": ctx.user,
            "homes": [{**h, "permissions": permissions_of(h["role"])} for h in homes],
        }
    )


PASSWORD_BODY = {
    "type": "object",
    "required": ["current_password", "new_password"],
    "additionalProperties": False,
    "properties": {
        "current_password": {"type": "string", "minLength": 1, "maxLength": 1024},
        "new_password": {"type": "string", "minLength": 1, "maxLength": 1024},
    },
}


async def change_password(ctx: Ctx) -> Response:
    b = ctx.backend
    user = str(ctx.user)
    # Counted as sign-ins: the current password must not be guessable through this route.
    await check_rate(b, f"login:{user.lower()}", b.login_limit)
    if not await b.run(b.store.authenticate, user, ctx.body["current_password"]):
        raise ApiError(403, "current_password is not your password")
    try:
        await b.run(b.store.set_password, user, ctx.body["new_password"])
    except AccountError as exc:
        raise validation_error([("new_password", str(exc))]) from None
    return no_content()


async def _admin_call(ctx: Ctx, method: str, *args: Any) -> Any:
    b = ctx.backend
    if b.admin is None:
        raise ApiError(
            503,
            "this gateway cannot reach the MQTT broker's logins: use `homestream hubs ...` "
            "or `homestream homes remove` on the stack's machine",
        )
    try:
        return await b.run(getattr(b.admin, method), *args)
    except AccountError as exc:
        text = str(exc)
        raise ApiError(404 if "not found" in text else 409, text) from None


async def delete_home(ctx: Ctx) -> Response:
    return ok(await _admin_call(ctx, "remove_home", ctx.home_id, ctx.user))


async def list_hubs(ctx: Ctx) -> Response:
    return ok({"home_id": ctx.home_id, "hubs": await _admin_call(ctx, "hubs", ctx.home_id)})


async def add_hub(ctx: Ctx) -> Response:
    return ok(await _admin_call(ctx, "add_hub", ctx.home_id), 201)


async def rotate_hub(ctx: Ctx) -> Response:
    return ok(await _admin_call(ctx, "rotate_hub", ctx.home_id, ctx.path["hub_username"]))


async def revoke_hub(ctx: Ctx) -> Response:
    await _admin_call(ctx, "revoke_hub", ctx.home_id, ctx.path["hub_username"])
    return no_content()


_H = "/v1/homes/{home_id}"
_OWNER_ERRORS = {"errors": [503]}
ENDPOINTS = [
    Endpoint(
        "GET",
        "/v1/me",
        get_me,
        AUTHENTICATED,
        "The caller: username and homes with roles and permissions",
        "homes",
        {200: Reply("The caller", ME)},
    ),
    Endpoint(
        "PUT",
        "/v1/me/password",
        change_password,
        AUTHENTICATED,
        "Change your own password (the current one is asked for; counted as a sign-in)",
        "homes",
        {204: Reply("Changed: sign in with the new one from now on")},
        body=PASSWORD_BODY,
        extra={"errors": [403, 429]},
    ),
    Endpoint(
        "DELETE",
        _H,
        delete_home,
        Permission.MANAGE,
        "Remove the home: devices and state (compacted topics tombstoned), documents, "
        "members and hub logins; no other home is touched (owners only)",
        "homes",
        {200: Reply("Removed", REMOVED)},
        extra=_OWNER_ERRORS,
    ),
    Endpoint(
        "GET",
        _H + "/hubs",
        list_hubs,
        Permission.MANAGE,
        "The home's hub MQTT logins, never their passwords (owners only)",
        "hubs",
        {
            200: Reply(
                "Hub logins",
                {
                    "type": "object",
                    "required": ["home_id", "hubs"],
                    "properties": {
                        "home_id": {"type": "string"},
                        "hubs": {"type": "array", "items": HUB},
                    },
                },
            )
        },
        extra=_OWNER_ERRORS,
    ),
    Endpoint(
        "POST",
        _H + "/hubs",
        add_hub,
        Permission.MANAGE,
        "A new hub MQTT login; the password is in this answer only (owners only)",
        "hubs",
        {201: Reply("The login", HUB_SECRET)},
        body_required=False,
        extra=_OWNER_ERRORS,
    ),
    Endpoint(
        "POST",
        _H + "/hubs/{hub_username}/rotate",
        rotate_hub,
        Permission.MANAGE,
        "A new password for a hub login; the broker drops the old one at once (owners only)",
        "hubs",
        {200: Reply("The login with its new password", HUB_SECRET)},
        body_required=False,
        extra={"errors": [409, 503]},
    ),
    Endpoint(
        "DELETE",
        _H + "/hubs/{hub_username}",
        revoke_hub,
        Permission.MANAGE,
        "Revoke a hub login: the broker disconnects the hub at once (owners only)",
        "hubs",
        {204: Reply("Revoked")},
        extra={"errors": [409, 503]},
    ),
]
