"""Per-home subscriptions: a bounded queue per subscriber, overflow -> resync.

When a subscriber's queue is full its new events are dropped and ``overflowed`` is set.
The WebSocket endpoint (``gateway/ws.py``) then lets the queue drain, sends its client
``{"type":"resync"}`` and a fresh snapshot, and calls ``clear_overflow()``. Nobody else
waits for a slow client.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

from gateway.frames import Event


class Subscription:
    """The events of one home for one subscriber, in a bounded queue.

    When the queue is full, new events are dropped and ``overflowed`` is set: the
    subscriber has missed events and should send its client a fresh snapshot, then call
    ``clear_overflow()``."""

    def __init__(self, home_id: str, maxsize: int) -> None:
        self.home_id = home_id
        self.queue: asyncio.Queue[Event] = asyncio.Queue(maxsize)
        self.overflowed = False
        self.dropped = 0

    def offer(self, event: Event) -> bool:
        try:
            self.queue.put_nowait(event)
            return True
        except asyncio.QueueFull:
            self.overflowed = True
            self.dropped += 1
            return False

    async def get(self) -> Event:
        return await self.queue.get()

    def get_nowait(self) -> Event | None:
        try:
            return self.queue.get_nowait()
        except asyncio.QueueEmpty:
            return None

    def clear_overflow(self) -> None:
        self.overflowed = False

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        return await self.get()


class Subscriptions:
    """The subscriptions of every home (loop thread only)."""

    def __init__(self, queue_size: int = 1000) -> None:
        self.queue_size = queue_size
        self._subs: dict[str, set[Subscription]] = defaultdict(set)

    def subscribe(self, home_id: str, maxsize: int | None = None) -> Subscription:
        sub = Subscription(home_id, maxsize or self.queue_size)
        self._subs[home_id].add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.home_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[sub.home_id]

    def count(self, home_id: str | None = None) -> int:
        if home_id is not None:
            return len(self._subs.get(home_id, ()))
        return sum(len(s) for s in self._subs.values())

    def deliver(self, event: Event) -> tuple[int, int]:
        """Offer the event to each subscriber of its home: (delivered, dropped)."""
        delivered = dropped = 0
        for sub in list(self._subs.get(event.home_id, ())):
            if sub.offer(event):
                delivered += 1
            else:
                dropped += 1
        return delivered, dropped
