"""Handing a command or a scene run over to the processor that carries it out, in the
transaction of the event that asked for it.

A processor that decides on a command (a scene's action, an automation's) could emit a
``CommandRequested`` on ``homestream.commands.requested`` for the worker's next
transaction; handing it over here saves that transaction, ~8 ms at p50 before the command
is dispatched (``homestream bench scenes``, docs/streams.md). What the receiving handler
emits (the command's statuses, a SceneRun) joins the same outputs, and the statuses reach
the processors that take them chained. The cost: the request itself is no record.
"""

from __future__ import annotations

from typing import Any

from streams.fold import groups, scene_runs
from streams.fold.commands import on_command
from streams.fold.context import Context


def send_command(ctx: Context, record: dict[str, Any]) -> None:
    """A command as ``CommandRequested`` has it: to the home processor for one device,
    to the scenes processor for a whole group (``group_id``, no ``device_id``)."""
    request = {"home_id": ctx.home, "ts": ctx.now, **record}
    if not request.get("device_id") and request.get("group_id"):
        groups.on_group_command(ctx, request)
    else:
        on_command(ctx, request)


def request_scene(ctx: Context, record: dict[str, Any]) -> None:
    """A scene run as ``SceneRequested`` has it, to the scenes processor."""
    scene_runs.on_scene_requested(ctx, {"home_id": ctx.home, "ts": ctx.now, **record})
