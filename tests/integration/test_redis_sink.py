"""The Redis sink against the test stack's real Kafka and Redis.

- Registry, shadow documents and availability of a home become the gateway's snapshot.
- An older ShadowDocument version, produced after a newer one, is ignored (the CAS).
- A rebuild from the topics into an empty prefix equals the live state; a rebuild in place
  swaps generations while the live sink runs.
- DeviceRemoved takes the device out of the index; registered again, it starts a new life
  (shadow versions from 1).
- Undecodable records are dead-lettered and the sink carries on.
- Command statuses merge into the command log and never go back; statuses older than the
  log keeps commands are not brought back.
- Notifications per home and runs per automation are capped lists; reading the topics again
  (a new consumer group: a replay) adds no duplicates.
- Redis stopped mid-stream: the sink retries and catches up.
- The service's command line: healthy once it has partitions, clean stop on SIGTERM.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from confluent_kafka import Consumer, Producer

from compose.services.redis import RedisService
from compose.services.redis_sink import RedisSinkService
from runtime.secrets import load_secrets
from sinks.redis_sink import RedisSink, Writer, rebuild_state, redis_client
from stores.command_log import COMMAND_TTL_MS, RedisCommandLog
from stores.event_views import automation_run_view, notification_view
from stores.recent_events import NOTIFICATIONS_KEPT, RUNS_KEPT, RecentEvents
from stores.redis_state import Keys, Op, RedisState
from topics import catalogue as t
from topics.codec import make_codec
from topics.keys import device_key
from topics.partitioning import partition_for_key
from topics.schemas import SchemaStore

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
T0 = int(time.time() * 1000) - 3_600_000


def _until(pred: Callable[[], bool], timeout: float = 60, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


def _uid() -> str:
    return uuid.uuid4().hex[:10]


class Events:
    """Produce device-keyed events the way the stream worker does (key home/device)."""

    def __init__(self, settings) -> None:
        self.codec = make_codec(SchemaStore(), settings.schema_registry_url)
        self.partitions = settings.partitions
        self.producer = Producer(
            {"bootstrap.servers": settings.kafka_bootstrap, "enable.idempotence": True}
        )

    def raw(self, topic: str, key: str, value: bytes | None) -> None:
        self.producer.produce(
            topic, key=key.encode(), value=value, partition=partition_for_key(key, self.partitions)
        )

    def send(
        self, topic: str, record_name: str, home: str, device: str, ts: int, /, **fields: Any
    ) -> None:
        record = {"event_id": str(uuid.uuid4()), "home_id": home, "ts": ts, "device_id": device}
        value = self.codec.encode(record_name, {**record, **fields})
        self.raw(topic, device_key(home, device), value)

    def for_home(self, topic: str, record_name: str, home: str, ts: int, /, **fields: Any) -> dict:
        """A home-keyed record (statuses, notifications, runs); returns it as sent."""
        record = {"event_id": str(uuid.uuid4()), "home_id": home, "ts": ts, **fields}
        self.raw(topic, home, self.codec.encode(record_name, record))
        return record

    def registered(self, home: str, dev: str, name: str, room: str | None, at: int) -> None:
        self.send(
            t.DEVICE_REGISTRY,
            "DeviceRegistered",
            home,
            dev,
            at,
            name=name,
            type="sensor.motion",
            room=room,
            protocol="zigbee",
            capabilities=["MOTION_SENSOR", "BATTERY"],
            source="discovery",
            registered_at=at,
        )

    def removed(self, home: str, dev: str, ts: int) -> None:
        self.send(t.DEVICE_REGISTRY, "DeviceRemoved", home, dev, ts, source="hub")
        self.raw(t.DEVICE_REGISTRY, device_key(home, dev), None)  # the tombstone after it

    def shadow(self, home: str, dev: str, version: int, reported: dict, ts: int, desired=None):
        desired = desired or {}
        meta = {
            "desired": {k: {"timestamp": ts // 1000} for k in desired},
            "reported": {k: {"timestamp": ts // 1000} for k in reported},
        }
        delta = {k: v for k, v in desired.items() if reported.get(k) != v}
        self.send(
            t.SHADOW_DOCUMENTS,
            "ShadowDocument",
            home,
            dev,
            ts,
            version=version,
            timestamp=ts // 1000,
            desired=json.dumps(desired),
            reported=json.dumps(reported),
            delta=json.dumps(delta),
            metadata=json.dumps(meta),
        )

    def availability(self, home: str, dev: str, online: bool, ts: int) -> None:
        self.send(
            t.DEVICE_AVAILABILITY, "Availability", home, dev, ts, online=online, source="silence"
        )

    def flush(self) -> None:
        assert self.producer.flush(30) == 0


class ThreadSink:
    """A RedisSink in a thread of the test process, on its own group and key prefix."""

    def __init__(self, settings, prefix: str, **kw: Any) -> None:
        kw.setdefault("group", f"test-redis-{prefix}")
        self.sink = RedisSink(settings, f"test-{prefix}", prefix=prefix, **kw)
        self.thread = threading.Thread(target=self.sink.run, kwargs={"signals": False})
        self.thread.start()

    def stop(self) -> None:
        self.sink.stop()
        self.thread.join(60)
        assert not self.thread.is_alive(), "the sink did not stop"


@pytest.fixture
def client(settings) -> redis.Redis:
    return redis_client(settings)


@pytest.fixture
def events(settings) -> Iterator[Events]:
    e = Events(settings)
    yield e
    e.flush()


@pytest.fixture
def sinks(settings) -> Iterator[Callable[..., ThreadSink]]:
    started: list[ThreadSink] = []

    def start(prefix: str, **kw: Any) -> ThreadSink:
        s = ThreadSink(settings, prefix, **kw)
        started.append(s)
        return s

    yield start
    for s in started:
        if s.thread.is_alive():
            s.stop()


def _whole_home(state: RedisState, home: str) -> dict[str, Any]:
    devices = state.devices(home)
    return {
        "devices": devices,
        "shadows": {d["device_id"]: state.shadow(home, d["device_id"]) for d in devices},
    }


def test_snapshot_cas_rebuild_and_removal(settings, client, events, sinks):
    home, prefix = f"rs-{_uid()}", f"t{_uid()}"
    events.registered(home, "toaster", "Toaster", "Kitchen", T0)
    events.registered(home, "motion", "Motion", "Hallway", T0 + 1)
    events.registered(home, "fridge", "Fridge", "Kitchen", T0 + 2)
    events.registered(home, "attic", "Attic sensor", None, T0 + 3)
    events.shadow(home, "motion", 1, {"motion": True, "battery": 80}, T0 + 10_000)
    events.shadow(home, "motion", 2, {"motion": False, "battery": 15}, T0 + 20_000)
    events.shadow(home, "fridge", 1, {"motion": False}, T0 + 5_000, desired={"motion": True})
    events.availability(home, "toaster", False, T0 + 900_000)
    events.flush()

    sink = sinks(prefix)
    state = RedisState(client, prefix)
    assert _until(lambda: state.version(home, "motion") == 2 and len(state.devices(home)) == 4)
    assert _until(lambda: state.device(home, "toaster")["online"] is False)  # type: ignore[index]

    snap = state.devices(home)
    assert [d["device_id"] for d in snap] == ["motion", "fridge", "toaster", "attic"]
    motion = snap[0]
    assert motion["battery"] == 15 and motion["online"] is True
    assert motion["lastSeen"] == T0 + 20_000 and motion["version"] == 2
    assert motion["state"] == {"motion": False, "battery": 15}
    assert snap[2]["online"] is False and snap[2]["lastSeen"] == T0
    assert state.shadow(home, "motion") == {
        "state": {"reported": {"motion": False, "battery": 15}},
        "metadata": {
            "reported": {
                "motion": {"timestamp": (T0 + 20_000) // 1000},
                "battery": {"timestamp": (T0 + 20_000) // 1000},
            }
        },
        "version": 2,
        "timestamp": (T0 + 20_000) // 1000,
    }
    fridge = state.shadow(home, "fridge")
    assert fridge is not None and fridge["state"]["delta"] == {"motion": True}
    assert state.shadow(home, "toaster") is None  # registered, no shadow yet
    assert state.device(home, "nope") is None and state.version(home, "nope") == 0

    # An OLDER version produced after the newer one is ignored.
    stale = sink.sink.counters["stale_shadow"]
    events.shadow(home, "motion", 1, {"motion": True, "battery": 99}, T0 + 30_000)
    events.flush()
    assert _until(lambda: sink.sink.counters["stale_shadow"] > stale)
    assert state.version(home, "motion") == 2
    assert state.device(home, "motion")["battery"] == 15  # type: ignore[index]

    # A rebuild from the topics into an empty prefix equals the live state.
    live = _whole_home(state, home)
    fresh = f"t{_uid()}"
    result = rebuild_state(settings, client, fresh)
    assert result is not None and result.previous is None
    assert _whole_home(RedisState(client, fresh), home) == live

    # A rebuild in place, with the live sink running: a new generation, same state, the
    # old generation's keys gone.
    gen_before = state.generation()
    result = rebuild_state(settings, client, prefix)
    assert result is not None and result.previous == gen_before
    assert state.generation() == result.generation != gen_before
    assert _whole_home(state, home) == live
    assert not list(client.scan_iter(match=f"{Keys(prefix).space(str(gen_before))}*"))
    assert client.get(Keys(prefix).building) is None

    # DeviceRemoved takes the device out of the index.
    events.removed(home, "toaster", T0 + 1_000_000)
    events.flush()
    assert _until(lambda: state.device(home, "toaster") is None)
    assert [d["device_id"] for d in state.devices(home)] == ["motion", "fridge", "attic"]

    # Registered again, it is a new device: versions start again from 1.
    events.shadow(home, "fridge", 1, {"motion": True}, T0 + 1_000_500)  # stale: ignored
    events.removed(home, "fridge", T0 + 1_001_000)
    events.registered(home, "fridge", "Fridge", "Kitchen", T0 + 1_002_000)
    events.shadow(home, "fridge", 1, {"motion": True, "battery": 50}, T0 + 1_003_000)
    events.flush()
    assert _until(lambda: (state.device(home, "fridge") or {}).get("battery") == 50)
    assert state.version(home, "fridge") == 1
    assert state.device(home, "fridge")["registered_at"] == T0 + 1_002_000  # type: ignore[index]

    # ... and a rebuild, which reads the removed life's records too, agrees.
    live = _whole_home(state, home)
    fresh = f"t{_uid()}"
    assert rebuild_state(settings, client, fresh) is not None
    assert _whole_home(RedisState(client, fresh), home) == live


def test_compare_and_set_rules_in_redis(client):
    """The scripts alone, records in any order: what wins."""
    prefix, home = f"t{_uid()}", "h"
    w = Writer(client, prefix)
    state = RedisState(client, prefix)
    entry = json.dumps({"name": "Lamp", "room": "Hall", "registered_at": 1000})

    def doc(version: int) -> str:
        rep = {"v": version}
        meta = {"desired": {}, "reported": {}}
        return json.dumps(
            {"desired": {}, "reported": rep, "metadata": meta, "version": version, "timestamp": 1}
        )

    def shadow(version: int, ts: int) -> Op:
        return Op("shadow", home, "d", (version, ts, doc(version)))

    # shadow before its registration (rebuild order): kept, invisible, then shown
    assert w.apply([shadow(3, 2000)]) == [1]
    assert state.device(home, "d") is None and state.version(home, "d") == 0
    assert w.apply([Op("register", home, "d", (10, entry, 1000))]) == [1]
    assert state.version(home, "d") == 3
    # duplicates and older versions change nothing; a newer one does
    assert w.apply([shadow(3, 2000), shadow(2, 2500), shadow(4, 2600)]) == [0, 0, 1]
    # availability goes by offset: an older offset never wins
    avail = [
        Op("availability", home, "d", (5, 3000, "0")),
        Op("availability", home, "d", (4, 3100, "1")),
    ]
    assert w.apply(avail) == [1, 0]
    assert state.device(home, "d")["online"] is False  # type: ignore[index]
    # a replayed older registration does not come back over a removal
    assert w.apply([Op("remove", home, "d", (11, 5000))]) == [1]
    assert w.apply([Op("register", home, "d", (10, entry, 1000)), shadow(9, 4000)]) == [0, 0]
    assert state.device(home, "d") is None
    # a new life: registered again later; the old life's records stay out
    entry2 = json.dumps({"name": "Lamp", "room": "Hall", "registered_at": 6000})
    assert w.apply([shadow(1, 6500), Op("register", home, "d", (12, entry2, 6000))]) == [1, 1]
    assert state.version(home, "d") == 1
    assert w.apply([shadow(4, 2600), Op("availability", home, "d", (5, 3000, "0"))]) == [0, 0]
    dev = state.device(home, "d")
    assert dev is not None and dev["online"] is True and dev["lastSeen"] == 6500
    # the next life's first document before this life's removal: held aside, then shown
    assert w.apply([shadow(5, 7000), shadow(1, 9000)]) == [1, 0]
    assert state.version(home, "d") == 5
    entry3 = json.dumps({"name": "Lamp", "room": "Hall", "registered_at": 8500})
    assert w.apply(
        [Op("remove", home, "d", (13, 8000)), Op("register", home, "d", (14, entry3, 8500))]
    ) == [1, 1]
    assert state.version(home, "d") == 1
    assert state.shadow(home, "d")["state"]["reported"] == {"v": 1}  # type: ignore[index]


def test_undecodable_records_are_dead_lettered_and_the_sink_carries_on(
    settings, client, events, sinks
):
    home, prefix = f"rs-{_uid()}", f"t{_uid()}"
    poison = b"poison-" + uuid.uuid4().bytes
    events.registered(home, "d", "D", "Hall", T0)
    events.raw(t.SHADOW_DOCUMENTS, device_key(home, "d"), poison)
    events.shadow(home, "d", 1, {"motion": True}, T0 + 1000)
    events.flush()
    sinks(prefix)
    state = RedisState(client, prefix)
    assert _until(lambda: state.version(home, "d") == 1)

    found = _dead_letter_of(settings, poison)
    assert found is not None, "no dead letter for the poison record"
    assert found["reason"] == "DECODE_ERROR" and found["processor"] == "redis-sink"
    assert found["home_id"] == home
    assert found["source"]["kafka_topic"] == t.SHADOW_DOCUMENTS


def _dead_letter_of(settings, original: bytes, timeout: float = 60) -> dict[str, Any] | None:
    """The dead letter whose original value is ``original`` (None: none came in time)."""
    codec = make_codec(SchemaStore(), settings.schema_registry_url)
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"test-dlq-{_uid()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([t.DEADLETTER])
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            for msg in consumer.consume(500, timeout=1):
                if msg.error() or msg.value() is None:
                    continue
                rec = codec.decode(msg.value()).record
                if rec["original"] == original:
                    return rec
    finally:
        consumer.close()
    return None


def test_command_statuses_merge_and_never_go_back(settings, client, events, sinks):
    home, prefix = f"rs-{_uid()}", f"t{_uid()}"
    now = int(time.time() * 1000)
    cid, expired, last = f"c-{_uid()}", f"c-{_uid()}", f"c-{_uid()}"

    def status(ts: int, command_id: str, code: str, **fields: Any) -> None:
        events.for_home(
            t.COMMANDS_STATUS,
            "CommandStatus",
            home,
            ts,
            command_id=command_id,
            status=code,
            **fields,
        )

    what = {"device_id": "lamp", "capability": "ON_OFF", "command": "turnOn"}
    status(now, cid, "PENDING", **what)
    status(now + 1, cid, "SENT")
    status(now + 2, cid, "COMPLETED")
    status(now + 3, cid, "ACKNOWLEDGED")  # late: refused
    status(now - COMMAND_TTL_MS - 60_000, expired, "COMPLETED")  # older than the log keeps
    status(now + 4, last, "PENDING")  # same home, same partition: read after the others
    events.flush()

    sinks(prefix)
    log = RedisCommandLog(client, prefix)
    assert _until(lambda: log.get(last) is not None)
    got = log.get(cid)
    assert got is not None and got["status"] == "COMPLETED" and got["ts"] == now + 2
    assert (got["device_id"], got["capability"], got["home_id"]) == ("lamp", "ON_OFF", home)
    assert log.get(expired) is None
    assert 0 < client.pttl(f"{prefix}:gw:cmd:{cid}") <= COMMAND_TTL_MS + 2
    # a gateway's write-ahead of the command, late: nothing changes
    assert not log.record({"command_id": cid, "home_id": home, "status": "PENDING", "ts": now})
    assert log.get(cid) == got


def test_recent_notifications_and_runs_capped_and_replayed_without_duplicates(
    settings, client, events, sinks
):
    home, prefix = f"rs-{_uid()}", f"t{_uid()}"
    notes = [
        events.for_home(
            t.NOTIFICATIONS,
            "Notification",
            home,
            T0 + i,
            kind="SYSTEM",
            severity="INFO",
            message=f"note {i}",
            data=json.dumps({"i": i}),
        )
        for i in range(NOTIFICATIONS_KEPT + 20)
    ]
    poison = b"poison-" + uuid.uuid4().bytes
    events.raw(t.NOTIFICATIONS, home, poison)

    def fired(automation: str, run: str, ts: int, status: str = "COMPLETED") -> dict:
        return events.for_home(
            t.AUTOMATIONS_RUNS,
            "AutomationFired",
            home,
            ts,
            automation_id=automation,
            run_id=run,
            trigger='{"platform": "state"}',
            status=status,
            trace="[]",
        )

    runs = [fired("night", f"r{i}", T0 + i) for i in range(RUNS_KEPT + 5)]
    fired("porch:light", "p1", T0 + 1, "STARTED")
    porch = fired("porch:light", "p1", T0 + 2)  # the same run, completed
    newest = events.for_home(
        t.NOTIFICATIONS,
        "Notification",
        home,
        T0 + 10_000,
        kind="SYSTEM",
        severity="INFO",
        message="after the runs",
    )
    events.flush()

    sink = sinks(prefix)
    recent = RecentEvents(client, prefix)

    def read_up_to(note: dict, run: dict) -> bool:  # the last record of each topic
        return recent.notifications(home, 1) == [notification_view(note)] and recent.runs(
            home, "porch:light", 1
        ) == [automation_run_view(run)]

    assert _until(lambda: read_up_to(newest, porch))
    kept_notes = [notification_view(n) for n in reversed([*notes, newest])][:NOTIFICATIONS_KEPT]
    kept_runs = [automation_run_view(r) for r in reversed(runs)][:RUNS_KEPT]
    assert recent.notifications(home, 1000) == kept_notes
    assert recent.notifications(home, 3) == kept_notes[:3]
    assert recent.runs(home, "night", 1000) == kept_runs
    assert recent.runs(home, "porch:light", 10) == [automation_run_view(porch)]
    assert recent.runs(home, "porch", 10) == []
    found = _dead_letter_of(settings, poison)
    assert found is not None and found["source"]["kafka_topic"] == t.NOTIFICATIONS

    # A replay: another consumer group reads the topics again into the same keys.
    sink.stop()
    replay = sinks(prefix, group=f"test-replay-{_uid()}")
    latest = events.for_home(
        t.NOTIFICATIONS,
        "Notification",
        home,
        T0 + 20_000,
        kind="SYSTEM",
        severity="INFO",
        message="after the replay",
    )
    porch2 = fired("porch:light", "p2", T0 + 20_000)
    events.flush()
    assert _until(lambda: read_up_to(latest, porch2))
    assert replay.sink.counters["stale_notification"] >= len(notes)
    assert recent.notifications(home, 1000) == [notification_view(latest), *kept_notes[:-1]]
    assert recent.runs(home, "night", 1000) == kept_runs
    assert recent.runs(home, "porch:light", 10) == [
        automation_run_view(porch2),
        automation_run_view(porch),
    ]
    assert client.zcard(f"{prefix}:gw:notif-ids:{home}") == NOTIFICATIONS_KEPT
    assert client.hlen(f"{prefix}:gw:notif-views:{home}") == NOTIFICATIONS_KEPT


def test_redis_stopped_mid_stream_then_caught_up(settings, client, events, sinks):
    home, prefix = f"rs-{_uid()}", f"t{_uid()}"
    events.registered(home, "d", "D", "Hall", T0)
    events.shadow(home, "d", 1, {"motion": True}, T0 + 1000)
    events.flush()
    sink = sinks(prefix)
    state = RedisState(client, prefix)
    assert _until(lambda: state.version(home, "d") == 1)
    svc = RedisService(settings, load_secrets(settings))
    try:
        assert svc.stop()
        for v in range(2, 40):
            events.shadow(home, "d", v, {"motion": v % 2 == 0, "battery": v}, T0 + 1000 * v)
        events.registered(home, "e", "E", "Hall", T0 + 50_000)
        events.flush()
        assert _until(lambda: sink.sink.counters["redis_errors"] > 0, 30)
        assert sink.sink.gauges["redis_up"] == 0
    finally:
        if svc.pid() is None:
            svc.start()
        svc.wait_healthy(time.monotonic() + svc.start_timeout)
    assert _until(lambda: state.version(home, "d") == 39 and state.device(home, "e") is not None)
    assert state.device(home, "d")["battery"] == 39  # type: ignore[index]
    assert sink.thread.is_alive()


def test_service_command_line_health_and_sigterm(settings, stack_env, client, events):
    home = f"rs-{_uid()}"
    events.registered(home, "d", "D", "Hall", T0)
    events.flush()
    svc = RedisSinkService(settings, load_secrets(settings))
    svc.prepare()
    log = svc.dir / "test.log"
    env = {**os.environ, **stack_env, "HOMESTREAM_LOG_FORMAT": "text"}
    with log.open("ab") as out:
        proc = subprocess.Popen(svc.argv(), env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
    try:
        assert _until(lambda: svc.healthy() or proc.poll() is not None, 60), log.read_text()
        assert proc.poll() is None, log.read_text()
        assert _until(lambda: RedisState(client).device(home, "d") is not None)
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
    assert code == 0, log.read_text()
    counters = json.loads((svc.dir / "counters.json").read_text())
    assert counters["applied_register"] >= 1
