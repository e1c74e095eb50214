"""The triggers of an automation document -> ``model`` triggers (problems with paths)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from domain.automation import fields as f
from domain.automation import model as m
from domain.automation.durations import SpellingError, parse_time_of_day
from domain.automation.fields import MAX_ITEMS, Problems
from domain.ids import doc_id_problem
from domain.strictjson import short
from domain.validate import did_you_mean

TRIGGERS: Final = ("state", "numeric_state", "time", "time_pattern", "sun", "event", "hub")
TRIGGER_FIELDS: Final = {
    "state": ("device_id", "attribute", "from", "to", "not_from", "not_to", "for"),
    "numeric_state": ("device_id", "attribute", "above", "below", "for"),
    "time": ("at",),
    "time_pattern": ("hours", "minutes", "seconds"),
    "sun": ("event", "offset"),
    "event": ("device_id", "event", "data"),
    "hub": ("hub_id", "to"),
}
TRIGGER_NEEDS: Final = {
    "state": ("device_id",),
    "numeric_state": ("device_id", "attribute"),
    "time": ("at",),
    "time_pattern": (),
    "sun": ("event",),
    "event": ("event",),
    "hub": (),
}


# -- each kind ------------------------------------------------------------------------------
def read_trigger(raw: Any, path: str, problems: Problems) -> m.Trigger | None:
    """One trigger of a document (or of a wait_for_trigger), or None."""
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
    allowed = {kind_key, "id", "enabled", *TRIGGER_FIELDS[kind]}
    f.unknown_keys(raw, allowed, path, f"a {kind} trigger", problems)
    for key in TRIGGER_NEEDS[kind]:
        if key not in raw:
            problems.append((f"{path}.{key}", f"is required for a {kind} trigger"))
    trigger_id = raw.get("id", path.rsplit("[", 1)[-1].rstrip("]"))
    if f.is_int(trigger_id):
        trigger_id = str(trigger_id)
    if not isinstance(trigger_id, str) or not 0 < len(trigger_id) <= 200:
        problems.append((f"{path}.id", "must be text of 1-200 characters"))
    reader = _TRIGGER_READERS[kind]
    trigger = reader(raw, path, str(trigger_id), problems)
    return trigger if len(problems) == before else None


def _state_trigger(
    raw: dict[str, Any], path: str, tid: str, problems: Problems
) -> m.Trigger | None:
    devices = f.device_ids(raw, path, problems)
    attribute, spec = f.attribute(raw, path, problems, required=False)
    if attribute is None and any(k in raw for k in ("from", "to", "not_from", "not_to")):
        problems.append(
            (f"{path}.attribute", "is required with from/to: they compare one attribute's value")
        )
    values = {
        k: f.values(raw, k, spec, path, problems) for k in ("from", "to", "not_from", "not_to")
    }
    for_ms = f.duration(raw, "for", path, problems)
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
    devices = f.device_ids(raw, path, problems)
    attribute, _spec = f.attribute(raw, path, problems, required=True, numeric=True)
    above, below = f.bounds(raw, path, "trigger", problems)
    for_ms = f.duration(raw, "for", path, problems)
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
    if f.is_int(value) and 0 <= value <= top:
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
    offset = f.duration(raw, "offset", path, problems, signed=True) or 0
    return m.SunTrigger(path=path, id=tid, event=event, offset_ms=offset)


def _event_trigger(
    raw: dict[str, Any], path: str, tid: str, problems: Problems
) -> m.Trigger | None:
    if "event" not in raw:
        return None
    devices = f.device_ids(raw, path, problems) if "device_id" in raw else None
    names = f.names(raw.get("event"), f"{path}.event", "an event name", problems)
    data = raw.get("data", {})
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        problems.append(
            (f"{path}.data", f"must be an object of the data to match, got {f.kind_name(data)}")
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
