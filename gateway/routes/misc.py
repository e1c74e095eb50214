"""Pairing, notifications and voice."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from gateway.api import ERROR_SCHEMA, Ctx, Endpoint, Param, Reply, ok
from gateway.errors import ApiError
from gateway.roles import Permission
from gateway.routes.common import now_ms
from topics import catalogue as t

PERMIT_BODY = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "duration": {"type": "integer", "minimum": 1, "maximum": 600},
        "permit": {"type": "boolean"},
    },
}
PERMIT_REPLY = {
    "type": "object",
    "required": ["home_id", "permit", "duration"],
    "properties": {
        "home_id": {"type": "string"},
        "permit": {"type": "boolean"},
        "duration": {"type": "integer"},
        "until": {"type": "integer"},
    },
}
NOTIFICATIONS_REPLY = {
    "type": "object",
    "required": ["home_id", "notifications", "source"],
    "properties": {
        "home_id": {"type": "string"},
        "source": {"type": "string", "enum": ["history", "recent"]},
        "notifications": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["kind", "message"],
                "properties": {
                    "ts": {"type": "integer", "nullable": True},
                    "kind": {"type": "string"},
                    "severity": {"type": "string", "nullable": True},
                    "title": {"type": "string", "nullable": True},
                    "message": {"type": "string"},
                    "device_id": {"type": "string", "nullable": True},
                },
            },
        },
    },
}
VOICE_BODY = {
    "type": "object",
    "required": ["text"],
    "additionalProperties": False,
    "properties": {
        "text": {"type": "string", "minLength": 1, "maxLength": 1000},
        "session_id": {"type": "string", "maxLength": 128},
    },
}


async def post_permit(ctx: Ctx) -> Response:
    b = ctx.backend
    body: dict[str, Any] = ctx.body or {}
    permit = bool(body.get("permit", True))
    duration = int(body.get("duration", 60)) if permit else 0
    await b.run(
        b.producer.send,
        t.HUB_PAIRING,
        "PairingRequest",
        ctx.home_id,
        permit=permit,
        duration=duration,
        requested_by=ctx.user,
    )
    reply = {
        "home_id": ctx.home_id,
        "permit": permit,
        "duration": duration,
        "until": now_ms() + duration * 1000,
    }
    return ok(reply, 202)


async def list_notifications(ctx: Ctx) -> Response:
    """From the history schema (every notification kept there); without it, the latest
    ones the Redis sink kept (stores.recent_events)."""
    b = ctx.backend
    limit = int(ctx.query.get("limit", 50))
    items = await b.run(b.store.notifications, ctx.home_id, limit)
    source = "history"
    if items is None:
        source = "recent"
        items = []
        if b.recent is not None:
            items = await b.run(b.recent.notifications, ctx.home_id, limit)
    return ok({"home_id": ctx.home_id, "source": source, "notifications": items})


async def post_voice(ctx: Ctx) -> Response:
    raise ApiError(
        501,
        "voice control is not available yet: the intent parser and speech-to-text land with "
        "the voice issue; use POST /v1/homes/{home_id}/commands meanwhile",
    )


ENDPOINTS = [
    Endpoint(
        "POST",
        "/v1/homes/{home_id}/discovery/permit",
        post_permit,
        Permission.CONFIGURE,
        "Open (or close, with permit=false) pairing on the home's hub",
        "devices",
        {202: Reply("Sent to the hub", PERMIT_REPLY)},
        body=PERMIT_BODY,
        body_required=False,
    ),
    Endpoint(
        "GET",
        "/v1/homes/{home_id}/notifications",
        list_notifications,
        Permission.VIEW,
        "Alerts: security events, devices offline, low battery, automation notify",
        "notifications",
        {200: Reply("Notifications, newest first", NOTIFICATIONS_REPLY)},
        query=(Param("limit", {"type": "integer", "minimum": 1, "maximum": 500}, "at most"),),
    ),
    Endpoint(
        "POST",
        "/v1/homes/{home_id}/voice",
        post_voice,
        Permission.CONTROL,
        "Voice command (text or audio/wav): not implemented yet, answers 501",
        "voice",
        {501: Reply("Not implemented yet", ERROR_SCHEMA)},
        body=VOICE_BODY,
        body_content_types=("application/json", "audio/wav"),
        query=(Param("dry_run", {"type": "boolean"}, "parse without acting"),),
    ),
]
