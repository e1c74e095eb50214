"""The state a StateChange carries, written in one encoding and read from any version.

Version 2 records carry it as one JSON object text in ``state``: JSON holds every value the
shadow allows (arrays, six levels deep), which the Avro attribute maps cannot. Version 1
records carried the attribute maps, or ``state_json`` for deep shadows; :func:`state_of`
reads all three, so no reader needs to know which version wrote a record.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from topics import jsontext

PARTS = ("changed", "reported", "desired", "desired_changed", "delta")


@dataclass(frozen=True, slots=True)
class ChangeState:
    """``changed`` / ``desired_changed``: attributes this version changed (None = deleted);
    ``reported`` / ``desired``: the full state after it; ``delta``: desired != reported."""

    changed: dict[str, Any]
    reported: dict[str, Any]
    desired: dict[str, Any]
    desired_changed: dict[str, Any]
    delta: dict[str, Any]
    # the values before this version of the reported attributes it changed (None: it had
    # none), so a reader can tell a change "from" what; empty in version 1 records
    previous: dict[str, Any] = field(default_factory=dict)
    # automations a hub already ran on the report while the cloud was away: not run again
    local_runs: tuple[str, ...] = ()


def encode_state(
    *,
    changed: Mapping[str, Any],
    reported: Mapping[str, Any],
    desired: Mapping[str, Any],
    desired_changed: Mapping[str, Any],
    delta: Mapping[str, Any],
    previous: Mapping[str, Any] | None = None,
    local_runs: Sequence[str] = (),
) -> str:
    """The ``state`` field of a version 2 StateChange."""
    doc: dict[str, Any] = {
        "changed": changed,
        "reported": reported,
        "desired": desired,
        "desired_changed": desired_changed,
        "delta": delta,
        "previous": previous or {},
    }
    if local_runs:
        doc["local_runs"] = list(local_runs)
    return jsontext.dumps(doc)


def state_of(record: Mapping[str, Any]) -> ChangeState:
    """The state of a decoded StateChange of any version.

    Raises ValueError when the JSON text is not an object of objects (the caller
    dead-letters or skips the record).
    """
    text = record.get("state") or record.get("state_json")
    if text:
        doc = jsontext.loads(text)
        if not isinstance(doc, dict):
            raise ValueError("StateChange state is not a JSON object")
        parts = [doc.get(p) or {} for p in (*PARTS, "previous")]
        local_runs = doc.get("local_runs") or []
        if not isinstance(local_runs, list) or not all(isinstance(a, str) for a in local_runs):
            raise ValueError("StateChange state.local_runs is not an array of ids")
    else:  # version 1 with flat values: the attribute maps
        parts = [dict(record.get(p) or {}) for p in PARTS] + [{}]
        local_runs = []
    for name, part in zip((*PARTS, "previous"), parts, strict=True):
        if not isinstance(part, dict):
            raise ValueError(f"StateChange state.{name} is not a JSON object")
    changed, reported, desired, desired_changed, delta, previous = parts
    return ChangeState(
        changed, reported, desired, desired_changed, delta, previous, tuple(local_runs)
    )
