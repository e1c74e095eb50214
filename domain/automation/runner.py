"""A run of an automation as a pure state machine over a plain JSON dict.

A caller (the stream processor) keeps each run dict, hands it back with each event, and
carries out the *effects* it gets: plain dicts with a ``kind``:

- ``command``  {command_id, device_id | group_id, capability, command, parameters}
- ``scene``    {request_id, scene_id}
- ``notify``   {notification_id, message, title}
- ``arm_timer`` {key, at} / ``cancel_timer`` {key}: deliver ``TimerFired(key, at)``
  to :func:`resume` once ``at`` has come
- ``wait``     {step, timeout_at}: the run waits for triggers; hand it every state
  change, device event and hub status (and its timers) through :func:`resume`
- ``finished`` {status}: the run is over; report it, forget it, dequeue the next

Every effect carries ``run_id`` and ``automation_id``. Ids in effects derive from the
run id, and the run id from the automation id and the firing's source (an input event
id, or a timer key and time), so replaying the same inputs after a crash produces the
same ids and a consumer can drop the duplicates.

The life of a run: :func:`start` (conditions evaluated: ``pending`` or
``conditions_failed``); then ``modes.admit`` decides, and the caller calls
:func:`advance` (runs actions until one suspends or none is left), :func:`queue`,
:func:`skip` or, for other runs, :func:`abort`. A ``delay`` suspends it as ``delayed``,
a ``wait_for_trigger`` as ``waiting``; :func:`resume` goes on when the timer fires, a
wait trigger fires or the wait times out. A ``condition`` action that does not hold ends
the run as ``completed``, with ``stopped`` saying where (Home Assistant's semantics).

Runs belong to one revision of their automation; given another, a run is aborted rather
than continued at a step that may mean something else now.

The run dict: ``run_id``, ``automation_id``, ``revision``, ``alias``, ``status``,
``pointer`` (a path into the actions: ``[2]`` is the third; a list, so nested blocks
can extend it), ``trigger`` (the firing: Home Assistant's trigger variable), ``variables``
(``wait``: the trigger that ended the last wait, or None after a timeout, and the time
that was left), ``suspended`` (what it waits for), ``trace`` (``conditions``,
``actions``: each with its path, kind, start time, outcome and end time, ``warnings``,
``stopped``), ``started_at``, ``finished_at``, ``error``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, Final

from domain.automation import conditions, triggers
from domain.automation.home import HomeView
from domain.automation.model import (
    Action,
    Automation,
    CommandAction,
    ConditionAction,
    DelayAction,
    NotifyAction,
    SceneAction,
    WaitAction,
)
from topics.jsontext import copy as copy_json

_NS: Final = uuid.UUID("2b9f6f0e-5d1c-4a55-9f0a-6c3e8d7b1a42")
ACTIVE: Final = frozenset({"running", "delayed", "waiting"})
FINISHED: Final = frozenset({"completed", "failed", "conditions_failed", "skipped", "aborted"})
# AutomationFired.status for each run status (avro/AutomationFired/v1.avsc).
REPORTED: Final = {
    "pending": "STARTED",
    "queued": "STARTED",
    "running": "STARTED",
    "delayed": "STARTED",
    "waiting": "STARTED",
    "completed": "COMPLETED",
    "failed": "FAILED",
    "conditions_failed": "CONDITIONS_FAILED",
    "skipped": "SKIPPED",
    "aborted": "ABORTED",
}

_STOPPING: Final = "stopping"  # within advance only: a condition action ended the run
Run = dict[str, Any]
Effects = list[dict[str, Any]]


def run_id_for(automation_id: str, fired: Mapping[str, Any]) -> str:
    """The id of the run a firing starts: the same inputs give the same id."""
    return str(uuid.uuid5(_NS, f"{automation_id}\x1f{fired['source']}\x1f{fired['idx']}"))


def _derived(run: Mapping[str, Any], what: str) -> str:
    return str(uuid.uuid5(_NS, f"{run['run_id']}\x1f{what}"))


def timer_owner(key: str) -> tuple[str, str]:
    """Whose timer a key is: ("run", run id) or ("automation", automation id)."""
    kind, _, rest = key.partition("/")
    return kind, rest.split("/", 1)[0]


def automation_scope(automation_id: str) -> str:
    """The prefix of an automation's own trigger timers (``triggers.arm``'s scope)."""
    return f"automation/{automation_id}"


def timers(run: Mapping[str, Any]) -> dict[str, int]:
    """Every timer the run waits for (key -> due ms): to rebuild an index of due timers
    from stored runs after a restore."""
    pending = run.get("suspended") or {}
    if pending.get("kind") == "delay":
        return {pending["key"]: int(pending["until"])}
    if pending.get("kind") == "wait":
        due = triggers.timers(pending["state"])
        if pending.get("timeout_key"):
            due[pending["timeout_key"]] = int(pending["timeout_at"])
        return due
    return {}


# -- starting ------------------------------------------------------------------------------
def start(
    automation: Automation,
    automation_id: str,
    fired: Mapping[str, Any],
    now: int,
    home: HomeView,
) -> tuple[Run, Effects]:
    """A new run for a firing, its conditions evaluated: ``pending`` (ask ``modes.admit``)
    or ``conditions_failed`` (over, with a ``finished`` effect)."""
    held, trace = conditions.check(automation.conditions, home, now)
    run: Run = {
        "run_id": run_id_for(automation_id, fired),
        "automation_id": automation_id,
        "revision": automation.revision,
        "alias": automation.alias,
        "status": "pending",
        "pointer": [0],
        "trigger": copy_json(dict(fired)),
        "variables": {},
        "suspended": None,
        "trace": {"conditions": trace, "actions": [], "warnings": [], "stopped": None},
        "started_at": now,
        "finished_at": None,
        "error": None,
    }
    if held:
        return run, []
    return _finish(run, now, "conditions_failed")


def queue(run: Run, now: int) -> tuple[Run, Effects]:
    """Held back by mode queued until ``modes.dequeue`` names it."""
    if run["status"] != "pending":
        return run, []
    run = copy_json(run)
    run["status"] = "queued"
    return run, []


def skip(run: Run, now: int, reason: str, *, warn: bool = True) -> tuple[Run, Effects]:
    """Not run at all (its mode's limit): over, with the reason as a warning."""
    if run["status"] not in ("pending", "queued"):
        return run, []
    run = copy_json(run)
    if warn:
        run["trace"]["warnings"].append({"at": now, "message": reason})
    run["trace"]["stopped"] = reason
    return _finish(run, now, "skipped")


def abort(run: Run, now: int, reason: str) -> tuple[Run, Effects]:
    """Stopped from outside (mode restart, the automation changed or went away): its
    timers cancelled, over."""
    if run["status"] in FINISHED:
        return run, []
    run = copy_json(run)
    effects = _cancel_suspension(run)
    run["trace"]["stopped"] = reason
    run, done = _finish(run, now, "aborted")
    return run, effects + done


def fail(run: Run, now: int, error: str) -> tuple[Run, Effects]:
    """Ended by an error the caller met carrying out an effect (e.g. a scene that is
    gone): its timers cancelled, over."""
    if run["status"] in FINISHED:
        return run, []
    run = copy_json(run)
    effects = _cancel_suspension(run)
    run["error"] = error
    run, done = _finish(run, now, "failed")
    return run, effects + done


# -- running -------------------------------------------------------------------------------
def advance(run: Run, automation: Automation, now: int, home: HomeView) -> tuple[Run, Effects]:
    """Run actions from the pointer until one suspends the run or none is left."""
    if run["status"] not in ("pending", "queued", "running"):
        return run, []
    run = copy_json(run)
    if run["revision"] != automation.revision:
        return abort(run, now, "the automation changed")
    run["status"] = "running"
    effects: Effects = []
    while run["status"] == "running":
        step = run["pointer"][0]
        if step >= len(automation.actions):
            run, done = _finish(run, now, "completed")
            return run, effects + done
        effects += _execute(run, automation.actions[step], step, now, home)
        if run["status"] == _STOPPING:
            run, done = _finish(run, now, "completed")
            return run, effects + done
    return run, effects


def resume(
    run: Run,
    automation: Automation,
    event: triggers.Event,
    now: int,
    home: HomeView,
) -> tuple[Run, Effects]:
    """Offer an event to a suspended run: its delay's timer, or for a wait its timeout or
    anything its triggers listen to. Anything else leaves it as it is (no effects)."""
    status = run["status"]
    if status not in ("delayed", "waiting"):
        return run, []
    if run["revision"] != automation.revision:
        return abort(run, now, "the automation changed")
    pending = run["suspended"]
    if status == "delayed":
        if not (isinstance(event, triggers.TimerFired) and event.key == pending["key"]):
            return run, []
        if now < pending["until"]:
            return run, []
        run = copy_json(run)
        _close_step(run, now, "done")
        return _go_on(run, automation, now, home)
    action = automation.actions[run["pointer"][0]]
    assert isinstance(action, WaitAction), "a waiting run points at a wait_for_trigger"
    if isinstance(event, triggers.TimerFired) and event.key == pending["timeout_key"]:
        if now < pending["timeout_at"]:
            return run, []
        return _wait_over(run, automation, action, None, now, home)
    out = triggers.handle(
        action.triggers, pending["state"], event, scope=pending["scope"], now=now, home=home
    )
    if not out.fired and not out.arm and not out.cancel and out.state == pending["state"]:
        return run, []
    run = copy_json(run)
    run["suspended"]["state"] = out.state
    cancelled = [_timer_effect(run, "cancel_timer", key) for key in out.cancel]
    if not out.fired:
        armed = [_timer_effect(run, "arm_timer", key, at) for key, at in out.arm]
        return run, cancelled + armed
    # The wait is over: its remaining timers go too (_wait_over cancels what the state
    # still holds; what the triggers just dropped or delivered is in ``cancelled``).
    run, more = _wait_over(run, automation, action, out.fired[0], now, home)
    held = {e["key"] for e in more if e["kind"] == "cancel_timer"}
    return run, [e for e in cancelled if e["key"] not in held] + more


def _go_on(run: Run, automation: Automation, now: int, home: HomeView) -> tuple[Run, Effects]:
    run["pointer"] = [run["pointer"][0] + 1]
    run["suspended"] = None
    run["status"] = "running"
    return advance(run, automation, now, home)


def _wait_over(
    run: Run,
    automation: Automation,
    action: WaitAction,
    fired: Mapping[str, Any] | None,
    now: int,
    home: HomeView,
) -> tuple[Run, Effects]:
    run = copy_json(run)
    effects = _cancel_suspension(run)
    timeout_at = run["suspended"]["timeout_at"]
    run["variables"]["wait"] = {
        "trigger": None if fired is None else copy_json(dict(fired)),
        "remaining": None if timeout_at is None else max(0, timeout_at - now),
    }
    if fired is None:
        _close_step(run, now, "timeout")
        if not action.continue_on_timeout:
            run["trace"]["stopped"] = f"{action.path}: the wait timed out"
            run, done = _finish(run, now, "completed")
            return run, effects + done
    else:
        _close_step(run, now, "triggered", trigger=copy_json(dict(fired)))
    run, more = _go_on(run, automation, now, home)
    return run, effects + more


# -- one action ------------------------------------------------------------------------------
def _execute(run: Run, action: Action, step: int, now: int, home: HomeView) -> Effects:
    """Carry out one action; move the pointer on unless the action suspends the run."""
    entry: dict[str, Any] = {"path": action.path, "action": _kind(action), "at": now}
    if action.alias:
        entry["alias"] = action.alias
    run["trace"]["actions"].append(entry)
    effects: Effects = []
    if isinstance(action, CommandAction):
        command_id = _derived(run, f"{action.path}/command")
        entry.update(result="requested", command_id=command_id, done_at=now)
        effects.append(
            _effect(
                run,
                "command",
                command_id=command_id,
                device_id=action.device_id,
                group_id=action.group_id,
                capability=action.capability,
                command=action.command,
                parameters=copy_json(action.parameters),
            )
        )
    elif isinstance(action, SceneAction):
        request_id = _derived(run, f"{action.path}/scene")
        entry.update(result="requested", request_id=request_id, done_at=now)
        effects.append(_effect(run, "scene", request_id=request_id, scene_id=action.scene_id))
    elif isinstance(action, NotifyAction):
        notification_id = _derived(run, f"{action.path}/notify")
        entry.update(result="sent", notification_id=notification_id, done_at=now)
        effects.append(
            _effect(
                run,
                "notify",
                notification_id=notification_id,
                message=action.message,
                title=action.title,
            )
        )
    elif isinstance(action, ConditionAction):
        held, trace = conditions.evaluate(action.condition, home, now)
        entry.update(result=held, conditions=trace, done_at=now)
        if not held:
            run["trace"]["stopped"] = f"{action.path}: the condition does not hold"
            run["status"] = _STOPPING
            return []
    elif isinstance(action, DelayAction):
        if action.ms > 0:
            return _suspend_delay(run, action, step, now, entry)
        entry.update(result="done", done_at=now)
    else:
        return _suspend_wait(run, action, step, now, home, entry)
    run["pointer"] = [step + 1]
    return effects


def _suspend_delay(
    run: Run, action: DelayAction, step: int, now: int, entry: dict[str, Any]
) -> Effects:
    key = f"run/{run['run_id']}/{step}/delay"
    until = now + action.ms
    entry["until"] = until
    run["status"] = "delayed"
    run["suspended"] = {"kind": "delay", "key": key, "until": until}
    return [_timer_effect(run, "arm_timer", key, until)]


def _suspend_wait(
    run: Run, action: WaitAction, step: int, now: int, home: HomeView, entry: dict[str, Any]
) -> Effects:
    scope = f"run/{run['run_id']}/{step}"
    timeout_at = None if action.timeout_ms is None else now + action.timeout_ms
    armed = triggers.arm(action.triggers, scope, now, home)
    run["status"] = "waiting"
    run["suspended"] = {
        "kind": "wait",
        "scope": scope,
        "state": armed.state,
        "timeout_key": None if timeout_at is None else f"{scope}/timeout",
        "timeout_at": timeout_at,
    }
    entry["timeout_at"] = timeout_at
    effects = [_timer_effect(run, "arm_timer", key, at) for key, at in armed.arm]
    if timeout_at is not None:
        effects.append(_timer_effect(run, "arm_timer", f"{scope}/timeout", timeout_at))
    effects.append(_effect(run, "wait", step=action.path, timeout_at=timeout_at))
    return effects


# -- helpers ---------------------------------------------------------------------------------
def _finish(run: Run, now: int, status: str) -> tuple[Run, Effects]:
    run["status"] = status
    run["finished_at"] = now
    run["suspended"] = None
    return run, [_effect(run, "finished", status=status)]


def _cancel_suspension(run: Run) -> Effects:
    """Cancel effects for every timer the suspended step holds (none when running)."""
    return [_timer_effect(run, "cancel_timer", key) for key in timers(run)]


def _close_step(run: Run, now: int, result: str, **details: Any) -> None:
    entry = run["trace"]["actions"][-1]
    entry.update(result=result, done_at=now, **details)


def _effect(run: Mapping[str, Any], kind: str, **fields: Any) -> dict[str, Any]:
    return {"kind": kind, "run_id": run["run_id"], "automation_id": run["automation_id"], **fields}


def _timer_effect(
    run: Mapping[str, Any], kind: str, key: str, at: int | None = None
) -> dict[str, Any]:
    return _effect(run, kind, key=key) if at is None else _effect(run, kind, key=key, at=at)


_KINDS: Final = {
    CommandAction: "command",
    SceneAction: "scene",
    DelayAction: "delay",
    NotifyAction: "notify",
    WaitAction: "wait_for_trigger",
    ConditionAction: "condition",
}


def _kind(action: Action) -> str:
    return _KINDS[type(action)]


def report(run: Mapping[str, Any], now: int) -> dict[str, Any]:
    """The run as an AutomationFired record's fields (the caller adds event_id, home_id
    and serialises ``trigger`` and ``trace`` to JSON text)."""
    return {
        "ts": now,
        "automation_id": run["automation_id"],
        "run_id": run["run_id"],
        "alias": run["alias"],
        "trigger": run["trigger"],
        "status": REPORTED[run["status"]],
        "trace": {
            **run["trace"],
            "started_at": run["started_at"],
            "finished_at": run["finished_at"],
        },
        "error": run["error"],
    }
