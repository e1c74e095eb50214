"""Pairing (notifications: ``gateway.routes.notifications``; voice: ``gateway.routes.voice``)."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from gateway.api import Ctx, Endpoint, Reply, ok
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
]
