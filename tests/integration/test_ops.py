"""`homestream dlq` and `homestream replay` against the test stack's Kafka."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from confluent_kafka import Consumer, TopicPartition

from hub import wire
from tests.integration.streams_support import CODEC, read_all
from topics import catalogue as t
from topics.partitioning import partition_for
from topics.producer import EventProducer

pytestmark = pytest.mark.integration


def test_dlq_list_and_redrive(settings, run_cli):
    home = f"dlq-{uuid.uuid4().hex[:6]}"
    feed = EventProducer(settings.kafka_bootstrap, settings.partitions, CODEC)
    now = int(time.time() * 1000)
    # 1. An MQTT message the bridge refused then, which parses now (say, after a fix).
    topic = f"hub/{home}/state/lamp-1"
    ok_payload = b'{"state": {"powerState": "ON"}}'
    refused = wire.Rejected("MALFORMED_JSON", "pretend it was refused", home, "lamp-1")
    dl = wire.dead_letter(refused, topic, ok_payload, received_at=now)
    feed.send(
        t.DEADLETTER,
        "DeadLetter",
        home,
        **{k: v for k, v in dl.items() if k not in ("event_id", "home_id")},
    )
    # 2. A report the stream fold parked and gave up on (device discovered too late).
    report = {
        "event_id": str(uuid.uuid4()),
        "home_id": home,
        "ts": now,
        "device_id": "lamp-2",
        "state": {"powerState": "OFF"},
        "received_at": now,
        "source": "mqtt",
    }
    feed.send(
        t.DEADLETTER,
        "DeadLetter",
        home,
        reason="UNKNOWN_DEVICE",
        message="device 'lamp-2' was never discovered",
        original=json.dumps({"record": "DeviceReport", "value": report}).encode(),
        source={"transport": "kafka"},
        device_id="lamp-2",
        first_seen=now,
        processor="streams",
    )
    # 3. Still broken: stays a dead letter on re-drive.
    bad = wire.dead_letter(
        wire.Rejected("MALFORMED_JSON", "not JSON", home, "lamp-3"),
        f"hub/{home}/state/lamp-3",
        b"{nope",
        received_at=now,
    )
    feed.send(
        t.DEADLETTER,
        "DeadLetter",
        home,
        **{k: v for k, v in bad.items() if k not in ("event_id", "home_id")},
    )
    feed.flush()

    listed = json.loads(run_cli("dlq", "list", "--home", home, "--json").stdout)
    assert sorted(d["reason"] for d in listed) == [
        "MALFORMED_JSON",
        "MALFORMED_JSON",
        "UNKNOWN_DEVICE",
    ]
    only = json.loads(
        run_cli("dlq", "list", "--home", home, "--reason", "UNKNOWN_DEVICE", "--json").stdout
    )
    assert [d["device_id"] for d in only] == ["lamp-2"]

    dry = run_cli("dlq", "redrive", "--home", home, "--dry-run").stdout
    assert "would re-drive 2 of 3" in dry and "1 still refused" in dry
    out = run_cli("dlq", "redrive", "--home", home).stdout
    assert "re-drove 2 of 3" in out

    def done(recs):
        return len([1 for n, _ in recs if n == "DeviceReport"]) >= 2

    recs = read_all(settings, [t.DEVICE_REPORTS], {home}, until=done, timeout=30)
    states = {r["device_id"]: r["state"] for n, r in recs if n == "DeviceReport"}
    assert states == {"lamp-1": {"powerState": "ON"}, "lamp-2": {"powerState": "OFF"}}


def test_replay_moves_a_stopped_group_back(settings, run_cli):
    group = f"replay-{uuid.uuid4().hex[:6]}"
    home = f"rp-{uuid.uuid4().hex[:6]}"
    feed = EventProducer(settings.kafka_bootstrap, settings.partitions, CODEC)
    for i in range(5):
        feed.send(
            t.DEVICE_EVENTS,
            "DeviceEvent",
            home,
            device_id="b",
            event="press",
            received_at=i,
            source="mqtt",
        )
    feed.flush()
    part = partition_for(home, settings.partitions)
    c = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": group})
    _low, high = c.get_watermark_offsets(TopicPartition(t.DEVICE_EVENTS, part), timeout=10)
    c.commit(offsets=[TopicPartition(t.DEVICE_EVENTS, part, high)], asynchronous=False)
    c.close()
    out = run_cli("replay", "--group", group, "--topic", t.DEVICE_EVENTS, "--since", "0").stdout
    assert f"{t.DEVICE_EVENTS}/{part}: {high} -> 0" in out
    c = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": group})
    [tp] = c.committed([TopicPartition(t.DEVICE_EVENTS, part)], timeout=10)
    c.close()
    assert tp.offset == 0


def test_republish_config_sends_every_stored_document(settings, run_cli):
    """Documents stored before the gateway published them reach the workers again."""
    from psycopg.types.json import Jsonb

    from stores import accounts, db

    home, user = f"h-{uuid.uuid4().hex[:8]}", f"u{uuid.uuid4().hex[:8]}"
    scene = {"name": "Evening", "actions": [{"device_id": "lamp", "capability": "ON_OFF",
                                             "command": "turnOn"}]}  # fmt: skip
    with db.connect(settings) as conn:
        accounts.add_user(conn, user, "password-1234")
        accounts.add_home(conn, home, user)
        conn.execute(
            "INSERT INTO gateway_documents (home_id, kind, doc_id, document, updated_by)"
            " VALUES (%s, 'scene', 'evening', %s, %s), (%s, 'home', 'mode', %s, %s)",
            (home, Jsonb(scene), user, home, Jsonb({"mode": "away"}), user),
        )
    result = run_cli("topics", "republish-config", "--home", home)
    assert "2 documents republished" in result.stdout
    got = read_all(settings, [t.HOME_CONFIG], {home}, until=lambda r: len(r) >= 2, timeout=30)
    sent = {(r["kind"], r["doc_id"]): json.loads(r["document"]) for _n, r in got}
    assert sent == {("scene", "evening"): scene, ("home", "mode"): {"mode": "away"}}


def test_replay_refuses_unknown_topics_and_groups_in_one_line(settings, run_cli):
    topic = run_cli(
        "replay", "--group", "homestream-x", "--topic", "no.such.topic", "--since", "0",
        check=False,
    )  # fmt: skip
    assert topic.returncode == 2 and "topics create" in topic.stderr
    group = run_cli(
        "replay", "--group", f"no-such-{uuid.uuid4().hex[:6]}", "--topic", t.DEVICE_EVENTS,
        "--since", "0", check=False,
    )  # fmt: skip
    assert group.returncode == 2 and "has consumed nothing" in group.stderr
    for proc in (topic, group):
        # librdkafka's own notices ("%6|...") may come first; ours is one line
        ours = [line for line in proc.stderr.splitlines() if not line.startswith("%")]
        assert "Traceback" not in proc.stderr and len(ours) == 1, proc.stderr
        assert "-1001" not in proc.stdout + proc.stderr


def test_replay_dry_run_previews_a_running_group(settings, run_cli):
    group = f"running-{uuid.uuid4().hex[:6]}"
    home = f"rr-{uuid.uuid4().hex[:6]}"
    feed = EventProducer(settings.kafka_bootstrap, settings.partitions, CODEC)
    feed.send(t.DEVICE_EVENTS, "DeviceEvent", home, device_id="b", event="press",
              received_at=1, source="mqtt")  # fmt: skip
    feed.flush()
    member = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": group,
                       "auto.offset.reset": "latest"})  # fmt: skip
    member.subscribe([t.DEVICE_EVENTS])
    try:
        deadline = time.monotonic() + 30
        while not member.assignment() and time.monotonic() < deadline:
            member.poll(0.5)
        part = partition_for(home, settings.partitions)
        _low, high = member.get_watermark_offsets(TopicPartition(t.DEVICE_EVENTS, part), 10)
        member.commit(offsets=[TopicPartition(t.DEVICE_EVENTS, part, high)], asynchronous=False)
        args = ("replay", "--group", group, "--topic", t.DEVICE_EVENTS, "--since", "0")
        dry = run_cli(*args, "--dry-run")
        assert f"{t.DEVICE_EVENTS}/{part}: {high} -> 0" in dry.stdout
        assert "nothing moved" in dry.stdout
        real = run_cli(*args, check=False)
        assert real.returncode == 2 and "--dry-run previews" in real.stderr
    finally:
        member.close()
