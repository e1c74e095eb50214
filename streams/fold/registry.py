"""The device registry and what devices report: discovery and removal, reports (parked
while their device is unknown, validated, deduped, applied to the shadow), availability
and battery."""

from __future__ import annotations

from typing import Any

from domain.dedupe import changes
from domain.shadow import apply_report
from domain.validate import validate_descriptor, validate_state
from streams.fold.commands import complete_matching
from streams.fold.context import Context
from streams.fold.shadows import emit_state_change, load_shadow, shadow_state
from topics import catalogue as t
from topics.descriptor import TEXT_FIELDS
from topics.keys import device_key

# Availability this worker derives itself. It goes to the same compacted topic as the
# hubs' (the latest word per device, for sinks and apps), which is also an input. Read
# back, it must not be applied again: an old "offline" and a newer "online" of the same
# device would flip it and be re-emitted, bouncing between worker and topic for ever.
FROM_REPORT, FROM_SILENCE = "report", "silence"
DERIVED_AVAILABILITY = frozenset({FROM_REPORT, FROM_SILENCE})


# -- discovery and removal ---------------------------------------------------------------
def on_discovered(ctx: Context, rec: dict[str, Any]) -> None:
    home, dev = rec["home_id"], rec["device_id"]
    descriptor = {k: rec.get(k) for k in TEXT_FIELDS}
    descriptor["capabilities"] = list(rec.get("capabilities") or [])
    errors = validate_descriptor(descriptor)
    if errors:
        ctx.dead_letter(rec, "DeviceDiscovered", "SCHEMA_VIOLATION", errors)
        return
    existing = ctx.device_state(home, dev)
    if existing is not None and existing["descriptor"] == descriptor:
        ctx.counters["discovery_unchanged"] += 1
        return
    state = existing or {
        "shadow": None,
        "online": True,
        "last_seen": ctx.now,
        "battery": None,
        "low_battery": False,
        "registered_at": ctx.now,
    }
    state = {**state, "descriptor": descriptor}
    ctx.store.put(device_key(home, dev), state)
    h = ctx.home_state(home)
    if dev not in h["devices"]:
        h = {**h, "devices": [*h["devices"], dev]}
    parked = h["parked"].get(dev, [])
    h = {**h, "parked": {k: v for k, v in h["parked"].items() if k != dev}}
    ctx.store.put(home, h)
    ctx.emit(
        t.DEVICE_REGISTRY,
        device_key(home, dev),
        "DeviceRegistered",
        {
            "device_id": dev,
            **descriptor,
            "extra": rec.get("extra"),
            "source": "discovery",
            "registered_at": state["registered_at"],
        },
    )
    ctx.counters["registered"] += 1
    for report in parked:  # reports that arrived before the discovery
        ctx.counters["unparked"] += 1
        on_report(ctx, report)


def on_removed(ctx: Context, rec: dict[str, Any]) -> None:
    home, dev = rec["home_id"], rec["device_id"]
    if ctx.device_state(home, dev) is None:
        return
    ctx.store.put(device_key(home, dev), None)
    h = ctx.home_state(home)
    pending = {c: p for c, p in h["pending"].items() if p["device_id"] != dev}
    ctx.store.put(home, {**h, "devices": [d for d in h["devices"] if d != dev], "pending": pending})
    ctx.emit(
        t.DEVICE_REGISTRY,
        device_key(home, dev),
        "DeviceRemoved",
        {
            "device_id": dev,
            "source": rec.get("source", "hub"),
            "removed_by": rec.get("removed_by"),
        },
    )
    # Then the tombstone: compaction drops the device from the registry for good
    # (docs/topics.md); readers of the whole history still see DeviceRemoved first.
    ctx.tombstone(t.DEVICE_REGISTRY, device_key(home, dev))
    ctx.counters["removed"] += 1


# -- reports -----------------------------------------------------------------------------
def on_report(ctx: Context, rec: dict[str, Any]) -> None:
    home, dev = rec["home_id"], rec["device_id"]
    ctx.counters["reports"] += 1
    device = ctx.device_state(home, dev)
    if device is None:
        park(ctx, rec)
        return
    caps = device["descriptor"]["capabilities"]
    checked = validate_state(caps, rec.get("state") or {})
    if checked.errors:
        ctx.dead_letter(rec, "DeviceReport", _reason(checked.errors), checked.errors)
    device = mark_seen(ctx, home, dev, device)
    shadow = load_shadow(device)
    changed = changes(shadow.reported, checked.valid, caps) if checked.valid else {}
    if not changed:
        ctx.counters["noop"] += 1
        ctx.store.put(device_key(home, dev), device)
        return
    result = apply_report(shadow, changed, ctx.now // 1000)
    if not result.accepted:  # e.g. the shadow would exceed 8 KB
        ctx.store.put(device_key(home, dev), device)
        why = result.error.message if result.error else "rejected by the shadow"
        ctx.dead_letter(rec, "DeviceReport", "PAYLOAD_TOO_LARGE", [why])
        return
    device = {**device, "shadow": shadow_state(result.shadow)}
    device = _battery(ctx, home, dev, device, result.shadow.reported)
    ctx.store.put(device_key(home, dev), device)
    ctx.counters["applied"] += 1
    # History stamps the change with the hub's time (a replayed outbox keeps its minutes).
    emit_state_change(
        ctx,
        dev,
        result,
        source="report",
        before=shadow,
        ts=int(rec.get("ts") or ctx.now),
        local_runs=list(rec.get("local_runs") or ()),
    )
    complete_matching(ctx, home, dev, result.shadow.reported)


def park(ctx: Context, rec: dict[str, Any]) -> None:
    """Keep a report of a device not discovered yet (the oldest goes when the home's
    parking is full; a tick dead-letters those parked too long)."""
    home, dev = rec["home_id"], rec["device_id"]
    h = ctx.home_state(home)
    parked = {k: list(v) for k, v in h["parked"].items()}
    parked.setdefault(dev, []).append(rec)
    total = sum(len(v) for v in parked.values())
    limit = ctx.config.park_max_per_home
    if total > limit:  # drop the oldest, with its reason
        oldest_dev = min(parked, key=lambda d: parked[d][0].get("received_at", 0))
        old = parked[oldest_dev].pop(0)
        if not parked[oldest_dev]:
            del parked[oldest_dev]
        ctx.dead_letter(
            old,
            "DeviceReport",
            "UNKNOWN_DEVICE",
            [
                f"device {old['device_id']!r} is not discovered and the parking space of "
                f"home {home!r} ({limit} reports) is full"
            ],
        )
    ctx.store.put(home, {**h, "parked": parked})
    ctx.counters["parked"] += 1


def _reason(errors: list) -> str:
    """The dead-letter reason of a report's validation errors."""
    codes = {str(getattr(e, "code", "")) for e in errors}
    for code, reason in (
        ("unknown_attribute", "UNKNOWN_ATTRIBUTE"),
        ("wrong_type", "WRONG_TYPE"),
        ("out_of_range", "OUT_OF_RANGE"),
    ):
        if code in codes:
            return reason
    return "SCHEMA_VIOLATION"


# -- availability ------------------------------------------------------------------------
def mark_seen(ctx: Context, home: str, dev: str, device: dict[str, Any]) -> dict[str, Any]:
    """A report came: the device was seen now, and is online again if it was not."""
    device = {**device, "last_seen": max(device.get("last_seen") or 0, ctx.now)}
    if not device.get("online"):
        device = {**device, "online": True}
        emit_availability(ctx, dev, True, FROM_REPORT)
    return device


def on_availability(ctx: Context, rec: dict[str, Any]) -> None:
    if rec.get("source") in DERIVED_AVAILABILITY:
        return  # our own output, read back from the topic: already in the state
    home, dev = rec["home_id"], rec["device_id"]
    device = ctx.device_state(home, dev)
    if device is None or bool(device.get("online")) == bool(rec["online"]):
        return
    device = {**device, "online": bool(rec["online"])}
    if rec["online"]:
        device["last_seen"] = max(device.get("last_seen") or 0, ctx.now)
    ctx.store.put(device_key(home, dev), device)
    emit_availability(ctx, dev, bool(rec["online"]), rec.get("source", "mqtt"))
    if not rec["online"]:
        emit_offline_notice(ctx, dev, device, "the hub reported it offline")


def emit_availability(ctx: Context, dev: str, online: bool, source: str) -> None:
    ctx.emit(
        t.DEVICE_AVAILABILITY,
        device_key(ctx.home, dev),
        "Availability",
        {"device_id": dev, "online": online, "source": source},
    )


def emit_offline_notice(ctx: Context, dev: str, device: dict[str, Any], why: str) -> None:
    name = device["descriptor"].get("name") or dev
    ctx.emit(
        t.NOTIFICATIONS,
        ctx.home,
        "Notification",
        {
            "kind": "DEVICE_OFFLINE",
            "severity": "WARNING",
            "title": f"{name} is offline",
            "message": f"{name} is offline: {why}.",
            "device_id": dev,
        },
    )


# -- battery -----------------------------------------------------------------------------
def _battery(
    ctx: Context, home: str, dev: str, device: dict[str, Any], reported: dict[str, Any]
) -> dict[str, Any]:
    """Keep the reported level; notify once when it is low, re-armed once it recovered."""
    level = reported.get("battery")
    if not isinstance(level, int | float) or isinstance(level, bool):
        return device
    device = {**device, "battery": level}
    cfg = ctx.config
    if level <= cfg.low_battery and not device.get("low_battery"):
        name = device["descriptor"].get("name") or dev
        ctx.emit(
            t.NOTIFICATIONS,
            home,
            "Notification",
            {
                "kind": "LOW_BATTERY",
                "severity": "WARNING",
                "title": f"{name}: battery low",
                "message": f"{name} is at {level:g}% battery; replace or charge it soon.",
                "device_id": dev,
            },
        )
        device["low_battery"] = True
    elif level > cfg.battery_recovered and device.get("low_battery"):
        device["low_battery"] = False
    return device
