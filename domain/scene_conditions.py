"""Whether a scene's conditions hold: the one call the scene runner makes.

The language is the automations' (CONTRACT.md section 5): ``state``, ``numeric_state``,
``time``, ``and``, ``or``, ``not``; a list holds when every item does. As in Home
Assistant, a condition that cannot be decided (an unknown device or attribute, a value
that is not a number) does not hold, and the answer says why.

The evaluator here is a stand-in: the automation engine's (``domain.automation.conditions``,
with ``sun`` and the home's location) is being written on its own branch. When it lands,
``conditions_hold`` calls it instead and this module keeps only the interface. Until then
``sun`` conditions do not hold ("not evaluated yet").
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Mapping, Sequence
from typing import Any, Final, Protocol

from domain.strictjson import short

WEEKDAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class HomeFacts(Protocol):
    """What a condition reads: the home's time zone and its devices' reported state."""

    @property
    def time_zone(self) -> str: ...

    def reported(self, device_id: str) -> Mapping[str, Any] | None: ...


def conditions_hold(
    conditions: Sequence[Any], facts: HomeFacts, now_ms: int, path: str = "conditions"
) -> tuple[bool, str | None]:
    """Whether every condition holds at ``now_ms``; if not, why (naming its path)."""
    for i, condition in enumerate(conditions):
        why = _why_not(condition, facts, now_ms, f"{path}[{i}]")
        if why is not None:
            return False, why
    return True, None


def _why_not(c: Any, facts: HomeFacts, now: int, path: str) -> str | None:
    """None when ``c`` holds, else why not."""
    if not isinstance(c, Mapping):
        return f"{path} is not a condition"
    kind = c.get("condition")
    if kind in ("and", "or", "not"):
        inner = c.get("conditions") or []
        whys = [_why_not(x, facts, now, f"{path}.conditions[{i}]") for i, x in enumerate(inner)]
        if kind == "and":
            return next((w for w in whys if w is not None), None)
        if kind == "or":
            return None if any(w is None for w in whys) else f"{path}: none of its conditions holds"
        held = [i for i, w in enumerate(whys) if w is None]
        return f"{path}: conditions[{held[0]}] holds" if held else None
    if kind == "state":
        return _state(c, facts, path)
    if kind == "numeric_state":
        return _numeric(c, facts, path)
    if kind == "time":
        return _time(c, facts, now, path)
    return f"{path}: a {short(kind)} condition is not evaluated yet"


def _values(c: Mapping[str, Any], facts: HomeFacts, path: str) -> list[tuple[str, Any]] | str:
    """(device, attribute value) for each device the condition names, or why not."""
    ids = c.get("device_id")
    devices = ids if isinstance(ids, list) else [ids]
    attribute = c.get("attribute")
    if not isinstance(attribute, str) or not attribute:
        return f"{path}: no attribute to compare"
    out = []
    for device in devices:
        reported = facts.reported(str(device))
        if reported is None:
            return f"{path}: device {short(device)} is not in the home"
        value: Any = reported
        for part in attribute.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        if value is None:
            return f"{path}: device {short(device)} reports no {attribute}"
        out.append((str(device), value))
    return out


def _state(c: Mapping[str, Any], facts: HomeFacts, path: str) -> str | None:
    found = _values(c, facts, path)
    if isinstance(found, str):
        return found
    wanted = c.get("state")
    options = wanted if isinstance(wanted, list) else [wanted]
    for device, value in found:
        if not any(value == w and type(value) is type(w) for w in options):
            return f"{path}: {device} {c['attribute']} is {short(value)}, not {short(wanted)}"
    return None


def _numeric(c: Mapping[str, Any], facts: HomeFacts, path: str) -> str | None:
    found = _values(c, facts, path)
    if isinstance(found, str):
        return found
    above, below = c.get("above"), c.get("below")
    for device, value in found:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"{path}: {device} {c['attribute']} is not a number"
        if isinstance(above, int | float) and not value > above:
            return f"{path}: {device} {c['attribute']} is {value}, not above {above}"
        if isinstance(below, int | float) and not value < below:
            return f"{path}: {device} {c['attribute']} is {value}, not below {below}"
    return None


def _time(c: Mapping[str, Any], facts: HomeFacts, now: int, path: str) -> str | None:
    try:
        zone = zoneinfo.ZoneInfo(facts.time_zone or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return f"{path}: the home's time zone {short(facts.time_zone)} is unknown"
    local = dt.datetime.fromtimestamp(now / 1000, dt.UTC).astimezone(zone)
    second = local.hour * 3600 + local.minute * 60 + local.second
    after, before = _time_of_day(c.get("after")), _time_of_day(c.get("before"))
    if (c.get("after") is not None and after is None) or (
        c.get("before") is not None and before is None
    ):
        return f"{path}: after/before must be HH:MM or HH:MM:SS"
    if after is not None and before is not None and after > before:  # wraps midnight
        inside = second >= after or second < before
    else:
        inside = (after is None or second >= after) and (before is None or second < before)
    if not inside:
        return f"{path}: it is {local:%H:%M:%S} in the home, outside the condition's times"
    days = c.get("weekday")
    if days is not None:
        wanted = days if isinstance(days, list) else [days]
        if WEEKDAYS[local.weekday()] not in wanted:
            return f"{path}: it is {WEEKDAYS[local.weekday()]} in the home"
    return None


def _time_of_day(text: Any) -> int | None:
    if not isinstance(text, str):
        return None
    parts = text.split(":")
    if len(parts) not in (2, 3) or not all(p.isdigit() and len(p) == 2 for p in parts):
        return None
    h, m, s = (int(p) for p in (*parts, "00")[:3])
    return h * 3600 + m * 60 + s if h < 24 and m < 60 and s < 60 else None
