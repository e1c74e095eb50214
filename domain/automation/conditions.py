"""Whether an automation's conditions hold, and a trace entry for each one evaluated.

Home Assistant's semantics: a list of conditions holds when all do, and evaluation stops
at the first that does not (so the trace ends there); ``and`` / ``or`` stop as soon as
the answer is known; ``not`` holds when none of its conditions does. A condition that
cannot be decided (the device or attribute is unknown, the value is not a number, the
home has no location for the sun) is false, and its trace entry says why.

Times are the home's local wall-clock times (``Place``): ``time`` takes ``after``
inclusive and ``before`` exclusive, wrapping midnight when after > before (22:00-06:00),
and ``weekday`` is the local day of ``now``. ``sun`` compares with today's (local)
sunrise and sunset, except that ``after: sunset`` with ``before: sunrise`` means "after
today's sunset OR before today's sunrise", the night, as in Home Assistant. ``mode``
holds when the home's mode (``PUT .../mode``: home, away, night) is one of those given.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from domain.automation.durations import DAY_S, WEEKDAYS, format_time_of_day
from domain.automation.home import HomeView, to_ms
from domain.automation.model import (
    Condition,
    LogicCondition,
    ModeCondition,
    NumericStateCondition,
    StateCondition,
    SunCondition,
    SunEvent,
    TimeCondition,
)
from domain.automation.schedule import seconds_of_day, sun_event
from domain.shadow import json_equal

Trace = list[dict[str, Any]]
_SUN_EVENTS: tuple[SunEvent, ...] = ("sunrise", "sunset")


def check(conditions: Sequence[Condition], home: HomeView, now_ms: int) -> tuple[bool, Trace]:
    """Whether all ``conditions`` hold at ``now_ms``, and the trace of those evaluated."""
    trace: Trace = []
    for condition in conditions:
        if not _evaluate(condition, home, now_ms, trace):
            return False, trace
    return True, trace


def evaluate(condition: Condition, home: HomeView, now_ms: int) -> tuple[bool, Trace]:
    """One condition (and whatever it contains)."""
    trace: Trace = []
    return _evaluate(condition, home, now_ms, trace), trace


def _evaluate(condition: Condition, home: HomeView, now_ms: int, trace: Trace) -> bool:
    entry: dict[str, Any] = {"path": condition.path}
    trace.append(entry)  # before the inner ones: the trace reads top-down
    if isinstance(condition, LogicCondition):
        entry["condition"] = condition.kind
        result = _logic(condition, home, now_ms, trace)
    elif isinstance(condition, StateCondition):
        entry["condition"] = "state"
        result = _state(condition, home, entry)
    elif isinstance(condition, NumericStateCondition):
        entry["condition"] = "numeric_state"
        result = _numeric(condition, home, entry)
    elif isinstance(condition, TimeCondition):
        entry["condition"] = "time"
        result = _time(condition, home, now_ms, entry)
    elif isinstance(condition, ModeCondition):
        entry["condition"] = "mode"
        entry["mode"] = home.mode
        result = home.mode in condition.modes
    else:
        entry["condition"] = "sun"
        result = _sun(condition, home, now_ms, entry)
    entry["result"] = result
    return result


def _logic(condition: LogicCondition, home: HomeView, now_ms: int, trace: Trace) -> bool:
    for inner in condition.conditions:
        held = _evaluate(inner, home, now_ms, trace)
        if condition.kind == "and" and not held:
            return False
        if condition.kind == "or" and held:
            return True
        if condition.kind == "not" and held:
            return False
    return condition.kind != "or"  # and/not: nothing failed; or: nothing held


def _state(condition: StateCondition, home: HomeView, entry: dict[str, Any]) -> bool:
    values = {d: home.value(d, condition.attribute) for d in condition.device_ids}
    entry["values"] = values
    return all(any(json_equal(v, want) for want in condition.states) for v in values.values())


def in_range(value: Any, above: float | None, below: float | None) -> bool:
    """``above < value < below`` for a number (never a boolean); False for anything else."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    if above is not None and not value > above:
        return False
    return below is None or value < below


def _numeric(condition: NumericStateCondition, home: HomeView, entry: dict[str, Any]) -> bool:
    values = {d: home.value(d, condition.attribute) for d in condition.device_ids}
    entry["values"] = values
    for device, value in values.items():
        if not isinstance(value, int | float) or isinstance(value, bool):
            entry["message"] = f"{device} has no number for {condition.attribute}"
            return False
        if not in_range(value, condition.above, condition.below):
            return False
    return True


def _time(condition: TimeCondition, home: HomeView, now_ms: int, entry: dict[str, Any]) -> bool:
    second, weekday = seconds_of_day(now_ms, home.place)
    entry["now"] = format_time_of_day(second)
    entry["weekday"] = WEEKDAYS[weekday]
    after = condition.after if condition.after is not None else 0
    before = condition.before if condition.before is not None else DAY_S
    # after >= before wraps midnight (after == before: the whole day, as in Home Assistant)
    inside = after <= second < before if after < before else not before <= second < after
    if not inside:
        return False
    return condition.weekdays is None or weekday in condition.weekdays


def _sun(condition: SunCondition, home: HomeView, now_ms: int, entry: dict[str, Any]) -> bool:
    place = home.place
    if not place.located:
        entry["message"] = "the home has no location (latitude, longitude)"
        return False
    today = place.local(now_ms).date()
    events: dict[str, int] = {}
    for event in _SUN_EVENTS:
        if event not in (condition.after, condition.before):
            continue
        when = sun_event(event, today, place)
        if when is None:
            entry["message"] = f"no {event} today"
            return False
        events[event] = to_ms(when)
        entry[event] = when.isoformat()
    if condition.after == "sunset" and condition.before == "sunrise":  # the night
        return (
            now_ms < events["sunrise"] + condition.before_offset_ms
            or now_ms > events["sunset"] + condition.after_offset_ms
        )
    if (
        condition.before is not None
        and now_ms > events[condition.before] + condition.before_offset_ms
    ):
        return False
    return not (
        condition.after is not None and now_ms < events[condition.after] + condition.after_offset_ms
    )
