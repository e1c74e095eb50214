"""Automations (Home Assistant's model, CONTRACT.md section 5): stored, checked, listed.

The document: ``{"alias", "mode"?, "enabled"?, "triggers": [...], "conditions"?: [...],
"actions": [...]}``; ``domain.automation.parse`` says what each trigger, condition and
action may hold and checks it (times that exist, readable durations, attributes and
commands the capability table has). Here the home is checked too: every device, group
and scene the automation names must exist, and a command must suit its device. Errors
name the path (``triggers[1].attribute``).

Running them is the automation engine's job; ``GET .../automations/{a}/runs`` lists the
runs it reported on ``homestream.automations.runs`` (kept in Redis by the fan-out).
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from domain.automation.model import CommandAction, references
from domain.automation.parse import LOG_LEVELS, AutomationInvalid, parse
from gateway.api import Ctx, Endpoint, Param, Reply, ok
from gateway.errors import ApiError, validation_error
from gateway.roles import Permission
from gateway.routes.common import check_command, doc_endpoints

OBJECT_LIST = {"type": "array", "maxItems": 100, "items": {"type": "object"}}
AUTOMATION_BODY = {
    "type": "object",
    "required": ["alias", "triggers", "actions"],
    "additionalProperties": False,
    "properties": {
        "alias": {"type": "string", "minLength": 1, "maxLength": 200},
        "description": {"type": "string", "maxLength": 2000},
        "enabled": {"type": "boolean"},
        "mode": {"type": "string", "enum": ["single", "restart", "queued", "parallel"]},
        "max": {"type": "integer", "minimum": 1, "maximum": 100},
        "max_exceeded": {"type": "string", "enum": list(LOG_LEVELS)},
        "triggers": {**OBJECT_LIST, "minItems": 1},
        "conditions": OBJECT_LIST,
        "actions": {**OBJECT_LIST, "minItems": 1},
    },
}
RUNS_REPLY = {
    "type": "object",
    "required": ["home_id", "automation_id", "runs"],
    "properties": {
        "home_id": {"type": "string"},
        "automation_id": {"type": "string"},
        "runs": {"type": "array", "items": {"type": "object"}},
    },
}


async def check_automation(ctx: Ctx, doc: dict[str, Any]) -> None:
    """422 for what the schema cannot say: the document's own rules (domain.automation),
    then devices, groups and scenes it names that the home does not have, and commands a
    named device cannot take."""
    try:
        automation = parse(doc)
    except AutomationInvalid as exc:
        raise validation_error(exc.problems) from None
    b = ctx.backend
    devices = {d["device_id"]: d for d in await b.run(b.devices.devices, ctx.home_id)}
    problems: list[tuple[str, str]] = []
    for ref in references(automation):
        if ref.kind == "device" and ref.id not in devices:
            problems.append((ref.path, f"device {ref.id!r} is not in home {ctx.home_id!r}"))
        elif ref.kind != "device" and (
            await b.run(b.store.get_doc, ctx.home_id, ref.kind, ref.id) is None
        ):
            problems.append((ref.path, f"{ref.kind} {ref.id!r} does not exist"))
    for action in automation.actions:
        if isinstance(action, CommandAction) and action.device_id in devices:
            device = devices[action.device_id]
            try:
                check_command(
                    device, action.capability, action.command, action.parameters, action.path
                )
            except ApiError as exc:
                problems += [(d["path"], d["message"]) for d in exc.details or []]
    if problems:
        raise validation_error(problems)


async def list_runs(ctx: Ctx) -> Response:
    b = ctx.backend
    automation_id = ctx.path["automation_id"]
    if await b.run(b.store.get_doc, ctx.home_id, "automation", automation_id) is None:
        raise ApiError(404, f"automation {automation_id!r} not found")
    limit = int(ctx.query.get("limit", 50))
    runs: list[dict[str, Any]] = []
    if b.recent is not None:
        runs = await b.run(b.recent.runs, ctx.home_id, automation_id, limit)
    return ok({"home_id": ctx.home_id, "automation_id": automation_id, "runs": runs})


ENDPOINTS = [
    *doc_endpoints("automation", "automations", AUTOMATION_BODY, check_automation, "automation"),
    Endpoint(
        "GET",
        "/v1/homes/{home_id}/automations/{automation_id}/runs",
        list_runs,
        Permission.VIEW,
        "The latest runs of an automation, newest first",
        "automations",
        {200: Reply("Runs", RUNS_REPLY)},
        query=(Param("limit", {"type": "integer", "minimum": 1, "maximum": 100}, "at most"),),
    ),
]
