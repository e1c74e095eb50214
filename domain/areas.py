"""Rooms as areas (Home Assistant's notion): a stable id, a name, the devices in it.

A device is in the area whose name is its room (case-insensitive); a room no stored area
names is an area of its own, its id made from the name (``Living Room`` -> ``living_room``).
Stored areas keep their id when renamed and may hold no device yet. Pure functions.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

MAX_ID = 64


def area_id_for(name: str) -> str:
    """``Living Room`` -> ``living_room``; accents dropped; "area" when nothing is left."""
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:MAX_ID].strip("_")
    return slug or "area"


def area_of(room: str | None, stored: Mapping[str, str]) -> str | None:
    """The area id of a device in ``room``; ``stored`` maps lower-case names to area ids."""
    if room is None or not room.strip():
        return None
    return stored.get(room.strip().lower()) or area_id_for(room)


def by_name(areas: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Lower-case name -> area id of stored areas."""
    return {str(a["name"]).lower(): str(a["area_id"]) for a in areas}


def list_areas(
    stored: Iterable[Mapping[str, Any]], devices: Iterable[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Every area of a home: stored ones and rooms of devices, each with its device ids,
    by name."""
    stored = list(stored)
    names = by_name(stored)
    out: dict[str, dict[str, Any]] = {
        str(a["area_id"]): {"area_id": a["area_id"], "name": a["name"], "devices": []}
        for a in stored
    }
    for d in devices:
        area = area_of(d.get("room"), names)
        if area is None:
            continue
        entry = out.setdefault(area, {"area_id": area, "name": d["room"].strip(), "devices": []})
        entry["devices"].append(d["device_id"])
    for entry in out.values():
        entry["devices"].sort()
    return sorted(out.values(), key=lambda a: (str(a["name"]).lower(), a["area_id"]))


def matches(area: str | None, wanted: str, names: Mapping[str, str]) -> bool:
    """Whether a device's area is the ``?area=`` asked for: its id, or an area's name."""
    if area is None:
        return False
    w = wanted.strip().lower()
    return area == w or area == names.get(w) or area == area_id_for(wanted)
