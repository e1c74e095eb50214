"""Groups of devices ("all lights", "living room lights") and commands to a whole group.

A group is a stored document ``{"name", "devices": [device ids], "room"?}``. A group
command is one ``CommandRequested`` with ``group_id`` and no ``device_id``: the stream
worker fans it out (``streams.fold.groups``), one command per member device that has the
capability, each with ``group_id``, ``parent_command_id`` = the group command's id and an
id derived from it (``domain.groups.child_command_id``), and reports the group command's
own status: COMPLETED when all members completed, else FAILED (TIMEOUT when none failed
outright). The gateway expands the group the same way (``domain.groups.plan_group``) over
its view of the devices, to refuse a command no member can take (422) and to answer at once
with the members' commands; members without the capability (or gone from the home) are
listed under ``skipped``. ``GET .../commands/{id}`` of the group command shows every member
command and one overall status; ``"wait": true`` waits for the worker's final status.

The group command's entry in the command log (``stores.command_log``) lists its
``children``: no record on ``homestream.commands.status`` carries them, so the Redis sink,
which writes the worker's statuses of it there, never does. The gateway writes that entry
and the members' PENDING before the request goes out, so a status of the worker's that
comes back at once merges into an entry that already has them.
"""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

from starlette.responses import Response

from domain.groups import child_command_id, plan_group
from domain.lifecycle import FINAL, aggregate
from gateway.api import Ctx, Endpoint, Reply, ok
from gateway.errors import ApiError, validation_error
from gateway.roles import Permission
from gateway.routes.common import (
    COMMAND_STATUS_SCHEMA,
    DEVICE_REF,
    NAME,
    PARAMETERS,
    check_command,
    check_devices_exist,
    doc_endpoints,
    now_ms,
    wait_budget,
)
from topics import catalogue as t

GROUP_BODY = {
    "type": "object",
    "required": ["name", "devices"],
    "additionalProperties": False,
    "properties": {
        "name": NAME,
        "devices": {
            "type": "array",
            "maxItems": 500,
            "items": DEVICE_REF,
        },
        "room": {"type": "string", "maxLength": 200, "nullable": True},
        "description": {"type": "string", "maxLength": 1000},
    },
}
GROUP_COMMAND_BODY = {
    "type": "object",
    "required": ["capability", "command"],
    "additionalProperties": False,
    "properties": {
        "capability": {"type": "string", "minLength": 1, "maxLength": 64},
        "command": {"type": "string", "minLength": 1, "maxLength": 64},
        "parameters": PARAMETERS,
        "wait": {"type": "boolean"},
        "timeout_ms": {"type": "integer", "minimum": 100, "maximum": 60_000},
        "request_id": {"type": "string", "maxLength": 128},
    },
}


async def check_group(ctx: Ctx, doc: dict[str, Any]) -> None:
    devices = doc.get("devices") or []
    dupes = sorted({d for d in devices if devices.count(d) > 1})
    if dupes:
        raise validation_error([("devices", f"lists {dupes[0]!r} more than once")])
    await check_devices_exist(ctx, [(f"devices[{i}]", d) for i, d in enumerate(devices)])


async def post_group_command(ctx: Ctx) -> Response:
    b, home, body = ctx.backend, ctx.home_id, ctx.body
    group_id = ctx.path["group_id"]
    group = await b.run(b.store.get_doc, home, "group", group_id)
    if group is None:
        raise ApiError(404, f"group {group_id!r} not found")
    devices = {d["device_id"]: d for d in await b.run(b.devices.devices, home)}
    capability, command = body["capability"], body["command"]
    parameters = body.get("parameters")
    plan = plan_group(
        group.get("devices") or [],
        lambda d: devices[d].get("capabilities") or [] if d in devices else None,
        capability,
        command,
        parameters,
    )
    if not plan.targets:
        first = next((devices[d] for d in group.get("devices") or [] if d in devices), None)
        if first is not None and plan.first_rejection is not None:
            check_command(first, capability, command, parameters)  # raises its 422
        raise validation_error([("group_id", f"group {group_id!r} has no devices to command")])
    parent = str(uuid.uuid4())
    issued = now_ms()
    timeout_ms = int(body.get("timeout_ms") or b.command_timeout_ms)
    common = {
        "home_id": home,
        "group_id": group_id,
        "capability": capability,
        "command": command,
        "status": "PENDING",
        "reason": None,
        "request_id": body.get("request_id"),
        "ts": issued,
    }
    children = [
        {
            **common,
            "command_id": child_command_id(parent, device),
            "device_id": device,
            "parent_command_id": parent,
        }
        for device in plan.targets
    ]
    record = {
        **common,
        "command_id": parent,
        "device_id": None,
        "parent_command_id": None,
        "children": [{k: c[k] for k in ("device_id", "command_id")} for c in children],
    }

    def send() -> None:
        # The log first: the worker's statuses of the group command, which may come back
        # at once, merge into a record that already lists its members.
        with contextlib.suppress(Exception):  # best effort; Kafka has the command
            for status in (record, *children):
                b.fanout.commands.record(status)
        b.producer.send(
            t.COMMANDS_REQUESTED,
            "CommandRequested",
            home,
            command_id=parent,
            device_id=None,
            group_id=group_id,
            capability=capability,
            command=command,
            parameters=dict(parameters or {}),
            requested_by=ctx.user or "",
            timeout_ms=timeout_ms,
            issued_at=issued,
            request_id=body.get("request_id"),
            parent_command_id=None,
        )
        b.metrics.count_command("group")

    await b.run(send)
    for status in (record, *children):
        b.fanout.note_status(status)
    skipped = [{"device_id": d, "reason": why} for d, why in plan.skipped]
    reply = {k: v for k, v in record.items() if k != "children"}
    reply |= {"skipped": skipped, "commands": children}
    if not body.get("wait"):
        return ok(reply, 202)
    final = await b.fanout.wait_status(parent, wait_budget(b, timeout_ms))
    commands = [{**c, **(await b.fanout.status(c["command_id"]) or {})} for c in children]
    status = (final or {}).get("status")
    if status not in FINAL:  # the worker's end did not come in time: what the members say
        status = aggregate([c.get("status") for c in commands])
    reason = (final or {}).get("reason")
    return ok({**reply, "status": status, "reason": reason, "commands": commands}, 200)


ENDPOINTS = [
    *doc_endpoints("group", "groups", GROUP_BODY, check_group, "group"),
    Endpoint(
        "POST",
        "/v1/homes/{home_id}/groups/{group_id}/commands",
        post_group_command,
        Permission.CONTROL,
        "Send a command to every device of a group (one command per device)",
        "groups",
        {
            202: Reply(
                "Accepted: the group command and one command per device", COMMAND_STATUS_SCHEMA
            ),
            200: Reply("With wait: the final statuses", COMMAND_STATUS_SCHEMA),
        },
        body=GROUP_COMMAND_BODY,
    ),
]
