"""Scenes: stored lists of actions, and running them.

A scene is ``{"name", "actions": [{"device_id" | "group_id", "capability", "command",
"parameters"?, "delay_ms"?}]}``. ``delay_ms`` waits before that action (relative to the
previous one); all delays of a scene add up to at most 60 s.

``POST .../scenes/{s}/run`` (also used by the WebSocket's ``scene.run``, through
:func:`run_scene`): a ``SceneRun`` STARTED event, then the actions in order, each one
command (or a group's fan-out) with ``parent_command_id`` = the run id; then it waits for
the commands' final statuses (at most 10 s after the last action) and produces the
finishing ``SceneRun``. An action succeeded when all its commands COMPLETED. The reply:
``{"status": COMPLETED | PARTIAL | FAILED, "actions_succeeded", "actions_failed",
"execution_time_ms", "run_id", "scene_id", "command_ids"}``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from starlette.responses import Response

from gateway.api import Ctx, Endpoint, Reply, ok
from gateway.backend import Backend
from gateway.errors import ApiError, validation_error
from gateway.roles import Permission
from gateway.routes.common import (
    DEVICE_REF,
    NAME,
    PARAMETERS,
    check_command,
    doc_endpoints,
    send_command,
    wait_all,
)
from gateway.routes.groups import fan_out
from topics import catalogue as t

MAX_TOTAL_DELAY_MS = 60_000
RUN_WAIT_S = 10.0

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
    },
}
RUN_BODY = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"request_id": {"type": "string", "maxLength": 128}},
}
RUN_REPLY = {
    "type": "object",
    "required": ["status", "actions_succeeded", "actions_failed", "execution_time_ms"],
    "properties": {
        "status": {"type": "string", "enum": ["COMPLETED", "PARTIAL", "FAILED"]},
        "actions_succeeded": {"type": "integer"},
        "actions_failed": {"type": "integer"},
        "execution_time_ms": {"type": "integer"},
        "run_id": {"type": "string"},
        "scene_id": {"type": "string"},
        "command_ids": {"type": "array", "items": {"type": "string"}},
        "errors": {"type": "array", "items": {"type": "object"}},
    },
}


async def check_scene(ctx: Ctx, doc: dict[str, Any]) -> None:
    b = ctx.backend
    problems: list[tuple[str, str]] = []
    devices = {d["device_id"]: d for d in await b.run(b.devices.devices, ctx.home_id)}
    total = 0
    for i, action in enumerate(doc["actions"]):
        path = f"actions[{i}]"
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


def _scene_run(backend: Backend, home: str, **fields: Any) -> None:
    backend.producer.send(t.SCENES_RUNS, "SceneRun", home, **fields)


async def run_scene(
    backend: Backend,
    home: str,
    scene_id: str,
    requested_by: str,
    request_id: str | None = None,
    *,
    wait_s: float | None = None,
) -> dict[str, Any]:
    """Run a scene of ``home`` (404 when there is none); returns the run's outcome."""
    scene = await backend.run(backend.store.get_doc, home, "scene", scene_id)
    if scene is None:
        raise ApiError(404, f"scene {scene_id!r} not found")
    run_id = str(uuid.uuid4())
    started = time.monotonic()
    common = {
        "scene_id": scene_id,
        "run_id": run_id,
        "requested_by": requested_by,
        "request_id": request_id,
    }
    await backend.run(
        _scene_run,
        backend,
        home,
        status="STARTED",
        actions_succeeded=0,
        actions_failed=0,
        execution_time_ms=None,
        command_ids=[],
        error=None,
        **common,
    )
    per_action: list[list[str]] = []
    errors: list[dict[str, Any]] = []
    for i, action in enumerate(scene.get("actions") or []):
        delay = int(action.get("delay_ms") or 0)
        if delay:
            await asyncio.sleep(delay / 1000)
        try:
            if action.get("group_id"):
                record = await fan_out(
                    backend,
                    home,
                    action["group_id"],
                    capability=action["capability"],
                    command=action["command"],
                    parameters=action.get("parameters"),
                    requested_by=requested_by,
                    request_id=request_id,
                    source="scene",
                )
                per_action.append([c["command_id"] for c in record["commands"]])
            else:
                device = await backend.run(backend.devices.device, home, action["device_id"])
                if device is None:
                    raise ApiError(404, f"device {action['device_id']!r} is not in the home")
                check_command(
                    device, action["capability"], action["command"], action.get("parameters")
                )
                status = await backend.run(
                    send_command,
                    backend,
                    home,
                    device_id=action["device_id"],
                    capability=action["capability"],
                    command=action["command"],
                    parameters=action.get("parameters"),
                    requested_by=requested_by,
                    request_id=request_id,
                    parent_command_id=run_id,
                    source="scene",
                )
                backend.fanout.note_status(status)
                per_action.append([status["command_id"]])
        except ApiError as exc:
            per_action.append([])
            errors.append({"action": i, "message": exc.message})
    ids = [cid for group in per_action for cid in group]
    budget = backend.scene_wait_s if wait_s is None else wait_s
    final = await wait_all(backend, ids, budget) if ids else {}
    succeeded = sum(
        1
        for group in per_action
        if group and all((final.get(c) or {}).get("status") == "COMPLETED" for c in group)
    )
    failed = len(per_action) - succeeded
    outcome = "COMPLETED" if failed == 0 else ("PARTIAL" if succeeded else "FAILED")
    elapsed = int((time.monotonic() - started) * 1000)
    await backend.run(
        _scene_run,
        backend,
        home,
        status=outcome,
        actions_succeeded=succeeded,
        actions_failed=failed,
        execution_time_ms=elapsed,
        command_ids=ids,
        error="; ".join(e["message"] for e in errors) or None,
        **common,
    )
    return {
        "status": outcome,
        "actions_succeeded": succeeded,
        "actions_failed": failed,
        "execution_time_ms": elapsed,
        "run_id": run_id,
        "scene_id": scene_id,
        "command_ids": ids,
        "errors": errors,
    }


async def post_scene_run(ctx: Ctx) -> Response:
    body = ctx.body or {}
    result = await run_scene(
        ctx.backend, ctx.home_id, ctx.path["scene_id"], ctx.user or "", body.get("request_id")
    )
    return ok(result)


ENDPOINTS = [
    *doc_endpoints("scene", "scenes", SCENE_BODY, check_scene, "scene"),
    Endpoint(
        "POST",
        "/v1/homes/{home_id}/scenes/{scene_id}/run",
        post_scene_run,
        Permission.CONTROL,
        "Run a scene: its actions in order, with their delays; waits for the outcome",
        "scenes",
        {200: Reply("The run's outcome", RUN_REPLY)},
        body=RUN_BODY,
        body_required=False,
    ),
]
