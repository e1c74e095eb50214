"""A device's shadow as the state keeps it, and the events a shadow change emits
(reports, commands and the shadow API all change shadows)."""

from __future__ import annotations

from typing import Any

from domain.shadow import Shadow
from streams.fold.context import Context
from topics import catalogue as t
from topics import jsontext
from topics.keys import device_key
from topics.state_change import encode_state


def load_shadow(device: dict[str, Any]) -> Shadow:
    s = device.get("shadow")
    if not s:
        return Shadow.empty()
    return Shadow(
        desired=s["desired"],
        reported=s["reported"],
        metadata=s["metadata"],
        version=s["version"],
        timestamp=s["timestamp"],
    )


def shadow_state(sh: Shadow) -> dict[str, Any]:
    """What a device's state record keeps of its shadow."""
    return {
        "desired": sh.desired,
        "reported": sh.reported,
        "metadata": sh.metadata,
        "version": sh.version,
        "timestamp": sh.timestamp,
    }


def emit_state_change(
    ctx: Context,
    dev: str,
    result: Any,
    *,
    source: str,
    command_id: str | None = None,
    before: Shadow | None = None,
    ts: int | None = None,
    local_runs: list[str] | None = None,
) -> None:
    """A new shadow version: StateChange, the ShadowDocument, and a ShadowDelta when
    desired and reported differ. ``before``: the shadow it came from, for the values the
    changed reported attributes had (automations trigger on "from"). ``ts``: the state's
    own time (a report's hub ts) when it is not the time of acceptance (``ctx.now``).
    ``local_runs``: the automations the hub already ran on the report (not run again)."""
    sh: Shadow = result.shadow
    ctx.emit(
        t.STATE_CHANGES,
        ctx.home,
        "StateChange",
        {
            "device_id": dev,
            "version": sh.version,
            "state": encode_state(
                changed=result.changed_reported,
                reported=sh.reported,
                desired=sh.desired,
                desired_changed=result.changed_desired,
                delta=result.delta,
                previous={k: before.reported.get(k) for k in result.changed_reported}
                if before is not None
                else None,
                local_runs=local_runs or (),
            ),
            "source": source,
            "command_id": command_id,
            "accepted_at": ctx.now,
            "ts": ctx.now if ts is None else ts,
        },
    )
    ctx.emit(
        t.SHADOW_DOCUMENTS,
        device_key(ctx.home, dev),
        "ShadowDocument",
        {
            "device_id": dev,
            "version": sh.version,
            "timestamp": sh.timestamp,
            "desired": jsontext.dumps(sh.desired),
            "reported": jsontext.dumps(sh.reported),
            "delta": jsontext.dumps(result.delta),
            "metadata": jsontext.dumps(sh.metadata),
        },
    )
    if result.delta_message is not None:
        ctx.emit(
            t.SHADOW_RESPONSES,
            ctx.home,
            "ShadowDelta",
            {
                "device_id": dev,
                "version": sh.version,
                "timestamp": sh.timestamp,
                "state": jsontext.dumps(result.delta_message["state"]),
                "metadata": jsontext.dumps(result.delta_message.get("metadata")),
            },
        )
