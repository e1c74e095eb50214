"""Time passing, on a tick: command timeouts, silent devices going offline, parked
reports expiring.

A tick's time comes from the tick record (``streams.txloop.tick_time``), never a clock,
so a replay times out and scans exactly as the live run did.
"""

from __future__ import annotations

from typing import Any

from domain.lifecycle import FINAL
from streams.due import scan_due, ticked_key
from streams.fold.commands import emit_status, set_status
from streams.fold.context import Context
from streams.fold.registry import FROM_SILENCE, emit_availability, emit_offline_notice
from topics.keys import device_key


def on_tick(ctx: Context, rec: dict[str, Any]) -> None:
    """Time passes: command timeouts, silent devices, expired parked reports.

    One tick covers the homes of the tick's partition, so tick traffic does not grow
    with the number of homes; the store yields only those a tick may have work for
    (``streams.due.DueIndex``), so its cost need not either. The time of the last tick
    is state (one record, not one per home scanned), so a replay scans at the same ticks.
    """
    key = ticked_key(int(rec.get("partition") or 0))
    last = int((ctx.store.get(key) or {}).get("at", 0))
    for home in sorted(ctx.store.due_homes(last, ctx.now)):
        ctx.home = home
        _tick_home(ctx, home, last)
    if ctx.now > last:
        ctx.store.put(key, {"at": ctx.now})


def _tick_home(ctx: Context, home: str, last_tick: int) -> None:
    cfg = ctx.config
    h = ctx.home_state(home)
    for cid, entry in sorted(h["pending"].items()):
        if entry["status"] not in FINAL and entry["deadline"] <= ctx.now:
            reason = f"no completion within {entry['timeout_ms']} ms"
            emit_status(ctx, entry, "TIMEOUT", reason)
            set_status(ctx, home, cid, "TIMEOUT")
    if not scan_due(home, last_tick, ctx.now, cfg.scan_interval_ms):
        return
    h = ctx.home_state(home)
    for dev in h["devices"]:
        device = ctx.device_state(home, dev)
        if (
            device
            and device.get("online")
            and (ctx.now - (device.get("last_seen") or 0) >= cfg.offline_after_ms)
        ):
            device = {**device, "online": False}
            ctx.store.put(device_key(home, dev), device)
            emit_availability(ctx, dev, False, FROM_SILENCE)
            minutes = cfg.offline_after_ms // 60_000
            emit_offline_notice(ctx, dev, device, f"no report for {minutes} minutes")
    expired = [
        (dev, r)
        for dev, reports in h["parked"].items()
        for r in reports
        if ctx.now - int(r.get("received_at") or 0) >= cfg.park_ttl_ms
    ]
    if expired:
        parked = {
            dev: [r for r in reports if (dev, r) not in expired]
            for dev, reports in h["parked"].items()
        }
        ctx.store.put(home, {**h, "parked": {d: rs for d, rs in parked.items() if rs}})
        for dev, r in expired:
            ctx.dead_letter(
                r,
                "DeviceReport",
                "UNKNOWN_DEVICE",
                [
                    f"device {dev!r} was never discovered in home {home!r} within "
                    f"{cfg.park_ttl_ms // 1000}s of its report"
                ],
            )
