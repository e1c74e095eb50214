"""Automations (Home Assistant's model, CONTRACT.md section 5): stored, checked, listed.

The document: ``{"alias", "mode"?, "enabled"?, "triggers": [...], "conditions"?: [...],
"actions": [...]}``. Each trigger names its kind in ``trigger`` (or Home Assistant's older
``platform``): state, numeric_state, time, time_pattern, event. Each condition names its
kind in ``condition``: state, numeric_state, time, and, or, not. Each action is an object
naming what it does: ``command`` (device_id or group_id, capability, command, parameters),
``scene`` (scene_id), ``delay``, ``notify`` (message) or ``wait_for_trigger``. Errors name
the path (``triggers[1].attribute``).

Running them is the automation engine's job; ``GET .../automations/{a}/runs`` lists the
runs it reported on ``homestream.automations.runs`` (kept in Redis by the fan-out).
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from gateway.api import Ctx, Endpoint, Param, Reply, ok
from gateway.errors import ApiError, validation_error
from gateway.roles import Permission
from gateway.routes.common import doc_endpoints

TRIGGERS = ("state", "numeric_state", "time", "time_pattern", "event")
CONDITIONS = ("state", "numeric_state", "time", "and", "or", "not")
ACTIONS = ("command", "scene", "delay", "notify", "wait_for_trigger")

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

_TRIGGER_NEEDS = {
    "state": ("device_id",),
    "numeric_state": ("device_id", "attribute"),
    "time": ("at",),
    "time_pattern": (),
    "event": ("event",),
}
_CONDITION_NEEDS = {
    "state": ("device_id",),
    "numeric_state": ("device_id", "attribute"),
    "time": (),
    "and": ("conditions",),
    "or": ("conditions",),
    "not": ("conditions",),
}


def _check_triggers(items: Any, path: str, problems: list[tuple[str, str]]) -> None:
    for i, trig in enumerate(items or []):
        p = f"{path}[{i}]"
        if not isinstance(trig, dict):
            problems.append((p, "must be an object"))
            continue
        kind = trig.get("trigger", trig.get("platform"))
        if kind not in TRIGGERS:
            problems.append((f"{p}.trigger", f"must be one of {', '.join(TRIGGERS)}, got {kind!r}"))
            continue
        for key in _TRIGGER_NEEDS[kind]:
            if key not in trig:
                problems.append((f"{p}.{key}", f"is required for a {kind} trigger"))
        if kind == "numeric_state" and "above" not in trig and "below" not in trig:
            problems.append((p, "a numeric_state trigger needs above or below"))


def check_conditions(items: Any, path: str, problems: list[tuple[str, str]]) -> None:
    if items is None:
        return
    if not isinstance(items, list):
        problems.append((path, "must be an array"))
        return
    for i, cond in enumerate(items):
        p = f"{path}[{i}]"
        if not isinstance(cond, dict):
            problems.append((p, "must be an object"))
            continue
        kind = cond.get("condition")
        if kind not in CONDITIONS:
            problems.append(
                (f"{p}.condition", f"must be one of {', '.join(CONDITIONS)}, got {kind!r}")
            )
            continue
        for key in _CONDITION_NEEDS[kind]:
            if key not in cond:
                problems.append((f"{p}.{key}", f"is required for a {kind} condition"))
        if kind in ("and", "or", "not"):
            check_conditions(cond.get("conditions"), f"{p}.conditions", problems)


def _check_actions(items: Any, path: str, problems: list[tuple[str, str]]) -> None:
    for i, action in enumerate(items or []):
        p = f"{path}[{i}]"
        if not isinstance(action, dict):
            problems.append((p, "must be an object"))
            continue
        kind = action.get("action", action.get("type"))
        if kind is None:
            kind = next((k for k in ACTIONS if k in action), None)
        if kind not in ACTIONS:
            problems.append((p, f"must say what it does: one of {', '.join(ACTIONS)}"))
            continue
        if kind == "command":
            nested = action.get("command")
            body: dict[str, Any] = nested if isinstance(nested, dict) else action
            if ("device_id" in body) == ("group_id" in body):
                problems.append((p, "a command action needs exactly one of device_id, group_id"))
            for key in ("capability",):
                if key not in body:
                    problems.append((f"{p}.{key}", "is required for a command action"))
        elif (
            kind == "scene"
            and "scene_id" not in action
            and not isinstance(action.get("scene"), str)
        ):
            problems.append((f"{p}.scene_id", "is required for a scene action"))
        elif (
            kind == "notify"
            and "message" not in action
            and not isinstance(action.get("notify"), dict | str)
        ):
            problems.append((f"{p}.message", "is required for a notify action"))
        elif kind == "wait_for_trigger":
            triggers = action.get("wait_for_trigger", action.get("triggers"))
            if not isinstance(triggers, list) or not triggers:
                problems.append((f"{p}.wait_for_trigger", "needs a list of triggers"))
            else:
                _check_triggers(triggers, f"{p}.wait_for_trigger", problems)


async def check_automation(ctx: Ctx, doc: dict[str, Any]) -> None:
    problems: list[tuple[str, str]] = []
    _check_triggers(doc.get("triggers"), "triggers", problems)
    check_conditions(doc.get("conditions"), "conditions", problems)
    _check_actions(doc.get("actions"), "actions", problems)
    if problems:
        raise validation_error(problems)


async def list_runs(ctx: Ctx) -> Response:
    b = ctx.backend
    automation_id = ctx.path["automation_id"]
    if await b.run(b.store.get_doc, ctx.home_id, "automation", automation_id) is None:
        raise ApiError(404, f"automation {automation_id!r} not found")
    limit = int(ctx.query.get("limit", 50))
    runs: list[dict[str, Any]] = []
    if b.feed_stores is not None:
        runs = await b.run(b.feed_stores.runs, ctx.home_id, automation_id, limit)
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
