"""Times and spans that people and apps ask for: ``from``/``to`` of a history query,
``--since`` of a replay. One parser, so every place accepts the same forms and none can be
pushed past the calendar's ends (Python's datetime stops at year 1 and 9999: arithmetic
near them raises OverflowError).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
# The span a time may fall in: smart homes have no data before the epoch, and the end
# leaves room for any span we add or subtract (a day, a bucket) without overflowing.
TIME_MIN: Final = EPOCH
TIME_MAX: Final = dt.datetime(9999, 1, 1, tzinfo=dt.UTC)
FORMS: Final = "an ISO 8601 time (e.g. 2026-06-01T10:00:00Z) or epoch milliseconds"
_UNITS: Final = {"s": 1, "m": 60, "h": 3_600, "d": 86_400, "w": 604_800}


class TimeError(ValueError):
    """A time that cannot be used; ``param`` names where it came from."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(f"{param}: {message}")
        self.param = param
        self.message = message


def iso(value: dt.datetime) -> str:
    """``2026-06-01T10:00:00Z``: UTC, as the API shows times."""
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def parse_time(value: Any, param: str) -> dt.datetime:
    """An aware UTC datetime from ISO 8601 (``Z`` or an offset; naive means UTC), epoch
    milliseconds (a number or digits) or a datetime, between TIME_MIN and TIME_MAX."""
    if isinstance(value, bool):
        raise TimeError(param, f"expected {FORMS}, got a boolean")
    if isinstance(value, dt.datetime):
        parsed = value
    elif isinstance(value, int | float):
        parsed = _from_ms(value, param)
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            raise TimeError(param, f"empty; give {FORMS}")
        if _digits(text.lstrip("-")):
            if len(text) > 19:  # beyond any representable time; int() of it is slow
                raise TimeError(param, f"{text[:24]}... ms is out of range")
            parsed = _from_ms(int(text), param)
        else:
            try:
                parsed = dt.datetime.fromisoformat(
                    text.replace("Z", "+00:00").replace("z", "+00:00")
                )
            except ValueError:
                raise TimeError(param, f"{value[:64]!r} is not {FORMS}") from None
    else:
        raise TimeError(param, f"expected {FORMS}, got {type(value).__name__}")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    try:
        utc = parsed.astimezone(dt.UTC)
    except OverflowError:  # 0001-01-01T00:00+14:00 is before year 1 in UTC
        raise TimeError(param, _range_message()) from None
    if not TIME_MIN <= utc <= TIME_MAX:
        raise TimeError(param, _range_message())
    return utc


def parse_since(text: str, now: dt.datetime, param: str = "since") -> dt.datetime:
    """A start time: ``30m``, ``2h``, ``7d``, ``1w`` ago (from ``now``), or any form of
    :func:`parse_time`."""
    text = text.strip()
    unit = _UNITS.get(text[-1:].lower())
    if unit is not None and _digits(text[:-1]):
        if len(text) > 12:
            raise TimeError(param, f"{text!r} reaches back before {iso(TIME_MIN)}")
        try:
            start = now - dt.timedelta(seconds=int(text[:-1]) * unit)
        except OverflowError:
            raise TimeError(param, f"{text!r} reaches back before {iso(TIME_MIN)}") from None
        if start < TIME_MIN:
            raise TimeError(param, f"{text!r} reaches back before {iso(TIME_MIN)}")
        return start
    try:
        return parse_time(text, param)
    except TimeError as exc:
        raise TimeError(param, f"{exc.message}; or a span ago such as 30m, 2h, 7d") from None


def time_range(
    start: Any, end: Any, *, now: dt.datetime, default_span: dt.timedelta
) -> tuple[dt.datetime, dt.datetime]:
    """``(from, to)``: ``to`` defaults to now, ``from`` to ``to - default_span`` (never
    before TIME_MIN); ``from`` must be before ``to``."""
    end_t = parse_time(end, "to") if end not in (None, "") else now
    if start not in (None, ""):
        start_t = parse_time(start, "from")
    else:
        start_t = max(TIME_MIN, end_t - default_span)
    if start_t >= end_t:
        raise TimeError("from", f"must be before to ({iso(start_t)} >= {iso(end_t)})")
    return start_t, end_t


def to_ms(value: dt.datetime) -> int:
    return (value - EPOCH) // dt.timedelta(milliseconds=1)


def _from_ms(ms: float, param: str) -> dt.datetime:
    try:
        return EPOCH + dt.timedelta(milliseconds=ms)
    except (OverflowError, ValueError):
        raise TimeError(param, _range_message()) from None


def _range_message() -> str:
    return f"out of range: times must be between {iso(TIME_MIN)} and {iso(TIME_MAX)}"


def _digits(text: str) -> bool:
    """ASCII digits only: str.isdigit() also takes "¹" or "²", which int() refuses."""
    return text.isascii() and text.isdigit()
