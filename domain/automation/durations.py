"""Durations, times of day and weekdays, in the forms Home Assistant automations use.

Each reader returns the value or raises :class:`SpellingError` with a sentence that says
which forms are accepted; the document parser turns that into a ``(path, message)``.

One deliberate difference from Home Assistant: a bare number is **milliseconds**, as
CONTRACT.md section 5 says (``delay {"HH:MM:SS" or ms}``), where Home Assistant reads
seconds. ``{"seconds": 5}`` and ``"00:00:05"`` mean the same in both.
"""

from __future__ import annotations

import math
import re
from typing import Any, Final

from domain.strictjson import short

SECOND_MS: Final = 1_000
MINUTE_MS: Final = 60 * SECOND_MS
HOUR_MS: Final = 60 * MINUTE_MS
DAY_MS: Final = 24 * HOUR_MS
DAY_S: Final = 86_400
# Longer than any delay or `for:` a home needs, and short enough that adding one to any
# time we handle stays far inside datetime's range.
MAX_DURATION_MS: Final = 366 * DAY_MS

DURATION_FORMS: Final = (
    '"HH:MM:SS", "HH:MM", milliseconds, or an object of days, hours, minutes, seconds, milliseconds'
)
_UNIT_MS: Final = {
    "days": DAY_MS,
    "hours": HOUR_MS,
    "minutes": MINUTE_MS,
    "seconds": SECOND_MS,
    "milliseconds": 1,
}
# Hours may exceed 23 in a duration ("36:00:00"); minutes and seconds may not exceed 59.
_CLOCK_SPAN: Final = re.compile(r"(\d{1,4}):([0-5]\d)(?::([0-5]\d)(?:\.(\d{1,3}))?)?")
_TIME_OF_DAY: Final = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?")
WEEKDAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # datetime.weekday() order


class SpellingError(ValueError):
    """A value that is not one of the accepted forms; the message says which are."""


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def parse_duration(value: Any, *, signed: bool = False) -> int:
    """Milliseconds from ``"HH:MM:SS"`` / ``"HH:MM"`` (``-`` in front when ``signed``),
    a number of milliseconds, or ``{"hours": 1, "minutes": 30, ...}``."""
    if _is_number(value):
        ms = _whole_ms(value)
    elif isinstance(value, str):
        ms = _clock_span(value, signed)
    elif isinstance(value, dict):
        ms = _unit_object(value, signed)
    else:
        raise SpellingError(f"must be a duration ({DURATION_FORMS}), got {short(value)}")
    if ms < 0 and not signed:
        raise SpellingError(f"must not be negative, got {short(value)}")
    if abs(ms) > MAX_DURATION_MS:
        raise SpellingError(f"must be at most {MAX_DURATION_MS // DAY_MS} days")
    return ms


def _whole_ms(value: float) -> int:
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        raise SpellingError(f"must be whole milliseconds, got {short(value)}")
    if abs(value) > MAX_DURATION_MS:
        raise SpellingError(f"must be at most {MAX_DURATION_MS // DAY_MS} days")
    return int(value)


def _clock_span(text: str, signed: bool) -> int:
    body = text.strip()
    sign = 1
    if signed and body[:1] in ("-", "+"):
        sign = -1 if body[0] == "-" else 1
        body = body[1:]
    match = _CLOCK_SPAN.fullmatch(body) if body.isascii() else None
    if match is None:
        forms = DURATION_FORMS + (" (with - in front for an earlier time)" if signed else "")
        raise SpellingError(f"must be a duration ({forms}), got {short(text)}")
    hours, minutes, seconds, fraction = match.groups()
    ms = int(hours) * HOUR_MS + int(minutes) * MINUTE_MS + int(seconds or 0) * SECOND_MS
    ms += int((fraction or "0").ljust(3, "0"))
    return sign * ms


def _unit_object(value: dict[Any, Any], signed: bool) -> int:
    if not value:
        raise SpellingError(f"an empty object is no duration; give one of {', '.join(_UNIT_MS)}")
    total = 0.0
    for unit, amount in value.items():
        if unit not in _UNIT_MS:
            raise SpellingError(
                f"{short(unit)} is not a unit of a duration; use {', '.join(_UNIT_MS)}"
            )
        if not _is_number(amount) or not math.isfinite(amount):
            raise SpellingError(f"{unit} must be a number, got {short(amount)}")
        if amount < 0 and not signed:
            raise SpellingError(f"{unit} must not be negative, got {short(amount)}")
        if abs(amount) > MAX_DURATION_MS:  # before multiplying: 1e308 days overflows
            raise SpellingError(f"must be at most {MAX_DURATION_MS // DAY_MS} days")
        total += amount * _UNIT_MS[unit]
    if abs(total) > MAX_DURATION_MS:
        raise SpellingError(f"must be at most {MAX_DURATION_MS // DAY_MS} days")
    return round(total)


def parse_time_of_day(value: Any) -> int:
    """Seconds after local midnight from ``"HH:MM"`` or ``"HH:MM:SS"`` (00:00 to 23:59:59)."""
    match = _TIME_OF_DAY.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None or not value.isascii():
        raise SpellingError(f'must be a time of day "HH:MM" or "HH:MM:SS", got {short(value)}')
    hours, minutes, seconds = (int(g or 0) for g in match.groups())
    if hours > 23 or minutes > 59 or seconds > 59:
        raise SpellingError(f"{short(value)} is not a time of day (00:00:00 to 23:59:59)")
    return hours * 3600 + minutes * 60 + seconds


def format_time_of_day(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def parse_weekdays(value: Any) -> tuple[int, ...]:
    """Weekday numbers (Monday 0) from ``"mon"`` or ``["sat", "sun"]`` (full names too)."""
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not names:
        raise SpellingError(f"must be a weekday ({', '.join(WEEKDAYS)}) or a list of them")
    days: set[int] = set()
    for name in names:
        word = name.strip().lower() if isinstance(name, str) else None
        if word in WEEKDAYS:
            days.add(WEEKDAYS.index(word))
        elif word in _FULL_DAYS:
            days.add(_FULL_DAYS.index(word))
        else:
            raise SpellingError(f"{short(name)} is not a weekday; use {', '.join(WEEKDAYS)}")
    return tuple(sorted(days))


_FULL_DAYS: Final = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
