"""This process's command statuses, over the shared command log.

The command log (``stores.command_log``, in Redis) is written by the Redis sink from
``homestream.commands.status`` and, for the commands this gateway sends, by the routes
themselves (``gateway/routes/common.py``, ``groups.py``). The sink writes a little after the
status was produced, so :class:`CommandStatuses` keeps the latest statuses this process's
own feed saw (every gateway process sees every status) and answers from them first: a GET
right after a status finds it, and ``"wait": true`` callers wake on it at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from domain.lifecycle import FINAL, FINAL_RANK, rank

log = logging.getLogger("homestream.gateway.fanout")


class CommandLog(Protocol):
    """What the gateway needs of the command log (``stores.command_log.RedisCommandLog``;
    ``gateway.memory.MemoryCommandLog`` in tests)."""

    def record(self, status: Mapping[str, Any]) -> bool: ...
    def get(self, command_id: str) -> dict[str, Any] | None: ...


class CommandStatuses:
    """The latest statuses this process saw, over the shared command log: wakes
    ``wait_status`` callers and calls the status listeners (loop thread only)."""

    def __init__(self, commands: CommandLog, *, latest_kept: int = 10_000) -> None:
        self.commands = commands
        self._latest: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._latest_kept = latest_kept
        self._waiters: dict[str, set[asyncio.Event]] = defaultdict(set)
        self._listeners: list[Callable[[dict[str, Any]], None]] = []

    def add_listener(self, fn: Callable[[dict[str, Any]], None]) -> None:
        self._listeners.append(fn)

    def remove_listener(self, fn: Callable[[dict[str, Any]], None]) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(fn)

    def note(self, status: dict[str, Any]) -> None:
        """A status seen here (the feed, or the request itself): wakes waiters."""
        cid = str(status.get("command_id") or "")
        if not cid:
            return
        cur = self._latest.get(cid)
        cur_rank = rank(cur.get("status")) if cur is not None else -1
        if cur is None or (cur_rank != FINAL_RANK and rank(status.get("status")) >= cur_rank):
            merged = {**(cur or {}), **{k: v for k, v in status.items() if v is not None}}
            self._latest[cid] = merged
            self._latest.move_to_end(cid)
            while len(self._latest) > self._latest_kept:
                self._latest.popitem(last=False)
        for ev in self._waiters.get(cid, ()):
            ev.set()
        for fn in list(self._listeners):
            try:
                fn(status)
            except Exception:  # a listener must not break the fan-out
                log.exception("command status listener failed")

    async def status(self, command_id: str) -> dict[str, Any] | None:
        """The latest status known here or in the command log."""
        local = self._latest.get(command_id)
        if local is not None and local.get("status") in FINAL:
            return dict(local)
        stored = await asyncio.to_thread(self.commands.get, command_id)
        if stored is None:
            return dict(local) if local else None
        if local is not None and rank(local.get("status")) > rank(stored.get("status")):
            return {**stored, **local}
        return stored

    async def wait_status(
        self, command_id: str, timeout: float, *, poll: float = 0.5
    ) -> dict[str, Any] | None:
        """Wait up to ``timeout`` seconds for a final status; returns the latest one known
        (final or not), or None when nothing is known about the command."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, timeout)
        waiter = asyncio.Event()
        self._waiters[command_id].add(waiter)
        try:
            while True:
                # Cleared before the look, not after: a status noted while the look awaits
                # the log must still wake this waiter.
                waiter.clear()
                current = await self.status(command_id)
                if current is not None and current.get("status") in FINAL:
                    return current
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return current
                # Polls the log too: the sink keeps every status, also when this process's
                # feed is behind or down.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(waiter.wait(), min(remaining, poll))
        finally:
            waiters = self._waiters.get(command_id)
            if waiters is not None:
                waiters.discard(waiter)
                if not waiters:
                    del self._waiters[command_id]
