"""A home's mode and settings: what automations and security notifications read.

``GET/PUT .../mode`` ``{"mode": "home" | "away" | "night"}`` (CONTRACT.md section 5): members
may set it (arming when they leave is control, not configuration). ``GET/PUT .../settings``
``{"time_zone", "latitude"?, "longitude"?}``: the zone ``time`` triggers and conditions run
in, and the place sunrise and sunset are computed for; admins set it. Both are documents of
kind ``home`` (ids ``mode`` and ``settings``), stored and published to the stream workers
like scenes and automations (``publish_config``). Unset, a home is in mode ``home``, on UTC,
with no location (sun triggers then cannot be saved).
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from domain.automation.home import PlaceError, parse_place
from gateway.api import Ctx, Endpoint, Reply, ok
from gateway.errors import validation_error
from gateway.roles import Permission
from gateway.routes.common import publish_config

MODES = ("home", "away", "night")
DEFAULT_MODE = {"mode": "home"}
DEFAULT_SETTINGS: dict[str, Any] = {"time_zone": "UTC", "latitude": None, "longitude": None}

MODE_BODY = {
    "type": "object",
    "required": ["mode"],
    "additionalProperties": False,
    "properties": {"mode": {"type": "string", "enum": list(MODES)}},
}
SETTINGS_BODY = {
    "type": "object",
    "required": ["time_zone"],
    "additionalProperties": False,
    "properties": {
        "time_zone": {"type": "string", "minLength": 1, "maxLength": 64},
        "latitude": {"type": "number", "minimum": -90, "maximum": 90, "nullable": True},
        "longitude": {"type": "number", "minimum": -180, "maximum": 180, "nullable": True},
    },
}


def _view(ctx: Ctx, doc: dict[str, Any] | None, default: dict[str, Any]) -> dict[str, Any]:
    """The document's fields over the defaults (a stored view's ids and times left out)."""
    doc = doc or {}
    return {"home_id": ctx.home_id, **default, **{k: doc[k] for k in default if k in doc}}


async def _get(ctx: Ctx, doc_id: str, default: dict[str, Any]) -> Response:
    b = ctx.backend
    doc = await b.run(b.store.get_doc, ctx.home_id, "home", doc_id)
    return ok(_view(ctx, doc, default))


async def _put(ctx: Ctx, doc_id: str, default: dict[str, Any]) -> Response:
    b = ctx.backend
    document = {k: v for k, v in dict(ctx.body).items() if k in default}
    await b.run(b.store.put_doc, ctx.home_id, "home", doc_id, document, ctx.user)
    await b.run(publish_config, b, ctx.home_id, "home", doc_id, document, ctx.user)
    return ok(_view(ctx, document, default))


async def get_mode(ctx: Ctx) -> Response:
    return await _get(ctx, "mode", DEFAULT_MODE)


async def put_mode(ctx: Ctx) -> Response:
    return await _put(ctx, "mode", DEFAULT_MODE)


async def get_settings(ctx: Ctx) -> Response:
    return await _get(ctx, "settings", DEFAULT_SETTINGS)


async def put_settings(ctx: Ctx) -> Response:
    try:  # the same rules the stream workers read the place with
        parse_place({k: v for k, v in ctx.body.items() if v is not None})
    except PlaceError as exc:
        # A missing half of the location is reported at latitude, the field it pairs with.
        raise validation_error([(path or "latitude", why) for path, why in exc.problems]) from None
    return await _put(ctx, "settings", DEFAULT_SETTINGS)


_H = "/v1/homes/{home_id}"
MODE_REPLY = {
    "type": "object",
    "required": ["home_id", "mode"],
    "properties": {"home_id": {"type": "string"}, "mode": {"type": "string", "enum": list(MODES)}},
}
SETTINGS_REPLY = {
    "type": "object",
    "required": ["home_id", "time_zone"],
    "properties": {"home_id": {"type": "string"}, **SETTINGS_BODY["properties"]},
}
ENDPOINTS = [
    Endpoint(
        "GET", _H + "/mode", get_mode, Permission.VIEW, "The home's mode", "homes",
        {200: Reply("The mode", MODE_REPLY)},
    ),
    Endpoint(
        "PUT", _H + "/mode", put_mode, Permission.CONTROL,
        "Set the home's mode (home, away, night); automations and security alerts read it",
        "homes", {200: Reply("The mode", MODE_REPLY)}, body=MODE_BODY,
    ),
    Endpoint(
        "GET", _H + "/settings", get_settings, Permission.VIEW,
        "The home's time zone and location", "homes",
        {200: Reply("The settings", SETTINGS_REPLY)},
    ),
    Endpoint(
        "PUT", _H + "/settings", put_settings, Permission.CONFIGURE,
        "Set the home's time zone and location (time and sun triggers use them)", "homes",
        {200: Reply("The settings", SETTINGS_REPLY)}, body=SETTINGS_BODY,
    ),
]  # fmt: skip
