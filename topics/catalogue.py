"""The topic catalogue: every Kafka topic, its key, partitioning, retention and record types.

Topics are created from this (``topics.admin.ensure_topics``) and documented in
docs/topics.md. Two key shapes exist: ``home_id`` for streams, and ``home_id/device_id`` for
compacted per-device state. Either way the partition comes from the home part
(``topics.partitioning``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from topics.keys import device_key, home_key

CleanupPolicy = Literal["delete", "compact"]
KeyShape = Literal["home_id", "home_id/device_id"]

DAY_MS = 24 * 60 * 60 * 1000
DEFAULT_PARTITIONS = 6
RAW_RETENTION_MS = 7 * DAY_MS
HISTORY_RETENTION_MS = 30 * DAY_MS


@dataclass(frozen=True)
class TopicSpec:
    """One topic. ``retention_ms`` is None for compacted topics (kept forever per key)."""

    name: str
    key: KeyShape
    partitions: int
    cleanup_policy: CleanupPolicy
    retention_ms: int | None
    value_schemas: tuple[str, ...]
    doc: str

    def __post_init__(self) -> None:
        if self.partitions < 1:
            raise ValueError(f"{self.name}: partitions must be >= 1")
        if (self.cleanup_policy == "compact") != (self.retention_ms is None):
            raise ValueError(f"{self.name}: retention_ms is None exactly for compacted topics")

    @property
    def compacted(self) -> bool:
        return self.cleanup_policy == "compact"

    def make_key(self, home_id: str, device_id: str | None = None) -> str:
        """The record key for this topic's key shape."""
        if self.key == "home_id/device_id":
            if device_id is None:
                raise ValueError(f"{self.name} is keyed home_id/device_id: device_id is required")
            return device_key(home_id, device_id)
        return home_key(home_id)

    def topic_config(self) -> dict[str, str]:
        """Broker topic configs this spec implies."""
        config: dict[str, str] = {"cleanup.policy": self.cleanup_policy}
        if self.retention_ms is not None:
            config["retention.ms"] = str(self.retention_ms)
        if self.cleanup_policy == "compact":
            config.update(COMPACTION_TUNING)
        return config


# Kafka never compacts the active segment, and by default a segment rolls after 1 GB or
# 7 days: a busy compacted topic (the worker's changelog) would keep every record ever
# written, and restoring from it takes minutes. Smaller segments get cleaned within the hour.
COMPACTION_TUNING: dict[str, str] = {
    "segment.ms": str(3_600_000),
    "segment.bytes": str(64 * 1024 * 1024),
    "min.cleanable.dirty.ratio": "0.2",
}


def _stream(name: str, schemas: tuple[str, ...], retention_ms: int, doc: str) -> TopicSpec:
    return TopicSpec(name, "home_id", DEFAULT_PARTITIONS, "delete", retention_ms, schemas, doc)


def _table(name: str, key: KeyShape, schemas: tuple[str, ...], doc: str) -> TopicSpec:
    return TopicSpec(name, key, DEFAULT_PARTITIONS, "compact", None, schemas, doc)


DEVICE_REPORTS = "homestream.device.reports"
DEVICE_EVENTS = "homestream.device.events"
DEVICE_DISCOVERY = "homestream.device.discovery"
DEVICE_REGISTRY = "homestream.device.registry"
DEVICE_AVAILABILITY = "homestream.device.availability"
HUB_STATUS = "homestream.hub.status"
HUB_PAIRING = "homestream.hub.pairing"
STATE_CHANGES = "homestream.state.changes"
SHADOW_DOCUMENTS = "homestream.shadow.documents"
SHADOW_REQUESTS = "homestream.shadow.requests"
SHADOW_RESPONSES = "homestream.shadow.responses"
COMMANDS_REQUESTED = "homestream.commands.requested"
COMMANDS_DISPATCHED = "homestream.commands.dispatched"
COMMANDS_ACKS = "homestream.commands.acks"
COMMANDS_STATUS = "homestream.commands.status"
SCENES_RUNS = "homestream.scenes.runs"
AUTOMATIONS_RUNS = "homestream.automations.runs"
NOTIFICATIONS = "homestream.notifications"
VOICE_UTTERANCES = "homestream.voice.utterances"
DEADLETTER = "homestream.deadletter"
STREAM_TICKS = "homestream.streams.ticks"
HOME_CONFIG = "homestream.homes.config"

_SPECS = (
    _stream(
        DEVICE_REPORTS,
        ("DeviceReport",),
        RAW_RETENTION_MS,
        "Hub state reports (hub/{home}/state/{device}), raw input of the shadow service.",
    ),
    _stream(
        DEVICE_EVENTS,
        ("DeviceEvent",),
        RAW_RETENTION_MS,
        "Momentary device events (hub/{home}/event/{device}), e.g. person_detected.",
    ),
    _stream(
        DEVICE_DISCOVERY,
        ("DeviceDiscovered", "DeviceRemoved"),
        RAW_RETENTION_MS,
        "Hub discovery announcements (hub/{home}/discovery/{device}); an empty payload "
        "becomes DeviceRemoved.",
    ),
    _table(
        DEVICE_REGISTRY,
        "home_id/device_id",
        ("DeviceRegistered", "DeviceRemoved"),
        "The device registry: latest entry per device; DeviceRemoved, then a tombstone, "
        "when a device leaves.",
    ),
    _table(
        DEVICE_AVAILABILITY,
        "home_id/device_id",
        ("Availability",),
        "Latest online/offline per device (hub/{home}/availability/{device}).",
    ),
    _table(
        HUB_STATUS,
        "home_id",
        ("HubStatus",),
        "Latest online/offline per hub (hub/{home}/status, the hub's last will).",
    ),
    _stream(
        HUB_PAIRING,
        ("PairingRequest",),
        RAW_RETENTION_MS,
        "Pairing permits for hubs, published on hub/{home}/pairing.",
    ),
    _stream(
        STATE_CHANGES,
        ("StateChange",),
        HISTORY_RETENTION_MS,
        "Accepted shadow changes, one per new version: history, WebSocket pushes, automations.",
    ),
    _table(
        SHADOW_DOCUMENTS,
        "home_id/device_id",
        ("ShadowDocument",),
        "Latest full shadow document per device; shadows are rebuilt from it.",
    ),
    _stream(
        SHADOW_REQUESTS,
        ("ShadowUpdateRequest",),
        RAW_RETENTION_MS,
        "Shadow update/get/delete requests from hubs (MQTT shadow API) and the gateway.",
    ),
    _stream(
        SHADOW_RESPONSES,
        ("ShadowResponse", "ShadowDelta"),
        RAW_RETENTION_MS,
        "Shadow replies (accepted/rejected/documents) and deltas, published back to hubs.",
    ),
    _stream(
        COMMANDS_REQUESTED,
        ("CommandRequested", "SceneRequested"),
        RAW_RETENTION_MS,
        "Commands as requested by apps, groups, scenes, automations and voice, and scene "
        "runs asked for; the stream worker expands group commands and runs scenes.",
    ),
    _stream(
        COMMANDS_DISPATCHED,
        ("CommandDispatched",),
        RAW_RETENTION_MS,
        "Validated commands for the MQTT bridge (hub/{home}/command/{device}).",
    ),
    _stream(
        COMMANDS_ACKS,
        ("HubAck",),
        RAW_RETENTION_MS,
        "Hub command acknowledgements (hub/{home}/ack/{device}).",
    ),
    _stream(
        COMMANDS_STATUS,
        ("CommandStatus",),
        HISTORY_RETENTION_MS,
        "Command status steps (PENDING ... COMPLETED/FAILED/TIMEOUT).",
    ),
    _table(
        HOME_CONFIG,
        "home_id/device_id",
        ("HomeConfig",),
        "Each home's automations, scenes, groups and settings as the gateway stored them, "
        "latest per document (key home_id/kind:doc_id); the stream workers run them.",
    ),
    _stream(
        SCENES_RUNS,
        ("SceneRun",),
        HISTORY_RETENTION_MS,
        "Scene runs (the stream worker runs them): started and finished, with action counts.",
    ),
    _stream(
        AUTOMATIONS_RUNS,
        ("AutomationFired",),
        HISTORY_RETENTION_MS,
        "Automation runs: trigger, conditions outcome, action trace.",
    ),
    _stream(
        NOTIFICATIONS,
        ("Notification",),
        HISTORY_RETENTION_MS,
        "Alerts for users: security, device offline, low battery, automation notify.",
    ),
    _stream(
        VOICE_UTTERANCES,
        ("VoiceUtterance",),
        RAW_RETENTION_MS,
        "Voice requests and how they were understood.",
    ),
    _stream(
        DEADLETTER,
        ("DeadLetter",),
        HISTORY_RETENTION_MS,
        "Messages that could not be processed, with the reason; inspected and re-driven by "
        "homestream dlq.",
    ),
    _stream(
        STREAM_TICKS,
        ("StreamTick",),
        DAY_MS,
        "Internal: time passing for the stream workers, one tick per partition and interval "
        "(command timeouts, silent devices), so time is decided in order with the events.",
    ),
)

CATALOGUE: dict[str, TopicSpec] = {spec.name: spec for spec in _SPECS}


def catalogue(partitions: int | None = None) -> tuple[TopicSpec, ...]:
    """Every topic, with ``partitions`` instead of the default when given."""
    if partitions is None:
        return _SPECS
    return tuple(replace(spec, partitions=partitions) for spec in _SPECS)


def topic(name: str) -> TopicSpec:
    try:
        return CATALOGUE[name]
    except KeyError:
        raise KeyError(f"no topic {name!r} in the catalogue") from None


def topics_for_record(record_name: str) -> tuple[TopicSpec, ...]:
    """Topics whose values may be ``record_name`` events."""
    return tuple(spec for spec in _SPECS if record_name in spec.value_schemas)


def record_names() -> frozenset[str]:
    """Every record type some topic carries."""
    return frozenset(name for spec in _SPECS for name in spec.value_schemas)
