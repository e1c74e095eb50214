"""An automation document -> ``model.Automation``, or every problem with its path.

The document is Home Assistant's automation model in JSON (CONTRACT.md section 5):
``{"alias", "mode"?, "max"?, "enabled"?, "triggers": [...], "conditions"?: [...],
"actions": [...]}``. Home Assistant's older spellings are read too: ``trigger`` /
``condition`` / ``action`` for the lists (a single object counts as a list of one),
``platform`` for a trigger's kind, ``initial_state`` for ``enabled``.

:func:`parse` raises :class:`AutomationInvalid` and nothing else, whatever it is given;
its ``problems`` are ``(path, message)`` pairs such as ``("triggers[1].attribute", "is
required for a numeric_state trigger")``. Every problem is collected, not just the first,
so an editor can mark them all.

Checks beyond the shape: times of day exist ("25:00" does not), durations are readable,
attributes are ones the capability table defines (numeric ones for ``numeric_state``),
``from``/``to``/``state`` values are ones the attribute can take ("on" is not a
``powerState``), and a command's capability, command and parameters fit the table.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from typing import Any, Final, Literal, cast

from domain.automation import model as m
from domain.automation.durations import (
    SpellingError,
    parse_duration,
    parse_time_of_day,
    parse_weekdays,
)
from domain.capabilities import ATTRIBUTE_NAMES, Kind, ValueSpec, attribute_owner
from domain.commands import CommandRejected, plan_command
from domain.ids import device_id_problem, doc_id_problem
from domain.strictjson import join, short
from domain.validate import INVALID, check_value, did_you_mean

TRIGGERS: Final = ("state", "numeric_state", "time", "time_pattern", "sun", "event", "hub")
CONDITIONS: Final = ("state", "numeric_state", "time", "sun", "and", "or", "not")
ACTIONS: Final = ("command", "scene", "delay", "notify", "wait_for_trigger", "condition")
MAX_ITEMS: Final = 100  # per list, as the gateway's schema says
MAX_NESTING: Final = 10  # and/or/not inside each other
MAX_TEXT: Final = 2_000

_TRIGGER_FIELDS: Final = {
    "state": ("device_id", "attribute", "from", "to", "not_from", "not_to", "for"),
    "numeric_state": ("device_id", "attribute", "above", "below", "for"),
    "time": ("at",),
    "time_pattern": ("hours", "minutes", "seconds"),
    "sun": ("event", "offset"),
    "event": ("device_id", "event", "data"),
    "hub": ("hub_id", "to"),
}
_TRIGGER_NEEDS: Final = {
    "state": ("device_id",),
    "numeric_state": ("device_id", "attribute"),
    "time": ("at",),
    "time_pattern": (),
    "sun": ("event",),
    "event": ("event",),
    "hub": (),
}
_CONDITION_FIELDS: Final = {
    "state": ("device_id", "attribute", "state"),
    "numeric_state": ("device_id", "attribute", "above", "below"),
    "time": ("after", "before", "weekday"),
    "sun": ("after", "after_offset", "before", "before_offset"),
    "and": ("conditions",),
    "or": ("conditions",),
    "not": ("conditions",),
}
_CONDITION_NEEDS: Final = {
    "state": ("device_id", "attribute", "state"),
    "numeric_state": ("device_id", "attribute"),
    "time": (),
    "sun": (),
    "and": ("conditions",),
    "or": ("conditions",),
    "not": ("conditions",),
}
_ACTION_FIELDS: Final = {
    "command": ("device_id", "group_id", "capability", "command", "parameters"),
    "scene": ("scene_id", "scene"),
    "delay": ("delay",),
    "notify": ("notify", "message", "title"),
    "wait_for_trigger": ("wait_for_trigger", "triggers", "timeout", "continue_on_timeout"),
}
_TOP_FIELDS: Final = (
    "alias",
    "description",
    "enabled",
    "initial_state",
    "mode",
    "max",
    "max_exceeded",
    # ids a store or Home Assistant's automations.yaml puts beside the document
    "id",
    "automation_id",
    "updated_at",
)
_LISTS: Final = (("triggers", "trigger"), ("conditions", "condition"), ("actions", "action"))
LOG_LEVELS: Final = ("silent", "critical", "error", "warning", "info", "debug", "notset")

Problems = list[tuple[str, str]]


class AutomationInvalid(ValueError):
    """The document is not a usable automation; ``problems`` are (path, message)."""

    def __init__(self, problems: Problems) -> None:
        super().__init__("; ".join(f"{p}: {msg}" if p else msg for p, msg in problems))
        self.problems = problems


def validate(doc: Any) -> Problems:
    """Every problem of the document (empty: it is a valid automation)."""
    try:
        parse(doc)
    except AutomationInvalid as exc:
        return exc.problems
    return []


def parse(doc: Any) -> m.Automation:
    """The automation the document describes, or AutomationInvalid with every problem."""
    problems: Problems = []
    try:
        automation = _automation(doc, problems)
    except RecursionError:  # a Python caller's self-referencing or absurdly deep value
        problems.append(("", "nests too deep"))
        automation = None
    if problems or automation is None:
        raise AutomationInvalid(problems or [("", "is not an automation")])
    return automation


def revision(doc: dict[str, Any]) -> str:
    """A digest of what the document says (not of where it is stored or when)."""
    content = {k: v for k, v in doc.items() if k not in ("automation_id", "updated_at")}
    try:
        text = json.dumps(content, sort_keys=True, separators=(",", ":"), default=repr)
    except (TypeError, ValueError):  # keys of mixed types from a Python caller
        text = repr(content)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


# -- the document --------------------------------------------------------------------------
def _automation(doc: Any, problems: Problems) -> m.Automation | None:
    if not isinstance(doc, dict):
        problems.append(
            ("", f"an automation is an object (alias, triggers, actions), got {_kind(doc)}")
        )
        return None
    lists: dict[str, tuple[str, Any]] = {}
    for plural, singular in _LISTS:
        if plural in doc and singular in doc:
            problems.append((singular, f"give {plural} or {singular}, not both"))
        key = plural if plural in doc or singular not in doc else singular
        lists[plural] = (key, doc.get(key))
    known = set(_TOP_FIELDS) | {k for pair in _LISTS for k in pair}
    _unknown_keys(doc, known, "", "an automation", problems)

    alias = _text(doc, "alias", "", problems, limit=200)
    description = _text(doc, "description", "", problems, limit=MAX_TEXT)
    enabled = _flag(doc, "enabled", "", problems, default=_flag(doc, "initial_state", "", problems))
    mode = doc.get("mode", "single")
    if mode not in m.MODES:
        problems.append(("mode", f"must be one of {', '.join(m.MODES)}, got {short(mode)}"))
    max_runs = doc.get("max", m.DEFAULT_MAX_RUNS)
    if not _is_int(max_runs) or not 1 <= max_runs <= MAX_ITEMS:
        problems.append(("max", f"must be a whole number from 1 to {MAX_ITEMS}"))
    exceeded = doc.get("max_exceeded", "warning")
    if not isinstance(exceeded, str) or exceeded.lower() not in LOG_LEVELS:
        problems.append(("max_exceeded", f"must be one of {', '.join(LOG_LEVELS)}"))

    key, raw = lists["triggers"]
    triggers: list[m.Trigger] = _items(raw, key, problems, _trigger, required=True)
    key, raw = lists["conditions"]
    conditions: list[m.Condition] = _items(
        raw, key, problems, lambda r, p, pr: _condition(r, p, pr, 0)
    )
    key, raw = lists["actions"]
    actions: list[m.Action] = _items(raw, key, problems, _action, required=True)
    if problems:
        return None
    return m.Automation(
        alias=alias,
        description=description,
        enabled=True if enabled is None else enabled,
        mode=mode,
        max_runs=max_runs,
        warn_when_exceeded=str(exceeded).lower() != "silent",
        triggers=tuple(triggers),
        conditions=tuple(conditions),
        actions=tuple(actions),
        revision=revision(doc),
    )


def _items(
    raw: Any,
    key: str,
    problems: Problems,
    read: Callable[[Any, str, Problems], Any],
    *,
    required: bool = False,
) -> list[Any]:
    """A list of items (a single object counts as a list of one); disabled items left out."""
    if raw is None and not required:
        return []
    if isinstance(raw, dict):
        raw = [raw]
    if not isinstance(raw, list):
        problems.append((key, f"must be a list of objects, got {_kind(raw)}"))
        return []
    if required and not raw:
        problems.append((key, "needs at least one item"))
    if len(raw) > MAX_ITEMS:
        problems.append((key, f"has {len(raw)} items; at most {MAX_ITEMS}"))
        return []
    out: list[Any] = []
    for i, item in enumerate(raw):
        path = f"{key}[{i}]"
        parsed = read(item, path, problems)
        if parsed is not None and _enabled(item, path, problems):
            out.append(parsed)
    return out


def _enabled(item: Any, path: str, problems: Problems) -> bool:
    return _flag(item, "enabled", path, problems) is not False if isinstance(item, dict) else True


# -- triggers ------------------------------------------------------------------------------
def _trigger(raw: Any, path: str, problems: Problems) -> m.Trigger | None:
    if not isinstance(raw, dict):
        problems.append((path, "must be an object"))
        return None
    if "trigger" in raw and "platform" in raw:
        problems.append((f"{path}.platform", "give trigger or platform, not both"))
        return None
    kind_key = "platform" if "platform" in raw else "trigger"
    kind = raw.get(kind_key)
    if kind not in TRIGGERS:
        hint = did_you_mean(kind, TRIGGERS) if isinstance(kind, str) else ""
        problems.append(
            (f"{path}.{kind_key}", f"must be one of {', '.join(TRIGGERS)}, got {short(kind)}{hint}")
        )
        return None
    before = len(problems)
    allowed = {kind_key, "id", "enabled", *_TRIGGER_FIELDS[kind]}
    _unknown_keys(raw, allowed, path, f"a {kind} trigger", problems)
    for key in _TRIGGER_NEEDS[kind]:
        if key not in raw:
            problems.append((f"{path}.{key}", f"is required for a {kind} trigger"))
    trigger_id = raw.get("id", path.rsplit("[", 1)[-1].rstrip("]"))
    if _is_int(trigger_id):
        trigger_id = str(trigger_id)
    if not isinstance(trigger_id, str) or not 0 < len(trigger_id) <= 200:
        problems.append((f"{path}.id", "must be text of 1-200 characters"))
    reader = _TRIGGER_READERS[kind]
    trigger = reader(raw, path, str(trigger_id), problems)
    return trigger if len(problems) == before else None


def _state_trigger(
    raw: dict[str, Any], path: str, tid: str, problems: Problems
) -> m.Trigger | None:
    devices = _device_ids(raw, path, problems)
    attribute, spec = _attribute(raw, path, problems, required=False)
    if attribute is None and any(k in raw for k in ("from", "to", "not_from", "not_to")):
        problems.append(
            (f"{path}.attribute", "is required with from/to: they compare one attribute's value")
        )
    values = {
        k: _values(raw, k, spec, path, problems) for k in ("from", "to", "not_from", "not_to")
    }
    for_ms = _duration(raw, "for", path, problems)
    if devices is None:
        return None
    return m.StateTrigger(
        path=path,
        id=tid,
        device_ids=devices,
        attribute=attribute,
        from_values=values["from"],
        to_values=values["to"],
        not_from=values["not_from"] or (),
        not_to=values["not_to"] or (),
        for_ms=for_ms,
    )


def _numeric_trigger(
    raw: dict[str, Any], path: str, tid: str, problems: Problems
) -> m.Trigger | None:
    devices = _device_ids(raw, path, problems)
    attribute, _spec = _attribute(raw, path, problems, required=True, numeric=True)
    above, below = _bounds(raw, path, "trigger", problems)
    for_ms = _duration(raw, "for", path, problems)
    if devices is None or attribute is None:
        return None
    return m.NumericStateTrigger(
        path=path,
        id=tid,
        device_ids=devices,
        attribute=attribute,
        above=above,
        below=below,
        for_ms=for_ms,
    )


def _time_trigger(raw: dict[str, Any], path: str, tid: str, problems: Problems) -> m.Trigger | None:
    if "at" not in raw:
        return None
    at = raw.get("at")
    many = at if isinstance(at, list) else [at]
    if not many or len(many) > MAX_ITEMS:
        problems.append((f"{path}.at", f"needs 1 to {MAX_ITEMS} times of day"))
        return None
    times: set[int] = set()
    for i, value in enumerate(many):
        where = f"{path}.at[{i}]" if isinstance(at, list) else f"{path}.at"
        try:
            times.add(parse_time_of_day(value))
        except SpellingError as exc:
            problems.append((where, str(exc)))
    return m.TimeTrigger(path=path, id=tid, at=tuple(sorted(times)))


def _pattern_trigger(
    raw: dict[str, Any], path: str, tid: str, problems: Problems
) -> m.Trigger | None:
    given = {k: raw.get(k) for k in ("hours", "minutes", "seconds")}
    if all(v is None for v in given.values()):
        problems.append((path, "a time_pattern trigger needs hours, minutes or seconds"))
        return None
    # Home Assistant: a larger unit given alone means the smaller ones are 0 ("hours: 5"
    # fires at 05:00:00, not every second of that hour).
    if given["hours"] is not None and given["minutes"] is None:
        given["minutes"] = 0
    if given["minutes"] is not None and given["seconds"] is None:
        given["seconds"] = 0
    hours = _time_field(given["hours"], 23, f"{path}.hours", problems)
    minutes = _time_field(given["minutes"], 59, f"{path}.minutes", problems)
    seconds = _time_field(given["seconds"], 59, f"{path}.seconds", problems)
    if hours is None or minutes is None or seconds is None:
        return None
    return m.TimePatternTrigger(path=path, id=tid, hours=hours, minutes=minutes, seconds=seconds)


def _time_field(value: Any, top: int, path: str, problems: Problems) -> tuple[int, ...] | None:
    """Home Assistant's forms: absent or "*" (every), 5 or "5", "/5" (every value divisible
    by 5, counted from 0: minutes "/7" are 0, 7, ... 56, then 0 again)."""
    if value is None or value == "*":
        return tuple(range(top + 1))
    if isinstance(value, str) and value.isascii():
        text = value.strip()
        if text.startswith("/") and text[1:].isdigit():
            step = int(text[1:])
            if 1 <= step <= top:
                return tuple(range(0, top + 1, step))
            problems.append((path, f"{short(value)}: the step must be from 1 to {top}"))
            return None
        if text.isdigit():
            value = int(text)
    if _is_int(value) and 0 <= value <= top:
        return (int(value),)
    problems.append(
        (path, f'must be "*", a number from 0 to {top}, or "/N" (every N), got {short(value)}')
    )
    return None


def _sun_trigger(raw: dict[str, Any], path: str, tid: str, problems: Problems) -> m.Trigger | None:
    event = raw.get("event")
    if "event" not in raw:
        return None
    if event not in ("sunrise", "sunset"):
        problems.append((f"{path}.event", f"must be sunrise or sunset, got {short(event)}"))
        return None
    offset = _duration(raw, "offset", path, problems, signed=True) or 0
    return m.SunTrigger(path=path, id=tid, event=event, offset_ms=offset)


def _event_trigger(
    raw: dict[str, Any], path: str, tid: str, problems: Problems
) -> m.Trigger | None:
    if "event" not in raw:
        return None
    devices = _device_ids(raw, path, problems) if "device_id" in raw else None
    names = _names(raw.get("event"), f"{path}.event", "an event name", problems)
    data = raw.get("data", {})
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        problems.append(
            (f"{path}.data", f"must be an object of the data to match, got {_kind(data)}")
        )
        return None
    if names is None:
        return None
    return m.EventTrigger(path=path, id=tid, events=names, device_ids=devices, data=data)


def _hub_trigger(raw: dict[str, Any], path: str, tid: str, problems: Problems) -> m.Trigger | None:
    hub_id = raw.get("hub_id")
    if hub_id is not None and (why := doc_id_problem(hub_id)) is not None:
        problems.append((f"{path}.hub_id", why))
    to = raw.get("to")
    if to is not None and to not in ("online", "offline"):
        problems.append((f"{path}.to", f"must be online or offline, got {short(to)}"))
        return None
    return m.HubTrigger(path=path, id=tid, hub_id=hub_id, to=to)


_TRIGGER_READERS: Final[
    dict[str, Callable[[dict[str, Any], str, str, Problems], m.Trigger | None]]
] = {
    "state": _state_trigger,
    "numeric_state": _numeric_trigger,
    "time": _time_trigger,
    "time_pattern": _pattern_trigger,
    "sun": _sun_trigger,
    "event": _event_trigger,
    "hub": _hub_trigger,
}


# -- conditions ----------------------------------------------------------------------------
def _condition(raw: Any, path: str, problems: Problems, depth: int) -> m.Condition | None:
    if not isinstance(raw, dict):
        problems.append((path, "must be an object"))
        return None
    kind = raw.get("condition")
    if kind not in CONDITIONS:
        hint = did_you_mean(kind, CONDITIONS) if isinstance(kind, str) else ""
        problems.append(
            (
                f"{path}.condition",
                f"must be one of {', '.join(CONDITIONS)}, got {short(kind)}{hint}",
            )
        )
        return None
    before = len(problems)
    _unknown_keys(
        raw,
        {"condition", "enabled", "alias", *_CONDITION_FIELDS[kind]},
        path,
        f"a {kind} condition",
        problems,
    )
    for key in _CONDITION_NEEDS[kind]:
        if key not in raw:
            problems.append((f"{path}.{key}", f"is required for a {kind} condition"))
    condition = _read_condition(kind, raw, path, problems, depth)
    return condition if len(problems) == before else None


def _read_condition(
    kind: str, raw: dict[str, Any], path: str, problems: Problems, depth: int
) -> m.Condition | None:
    if kind in ("and", "or", "not"):
        if depth >= MAX_NESTING:
            problems.append((path, f"and/or/not nest more than {MAX_NESTING} deep"))
            return None
        inner: list[m.Condition] = _items(
            raw.get("conditions"),
            f"{path}.conditions",
            problems,
            lambda r, p, pr: _condition(r, p, pr, depth + 1),
            required="conditions" in raw,
        )
        logic = cast(Literal["and", "or", "not"], kind)
        return m.LogicCondition(path=path, kind=logic, conditions=tuple(inner))
    if kind == "state":
        devices = _device_ids(raw, path, problems)
        attribute, spec = _attribute(raw, path, problems, required=True)
        if "state" in raw and raw["state"] is None:
            problems.append((f"{path}.state", "must be a value or a list of values"))
        states = _values(raw, "state", spec, path, problems)
        if devices is None or attribute is None or states is None:
            return None
        return m.StateCondition(path=path, device_ids=devices, attribute=attribute, states=states)
    if kind == "numeric_state":
        devices = _device_ids(raw, path, problems)
        attribute, _spec = _attribute(raw, path, problems, required=True, numeric=True)
        above, below = _bounds(raw, path, "condition", problems)
        if devices is None or attribute is None:
            return None
        return m.NumericStateCondition(
            path=path, device_ids=devices, attribute=attribute, above=above, below=below
        )
    if kind == "time":
        return _time_condition(raw, path, problems)
    return _sun_condition(raw, path, problems)


def _time_condition(raw: dict[str, Any], path: str, problems: Problems) -> m.Condition | None:
    if not any(k in raw for k in ("after", "before", "weekday")):
        problems.append((path, "a time condition needs after, before or weekday"))
        return None
    bounds: dict[str, int | None] = {}
    for key in ("after", "before"):
        bounds[key] = None
        if raw.get(key) is not None:
            try:
                bounds[key] = parse_time_of_day(raw[key])
            except SpellingError as exc:
                problems.append((f"{path}.{key}", str(exc)))
    weekdays = None
    if raw.get("weekday") is not None:
        try:
            weekdays = parse_weekdays(raw["weekday"])
        except SpellingError as exc:
            problems.append((f"{path}.weekday", str(exc)))
    return m.TimeCondition(
        path=path, after=bounds["after"], before=bounds["before"], weekdays=weekdays
    )


def _sun_condition(raw: dict[str, Any], path: str, problems: Problems) -> m.Condition | None:
    if raw.get("after") is None and raw.get("before") is None:
        problems.append((path, "a sun condition needs after or before (sunrise or sunset)"))
        return None
    events: dict[str, Any] = {}
    for key in ("after", "before"):
        events[key] = raw.get(key)
        if events[key] not in (None, "sunrise", "sunset"):
            problems.append(
                (f"{path}.{key}", f"must be sunrise or sunset, got {short(events[key])}")
            )
    after_offset = _duration(raw, "after_offset", path, problems, signed=True) or 0
    before_offset = _duration(raw, "before_offset", path, problems, signed=True) or 0
    return m.SunCondition(
        path=path,
        after=events["after"],
        after_offset_ms=after_offset,
        before=events["before"],
        before_offset_ms=before_offset,
    )


# -- actions -------------------------------------------------------------------------------
def _action(raw: Any, path: str, problems: Problems) -> m.Action | None:
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
    alias = _text(raw, "alias", path, problems, limit=200)
    if kind == "condition":
        # The condition's own fields sit beside it: {"condition": "state", "device_id": ...}.
        body = {k: v for k, v in raw.items() if k not in (kind_key, "alias")}
        condition = _condition(body, path, problems, 0)
        return (
            None
            if condition is None
            else m.ConditionAction(path=path, condition=condition, alias=alias)
        )
    _unknown_keys(
        raw,
        {kind_key, "alias", "enabled", kind, *_ACTION_FIELDS[kind]},
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
        _unknown_keys(body, set(_ACTION_FIELDS["command"]), where, "a command", problems)
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
    ms = _duration(raw, "delay", path, problems)
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
        _unknown_keys(body, {"message", "title"}, where, "a notification", problems)
    if "message" not in body:
        problems.append((f"{where}.message", "is required for a notify action"))
        return None
    message = _text(body, "message", where, problems, limit=MAX_TEXT)
    title = _text(body, "title", where, problems, limit=200)
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
    triggers: list[m.Trigger] = _items(listed, f"{path}.{key}", problems, _trigger, required=True)
    timeout = _duration(raw, "timeout", path, problems)
    go_on = _flag(raw, "continue_on_timeout", path, problems)
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


# -- fields --------------------------------------------------------------------------------
def _unknown_keys(
    raw: dict[Any, Any], allowed: set[Any], path: str, what: str, problems: Problems
) -> None:
    names = sorted(k for k in allowed if isinstance(k, str))
    for key in raw:
        if key not in allowed:
            hint = did_you_mean(key, names) if isinstance(key, str) else ""
            where = join(path, key) if isinstance(key, str) else f"{path}[{short(key)}]"
            problems.append((where, f"is not a field of {what}{hint}"))


def _device_ids(raw: dict[str, Any], path: str, problems: Problems) -> tuple[str, ...] | None:
    value = raw.get("device_id")
    if value is None:
        return None  # required-ness is reported by the caller's NEEDS table
    many = value if isinstance(value, list) else [value]
    if not many or len(many) > MAX_ITEMS:
        problems.append((f"{path}.device_id", f"needs 1 to {MAX_ITEMS} device ids"))
        return None
    ok = True
    for i, device in enumerate(many):
        if (why := device_id_problem(device)) is not None:
            where = f"{path}.device_id[{i}]" if isinstance(value, list) else f"{path}.device_id"
            problems.append((where, why))
            ok = False
    return tuple(dict.fromkeys(many)) if ok else None


def _attribute(
    raw: dict[str, Any], path: str, problems: Problems, *, required: bool, numeric: bool = False
) -> tuple[str | None, ValueSpec | None]:
    """The attribute (``color.hue`` names a field) and its spec from the capability table."""
    name = raw.get("attribute")
    if name is None:
        if required and "attribute" in raw:
            problems.append((f"{path}.attribute", "must be an attribute name"))
        return None, None
    where = f"{path}.attribute"
    if not isinstance(name, str) or not name:
        problems.append((where, f"must be an attribute name, got {short(name)}"))
        return None, None
    top, _, field = name.partition(".")
    owner = attribute_owner(top)
    spec = next((a for a in owner.attributes if a.name == top), None) if owner else None
    if spec is None:
        problems.append(
            (
                where,
                f"{short(name)} is not an attribute{did_you_mean(top, sorted(ATTRIBUTE_NAMES))}",
            )
        )
        return None, None
    if field:
        sub = spec.field(field)
        if sub is None:
            names = [f.name for f in spec.fields]
            problems.append(
                (
                    where,
                    f"{top} has no field {short(field)}"
                    + (f" (fields: {', '.join(names)})" if names else ""),
                )
            )
            return None, None
        spec = sub
    if numeric and spec.kind not in (Kind.INTEGER, Kind.NUMBER):
        problems.append(
            (
                where,
                f"{name} is not a number ({spec.shape_text()}); use a state trigger or condition",
            )
        )
        return None, None
    return name, spec


def _values(
    raw: dict[str, Any], key: str, spec: ValueSpec | None, path: str, problems: Problems
) -> tuple[Any, ...] | None:
    """One value or a list of values (any of them); absent or null: None (any value)."""
    value = raw.get(key)
    if value is None:
        return None
    many = value if isinstance(value, list) else [value]
    if not many or len(many) > MAX_ITEMS:
        problems.append((f"{path}.{key}", f"needs 1 to {MAX_ITEMS} values"))
        return None
    out: list[Any] = []
    for i, item in enumerate(many):
        where = f"{path}.{key}[{i}]" if isinstance(value, list) else f"{path}.{key}"
        if spec is None:
            out.append(item)
            continue
        checked, errors = check_value(spec, item, str(raw.get("attribute")))
        if checked is INVALID:
            problems.append((where, errors[0].reason))
        else:
            out.append(checked)
    return tuple(out)


def _bounds(
    raw: dict[str, Any], path: str, what: str, problems: Problems
) -> tuple[float | None, float | None]:
    bounds: dict[str, float | None] = {}
    for key in ("above", "below"):
        value = raw.get(key)
        bounds[key] = None
        if value is None:
            continue
        if isinstance(value, str):  # Home Assistant reads "25" as 25 too
            value = _number_text(value)
        if (
            not isinstance(value, int | float)
            or isinstance(value, bool)
            or not math.isfinite(value)
        ):
            problems.append((f"{path}.{key}", f"must be a number, got {short(value)}"))
        else:
            bounds[key] = float(value)
    if raw.get("above") is None and raw.get("below") is None:
        problems.append((path, f"a numeric_state {what} needs above or below"))
    above, below = bounds["above"], bounds["below"]
    if above is not None and below is not None and above >= below:
        problems.append(
            (path, f"above ({above:g}) must be less than below ({below:g}): no value is both")
        )
    return above, below


def _duration(
    raw: dict[str, Any], key: str, path: str, problems: Problems, *, signed: bool = False
) -> int | None:
    if raw.get(key) is None:
        return None
    try:
        return parse_duration(raw[key], signed=signed)
    except SpellingError as exc:
        problems.append((f"{path}.{key}", str(exc)))
        return None


def _names(value: Any, path: str, what: str, problems: Problems) -> tuple[str, ...] | None:
    many = value if isinstance(value, list) else [value]
    if (
        not many
        or len(many) > MAX_ITEMS
        or not all(isinstance(n, str) and 0 < len(n) <= 200 for n in many)
    ):
        problems.append((path, f"must be {what} or a list of them (text of 1-200 characters)"))
        return None
    return tuple(dict.fromkeys(many))


def _text(
    raw: dict[str, Any], key: str, path: str, problems: Problems, *, limit: int
) -> str | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        problems.append((join(path, key), f"must be text of at most {limit} characters"))
        return None
    return value


def _flag(
    raw: dict[str, Any], key: str, path: str, problems: Problems, default: bool | None = None
) -> bool | None:
    value = raw.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        problems.append((join(path, key), f"must be true or false, got {short(value)}"))
        return default
    return value


def _number_text(text: str) -> Any:
    try:
        return float(text) if text.strip() and text.isascii() else text
    except ValueError:
        return text


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _kind(value: Any) -> str:
    return {
        dict: "an object",
        list: "a list",
        str: "text",
        type(None): "null",
        bool: "a boolean",
    }.get(type(value), "a number" if isinstance(value, int | float) else type(value).__name__)
