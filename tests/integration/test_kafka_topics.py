"""The real Kafka broker: the topic catalogue on it, and Avro events through it."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from topics.catalogue import catalogue, topics_for_record
from topics.codec import SingleObjectCodec
from topics.partitioning import partition_for
from topics.schemas import SchemaStore

pytestmark = pytest.mark.integration

SPECS = catalogue()


def test_describe_shows_every_catalogue_topic_as_configured(run_cli):
    proc = run_cli("topics", "describe", "--json")
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    assert set(rows) == {s.name for s in SPECS}
    assert all(r["ok"] for r in rows.values()), [r for r in rows.values() if not r["ok"]]


def test_topics_create_is_idempotent(run_cli):
    out = run_cli("topics", "create").stdout.splitlines()
    assert len(out) == len(SPECS)
    assert all(line.split()[-1] == "exists" for line in out)


def test_compacted_and_retained_topics_on_the_broker(settings):
    from confluent_kafka.admin import AdminClient, ConfigResource

    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    md = admin.list_topics(timeout=10)
    for spec in SPECS:
        assert len(md.topics[spec.name].partitions) == settings.partitions
    resources = [ConfigResource(ConfigResource.Type.TOPIC, s.name) for s in SPECS]
    for res, fut in admin.describe_configs(resources).items():
        cfg = fut.result(timeout=10)
        spec = next(s for s in SPECS if s.name == res.name)
        assert cfg["cleanup.policy"].value == spec.cleanup_policy
        if spec.retention_ms is not None:
            assert int(cfg["retention.ms"].value) == spec.retention_ms


def test_avro_event_round_trip_through_kafka(settings):
    codec = SingleObjectCodec(SchemaStore())
    (spec,) = topics_for_record("DeviceReport")
    home = f"home-{uuid.uuid4().hex[:6]}"
    now = int(time.time() * 1000)
    state = {"powerState": "ON", "brightness": 42, "color": {"hue": 120, "saturation": 50}}
    record = {
        "event_id": str(uuid.uuid4()),
        "home_id": home,
        "device_id": "living-room-ceiling",
        "ts": now,
        "received_at": now,
        "state": state,
    }
    payload = codec.encode("DeviceReport", record)
    assert payload[:2] == b"\xc3\x01"  # Avro single-object encoding marker

    partition = partition_for(home, settings.partitions)
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "enable.idempotence": True})
    producer.produce(spec.name, key=home.encode(), value=payload, partition=partition)
    assert producer.flush(10) == 0

    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"test-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
        }
    )
    consumer.assign([TopicPartition(spec.name, partition, 0)])
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is None or msg.error() or msg.key() != home.encode():
                continue
            decoded = codec.decode(msg.value())
            assert decoded.name == "DeviceReport"
            assert decoded.record["home_id"] == home
            assert decoded.record["state"] == state
            assert decoded.record["source"] == "mqtt"  # the schema default
            return
        pytest.fail("the produced event never came back")
    finally:
        consumer.close()
