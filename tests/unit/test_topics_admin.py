"""topics.admin against an in-memory stand-in for confluent_kafka's AdminClient.

The real broker is exercised by the integration tests (tests/integration).
"""

from __future__ import annotations

from concurrent.futures import Future
from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from topics.admin import TopicRow, compare, describe_topics, ensure_topics
from topics.catalogue import CATALOGUE, COMPACTION_TUNING, DAY_MS, catalogue

SPECS = list(CATALOGUE.values())


def _done(value: Any = None, error: BaseException | None = None) -> Future:
    fut: Future = Future()
    if error:
        fut.set_exception(error)
    else:
        fut.set_result(value)
    return fut


class FakeAdmin:
    """Topics as {name: (partitions, config)}; records what was created."""

    def __init__(self, topics: dict[str, tuple[int, dict[str, str]]] | None = None) -> None:
        self.topics = dict(topics or {})
        self.created: list[Any] = []
        self.race: set[str] = set()  # created by "someone else" between list and create

    def list_topics(self, timeout: float) -> Any:
        return SimpleNamespace(
            topics={
                name: SimpleNamespace(partitions=dict.fromkeys(range(n)))
                for name, (n, _cfg) in self.topics.items()
            }
        )

    def create_topics(self, new: list[Any], **kwargs: Any) -> dict[str, Future]:
        out = {}
        for t in new:
            self.created.append(t)
            if t.topic in self.race:
                err = KafkaException(KafkaError(KafkaError.TOPIC_ALREADY_EXISTS))
                out[t.topic] = _done(error=err)
                continue
            self.topics[t.topic] = (t.num_partitions, dict(t.config))
            out[t.topic] = _done()
        return out

    def incremental_alter_configs(self, resources: list[Any], **kwargs: Any) -> dict[Any, Future]:
        for res in resources:
            n, cfg = self.topics[res.name]
            cfg = {**cfg, **{e.name: e.value for e in res.incremental_configs}}
            self.topics[res.name] = (n, cfg)
        return {res: _done() for res in resources}

    def describe_configs(self, resources: list[Any], **kwargs: Any) -> dict[Any, Future]:
        return {
            res: _done(
                {
                    k: SimpleNamespace(value=v)
                    for k, v in {"retention.ms": "604800000", **self.topics[res.name][1]}.items()
                }
            )
            for res in resources
        }


def test_creates_every_missing_topic_with_its_configs() -> None:
    admin = FakeAdmin()
    seen: list[tuple[str, str]] = []
    result = ensure_topics("unused", SPECS, admin=admin, progress=lambda n, o: seen.append((n, o)))
    assert result == [(s.name, "created") for s in SPECS]
    assert sorted(seen) == sorted(result)
    by_name = {t.topic: t for t in admin.created}
    reports = by_name["homestream.device.reports"]
    assert (reports.num_partitions, reports.replication_factor) == (6, 1)
    assert reports.config == {
        "cleanup.policy": "delete",
        "retention.ms": str(7 * DAY_MS),
        "min.insync.replicas": "1",
    }
    registry = by_name["homestream.device.registry"]
    assert registry.config == {
        "cleanup.policy": "compact",
        "min.insync.replicas": "1",
        **COMPACTION_TUNING,
    }


def test_compacted_topics_made_before_the_tuning_get_it() -> None:
    admin = FakeAdmin({"homestream.device.registry": (6, {"cleanup.policy": "compact"})})
    result = dict(ensure_topics("x", SPECS, admin=admin))
    assert result["homestream.device.registry"] == "exists"
    assert admin.topics["homestream.device.registry"][1] == {
        "cleanup.policy": "compact",
        **COMPACTION_TUNING,
    }
    assert int(COMPACTION_TUNING["segment.ms"]) <= 3_600_000  # cleaned within the hour


def test_is_idempotent_and_honours_the_partition_override() -> None:
    admin = FakeAdmin()
    assert {o for _, o in ensure_topics("x", SPECS, partitions=4, admin=admin)} == {"created"}
    assert {t.num_partitions for t in admin.created} == {4}
    again = ensure_topics("x", SPECS, partitions=4, admin=admin)
    assert again == [(s.name, "exists") for s in SPECS]
    assert len(admin.created) == len(SPECS)  # nothing created the second time


def test_reports_mismatches_without_changing_anything() -> None:
    admin = FakeAdmin()
    ensure_topics("x", SPECS, admin=admin)
    admin.topics["homestream.device.reports"] = (3, {"cleanup.policy": "compact"})
    admin.topics["homestream.state.changes"] = (
        6,
        {"cleanup.policy": "delete", "retention.ms": "1"},
    )
    result = dict(ensure_topics("x", SPECS, admin=admin))
    assert result["homestream.device.reports"] == (
        "mismatch: partitions 3, expected 6; cleanup.policy compact, expected delete"
    )
    assert result["homestream.state.changes"] == f"mismatch: retention.ms 1, expected {30 * DAY_MS}"
    assert admin.topics["homestream.device.reports"][0] == 3


def test_a_topic_created_concurrently_is_checked_not_failed() -> None:
    admin = FakeAdmin()
    # Someone else creates homestream.notifications between our list_topics and create_topics.
    admin.race = {"homestream.notifications"}
    listings = iter([SimpleNamespace(topics={})])
    real_list = admin.list_topics
    admin.list_topics = lambda timeout: next(listings, None) or real_list(timeout)  # type: ignore[method-assign]
    admin.topics["homestream.notifications"] = (6, {"cleanup.policy": "delete",
                                                    "retention.ms": str(30 * DAY_MS)})  # fmt: skip
    result = dict(ensure_topics("x", SPECS, admin=admin))
    assert result["homestream.notifications"] == "exists"
    assert result["homestream.device.reports"] == "created"


def test_creation_errors_are_reported() -> None:
    admin = FakeAdmin()

    def failing(new: list[Any], **kwargs: Any) -> dict[str, Future]:
        err = KafkaException(KafkaError(KafkaError.POLICY_VIOLATION, "no"))
        return {t.topic: _done(error=err) for t in new}

    admin.create_topics = failing  # type: ignore[method-assign]
    result = ensure_topics("x", SPECS[:1], admin=admin)
    assert result[0][1].startswith("error: ")


def test_describe_rows() -> None:
    admin = FakeAdmin()
    specs = catalogue(partitions=2)
    ensure_topics("x", specs[1:], partitions=2, admin=admin)
    rows = describe_topics("x", specs, partitions=2, admin=admin)
    assert [r.name for r in rows] == [s.name for s in specs]
    missing = rows[0]
    assert missing == TopicRow(specs[0].name, False, None, 2, None, None, False, ("missing",))
    state = next(r for r in rows if r.name == "homestream.state.changes")
    assert (state.exists, state.partitions, state.expected_partitions) == (True, 2, 2)
    assert (state.cleanup_policy, state.retention_ms, state.ok) == ("delete", 30 * DAY_MS, True)
    compacted = next(r for r in rows if r.name == "homestream.shadow.documents")
    assert compacted.ok and compacted.cleanup_policy == "compact"


@pytest.mark.parametrize(
    ("partitions", "config", "problems"),
    [
        (6, {"cleanup.policy": "delete", "retention.ms": str(7 * DAY_MS)}, []),
        (6, {"cleanup.policy": "compact,delete", "retention.ms": str(7 * DAY_MS)},
         ["cleanup.policy compact,delete, expected delete"]),
        (12, {"cleanup.policy": "delete", "retention.ms": str(7 * DAY_MS)},
         ["partitions 12, expected 6"]),
        (6, {"cleanup.policy": "delete"}, [f"retention.ms None, expected {7 * DAY_MS}"]),
    ],
)  # fmt: skip
def test_compare(partitions: int, config: dict[str, str], problems: list[str]) -> None:
    assert compare(CATALOGUE["homestream.device.reports"], 6, partitions, config) == problems
