"""The command-status lifecycle (CONTRACT.md section 4), defined once.

PENDING -> SENT -> ACKNOWLEDGED -> COMPLETED, or FAILED / TIMEOUT from any running step.
A status never moves back: ``rank`` orders them so every reader (the stream worker, the
command log in Redis, the history sink) keeps the most advanced one it has seen.
``aggregate`` is the one status of a command made of several (a group command).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

STATUSES: Final = ("PENDING", "SENT", "ACKNOWLEDGED", "COMPLETED", "FAILED", "TIMEOUT")
# Commands that reached one of these are over; the rest are in flight.
FINAL: Final = frozenset({"COMPLETED", "FAILED", "TIMEOUT"})
# REQUESTED: known to the gateway before the worker has written PENDING.
_RUNNING_RANK: Final = {"REQUESTED": 0, "PENDING": 1, "SENT": 2, "ACKNOWLEDGED": 3}
FINAL_RANK: Final = 4


def rank(status: str | None) -> int:
    """How far a command has come: every final status outranks every running one."""
    if status in FINAL:
        return FINAL_RANK
    return _RUNNING_RANK.get(status or "", 0)


def aggregate(statuses: Iterable[str | None]) -> str:
    """One status for several commands (a group command's members): COMPLETED when all
    are, the least advanced while some are still running, else FAILED (or TIMEOUT when
    none failed outright). Unknown (None) counts as PENDING; no commands at all is FAILED."""
    seen = list(statuses)
    if not seen:
        return "FAILED"
    if all(s == "COMPLETED" for s in seen):
        return "COMPLETED"
    running = [s for s in seen if s not in FINAL]
    if running:
        return min(running, key=rank) or "PENDING"
    return "FAILED" if "FAILED" in seen else "TIMEOUT"
