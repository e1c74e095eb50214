"""The scenes processor: scene runs and group commands, in the worker rather than in a
gateway request, so a gateway restart mid-scene loses nothing.

It keeps the home's scene and group documents (``homestream.homes.config``), takes scene
run requests and group commands from ``homestream.commands.requested``, hands their
devices' commands to the home processor's command handler (``groups.send_share``), and
follows them through the ``CommandStatus`` records the home processor emits, handed over
chained in the same transaction. Ticks send a scene's delayed steps and end what is
overdue.
"""

from __future__ import annotations

from typing import Any

from streams.fold import agenda, groups, home_docs, scene_runs
from streams.fold.context import Context
from streams.fold.declaration import Processor, Table
from topics import catalogue as t


def on_home_config(ctx: Context, rec: dict[str, Any]) -> None:
    ref = home_docs.keep(ctx, rec)
    if ref is None:
        return
    # Requests that came before their document go on now that it is here.
    for item in agenda.take_waiting(ctx, ctx.home, ref):
        kind, _, item_id = item.partition(":")
        if kind == "run":
            scene_runs.resume(ctx, item_id)
        else:
            groups.resume(ctx, item_id)


def on_status(ctx: Context, rec: dict[str, Any]) -> None:
    """A command's status, chained from the processor that emitted it: one of a run's or
    of a group command's (by its ``parent_command_id``), or none of ours. The group
    commands' own statuses, which this processor emits, come back here too; they name no
    run or group command of ours as their parent."""
    if rec.get("parent_command_id") is None:
        return
    if not scene_runs.on_action_status(ctx, rec):
        groups.on_member_status(ctx, rec)


def on_tick(ctx: Context, rec: dict[str, Any]) -> None:
    # The home processor's tick has just moved the partition's tick time to now; what is
    # due here is in each home's agenda, which asks for the tick itself (``due_at``).
    for home in sorted(ctx.store.due_homes(ctx.now, ctx.now)):
        ctx.home = home
        for item in agenda.due_items(ctx, home, ctx.now):
            kind, _, item_id = item.partition(":")
            if kind == "run":
                scene_runs.on_due(ctx, item_id)
            else:
                groups.on_due(ctx, item_id)


SCENES = Processor(
    name="scenes",
    inputs={
        t.HOME_CONFIG: {"HomeConfig": on_home_config},
        t.COMMANDS_REQUESTED: {
            "SceneRequested": scene_runs.on_scene_requested,
            "CommandRequested": groups.on_group_command,
        },
    },
    chained={t.COMMANDS_STATUS: {"CommandStatus": on_status}},
    tables=(
        Table("<home>/#scenes", "the agenda: when each run or group command is due next"),
        Table("<home>/#scenes:doc:<kind>:<id>", "the home's scenes, groups and settings"),
        Table("<home>/#scenes:run:<run id>", "a scene run in flight: steps, commands, results"),
        Table("<home>/#scenes:group:<command id>", "a group command in flight: its members"),
    ),
    timers=(on_tick,),
)
