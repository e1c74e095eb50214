"""The gateway's one Kafka consumer: a thread that decodes the feed topics' records into
events (``gateway.frames``) and hands them to the subscriptions (``gateway.fanout``).

One :class:`KafkaFeed` per gateway process reads every partition of :data:`FEED_TOPICS`,
from the end of each at start-up:

| topic | record |
|---|---|
| homestream.state.changes | StateChange |
| homestream.device.availability | Availability |
| homestream.device.registry | DeviceRegistered, DeviceRemoved |
| homestream.commands.status | CommandStatus |
| homestream.notifications | Notification |
| homestream.scenes.runs | SceneRun |
| homestream.automations.runs | AutomationFired |

It is not in a consumer group (it assigns every partition itself), so every gateway
process sees every home. Decoded events cross to the asyncio loop through the ``deliver``
callback (``loop.call_soon_threadsafe``); the command statuses among them also feed this
process's ``CommandStatuses`` (``gateway.fanout``). The feed writes nothing: the Redis sink
keeps command statuses, notifications and automation runs (``stores.command_log``,
``stores.recent_events``) once for all gateway processes.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid
from collections.abc import Callable
from typing import Any

from gateway.frames import Event, to_events
from topics import catalogue as t

log = logging.getLogger("homestream.gateway.fanout")

FEED_TOPICS = (
    t.STATE_CHANGES,
    t.DEVICE_AVAILABILITY,
    t.DEVICE_REGISTRY,
    t.COMMANDS_STATUS,
    t.NOTIFICATIONS,
    t.SCENES_RUNS,
    t.AUTOMATIONS_RUNS,
)


class KafkaFeed:
    """The consumer thread: assigns every partition of FEED_TOPICS at their end, decodes,
    hands events to the loop."""

    def __init__(
        self,
        bootstrap: str,
        codec: Any,
        *,
        topics: tuple[str, ...] = FEED_TOPICS,
        client_id: str = "homestream-gateway",
    ) -> None:
        self.bootstrap = bootstrap
        self.codec = codec
        self.topics = topics
        self.client_id = client_id
        self.ready = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: str | None = None
        self.consumed = 0

    def start(self, deliver: Callable[[list[Event]], None]) -> None:
        self._deliver = deliver
        self._thread = threading.Thread(target=self._run, name="gateway-fanout", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _assign(self, consumer: Any) -> None:
        from confluent_kafka import TopicPartition

        while not self._stop.is_set():
            try:
                meta = consumer.list_topics(timeout=5)
                parts = []
                for topic in self.topics:
                    tmeta = meta.topics.get(topic)
                    if tmeta is None or tmeta.error is not None:
                        raise RuntimeError(f"topic {topic} does not exist yet")
                    for p in tmeta.partitions:
                        _low, high = consumer.get_watermark_offsets(
                            TopicPartition(topic, p), timeout=5
                        )
                        parts.append(TopicPartition(topic, p, high))
                consumer.assign(parts)
                self.error = None
                self.ready.set()
                return
            except Exception as exc:
                self.error = f"cannot assign partitions: {exc}"
                log.warning("fan-out: %s; retrying", self.error)
                self._stop.wait(2.0)

    def _run(self) -> None:
        from confluent_kafka import Consumer

        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": f"homestream-gateway-{uuid.uuid4().hex}",  # never joined
                "client.id": self.client_id,
                "enable.auto.commit": False,
                "auto.offset.reset": "latest",
                "isolation.level": "read_committed",
                "enable.partition.eof": False,
            }
        )
        try:
            self._assign(consumer)
            while not self._stop.is_set():
                # consume(n, timeout) waits for n messages or the whole timeout: at 1,000
                # events/s that is a 200 ms delay. Wait for one, then take what is there.
                first = consumer.poll(0.2)
                if first is None:
                    continue
                msgs = [first, *consumer.consume(num_messages=499, timeout=0)]
                events: list[Event] = []
                for msg in msgs:
                    value = msg.value()
                    if msg.error() is not None or value is None:
                        continue
                    events.extend(self.handle(value))
                for event in events:
                    event.wire  # noqa: B018  encoded here, off the event loop, once per event
                if events:
                    self._deliver(events)
        except Exception:
            log.exception("fan-out consumer stopped")
            self.error = "consumer stopped"
        finally:
            with contextlib.suppress(Exception):
                consumer.close()

    def handle(self, value: bytes) -> list[Event]:
        """Decode one value into its events (none for what cannot be decoded)."""
        try:
            decoded = self.codec.decode(value)
        except Exception:
            return []
        self.consumed += 1
        try:
            return to_events(decoded.name, decoded.record)
        except ValueError as exc:  # a record no frame can be made of: skip it, keep the feed
            log.warning("fan-out: skipped a %s: %s", decoded.name, exc)
            return []
