"""The scenes, groups and settings of a home, as the gateway stored them.

``homestream.homes.config`` carries each document (``HomeConfig``: kind, doc_id, JSON
text or null when deleted); the scenes processor keeps the kinds it runs, each under
``<home>/#scenes:doc:<kind>:<doc id>``, wrapped (``{"doc": ...}``) so no document field
can look like the agenda's ``due_at``. Automations are the automation engine's.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any

from domain.automation.home import HomeView, Place, PlaceError, parse_place
from streams.due import timer_key
from streams.fold.context import Context
from streams.fold.shadows import load_shadow

KEPT = ("scene", "group", "home")


def doc_key(home: str, kind: str, doc_id: str) -> str:
    return timer_key(home, f"scenes:doc:{kind}:{doc_id}")


def doc_ref(kind: str, doc_id: str) -> str:
    """How an agenda names a document an item waits for."""
    return f"{kind}:{doc_id}"


def unknown(kind: str, doc_id: str) -> str:
    """Why a request for a document the worker never got fails. One saved before the
    gateway published documents (homes.config) reaches the worker when it is saved again."""
    return (
        f"{kind} {doc_id!r} is not known to the stream worker; if it was saved before the "
        f"worker ran {kind}s, save it again"
    )


def stored_doc(ctx: Context, home: str, kind: str, doc_id: str) -> dict[str, Any] | None:
    found = ctx.store.get(doc_key(home, kind, doc_id))
    return None if found is None else found["doc"]


def keep(ctx: Context, rec: dict[str, Any]) -> str | None:
    """Keep (or drop) the record's document; its ``doc_ref`` when it is one of ours."""
    kind, doc_id, text = rec.get("kind"), str(rec.get("doc_id") or ""), rec.get("document")
    if kind not in KEPT or not doc_id:
        return None
    key = doc_key(ctx.home, kind, doc_id)
    if text is None:
        ctx.store.put(key, None)
        return doc_ref(kind, doc_id)
    try:
        doc = json.loads(text)
        if not isinstance(doc, dict):
            raise ValueError("the document is not a JSON object")
    except ValueError as exc:
        ctx.dead_letter(rec, "HomeConfig", "MALFORMED_JSON", [f"{kind} {doc_id!r}: {exc}"])
        return None
    ctx.store.put(key, {"doc": doc})
    ctx.counters[f"config_{kind}"] += 1
    return doc_ref(kind, doc_id)


def home_view(
    ctx: Context,
    home: str,
    settings: Mapping[str, Any] | None = None,
    mode: str | None = None,
) -> HomeView:
    """What conditions and triggers read: the home's place (time zone, location) from its
    settings document and its mode (this processor's copies unless given), and each
    device's reported state as the home processor holds it."""
    if settings is None:
        settings = stored_doc(ctx, home, "home", "settings") or {}
    if mode is None:
        mode = str((stored_doc(ctx, home, "home", "mode") or {}).get("mode") or "home")
    fields = ("time_zone", "latitude", "longitude", "elevation")
    place = _place(*(settings.get(k) for k in fields))

    def reported(device_id: str) -> Mapping[str, Any] | None:
        device = ctx.device_state(home, device_id)
        return None if device is None else load_shadow(device).reported

    return HomeView(place, reported, mode)


@functools.lru_cache(maxsize=1024)
def _place(zone: Any, latitude: Any, longitude: Any, elevation: Any) -> Place:
    """Parsed once per process per distinct place (it was a hot spot of the automation
    engine's events); an odd one means UTC with no sun (the gateway checks settings)."""
    given = {"time_zone": zone, "latitude": latitude, "longitude": longitude,
             "elevation": elevation}  # fmt: skip
    try:
        return parse_place({k: v for k, v in given.items() if v is not None})
    except PlaceError:
        return Place()


def capabilities(ctx: Context, home: str, device_id: str) -> list[str] | None:
    """A device's capabilities as the home processor holds them; None when it is not in
    the home."""
    device = ctx.device_state(home, device_id)
    if device is None:
        return None
    return list((device.get("descriptor") or {}).get("capabilities") or [])
