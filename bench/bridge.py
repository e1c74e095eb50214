"""`homestream bench bridge`: the MQTT <-> Kafka bridge measured on the running stack.

1. Throughput (QoS 1, MQTT -> Kafka): a bench bridge process joins the bridges' shared
   subscription, then stops; state reports are published while it is away, so the broker
   queues its share on its session. When it comes back it drains that backlog as fast as it
   can: the load generator does not compete for the CPU while the bridge is timed.
2. Command round trip: CommandRequested -> stream worker -> CommandDispatched -> bridge ->
   `hub/{h}/command/{d}` -> a responding hub acks COMPLETED on `hub/{h}/ack/{d}` -> bridge
   -> worker -> CommandStatus COMPLETED readable (read_committed). Needs a stream worker.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
from confluent_kafka import Consumer, TopicPartition

from bench.workers import _Lag, _wait
from hub.bridge import bridge_argv, forget_session
from runtime.config import Settings
from runtime.secrets import BRIDGE_MQTT_USER, load_secrets
from topics import catalogue as t
from topics.producer import EventProducer


@dataclass
class BridgeBenchResult:
    messages_published: int
    publish_rate_per_s: float
    drained_by_bench_bridge: int
    throughput_msgs_per_s: float
    commands: int
    command_rate_per_s: float
    command_p50_ms: float
    command_p99_ms: float
    command_max_ms: float


class _BenchBridge:
    def __init__(self, settings: Settings, name: str, port: int, log: Path):
        self.settings, self.name, self.port, self.log = settings, name, port, log
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [*bridge_argv(self.name, self.log.parent, self.port), "--loglevel", "warning"],
            stdout=open(self.log, "ab"),  # noqa: SIM115 - the process owns it
            stderr=subprocess.STDOUT,
            env=os.environ.copy(),
        )
        _wait(self._up, 60, f"the bench bridge (log {self.log})")

    def _up(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"the bench bridge exited; see {self.log}")
        from runtime.metrics import ready_at

        return ready_at(self.settings.host, self.port)  # subscribed to the hubs

    def counters(self) -> dict[str, int]:
        from runtime.metrics import outcomes_at

        counts = outcomes_at(self.settings.host, self.port, "homestream_bridge_messages_total")
        return {outcome: int(value) for outcome, value in counts.items()}

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(30)


def _client(settings: Settings, tag: str) -> mqtt.Client:
    c = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-{tag}", protocol=mqtt.MQTTv5
    )
    c.username_pw_set(BRIDGE_MQTT_USER, load_secrets(settings).bridge_mqtt_password)
    c.max_inflight_messages_set(1000)
    c.max_queued_messages_set(0)
    connected = threading.Event()
    c.on_connect = lambda *_a: connected.set()
    c.connect(settings.host, settings.ports.mqtt, keepalive=30)
    c.loop_start()
    if not connected.wait(10):
        raise RuntimeError("cannot connect to Mosquitto: is the stack up (homestream status)?")
    return c


def _publish_backlog(settings: Settings, run: str, messages: int, say) -> float:
    """Publish ``messages`` QoS 1 state reports of discovered temperature sensors (90 %
    unchanged, as in the design brief); returns the publish rate."""
    homes = [f"bench-{run}-{i:03d}" for i in range(50)]
    feed = EventProducer(settings.kafka_bootstrap, settings.partitions)
    for home in homes:  # known devices: the worker folds the reports instead of parking them
        for d in range(10):
            feed.send(
                t.DEVICE_DISCOVERY,
                "DeviceDiscovered",
                home,
                device_id=f"sensor-{d}",
                name=f"Bench Sensor {d}",
                type="sensor.temperature",
                capabilities=["TEMPERATURE_SENSOR"],
            )
    feed.flush()
    c = _client(settings, f"pub-{run}")
    acked = threading.Semaphore(0)
    c.on_publish = lambda *_a: acked.release()
    t0 = time.monotonic()
    for n in range(messages):
        home = homes[n % len(homes)]
        step = n // 500  # each sensor changes on about one report in ten
        temperature = 20.0 + (step % 4) if n % 500 < 50 else 20.0 + ((step - 1) % 4)
        payload = json.dumps({"state": {"temperature": temperature}})
        c.publish(f"hub/{home}/state/sensor-{n % 10}", payload, qos=1)
        if n % 20_000 == 0 and n:
            say(f"  published {n:,}")
    deadline = time.monotonic() + 120
    for _ in range(messages):
        if not acked.acquire(timeout=max(0.0, deadline - time.monotonic())):
            raise RuntimeError("Mosquitto did not acknowledge the backlog within 120 s")
    rate = messages / (time.monotonic() - t0)
    c.disconnect()
    c.loop_stop()
    return rate


def _drain(bridge: _BenchBridge) -> tuple[int, float]:
    """Restart the bench bridge and time it through its queued share. The drain ends when
    the rate falls under 400 messages/s: other hubs' trickle (the demo home) must not
    stretch the measured window."""
    bridge.start()
    first_t = last_t = None
    first_n = last_n = prev_n = 0
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < 2.0:
        n = bridge.counters().get("produced", 0)
        now = time.monotonic()
        if n - prev_n >= 20:  # per 50 ms sample: still draining
            if first_t is None:
                first_t, first_n = now, prev_n
            last_t, last_n = now, n
            quiet_since = now
        prev_n = n
        time.sleep(0.05)
    if first_t is None or last_t is None or last_t <= first_t:
        return last_n, 0.0
    return last_n, (last_n - first_n) / (last_t - first_t)


def _command_round_trips(settings: Settings, run: str, rate: int, seconds: float, say):
    homes = [f"bench-{run}-cmd-{i:02d}" for i in range(20)]
    feed = EventProducer(settings.kafka_bootstrap, settings.partitions, **{"linger.ms": 1})
    for home in homes:
        feed.send(
            t.DEVICE_DISCOVERY,
            "DeviceDiscovered",
            home,
            device_id="lamp",
            name="Bench Lamp",
            type="light.switch",
            capabilities=["ON_OFF"],
        )
    feed.flush()
    _wait_registered(settings, set(homes), feed.codec, say)
    # The responding hub: acks COMPLETED for every command it receives.
    hub = _client(settings, f"hub-{run}")

    def respond(c: mqtt.Client, _ud, msg: mqtt.MQTTMessage) -> None:
        cid = json.loads(msg.payload)["command_id"]
        ack = {"command_id": cid, "status": "COMPLETED"}
        c.publish(msg.topic.replace("/command/", "/ack/"), json.dumps(ack), qos=1)

    hub.on_message = respond
    hub.subscribe([(f"hub/{h}/command/+", 1) for h in homes])
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"bench-{run}",
            "isolation.level": "read_committed",
        }
    )
    parts = range(settings.partitions)
    consumer.assign([TopicPartition(t.COMMANDS_STATUS, p, -1) for p in parts])  # the end
    consumer.consume(1, timeout=1)
    sent: dict[str, float] = {}
    latencies: list[float] = []

    def collect(timeout: float) -> None:
        for m in consumer.consume(500, timeout=timeout):
            if m.error():
                continue
            rec = feed.codec.decode(m.value() or b"").record
            cid = rec["command_id"]
            if rec["status"] == "COMPLETED" and cid in sent:
                latencies.append((time.time() - sent.pop(cid)) * 1000)

    n, t0 = 0, time.monotonic()
    t_start = time.time()
    while time.monotonic() - t0 < seconds:
        due = int((time.monotonic() - t0) * rate)
        while n < due:
            cid = f"bench-{run}-{n}"
            now = time.time()
            feed.send(
                t.COMMANDS_REQUESTED,
                "CommandRequested",
                homes[n % len(homes)],
                command_id=cid,
                device_id="lamp",
                capability="ON_OFF",
                command="turnOn" if n % 2 else "turnOff",
                requested_by="bench",
                issued_at=int(now * 1000),
            )
            feed.producer.flush(1)
            sent[cid] = now
            n += 1
        collect(0.001)
    deadline = time.monotonic() + 15
    while sent and time.monotonic() < deadline:
        collect(0.1)
    if sent:
        late = sorted(round(t - t_start, 2) for t in sent.values())
        say(f"  {len(sent)} commands did not complete within 15 s (sent at +{late} s)")
    consumer.close()
    hub.disconnect()
    hub.loop_stop()
    return n, latencies


def _wait_registered(settings: Settings, homes: set[str], codec, say) -> None:
    """Until the worker has registered every bench lamp: it may still be folding a backlog
    (the throughput phase's reports), and a command for an unknown device fails."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"bench-reg-{uuid.uuid4().hex[:6]}",
            "isolation.level": "read_committed",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([t.DEVICE_REGISTRY])
    seen: set[str] = set()
    deadline = time.monotonic() + 180
    try:
        while seen < homes and time.monotonic() < deadline:
            for m in consumer.consume(500, timeout=0.5):
                if m.error() or not m.value():
                    continue
                rec = codec.decode(m.value()).record
                if rec.get("home_id") in homes:
                    seen.add(rec["home_id"])
    finally:
        consumer.close()
    if seen < homes:
        raise RuntimeError(
            f"the stream worker registered {len(seen)} of {len(homes)} bench lamps in 180 s: "
            "is it running and keeping up (homestream status)?"
        )
    say(f"  {len(homes)} bench lamps registered")


def run_bench(
    settings: Settings,
    *,
    messages: int = 100_000,
    command_rate: int = 20,
    command_seconds: float = 15.0,
    say=print,
) -> BridgeBenchResult:
    from compose.process import free_port
    from topics.admin import group_members

    # SIGTERM runs the finally below: the bench bridge's session must not outlive the bench.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    run = uuid.uuid4().hex[:6]
    name = f"bench-bridge-{run}"
    logdir = settings.state_dir / "bench" / name
    logdir.mkdir(parents=True, exist_ok=True)
    bridge = _BenchBridge(settings, name, free_port(), logdir / "bridge.log")
    try:
        say("bridge throughput: joining the shared subscription, then leaving")
        bridge.start()
        bridge.stop()
        say(f"publishing {messages:,} QoS 1 reports while the bench bridge is away")
        pub_rate = _publish_backlog(settings, run, messages, say)
        say(f"  {pub_rate:,.0f} msgs/s published; draining")
        drained, throughput = _drain(bridge)
        say(f"  drained {drained:,} at {throughput:,.0f} msgs/s")
        if group_members(settings.kafka_bootstrap, "homestream-streams") == 0:
            raise RuntimeError(
                "no stream worker is running: the command round trip needs one "
                "(homestream up starts it)"
            )
        lag = _Lag(settings)  # the command phase starts once the workers are idle again
        try:
            _wait(lambda: lag() == 0, 300, "the stream workers to fold the backlog")
        finally:
            lag.close()
        say(f"command round trips at {command_rate}/s for {command_seconds:.0f} s")
        n, lat = _command_round_trips(settings, run, command_rate, command_seconds, say)
    finally:
        bridge.stop()
        forget_session(settings, name)
    lat.sort()
    q = statistics.quantiles(lat, n=100) if len(lat) >= 2 else [0.0] * 99
    return BridgeBenchResult(
        messages_published=messages,
        publish_rate_per_s=round(pub_rate),
        drained_by_bench_bridge=drained,
        throughput_msgs_per_s=round(throughput),
        commands=n,
        command_rate_per_s=command_rate,
        command_p50_ms=round(q[49], 1),
        command_p99_ms=round(q[98], 1),
        command_max_ms=round(lat[-1] if lat else 0.0, 1),
    )


def print_result(result: BridgeBenchResult, as_json: bool) -> None:
    if as_json:
        print(json.dumps(asdict(result), indent=2))
        return
    r = result
    print(
        f"MQTT -> Kafka (QoS 1, one bridge process): {r.throughput_msgs_per_s:,} msgs/s "
        f"({r.drained_by_bench_bridge:,} drained; generator published "
        f"{r.publish_rate_per_s:,}/s)\n"
        f"command round trip at {r.command_rate_per_s}/s ({r.commands} commands): "
        f"p50 {r.command_p50_ms} ms, p99 {r.command_p99_ms} ms, max {r.command_max_ms} ms"
    )
