"""The history sink against the test stack's real Kafka and PostgreSQL.

- PostgreSQL is stopped in the middle of a stream of StateChanges: the sink keeps the
  batch, retries, and when PostgreSQL is back every change is stored exactly once.
- A replay of the topic (`homestream replay`, and a second sink group over the same range)
  leaves the row counts and the roll-ups as they were.
- A poison record goes to the dead letter topic and the records after it are stored.
- The analyst views answer the example queries of docs/history.md, and history(...) reads
  them for the gateway.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from compose.process import free_port
from compose.process import stop as stop_process
from compose.services.postgres import PostgresService
from runtime.secrets import load_secrets
from sinks.history import sink_argv
from stores import db
from stores.history_query import history
from topics import catalogue as t
from topics.codec import make_codec
from topics.keys import device_key
from topics.partitioning import partition_for_key
from topics.producer import EventProducer
from topics.schemas import SchemaStore

pytestmark = pytest.mark.integration

POISON = b"not avro at all"

REPO = Path(__file__).resolve().parents[2]


def _until(pred: Callable[[], bool], timeout: float, step: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


class Sink:
    """One history sink process (the real `homestream sink history` command line)."""

    def __init__(self, stack_env: dict[str, str], tmp: Path, group: str, name: str = "h1"):
        self.dir = tmp / f"sink-{name}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.log = self.dir / "sink.log"
        env = {**os.environ, **stack_env, "HOMESTREAM_LOG_FORMAT": "text"}
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                sink_argv(self.dir, self.port, name=name, group=group),
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=REPO,
            )

    def metrics(self) -> dict[str, float]:
        from runtime.metrics import scrape

        try:
            samples = scrape("127.0.0.1", self.port, timeout=2)
        except OSError:
            return {}
        out = {s.labels["outcome"]: s.value for s in samples["homestream_sink_events_total"]}
        (out["up"],) = [s.value for s in samples["homestream_sink_up"]]
        out["lag_count"] = sum(s.value for s in samples["homestream_sink_lag_seconds_count"])
        return out

    def wait_up(self, timeout: float = 60) -> None:
        ok = _until(lambda: self.metrics().get("up") == 1 or self.proc.poll() is not None, timeout)
        assert ok and self.proc.poll() is None, f"sink did not start:\n{self.tail()}"

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise AssertionError(f"sink did not stop on signal {sig}:\n{self.tail()}") from None

    def tail(self, n: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])


@pytest.fixture
def settings(history_settings):
    """Every test here runs once per engine (tests/conftest.py's history_env)."""
    return history_settings


@pytest.fixture
def sinks(history_env, tmp_path) -> Iterator[Callable[..., Sink]]:
    started: list[Sink] = []

    def start(group: str, name: str = "h1") -> Sink:
        s = Sink(history_env, tmp_path, group, name)
        started.append(s)
        s.wait_up()
        return s

    yield start
    for s in started:
        with contextlib.suppress(AssertionError):
            s.stop()


class Postgres:
    """The test stack's PostgreSQL, stopped and started in place."""

    def __init__(self, settings):
        self.svc = PostgresService(settings, load_secrets(settings))

    def stop(self) -> None:
        # Fast shutdown (SIGINT): the sink's open session must not hold a smart shutdown.
        assert stop_process(self.svc.pidfile, sig=signal.SIGINT), "PostgreSQL was not running"

    def start(self) -> None:
        if self.svc.pid() is None:
            self.svc.start()
        self.svc.wait_healthy(time.monotonic() + self.svc.start_timeout)


@pytest.fixture
def postgres(settings) -> Iterator[Postgres]:
    pg = Postgres(settings)
    try:
        yield pg
    finally:
        pg.start()  # later tests need it, whatever happened here


@pytest.fixture
def producer(settings) -> Iterator[EventProducer]:
    p = EventProducer(
        settings.kafka_bootstrap,
        settings.partitions,
        make_codec(SchemaStore(), settings.schema_registry_url),
    )
    yield p
    p.flush()


def send_changes(
    producer: EventProducer, home: str, devices: list[str], versions: range, ts0: int
) -> int:
    """StateChanges with two changed attributes each; returns the rows they make."""
    rows = 0
    for v in versions:
        for i, dev in enumerate(devices):
            temp = 18.0 + (v % 50) / 10 + i
            producer.send(
                t.STATE_CHANGES,
                "StateChange",
                home,
                ts=ts0 + v * 1000 + i,
                device_id=dev,
                version=v,
                changed={"temperature": temp, "powerState": "ON" if v % 2 else "OFF"},
                reported={"temperature": temp, "powerState": "ON" if v % 2 else "OFF"},
                accepted_at=int(time.time() * 1000),
            )
            rows += 2
    producer.flush()
    return rows


def count(settings, sql: str, *params) -> int:
    with db.connect(settings) as conn:
        row = conn.execute(sql, params).fetchone()
        return int(row[0]) if row and row[0] is not None else 0


def state_rows(settings, home: str) -> int:
    return count(settings, "SELECT count(*) FROM history.state_history WHERE home_id = %s", home)


def refresh_rollups(settings) -> None:
    """On TimescaleDB, do what the refresh policies do every minute / 15 minutes: rows newer
    than the last refresh show in the continuous aggregates at once (real-time), rows older
    than it (the tests' hour-old reports, once a policy ran) after the next refresh."""
    from sinks.history_schema import engine

    with db.connect(settings, autocommit=True) as conn:
        if engine(conn) != "timescaledb":
            return
        for view in ("history.rollup_1m", "history.rollup_1h"):
            conn.execute("CALL refresh_continuous_aggregate(%s, NULL, NULL)", (view,))


def rollup_samples(settings, home: str) -> tuple[int, int]:
    refresh_rollups(settings)
    return (
        count(
            settings,
            "SELECT sum(samples) FROM history.state_rollup_1m WHERE home_id = %s",
            home,
        ),
        count(
            settings,
            "SELECT sum(samples) FROM history.state_rollup_1h WHERE home_id = %s",
            home,
        ),
    )


def test_postgres_stopped_mid_stream_loses_and_doubles_nothing(settings, sinks, postgres, producer):
    home = f"hist-{uuid.uuid4().hex[:8]}"
    devices = ["thermo-a", "thermo-b", "thermo-c"]
    ts0 = int(time.time() * 1000) - 3_600_000
    sink = sinks(f"test-history-{uuid.uuid4().hex[:6]}")

    expected = send_changes(producer, home, devices, range(1, 101), ts0)
    assert _until(lambda: state_rows(settings, home) == expected, 60), sink.tail()

    postgres.stop()
    try:
        expected += send_changes(producer, home, devices, range(101, 201), ts0)
        # The sink holds the batch and retries with backoff, saying so.
        assert _until(lambda: sink.metrics().get("pg_retries", 0) >= 2, 30), sink.tail()
        assert sink.metrics().get("up") == 0
        expected += send_changes(producer, home, devices, range(201, 251), ts0)
    finally:
        postgres.start()

    expected += send_changes(producer, home, devices, range(251, 301), ts0)
    assert _until(lambda: state_rows(settings, home) == expected, 90), (
        sink.tail(),
        sink.metrics(),
        state_rows(settings, home),
        expected,
    )
    time.sleep(2)  # nothing arrives late, nothing twice
    assert state_rows(settings, home) == expected == 300 * 3 * 2
    assert (
        count(
            settings,
            "SELECT count(*) FROM (SELECT DISTINCT device_id, version, attribute"
            " FROM history.state_history WHERE home_id = %s) x",
            home,
        )
        == expected
    )
    # Only temperature is numeric: one roll-up sample per temperature row.
    assert rollup_samples(settings, home) == (expected // 2, expected // 2)
    # runtime.service's retry line: "PostgreSQL write failed (...); retrying in ..."
    assert "PostgreSQL write failed" in sink.log.read_text()
    assert sink.stop() == 0  # SIGTERM: clean stop
    counters = json.loads((sink.dir / "counters.json").read_text())
    assert counters["batches"] > 0


def test_replay_never_doubles_rows_or_rollups(settings, sinks, producer, run_cli):
    home = f"hist-{uuid.uuid4().hex[:8]}"
    ts0 = int(time.time() * 1000) - 7_200_000
    group = f"test-history-{uuid.uuid4().hex[:6]}"
    sink = sinks(group, "r1")
    expected = send_changes(producer, home, ["lamp-1", "lamp-2"], range(1, 151), ts0)
    assert _until(lambda: state_rows(settings, home) == expected, 60), sink.tail()
    rollups = rollup_samples(settings, home)
    assert rollups == (expected // 2, expected // 2)

    # 1. The same group, moved back to the beginning with `homestream replay`.
    assert sink.stop() == 0
    before = json.loads((sink.dir / "counters.json").read_text())
    run_cli("replay", "--group", group, "--topic", t.STATE_CHANGES, "--since", "0")
    again = sinks(group, "r1")
    assert _until(lambda: again.metrics().get("duplicates_state_changes", 0) >= expected, 60), (
        again.tail()
    )
    assert state_rows(settings, home) == expected
    assert rollup_samples(settings, home) == rollups
    assert before.get("rows_state_changes", 0) >= expected

    # 2. A second sink group over the same range.
    other = sinks(f"test-history-{uuid.uuid4().hex[:6]}", "r2")
    assert _until(lambda: other.metrics().get("duplicates_state_changes", 0) >= expected, 60), (
        other.tail()
    )
    assert state_rows(settings, home) == expected
    assert rollup_samples(settings, home) == rollups


def test_poison_record_is_dead_lettered_and_the_sink_carries_on(settings, sinks, producer):
    from homestream.ops import dead_letters

    home = f"hist-{uuid.uuid4().hex[:8]}"
    sink = sinks(f"test-history-{uuid.uuid4().hex[:6]}", "p1")
    raw = producer.producer
    raw.produce(
        t.STATE_CHANGES,
        key=home.encode(),
        value=POISON,
        partition=partition_for_key(home, settings.partitions),
    )
    raw.flush(10)
    expected = send_changes(producer, home, ["d1"], range(1, 11), int(time.time() * 1000))
    assert _until(lambda: state_rows(settings, home) == expected, 60), sink.tail()
    assert _until(lambda: sink.metrics().get("dead_letter_DECODE_ERROR", 0) >= 1, 30), sink.tail()

    def found():
        return [
            r for r in dead_letters(settings, home=home) if r.record["processor"] == "history-sink"
        ]

    assert _until(lambda: bool(found()), 30)
    letter = found()[0].record
    assert letter["reason"] == "DECODE_ERROR"
    assert letter["source"]["kafka_topic"] == t.STATE_CHANGES
    assert letter["original"] == POISON
    assert sink.proc.poll() is None


def test_views_answer_the_documented_queries_and_history_reads_them(settings, sinks, producer):
    home = f"hist-{uuid.uuid4().hex[:8]}"
    now = int(time.time() * 1000)
    sink = sinks(f"test-history-{uuid.uuid4().hex[:6]}", "v1")
    codec = producer.codec
    n = settings.partitions

    def registry(device: str, name: str, type_: str, room: str) -> None:
        key = device_key(home, device)
        value = codec.encode(
            "DeviceRegistered",
            {
                "event_id": str(uuid.uuid4()),
                "home_id": home,
                "ts": now - 3_600_000,
                "device_id": device,
                "name": name,
                "type": type_,
                "room": room,
                "registered_at": now - 3_600_000,
            },
            topic=t.DEVICE_REGISTRY,
        )
        producer.producer.produce(
            t.DEVICE_REGISTRY, key=key.encode(), value=value, partition=partition_for_key(key, n)
        )

    registry("thermo", "Kitchen Thermostat", "thermostat", "Kitchen")
    registry("lamp", "Desk Lamp", "light.switch", "Office")
    for i in range(10):
        producer.send(
            t.STATE_CHANGES,
            "StateChange",
            home,
            ts=now - 600_000 + i * 60_000,
            device_id="thermo",
            version=i + 1,
            changed={"temperature": 20.0 + i},
            reported={"temperature": 20.0 + i},
            accepted_at=now,
        )
    for v, (state, ago) in enumerate([("ON", 7200), ("OFF", 3600), ("ON", 1800)], start=1):
        producer.send(
            t.STATE_CHANGES,
            "StateChange",
            home,
            ts=now - ago * 1000,
            device_id="lamp",
            version=v,
            changed={"powerState": state},
            reported={"powerState": state},
            accepted_at=now,
        )
    for status in ("PENDING", "SENT", "FAILED"):
        producer.send(
            t.COMMANDS_STATUS,
            "CommandStatus",
            home,
            ts=now - 1000 + ("PENDING", "SENT", "FAILED").index(status),
            command_id="cmd-1",
            status=status,
            reason="device busy" if status == "FAILED" else None,
            device_id="lamp",
            capability="ON_OFF",
            command="turnOn",
        )
    producer.send(
        t.DEVICE_EVENTS,
        "DeviceEvent",
        home,
        device_id="thermo",
        event="tamper",
        data='{"level": 2}',
        received_at=now,
    )
    producer.send(
        t.NOTIFICATIONS,
        "Notification",
        home,
        kind="DEVICE_OFFLINE",
        severity="WARNING",
        message="Desk Lamp is offline",
        device_id="lamp",
    )
    for online, ago in ((True, 5000), (False, 3000), (True, 1000)):
        key = device_key(home, "lamp")
        producer.producer.produce(
            t.DEVICE_AVAILABILITY,
            key=key.encode(),
            value=codec.encode(
                "Availability",
                {
                    "event_id": str(uuid.uuid4()),
                    "home_id": home,
                    "ts": now - ago,
                    "device_id": "lamp",
                    "online": online,
                },
            ),
            partition=partition_for_key(key, n),
        )
    producer.flush()

    def arrived() -> bool:
        return (
            state_rows(settings, home) == 13
            and count(settings, "SELECT count(*) FROM history.devices WHERE home_id=%s", home) == 2
            and count(settings, "SELECT count(*) FROM history.device_uptime WHERE home_id=%s", home)
            == 3
            and count(settings, "SELECT count(*) FROM history.notifications WHERE home_id=%s", home)
            == 1
            and count(settings, "SELECT count(*) FROM history.device_events WHERE home_id=%s", home)
            == 1
            and count(
                settings,
                "SELECT count(*) FROM history.command_outcomes WHERE home_id=%s AND status=%s",
                home,
                "FAILED",
            )
            == 1
        )

    assert _until(arrived, 60), sink.tail()

    with db.connect(settings) as conn:
        rows = conn.execute(
            "SELECT room, device_name, count(*) FROM history.state_history"
            " WHERE home_id = %s AND attribute = 'temperature' GROUP BY 1, 2",
            (home,),
        ).fetchall()
        assert rows == [("Kitchen", "Kitchen Thermostat", 10)]
        # Every ```sql example of docs/history.md and the README runs on the real schema.
        for sql in doc_queries():
            n_home = sql.count("'demo-home'")
            conn.execute(sql.replace("'demo-home'", "%s"), (home,) * n_home).fetchall()
        hours = conn.execute(HOURS_ON, (home,)).fetchall()
        assert [(d, round(float(h), 1)) for d, h in hours] == [("Desk Lamp", 1.5)]

        refresh_rollups(settings)
        raw = history(conn, home, "thermo", start=now - 3_600_000, end=now + 1, bucket="raw")
        assert [r["value"] for r in raw] == [20.0 + i for i in range(10)]
        per_min = history(
            conn,
            home,
            "thermo",
            start=now - 3_600_000,
            end=now + 1,
            bucket="1m",
            attribute="temperature",
        )
        assert sum(r["count"] for r in per_min) == 10
        per_day = history(conn, home, "thermo", start=now - 86_400_000, end=now + 1, bucket="1d")
        assert sum(r["count"] for r in per_day) == 10
        assert per_day[0]["min"] == 20.0 and per_day[-1]["max"] == 29.0


# Hours each light was on in the last 24 h, from powerState history (docs/history.md).
HOURS_ON = """
WITH s AS (
    SELECT device_name, time, value_text,
           lead(time, 1, now()) OVER (PARTITION BY home_id, device_id ORDER BY time) AS until
    FROM history.state_history
    WHERE home_id = %s AND attribute = 'powerState' AND kind = 'reported'
)
SELECT device_name,
       extract(epoch FROM sum(least(until, now()) - greatest(time, now() - interval '24 hours'))
               FILTER (WHERE value_text = 'ON')) / 3600 AS hours_on
FROM s WHERE until > now() - interval '24 hours'
GROUP BY device_name
"""


def doc_queries() -> list[str]:
    out: list[str] = []
    for doc in (REPO / "docs" / "history.md", REPO / "README.md"):
        out += re.findall(r"```sql\n(.*?)```", doc.read_text(), flags=re.S)
    assert len(out) >= 8
    return out


def test_the_logbook_reads_what_the_sink_wrote(settings, sinks, producer, history_env):
    """Commands with who sent them, how they ended, automation runs, notifications and
    state changes, through the real sink into the logbook's query (stores.logbook)."""
    from stores.logbook import build_query, entry_message, logbook

    home = f"lb-{uuid.uuid4().hex[:6]}"
    sinks(f"hist-{uuid.uuid4().hex[:6]}")
    now = int(time.time() * 1000)
    producer.send(t.STATE_CHANGES, "StateChange", home, ts=now, device_id="lamp", version=1,
                  changed={"powerState": "ON"}, reported={"powerState": "ON"},
                  accepted_at=now)  # fmt: skip
    producer.send(t.COMMANDS_REQUESTED, "CommandRequested", home, ts=now + 1,
                  command_id="c1", device_id="lamp", group_id=None, capability="ON_OFF",
                  command="turnOn", parameters={}, requested_by="alice", timeout_ms=5000,
                  issued_at=now + 1, request_id=None, parent_command_id=None)  # fmt: skip
    for i, status in enumerate(("PENDING", "SENT", "COMPLETED")):
        producer.send(t.COMMANDS_STATUS, "CommandStatus", home, ts=now + 2 + i,
                      command_id="c1", status=status, device_id="lamp")  # fmt: skip
    producer.send(t.AUTOMATIONS_RUNS, "AutomationFired", home, ts=now + 10,
                  automation_id="night", run_id="r1", alias="Night", trigger="time",
                  status="COMPLETED", trace=None, error=None)  # fmt: skip
    producer.send(t.NOTIFICATIONS, "Notification", home, ts=now + 11, kind="AUTOMATION",
                  severity="INFO", message="good night")  # fmt: skip
    producer.flush()

    def feed():
        with db.connect(settings) as conn:
            return logbook(conn, home, query=build_query())

    assert _until(lambda: len(feed()) >= 4, 60), feed()
    rows = feed()
    assert [r["kind"] for r in rows] == ["notification", "automation", "command", "state"]
    assert [entry_message(r, "Lamp" if r["device_id"] else None) for r in rows] == [
        "notification: good night",
        "automation Night ran (completed)",
        "alice sent turnOn to Lamp: completed",
        "Lamp powerState changed to ON",
    ]
    with db.connect(settings) as conn:
        only_lamp = logbook(conn, home, query=build_query(), devices=["lamp"])
        commands = logbook(conn, home, query=build_query(kinds="command"))
    assert [r["kind"] for r in only_lamp] == ["command", "state"]
    assert [r["detail"]["requested_by"] for r in commands] == ["alice"]

    # The same feed from the command line (a home must exist for it), on this engine's database.
    def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
        exe = Path(sys.executable).with_name("homestream")
        done = subprocess.run([str(exe), *args], env={**os.environ, **history_env},
                              capture_output=True, text=True, timeout=120)  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done

    run_cli("users", "add", "--username", f"o{home}", "--password", "password-1234")
    run_cli("homes", "add", "--home", home, "--owner", f"o{home}")
    cli = json.loads(run_cli("logbook", "--home", home, "--json").stdout)
    assert [e["message"] for e in cli][-2:] == [
        "alice sent turnOn to lamp: completed",
        "lamp powerState changed to ON",
    ]
    text = run_cli("logbook", "--home", home, "--kind", "automation").stdout
    assert "automation Night ran (completed)" in text
