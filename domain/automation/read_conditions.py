"""The conditions of an automation document -> ``model`` conditions (problems with paths)."""

from __future__ import annotations

from typing import Any, Final, Literal, cast

from domain.automation import fields as f
from domain.automation import model as m
from domain.automation.durations import SpellingError, parse_time_of_day, parse_weekdays
from domain.automation.fields import Problems
from domain.strictjson import short
from domain.validate import did_you_mean

CONDITIONS: Final = ("state", "numeric_state", "time", "sun", "mode", "and", "or", "not")
MAX_NESTING: Final = 10  # and/or/not inside each other
CONDITION_FIELDS: Final = {
    "state": ("device_id", "attribute", "state"),
    "numeric_state": ("device_id", "attribute", "above", "below"),
    "time": ("after", "before", "weekday"),
    "sun": ("after", "after_offset", "before", "before_offset"),
    "mode": ("mode",),
    "and": ("conditions",),
    "or": ("conditions",),
    "not": ("conditions",),
}
CONDITION_NEEDS: Final = {
    "state": ("device_id", "attribute", "state"),
    "numeric_state": ("device_id", "attribute"),
    "time": (),
    "sun": (),
    "mode": ("mode",),
    "and": ("conditions",),
    "or": ("conditions",),
    "not": ("conditions",),
}


# -- each kind ----------------------------------------------------------------------------
def read_condition(raw: Any, path: str, problems: Problems, depth: int = 0) -> m.Condition | None:
    """One condition (and those inside it, ``depth`` levels down so far), or None."""
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
    f.unknown_keys(
        raw,
        {"condition", "enabled", "alias", *CONDITION_FIELDS[kind]},
        path,
        f"a {kind} condition",
        problems,
    )
    for key in CONDITION_NEEDS[kind]:
        if key not in raw:
            problems.append((f"{path}.{key}", f"is required for a {kind} condition"))
    condition = _of_kind(kind, raw, path, problems, depth)
    return condition if len(problems) == before else None


def _of_kind(
    kind: str, raw: dict[str, Any], path: str, problems: Problems, depth: int
) -> m.Condition | None:
    if kind in ("and", "or", "not"):
        if depth >= MAX_NESTING:
            problems.append((path, f"and/or/not nest more than {MAX_NESTING} deep"))
            return None
        inner: list[m.Condition] = f.items(
            raw.get("conditions"),
            f"{path}.conditions",
            problems,
            lambda r, p, pr: read_condition(r, p, pr, depth + 1),
            required="conditions" in raw,
        )
        logic = cast(Literal["and", "or", "not"], kind)
        return m.LogicCondition(path=path, kind=logic, conditions=tuple(inner))
    if kind == "state":
        devices = f.device_ids(raw, path, problems)
        attribute, spec = f.attribute(raw, path, problems, required=True)
        if "state" in raw and raw["state"] is None:
            problems.append((f"{path}.state", "must be a value or a list of values"))
        states = f.values(raw, "state", spec, path, problems)
        if devices is None or attribute is None or states is None:
            return None
        return m.StateCondition(path=path, device_ids=devices, attribute=attribute, states=states)
    if kind == "numeric_state":
        devices = f.device_ids(raw, path, problems)
        attribute, _spec = f.attribute(raw, path, problems, required=True, numeric=True)
        above, below = f.bounds(raw, path, "condition", problems)
        if devices is None or attribute is None:
            return None
        return m.NumericStateCondition(
            path=path, device_ids=devices, attribute=attribute, above=above, below=below
        )
    if kind == "time":
        return _time_condition(raw, path, problems)
    if kind == "mode":
        return _mode_condition(raw, path, problems)
    return _sun_condition(raw, path, problems)


def _mode_condition(raw: dict[str, Any], path: str, problems: Problems) -> m.Condition | None:
    if "mode" not in raw:
        return None  # reported as required
    value = raw["mode"]
    many = value if isinstance(value, list) else [value]
    wrong = [v for v in many if v not in m.HOME_MODES]
    if not many or wrong:
        got = short(wrong[0]) if wrong else "an empty list"
        hint = did_you_mean(wrong[0], m.HOME_MODES) if wrong and isinstance(wrong[0], str) else ""
        problems.append(
            (
                f"{path}.mode",
                f"must be {', '.join(m.HOME_MODES)} or a list of them, got {got}{hint}",
            )
        )
        return None
    return m.ModeCondition(path=path, modes=tuple(dict.fromkeys(many)))


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
    after_offset = f.duration(raw, "after_offset", path, problems, signed=True) or 0
    before_offset = f.duration(raw, "before_offset", path, problems, signed=True) or 0
    return m.SunCondition(
        path=path,
        after=events["after"],
        after_offset_ms=after_offset,
        before=events["before"],
        before_offset_ms=before_offset,
    )
