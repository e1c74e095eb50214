"""Commands: ``POST /v1/homes/{h}/commands`` and ``GET .../commands/{id}``.

A command is checked against the device's capabilities first (422 naming the field, e.g.
``parameters.brightness``), then produced as a ``CommandRequested`` with a new
``command_id``; the stream worker validates, dispatches and tracks it. Its status steps come
back on ``homestream.commands.status``: the Redis sink keeps the latest in the command log
(``stores.command_log``), and this process answers from what its own feed saw first, so a
GET does not wait for the sink (``gateway.command_statuses``).
``"wait": true`` holds the reply until a final status (COMPLETED, FAILED, TIMEOUT) or the
command's timeout + 1 s, at most 10 s, and returns whatever status it has then.

Read your writes: a COMPLETED can reach the gateway before the device's new state does
(the hub's ack and its state report travel on different topics, and the device state the
REST routes read is written by the Redis sink, a moment after the status). So a waited
COMPLETED reply is held until the device's state (``GET .../devices/{d}`` and its shadow)
shows the command's desired state, at most ``SETTLE_S`` more; a device that never reports
it (say it clamps the value) gets its reply after that bound. docs/gateway.md.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.responses import Response

from domain.commands import CommandRejected, desired_satisfied, plan_command
from domain.lifecycle import FINAL, aggregate
from gateway.api import Ctx, Endpoint, Reply, ok
from gateway.errors import ApiError
from gateway.roles import Permission
from gateway.routes.common import (
    COMMAND_STATUS_SCHEMA,
    DEVICE_REF,
    PARAMETERS,
    check_command,
    device_or_404,
    send_command,
    wait_budget,
)

COMMAND_BODY = {
    "type": "object",
    "required": ["device_id", "capability", "command"],
    "additionalProperties": False,
    "properties": {
        "device_id": DEVICE_REF,
        "capability": {"type": "string", "minLength": 1, "maxLength": 64},
        "command": {"type": "string", "minLength": 1, "maxLength": 64},
        "parameters": PARAMETERS,
        "wait": {"type": "boolean", "description": "reply with the final status (max 10 s)"},
        "timeout_ms": {"type": "integer", "minimum": 100, "maximum": 60_000},
        "request_id": {"type": "string", "maxLength": 128},
    },
}


async def post_command(ctx: Ctx) -> Response:
    b = ctx.backend
    body: dict[str, Any] = ctx.body
    device = await device_or_404(ctx, body["device_id"])
    check_command(device, body["capability"], body["command"], body.get("parameters"))
    status = await b.run(
        send_command,
        b,
        ctx.home_id,
        device_id=body["device_id"],
        capability=body["capability"],
        command=body["command"],
        parameters=body.get("parameters"),
        requested_by=ctx.user or "",
        timeout_ms=body.get("timeout_ms"),
        request_id=body.get("request_id"),
    )
    b.fanout.note_status(status)
    if not body.get("wait"):
        return ok(status, 202)
    final = await b.fanout.wait_status(status["command_id"], wait_budget(b, body.get("timeout_ms")))
    if final and final.get("status") == "COMPLETED":
        await settle(ctx, device, body)
    return ok({**status, **(final or {})}, 200)


SETTLE_S = 2.0
SETTLE_POLL_S = 0.05


async def settle(ctx: Ctx, device: dict[str, Any], body: dict[str, Any]) -> bool:
    """Wait until the device's stored state shows what the command asked for (at most
    SETTLE_S); True when it does."""
    b = ctx.backend
    try:
        desired = plan_command(
            device.get("capabilities") or [],
            body["capability"],
            body["command"],
            body.get("parameters") or {},
            device.get("state") or {},
        )
    except CommandRejected:
        return False
    deadline = asyncio.get_running_loop().time() + SETTLE_S
    while True:
        now = await b.run(b.devices.device, ctx.home_id, body["device_id"])
        if now is not None and desired_satisfied(desired, now.get("state") or {}):
            return True
        if asyncio.get_running_loop().time() >= deadline:
            return False
        await asyncio.sleep(SETTLE_POLL_S)


async def command_status(ctx: Ctx, command_id: str) -> dict[str, Any] | None:
    """The latest status of a command of this home (a group command: with its members)."""
    b = ctx.backend
    current = await b.fanout.status(command_id)
    if current is None:
        current = await b.run(b.store.command_outcome, ctx.home_id, command_id)
    if current is None or current.get("home_id") not in (None, ctx.home_id):
        return None
    children = current.get("children")
    if isinstance(children, list):
        commands = []
        for child in children:
            st = await b.fanout.status(str(child.get("command_id")))
            commands.append({**child, **(st or {})})
        # The worker's own final status of the group command is the word on it (it knows
        # members the gateway could not see); until then, what the members say.
        own = current.get("status")
        current = {
            **{k: v for k, v in current.items() if k != "children"},
            "status": own if own in FINAL else aggregate([c.get("status") for c in commands]),
            "commands": commands,
        }
    return current


async def get_command(ctx: Ctx) -> Response:
    current = await command_status(ctx, ctx.path["command_id"])
    if current is None:
        raise ApiError(404, f"command {ctx.path['command_id']!r} not found in {ctx.home_id!r}")
    return ok(current)


ENDPOINTS = [
    Endpoint(
        "POST",
        "/v1/homes/{home_id}/commands",
        post_command,
        Permission.CONTROL,
        "Send a command to a device",
        "commands",
        {
            202: Reply(
                "Accepted (PENDING); follow it with GET .../commands/{id}", COMMAND_STATUS_SCHEMA
            ),
            200: Reply(
                "With wait: the final status, or the latest one at the wait's end",
                COMMAND_STATUS_SCHEMA,
            ),
        },
        body=COMMAND_BODY,
    ),
    Endpoint(
        "GET",
        "/v1/homes/{home_id}/commands/{command_id}",
        get_command,
        Permission.VIEW,
        "A command with its latest status",
        "commands",
        {200: Reply("The command", COMMAND_STATUS_SCHEMA)},
    ),
]
