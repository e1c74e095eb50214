"""Stream workers on the real Kafka: lifecycle, SIGKILL recovery, partition takeover."""

from __future__ import annotations

import json
import random
import signal
import threading
import time
import uuid
from collections import defaultdict

import pytest
from confluent_kafka import Consumer, TopicPartition

from compose.process import free_port
from compose.services.streams import GROUP
from streams.fold.dispatch import INPUT_TOPICS, fold
from tests.integration.streams_support import CODEC, Feed, Hub, Worker, read_all
from topics import catalogue as t
from topics.admin import group_members
from topics.keys import device_key
from topics.partitioning import partition_for
from topics.state_change import state_of

pytestmark = pytest.mark.integration

OUTPUTS = (
    t.STATE_CHANGES,
    t.COMMANDS_STATUS,
    t.COMMANDS_DISPATCHED,
    t.DEADLETTER,
    t.DEVICE_REGISTRY,
)


@pytest.fixture
def workers(stack_env, tmp_path):
    started: list[Worker] = []

    def start(
        name: str = "w1",
        metrics_port: int | None = None,
        env: dict[str, str] | None = None,
    ) -> Worker:
        w = Worker({**stack_env, **(env or {})}, name, tmp_path / "streams", metrics_port)
        started.append(w)
        return w

    yield start
    for w in started:
        w.kill(signal.SIGTERM)


def wait_members(settings, n: int, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if group_members(settings.kafka_bootstrap, GROUP) == n:
            return
        time.sleep(0.5)
    raise AssertionError(f"consumer group never had {n} members")


def home_ids(n: int, partitions: int) -> list[str]:
    """n fresh homes, spread over every partition."""
    homes: list[str] = []
    while len(homes) < n or len({partition_for(h, partitions) for h in homes}) < min(n, partitions):
        homes.append(f"h-{uuid.uuid4().hex[:8]}")
    return homes


def of(records, name):
    return [r for n, r in records if n == name]


def test_lifecycle_through_a_real_worker(settings, workers):
    metrics_port = free_port()
    workers("w1", metrics_port)
    feed = Feed(settings)
    home = home_ids(1, settings.partitions)[0]
    feed.report(home, "lamp", {"powerState": "OFF", "brightness": 10})  # before discovery
    feed.discover(home, "lamp", ["ON_OFF", "BRIGHTNESS"], "light.dimmer")
    feed.flush()
    got = read_all(settings, OUTPUTS, {home}, until=lambda r: of(r, "StateChange"))
    assert state_of(of(got, "StateChange")[0]).reported == {"powerState": "OFF", "brightness": 10}

    feed.send(
        t.COMMANDS_REQUESTED,
        "CommandRequested",
        home,
        command_id="c-ok",
        device_id="lamp",
        capability="BRIGHTNESS",
        command="setBrightness",
        parameters={"brightness": 80},
        requested_by="alice",
        issued_at=int(time.time() * 1000),
    )
    feed.send(
        t.COMMANDS_REQUESTED,
        "CommandRequested",
        home,
        command_id="c-slow",
        device_id="lamp",
        capability="ON_OFF",
        command="turnOn",
        requested_by="alice",
        timeout_ms=1000,
        issued_at=int(time.time() * 1000),
    )
    feed.send(
        t.COMMANDS_REQUESTED,
        "CommandRequested",
        home,
        command_id="c-bad",
        device_id="lamp",
        capability="LOCK",
        command="lock",
        requested_by="alice",
        issued_at=int(time.time() * 1000),
    )
    feed.flush()
    got = read_all(settings, OUTPUTS, {home}, until=lambda r: len(of(r, "CommandDispatched")) >= 2)
    (dispatch,) = [d for d in of(got, "CommandDispatched") if d["command_id"] == "c-ok"]
    assert dispatch["desired"] == {"brightness": 80}
    feed.send(
        t.COMMANDS_ACKS, "HubAck", home, device_id="lamp", command_id="c-ok", status="ACKNOWLEDGED"
    )
    feed.flush()

    def acked(records):
        return ("c-ok", "ACKNOWLEDGED") in {
            (s["command_id"], s["status"]) for s in of(records, "CommandStatus")
        }

    # The ack is on another topic: the worker may read a later report first, so wait for it.
    read_all(settings, OUTPUTS, {home}, until=acked)
    feed.report(home, "lamp", {"brightness": 80})
    feed.send(
        t.DEVICE_REPORTS,
        "DeviceReport",
        home,
        device_id="lamp",
        state={"brightness": 400},
        received_at=int(time.time() * 1000),
    )
    feed.producer.produce(
        t.DEVICE_REPORTS,
        key=home.encode(),
        value=b"\x00garbage",
        partition=partition_for(home, settings.partitions),
    )
    feed.flush()

    def done(records):
        statuses = {(s["command_id"], s["status"]) for s in of(records, "CommandStatus")}
        return {("c-ok", "COMPLETED"), ("c-slow", "TIMEOUT")} <= statuses and len(
            of(records, "DeadLetter")
        ) >= 2

    got = read_all(settings, OUTPUTS, {home}, until=done)
    steps = defaultdict(list)
    for s in of(got, "CommandStatus"):
        steps[s["command_id"]].append(s["status"])
    assert steps["c-ok"] == ["PENDING", "SENT", "ACKNOWLEDGED", "COMPLETED"]
    assert steps["c-slow"] == ["PENDING", "SENT", "TIMEOUT"]
    assert steps["c-bad"] == ["FAILED"]
    (bad,) = [s for s in of(got, "CommandStatus") if s["command_id"] == "c-bad"]
    assert "LOCK" in bad["reason"]
    reasons = sorted(d["reason"] for d in of(got, "DeadLetter"))
    assert reasons == ["DECODE_ERROR", "OUT_OF_RANGE"]
    (garbage,) = [d for d in of(got, "DeadLetter") if d["reason"] == "DECODE_ERROR"]
    assert garbage["original"] == b"\x00garbage"
    assert garbage["source"]["kafka_topic"] == t.DEVICE_REPORTS
    if metrics_port:
        from runtime.metrics import outcomes_at, ready_at, scrape

        counts = outcomes_at("127.0.0.1", metrics_port, "homestream_streams_events_total")
        assert ready_at("127.0.0.1", metrics_port)
        samples = scrape("127.0.0.1", metrics_port)
        (txns,) = samples["homestream_streams_transaction_seconds_count"]
        assert txns.value >= 1 and txns.labels == {"worker": "w1"}
        (changes,) = samples["homestream_streams_report_to_commit_seconds_count"]
        assert changes.value >= 2  # at least our applied reports
        # The worker also folds what earlier tests left in the shared topics: at least ours.
        assert counts["applied"] >= 2 and counts["registered"] >= 1 and counts["reports"] >= 3
        assert counts["command_completed"] == 1 and counts["command_timeout"] == 1
        assert counts["dead_letter_out_of_range"] == 1

    # The hub removes the lamp: DeviceRemoved, then a tombstone for the compacted registry.
    feed.send(t.DEVICE_DISCOVERY, "DeviceRemoved", home, device_id="lamp", source="hub")
    feed.flush()
    values = registry_values(settings, home, "lamp", until=lambda v: v and v[-1] is None)
    assert values[-1] is None
    assert CODEC.decode(values[-2]).name == "DeviceRemoved"


def registry_values(settings, home: str, device: str, *, until, timeout: float = 60) -> list:
    """Raw values (None for a tombstone) of one device's key on the registry, in order."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"test-{uuid.uuid4().hex}",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
        }
    )
    part = partition_for(home, settings.partitions)
    consumer.assign([TopicPartition(t.DEVICE_REGISTRY, part, 0)])
    key, values = device_key(home, device).encode(), []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and not until(values):
            for msg in consumer.consume(500, timeout=0.5):
                if not msg.error() and msg.key() == key:
                    values.append(msg.value())
    finally:
        consumer.close()
    return values


def _reports(homes: list[str], per_device: int, seed: int) -> list[tuple[str, str, dict]]:
    """(home, device, state): temperatures that move or jitter, a light switched about."""
    rng = random.Random(seed)
    out = []
    for i in range(per_device):
        for home in homes:
            out.append((home, "thermo", {"temperature": round(20 + rng.uniform(-3, 3), 1)}))
            out.append(
                (
                    home,
                    "lamp",
                    {
                        "powerState": rng.choice(["ON", "OFF"]),
                        "brightness": rng.randrange(0, 101, 25),
                    },
                )
            )
            if i % 10 == 0:
                out.append((home, "thermo", {"battery": max(0, 100 - i // 5)}))
    return out


def _reference(homes, reports, t0):
    """The same input folded without Kafka: what every shadow must end as."""
    discoveries = [
        (
            "DeviceDiscovered",
            {
                "event_id": str(uuid.uuid4()),
                "home_id": home,
                "ts": t0,
                "device_id": device,
                "name": device,
                "type": kind,
                "capabilities": list(caps),
            },
        )
        for home in homes
        for device, caps, kind in DEVICES
    ]
    proc = fold(
        [
            *discoveries,
            *(
                (
                    "DeviceReport",
                    {
                        "event_id": str(uuid.uuid4()),
                        "home_id": home,
                        "ts": t0 + n,
                        "device_id": device,
                        "state": state,
                        "received_at": t0 + n,
                        "source": "mqtt",
                    },
                )
                for n, (home, device, state) in enumerate(reports)
            ),
        ]
    )
    return {
        key: (value["shadow"]["version"], value["shadow"]["reported"])
        for key, value in proc.store.data.items()
        if "/" in key and value.get("shadow")
    }


DEVICES = (
    ("thermo", ("TEMPERATURE_SENSOR", "BATTERY"), "sensor.temperature"),
    ("lamp", ("ON_OFF", "BRIGHTNESS"), "light.dimmer"),
)


def _setup_homes(settings, feed, homes):
    for home in homes:
        for device, caps, kind in DEVICES:
            feed.discover(home, device, caps, kind)
    feed.flush()
    read_all(
        settings,
        [t.DEVICE_REGISTRY],
        set(homes),
        until=lambda r: len(r) >= len(homes) * len(DEVICES),
    )


def _send_reports(feed, reports, t0):
    for n, (home, device, state) in enumerate(reports):
        feed.report(home, device, state, received_at=t0 + n)
    feed.flush()


def _check_against_reference(settings, homes, expected):
    """Every version 1..final exactly once in state.changes, and the final shadows equal."""
    final_versions = {k: v for k, (v, _r) in expected.items()}
    total = sum(final_versions.values())

    got = read_all(
        settings, [t.STATE_CHANGES], set(homes), until=lambda r: len(r) >= total, timeout=120
    )
    seen = defaultdict(list)
    last = {}
    for _name, rec in got:
        key = f"{rec['home_id']}/{rec['device_id']}"
        seen[key].append(rec["version"])
        last[key] = (rec["version"], state_of(rec).reported)
    for key, (version, reported) in expected.items():
        assert sorted(seen[key]) == list(range(1, version + 1)), f"{key}: {seen[key][:20]}"
        assert last[key] == (version, reported), key
    assert len(got) == total


def test_sigkill_mid_stream_loses_and_doubles_nothing(settings, workers):
    homes = home_ids(12, settings.partitions)
    feed = Feed(settings)
    t0 = int(time.time() * 1000)
    # A cache of a few values per partition: most reads and every commit go to RocksDB.
    small = {"HOMESTREAM_STREAMS_CACHE_KEYS": str(6 * settings.partitions)}
    w = workers("victim", env=small)
    wait_members(settings, 1)
    _setup_homes(settings, feed, homes)
    reports = _reports(homes, per_device=150, seed=7)  # ~3,800 reports
    _send_reports(feed, reports, t0)
    # Let it get some way in, then kill it without warning.
    read_all(settings, [t.STATE_CHANGES], set(homes), until=lambda r: len(r) >= 200)
    w.kill(signal.SIGKILL)
    workers("victim", env=small)  # same name, same RocksDB dir
    expected = _reference(homes, reports, t0)
    _check_against_reference(settings, homes, expected)


def test_second_worker_takes_over_partitions_and_state(settings, workers):
    homes = home_ids(8, settings.partitions)
    feed = Feed(settings)
    t0 = int(time.time() * 1000)
    workers("a")
    b = workers("b")
    wait_members(settings, 2)
    _setup_homes(settings, feed, homes)
    first = _reports(homes, per_device=20, seed=1)
    _send_reports(feed, first, t0)
    half = _reference(homes, first, t0)
    read_all(
        settings,
        [t.STATE_CHANGES],
        set(homes),
        until=lambda r: len(r) >= sum(v for v, _ in half.values()),
    )
    b.kill(signal.SIGTERM)  # its partitions, and their table state, move to a
    wait_members(settings, 1)
    second = _reports(homes, per_device=20, seed=2)
    _send_reports(feed, second, t0 + len(first))
    expected = _reference(homes, first + second, t0)
    _check_against_reference(settings, homes, expected)


def test_a_worker_back_after_another_owned_its_partitions_catches_up(settings, workers):
    """A worker's local RocksDB copy goes stale while another worker owns its partitions;
    back, it replays what the other wrote from its checkpoint, and goes on from there."""
    homes = home_ids(6, settings.partitions)
    feed = Feed(settings)
    t0 = int(time.time() * 1000)
    rounds = [_reports(homes, per_device=10, seed=s) for s in (11, 12, 13)]

    def run_round(n: int) -> None:
        sent = [r for rs in rounds[:n] for r in rs]
        _send_reports(feed, rounds[n - 1], t0 + len(sent) - len(rounds[n - 1]))
        done = sum(v for v, _ in _reference(homes, sent, t0).values())
        read_all(settings, [t.STATE_CHANGES], set(homes), until=lambda r: len(r) >= done)

    x = workers("x")
    wait_members(settings, 1)
    _setup_homes(settings, feed, homes)
    run_round(1)
    x.kill(signal.SIGTERM)
    y = workers("y")  # owns every partition now, with state restored from the changelog
    wait_members(settings, 1)
    run_round(2)
    y.kill(signal.SIGTERM)
    x = workers("x")  # its copies stand where it left them
    wait_members(settings, 1)
    run_round(3)
    expected = _reference(homes, [r for rs in rounds for r in rs], t0)
    _check_against_reference(settings, homes, expected)
    caught_up = [
        json.loads(line)["msg"]
        for line in x.log.read_text().splitlines()
        if line.startswith("{") and "from its checkpoint with" in line
    ]
    replayed = [int(m.split(" with ")[1].split()[0]) for m in caught_up]
    assert replayed and sum(replayed) > 0, caught_up  # y's writes, not a full rebuild


def test_a_restart_with_a_backlog_calls_only_silent_devices_offline(settings, workers):
    """Devices that kept reporting while the worker was away are not offline when it
    comes back, though their reports wait behind a backlog; a silent one is."""
    fast = {"HOMESTREAM_OFFLINE_AFTER_S": "3", "HOMESTREAM_HEALTH_SCAN_S": "1"}
    home = home_ids(1, settings.partitions)[0]
    part = partition_for(home, settings.partitions)
    filler = next(
        h
        for h in home_ids(40, settings.partitions)
        if partition_for(h, settings.partitions) == part
    )
    feed = Feed(settings)
    for h, dev in ((home, "chatty"), (home, "quiet"), (filler, "filler")):
        feed.discover(h, dev, ["TEMPERATURE_SENSOR"], "sensor.temperature")
        feed.report(h, dev, {"temperature": 20.0})
    feed.flush()
    worker = workers("w-backlog", env=fast)
    read_all(settings, [t.STATE_CHANGES], {home}, until=lambda r: len(r) >= 2)
    worker.kill(signal.SIGTERM)

    # Away for ~6 s: "chatty" reports every 0.3 s, each behind 1,500 changes of another
    # home of its partition (seconds of work to catch up on); "quiet" says nothing.
    temps = iter(range(10**6))
    for _ in range(20):
        feed.report(home, "chatty", {"temperature": 21.0 + next(temps) % 2})
        for n in range(1_500):
            feed.report(filler, "filler", {"temperature": 20.0 + 2 * (n % 2)})
        feed.flush()
        time.sleep(0.3)

    stop = threading.Event()

    def keep_reporting() -> None:
        while not stop.is_set():
            feed.report(home, "chatty", {"temperature": 21.0 + next(temps) % 2})
            feed.flush()
            stop.wait(0.3)

    reporter = threading.Thread(target=keep_reporting, daemon=True)
    reporter.start()
    try:
        workers("w-backlog", env=fast)

        def quiet_offline(records) -> bool:
            return any(r["device_id"] == "quiet" for r in of(records, "Notification"))

        got = read_all(settings, [t.NOTIFICATIONS], {home}, until=quiet_offline, timeout=120)
        time.sleep(3)  # any late false alarm about "chatty" would follow the backlog
        got = read_all(settings, [t.NOTIFICATIONS], {home}, until=quiet_offline, timeout=60)
    finally:
        stop.set()
        reporter.join(5)
    offline = [(r["kind"], r["device_id"]) for r in of(got, "Notification")]
    assert ("DEVICE_OFFLINE", "quiet") in offline
    assert ("DEVICE_OFFLINE", "chatty") not in offline, offline


def test_a_new_owner_restores_after_the_previous_owners_pending_commit(settings, workers):
    """A previous owner that stalled between sending its offsets and committing may still
    commit after its partitions moved. The new owner must restore the state that commit
    carries: here a device the previous owner had discovered."""
    from confluent_kafka import Producer

    from streams.fold.dispatch import Fold
    from streams.fold.store import DictStore
    from streams.txloop import CHANGELOG
    from tests.unit.test_processor import discovered

    home = home_ids(1, settings.partitions)[0]
    part = partition_for(home, settings.partitions)
    store = DictStore()  # the state the previous owner's transaction carries
    name, rec = discovered(dev="lamp")
    Fold(store).handle(name, {**rec, "home_id": home})
    assert f"{home}/lamp" in store.data

    zombie = Producer(
        {"bootstrap.servers": settings.kafka_bootstrap, "transactional.id": f"zombie-{home}"}
    )
    zombie.init_transactions(30)
    zombie.begin_transaction()
    for key, value in store.data.items():
        zombie.produce(
            CHANGELOG, key=key.encode(), value=json.dumps(value).encode(), partition=part
        )
    probe = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": GROUP})
    ends = [
        TopicPartition(topic, part, probe.get_watermark_offsets(TopicPartition(topic, part))[1])
        for topic in INPUT_TOPICS
    ]
    zombie.send_offsets_to_transaction(ends, probe.consumer_group_metadata())
    probe.close()

    owner = workers("w-owner")
    # The stalled owner commits only once the new one has restored the partition, or
    # after 10 s if the new owner waits for that commit before restoring (it should).
    restored = f"partition {part}: "
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if owner.log.exists() and restored in owner.log.read_text(errors="replace"):
            break
        time.sleep(0.1)
    zombie.commit_transaction()

    feed = Feed(settings)
    feed.report(home, "lamp", {"powerState": "ON"})
    feed.flush()
    got = read_all(
        settings, [t.STATE_CHANGES], {home}, until=lambda r: of(r, "StateChange"), timeout=60
    )
    assert [state_of(r).reported for r in of(got, "StateChange")] == [{"powerState": "ON"}]


SCENE = {
    "name": "Evening",
    "actions": [
        {"device_id": "lamp", "capability": "ON_OFF", "command": "turnOn"},
        {"device_id": "plug", "capability": "ON_OFF", "command": "turnOn", "delay_ms": 4_000},
    ],
}


def test_a_scene_run_resumes_after_its_worker_is_sigkilled_mid_scene(settings, workers):
    """The run is the worker's state: killed between the scene's two steps, the restarted
    worker sends the delayed step and ends the run, once (read_committed)."""
    home = home_ids(1, settings.partitions)[0]
    feed = Feed(settings)
    w = workers("scene-victim")
    wait_members(settings, 1)
    feed.discover(home, "lamp", ["ON_OFF", "BRIGHTNESS"], "light.dimmer")
    feed.discover(home, "plug", ["ON_OFF"], "switch.plug")
    feed.config(home, "scene", "evening", SCENE)
    feed.flush()
    read_all(settings, [t.DEVICE_REGISTRY], {home}, until=lambda r: len(r) >= 2)
    hub = Hub(settings, {home})
    try:
        run_id = str(uuid.uuid4())
        feed.send(
            t.COMMANDS_REQUESTED,
            "SceneRequested",
            home,
            scene_id="evening",
            run_id=run_id,
            requested_by="alice",
        )
        feed.flush()
        read_all(settings, [t.COMMANDS_DISPATCHED], {home}, until=lambda r: len(r) >= 1)
        w.kill(signal.SIGKILL)  # the lamp's step is out, the plug's is 4 s away
        killed = time.time()
        workers("scene-victim")  # same name: its RocksDB copy and transactional id

        def ended(records):
            return any(
                r["run_id"] == run_id and r["status"] != "STARTED" for r in of(records, "SceneRun")
            )

        got = read_all(
            settings, [t.SCENES_RUNS, t.COMMANDS_DISPATCHED], {home}, until=ended, timeout=120
        )
    finally:
        hub.stop()
    runs = [r for r in of(got, "SceneRun") if r["run_id"] == run_id]
    assert [r["status"] for r in runs] == ["STARTED", "COMPLETED"]
    final = runs[-1]
    assert (final["actions_succeeded"], final["actions_failed"], final["actions_skipped"]) == (
        2,
        0,
        0,
    )
    dispatched = of(got, "CommandDispatched")
    assert sorted(d["device_id"] for d in dispatched) == ["lamp", "plug"]  # each once
    assert final["command_ids"] == [d["command_id"] for d in dispatched]
    (plug,) = [cid for cid, when in _acked(hub) if cid == final["command_ids"][1]]
    assert dict(_acked(hub))[plug] > killed  # sent by the restarted worker
    assert final["execution_time_ms"] >= 4_000


def _acked(hub: Hub) -> list[tuple[str, float]]:
    return [(rec["command_id"], when) for when, rec in hub.acked]
