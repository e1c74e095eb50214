"""Scene runs: a SceneRequested becomes the scene's commands, step by step, and one
SceneRun at the start and one at the end.

On the request the run takes a copy of the scene (``fold.home_docs``; an edit meanwhile
does not change a run under way), says STARTED, and sends the first step: every action
due at offset 0, at once (``domain.scenes.steps``). Later steps are due at the run's
start plus their offset; the agenda (``fold.agenda``) has ticks visit the home then, so a
step goes out on the first tick at or after its time (ticks come every second).

Each action sends one command (a device) or one per member (a group, expanded here with
``domain.groups.plan_group``), each with ``parent_command_id`` = the run id and an id
derived from the run's, to the home processor's command handler (``groups.send_share``).
The home processor's statuses of those commands come back chained (``fold.scenes``): an
action's result is known when all of its commands are final. When every action has a
result, the final SceneRun: COMPLETED, PARTIAL or FAILED, the counts, the command ids and
the time since the request.

Conditions (the scene's, and an action's own) are checked when the scene starts and when
an action's step is due; an action whose conditions do not hold is skipped. If results
are overdue (past the last command's timeout and ``RESULT_GRACE_MS``), the actions still
open failed. A scene the worker does not know yet is waited for ``DOC_WAIT_MS``.
"""

from __future__ import annotations

import copy
from typing import Any

from domain.groups import child_command_id, plan_group
from domain.lifecycle import FINAL
from domain.scene_conditions import conditions_hold
from domain.scenes import FAILED, SKIPPED, SUCCEEDED, action_result, run_status, steps
from streams.fold import agenda
from streams.fold.context import Context
from streams.fold.groups import DOC_WAIT_MS, RESULT_GRACE_MS, send_share
from streams.fold.home_docs import capabilities, doc_ref, home_view, stored_doc, unknown
from topics import catalogue as t

REQUEST_FIELDS = ("scene_id", "run_id", "requested_by", "request_id")
ACTION_FIELDS = ("device_id", "group_id", "capability", "command", "parameters", "conditions")


def item_of(run_id: str) -> str:
    return f"run:{run_id}"


def _key(ctx: Context, run_id: str) -> str:
    return agenda.item_key(ctx.home, item_of(run_id))


def _load(ctx: Context, run_id: str) -> dict[str, Any] | None:
    """A run to change: a copy, so an exception half-way leaves the stored one whole."""
    run = ctx.store.get(_key(ctx, run_id))
    return None if run is None else copy.deepcopy(run)


def on_scene_requested(ctx: Context, rec: dict[str, Any]) -> None:
    run_id = str(rec["run_id"])
    if ctx.store.get(_key(ctx, run_id)) is not None:
        return  # a replayed request: already running
    ctx.counters["scene_runs"] += 1
    request = {k: rec.get(k) for k in REQUEST_FIELDS}
    request["requested_at"] = ctx.now
    if stored_doc(ctx, ctx.home, "scene", str(rec["scene_id"])) is None:
        until = ctx.now + DOC_WAIT_MS
        ctx.store.put(_key(ctx, run_id), {**request, "waiting_until": until})
        agenda.wait_for(ctx, ctx.home, doc_ref("scene", str(rec["scene_id"])), item_of(run_id))
        agenda.schedule(ctx, ctx.home, item_of(run_id), until)
        return
    _start(ctx, request)


def resume(ctx: Context, run_id: str) -> None:
    """The scene's document arrived: start the run that waited for it."""
    run = _load(ctx, run_id)
    if run is not None and "waiting_until" in run:
        _start(ctx, {k: v for k, v in run.items() if k != "waiting_until"})


def _start(ctx: Context, request: dict[str, Any]) -> None:
    scene = stored_doc(ctx, ctx.home, "scene", str(request["scene_id"])) or {}
    actions = [
        {k: a[k] for k in ACTION_FIELDS if k in a} | {"delay_ms": int(a.get("delay_ms") or 0)}
        for a in scene.get("actions") or []
        if isinstance(a, dict)
    ]
    run = {
        **request,
        "started_at": ctx.now,
        "actions": actions,
        "steps": [[at, list(idx)] for at, idx in steps(actions)],
        "next_step": 0,
        "results": [None] * len(actions),
        "commands": {},  # command id -> [action index, final status or None]
        "command_ids": [],
        "errors": {},  # action index (text) -> why it failed
        "deadline": None,
    }
    _scene_run(ctx, run, "STARTED")
    held = conditions_hold(scene.get("conditions"), home_view(ctx, ctx.home), ctx.now)[0]
    if not held:
        run["results"] = [SKIPPED] * len(actions)
        run["next_step"] = len(run["steps"])
    _advance(ctx, run)


def _advance(ctx: Context, run: dict[str, Any]) -> None:
    """Send the steps that are due, then end the run or store it with its next time."""
    run_id = str(run["run_id"])
    while run["next_step"] < len(run["steps"]):
        offset, indexes = run["steps"][run["next_step"]]
        if run["started_at"] + offset > ctx.now:
            break
        run["next_step"] += 1
        for i in indexes:
            _send_action(ctx, run, i)
        run["deadline"] = ctx.now + ctx.config.default_timeout_ms + RESULT_GRACE_MS
    if run["next_step"] >= len(run["steps"]) and all(r is not None for r in run["results"]):
        _finish(ctx, run)
        return
    if run["next_step"] < len(run["steps"]):
        due = run["started_at"] + run["steps"][run["next_step"]][0]
    else:
        due = run["deadline"]
    ctx.store.put(_key(ctx, run_id), run)
    agenda.schedule(ctx, ctx.home, item_of(run_id), due)


def _send_action(ctx: Context, run: dict[str, Any], i: int) -> None:
    action, run_id = run["actions"][i], str(run["run_id"])
    view = home_view(ctx, ctx.home)
    held = conditions_hold(action.get("conditions"), view, ctx.now, f"actions[{i}].conditions")[0]
    if not held:
        run["results"][i] = SKIPPED
        return
    if action.get("group_id"):
        gid = str(action["group_id"])
        group = stored_doc(ctx, ctx.home, "group", gid)
        plan = plan_group(
            (group or {}).get("devices") or [],
            lambda d: capabilities(ctx, ctx.home, d),
            action["capability"],
            action["command"],
            action.get("parameters"),
        )
        if group is None or not plan.targets:
            run["results"][i] = FAILED
            if group is None:
                run["errors"][str(i)] = unknown("group", gid)
            elif plan.first_rejection is not None:
                run["errors"][str(i)] = plan.first_rejection.reason
            else:
                run["errors"][str(i)] = f"group {gid!r} has no devices to command"
            return
        shares = [(child_command_id(run_id, str(i), d), d) for d in plan.targets]
    else:
        gid = None
        shares = [(child_command_id(run_id, str(i)), str(action.get("device_id") or ""))]
    for cid, device in shares:
        run["commands"][cid] = [i, None]
        run["command_ids"].append(cid)
        send_share(
            ctx,
            command_id=cid,
            device_id=device,
            group_id=gid,
            capability=action["capability"],
            command=action["command"],
            parameters=action.get("parameters") or {},
            requested_by=run["requested_by"] or "",
            timeout_ms=ctx.config.default_timeout_ms,
            issued_at=ctx.now,
            request_id=run["request_id"],
            parent_command_id=run_id,
        )


def on_action_status(ctx: Context, rec: dict[str, Any]) -> bool:
    """A status of one of a run's commands; False when its parent is no run here."""
    stored = ctx.store.get(_key(ctx, str(rec["parent_command_id"])))
    if stored is None or "commands" not in stored:
        return False
    entry = stored["commands"].get(rec["command_id"])
    if entry is None or entry[1] is not None or rec["status"] not in FINAL:
        return True  # only final statuses decide an action
    run = copy.deepcopy(stored)
    i = entry[0]
    run["commands"][rec["command_id"]] = [i, rec["status"]]
    if rec["status"] != "COMPLETED" and str(i) not in run["errors"]:
        why = rec.get("reason") or rec["status"]
        run["errors"][str(i)] = f"{rec.get('device_id')}: {why}"
    run["results"][i] = action_result(s for idx, s in run["commands"].values() if idx == i)
    _advance(ctx, run)
    return True


def on_due(ctx: Context, run_id: str) -> None:
    """A step is due, the scene never came, or the run's results are overdue."""
    run = _load(ctx, run_id)
    if run is None:
        agenda.forget(ctx, ctx.home, item_of(run_id))
        return
    if "waiting_until" in run:
        error = unknown("scene", str(run["scene_id"]))
        _end(ctx, {**run, "results": [], "command_ids": [], "errors": {}}, "FAILED", error)
        return
    overdue = run["next_step"] >= len(run["steps"]) and ctx.now >= (run["deadline"] or 0)
    if overdue:
        for cid, (i, status) in run["commands"].items():
            if status is None and run["results"][i] is None:
                run["results"][i] = FAILED
                run["errors"].setdefault(str(i), f"no final status of command {cid} in time")
    _advance(ctx, run)


def _finish(ctx: Context, run: dict[str, Any]) -> None:
    results = run["results"]
    status = run_status(results.count(SUCCEEDED), results.count(FAILED))
    _end(ctx, run, status, None)


def _end(ctx: Context, run: dict[str, Any], status: str, error: str | None) -> None:
    errors = [
        {"action": int(i), "message": msg}
        for i, msg in sorted(run["errors"].items(), key=lambda x: int(x[0]))
    ]
    error = error or "; ".join(f"actions[{e['action']}]: {e['message']}" for e in errors) or None
    _scene_run(ctx, run, status, errors=errors, error=error)
    ctx.store.put(_key(ctx, str(run["run_id"])), None)
    agenda.forget(ctx, ctx.home, item_of(str(run["run_id"])))


def _scene_run(
    ctx: Context,
    run: dict[str, Any],
    status: str,
    *,
    errors: list[dict[str, Any]] | None = None,
    error: str | None = None,
) -> None:
    ctx.counters[f"scene_run_{status.lower()}"] += 1
    results = run.get("results") or []
    final = status != "STARTED"
    ctx.emit(
        t.SCENES_RUNS,
        ctx.home,
        "SceneRun",
        {
            **{k: run.get(k) for k in REQUEST_FIELDS},
            "requested_by": run.get("requested_by") or "",
            "status": status,
            "actions_succeeded": results.count(SUCCEEDED) if final else 0,
            "actions_failed": results.count(FAILED) if final else 0,
            "actions_skipped": results.count(SKIPPED) if final else 0,
            # From the request, in the events' own times (a hub's ack, a tick): never < 0.
            "execution_time_ms": max(0, ctx.now - int(run["requested_at"])) if final else None,
            "command_ids": list(run.get("command_ids") or []) if final else [],
            "error": error,
            "errors": errors or [],
        },
    )
