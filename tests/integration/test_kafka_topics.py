"""The real Kafka broker: the topic catalogue on it, and Avro events through it."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer

from topics.catalogue import CATALOGUE
from topics.codec import SingleObjectCodec
from topics.partitioning import partition_for
from topics.schemas import SchemaStore

pytestmark = pytest.mark.integration

SPECS = list(CATALOGUE.values()) if isinstance(CATALOGUE, dict) else list(CATALOGUE)


def _spec_for(record_name: str):
    return next(s for s in SPECS if record_name in s.value_schemas)


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
    store = SchemaStore()
    codec = SingleObjectCodec(store)
    spec = _spec_for("DeviceReport")
    home = f"home-{uuid.uuid4().hex[:6]}"
    now = int(time.time() * 1000)
    latest = store.latest("DeviceReport")
    field_names = {f["name"] for f in latest.schema["fields"]}
    record = {
        "event_id": str(uuid.uuid4()),
        "home_id": home,
        "device_id": "living-room-ceiling",
        "ts": now,
    }
    state = {"powerState": "ON", "brightness": 42, "color": {"hue": 120, "saturation": 50}}
    attr_field = next(n for n in ("state", "attributes", "reported") if n in field_names)
    record[attr_field] = state
    # Fill any other required field from its default or a plain value of its type.
    for f in latest.schema["fields"]:
        if f["name"] not in record and "default" not in f:
            record[f["name"]] = _plain_value(f["type"], now)
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
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    from confluent_kafka import TopicPartition

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
            assert decoded.record[attr_field] == state
            assert msg.partition() == partition
            return
        pytest.fail("the produced event never came back")
    finally:
        consumer.close()


def _plain_value(avro_type, now: int):
    if isinstance(avro_type, list):
        return None if "null" in avro_type else _plain_value(avro_type[0], now)
    if isinstance(avro_type, dict):
        kind = avro_type.get("type")
        if kind == "enum":
            return avro_type["symbols"][0]
        if kind == "map":
            return {}
        if kind == "array":
            return []
        return _plain_value(kind, now)
    return {
        "string": "x",
        "long": now,
        "int": 1,
        "double": 1.0,
        "float": 1.0,
        "boolean": True,
        "bytes": b"",
        "null": None,
    }[avro_type]
