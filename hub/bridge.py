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
import signal
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from confluent_kafka import Consumer, KafkaError, Producer
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from homestream.config import Settings
from homestream.secrets import BRIDGE_MQTT_USER, load_secrets
from hub import wire
from topics import catalogue as t
from topics.codec import make_codec
from topics.errors import CodecError
from topics.partitioning import partition_for_key
from topics.schemas import SchemaStore

log = logging.getLogger("homestream.bridge")

SHARE_GROUP = "homestream-bridge"
OUT_GROUP = "homestream-bridge-out"
OUTBOUND_TOPICS = (t.COMMANDS_DISPATCHED, t.HUB_PAIRING, t.SHADOW_RESPONSES)
# How long the broker keeps a dead bridge's session (and queues its share of messages).
SESSION_EXPIRY_S = 24 * 3600


@dataclass
class BridgeConfig:
    name: str = "bridge-1"
    # MQTT 5 receive-maximum: QoS 1 messages the broker may have in flight to us, i.e.
    # produced-but-not-yet-acked. Bounds memory and what a crash re-delivers.
    receive_maximum: int = 2000
    max_payload: int = wire.MAX_PAYLOAD_BYTES
    linger_ms: int = 5


class Bridge:
    def __init__(
        self, settings: Settings, config: BridgeConfig | None = None, *, metrics_port=None
    ):
        self.settings = settings
        self.config = config or BridgeConfig()
        self.metrics_port = metrics_port
        self.codec = make_codec(SchemaStore(), settings.schema_registry_url)
        self.counters: Counter[str] = Counter()
        self.running = threading.Event()
        self.fatal: str | None = None
        self._secrets = load_secrets(settings)
        self.producer = Producer(
            {
                "bootstrap.servers": settings.kafka_bootstrap,
                "enable.idempotence": True,  # no duplicates from producer retries
                "acks": "all",
                "linger.ms": self.config.linger_ms,
                "queue.buffering.max.messages": 200_000,
            }
        )
        self.mqtt = self._mqtt_client()
        # Outbound publishes waiting for PUBACK: mid -> Kafka message (offset to store).
        self._out_pending: dict[int, Any] = {}
        self._out_lock = threading.Lock()
        self._acked_mids: deque[int] = deque()
        self._to_store: deque[Any] = deque()  # acked Kafka records, offsets to store

    # -- MQTT ------------------------------------------------------------------------
    def _mqtt_client(self) -> mqtt.Client:
        c = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"homestream-{self.config.name}",
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        c.username_pw_set(BRIDGE_MQTT_USER, self._secrets.bridge_mqtt_password)
        c.max_inflight_messages_set(1000)
        c.max_queued_messages_set(0)
        # Back fast after a broker restart: Mosquitto 2.0 does not restore shared
        # subscriptions, so hubs' reports have no subscriber until we re-subscribe.
        c.reconnect_delay_set(1, 2)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        c.on_publish = self._on_publish
        c.on_subscribe = self._on_subscribe
        return c

    def _connect(self) -> None:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = SESSION_EXPIRY_S
        props.ReceiveMaximum = self.config.receive_maximum
        self.mqtt.connect(
            self.settings.host,
            self.settings.ports.mqtt,
            keepalive=30,
            clean_start=False,  # resume the session: unacked messages are redelivered
            properties=props,
        )

    def _on_connect(self, client, _ud, _flags, rc, _props) -> None:
        if rc.is_failure:
            log.error("mqtt connect refused", extra={"reason": str(rc)})
            return
        client.subscribe([(f"$share/{SHARE_GROUP}/{f}", 1) for f in wire.inbound_filters()])
        self.counters["mqtt_connects"] += 1
        log.info("mqtt connected", extra={"bridge": self.config.name})

    def _on_subscribe(self, _client, _ud, _mid, reason_codes, _props) -> None:
        if any(rc.is_failure for rc in reason_codes):
            log.error(
                "shared subscription refused", extra={"codes": [str(r) for r in reason_codes]}
            )
            return
        # Health: hubs' messages reach us from here on (the launcher waits for this).
        self.counters["mqtt_subscribed"] = 1

    def _on_disconnect(self, _client, _ud, _flags, rc, _props) -> None:
        self.counters["mqtt_subscribed"] = 0
        if self.running.is_set():
            log.warning("mqtt disconnected; reconnecting", extra={"reason": str(rc)})

    def _on_message(self, client: mqtt.Client, _ud, msg: mqtt.MQTTMessage) -> None:
        # Runs on paho's network thread: parse, hand to the producer, return. The PUBACK
        # is sent from the delivery report (``_delivered``).
        now = int(time.time() * 1000)
        payload = bytes(msg.payload)
        self.counters["mqtt_in"] += 1
        try:
            result = wire.parse(
                msg.topic,
                payload,
                received_at=now,
                retained=bool(msg.retain),
                max_bytes=self.config.max_payload,
            )
        except Exception as exc:  # a parser bug must not lose the message
            log.exception("parser failed", extra={"topic": msg.topic})
            result = wire.Rejected("PROCESSING_ERROR", f"parser failed: {exc}", "", None)
        if isinstance(result, wire.Ignored):
            self.counters["ignored"] += 1
            client.ack(msg.mid, msg.qos)
            return
        if isinstance(result, wire.Rejected):
            self.counters[f"dead_letter_{result.reason.lower()}"] += 1
            record = wire.dead_letter(result, msg.topic, payload, received_at=now)
            self._produce(t.DEADLETTER, "DeadLetter", record, msg)
            if result.reply is not None:
                self._publish(result.reply)
            return
        record = {"event_id": _uuid(), "home_id": result.home_id, **result.fields}
        self._produce(result.kafka_topic, result.record_name, record, msg)

    def _produce(self, topic: str, name: str, record: dict[str, Any], msg) -> None:
        try:
            value = self.codec.encode(name, record, trusted=True)
        except CodecError as exc:  # our parser let through what Avro refuses: dead-letter
            log.error("encode failed", extra={"record": name, "error": str(exc)})
            bad = wire.Rejected("SCHEMA_VIOLATION", str(exc), record.get("home_id", ""), None)
            record = wire.dead_letter(bad, msg.topic, bytes(msg.payload), received_at=record["ts"])
            topic, value = t.DEADLETTER, self.codec.encode("DeadLetter", record)
        home = record["home_id"]
        mid, qos = msg.mid, msg.qos

        def delivered(err, _m) -> None:
            if err is not None:
                # Idempotent producer retries until delivery.timeout.ms: this is fatal.
                # Not acking makes the broker redeliver to the restarted bridge.
                self.fatal = f"kafka delivery failed: {err}"
                self.running.clear()
                return
            self.counters["produced"] += 1
            self.mqtt.ack(mid, qos)

        while True:
            try:
                self.producer.produce(
                    topic,
                    key=home.encode(),
                    value=value,
                    partition=partition_for_key(home, self.settings.partitions),
                    on_delivery=delivered,
                )
                return
            except BufferError:  # local queue full: wait for deliveries (backpressure)
                self.producer.poll(0.05)

    # -- outbound ----------------------------------------------------------------------
    def _publish(self, out: wire.Outbound, kafka_msg: Any = None) -> None:
        info = self.mqtt.publish(out.mqtt_topic, out.payload, qos=out.qos, retain=out.retain)
        self.counters["mqtt_out"] += 1
        if kafka_msg is not None:
            with self._out_lock:
                if info.mid in self._acked_mids:  # the PUBACK beat us here
                    self._acked_mids.remove(info.mid)
                    self._to_store.append(kafka_msg)
                else:
                    self._out_pending[info.mid] = kafka_msg

    def _on_publish(self, _client, _ud, mid: int, _rc, _props) -> None:
        # paho's thread: only bookkeeping. The consumer is touched by the main thread alone
        # (librdkafka's store_offsets from here blocked against a concurrent consume()).
        with self._out_lock:
            kafka_msg = self._out_pending.pop(mid, None)
            if kafka_msg is not None:
                self._to_store.append(kafka_msg)
                return
            self._acked_mids.append(mid)
            while len(self._acked_mids) > 10_000:
                self._acked_mids.popleft()

    def _store_acked(self, consumer: Consumer) -> None:
        """Store the offsets of records whose publish Mosquitto acked (main thread)."""
        while self._to_store:
            kafka_msg = self._to_store.popleft()
            try:
                consumer.store_offsets(message=kafka_msg)
            except Exception:  # partition revoked meanwhile: it is re-published, at-least-once
                self.counters["out_store_failed"] += 1

    def _outbound_once(self, consumer: Consumer) -> None:
        for m in consumer.consume(500, timeout=0.05):
            err = m.error()
            if err is not None:
                if err.code() != KafkaError._PARTITION_EOF:
                    log.warning("consume error", extra={"error": str(err)})
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
                consumer.store_offsets(message=m)
                continue
            self._publish(out, m)

    # -- life cycle --------------------------------------------------------------------
    def run(self) -> int:
        signal.signal(signal.SIGTERM, lambda *_: self.running.clear())
        signal.signal(signal.SIGINT, lambda *_: self.running.clear())
        self.running.set()
        if self.metrics_port:
            from streams.metrics import serve

            serve(self.settings.host, self.metrics_port, self.metrics_text)
        consumer = Consumer(
            {
                "bootstrap.servers": self.settings.kafka_bootstrap,
                "group.id": OUT_GROUP,
                "isolation.level": "read_committed",  # only what the workers committed
                "enable.auto.commit": True,
                "enable.auto.offset.store": False,  # stored on PUBACK (``_on_publish``)
                "auto.offset.reset": "latest",
                "session.timeout.ms": 10_000,
            }
        )
        self._connect()
        self.mqtt.loop_start()
        # Delivery reports (and so the PUBACKs) are served by their own thread, at once.
        threading.Thread(target=self._poll_deliveries, name="deliveries", daemon=True).start()

        def assigned(_c, parts) -> None:
            self.counters["out_partitions"] = len(parts)

        consumer.subscribe(list(OUTBOUND_TOPICS), on_assign=assigned)
        log.info("bridge started", extra={"bridge": self.config.name})
        last_report = time.monotonic()
        try:
            while self.running.is_set():
                self._outbound_once(consumer)
                self._store_acked(consumer)
                if time.monotonic() - last_report > 30:
                    last_report = time.monotonic()
                    log.info("bridge counters", extra=dict(self.counters))
        finally:
            self._shutdown(consumer)
        if self.fatal:
            log.error("bridge stopped", extra={"reason": self.fatal})
            return 1
        return 0

    def _poll_deliveries(self) -> None:
        while self.running.is_set():
            self.producer.poll(0.05)

    def _shutdown(self, consumer: Consumer) -> None:
        # Let in-flight produces finish so their PUBACKs go out; anything left unacked is
        # redelivered to the next bridge on this session.
        self.producer.flush(10)
        time.sleep(0.2)  # PUBACKs queued by the delivery reports reach the socket
        self.mqtt.disconnect()
        self.mqtt.loop_stop()
        self._store_acked(consumer)
        with contextlib.suppress(Exception):  # nothing stored since the last auto-commit
            consumer.commit(asynchronous=False)
        consumer.close()
        log.info("bridge stopped", extra=dict(self.counters))

    def metrics_text(self) -> str:
        name = "homestream_bridge_messages_total"
        lines = [
            f"# HELP {name} MQTT and Kafka messages through the bridge, by outcome.",
            f"# TYPE {name} counter",
        ]
        for outcome, value in sorted(dict(self.counters).items()):
            lines.append(f'{name}{{bridge="{self.config.name}",outcome="{outcome}"}} {value}')
        return "\n".join(lines) + "\n"


def forget_session(settings: Settings, name: str) -> None:
    """Remove bridge ``name``'s persistent MQTT session: for a bridge that will not come
    back. Mosquitto counts an offline session as a member of the shared subscription and
    keeps queueing its share of messages for it."""
    c = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=f"homestream-{name}", protocol=mqtt.MQTTv5
    )
    c.username_pw_set(BRIDGE_MQTT_USER, load_secrets(settings).bridge_mqtt_password)
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 0
    done = threading.Event()
    c.on_connect = lambda *_a: done.set()
    c.connect(settings.host, settings.ports.mqtt, clean_start=True, properties=props)
    c.loop_start()
    done.wait(10)
    c.disconnect()
    c.loop_stop()


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
    from homestream.logs import setup

    setup(loglevel, settings.log_format)
    bridge = Bridge(settings, BridgeConfig(name=name), metrics_port=metrics_port)
    code = bridge.run()
    if data_dir is not None:  # the last counters, for `homestream status` and post-mortems
        data_dir.mkdir(parents=True, exist_ok=True)
        (data_dir / "counters.json").write_text(json.dumps(dict(bridge.counters), indent=1))
    return code


def bridge_argv(name: str, data_dir: Path, metrics_port: int | None = None) -> list[str]:
    """The command line of one bridge process (the launcher's and the tests')."""
    import sys

    return [
        sys.executable,
        "-m",
        "homestream.cli",
        "bridge",
        "--name",
        name,
        "--data-dir",
        str(data_dir),
        *(["--metrics-port", str(metrics_port)] if metrics_port else []),
    ]
