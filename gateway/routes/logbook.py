"""``GET /v1/homes/{h}/logbook?from=&to=&area=&device=``: what happened, newest first
(stores.logbook), each entry with a readable ``message`` and the device's current name
and area."""

from __future__ import annotations

import datetime as dt
from typing import Any

from starlette.responses import Response

from domain import areas
from domain.timerange import iso
from gateway.api import Ctx, Endpoint, Param, Reply, ok
from gateway.errors import validation_error
from gateway.roles import Permission
from gateway.routes.common import TIME_RANGE
from gateway.routes.devices import home_devices
from stores.logbook import KINDS, MAX_LIMIT, LogbookQueryError, build_query, entry_message

ENTRY = {
    "type": "object",
    "required": ["ts", "time", "kind", "message"],
    "properties": {
        "ts": {"type": "integer"},
        "time": {"type": "string"},
        "kind": {"type": "string", "enum": list(KINDS)},
        "device_id": {"type": "string", "nullable": True},
        "device_name": {"type": "string", "nullable": True},
        "area": {"type": "string", "nullable": True},
        "message": {"type": "string"},
        "detail": {"type": "object", "description": "the row's own fields, by kind"},
    },
}


async def get_logbook(ctx: Ctx) -> Response:
    b, q = ctx.backend, ctx.query
    try:
        query = build_query(
            start=q.get("from"), end=q.get("to"), limit=q.get("limit", 500), kinds=q.get("kind")
        )
    except LogbookQueryError as exc:
        raise validation_error([(exc.param, exc.message)]) from None
    devices, names = await home_devices(ctx)
    by_id = {d["device_id"]: d for d in devices}
    wanted: list[str] | None = None
    if q.get("area"):
        wanted = [d["device_id"] for d in devices if areas.matches(d["area"], q["area"], names)]
    if q.get("device"):
        wanted = [x for x in (wanted if wanted is not None else [q["device"]]) if x == q["device"]]
    rows = await b.run(b.store.logbook, ctx.home_id, query=query, devices=wanted)
    entries: list[dict[str, Any]] = []
    for row in rows:
        device = by_id.get(row.get("device_id") or "")
        name = device.get("name") if device else None
        when = dt.datetime.fromtimestamp(row["ts"] / 1000, dt.UTC)
        entries.append(
            {
                "ts": row["ts"],
                "time": iso(when),
                "kind": row["kind"],
                "device_id": row.get("device_id"),
                "device_name": name,
                "area": device.get("area") if device else None,
                "message": entry_message(row, name),
                "detail": row.get("detail") or {},
            }
        )
    return ok(
        {
            "home_id": ctx.home_id,
            "from": iso(query.start),
            "to": iso(query.end),
            "entries": entries,
        }
    )


ENDPOINTS = [
    Endpoint(
        "GET",
        "/v1/homes/{home_id}/logbook",
        get_logbook,
        Permission.VIEW,
        "What happened in the home, newest first: state changes, device events, "
        "availability, commands (with who sent them and how they ended), automation runs, "
        "notifications",
        "logbook",
        {
            200: Reply(
                "The feed",
                {
                    "type": "object",
                    "required": ["home_id", "from", "to", "entries"],
                    "properties": {
                        "home_id": {"type": "string"},
                        "from": {"type": "string"},
                        "to": {"type": "string"},
                        "entries": {"type": "array", "items": ENTRY},
                    },
                },
            )
        },
        query=(
            *TIME_RANGE,
            Param(
                "area",
                {"type": "string", "minLength": 1, "maxLength": 200},
                "only devices in this area (its id or name)",
            ),
            Param("device", {"type": "string", "minLength": 1, "maxLength": 128}, "one device"),
            Param(
                "kind",
                {"type": "string", "maxLength": 200},
                "only these kinds, comma-separated: " + ", ".join(KINDS),
            ),
            Param(
                "limit",
                {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
                "at most this many entries [500]",
            ),
        ),
        extra={"errors": [503]},
    )
]
