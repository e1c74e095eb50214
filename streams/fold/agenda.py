"""The scenes processor's agenda of a home: when each of its items in flight is due next,
and which of them wait for a document the worker does not have yet.

An *item* is a scene run (``run:<run id>``) or a group command (``group:<command id>``),
kept under its own key, ``<home>/#scenes:<item>``. The agenda is one more key,
``<home>/#scenes``, whose ``due_at`` (the earliest of its items') asks for ticks
(``streams.due``): the store has no prefix scan, so a tick finds a home's items here.
"""

from __future__ import annotations

from typing import Any

from streams.due import timer_key
from streams.fold.context import Context


def agenda_key(home: str) -> str:
    return timer_key(home, "scenes")


def item_key(home: str, item: str) -> str:
    return timer_key(home, f"scenes:{item}")


def _load(ctx: Context, home: str) -> dict[str, Any]:
    return ctx.store.get(agenda_key(home)) or {"due": {}, "waiting": {}}


def _save(ctx: Context, home: str, agenda: dict[str, Any]) -> None:
    if not agenda["due"] and not agenda["waiting"]:
        ctx.store.put(agenda_key(home), None)
        return
    due = agenda["due"]
    # Only the agenda asks for ticks: items themselves never carry a due_at.
    at = min(due.values()) if due else None
    ctx.store.put(agenda_key(home), {**agenda, "due_at": at})


def schedule(ctx: Context, home: str, item: str, at: int | None) -> None:
    """``item`` is due at ``at`` (None: not on a timer)."""
    agenda = _load(ctx, home)
    due = dict(agenda["due"])
    if at is None:
        due.pop(item, None)
    else:
        due[item] = int(at)
    if due != agenda["due"]:
        _save(ctx, home, {**agenda, "due": due})


def wait_for(ctx: Context, home: str, doc: str, item: str) -> None:
    """``item`` waits for document ``doc`` (``<kind>:<doc id>``)."""
    agenda = _load(ctx, home)
    waiting = dict(agenda["waiting"])
    waiting[doc] = [*waiting.get(doc, []), item]
    _save(ctx, home, {**agenda, "waiting": waiting})


def take_waiting(ctx: Context, home: str, doc: str) -> list[str]:
    """The items that waited for ``doc``, no longer waiting."""
    agenda = _load(ctx, home)
    items = agenda["waiting"].get(doc)
    if not items:
        return []
    waiting = {k: v for k, v in agenda["waiting"].items() if k != doc}
    _save(ctx, home, {**agenda, "waiting": waiting})
    return list(items)


def forget(ctx: Context, home: str, item: str) -> None:
    """``item`` is over: off the timers and out of every wait."""
    agenda = ctx.store.get(agenda_key(home))
    if agenda is None:
        return
    due = {k: v for k, v in agenda["due"].items() if k != item}
    waiting = {
        doc: rest
        for doc, items in agenda["waiting"].items()
        if (rest := [i for i in items if i != item])
    }
    if due != agenda["due"] or waiting != agenda["waiting"]:
        _save(ctx, home, {**agenda, "due": due, "waiting": waiting})


def due_items(ctx: Context, home: str, now: int) -> list[str]:
    """The home's items due at ``now``, earliest first."""
    agenda = ctx.store.get(agenda_key(home))
    if agenda is None or agenda.get("due_at") is None or agenda["due_at"] > now:
        return []
    due = sorted(agenda["due"].items(), key=lambda x: (x[1], x[0]))
    return [item for item, at in due if at <= now]
