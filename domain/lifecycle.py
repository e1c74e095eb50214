"""The command-status lifecycle (CONTRACT.md section 4), defined once.

PENDING -> SENT -> ACKNOWLEDGED -> COMPLETED, or FAILED / TIMEOUT from any running step.
A status never moves back: ``rank`` orders them so every reader (the stream worker, the
command log in Redis, the history sink) keeps the most advanced one it has seen.
"""

from __future__ import annotations

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
