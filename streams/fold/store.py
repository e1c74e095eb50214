"""The state the fold reads and writes: one value per key, per partition.

Two kinds of key, both plain JSON-able dicts:
- ``home/device``: the descriptor, the shadow, health;
- ``home``: device ids, parked reports, in-flight commands;
- ``home/#name``: another processor's per-home state (``streams.due.timer_key``).

The worker's store is RocksDB behind a cache (``streams.txloop.PartitionStore``); tests
and the reference fold use ``DictStore``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Protocol

from streams.due import timer_home


class Store(Protocol):
    def get(self, key: str) -> dict[str, Any] | None: ...

    def put(self, key: str, value: dict[str, Any] | None) -> None: ...

    def homes(self) -> Iterable[str]: ...

    def due_homes(self, last_tick: int, now: int) -> Iterable[str]:
        """A superset of the homes a tick at ``now`` has work for (the one before it was at
        ``last_tick``)."""
        ...


class DictStore:
    """A Store over a dict: for tests and for the reference fold."""

    def __init__(self, data: dict[str, dict[str, Any]] | None = None) -> None:
        self.data: dict[str, dict[str, Any]] = {} if data is None else data

    def get(self, key: str) -> dict[str, Any] | None:
        return self.data.get(key)

    def put(self, key: str, value: dict[str, Any] | None) -> None:
        if value is None:
            self.data.pop(key, None)
        else:
            self.data[key] = value

    def homes(self) -> Iterator[str]:
        return (k for k in list(self.data) if "/" not in k)

    def due_homes(self, last_tick: int, now: int) -> Iterable[str]:
        """Homes a tick at ``now`` may have work for: here all of them, and those of
        every processor timer key (see ``streams.due.DueIndex``)."""
        homes = dict.fromkeys(self.homes())
        for key in list(self.data):
            home = timer_home(key)
            if home is not None:
                homes[home] = None
        return iter(homes)
