"""What a new run may do while others of the same automation are active: the ``mode``.

Home Assistant's semantics (its script modes), applied after the conditions held:

- ``single``: a new run while one is active is skipped, with a warning in its trace;
- ``restart``: the active runs are stopped (aborted) and the new one starts;
- ``queued``: the new run waits until the ones before it have finished; at most ``max``
  runs (the active one included) exist at once, more are skipped;
- ``parallel``: up to ``max`` runs at once, more are skipped.

The warning can be silenced with ``max_exceeded: silent``. Nothing here changes a run;
the caller applies the decision with ``runner.abort`` / ``advance`` / ``queue`` /
``skip``, and asks :func:`dequeue` which queued run to start whenever a run finishes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from domain.automation.model import Automation


@dataclass(frozen=True)
class Admission:
    start: bool = False  # advance the new run now
    queue: bool = False  # keep it queued until dequeue names it
    cancel: tuple[str, ...] = ()  # run ids to abort first
    drop: str | None = None  # why the new run is skipped instead
    warn: bool = False  # whether the skip is a warning (max_exceeded is not silent)


def admit(
    automation: Automation,
    active: Sequence[Mapping[str, Any]],
    queued: Sequence[Mapping[str, Any]],
    run: Mapping[str, Any],
) -> Admission:
    """The decision for ``run`` given the automation's ``active`` runs (started, not
    finished) and ``queued`` ones, both in the order they came."""
    others = [r for r in active if r["run_id"] != run["run_id"]]
    waiting = [r for r in queued if r["run_id"] != run["run_id"]]
    mode, limit = automation.mode, automation.max_runs
    warn = automation.warn_when_exceeded
    if mode == "restart":
        return Admission(start=True, cancel=tuple(r["run_id"] for r in [*others, *waiting]))
    if mode == "single":
        if others:
            return Admission(drop="already running (mode single)", warn=warn)
        return Admission(start=True)
    if mode == "parallel":
        if len(others) >= limit:
            return Admission(drop=f"{limit} runs already running (mode parallel, max {limit})",
                             warn=warn)  # fmt: skip
        return Admission(start=True)
    # queued
    if len(others) + len(waiting) >= limit:
        return Admission(drop=f"{limit} runs already running or queued (mode queued, max {limit})",
                         warn=warn)  # fmt: skip
    if others or waiting:
        return Admission(queue=True)
    return Admission(start=True)


def dequeue(
    automation: Automation,
    active: Sequence[Mapping[str, Any]],
    queued: Sequence[Mapping[str, Any]],
) -> str | None:
    """The queued run to start now (queued mode runs one at a time, in order), or None."""
    if automation.mode != "queued" or active or not queued:
        return None
    return str(queued[0]["run_id"])
