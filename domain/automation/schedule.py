"""When a time, time_pattern or sun trigger next fires: epoch ms (UTC) strictly after a
given instant, for a home's time zone and location.

Times of day are the home's wall-clock times, and daylight saving time is handled the
way Home Assistant handles it (``homeassistant.util.dt.find_next_time_expression_time``):

- a wall time that does not exist (spring forward: 02:30 in Europe/Berlin on the last
  Sunday of March) is skipped: "at 02:30" does not fire that day, and a pattern such as
  every 5 minutes goes on at the first matching time after the gap (03:00);
- a wall time that happens twice (fall back: 02:30 on the last Sunday of October) fires
  twice, once in each pass of the repeated hour.

How: the zone's UTC offset is constant between transitions, and within such a stretch
wall time is UTC plus that offset, so the next matching wall time gives the instant. If
a transition comes first, the search restarts at the transition with the new offset: a
forward jump leaves out the wall times it skips, a backward jump lets the repeated ones
match again.

Sun events come from ``astral`` for the home's latitude, longitude and elevation, on the
home's local dates, plus the trigger's offset. Near the poles some days have no sunrise
or sunset (astral raises); those days have no event, and the next one may be months
away. Without a location there is none at all (None).
"""

from __future__ import annotations

import bisect
import datetime as dt
from dataclasses import dataclass
from typing import Final
from zoneinfo import ZoneInfo

from astral import Observer
from astral.sun import sunrise, sunset

from domain.automation.home import Place, from_ms, to_ms
from domain.automation.model import ScheduledTrigger, SunEvent, TimePatternTrigger, TimeTrigger

# Offsets change at most a few times a year; probing every 6 hours finds any change
# between two instants a day or so apart, and a binary search then pins it to the second.
_PROBE: Final = dt.timedelta(hours=6)
_SECOND: Final = dt.timedelta(seconds=1)
_MAX_RESTARTS: Final = 8  # real zones change offset at most twice within a day or two
_SUN_DAYS: Final = 367  # a sunrise comes within a year even at the poles


@dataclass(frozen=True)
class Clock:
    """A set of wall-clock times of day: explicit times, or every combination of hours,
    minutes and seconds."""

    times: tuple[int, ...] = ()  # seconds after midnight, sorted
    hours: tuple[int, ...] = ()
    minutes: tuple[int, ...] = ()
    seconds: tuple[int, ...] = ()

    @classmethod
    def of(cls, trigger: TimeTrigger | TimePatternTrigger) -> Clock:
        if isinstance(trigger, TimeTrigger):
            return cls(times=trigger.at)
        return cls(hours=trigger.hours, minutes=trigger.minutes, seconds=trigger.seconds)

    def first_from(self, second: int) -> int | None:
        """The first time of day (seconds after midnight) at or after ``second``."""
        if self.times:
            i = bisect.bisect_left(self.times, second)
            return self.times[i] if i < len(self.times) else None
        h, m, s = second // 3600, second // 60 % 60, second % 60
        for hour in self.hours[bisect.bisect_left(self.hours, h) :]:
            if hour > h:
                return hour * 3600 + self.minutes[0] * 60 + self.seconds[0]
            for minute in self.minutes[bisect.bisect_left(self.minutes, m) :]:
                if minute > m:
                    return hour * 3600 + minute * 60 + self.seconds[0]
                i = bisect.bisect_left(self.seconds, s)
                if i < len(self.seconds):
                    return hour * 3600 + minute * 60 + self.seconds[i]
        return None

    def matches(self, second: int) -> bool:
        return self.first_from(second) == second

    def next_wall(self, wall: dt.datetime) -> dt.datetime:
        """The first matching naive wall time at or after ``wall`` (whole seconds)."""
        second = wall.hour * 3600 + wall.minute * 60 + wall.second
        hit = self.first_from(second)
        day = wall.date()
        if hit is None:  # every clock matches some time of every day
            day += dt.timedelta(days=1)
            hit = self.first_from(0)
            assert hit is not None, "a clock with no times"
        return dt.datetime.combine(day, dt.time()) + dt.timedelta(seconds=hit)


def next_fire(trigger: ScheduledTrigger, after_ms: int, place: Place) -> int | None:
    """The trigger's first firing strictly after ``after_ms``; None if it has none (a sun
    trigger of a home without a location, or with no such event within a year)."""
    if isinstance(trigger, TimeTrigger | TimePatternTrigger):
        return next_wall_time(Clock.of(trigger), after_ms, place.zone)
    return next_sun(trigger.event, trigger.offset_ms, after_ms, place)


def next_wall_time(clock: Clock, after_ms: int, zone: ZoneInfo) -> int:
    """The first whole second after ``after_ms`` whose wall time in ``zone`` is on the
    clock (DST as the module says)."""
    t = from_ms((after_ms // 1000 + 1) * 1000)
    for _ in range(_MAX_RESTARTS):
        offset = _offset(t, zone)
        wall = (t + offset).replace(tzinfo=None)
        candidate = (clock.next_wall(wall) - offset).replace(tzinfo=dt.UTC)
        change = _first_change(t, candidate, offset, zone)
        if change is None:
            return to_ms(candidate)
        t = change  # the offset changed first: go on from there with the new one
    raise AssertionError(f"no wall time found in {_MAX_RESTARTS} offset changes")


def _offset(t: dt.datetime, zone: ZoneInfo) -> dt.timedelta:
    offset = t.astimezone(zone).utcoffset()
    return offset if offset is not None else dt.timedelta()


def _first_change(
    start: dt.datetime, end: dt.datetime, offset: dt.timedelta, zone: ZoneInfo
) -> dt.datetime | None:
    """The first instant in (start, end] whose offset is not ``offset``, or None."""
    low = start
    while low < end:
        high = min(low + _PROBE, end)
        if _offset(high, zone) != offset:
            while high - low > _SECOND:  # invariant: low has the offset, high does not
                mid = low + (high - low) // _SECOND // 2 * _SECOND  # whole seconds
                if _offset(mid, zone) == offset:
                    low = mid
                else:
                    high = mid
            return high
        low = high
    return None


# -- the sun -------------------------------------------------------------------------------
def sun_event(event: SunEvent, day: dt.date, place: Place) -> dt.datetime | None:
    """Sunrise or sunset on the home's local date ``day``; None when the sun does not
    rise or set that day there, or the home has no location."""
    if place.latitude is None or place.longitude is None:
        return None
    observer = Observer(place.latitude, place.longitude, place.elevation)
    when = sunrise if event == "sunrise" else sunset
    try:
        return when(observer, day, tzinfo=place.zone)
    except ValueError:  # "Sun is always above/below the horizon on this day"
        return None


def next_sun(event: SunEvent, offset_ms: int, after_ms: int, place: Place) -> int | None:
    """The first ``event`` + ``offset_ms`` strictly after ``after_ms``."""
    if not place.located:
        return None
    # From the day before: a large negative offset can pull tomorrow's event to today.
    first = place.local(after_ms).date() - dt.timedelta(days=1)
    for n in range(_SUN_DAYS + 1):
        when = sun_event(event, first + dt.timedelta(days=n), place)
        if when is not None and (fire := to_ms(when) + offset_ms) > after_ms:
            return fire
    return None


def seconds_of_day(ms: int, place: Place) -> tuple[int, int]:
    """The home's local (seconds after midnight, weekday with Monday 0) at ``ms``."""
    local = place.local(ms)
    return local.hour * 3600 + local.minute * 60 + local.second, local.weekday()
