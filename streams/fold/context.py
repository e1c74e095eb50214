"""What a handler works with while it handles one input event.

``Context`` gives it the partition's state (``store``, ``home_state``, ``device_state``),
the time of the event (``now``: from the event, never a clock), the settings, the
counters, and the outputs: ``emit`` derives each output's event id from the input's id
(uuid5), so folding the same input twice gives byte-identical outputs.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from streams.fold.config import ProcessorConfig
from streams.fold.store import Store
from topics import catalogue as t
from topics.keys import device_key

_NS = uuid.UUID("6f1d3c2a-8a53-4f0e-9d55-3f0b1e6a7c11")
_NS_BYTES = _NS.bytes


def derived_id(source_id: str, n: int) -> str:
    """``str(uuid.uuid5(_NS, f"{source_id}:{n}"))``, computed without building UUID
    objects (uuid5 was a tenth of a report's fold): the SHA-1 of namespace + name, with
    the version (5) and RFC 4122 variant bits set, as text."""
    b = bytearray(hashlib.sha1(_NS_BYTES + f"{source_id}:{n}".encode()).digest()[:16])
    b[6] = (b[6] & 0x0F) | 0x50
    b[8] = (b[8] & 0x3F) | 0x80
    x = b.hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


TOMBSTONE = ""  # an Emit's record name for a null value (deletes the key when compacted)


@dataclass(frozen=True)
class Emit:
    topic: str
    key: str
    record_name: str  # TOMBSTONE: a null value (deletes the key on a compacted topic)
    record: dict[str, Any]


@dataclass
class Context:
    """One input event being handled: state access, and its outputs with derived ids."""

    store: Store
    config: ProcessorConfig
    counters: Counter[str]
    source_id: str  # the input's event id, which the outputs' ids derive from
    home: str  # the home the outputs are for (a tick sets each home it visits)
    now: int  # ms, from the event
    out: list[Emit] = field(default_factory=list)

    # -- state ---------------------------------------------------------------------------
    def home_state(self, home: str) -> dict[str, Any]:
        return self.store.get(home) or {"devices": [], "parked": {}, "pending": {}}

    def device_state(self, home: str, device: str) -> dict[str, Any] | None:
        return self.store.get(device_key(home, device))

    # -- outputs -------------------------------------------------------------------------
    def tombstone(self, topic: str, key: str) -> None:
        self.out.append(Emit(topic, key, TOMBSTONE, {}))

    def emit(self, topic: str, key: str, name: str, record: dict[str, Any]) -> None:
        eid = derived_id(self.source_id, len(self.out))
        self.out.append(
            Emit(
                topic, key, name, {"event_id": eid, "home_id": self.home, "ts": self.now, **record}
            )
        )

    def dead_letter(self, rec: dict[str, Any], name: str, reason: str, errors: list) -> None:
        """Refuse (part of) an input: to the dead letters, with why, the original record
        and structured error details."""
        self.counters[f"dead_letter_{reason.lower()}"] += 1
        messages = [getattr(e, "reason", str(e)) for e in errors]
        self.emit(
            t.DEADLETTER,
            self.home,
            "DeadLetter",
            {
                "reason": reason,
                "message": "; ".join(messages),
                "original": json.dumps({"record": name, "value": rec}, default=str).encode(),
                "source": {"transport": "kafka"},
                "device_id": rec.get("device_id"),
                "first_seen": int(rec.get("received_at") or rec.get("ts") or self.now),
                "processor": "streams",
                "error_detail": json.dumps(
                    [e.as_dict() if hasattr(e, "as_dict") else {"message": str(e)} for e in errors]
                ),
            },
        )
