"""Per-home subscriptions: a bounded queue per subscriber, or a sink that writes straight
to the client; overflow -> resync.

A subscription starts with a queue. When the queue is full its new events are dropped
and ``overflowed`` is set. The WebSocket endpoint (``gateway/ws.py``) then lets the queue
drain, sends its client ``{"type":"resync"}`` and a fresh snapshot, and calls
``clear_overflow()``. Nobody else waits for a slow client.

Once the client has its snapshot, the endpoint may hand the subscription a ``sink``: a
function that writes a home's events of one Kafka batch to the client's socket at once
(pre-encoded, one write) and says False when the client is too far behind to take more.
Then no queue, task or wake-up stands between the feed and the socket. A refused batch
counts as dropped, sets ``overflowed``, takes the sink away (events queue again) and calls
``on_refused``: the endpoint resyncs the client as above.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Iterable

from gateway.frames import Event

Sink = Callable[[list[Event]], bool]


class Subscription:
    """The events of one home for one subscriber, in a bounded queue (or a sink).

    When the queue is full (or the sink refuses), new events are dropped and
    ``overflowed`` is set: the subscriber has missed events and should send its client a
    fresh snapshot, then call ``clear_overflow()``."""

    __slots__ = ("_queue", "dropped", "home_id", "maxsize", "on_refused", "overflowed", "sink")

    def __init__(self, home_id: str, maxsize: int) -> None:
        self.home_id = home_id
        self.maxsize = maxsize
        self._queue: asyncio.Queue[Event] | None = None
        self.overflowed = False
        self.dropped = 0
        self.sink: Sink | None = None
        self.on_refused: Callable[[], None] | None = None

    @property
    def queue(self) -> asyncio.Queue[Event]:
        # Made when first used: a subscription with a sink may never need one (memory).
        if self._queue is None:
            self._queue = asyncio.Queue(self.maxsize)
        return self._queue

    def offer(self, event: Event) -> bool:
        return self.offer_all([event]) == 1

    def offer_all(self, events: list[Event]) -> int:
        """Hand over a batch of this home's events; how many were taken (the rest dropped)."""
        sink = self.sink
        if sink is not None:
            if sink(events):
                return len(events)
            self.sink = None
            self.overflowed = True
            self.dropped += len(events)
            refused, self.on_refused = self.on_refused, None
            if refused is not None:
                refused()
            return 0
        queue = self.queue
        taken = 0
        for event in events:
            try:
                queue.put_nowait(event)
                taken += 1
            except asyncio.QueueFull:
                self.overflowed = True
                self.dropped += 1
        return taken

    async def get(self) -> Event:
        return await self.queue.get()

    def get_nowait(self) -> Event | None:
        try:
            return self.queue.get_nowait()
        except asyncio.QueueEmpty:
            return None

    def drain(self) -> list[Event]:
        """What is queued, taken out (and the queue let go)."""
        events: list[Event] = []
        if self._queue is not None:
            while (event := self.get_nowait()) is not None:
                events.append(event)
            self._queue = None
        return events

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
        return self.deliver_all([event])

    def deliver_all(self, events: Iterable[Event]) -> tuple[int, int]:
        """Offer a batch to the subscribers, each home's events together and in order (a
        subscriber with a sink gets them in one write): (delivered, dropped)."""
        by_home: dict[str, list[Event]] = {}
        for event in events:
            by_home.setdefault(event.home_id, []).append(event)
        delivered = dropped = 0
        for home, batch in by_home.items():
            for sub in list(self._subs.get(home, ())):
                taken = sub.offer_all(batch)
                delivered += taken
                dropped += len(batch) - taken
        return delivered, dropped
