"""The gateway's one Kafka consumer, fanned out to subscribers per home.

One :class:`KafkaFeed` per gateway process reads, from the end of each topic at start-up:

| topic | record | event type (WebSocket frame) |
|---|---|---|
| homestream.state.changes | StateChange | ``device.state`` and/or ``device.desired`` |
| homestream.device.availability | Availability | ``device.online`` |
| homestream.device.registry | DeviceRegistered, DeviceRemoved | ``device.added``, ``.removed`` |
| homestream.commands.status | CommandStatus | ``command.status`` |
| homestream.notifications | Notification | ``notification`` |
| homestream.scenes.runs | SceneRun | ``scene.status`` |
| homestream.automations.runs | AutomationFired | ``automation.run`` |

It is not in a consumer group (it assigns every partition itself), so every gateway
process sees every home. It runs in a thread; decoded events cross to the asyncio loop with
``loop.call_soon_threadsafe`` and go to the subscribers of their home.

On the way it keeps, in Redis (shared by the gateway processes, idempotent when several
write the same record):

- the latest status of each command (``hs:gw:cmd:<id>``, 24 h), for
  ``GET .../commands/{id}`` and ``"wait": true``; a status never goes back (PENDING < SENT
  < ACKNOWLEDGED < COMPLETED | FAILED | TIMEOUT);
- the latest 500 notifications per home (``hs:gw:notif:<home>``, used when the history
  schema is not there);
- the latest 100 runs per automation (``hs:gw:arun:<home>:<automation>``).

API for the WebSocket endpoint::

    sub = fanout.subscribe(home_id)       # a Subscription with a bounded asyncio.Queue
    event = await sub.get()               # Event(type, home_id, frame)
    if sub.overflowed: ...                # events were dropped: send a new snapshot, then
        sub.clear_overflow()
    fanout.unsubscribe(sub)
    status = await fanout.wait_status(command_id, timeout=5.0)   # final status or latest
    fanout.add_status_listener(fn) / remove_status_listener(fn)  # every CommandStatus
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import threading
import uuid
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from domain.lifecycle import FINAL, FINAL_RANK, rank
from topics import catalogue as t
from topics.descriptor import TEXT_FIELDS

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
COMMAND_TTL_MS = 24 * 3600 * 1000
NOTIFICATIONS_KEPT = 500
RUNS_KEPT = 100


# -- events ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Event:
    """One decoded event for the subscribers of a home; ``frame`` is the WebSocket frame."""

    type: str
    home_id: str
    frame: dict[str, Any]

    @functools.cached_property
    def text(self) -> str:
        """The frame as JSON, made once for all the home's subscribers."""
        return json.dumps(self.frame, separators=(",", ":"), default=str)


def _json(text: Any, default: Any) -> Any:
    if not isinstance(text, str) or not text:
        return default
    try:
        return json.loads(text)
    except ValueError:
        return default


def command_view(record: Mapping[str, Any]) -> dict[str, Any]:
    """A CommandStatus record as the API shows it."""
    keys = (
        "command_id",
        "home_id",
        "device_id",
        "group_id",
        "capability",
        "command",
        "status",
        "reason",
        "request_id",
        "parent_command_id",
        "ts",
    )
    return {k: record.get(k) for k in keys}


def notification_view(record: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("event_id", "home_id", "ts", "kind", "severity", "title", "message", "device_id")
    out = {k: record.get(k) for k in keys}
    out["automation_id"] = record.get("automation_id")
    out["data"] = _json(record.get("data"), record.get("data"))
    return out


def automation_run_view(record: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "run_id": record.get("run_id"),
        "automation_id": record.get("automation_id"),
        "alias": record.get("alias"),
        "status": record.get("status"),
        "ts": record.get("ts"),
        "trigger": _json(record.get("trigger"), record.get("trigger")),
        "trace": _json(record.get("trace"), record.get("trace")),
        "error": record.get("error"),
    }


def to_events(name: str, record: Mapping[str, Any]) -> list[Event]:
    """The WebSocket events (CONTRACT.md section 5) of one decoded record."""
    home = str(record.get("home_id") or "")
    if not home:
        return []
    base = {"home_id": home}
    if name == "StateChange":
        state = _json(record.get("state_json"), None)
        reported = dict(record.get("reported") or {})
        desired = dict(record.get("desired") or {})
        delta = dict(record.get("delta") or {})
        if isinstance(state, dict):  # authoritative when set (deep values)
            reported = state.get("reported", reported) or {}
            desired = state.get("desired", desired) or {}
            delta = state.get("delta", delta) or {}
        common = {
            **base,
            "device_id": record.get("device_id"),
            "version": record.get("version"),
            "ts": record.get("ts"),
            "source": record.get("source"),
            "command_id": record.get("command_id"),
        }
        out = []
        if record.get("changed") or not record.get("desired_changed"):
            out.append(
                Event(
                    "device.state",
                    home,
                    {
                        "type": "device.state",
                        **common,
                        "changed": dict(record.get("changed") or {}),
                        "reported": reported,
                        "delta": delta,
                    },
                )
            )
        if record.get("desired_changed"):
            out.append(
                Event(
                    "device.desired",
                    home,
                    {
                        "type": "device.desired",
                        **common,
                        "changed": dict(record.get("desired_changed") or {}),
                        "desired": desired,
                        "delta": delta,
                    },
                )
            )
        return out
    if name == "Availability":
        frame = {
            "type": "device.online",
            **base,
            "device_id": record.get("device_id"),
            "online": bool(record.get("online")),
            "ts": record.get("ts"),
        }
        return [Event("device.online", home, frame)]
    if name == "DeviceRegistered":
        device = {k: record.get(k) for k in ("device_id", *TEXT_FIELDS, "source", "registered_at")}
        device["capabilities"] = list(record.get("capabilities") or [])
        frame = {
            "type": "device.added",
            **base,
            "device_id": record.get("device_id"),
            "ts": record.get("ts"),
            "device": device,
        }
        return [Event("device.added", home, frame)]
    if name == "DeviceRemoved":
        frame = {
            "type": "device.removed",
            **base,
            "device_id": record.get("device_id"),
            "ts": record.get("ts"),
            "removed_by": record.get("removed_by"),
        }
        return [Event("device.removed", home, frame)]
    if name == "CommandStatus":
        return [Event("command.status", home, {"type": "command.status", **command_view(record)})]
    if name == "Notification":
        n = notification_view(record)
        return [Event("notification", home, {"type": "notification", **n})]
    if name == "SceneRun":
        keys = (
            "scene_id",
            "run_id",
            "status",
            "actions_succeeded",
            "actions_failed",
            "execution_time_ms",
            "request_id",
            "error",
            "ts",
        )
        frame = {"type": "scene.status", **base, **{k: record.get(k) for k in keys}}
        return [Event("scene.status", home, frame)]
    if name == "AutomationFired":
        run = automation_run_view(record)
        return [Event("automation.run", home, {"type": "automation.run", **base, **run})]
    return []


# -- command statuses ---------------------------------------------------------------------
class CommandLog(Protocol):
    def record(self, status: Mapping[str, Any]) -> bool: ...
    def get(self, command_id: str) -> dict[str, Any] | None: ...


# Merge a status into the stored one unless the stored one is further along (or final).
_RECORD_LUA = """
local cur = redis.call('GET', KEYS[1])
local new = cjson.decode(ARGV[1])
local r = tonumber(ARGV[2])
if cur then
  local c = cjson.decode(cur)
  local cr = tonumber(c['rank'] or 0)
  if cr > r or cr == 4 then return 0 end
  for k, v in pairs(new) do
    if v ~= cjson.null then c[k] = v end
  end
  new = c
end
new['rank'] = r
redis.call('SET', KEYS[1], cjson.encode(new), 'PX', ARGV[3])
return 1
"""


class RedisCommandLog:
    def __init__(self, client: Any, prefix: str = "hs:gw:cmd", ttl_ms: int = COMMAND_TTL_MS):
        self.client = client
        self.prefix = prefix
        self.ttl_ms = ttl_ms
        self._script = client.register_script(_RECORD_LUA)

    def record(self, status: Mapping[str, Any]) -> bool:
        cid = str(status["command_id"])
        payload = json.dumps({k: v for k, v in status.items() if k != "rank"})
        done = self._script(
            keys=[f"{self.prefix}:{cid}"], args=[payload, rank(status.get("status")), self.ttl_ms]
        )
        return bool(done)

    def get(self, command_id: str) -> dict[str, Any] | None:
        raw = self.client.get(f"{self.prefix}:{command_id}")
        if raw is None:
            return None
        value = json.loads(raw)
        value.pop("rank", None)
        return value if isinstance(value, dict) else None


class MemoryCommandLog:
    def __init__(self, maxsize: int = 10_000) -> None:
        self.items: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.maxsize = maxsize
        self._lock = threading.Lock()

    def record(self, status: Mapping[str, Any]) -> bool:
        cid = str(status["command_id"])
        r = rank(status.get("status"))
        with self._lock:
            cur = self.items.get(cid)
            if cur is not None:
                cr = cur["_rank"]
                if cr > r or cr == 4:
                    return False
                merged = {**cur, **{k: v for k, v in status.items() if v is not None}}
            else:
                merged = dict(status)
            merged["_rank"] = r
            self.items[cid] = merged
            self.items.move_to_end(cid)
            while len(self.items) > self.maxsize:
                self.items.popitem(last=False)
        return True

    def get(self, command_id: str) -> dict[str, Any] | None:
        with self._lock:
            cur = self.items.get(command_id)
            return None if cur is None else {k: v for k, v in cur.items() if k != "_rank"}


# -- subscriptions ------------------------------------------------------------------------
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


@dataclass
class FeedSideStores:
    """Where the feed thread keeps what outlives the events (Redis)."""

    client: Any
    prefix: str = "hs:gw"

    def notifications_key(self, home: str) -> str:
        return f"{self.prefix}:notif:{home}"

    def runs_key(self, home: str, automation: str) -> str:
        return f"{self.prefix}:arun:{home}:{automation}"

    def keep_notification(self, view: Mapping[str, Any]) -> None:
        key = self.notifications_key(str(view["home_id"]))
        pipe = self.client.pipeline(transaction=False)
        pipe.zadd(key, {json.dumps(view, sort_keys=True): int(view.get("ts") or 0)})
        pipe.zremrangebyrank(key, 0, -(NOTIFICATIONS_KEPT + 1))
        pipe.pexpire(key, 30 * 24 * 3600 * 1000)
        pipe.execute()

    def keep_run(self, home: str, view: Mapping[str, Any]) -> None:
        key = self.runs_key(home, str(view.get("automation_id") or ""))
        pipe = self.client.pipeline(transaction=False)
        pipe.zadd(key, {json.dumps(view, sort_keys=True): int(view.get("ts") or 0)})
        pipe.zremrangebyrank(key, 0, -(RUNS_KEPT + 1))
        pipe.pexpire(key, 30 * 24 * 3600 * 1000)
        pipe.execute()

    def notifications(self, home: str, limit: int) -> list[dict[str, Any]]:
        raw = self.client.zrevrange(self.notifications_key(home), 0, limit - 1)
        return [json.loads(r) for r in raw]

    def runs(self, home: str, automation: str, limit: int) -> list[dict[str, Any]]:
        raw = self.client.zrevrange(self.runs_key(home, automation), 0, limit - 1)
        return [json.loads(r) for r in raw]


# -- the fan-out --------------------------------------------------------------------------
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
        commands: CommandLog | None = None,
        *,
        queue_size: int = 1000,
        feed: KafkaFeed | None = None,
        latest_kept: int = 10_000,
    ) -> None:
        self.commands: CommandLog = commands or MemoryCommandLog()
        self.queue_size = queue_size
        self.feed = feed
        self.stats = FanoutStats()
        self._subs: dict[str, set[Subscription]] = defaultdict(set)
        self._latest: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._latest_kept = latest_kept
        self._waiters: dict[str, set[asyncio.Event]] = defaultdict(set)
        self._status_listeners: list[Callable[[dict[str, Any]], None]] = []
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
        sub = Subscription(home_id, maxsize or self.queue_size)
        self._subs[home_id].add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.home_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[sub.home_id]

    def subscribers(self, home_id: str | None = None) -> int:
        if home_id is not None:
            return len(self._subs.get(home_id, ()))
        return sum(len(s) for s in self._subs.values())

    def add_status_listener(self, fn: Callable[[dict[str, Any]], None]) -> None:
        self._status_listeners.append(fn)

    def remove_status_listener(self, fn: Callable[[dict[str, Any]], None]) -> None:
        with contextlib.suppress(ValueError):
            self._status_listeners.remove(fn)

    # events in (loop thread)
    def publish(self, events: Iterable[Event]) -> None:
        for event in events:
            self.stats.events += 1
            self.stats.by_type[event.type] += 1
            if event.type == "command.status":
                self._note_status(event.frame)
            for sub in list(self._subs.get(event.home_id, ())):
                if sub.offer(event):
                    self.stats.delivered += 1
                else:
                    self.stats.dropped += 1

    def _from_thread(self, events: list[Event]) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # loop closing
            loop.call_soon_threadsafe(self.publish, events)

    def note_status(self, status: Mapping[str, Any]) -> None:
        """A status known by this process (e.g. the request itself): wakes waiters."""
        self._note_status(dict(status))

    def _note_status(self, status: dict[str, Any]) -> None:
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
        for fn in list(self._status_listeners):
            try:
                fn(status)
            except Exception:  # a listener must not break the fan-out
                log.exception("command status listener failed")

    # command statuses
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
                current = await self.status(command_id)
                if current is not None and current.get("status") in FINAL:
                    return current
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return current
                waiter.clear()
                # Polls too: another gateway process's feed may have written the status.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(waiter.wait(), min(remaining, poll))
        finally:
            waiters = self._waiters.get(command_id)
            if waiters is not None:
                waiters.discard(waiter)
                if not waiters:
                    del self._waiters[command_id]


# -- the Kafka side ------------------------------------------------------------------------
class KafkaFeed:
    """The consumer thread: assigns every partition of FEED_TOPICS at their end, decodes,
    keeps command statuses / notifications / automation runs, hands events to the loop."""

    def __init__(
        self,
        bootstrap: str,
        codec: Any,
        *,
        commands: CommandLog | None = None,
        stores: FeedSideStores | None = None,
        topics: tuple[str, ...] = FEED_TOPICS,
        client_id: str = "homestream-gateway",
    ) -> None:
        self.bootstrap = bootstrap
        self.codec = codec
        self.commands = commands
        self.stores = stores
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
                if events:
                    self._deliver(events)
        except Exception:
            log.exception("fan-out consumer stopped")
            self.error = "consumer stopped"
        finally:
            with contextlib.suppress(Exception):
                consumer.close()

    def handle(self, value: bytes) -> list[Event]:
        """Decode one value, keep what outlives it, return its events."""
        try:
            decoded = self.codec.decode(value)
        except Exception:
            return []
        self.consumed += 1
        name, record = decoded.name, decoded.record
        events = to_events(name, record)
        try:
            if name == "CommandStatus" and self.commands is not None:
                self.commands.record(command_view(record))
            elif name == "Notification" and self.stores is not None:
                self.stores.keep_notification(notification_view(record))
            elif name == "AutomationFired" and self.stores is not None:
                self.stores.keep_run(str(record.get("home_id")), automation_run_view(record))
        except Exception as exc:  # Redis down: the live events still go out
            log.warning("fan-out: could not keep %s in Redis: %s", name, exc)
        return events
