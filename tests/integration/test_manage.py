"""`homestream users|homes ...` list, disable, passwd, remove against the test stack, and a
removed home leaves every other home as it was (PostgreSQL rows and Kafka keys)."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, TopicPartition

from stores import accounts, db
from tests.integration.streams_support import CODEC
from topics import catalogue as t
from topics.partitioning import partition_for
from topics.producer import EventProducer

pytestmark = pytest.mark.integration
PW = "correct-horse-1"


def _user(run_cli) -> str:
    name = f"u{uuid.uuid4().hex[:8]}"
    run_cli("users", "add", "--username", name, "--password", PW)
    return name


def test_users_list_disable_passwd_remove(settings, run_cli):
    alice, bob = _user(run_cli), _user(run_cli)
    home = f"m-{uuid.uuid4().hex[:6]}"
    run_cli("homes", "add", "--home", home, "--owner", alice)
    users = {u["username"]: u for u in json.loads(run_cli("users", "list", "--json").stdout)}
    assert users[alice]["homes"] == [{"home_id": home, "role": "owner"}]
    assert users[bob]["disabled"] is False
    assert alice in run_cli("users", "list").stdout  # the table

    run_cli("users", "disable", "--username", alice)
    with db.connect(settings) as conn:
        assert not accounts.authenticate(conn, alice, PW)
        assert accounts.role_of(conn, home, alice) is None  # tokens open nothing
    run_cli("users", "disable", "--username", alice, "--enable")
    with db.connect(settings) as conn:
        assert accounts.authenticate(conn, alice, PW)

    run_cli("users", "passwd", "--username", bob, "--password", "another-pass-2")
    with db.connect(settings) as conn:
        assert accounts.authenticate(conn, bob, "another-pass-2")
        assert not accounts.authenticate(conn, bob, PW)

    refused = run_cli("users", "remove", "--username", alice, check=False)
    assert refused.returncode == 2 and f"only owner of {home}" in refused.stderr
    assert "Traceback" not in refused.stderr
    run_cli("users", "remove", "--username", bob)
    missing = run_cli("users", "disable", "--username", bob, check=False)
    assert missing.returncode == 2 and "users list" in missing.stderr


def _same_partition_homes(partitions: int) -> tuple[str, str]:
    first = f"rm-{uuid.uuid4().hex[:6]}"
    while True:
        other = f"keep-{uuid.uuid4().hex[:6]}"
        if partition_for(other, partitions) == partition_for(first, partitions):
            return first, other


def _latest(settings, topic: str, home: str) -> dict[str, bytes | None]:
    """key -> latest value (None: a tombstone) on the home's partition."""
    c = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"t-{uuid.uuid4().hex}",
            "enable.partition.eof": True,
            "enable.auto.commit": False,
        }
    )
    part = partition_for(home, settings.partitions)
    c.assign([TopicPartition(topic, part, 0)])
    latest: dict[str, bytes | None] = {}
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            msg = c.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    break
                continue
            latest[(msg.key() or b"").decode()] = msg.value()
    finally:
        c.close()
    return latest


def test_removing_a_home_touches_no_other_home(settings, run_cli):
    from sinks.redis_sink import redis_client
    from stores.redis_state import RedisState
    from tests.integration.test_redis_sink import ThreadSink

    owner = _user(run_cli)
    gone, kept = _same_partition_homes(settings.partitions)
    for home in (gone, kept):
        run_cli("homes", "add", "--home", home, "--owner", owner)
        run_cli("hubs", "add", "--home", home)
        with db.connect(settings) as conn:
            conn.execute(
                "INSERT INTO gateway_documents (home_id, kind, doc_id, document, updated_by)"
                " VALUES (%s, 'home', 'mode', '{\"mode\": \"away\"}', %s)",
                (home, owner),
            )
    feed = EventProducer(settings.kafka_bootstrap, settings.partitions, CODEC)
    now = int(time.time() * 1000)
    for home in (gone, kept):
        for dev in ("lamp", "door"):
            key = f"{home}/{dev}"
            feed.send(
                t.DEVICE_REGISTRY,
                "DeviceRegistered",
                home,
                key=key,
                device_id=dev,
                name=dev,
                type="light",
                registered_at=now,
            )
            feed.send(
                t.DEVICE_AVAILABILITY, "Availability", home, key=key, device_id=dev, online=True
            )
    feed.flush()
    # The Redis sink (the gateway's device state) has both homes' devices ...
    prefix = f"t{uuid.uuid4().hex[:8]}"
    sink = ThreadSink(settings, prefix)
    try:
        state = RedisState(redis_client(settings), prefix=prefix)

        def devices(home: str) -> list[str]:
            return sorted(d["device_id"] for d in state.devices(home))

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (devices(gone) and devices(kept)):
            time.sleep(0.2)
        assert devices(gone) == devices(kept) == ["door", "lamp"]

        refused = run_cli("homes", "remove", "--home", gone, check=False)
        assert refused.returncode == 2 and "--yes" in refused.stderr
        out = json.loads(run_cli("homes", "remove", "--home", gone, "--yes").stdout)
        assert out["devices"] == 2 and out["documents"] == 1
        assert out["tombstones"][t.DEVICE_REGISTRY] == 2

        homes = {h["home_id"] for h in json.loads(run_cli("homes", "list", "--json").stdout)}
        assert gone not in homes and kept in homes
        hubs = json.loads(run_cli("hubs", "list", "--json").stdout)
        assert {h["home_id"] for h in hubs} >= {kept} and gone not in {h["home_id"] for h in hubs}
        with db.connect(settings) as conn:
            docs = conn.execute(
                "SELECT home_id FROM gateway_documents WHERE home_id IN (%s, %s)", (gone, kept)
            ).fetchall()
        assert docs == [(kept,)]
        for topic in (t.DEVICE_REGISTRY, t.DEVICE_AVAILABILITY):
            latest = _latest(settings, topic, gone)
            for dev in ("lamp", "door"):
                assert latest[f"{gone}/{dev}"] is None, f"{topic}: {gone}/{dev} not tombstoned"
                assert latest[f"{kept}/{dev}"] is not None, f"{topic}: {kept}/{dev} was touched"
        # ... and drops the removed home's from the tombstones, keeping the other's.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and devices(gone):
            time.sleep(0.2)
    finally:
        sink.stop()
    assert devices(gone) == [] and devices(kept) == ["door", "lamp"]
    config = _latest(settings, t.HOME_CONFIG, gone)
    assert config[f"{gone}/home:mode"] is None
    again = run_cli("homes", "remove", "--home", gone, "--yes", check=False)
    assert again.returncode == 2 and "homes list" in again.stderr
