"""The automation language's shapes for /openapi.json: each trigger, condition and action
kind typed (``oneOf``, one schema per kind, in ``components.schemas``).

The automation engine's reader (``domain.automation.parse``) is what checks a document: it
knows Home Assistant's other spellings and says every problem with its path, so the
request bodies keep ``"type": "object"`` items for the gateway's own validator, which
ignores ``oneOf``; these schemas say the same for readers of the API description.
The kinds and their fields are the reader's own tables; only the fields' types are here.
"""

from __future__ import annotations

from typing import Any

from domain.automation.read_actions import ACTION_FIELDS, ACTIONS
from domain.automation.read_conditions import CONDITION_FIELDS, CONDITION_NEEDS
from domain.automation.read_triggers import TRIGGER_FIELDS, TRIGGER_NEEDS

REF = "#/components/schemas/"
DURATION: dict[str, Any] = {
    "oneOf": [
        {"type": "string", "example": "00:02:00", "description": '"HH:MM:SS" or "HH:MM"'},
        {"type": "integer", "minimum": 0, "description": "milliseconds"},
        {
            "type": "object",
            "properties": {
                k: {"type": "number"}
                for k in ("days", "hours", "minutes", "seconds", "milliseconds")
            },
        },
    ]
}
TIME_OF_DAY = {"type": "string", "example": "23:00", "description": '"HH:MM" or "HH:MM:SS"'}
VALUE = {"description": "a value the attribute can take (or a list of them)"}
TEXT = {"type": "string"}
NUMBER = {"type": "number"}
CLOCK_PART = {"oneOf": [{"type": "integer"}, {"type": "string", "example": "/5"}]}

FIELDS: dict[str, dict[str, Any]] = {
    "device_id": {**TEXT, "description": "a device of the home"},
    "attribute": {**TEXT, "description": "a capability attribute, e.g. powerState"},
    "from": VALUE,
    "to": VALUE,
    "not_from": VALUE,
    "not_to": VALUE,
    "state": VALUE,
    "for": DURATION,
    "above": NUMBER,
    "below": NUMBER,
    "at": TIME_OF_DAY,
    "hours": CLOCK_PART,
    "minutes": CLOCK_PART,
    "seconds": CLOCK_PART,
    "offset": {**DURATION, "description": "signed: -00:30:00 is half an hour before"},
    "data": {"type": "object"},
    "hub_id": TEXT,
    "after": TEXT,
    "before": TEXT,
    "after_offset": DURATION,
    "before_offset": DURATION,
    "weekday": {"oneOf": [TEXT, {"type": "array", "items": TEXT}], "example": ["sat", "sun"]},
    "mode": {"type": "string", "enum": ["home", "away", "night"]},
    "group_id": TEXT,
    "capability": {**TEXT, "example": "ON_OFF"},
    "command": {**TEXT, "example": "turnOn"},
    "parameters": {"type": "object", "example": {"brightness": 40}},
    "scene_id": TEXT,
    "scene": TEXT,
    "delay": DURATION,
    "notify": TEXT,
    "message": TEXT,
    "title": TEXT,
    "timeout": DURATION,
    "continue_on_timeout": {"type": "boolean"},
}

# What each action kind needs (the reader says it in its messages; no table of its own).
ACTION_NEEDS = {
    "command": ("capability", "command"),
    "scene": ("scene_id",),
    "delay": ("delay",),
    "notify": ("message",),
    "wait_for_trigger": ("triggers",),
}


def _field(kind_key: str, kind: str, name: str) -> dict[str, Any]:
    if name == "conditions":
        return {"type": "array", "items": {"$ref": REF + "AutomationCondition"}}
    if name == "triggers":
        return {"type": "array", "items": {"$ref": REF + "AutomationTrigger"}}
    if name == "event" and kind == "sun":
        return {"type": "string", "enum": ["sunrise", "sunset"]}
    if name == "event":
        return {**TEXT, "example": "press"}
    return dict(FIELDS[name])


def _kinds(
    prefix: str,
    kind_key: str,
    fields: dict[str, tuple[str, ...]],
    needs: dict[str, tuple[str, ...]],
    extra: dict[str, Any] | None = None,
) -> dict[str, dict[str, Any]]:
    out = {}
    for kind, names in fields.items():
        props = {kind_key: {"type": "string", "enum": [kind]}}
        # A kind's own name as a key is Home Assistant's shorthand ("delay": "00:01:00"),
        # the same field as the typed one: not listed twice.
        props.update({n: _field(kind_key, kind, n) for n in names if n not in (kind, "scene")})
        props.update(extra or {})
        out[f"{prefix}_{kind}"] = {
            "type": "object",
            "title": f"{kind} {prefix.removeprefix('Automation').lower()}",
            "required": [kind_key, *needs.get(kind, ())],
            "properties": props,
        }
    return out


def components() -> dict[str, dict[str, Any]]:
    """The schemas to put in ``components.schemas``."""
    triggers = _kinds("AutomationTrigger", "trigger", TRIGGER_FIELDS, TRIGGER_NEEDS, {"id": TEXT})
    conditions = _kinds("AutomationCondition", "condition", CONDITION_FIELDS, CONDITION_NEEDS)
    action_fields = {kind: tuple(ACTION_FIELDS.get(kind, ())) for kind in ACTIONS}
    actions = _kinds("AutomationAction", "action", action_fields, ACTION_NEEDS)
    actions["AutomationAction_condition"]["description"] = (
        "a condition as a step: the run stops here unless it holds (the condition's own "
        "fields, with action: condition)"
    )
    out: dict[str, dict[str, Any]] = {**triggers, **conditions, **actions}
    for name, group in (
        ("AutomationTrigger", triggers),
        ("AutomationCondition", conditions),
        ("AutomationAction", actions),
    ):
        out[name] = {
            "type": "object",
            "oneOf": [{"$ref": REF + n} for n in group],
        }
    return out


def typed_list(kind: str, **extra: Any) -> dict[str, Any]:
    """An array of ``kind`` ("AutomationTrigger" ...) for a body schema: typed for readers
    (``oneOf``), ``object`` for the gateway's validator."""
    return {
        "type": "array",
        "maxItems": 100,
        "items": {"type": "object", "oneOf": [{"$ref": REF + kind}]},
        **extra,
    }
