"""The actions of an automation document -> ``model`` actions (problems with paths)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from domain.automation import fields as f
from domain.automation import model as m
from domain.automation.fields import MAX_TEXT, Problems
from domain.automation.read_conditions import read_condition
from domain.automation.read_triggers import read_trigger
from domain.commands import CommandRejected, plan_command
from domain.ids import device_id_problem, doc_id_problem
from domain.strictjson import short

ACTIONS: Final = ("command", "scene", "delay", "notify", "wait_for_trigger", "condition")
ACTION_FIELDS: Final = {
    "command": ("device_id", "group_id", "capability", "command", "parameters"),
    "scene": ("scene_id", "scene"),
    "delay": ("delay",),
    "notify": ("notify", "message", "title"),
    "wait_for_trigger": ("wait_for_trigger", "triggers", "timeout", "continue_on_timeout"),
}


# -- each kind -------------------------------------------------------------------------------
def read_action(raw: Any, path: str, problems: Problems) -> m.Action | None:
    """One action; its kind from ``action`` (or ``type``), else from the one kind key it has."""
    if not isinstance(raw, dict):
        problems.append((path, "must be an object"))
        return None
    kind_key = "action" if "action" in raw else "type" if "type" in raw else None
    if kind_key is not None:
        kind = raw[kind_key]
        if kind not in ACTIONS:
            problems.append(
                (f"{path}.{kind_key}", f"must be one of {', '.join(ACTIONS)}, got {short(kind)}")
            )
            return None
    else:
        named = [k for k in ACTIONS if k in raw]
        if len(named) != 1:
            what = "names more than one" if named else "must say what it does"
            problems.append((path, f"{what}: one of {', '.join(ACTIONS)}"))
            return None
        kind = named[0]
    before = len(problems)
    alias = f.text(raw, "alias", path, problems, limit=200)
    if kind == "condition":
        # The condition's own fields sit beside it: {"condition": "state", "device_id": ...}.
        body = {k: v for k, v in raw.items() if k not in (kind_key, "alias")}
        condition = read_condition(body, path, problems, 0)
        return (
            None
            if condition is None
            else m.ConditionAction(path=path, condition=condition, alias=alias)
        )
    f.unknown_keys(
        raw,
        {kind_key, "alias", "enabled", kind, *ACTION_FIELDS[kind]},
        path,
        f"a {kind} action",
        problems,
    )
    action = _ACTION_READERS[kind](raw, path, alias, problems)
    return action if len(problems) == before else None


def _command_action(
    raw: dict[str, Any], path: str, alias: str | None, problems: Problems
) -> m.Action | None:
    before = len(problems)
    body, where = raw, path
    if isinstance(raw.get("command"), dict):  # {"command": {device_id, capability, ...}}
        body, where = raw["command"], f"{path}.command"
        f.unknown_keys(body, set(ACTION_FIELDS["command"]), where, "a command", problems)
    if ("device_id" in body) == ("group_id" in body):
        problems.append((where, "a command action needs exactly one of device_id, group_id"))
        return None
    device_id = body.get("device_id")
    if device_id is not None and (why := device_id_problem(device_id)) is not None:
        problems.append((f"{where}.device_id", why))
    group_id = body.get("group_id")
    if group_id is not None and (why := doc_id_problem(group_id)) is not None:
        problems.append((f"{where}.group_id", why))
    for key in ("capability", "command"):
        if not isinstance(body.get(key), str):
            problems.append((f"{where}.{key}", "is required for a command action (text)"))
    parameters = body.get("parameters") or {}
    if len(problems) > before:
        return None
    try:
        # As if the device had the capability: what the device really has is the
        # caller's check (it knows the device); here, names and parameters.
        plan_command([body["capability"]], body["capability"], body["command"], parameters)
    except CommandRejected as exc:
        field = (
            exc.path
            if exc.path in ("capability", "command", "parameters")
            else (f"parameters.{exc.path}" if exc.path else "parameters")
        )
        problems.append((f"{where}.{field}", exc.reason))
        return None
    return m.CommandAction(
        path=path,
        alias=alias,
        capability=body["capability"],
        command=body["command"],
        device_id=device_id,
        group_id=group_id,
        parameters=dict(parameters),
    )


def _scene_action(
    raw: dict[str, Any], path: str, alias: str | None, problems: Problems
) -> m.Action | None:
    key = "scene_id" if "scene_id" in raw else "scene"
    scene_id = raw.get(key)
    if scene_id is None:
        problems.append((f"{path}.scene_id", "is required for a scene action"))
        return None
    if (why := doc_id_problem(scene_id)) is not None:
        problems.append((f"{path}.{key}", why))
        return None
    return m.SceneAction(path=path, alias=alias, scene_id=scene_id)


def _delay_action(
    raw: dict[str, Any], path: str, alias: str | None, problems: Problems
) -> m.Action | None:
    if raw.get("delay") is None:
        problems.append((f"{path}.delay", "is required for a delay action"))
        return None
    ms = f.duration(raw, "delay", path, problems)
    return None if ms is None else m.DelayAction(path=path, alias=alias, ms=ms)


def _notify_action(
    raw: dict[str, Any], path: str, alias: str | None, problems: Problems
) -> m.Action | None:
    body, where = raw, path
    nested = raw.get("notify")
    if isinstance(nested, str):
        body, where = {"message": nested, "title": raw.get("title")}, path
        if "message" in raw:
            problems.append((f"{path}.message", "give the message in notify or message, not both"))
    elif isinstance(nested, dict):
        body, where = nested, f"{path}.notify"
        f.unknown_keys(body, {"message", "title"}, where, "a notification", problems)
    if "message" not in body:
        problems.append((f"{where}.message", "is required for a notify action"))
        return None
    message = f.text(body, "message", where, problems, limit=MAX_TEXT)
    title = f.text(body, "title", where, problems, limit=200)
    if message is None or not message.strip():
        problems.append((f"{where}.message", "must be non-empty text"))
        return None
    return m.NotifyAction(path=path, alias=alias, message=message, title=title)


def _wait_action(
    raw: dict[str, Any], path: str, alias: str | None, problems: Problems
) -> m.Action | None:
    key = "wait_for_trigger" if "wait_for_trigger" in raw else "triggers"
    listed = raw.get(key)
    if not isinstance(listed, list | dict) or not listed:
        problems.append((f"{path}.{key}", "needs a list of triggers"))
        return None
    triggers: list[m.Trigger] = f.items(
        listed, f"{path}.{key}", problems, read_trigger, required=True
    )
    timeout = f.duration(raw, "timeout", path, problems)
    go_on = f.flag(raw, "continue_on_timeout", path, problems)
    return m.WaitAction(
        path=path,
        alias=alias,
        triggers=tuple(triggers),
        timeout_ms=timeout,
        continue_on_timeout=True if go_on is None else go_on,
    )


_ACTION_READERS: Final[
    dict[str, Callable[[dict[str, Any], str, str | None, Problems], m.Action | None]]
] = {
    "command": _command_action,
    "scene": _scene_action,
    "delay": _delay_action,
    "notify": _notify_action,
    "wait_for_trigger": _wait_action,
}
