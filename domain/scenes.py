"""Scenes: stored lists of actions with delays, and what a run of one comes to.

A scene is ``{"name", "actions": [...], "conditions"?: [...]}``; each action is
``{"device_id" | "group_id", "capability", "command", "parameters"?, "delay_ms"?,
"conditions"?}``. ``delay_ms`` waits before that action, relative to the previous one: an
action is due at the sum of the delays up to it, and the actions due at the same time are
one *step*, sent together (in parallel, not one after the other).

An action succeeded when every command it sent COMPLETED; it failed when one did not, or
when it could send none; it was skipped when its conditions (or the scene's) did not hold.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

MAX_TOTAL_DELAY_MS: Final = 60_000

SUCCEEDED: Final = "succeeded"
FAILED: Final = "failed"
SKIPPED: Final = "skipped"


def steps(actions: Sequence[Mapping[str, Any]]) -> list[tuple[int, tuple[int, ...]]]:
    """``(offset ms from the run's start, action indexes)`` per step, in time order."""
    out: list[tuple[int, tuple[int, ...]]] = []
    at = 0
    for i, action in enumerate(actions):
        at += max(0, int(action.get("delay_ms") or 0))
        if out and out[-1][0] == at:
            out[-1] = (at, (*out[-1][1], i))
        else:
            out.append((at, (i,)))
    return out


def action_result(statuses: Iterable[str | None]) -> str | None:
    """An action's result from its commands' statuses; None while one is still running."""
    seen = list(statuses)
    if not seen:
        return FAILED
    if any(s not in ("COMPLETED", "FAILED", "TIMEOUT") for s in seen):
        return None
    return SUCCEEDED if all(s == "COMPLETED" for s in seen) else FAILED


def run_status(succeeded: int, failed: int) -> str:
    """COMPLETED when no action failed (skipped ones do not count), PARTIAL when some
    failed and some succeeded, FAILED when none succeeded."""
    if failed == 0:
        return "COMPLETED"
    return "PARTIAL" if succeeded else "FAILED"
