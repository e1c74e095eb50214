"""The MQTT <-> Kafka bridge: hubs' messages become Avro events, and back.

Inbound (hub -> cloud): one MQTT 5 shared subscription (``$share/homestream-bridge/hub/#``)
so any number of bridge processes split the hubs' traffic. Each message is parsed by
``hub.wire`` into its event (or a dead letter with the reason and the original bytes)
and produced to Kafka; the PUBACK goes back to Mosquitto only from Kafka's delivery
report (paho ``manual_ack``). A bridge killed at any moment therefore loses nothing:
the broker redelivers every message whose produce was not acknowledged, on the bridge's
persistent session. The price is at-least-once: a message produced but not yet PUBACKed
when the bridge died is produced again (duplicate reports are no-ops in the shadows).

Outbound (cloud -> hub): a Kafka consumer group over dispatched commands, pairing
permits and shadow replies publishes each to its hub topic with QoS 1; its offset is
stored only once Mosquitto acknowledged the publish, so a crash re-publishes rather
than drops.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import time
from collections import Counter, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer

from hub import wire
from hub.mqtt5 import Message, Mqtt5Client, MqttError, ServerLimitError
from runtime import kafka
from runtime.cli import command_line
from runtime.config import Settings
from runtime.metrics import ServiceMetrics
from runtime.secrets import BRIDGE_MQTT_USER, load_secrets
from runtime.service import stop_on_signals
from topics import catalogue as t
from topics import trace
from topics.codec import make_codec
from topics.errors import CodecError
from topics.schemas import SchemaStore

log = logging.getLogger("homestream.bridge")

SHARE_GROUP = "homestream-bridge"
OUT_GROUP = "homestream-bridge-out"
OUTBOUND_TOPICS = (t.COMMANDS_DISPATCHED, t.HUB_PAIRING, t.SHADOW_RESPONSES, t.HOME_CONFIG)
# How long the broker keeps a dead bridge's session and queues its share of the hubs'
# messages for it: long enough for a restart (the launcher restarts bridge-N as bridge-N),
# short enough that a bridge that is gone for good does not swallow its share for long.
# Mosquitto counts an offline session as a member of the shared group (docs/hub.md).
SESSION_EXPIRY_S = 300


@dataclass
class BridgeConfig:
    name: str = "bridge-1"
    # MQTT 5 receive-maximum: QoS 1 messages the broker may have in flight to us, i.e.
    # produced-but-not-yet-acked. Bounds memory and what a crash re-delivers.
    receive_maximum: int = 2000
    max_payload: int = wire.MAX_PAYLOAD_BYTES
    linger_ms: int = 5


class Bridge:
    """One bridge process. Single-threaded: the MQTT connection (``hub.mqtt5``), the Kafka
    producer's delivery reports and the outbound consumer all run in ``run()``'s loop."""

    def __init__(
        self, settings: Settings, config: BridgeConfig | None = None, *, metrics_port=None
    ):
        self.settings = settings
        self.config = config or BridgeConfig()
        self.metrics_port = metrics_port
        self.codec = make_codec(SchemaStore(), settings.schema_registry_url)
        self.counters: Counter[str] = Counter()
        self.metrics = ServiceMetrics(
            {"bridge": self.config.name},
            "homestream_bridge_ready",
            "1 while the bridge is subscribed to the hubs' topics on Mosquitto.",
            ready=lambda: self.counters["mqtt_subscribed"] == 1,
        )
        self.metrics.outcomes(
            "homestream_bridge_messages_total",
            "MQTT and Kafka messages through the bridge, by outcome.",
            self.counters,
        )
        # Each hub's last status through this bridge (its LWT says offline): exact with one
        # bridge; with several, a hub's messages may come through any of them, and the
        # hub_offline outcome counts disconnections whichever bridge saw them.
        self.hubs: dict[str, bool] = {}
        self.metrics.gauge(
            "homestream_hubs_connected",
            "Hubs whose last status message through this bridge said online.",
            lambda: sum(self.hubs.values()),
        )
        self.ack_seconds = self.metrics.fast_histogram(
            "homestream_bridge_ack_seconds",
            "An inbound MQTT message's arrival to Kafka's acknowledgement of its event "
            "(then the PUBACK goes to Mosquitto).",
        )
        self.running = True
        self.fatal: str | None = None
        self._secrets = load_secrets(settings)
        self.producer = kafka.producer(
            settings,
            {"linger.ms": self.config.linger_ms, "queue.buffering.max.messages": 200_000},
        )
        self.mqtt = Mqtt5Client(
            settings.host,
            settings.ports.mqtt,
            f"homestream-{self.config.name}",
            username=BRIDGE_MQTT_USER,
            password=self._secrets.bridge_mqtt_password,
            keepalive=30,
            clean_start=False,  # resume the session: unacked messages are redelivered
            session_expiry=SESSION_EXPIRY_S,
            receive_maximum=self.config.receive_maximum,
            on_message=self._on_message,
            on_puback=self._on_puback,
        )
        # A connection's number: a delivery report acks only on the connection its message
        # came in on; after a reconnect the broker redelivers it, and we produce it again.
        self._generation = 0
        self._next_connect = 0.0
        self._backoff = 0.5
        # Outbound publishes waiting for their PUBACK: packet id -> (Kafka message, publish).
        self._out_pending: dict[int, tuple[Any, wire.Outbound]] = {}
        self._to_store: deque[Any] = deque()  # acked Kafka records, offsets to store

    # -- MQTT ------------------------------------------------------------------------
    def _ensure_connected(self) -> None:
        if self.mqtt.connected or time.monotonic() < self._next_connect:
            return
        try:
            resumed = self.mqtt.connect()
        except (OSError, MqttError) as exc:
            # Back within 1-2 s after a broker restart: Mosquitto 2.0 does not restore
            # shared subscriptions, so hubs' reports have no subscriber until we re-subscribe.
            self._next_connect = time.monotonic() + self._backoff
            self._backoff = min(self._backoff * 2, 2.0)
            log.warning("mqtt connect failed; retrying", extra={"error": str(exc)})
            return
        self._backoff = 0.5
        self._generation += 1
        self.mqtt.subscribe([(f"$share/{SHARE_GROUP}/{f}", 1) for f in wire.inbound_filters()])
        self.counters["mqtt_connects"] += 1
        # Outbound publishes that were not acked on the old connection go out again, in order.
        pending, self._out_pending = self._out_pending, {}
        for kafka_msg, out in pending.values():
            self._publish_record(kafka_msg, out)
        log.info("mqtt connected", extra={"bridge": self.config.name, "session_resumed": resumed})

    def _on_message(self, msg: Message) -> None:
        arrived = time.perf_counter()
        now = int(time.time() * 1000)
        self.counters["mqtt_in"] += 1
        try:
            result = wire.parse(
                msg.topic,
                msg.payload,
                received_at=now,
                retained=msg.retain,
                max_bytes=self.config.max_payload,
            )
        except Exception as exc:  # a parser bug must not lose the message
            log.exception("parser failed", extra={"topic": msg.topic})
            result = wire.Rejected("PROCESSING_ERROR", f"parser failed: {exc}", "", None)
        if isinstance(result, wire.Ignored):
            self.counters["ignored"] += 1
            if msg.qos:
                self.mqtt.ack(msg.packet_id)
            return
        if isinstance(result, wire.Rejected):
            self.counters[f"dead_letter_{result.reason.lower()}"] += 1
            record = wire.dead_letter(result, msg.topic, msg.payload, received_at=now)
            self._produce(t.DEADLETTER, "DeadLetter", record, msg, arrived)
            if result.reply is not None:
                self._publish(result.reply)
            return
        record = {"event_id": _uuid(), "home_id": result.home_id, **result.fields}
        if result.record_name == "HubStatus":
            self.counters["hub_online" if record.get("online") else "hub_offline"] += 1
            self.hubs[result.home_id] = bool(record.get("online"))
        self._produce(result.kafka_topic, result.record_name, record, msg, arrived)

    def _produce(
        self, topic: str, name: str, record: dict[str, Any], msg: Message, arrived: float
    ) -> None:
        try:
            value = self.codec.encode(name, record, trusted=True)
        except CodecError as exc:  # our parser let through what Avro refuses: dead-letter
            log.error("encode failed", extra={"record": name, "error": str(exc)})
            bad = wire.Rejected("SCHEMA_VIOLATION", str(exc), record.get("home_id", ""), None)
            record = wire.dead_letter(bad, msg.topic, msg.payload, received_at=record["ts"])
            topic, value = t.DEADLETTER, self.codec.encode("DeadLetter", record)
        home = record["home_id"]
        pid, generation = msg.packet_id, self._generation
        cid = trace.correlation_of(record)
        if cid:
            log.info(
                "hub %s",
                name,
                extra={"correlation_id": cid, "home_id": home, "bridge": self.config.name},
            )

        def delivered(err, _m) -> None:
            if err is not None:
                # The idempotent producer retried until delivery.timeout.ms: fatal. Not
                # acking makes the broker redeliver to the restarted bridge.
                self.fatal = f"kafka delivery failed: {err}"
                self.running = False
                return
            self.counters["produced"] += 1
            self.ack_seconds.observe(time.perf_counter() - arrived)
            if pid and generation == self._generation and self.mqtt.connected:
                self.mqtt.ack(pid)

        while True:
            try:
                kafka.produce_to_home(
                    self.producer,
                    self.settings,
                    topic,
                    home,
                    value,
                    on_delivery=delivered,
                    headers=trace.headers(cid, self.config.name),
                )
                return
            except BufferError:  # local queue full: wait for deliveries (backpressure)
                self.producer.poll(0.05)

    # -- outbound ----------------------------------------------------------------------
    def _publish(self, out: wire.Outbound) -> int | None:
        """The publish's packet id (0 for QoS 0), or None when the broker's CONNACK said
        it would not take it (too large, ...): like a refusing PUBACK, it never will."""
        try:
            return self.mqtt.publish(out.mqtt_topic, out.payload, qos=out.qos, retain=out.retain)
        except ServerLimitError as exc:
            self.counters["out_refused"] += 1
            log.error(
                "publish refused by the broker's limits",
                extra={"reason_code": exc.reason_code, "error": str(exc)},
            )
            return None

    def _publish_record(self, kafka_msg: Any, out: wire.Outbound) -> None:
        pid = self._publish(out)
        if pid is None:
            self._to_store.append(kafka_msg)
            return
        self.counters["mqtt_out"] += 1
        cid = trace.header(kafka_msg.headers(), trace.CORRELATION)
        if cid:
            log.info(
                "command to hub",
                extra={
                    "correlation_id": cid,
                    "mqtt_topic": out.mqtt_topic,
                    "bridge": self.config.name,
                },
            )
        if pid:
            self._out_pending[pid] = (kafka_msg, out)
        else:
            self._to_store.append(kafka_msg)

    def _on_puback(self, pid: int, reason: int) -> None:
        entry = self._out_pending.pop(pid, None)
        if entry is None:
            return
        kafka_msg = entry[0]
        if reason >= 0x80:  # e.g. not authorised: it will never go through; say so
            self.counters["out_refused"] += 1
            log.error("publish refused by the broker", extra={"reason_code": reason})
        self._to_store.append(kafka_msg)

    def _store_acked(self, consumer: Consumer) -> None:
        """Store the offsets of records whose publish Mosquitto acked."""
        while self._to_store:
            kafka_msg = self._to_store.popleft()
            try:
                consumer.store_offsets(message=kafka_msg)
            except Exception:  # partition revoked meanwhile: it is re-published, at-least-once
                self.counters["out_store_failed"] += 1

    def _outbound_once(self, consumer: Consumer) -> None:
        # Outbound is bounded by what Mosquitto acks: stop reading while many are in flight.
        if not self.mqtt.connected or len(self._out_pending) > 1000:
            return
        for m in consumer.consume(500, timeout=0):
            if kafka.consume_error(m):
                continue
            try:
                decoded = self.codec.decode(m.value() or b"", topic=m.topic())
                out = wire.encode_outbound(decoded.name, decoded.record)
            except (CodecError, ValueError, KeyError) as exc:
                # Not ours to publish (e.g. a ShadowDelta variant we do not know): skip it,
                # with a counter and a log line; the stream worker dead-letters bad inputs.
                self.counters["out_skipped"] += 1
                log.warning(
                    "outbound record skipped", extra={"topic": m.topic(), "error": str(exc)}
                )
                self._to_store.append(m)
                continue
            self._publish_record(m, out)

    # -- life cycle --------------------------------------------------------------------
    def run(self) -> int:
        stop_on_signals(self.stop)
        if self.metrics_port:
            self.metrics.serve(self.settings.host, self.metrics_port)
        consumer = kafka.consumer(
            self.settings,
            OUT_GROUP,
            {
                "enable.auto.commit": True,
                "enable.auto.offset.store": False,  # stored on PUBACK (``_on_puback``)
                "auto.offset.reset": "latest",
            },
        )

        def assigned(c, parts) -> None:
            # A partition without a committed offset starts at its end ("latest"), which
            # librdkafka would look up only at the first fetch: pinned here instead, so a
            # record produced once the bridge is ready is never taken for an old one.
            committed = {(p.topic, p.partition): p.offset for p in c.committed(parts, 10)}
            for p in parts:
                if committed.get((p.topic, p.partition), -1) < 0:
                    p.offset = c.get_watermark_offsets(p, timeout=10)[1]
            c.assign(parts)  # with these offsets (an assign in the callback replaces its own)
            self.counters["out_partitions"] = len(parts)

        consumer.subscribe(list(OUTBOUND_TOPICS), on_assign=assigned)
        log.info("bridge started", extra={"bridge": self.config.name})
        last_report = time.monotonic()
        try:
            while self.running:
                self._ensure_connected()
                if self.mqtt.connected:
                    try:
                        # Short waits: delivery reports (and so PUBACKs) are served below.
                        self.mqtt.pump(0.005)
                    except MqttError as exc:
                        self._disconnected(str(exc))
                else:
                    time.sleep(0.05)
                self.producer.poll(0)
                self._outbound_once(consumer)
                self._store_acked(consumer)
                self.counters["mqtt_subscribed"] = int(self.mqtt.subscribed)
                if time.monotonic() - last_report > 30:
                    last_report = time.monotonic()
                    log.info("bridge counters", extra=dict(self.counters))
        finally:
            self._shutdown(consumer)
        if self.fatal:
            log.error("bridge stopped", extra={"reason": self.fatal})
            return 1
        return 0

    def stop(self) -> None:
        self.running = False

    def _disconnected(self, why: str) -> None:
        self.counters["mqtt_subscribed"] = 0
        log.warning("mqtt disconnected; reconnecting", extra={"reason": why})
        self._next_connect = time.monotonic() + 0.2

    def _shutdown(self, consumer: Consumer) -> None:
        # Let in-flight produces finish so their PUBACKs go out; anything left unacked is
        # redelivered to the next bridge on this session.
        deadline = time.monotonic() + 10
        while len(self.producer) and time.monotonic() < deadline:
            self.producer.poll(0.05)
            if self.mqtt.connected:
                with contextlib.suppress(MqttError):
                    self.mqtt.pump(0)
        if self.mqtt.connected:
            with contextlib.suppress(MqttError):
                self.mqtt.pump(0.2)  # PUBACKs out, the last outbound acks in
        self._store_acked(consumer)
        self.mqtt.close()
        with contextlib.suppress(Exception):  # nothing stored since the last auto-commit
            consumer.commit(asynchronous=False)
        consumer.close()
        log.info("bridge stopped", extra=dict(self.counters))


def forget_session(settings: Settings, name: str) -> None:
    """Remove bridge ``name``'s persistent MQTT session: for a bridge that will not come
    back. Mosquitto counts an offline session as a member of the shared subscription and
    keeps queueing its share of messages for it."""
    client = Mqtt5Client(
        settings.host,
        settings.ports.mqtt,
        f"homestream-{name}",
        username=BRIDGE_MQTT_USER,
        password=load_secrets(settings).bridge_mqtt_password,
        clean_start=True,  # drops the old session ...
        session_expiry=0,  # ... and this one ends with the connection
        on_message=lambda _m: None,
    )
    client.connect()
    client.close()


def _uuid() -> str:
    """A random (version 4) UUID string, ~5x cheaper than str(uuid.uuid4()): event ids
    need uniqueness, not secrecy, and this is per message on the bridge's hot path."""
    n = (random.getrandbits(128) & ~(0xF000 << 64) | (0x4000 << 64)) & ~(0xC << 60) | (0x8 << 60)
    h = f"{n:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def run_bridge(
    settings: Settings,
    *,
    name: str,
    metrics_port: int | None,
    loglevel: str,
    data_dir: Path | None = None,
) -> int:
    from runtime.logs import setup

    setup(loglevel, settings.log_format)
    bridge = Bridge(settings, BridgeConfig(name=name), metrics_port=metrics_port)
    code = bridge.run()
    if data_dir is not None:  # the last counters, for `homestream status` and post-mortems
        data_dir.mkdir(parents=True, exist_ok=True)
        (data_dir / "counters.json").write_text(json.dumps(dict(bridge.counters), indent=1))
    return code


def bridge_argv(name: str, data_dir: Path, metrics_port: int | None = None) -> list[str]:
    """The command line of one bridge process (the launcher's and the tests')."""
    return command_line("bridge", name=name, data_dir=data_dir, metrics_port=metrics_port or None)
