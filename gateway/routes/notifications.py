"""A home's notifications and each member's delivery channels (docs/notifications.md).

- ``GET .../notifications``: the alerts, newest first, each with the caller's own
  deliveries of it (``deliveries``: channel masked, status, attempts, last error).
- ``GET/PUT .../notifications/channels``: the caller's channels for this home,
  ``[{"url": "<apprise URL>", "kinds": [...]?}]``. Any member may set their own (the
  ``view`` permission: it concerns only them); each URL must be one apprise can use (422
  at ``[i].url`` otherwise). The URLs are secrets: only their owner reads them back, and
  logs show ``domain.notify.mask_url`` of them.

The ``homestream notify`` service delivers; this module only stores and shows.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.responses import Response

from domain.notify import KINDS, MAX_CHANNELS, MAX_URL, mask_url
from gateway.api import Ctx, Endpoint, Param, Reply, ok
from gateway.errors import validation_error
from gateway.roles import Permission

log = logging.getLogger("homestream.gateway")

DELIVERY = {
    "type": "object",
    "required": ["channel", "status", "attempts"],
    "properties": {
        "channel": {"type": "string", "description": "scheme://host of the channel's URL"},
        "status": {"type": "string", "enum": ["pending", "delivered", "failed"]},
        "attempts": {"type": "integer"},
        "last_error": {"type": "string", "nullable": True},
        "next_at": {"type": "integer", "nullable": True},
        "finished_at": {"type": "integer", "nullable": True},
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
                    "deliveries": {
                        "type": "array",
                        "items": DELIVERY,
                        "description": "the caller's deliveries of it to their channels",
                    },
                },
            },
        },
    },
}
CHANNEL = {
    "type": "object",
    "required": ["url"],
    "additionalProperties": False,
    "properties": {
        "url": {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_URL,
            "description": "an apprise URL: json://host/path, mailto://user:pass@host, "
            "ntfy://topic, ...",
        },
        "kinds": {
            "type": "array",
            "minItems": 1,
            "maxItems": len(KINDS),
            "items": {"type": "string", "enum": list(KINDS)},
            "description": "only these kinds (omitted: every kind)",
        },
    },
}
CHANNELS = {"type": "array", "maxItems": MAX_CHANNELS, "items": CHANNEL}


async def list_notifications(ctx: Ctx) -> Response:
    """From the history schema (every notification kept there); without it, the latest
    ones the Redis sink kept (stores.recent_events). Each with the caller's deliveries."""
    b = ctx.backend
    limit = int(ctx.query.get("limit", 50))
    items = await b.run(b.store.notifications, ctx.home_id, limit)
    source = "history"
    if items is None:
        source = "recent"
        items = []
        if b.recent is not None:
            items = await b.run(b.recent.notifications, ctx.home_id, limit)
    ids = [str(n["event_id"]) for n in items if n.get("event_id")]
    assert ctx.user is not None
    mine = await b.run(b.store.deliveries, ctx.home_id, ctx.user, ids) if ids else {}
    items = [{**n, "deliveries": mine.get(str(n.get("event_id")), [])} for n in items]
    return ok({"home_id": ctx.home_id, "source": source, "notifications": items})


async def get_channels(ctx: Ctx) -> Response:
    b = ctx.backend
    assert ctx.user is not None
    return ok(await b.run(b.store.channels, ctx.home_id, ctx.user))


async def put_channels(ctx: Ctx) -> Response:
    from stores.notify_channels import channel_problems

    b = ctx.backend
    assert ctx.user is not None
    body: list[dict[str, Any]] = [dict(c) for c in ctx.body]
    problems = await b.run(channel_problems, body)  # apprise parses each URL
    if problems:
        raise validation_error(problems)
    for c in body:  # each kind once, in the order given
        if c.get("kinds") is not None:
            c["kinds"] = list(dict.fromkeys(c["kinds"]))
    await b.run(b.store.set_channels, ctx.home_id, ctx.user, body)
    log.info(
        "notification channels set",
        extra={
            "home_id": ctx.home_id,
            "user": ctx.user,
            "channels": [mask_url(c["url"]) for c in body],
        },
    )
    return ok(await b.run(b.store.channels, ctx.home_id, ctx.user))


_H = "/v1/homes/{home_id}/notifications"
ENDPOINTS = [
    Endpoint(
        "GET",
        _H,
        list_notifications,
        Permission.VIEW,
        "Alerts: security events, devices offline, low battery, automation notify",
        "notifications",
        {
            200: Reply(
                "Notifications, newest first, with your deliveries of each", NOTIFICATIONS_REPLY
            )
        },
        query=(Param("limit", {"type": "integer", "minimum": 1, "maximum": 500}, "at most"),),
    ),
    Endpoint(
        "GET",
        _H + "/channels",
        get_channels,
        Permission.VIEW,
        "Your delivery channels for this home (apprise URLs; yours only)",
        "notifications",
        {200: Reply("Your channels, in order", CHANNELS)},
    ),
    Endpoint(
        "PUT",
        _H + "/channels",
        put_channels,
        Permission.VIEW,
        "Set your delivery channels for this home: apprise URLs (webhook JSON, email, ntfy, "
        "...), each optionally limited to some notification kinds; [] for none",
        "notifications",
        {200: Reply("Your channels as stored", CHANNELS)},
        body=CHANNELS,
    ),
]
