"""`homestream logbook`: what happened in a home, from the history store (stores.logbook),
as the gateway's ``GET .../logbook`` shows it."""

from __future__ import annotations

import argparse
import datetime as dt
import json

from runtime.cli import CliError, Commands, out, positive_int
from runtime.config import Settings


def cmd_logbook(args: argparse.Namespace, settings: Settings) -> int:
    from compose.stack import require_running
    from domain import areas
    from homestream.ops import parse_since
    from stores import accounts, db
    from stores.logbook import (
        MAX_LIMIT,
        LogbookQueryError,
        build_query,
        entry_message,
        home_devices,
        logbook,
        stored_areas,
    )

    since_ms = parse_since(args.since)  # before anything is reached: a bad time is one line
    try:
        query = build_query(
            start=since_ms or None, end=args.until, limit=args.limit, kinds=args.kind
        )
    except LogbookQueryError as exc:
        flag = {"from": "since", "to": "until"}.get(exc.param, exc.param)
        raise CliError(f"--{flag}: {exc.message}") from None
    if args.limit > MAX_LIMIT:
        raise CliError(f"--limit: at most {MAX_LIMIT}")
    require_running(settings)
    with db.connect(settings) as conn:
        accounts.home_must_exist(conn, args.home)
        devices = home_devices(conn, args.home)
        names = areas.by_name(stored_areas(conn, args.home))
        area_of = {d["device_id"]: areas.area_of(d["room"], names) for d in devices}
        wanted: list[str] | None = None
        if args.area:
            wanted = [d for d, a in area_of.items() if areas.matches(a, args.area, names)]
            if not wanted:
                known = sorted({a for a in area_of.values() if a} | set(names.values()))
                raise CliError(
                    f"no device in area {args.area!r}: areas of {args.home}: "
                    f"{', '.join(known) or 'none'}"
                )
        if args.device:
            wanted = [args.device] if wanted is None or args.device in wanted else []
        rows = logbook(conn, args.home, query=query, devices=wanted)
    device_names = {d["device_id"]: d["name"] for d in devices}
    entries = []
    for row in rows:
        device = row.get("device_id")
        name = device_names.get(device or "")
        entries.append(
            {
                "ts": row["ts"],
                "time": dt.datetime.fromtimestamp(row["ts"] / 1000, dt.UTC).isoformat(),
                "kind": row["kind"],
                "device_id": device,
                "area": area_of.get(device or ""),
                "message": entry_message(row, name),
                "detail": row["detail"],
            }
        )
    if args.json:
        out(json.dumps(entries, indent=2, default=str))
        return 0
    for e in reversed(entries):  # oldest first on a terminal, newest at the bottom
        when = dt.datetime.fromtimestamp(e["ts"] / 1000).strftime("%Y-%m-%d %H:%M:%S")
        out(f"{when}  {e['kind']:<12} {e['message']}")
    if not entries:
        out(f"nothing happened in {args.home} in that time")
    return 0


def register(commands: Commands) -> None:
    p = commands.add(
        "logbook",
        cmd_logbook,
        "what happened in a home: state changes, events, availability, commands with who sent "
        "them, automation runs, notifications (from the history store; oldest first)",
    )
    p.add_argument("--home", required=True, help="the home")
    p.add_argument("--since", default="24h", help="from: 30m, 2h, 7d, ISO time or epoch ms [24h]")
    p.add_argument("--until", help="to: ISO time or epoch ms [now]")
    p.add_argument("--area", help="only devices of this area (its id or name)")
    p.add_argument("--device", help="only this device")
    p.add_argument(
        "--kind",
        help="only these kinds, comma-separated: state, event, availability, command, "
        "automation, notification",
    )
    p.add_argument("--limit", type=positive_int, default=500, help="at most this many [500]")
    p.add_argument("--json", action="store_true", help="print the entries as JSON")
