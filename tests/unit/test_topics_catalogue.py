"""The topic catalogue: names, keys, retention, and that every event has a topic."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from topics import catalogue as cat
from topics.catalogue import CATALOGUE, DAY_MS, TopicSpec, catalogue, topic, topics_for_record
from topics.schemas import SchemaStore

SPECS = list(CATALOGUE.values())


def test_names_are_unique_and_namespaced() -> None:
    assert list(CATALOGUE) == [s.name for s in SPECS]
    assert len(set(CATALOGUE)) == len(SPECS) == 22
    assert all(name.startswith("homestream.") for name in CATALOGUE)
    assert "homestream.deadletter" in CATALOGUE


def test_every_schema_has_a_topic_and_every_topic_value_a_schema() -> None:
    store = SchemaStore()
    for name in store.names():
        assert topics_for_record(name), f"{name} has no topic"
    for spec in SPECS:
        assert spec.value_schemas
        assert all(v in store for v in spec.value_schemas), spec.name


@pytest.mark.parametrize(
    ("name", "key", "policy", "retention_days", "schemas"),
    [
        ("homestream.device.reports", "home_id", "delete", 7, ("DeviceReport",)),
        ("homestream.device.events", "home_id", "delete", 7, ("DeviceEvent",)),
        ("homestream.device.registry", "home_id/device_id", "compact", None,
         ("DeviceRegistered", "DeviceRemoved")),
        ("homestream.device.availability", "home_id/device_id", "compact", None, ("Availability",)),
        ("homestream.shadow.documents", "home_id/device_id", "compact", None, ("ShadowDocument",)),
        ("homestream.hub.status", "home_id", "compact", None, ("HubStatus",)),
        ("homestream.state.changes", "home_id", "delete", 30, ("StateChange",)),
        ("homestream.commands.requested", "home_id", "delete", 7,
         ("CommandRequested", "SceneRequested")),
        ("homestream.commands.status", "home_id", "delete", 30, ("CommandStatus",)),
        ("homestream.deadletter", "home_id", "delete", 30, ("DeadLetter",)),
    ],
)  # fmt: skip
def test_key_cleanup_and_retention(
    name: str, key: str, policy: str, retention_days: int | None, schemas: tuple[str, ...]
) -> None:
    spec = topic(name)
    assert (spec.key, spec.cleanup_policy, spec.value_schemas) == (key, policy, schemas)
    assert spec.retention_ms == (retention_days * DAY_MS if retention_days else None)


def test_compacted_topics_have_no_retention_and_streams_are_home_keyed() -> None:
    for spec in SPECS:
        assert spec.compacted == (spec.retention_ms is None)
        if not spec.compacted:
            assert spec.key == "home_id", spec.name
        assert spec.doc


def test_default_partitions_and_override() -> None:
    assert {s.partitions for s in catalogue()} == {6}
    overridden = catalogue(partitions=3)
    assert [s.name for s in overridden] == list(CATALOGUE)
    assert {s.partitions for s in overridden} == {3}
    assert CATALOGUE["homestream.device.reports"].partitions == 6  # the original is untouched


def test_make_key_follows_the_key_shape() -> None:
    assert topic(cat.DEVICE_REPORTS).make_key("h1", "d1") == "h1"
    assert topic(cat.DEVICE_REGISTRY).make_key("h1", "d1") == "h1/d1"
    with pytest.raises(ValueError, match="device_id is required"):
        topic(cat.SHADOW_DOCUMENTS).make_key("h1")


def test_topic_config() -> None:
    assert topic(cat.STATE_CHANGES).topic_config() == {
        "cleanup.policy": "delete",
        "retention.ms": str(30 * DAY_MS),
    }
    assert topic(cat.DEVICE_AVAILABILITY).topic_config() == {
        "cleanup.policy": "compact",
        **cat.COMPACTION_TUNING,
    }


def test_spec_is_frozen_and_validated() -> None:
    spec = SPECS[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.partitions = 1  # type: ignore[misc]
    with pytest.raises(ValueError, match="partitions"):
        dataclasses.replace(spec, partitions=0)
    with pytest.raises(ValueError, match="retention_ms is None exactly"):
        TopicSpec("x", "home_id", 1, "compact", 5, ("HubStatus",), "")
    with pytest.raises(ValueError, match="retention_ms is None exactly"):
        TopicSpec("x", "home_id", 1, "delete", None, ("HubStatus",), "")


def test_lookup_helpers() -> None:
    assert [s.name for s in topics_for_record("DeviceRemoved")] == [
        "homestream.device.discovery",
        "homestream.device.registry",
    ]
    assert topics_for_record("Nope") == ()
    with pytest.raises(KeyError, match="no topic"):
        topic("homestream.nope")


def test_docs_table_matches_the_catalogue() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "topics.md").read_text()
    rows = {}
    for line in doc.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 7 and cells[0].startswith("`homestream."):
            rows[cells[0].strip("`")] = cells
    assert set(rows) == set(CATALOGUE)
    for spec in SPECS:
        _name, key, partitions, policy, retention, schemas, _what = rows[spec.name]
        days = "—" if spec.retention_ms is None else f"{spec.retention_ms // DAY_MS} days"
        assert (key.strip("`"), int(partitions), policy, retention) == (
            spec.key,
            spec.partitions,
            spec.cleanup_policy,
            days,
        ), spec.name
        assert tuple(s.strip() for s in schemas.split(",")) == spec.value_schemas
