"""`homestream bench automations`: the automation engine, in the fold and through Kafka.

1. Evaluations (in this process, no servers): the stream worker's fold (home processor and
   automation engine) over homes with 15 automations each, the design brief's ratio: five
   motion lights (restart, a wait with `for:`), five temperature alerts (numeric_state),
   five schedules. Reports: temperature steps, and a share of motion toggles (20 % by
   default; each "motion on" fires and restarts a run). A trigger
   evaluation is one report considered by one of its home's automations, so evaluations/s
   = reports/s x 15. The fold is all a worker does per event besides Kafka, so this is the
   worker's ceiling; the same run with the home processor alone is the baseline.
2. Latency (needs `homestream up`): one motion-light automation per home; motion reports at
   a steady rate; from each report's production to the automation's command being readable
   on homestream.commands.dispatched, i.e. published towards the hub (read_committed).
"""

from __future__ import annotations

import json
import random
import statistics
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from runtime.config import Settings
from topics import catalogue as t
from topics.producer import EventProducer

AUTOMATIONS_PER_HOME = 15
_T0 = 1_700_000_000_000


@dataclass
class FoldResult:
    homes: int
    automations_per_home: int
    reports: int
    motion_share: float  # of the reports; each motion "on" fires a run
    reports_per_s: float
    evaluations_per_s: float
    runs_reported: int
    baseline_reports_per_s: float  # the home processor alone, same reports
    # The same over the fold's CPU time: what a loaded machine's wall clock hides
    cpu_reports_per_s: float = 0.0
    cpu_evaluations_per_s: float = 0.0


@dataclass
class LatencyResult:
    homes: int
    rate_per_s: int  # reports/s
    motion_share: float  # of the reports; half of those fire a run
    seconds: float
    samples: int
    p50_ms: float
    p99_ms: float
    max_ms: float


def _motion_light(i: int) -> dict[str, Any]:
    return {
        "alias": f"motion light {i}",
        "mode": "restart",
        "triggers": [
            {"trigger": "state", "device_id": f"pir{i}", "attribute": "motion", "to": True}
        ],
        "actions": [
            {"device_id": f"light{i}", "capability": "ON_OFF", "command": "turnOn"},
            {"wait_for_trigger": [{"trigger": "state", "device_id": f"pir{i}",
                                   "attribute": "motion", "to": False, "for": "00:02:00"}]},
            {"device_id": f"light{i}", "capability": "ON_OFF", "command": "turnOff"},
        ],
    }  # fmt: skip


def _automation(i: int) -> dict[str, Any]:
    if i < 5:
        return _motion_light(i)
    if i < 10:
        return {
            "alias": f"warm {i}",
            "triggers": [{"trigger": "numeric_state", "device_id": "thermo",
                          "attribute": "temperature", "above": 19 + i}],
            "actions": [{"notify": f"above {19 + i} degrees"}],
        }  # fmt: skip
    return {
        "alias": f"schedule {i}",
        "triggers": [{"trigger": "time", "at": f"{i + 7:02d}:00"}],
        "actions": [{"device_id": f"light{i - 10}", "capability": "ON_OFF", "command": "turnOff"}],
    }


def _event(record_name: str, /, **record: Any) -> tuple[str, dict[str, Any]]:
    return record_name, {"event_id": str(uuid.uuid4()), "ts": _T0, **record}


def _devices(home: str) -> list[tuple[str, dict[str, Any]]]:
    def found(device: str, type_: str, caps: list[str]) -> tuple[str, dict[str, Any]]:
        return _event("DeviceDiscovered", home_id=home, device_id=device, name=device,
                      type=type_, room="bench", protocol="zigbee", capabilities=caps)  # fmt: skip

    out = [found("thermo", "sensor.temperature", ["TEMPERATURE_SENSOR", "BATTERY"])]
    for d in range(5):
        out.append(found(f"pir{d}", "sensor.motion", ["MOTION_SENSOR", "BATTERY"]))
        out.append(found(f"light{d}", "switch.plug", ["ON_OFF"]))
    return out


def run_fold(
    *,
    homes: int = 10_000,
    reports: int = 50_000,
    motion_share: float = 0.2,
    say: Callable[[str], None] = print,
) -> FoldResult:
    """Evaluations per second of one worker's fold (see the module docstring)."""
    from streams.fold.config import ProcessorConfig
    from streams.fold.dispatch import PROCESSORS, Fold
    from streams.fold.home import HOME
    from streams.fold.store import DictStore

    ids = [f"bench-{i:05d}" for i in range(homes)]
    rng = random.Random(5)
    temps = dict.fromkeys(ids, 21.0)
    motion: dict[tuple[str, int], bool] = {}
    events = []
    for n in range(reports):
        home = rng.choice(ids)
        at = _T0 + 1_000 + n * 20
        if rng.random() >= motion_share:
            temps[home] = round(min(30.0, max(15.0, temps[home] + rng.choice((-0.6, 0.6)))), 1)
            state: dict[str, Any] = {"temperature": temps[home]}
            device = "thermo"
        else:
            d = rng.randrange(5)
            motion[(home, d)] = not motion.get((home, d), False)
            state, device = {"motion": motion[(home, d)]}, f"pir{d}"
        events.append(_event("DeviceReport", home_id=home, device_id=device, state=state,
                             received_at=at, source="mqtt"))  # fmt: skip

    def measure(processors: Any, with_automations: bool) -> tuple[float, int, float]:
        fold = Fold(DictStore(), ProcessorConfig(), processors)
        for home in ids:
            for name, rec in _devices(home):
                fold.handle(name, rec)
            if with_automations:
                for i in range(AUTOMATIONS_PER_HOME):
                    fold.handle(*_event("HomeConfig", home_id=home, kind="automation",
                                        doc_id=f"a{i}", document=json.dumps(_automation(i)),
                                        by="bench"))  # fmt: skip
        runs = 0
        start, cpu = time.perf_counter(), time.process_time()
        for name, rec in events:
            out = fold.handle(name, rec)
            runs += sum(1 for e in out if e.record_name == "AutomationFired")
        cpu = time.process_time() - cpu
        return reports / (time.perf_counter() - start), runs, reports / max(cpu, 1e-9)

    say(f"fold: {homes:,} homes x {AUTOMATIONS_PER_HOME} automations, {reports:,} reports")
    rate, runs, cpu_rate = measure(PROCESSORS, True)
    say(f"  with the automation engine: {rate:,.0f} reports/s ({cpu_rate:,.0f} of CPU time)")
    baseline, _, cpu_baseline = measure((HOME,), False)
    say(f"  the home processor alone: {baseline:,.0f} reports/s ({cpu_baseline:,.0f} of CPU time)")
    return FoldResult(homes, AUTOMATIONS_PER_HOME, reports, motion_share, round(rate, 1),
                      round(rate * AUTOMATIONS_PER_HOME, 1), runs, round(baseline, 1),
                      round(cpu_rate, 1),
                      round(cpu_rate * AUTOMATIONS_PER_HOME, 1))  # fmt: skip


class _Feed(EventProducer):
    def __init__(self, settings: Settings, homes: int) -> None:
        super().__init__(settings.kafka_bootstrap, settings.partitions, **{"linger.ms": 1})
        run = uuid.uuid4().hex[:6]
        self.homes = [f"bench-auto-{run}-{i:04d}" for i in range(homes)]

    def set_up(self) -> None:
        for home in self.homes:
            for device, type_, caps in (
                ("pir0", "sensor.motion", ["MOTION_SENSOR", "BATTERY"]),
                ("light0", "switch.plug", ["ON_OFF"]),
                ("thermo", "sensor.temperature", ["TEMPERATURE_SENSOR"]),
            ):
                self.send(t.DEVICE_DISCOVERY, "DeviceDiscovered", home, device_id=device,
                          name=device, type=type_, capabilities=caps)  # fmt: skip
            self.send(t.HOME_CONFIG, "HomeConfig", home, key=f"{home}/automation:light",
                      kind="automation", doc_id="light", document=json.dumps(_motion_light(0)),
                      by="bench")  # fmt: skip
            self.motion(home, False)
        self.flush(60)

    def motion(self, home: str, value: bool) -> None:
        self.send(t.DEVICE_REPORTS, "DeviceReport", home, device_id="pir0",
                  state={"motion": value}, received_at=int(time.time() * 1000))  # fmt: skip

    def temperature(self, home: str, value: float) -> None:
        self.send(t.DEVICE_REPORTS, "DeviceReport", home, device_id="thermo",
                  state={"temperature": value}, received_at=int(time.time() * 1000))  # fmt: skip


def run_latency(
    settings: Settings,
    *,
    homes: int = 1_000,
    rate: int = 1_000,
    seconds: float = 15.0,
    motion_share: float = 1.0,
    say: Callable[[str], None] = print,
) -> LatencyResult:
    """Report -> automation command published, at ``rate`` reports/s of which
    ``motion_share`` toggle a motion sensor (half of those turn motion on and fire a run)
    and the rest are temperature readings no automation fires on."""
    feed = _Feed(settings, homes)
    say(f"latency: {homes:,} homes with a motion light; setting up")
    feed.set_up()
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"bench-auto-{uuid.uuid4().hex[:6]}",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
        }
    )
    parts = range(settings.partitions)
    ends = [
        consumer.get_watermark_offsets(TopicPartition(t.COMMANDS_DISPATCHED, p), timeout=10)[1]
        for p in parts
    ]
    consumer.assign(
        [TopicPartition(t.COMMANDS_DISPATCHED, p, end) for p, end in zip(parts, ends, strict=True)]
    )
    wanted = set(feed.homes)
    sent: dict[str, deque[float]] = {h: deque() for h in feed.homes}
    latencies: list[float] = []
    time.sleep(5)  # the worker takes in the devices and automations first
    say(f"  reports at {rate}/s ({motion_share:.0%} motion) for {seconds:.0f} s")
    state = dict.fromkeys(feed.homes, False)
    rng = random.Random(7)
    temps = dict.fromkeys(feed.homes, 21.0)
    n, start = 0, time.monotonic()
    try:
        while time.monotonic() - start < seconds:
            due = int((time.monotonic() - start) * rate)
            while n < due:
                home = feed.homes[n % homes]
                n += 1
                if rng.random() >= motion_share:
                    temps[home] = round(temps[home] + rng.choice((-0.6, 0.6)), 1)
                    feed.temperature(home, temps[home])
                    continue
                state[home] = not state[home]
                if state[home]:
                    sent[home].append(time.monotonic())
                feed.motion(home, state[home])
            feed.producer.poll(0)
            _collect(consumer, feed.codec, wanted, sent, latencies)
        deadline = time.monotonic() + 10
        while any(sent.values()) and time.monotonic() < deadline:
            _collect(consumer, feed.codec, wanted, sent, latencies)
    finally:
        consumer.close()
    if not latencies:
        raise RuntimeError("no automation command came back: is a stream worker running?")
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else latencies * 99
    say(f"  {len(latencies):,} commands: p50 {q[49] * 1000:.1f} ms, p99 {q[98] * 1000:.1f} ms")
    return LatencyResult(homes, rate, motion_share, seconds, len(latencies), round(q[49] * 1000, 1),
                         round(q[98] * 1000, 1), round(max(latencies) * 1000, 1))  # fmt: skip


def _collect(
    consumer: Consumer,
    codec: Any,
    wanted: set[str],
    sent: dict[str, deque[float]],
    out: list[float],
) -> None:
    now = time.monotonic()
    for msg in consumer.consume(500, timeout=0.005):
        if msg.error() or not msg.value():
            continue
        rec = codec.decode(msg.value()).record
        home = rec.get("home_id")
        if home in wanted and rec.get("command") == "turnOn" and sent[home]:
            out.append(now - sent[home].popleft())


def print_result(result: Any, as_json: bool) -> None:
    if as_json:
        print(json.dumps(asdict(result), indent=2))
    else:
        for key, value in asdict(result).items():
            print(f"{key:>24}: {value}")
