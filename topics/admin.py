"""Create and check the catalogue's topics on a broker (confluent_kafka AdminClient).

``ensure_topics`` is idempotent and never changes an existing topic's partitions or cleanup
policy: it reports a mismatch instead, because changing partitions would move homes to other
partitions and changing the cleanup policy of a live topic loses data. Fix a mismatch
deliberately (docs/topics.md). The one thing it does set on existing compacted topics is
their compaction tuning (segment size, cleaning ratio), which only changes when Kafka cleans.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from topics.catalogue import TopicSpec

log = logging.getLogger("homestream.topics")

Progress = Callable[[str, str], None]


@dataclass(frozen=True)
class TopicRow:
    """How one catalogue topic looks on the broker."""

    name: str
    exists: bool
    partitions: int | None  # actual, None when missing
    expected_partitions: int
    cleanup_policy: str | None
    retention_ms: int | None
    ok: bool
    problems: tuple[str, ...]


def _admin(bootstrap: str) -> Any:
    from confluent_kafka.admin import AdminClient

    return AdminClient({"bootstrap.servers": bootstrap})


def compare(
    spec: TopicSpec, expected_partitions: int, actual_partitions: int, config: Mapping[str, str]
) -> list[str]:
    """Differences between a spec and a topic's actual partition count and configs."""
    problems = []
    if actual_partitions != expected_partitions:
        problems.append(f"partitions {actual_partitions}, expected {expected_partitions}")
    policy = config.get("cleanup.policy")
    if policy != spec.cleanup_policy:
        problems.append(f"cleanup.policy {policy}, expected {spec.cleanup_policy}")
    if spec.retention_ms is not None and config.get("retention.ms") != str(spec.retention_ms):
        problems.append(f"retention.ms {config.get('retention.ms')}, expected {spec.retention_ms}")
    return problems


def _configs(admin: Any, names: list[str], timeout: float) -> dict[str, dict[str, str]]:
    from confluent_kafka.admin import ConfigResource

    if not names:
        return {}
    resources = [ConfigResource(ConfigResource.Type.TOPIC, name) for name in names]
    out = {}
    for res, fut in admin.describe_configs(resources, request_timeout=timeout).items():
        entries = fut.result(timeout=timeout)
        out[res.name] = {key: entry.value for key, entry in entries.items()}
    return out


def _rows(
    admin: Any, specs: list[TopicSpec], partitions: int | None, timeout: float
) -> list[TopicRow]:
    topics = admin.list_topics(timeout=timeout).topics
    present = [s.name for s in specs if s.name in topics]
    configs = _configs(admin, present, timeout)
    rows = []
    for spec in specs:
        expected = partitions or spec.partitions
        if spec.name not in topics:
            rows.append(TopicRow(spec.name, False, None, expected, None, None, False, ("missing",)))
            continue
        actual = len(topics[spec.name].partitions)
        config = configs.get(spec.name, {})
        problems = tuple(compare(spec, expected, actual, config))
        retention = config.get("retention.ms")
        rows.append(
            TopicRow(
                name=spec.name,
                exists=True,
                partitions=actual,
                expected_partitions=expected,
                cleanup_policy=config.get("cleanup.policy"),
                retention_ms=int(retention)
                if retention and retention.lstrip("-").isdigit()
                else None,
                ok=not problems,
                problems=problems,
            )
        )
    return rows


def describe_topics(
    bootstrap: str,
    specs: Iterable[TopicSpec],
    partitions: int | None = None,
    *,
    timeout: float = 30.0,
    admin: Any = None,
) -> list[TopicRow]:
    """One row per spec: exists, actual vs expected partitions and configs, ok, problems."""
    return _rows(admin or _admin(bootstrap), list(specs), partitions, timeout)


def ensure_topics(
    bootstrap: str,
    specs: Iterable[TopicSpec],
    partitions: int | None = None,
    progress: Progress | None = None,
    *,
    replication_factor: int = 1,
    min_insync_replicas: int = 1,
    timeout: float = 30.0,
    admin: Any = None,
) -> list[tuple[str, str]]:
    """Create missing topics; ``(name, "created" | "exists" | "mismatch: ...")`` per spec.

    ``partitions`` overrides every spec's partition count (HOMESTREAM_PARTITIONS).
    ``progress(name, outcome)`` is called as each outcome is known.
    """
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import NewTopic

    admin = admin or _admin(bootstrap)
    specs = list(specs)
    existing = admin.list_topics(timeout=timeout).topics
    missing = [s for s in specs if s.name not in existing]
    outcomes: dict[str, str] = {}
    if missing:
        new = [
            NewTopic(
                s.name,
                num_partitions=partitions or s.partitions,
                replication_factor=replication_factor,
                config={**s.topic_config(), "min.insync.replicas": str(min_insync_replicas)},
            )
            for s in missing
        ]
        futures = admin.create_topics(new, request_timeout=timeout, operation_timeout=timeout)
        for spec in missing:
            try:
                futures[spec.name].result(timeout=timeout)
                outcomes[spec.name] = "created"
            except KafkaException as exc:
                err = exc.args[0] if exc.args else None
                # Someone else created it meanwhile: check it like any existing topic.
                if getattr(err, "code", lambda: None)() != KafkaError.TOPIC_ALREADY_EXISTS:
                    outcomes[spec.name] = f"error: {err}"
            if spec.name in outcomes and progress:
                progress(spec.name, outcomes[spec.name])
    to_check = [s for s in specs if s.name not in outcomes]
    _apply_compaction_tuning(admin, [s for s in to_check if s.cleanup_policy == "compact"])
    rows = _rows(admin, to_check, partitions, timeout) if to_check else []
    # Created by someone else just now: on a cluster, the broker we ask may not know it yet.
    for _ in range(20):
        if not any(r.problems == ("missing",) for r in rows):
            break
        time.sleep(0.5)
        rows = _rows(admin, to_check, partitions, timeout)
    for row in rows:
        outcome = "exists" if row.ok else "mismatch: " + "; ".join(row.problems)
        outcomes[row.name] = outcome
        if progress:
            progress(row.name, outcome)
    return [(s.name, outcomes[s.name]) for s in specs]


def _apply_compaction_tuning(admin: Any, specs: list[TopicSpec]) -> None:
    """Topics created before COMPACTION_TUNING get it now (an idempotent SET). Best effort:
    a broker refusing it leaves the topic working, only slower to compact."""
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource

    from topics.catalogue import COMPACTION_TUNING

    if not specs:
        return
    resources = [
        ConfigResource(
            ConfigResource.Type.TOPIC,
            spec.name,
            incremental_configs=[
                ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET)
                for k, v in COMPACTION_TUNING.items()
            ],
        )
        for spec in specs
    ]
    for res, fut in admin.incremental_alter_configs(resources).items():
        try:
            fut.result(timeout=30)
        except Exception as exc:
            log.warning("could not tune compaction of %s: %s", res.name, exc)


def group_members(bootstrap: str, group: str) -> int:
    """Members of a consumer group right now (0 if it has none or Kafka does not answer)."""
    from confluent_kafka.admin import AdminClient

    try:
        admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
        result = admin.describe_consumer_groups([group], request_timeout=5)[group].result(timeout=5)
        return len(result.members)
    except Exception:  # KafkaException or a timeout: not healthy (yet)
        return 0


def known_groups(bootstrap: str) -> list[str]:
    """The consumer groups the broker knows ([] if it does not answer)."""
    try:
        result = _admin(bootstrap).list_consumer_groups(request_timeout=5).result(timeout=5)
        return [g.group_id for g in result.valid]
    except Exception:  # KafkaException or a timeout: nothing to suggest
        return []
