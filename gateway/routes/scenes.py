"""Scenes: stored lists of actions, and running them.

A scene is ``{"name", "actions": [{"device_id" | "group_id", "capability", "command",
"parameters"?, "delay_ms"?, "conditions"?}], "conditions"?}``. ``delay_ms`` waits before
that action (relative to the previous one); all delays of a scene add up to at most 60 s.
``conditions`` (the automations' language, CONTRACT.md section 5) say when the scene's
actions, or one action, are sent: an action whose conditions do not hold is skipped.

``POST .../scenes/{s}/run`` (also the WebSocket's ``scene.run``, through :func:`run_scene`)
produces a ``SceneRequested``; the stream worker runs the scene (``streams.fold.scene_runs``):
a ``SceneRun`` STARTED, the actions' commands (those due at the same time together), and
the final ``SceneRun`` once every command is final. The request waits for that final
SceneRun on the fan-out, up to the scene's delays plus ``scene_wait_s``, and answers 200
``{"status": COMPLETED | PARTIAL | FAILED, "actions_succeeded", "actions_failed",
"actions_skipped", "execution_time_ms", "run_id", "scene_id", "command_ids", "errors"}``.
An action succeeded when all its commands COMPLETED. If the run has not ended by then
(no worker running), 202 with status STARTED: the run is the worker's, and its
``scene.status`` follows on the WebSocket. A gateway restarting mid-run loses nothing.
"""

from __future__ import annotations

import uuid
from typing import Any

from starlette.responses import Response

from domain.scene_conditions import read_conditions
from domain.scenes import MAX_TOTAL_DELAY_MS
from gateway.api import Ctx, Endpoint, Reply, ok
from gateway.automation_schema import typed_list
from gateway.backend import Backend
from gateway.errors import ApiError, validation_error
from gateway.roles import Permission
from gateway.routes.common import (
    DEVICE_REF,
    NAME,
    PARAMETERS,
    check_command,
    doc_endpoints,
)
from topics import catalogue as t

# The automations' conditions (checked by domain.scene_conditions.read_conditions).
CONDITION_LIST = typed_list("AutomationCondition")
ACTION = {
    "type": "object",
    "required": ["capability", "command"],
    "additionalProperties": False,
    "properties": {
        "device_id": DEVICE_REF,
        "group_id": {"type": "string", "format": "doc-id", "minLength": 1, "maxLength": 128},
        "capability": {"type": "string", "minLength": 1, "maxLength": 64},
        "command": {"type": "string", "minLength": 1, "maxLength": 64},
        "parameters": PARAMETERS,
        "delay_ms": {"type": "integer", "minimum": 0, "maximum": MAX_TOTAL_DELAY_MS},
        "conditions": CONDITION_LIST,
    },
}
SCENE_BODY = {
    "type": "object",
    "required": ["name", "actions"],
    "additionalProperties": False,
    "properties": {
        "name": NAME,
        "actions": {"type": "array", "minItems": 1, "maxItems": 100, "items": ACTION},
        "icon": {"type": "string", "maxLength": 64},
        "description": {"type": "string", "maxLength": 1000},
        "conditions": CONDITION_LIST,
    },
}
RUN_BODY = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"request_id": {"type": "string", "maxLength": 128}},
}
RUN_REPLY = {
    "type": "object",
    "required": [
        "status",
        "actions_succeeded",
        "actions_failed",
        "actions_skipped",
        "execution_time_ms",
    ],
    "properties": {
        "status": {"type": "string", "enum": ["COMPLETED", "PARTIAL", "FAILED"]},
        "actions_succeeded": {"type": "integer"},
        "actions_failed": {"type": "integer"},
        "actions_skipped": {"type": "integer"},
        "execution_time_ms": {"type": "integer"},
        "run_id": {"type": "string"},
        "scene_id": {"type": "string"},
        "command_ids": {"type": "array", "items": {"type": "string"}},
        "errors": {"type": "array", "items": {"type": "object"}},
    },
}
RUN_STARTED = {
    "type": "object",
    "required": ["status", "run_id", "scene_id"],
    "properties": {
        "status": {"type": "string", "enum": ["STARTED"]},
        "run_id": {"type": "string"},
        "scene_id": {"type": "string"},
        "actions_succeeded": {"type": "integer"},
        "actions_failed": {"type": "integer"},
        "actions_skipped": {"type": "integer"},
        "execution_time_ms": {"type": "integer", "nullable": True},
        "command_ids": {"type": "array", "items": {"type": "string"}},
        "errors": {"type": "array", "items": {"type": "object"}},
    },
}
RESULT_FIELDS = (
    "status",
    "actions_succeeded",
    "actions_failed",
    "actions_skipped",
    "execution_time_ms",
    "run_id",
    "scene_id",
    "command_ids",
    "errors",
)


async def check_scene(ctx: Ctx, doc: dict[str, Any]) -> None:
    b = ctx.backend
    problems: list[tuple[str, str]] = []
    problems += read_conditions(doc.get("conditions"), "conditions")[1]
    devices = {d["device_id"]: d for d in await b.run(b.devices.devices, ctx.home_id)}
    total = 0
    for i, action in enumerate(doc["actions"]):
        path = f"actions[{i}]"
        problems += read_conditions(action.get("conditions"), f"{path}.conditions")[1]
        total += int(action.get("delay_ms") or 0)
        has_dev, has_group = "device_id" in action, "group_id" in action
        if has_dev == has_group:
            problems.append((path, "give exactly one of device_id and group_id"))
            continue
        if has_dev:
            device = devices.get(action["device_id"])
            if device is None:
                problems.append(
                    (f"{path}.device_id", f"device {action['device_id']!r} is not in the home")
                )
                continue
            try:
                check_command(
                    device, action["capability"], action["command"], action.get("parameters"), path
                )
            except ApiError as exc:
                problems += [(d["path"], d["message"]) for d in exc.details or []]
        elif await b.run(b.store.get_doc, ctx.home_id, "group", action["group_id"]) is None:
            problems.append((f"{path}.group_id", f"group {action['group_id']!r} does not exist"))
    if total > MAX_TOTAL_DELAY_MS:
        problems.append(("actions", f"delays add up to {total} ms; at most {MAX_TOTAL_DELAY_MS}"))
    if problems:
        raise validation_error(problems)


def _total_delay_ms(scene: dict[str, Any]) -> int:
    return sum(int(a.get("delay_ms") or 0) for a in scene.get("actions") or [])


async def start_scene_run(
    backend: Backend,
    home: str,
    scene_id: str,
    requested_by: str,
    request_id: str | None = None,
) -> tuple[str, dict[str, Any]]:
    """Ask the stream worker to run a scene of ``home`` (404 when there is none): its
    ``run_id`` (whose end the fan-out now expects) and the scene."""
    scene = await backend.run(backend.store.get_doc, home, "scene", scene_id)
    if scene is None:
        raise ApiError(404, f"scene {scene_id!r} not found")
    run_id = str(uuid.uuid4())
    waits = backend.fanout.scenes
    waits.expect(run_id)  # before the request: an end that comes at once is not missed
    try:
        await backend.run(
            backend.producer.send,
            t.COMMANDS_REQUESTED,
            "SceneRequested",
            home,
            scene_id=scene_id,
            run_id=run_id,
            requested_by=requested_by,
            request_id=request_id,
        )
    except Exception:
        waits.forget(run_id)
        raise
    return run_id, scene


async def run_scene(
    backend: Backend,
    home: str,
    scene_id: str,
    requested_by: str,
    request_id: str | None = None,
) -> dict[str, Any]:
    """Ask the stream worker to run a scene of ``home`` (404 when there is none) and wait
    for its end; the reply's fields (status STARTED when the end did not come in time)."""
    run_id, scene = await start_scene_run(backend, home, scene_id, requested_by, request_id)
    budget = _total_delay_ms(scene) / 1000 + backend.scene_wait_s
    final = await backend.fanout.scenes.wait(run_id, budget)
    if final is None:
        return started(run_id, scene_id)
    return {k: final.get(k) for k in RESULT_FIELDS}


def started(run_id: str, scene_id: str) -> dict[str, Any]:
    """A run's reply before its end is known."""
    return {
        "status": "STARTED",
        "run_id": run_id,
        "scene_id": scene_id,
        "actions_succeeded": 0,
        "actions_failed": 0,
        "actions_skipped": 0,
        "execution_time_ms": None,
        "command_ids": [],
        "errors": [],
    }


async def post_scene_run(ctx: Ctx) -> Response:
    body = ctx.body or {}
    result = await run_scene(
        ctx.backend, ctx.home_id, ctx.path["scene_id"], ctx.user or "", body.get("request_id")
    )
    return ok(result, 202 if result["status"] == "STARTED" else 200)


ENDPOINTS = [
    *doc_endpoints("scene", "scenes", SCENE_BODY, check_scene, "scene"),
    Endpoint(
        "POST",
        "/v1/homes/{home_id}/scenes/{scene_id}/run",
        post_scene_run,
        Permission.CONTROL,
        "Run a scene: the stream worker sends its actions by their delays; waits for the outcome",
        "scenes",
        {
            200: Reply("The run's outcome", RUN_REPLY),
            202: Reply(
                "The run did not end in time (is a stream worker running?); it is the "
                "worker's, and its scene.status follows on the WebSocket",
                RUN_STARTED,
            ),
        },
        body=RUN_BODY,
        body_required=False,
    ),
]
