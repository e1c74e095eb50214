"""Commands: requests become desired state and a dispatch, the hub's acks and matching
reports move them on, a tick times them out (``streams.fold.health``).

PENDING -> SENT when a command is validated, turned into desired state and dispatched;
then ACKNOWLEDGED, COMPLETED or FAILED from the hub's acks, COMPLETED from a report that
satisfies it, TIMEOUT past its deadline (the statuses: ``domain.lifecycle``). A home's
record keeps its commands in flight, with their deadlines, until they are over.
"""

from __future__ import annotations

from typing import Any

from domain.commands import CommandRejected, desired_satisfied, plan_command
from domain.lifecycle import FINAL
from domain.shadow import apply_update
from streams.fold.context import Context
from streams.fold.shadows import emit_state_change, load_shadow, shadow_state
from topics import catalogue as t
from topics.keys import device_key

# A request's fields every status of it repeats: a group's or a scene's share of a command
# names its parent, so whoever tracks the parent finds it by the status alone.
SHOWN = ("command_id", "capability", "command", "request_id", "group_id", "parent_command_id")


def on_command(ctx: Context, rec: dict[str, Any]) -> None:
    home, dev, cid = rec["home_id"], rec.get("device_id"), rec["command_id"]
    if not dev and rec.get("group_id"):
        return  # a whole group's: the scenes processor sends one per member (fold.groups)
    h = ctx.home_state(home)
    if cid in h["pending"]:
        return  # a replayed request: already handled
    ctx.now = int(rec.get("issued_at") or ctx.now)
    ctx.counters["commands"] += 1
    base = {k: rec.get(k) for k in SHOWN}
    base["device_id"] = dev
    device = ctx.device_state(home, dev) if dev else None
    if dev is None or device is None:
        why = "no device id given" if not dev else f"device {dev!r} does not exist in this home"
        emit_status(ctx, base, "FAILED", why)
        return
    reported = load_shadow(device).reported
    try:
        desired = plan_command(
            device["descriptor"]["capabilities"],
            rec["capability"],
            rec["command"],
            rec.get("parameters") or {},
            reported,
        )
    except CommandRejected as exc:
        emit_status(ctx, base, "FAILED", exc.reason)
        return
    emit_status(ctx, base, "PENDING", None)
    result = apply_update(load_shadow(device), {"state": {"desired": desired}}, ctx.now // 1000)
    if result.accepted and result.changed:
        device = {**device, "shadow": shadow_state(result.shadow)}
        ctx.store.put(device_key(home, dev), device)
        emit_state_change(ctx, dev, result, source="command", command_id=cid)
    ctx.emit(
        t.COMMANDS_DISPATCHED,
        home,
        "CommandDispatched",
        {
            "device_id": dev,
            "command_id": cid,
            "capability": rec["capability"],
            "command": rec["command"],
            "parameters": rec.get("parameters") or {},
            "desired": desired,
            "issued_at": ctx.now,
        },
    )
    emit_status(ctx, base, "SENT", None)
    timeout = int(rec.get("timeout_ms") or ctx.config.default_timeout_ms)
    h = ctx.home_state(home)
    entry = {
        **base,
        "desired": desired,
        "deadline": ctx.now + timeout,
        "timeout_ms": timeout,
        "status": "SENT",
    }
    ctx.store.put(home, {**h, "pending": {**h["pending"], cid: entry}})


def on_ack(ctx: Context, rec: dict[str, Any]) -> None:
    home, cid = rec["home_id"], rec["command_id"]
    h = ctx.home_state(home)
    entry = h["pending"].get(cid)
    if entry is None or entry["status"] in FINAL:
        ctx.counters["ack_unknown_or_late"] += 1
        return
    status = rec["status"]
    if status not in ("ACKNOWLEDGED", "COMPLETED", "FAILED"):
        return
    if status == "ACKNOWLEDGED" and entry["status"] == "ACKNOWLEDGED":
        return
    emit_status(ctx, entry, status, rec.get("error") if status == "FAILED" else None)
    set_status(ctx, home, cid, status)


def complete_matching(ctx: Context, home: str, dev: str, reported: dict[str, Any]) -> None:
    """The device's commands in flight that its reported state now satisfies are done."""
    h = ctx.home_state(home)
    for cid, entry in list(h["pending"].items()):
        if entry["device_id"] != dev or entry["status"] in FINAL:
            continue
        if desired_satisfied(entry["desired"], reported):
            emit_status(ctx, entry, "COMPLETED", "the device reports the desired state")
            set_status(ctx, home, cid, "COMPLETED")


def set_status(ctx: Context, home: str, cid: str, status: str) -> None:
    """Record a command's new status in its home: a final one ends it."""
    h = ctx.home_state(home)
    pending = dict(h["pending"])
    if status in FINAL:
        pending.pop(cid, None)  # over: nothing to time out any more
    else:
        pending[cid] = {**pending[cid], "status": status}
    ctx.store.put(home, {**h, "pending": pending})


def emit_status(ctx: Context, entry: dict[str, Any], status: str, reason: str | None) -> None:
    ctx.counters[f"command_{status.lower()}"] += 1
    ctx.emit(
        t.COMMANDS_STATUS,
        ctx.home,
        "CommandStatus",
        {
            "command_id": entry["command_id"],
            "status": status,
            "reason": reason,
            "device_id": entry.get("device_id"),
            "capability": entry.get("capability"),
            "command": entry.get("command"),
            "request_id": entry.get("request_id"),
            "group_id": entry.get("group_id"),
            "parent_command_id": entry.get("parent_command_id"),
        },
    )
