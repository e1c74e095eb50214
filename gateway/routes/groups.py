"""Groups of devices ("all lights", "living room lights") and commands to a whole group.

A group is a stored document ``{"name", "devices": [device ids], "room"?}``. A group
command fans out: one ``CommandRequested`` per member device that has the capability,
each with ``group_id`` and ``parent_command_id`` = the group command's id. Members without
the capability (or gone from the home) are listed under ``skipped``.
``GET .../commands/{id}`` of the group command shows every member command and one
overall status (COMPLETED when all completed).
"""

from __future__ import annotations

import uuid
from typing import Any

from starlette.responses import Response

from domain.lifecycle import aggregate
from gateway.api import Ctx, Endpoint, Reply, ok
from gateway.backend import Backend
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
    send_command,
    wait_all,
    wait_budget,
)

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


async def fan_out(
    backend: Backend,
    home: str,
    group_id: str,
    *,
    capability: str,
    command: str,
    parameters: dict[str, Any] | None,
    requested_by: str,
    timeout_ms: int | None = None,
    request_id: str | None = None,
    parent_command_id: str | None = None,
    source: str = "group",
) -> dict[str, Any]:
    """Send a group command; returns the group command's record (not yet waited for).

    404 when the group does not exist; 422 when no member can take the command."""
    group = await backend.run(backend.store.get_doc, home, "group", group_id)
    if group is None:
        raise ApiError(404, f"group {group_id!r} not found")
    devices = {d["device_id"]: d for d in await backend.run(backend.devices.devices, home)}
    parent = parent_command_id or str(uuid.uuid4())
    targets: list[str] = []
    skipped: list[dict[str, Any]] = []
    first_problem: ApiError | None = None
    for device_id in group.get("devices") or []:
        device = devices.get(device_id)
        if device is None:
            skipped.append({"device_id": device_id, "reason": "no longer in the home"})
            continue
        try:
            check_command(device, capability, command, parameters)
        except ApiError as exc:
            first_problem = first_problem or exc
            skipped.append({"device_id": device_id, "reason": exc.message})
            continue
        targets.append(device_id)
    if not targets:
        if first_problem is not None:
            raise first_problem
        raise validation_error([("group_id", f"group {group_id!r} has no devices to command")])

    def send_all() -> list[dict[str, Any]]:
        return [
            send_command(
                backend,
                home,
                device_id=device_id,
                capability=capability,
                command=command,
                parameters=parameters,
                requested_by=requested_by,
                timeout_ms=timeout_ms,
                request_id=request_id,
                group_id=group_id,
                parent_command_id=parent,
                source=source,
            )
            for device_id in targets
        ]

    children = await backend.run(send_all)
    for child in children:
        backend.fanout.note_status(child)
    record = {
        "command_id": parent,
        "home_id": home,
        "group_id": group_id,
        "device_id": None,
        "capability": capability,
        "command": command,
        "status": "PENDING",
        "request_id": request_id,
        "ts": now_ms(),
        "children": [
            {"device_id": c["device_id"], "command_id": c["command_id"]} for c in children
        ],
    }
    await backend.run(backend.fanout.commands.record, record)
    return {**record, "skipped": skipped, "commands": children}


async def post_group_command(ctx: Ctx) -> Response:
    b = ctx.backend
    body = ctx.body
    record = await fan_out(
        b,
        ctx.home_id,
        ctx.path["group_id"],
        capability=body["capability"],
        command=body["command"],
        parameters=body.get("parameters"),
        requested_by=ctx.user or "",
        timeout_ms=body.get("timeout_ms"),
        request_id=body.get("request_id"),
    )
    record.pop("children", None)
    if not body.get("wait"):
        return ok(record, 202)
    ids = [c["command_id"] for c in record["commands"]]
    final = await wait_all(b, ids, wait_budget(b, body.get("timeout_ms")))
    commands = [{**c, **(final.get(c["command_id"]) or {})} for c in record["commands"]]
    status = aggregate([c.get("status") for c in commands])
    return ok({**record, "status": status, "commands": commands}, 200)


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
