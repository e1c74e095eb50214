"""Group commands: one CommandRequested for a whole group becomes one per member, and
the members' statuses one status of the group command.

The gateway produces the group command (``group_id`` set, no ``device_id``); the home
processor leaves it alone (``fold.commands.on_command``). Here it is expanded with
``domain.groups.plan_group`` over the group document (``fold.home_docs``) and the devices
the home processor holds: each member that can take it gets a ``CommandRequested`` with
``parent_command_id`` = the group command's id and an id derived from it
(``child_command_id``), so the gateway knows the ids without asking. The home
processor's command handler takes each at once (``send_share``), as it would take one
from ``homestream.commands.requested``.

The group command's own ``CommandStatus`` is ``domain.lifecycle.aggregate`` of its
members': PENDING once expanded, then each time the aggregate moves on, ending COMPLETED
when every member completed, else FAILED (TIMEOUT when none failed outright). A member it
skips (no such capability, gone from the home) ends FAILED at once under its own id, with
the reason. A group the
worker does not know yet (its document may be behind the request on another topic) is
waited for ``DOC_WAIT_MS``; then the group command FAILED.
"""

from __future__ import annotations

from typing import Any

from domain.groups import child_command_id, plan_group
from domain.lifecycle import FINAL, aggregate, rank
from streams.fold import agenda
from streams.fold.commands import on_command
from streams.fold.context import Context
from streams.fold.home_docs import capabilities, doc_ref, stored_doc, unknown
from topics import catalogue as t

# How long a request waits for a document that has not reached the worker yet.
DOC_WAIT_MS = 5_000
# After a command's own timeout, how long its owner waits for the home processor's final
# status (its TIMEOUT comes on the first tick past the deadline) before giving up on it.
RESULT_GRACE_MS = 3_000

PARENT_FIELDS = ("group_id", "capability", "command", "request_id", "parent_command_id")


def item_of(command_id: str) -> str:
    return f"group:{command_id}"


def send_share(ctx: Context, **fields: Any) -> None:
    """One device's share of a group command or a scene's action: the home processor's
    command handler takes it here and now, in this transaction.

    Not through ``homestream.commands.requested``: that costs one more worker transaction
    before the commands are dispatched, ~8 ms at p50 (19 against 11 ms from the request
    to the last of 10 commands dispatched, ``homestream bench scenes``, BENCHMARKS.md),
    and a group command would reach its devices later than when the gateway sent the
    members' commands itself. Its statuses come back chained all the same."""
    ctx.counters["shares_sent"] += 1
    on_command(ctx, {"home_id": ctx.home, **fields})


def on_group_command(ctx: Context, rec: dict[str, Any]) -> None:
    if rec.get("device_id") or not rec.get("group_id"):
        return  # one device's: the home processor's
    home, cid = ctx.home, str(rec["command_id"])
    key = agenda.item_key(home, item_of(cid))
    if ctx.store.get(key) is not None:
        return  # a replayed request: already in flight
    ctx.counters["group_commands"] += 1
    entry = {
        "command_id": cid,
        **{k: rec.get(k) for k in PARENT_FIELDS},
        "parameters": rec.get("parameters") or {},
        "requested_by": rec.get("requested_by") or "",
        "timeout_ms": int(rec.get("timeout_ms") or ctx.config.default_timeout_ms),
    }
    if stored_doc(ctx, home, "group", str(rec["group_id"])) is None:
        until = ctx.now + DOC_WAIT_MS
        ctx.store.put(key, {**entry, "waiting_until": until})
        agenda.wait_for(ctx, home, doc_ref("group", str(rec["group_id"])), item_of(cid))
        agenda.schedule(ctx, home, item_of(cid), until)
        return
    _expand(ctx, entry)


def resume(ctx: Context, command_id: str) -> None:
    """The group's document arrived: expand the command that waited for it."""
    entry = ctx.store.get(agenda.item_key(ctx.home, item_of(command_id)))
    if entry is not None and "waiting_until" in entry:
        _expand(ctx, {k: v for k, v in entry.items() if k != "waiting_until"})


def _expand(ctx: Context, entry: dict[str, Any]) -> None:
    home, cid, gid = ctx.home, entry["command_id"], str(entry["group_id"])
    group = stored_doc(ctx, home, "group", gid)
    plan = plan_group(
        (group or {}).get("devices") or [],
        lambda d: capabilities(ctx, home, d),
        entry["capability"],
        entry["command"],
        entry["parameters"],
    )
    if group is None or not plan.targets:
        if group is None:
            why = unknown("group", gid)
        elif plan.first_rejection is not None:
            why = plan.first_rejection.reason
        else:
            why = f"group {gid!r} has no devices to command"
        _emit(ctx, entry, "FAILED", why)
        _skip_members(ctx, entry, plan.skipped)
        _end(ctx, cid)
        return
    members = {child_command_id(cid, d): [d, None] for d in plan.targets}
    deadline = ctx.now + entry["timeout_ms"] + RESULT_GRACE_MS
    state = {**entry, "members": members, "skipped": [list(s) for s in plan.skipped]}
    ctx.store.put(agenda.item_key(home, item_of(cid)), {**state, "status": "PENDING"})
    agenda.schedule(ctx, home, item_of(cid), deadline)
    _emit(ctx, state, "PENDING", None)
    _skip_members(ctx, entry, plan.skipped)
    for member_id, (device, _status) in members.items():
        send_share(
            ctx,
            command_id=member_id,
            device_id=device,
            group_id=gid,
            capability=entry["capability"],
            command=entry["command"],
            parameters=entry["parameters"],
            requested_by=entry["requested_by"],
            timeout_ms=entry["timeout_ms"],
            issued_at=ctx.now,
            request_id=entry["request_id"],
            parent_command_id=cid,
        )


def on_member_status(ctx: Context, rec: dict[str, Any]) -> bool:
    """A member's status; False when its parent is no group command in flight here."""
    cid = str(rec["parent_command_id"])
    key = agenda.item_key(ctx.home, item_of(cid))
    state = ctx.store.get(key)
    if state is None or "members" not in state:
        return False
    member = state["members"].get(rec["command_id"])
    if member is None or rank(rec["status"]) <= rank(member[1]):
        return True
    members = {**state["members"], rec["command_id"]: [member[0], rec["status"]]}
    _advance(ctx, {**state, "members": members})
    return True


def on_due(ctx: Context, command_id: str) -> None:
    """Its document never came, or its members' results are overdue."""
    state = ctx.store.get(agenda.item_key(ctx.home, item_of(command_id)))
    if state is None:
        agenda.forget(ctx, ctx.home, item_of(command_id))
        return
    if "waiting_until" in state:
        why = unknown("group", str(state["group_id"]))
        _emit(ctx, state, "FAILED", why)
        _end(ctx, command_id)
        return
    members = {
        mid: [dev, status if status in FINAL else "TIMEOUT"]
        for mid, (dev, status) in state["members"].items()
    }
    _advance(ctx, {**state, "members": members})


def _advance(ctx: Context, state: dict[str, Any]) -> None:
    """Store the members' statuses; tell the group command's own when it moved on."""
    statuses = [status for _dev, status in state["members"].values()]
    now = aggregate(statuses)
    if now in FINAL:
        _emit(ctx, state, now, _summary(state, now))
        _end(ctx, state["command_id"])
        return
    if rank(now) > rank(state["status"]):
        _emit(ctx, state, now, None)
    ctx.store.put(agenda.item_key(ctx.home, item_of(state["command_id"])), {**state, "status": now})


def _summary(state: dict[str, Any], status: str) -> str | None:
    """Why a group command ended as it did, when not every member completed."""
    members = list(state["members"].values())
    done = sum(1 for _dev, s in members if s == "COMPLETED")
    parts = []
    if status != "COMPLETED":
        parts.append(f"{done} of {len(members)} members completed")
        parts += [f"{dev}: {s}" for dev, s in members if s != "COMPLETED"]
    if state.get("skipped"):
        parts.append("skipped " + ", ".join(f"{dev} ({why})" for dev, why in state["skipped"]))
    return "; ".join(parts) or None


def _skip_members(ctx: Context, entry: dict[str, Any], skipped: Any) -> None:
    """A member the worker will not command ends FAILED under its own id: the gateway
    planned the group over its own view of the devices, which may be behind or ahead of
    the worker's, and may have written that member's PENDING already."""
    for device, why in skipped:
        ctx.emit(
            t.COMMANDS_STATUS,
            ctx.home,
            "CommandStatus",
            {
                **{k: entry.get(k) for k in PARENT_FIELDS},
                "command_id": child_command_id(entry["command_id"], device),
                "status": "FAILED",
                "reason": f"skipped: {why}",
                "device_id": device,
                "parent_command_id": entry["command_id"],
            },
        )


def _end(ctx: Context, command_id: str) -> None:
    ctx.store.put(agenda.item_key(ctx.home, item_of(command_id)), None)
    agenda.forget(ctx, ctx.home, item_of(command_id))


def _emit(ctx: Context, state: dict[str, Any], status: str, reason: str | None) -> None:
    ctx.counters[f"group_command_{status.lower()}"] += 1
    ctx.emit(
        t.COMMANDS_STATUS,
        ctx.home,
        "CommandStatus",
        {
            "command_id": state["command_id"],
            "status": status,
            "reason": reason,
            "device_id": None,
            **{k: state.get(k) for k in PARENT_FIELDS},
        },
    )
