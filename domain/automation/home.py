"""What the engine reads about a home: where it is and what its devices report.

``Place`` is the home's time zone and location (times of day, time patterns and the sun
are the home's, not the server's). ``HomeView`` adds a read-only lookup of each device's
reported attributes, which conditions and trigger arming consult. Both are built by the
caller from its own state; nothing here stores them.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from domain.strictjson import short

# IANA keys: "Europe/Berlin", "America/Argentina/Buenos_Aires", "Etc/GMT+5", "UTC". The
# pattern keeps paths ("../", "/etc/...") and odd text away from zoneinfo's file lookup.
_ZONE_KEY: Final = re.compile(r"[A-Za-z][A-Za-z0-9_+\-]*(?:/[A-Za-z0-9_+\-]+){0,2}")


class PlaceError(ValueError):
    """A time zone or location that cannot be used; ``problems`` are (path, message)."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{p}: {m}" if p else m for p, m in problems))
        self.problems = problems


def zone_problem(key: Any) -> str | None:
    """Why ``key`` is not a usable IANA time zone, or None."""
    if not isinstance(key, str) or not _ZONE_KEY.fullmatch(key) or len(key) > 64:
        return f"must be an IANA time zone such as 'Europe/Berlin', got {short(key)}"
    try:
        zoneinfo.ZoneInfo(key)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return f"{short(key)} is not a known time zone"
    return None


@dataclass(frozen=True)
class Place:
    """A home's time zone (IANA key) and, for the sun, its latitude/longitude in degrees
    and elevation in metres. Without a location, sun triggers never fire and sun
    conditions are false."""

    time_zone: str = "UTC"
    latitude: float | None = None
    longitude: float | None = None
    elevation: float = 0.0

    def __post_init__(self) -> None:
        problems = _place_problems(self.time_zone, self.latitude, self.longitude, self.elevation)
        if problems:
            raise PlaceError(problems)

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)  # zoneinfo caches instances per key

    @property
    def located(self) -> bool:
        return self.latitude is not None and self.longitude is not None

    def local(self, ms: int) -> dt.datetime:
        """The instant ``ms`` (epoch ms) as the home's wall-clock time."""
        return from_ms(ms).astimezone(self.zone)


def parse_place(doc: Any) -> Place:
    """A Place from ``{"time_zone", "latitude"?, "longitude"?, "elevation"?}``; raises
    PlaceError naming each bad field."""
    if not isinstance(doc, Mapping):
        raise PlaceError([("", "must be an object with time_zone, latitude, longitude")])
    unknown = [k for k in doc if k not in ("time_zone", "latitude", "longitude", "elevation")]
    problems = [(str(k), "is not a field of a place") for k in unknown]
    problems += _place_problems(
        doc.get("time_zone", "UTC"),
        doc.get("latitude"),
        doc.get("longitude"),
        doc.get("elevation", 0.0),
    )
    if problems:
        raise PlaceError(problems)
    lat, lon = doc.get("latitude"), doc.get("longitude")
    return Place(
        time_zone=doc.get("time_zone", "UTC"),
        latitude=None if lat is None else float(lat),
        longitude=None if lon is None else float(lon),
        elevation=float(doc.get("elevation", 0.0)),
    )


def _place_problems(zone: Any, lat: Any, lon: Any, elevation: Any) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    if (why := zone_problem(zone)) is not None:
        problems.append(("time_zone", why))
    for name, value, bound in (("latitude", lat, 90.0), ("longitude", lon, 180.0)):
        if value is not None and not _finite_within(value, bound):
            problems.append((name, f"must be a number from -{bound:g} to {bound:g}"))
    if (lat is None) != (lon is None):
        problems.append(("", "give both latitude and longitude, or neither"))
    if not _finite_within(elevation, 10_000.0):
        problems.append(("elevation", "must be a number of metres from -10000 to 10000"))
    return problems


def _finite_within(value: Any, bound: float) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and -bound <= value <= bound
    )


EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def from_ms(ms: int) -> dt.datetime:
    return EPOCH + dt.timedelta(milliseconds=ms)


def to_ms(when: dt.datetime) -> int:
    return (when - EPOCH) // dt.timedelta(milliseconds=1)


# -- device state ----------------------------------------------------------------------------
States = Mapping[str, Mapping[str, Any]] | Callable[[str], Mapping[str, Any] | None]


@dataclass(frozen=True)
class HomeView:
    """Read-only: the home's place, its devices' reported attributes and its mode.
    ``states`` is a mapping device id -> attributes, or a function answering the same
    (None: unknown); ``mode`` is what ``PUT .../mode`` last set (home, away, night)."""

    place: Place
    states: States
    mode: str = "home"

    def attributes(self, device_id: str) -> Mapping[str, Any] | None:
        if callable(self.states):
            return self.states(device_id)
        return self.states.get(device_id)

    def value(self, device_id: str, attribute: str) -> Any:
        """The attribute's value (a dotted path reaches a field: ``color.hue``); None when
        the device or the attribute is unknown."""
        return attribute_value(self.attributes(device_id), attribute)


def attribute_value(attributes: Mapping[str, Any] | None, path: str) -> Any:
    node: Any = attributes
    for part in path.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node
