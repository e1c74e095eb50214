"""The fan-out: the one object the gateway's handlers use for live events and statuses.

It wires the parts, each in its own module:

- ``gateway.feed``: the Kafka consumer thread (records -> events);
- ``gateway.frames``: record -> WebSocket frame, one table entry per record type;
- ``gateway.subscriptions``: per-home bounded queues, overflow -> resync;
- ``gateway.command_statuses``: this process's latest statuses over the command log;
- ``gateway.scene_waits``: requests waiting for a scene run's final ``scene.status``.

API for the WebSocket endpoint and the routes::

    sub = fanout.subscribe(home_id)       # a Subscription with a bounded asyncio.Queue
    event = await sub.get()               # Event(type, home_id, frame); .data/.wire pre-encoded
    sub.sink = fn                         # or: fn(events) -> bool gets each batch (ws.py)
    if sub.overflowed: ...                # events were dropped: send a new snapshot, then
        sub.clear_overflow()
    fanout.unsubscribe(sub)
    status = await fanout.wait_status(command_id, timeout=5.0)   # final status or latest
    fanout.add_status_listener(fn) / remove_status_listener(fn)  # every CommandStatus
    fanout.scenes.expect(run_id); frame = await fanout.scenes.wait(run_id, timeout)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.command_statuses import CommandLog, CommandStatuses
from gateway.feed import KafkaFeed
from gateway.frames import Event
from gateway.scene_waits import SceneWaits
from gateway.subscriptions import Subscription, Subscriptions


@dataclass
class FanoutStats:
    events: int = 0
    delivered: int = 0
    dropped: int = 0
    decode_errors: int = 0
    by_type: dict[str, int] = field(default_factory=lambda: defaultdict(int))


class Fanout:
    """Subscribers per home on the asyncio side; fed by a KafkaFeed (or ``publish``)."""

    def __init__(
        self,
        commands: CommandLog,
        *,
        queue_size: int = 1000,
        feed: KafkaFeed | None = None,
        latest_kept: int = 10_000,
    ) -> None:
        self.commands = commands
        self.feed = feed
        self.stats = FanoutStats()
        self.subscriptions = Subscriptions(queue_size)
        self.statuses = CommandStatuses(self.commands, latest_kept=latest_kept)
        self.scenes = SceneWaits()
        self._loop: asyncio.AbstractEventLoop | None = None

    # lifecycle
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        if self.feed is not None:
            self.feed.start(self._from_thread)

    async def stop(self) -> None:
        if self.feed is not None:
            await asyncio.to_thread(self.feed.stop)

    @property
    def ready(self) -> bool:
        """The feed has its partitions (events from now on will be seen)."""
        return self.feed is None or self.feed.ready.is_set()

    async def wait_ready(self, timeout: float = 30.0) -> bool:
        if self.feed is None:
            return True
        return await asyncio.to_thread(self.feed.ready.wait, timeout)

    # subscribers
    def subscribe(self, home_id: str, maxsize: int | None = None) -> Subscription:
        return self.subscriptions.subscribe(home_id, maxsize)

    def unsubscribe(self, sub: Subscription) -> None:
        self.subscriptions.unsubscribe(sub)

    def subscribers(self, home_id: str | None = None) -> int:
        return self.subscriptions.count(home_id)

    def add_status_listener(self, fn: Callable[[dict[str, Any]], None]) -> None:
        self.statuses.add_listener(fn)

    def remove_status_listener(self, fn: Callable[[dict[str, Any]], None]) -> None:
        self.statuses.remove_listener(fn)

    # events in (loop thread)
    def publish(self, events: Iterable[Event]) -> None:
        events = list(events)
        for event in events:
            self.stats.events += 1
            self.stats.by_type[event.type] += 1
            if event.type == "command.status":
                self.statuses.note(event.frame)
            elif event.type == "scene.status":
                self.scenes.note(event.frame)
        # The whole batch at once: a subscriber writing straight to its socket gets its
        # home's events of this batch in one write.
        delivered, dropped = self.subscriptions.deliver_all(events)
        self.stats.delivered += delivered
        self.stats.dropped += dropped

    def _from_thread(self, events: list[Event]) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # loop closing
            loop.call_soon_threadsafe(self.publish, events)

    # command statuses
    def note_status(self, status: Mapping[str, Any]) -> None:
        """A status known by this process (e.g. the request itself): wakes waiters."""
        self.statuses.note(dict(status))

    async def status(self, command_id: str) -> dict[str, Any] | None:
        """The latest status known here or in the command log."""
        return await self.statuses.status(command_id)

    async def wait_status(
        self, command_id: str, timeout: float, *, poll: float = 0.5
    ) -> dict[str, Any] | None:
        """Wait up to ``timeout`` seconds for a final status; returns the latest one known
        (final or not), or None when nothing is known about the command."""
        return await self.statuses.wait_status(command_id, timeout, poll=poll)
