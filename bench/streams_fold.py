"""Cost of the stream worker's per-report work, without Kafka: decode -> validate ->
dedupe -> shadow -> encode outputs, with the design brief's 90 % no-op reports.

    .venv/bin/python bench/streams_fold.py [--homes 200] [--reports 100000]

This is the ceiling of one worker process: the Faust/Kafka transport comes on top.
Also prints the state bytes per device (JSON, as the table stores it).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
import uuid

from streams.fold.dispatch import fold
from topics.codec import SingleObjectCodec
from topics.schemas import SchemaStore

DEVICES = (
    ("thermo", ("TEMPERATURE_SENSOR", "HUMIDITY_SENSOR", "BATTERY"), "sensor.climate"),
    ("lamp", ("ON_OFF", "BRIGHTNESS"), "light.dimmer"),
    ("door", ("CONTACT_SENSOR", "BATTERY"), "sensor.contact"),
    ("motion", ("MOTION_SENSOR", "ILLUMINANCE_SENSOR", "BATTERY"), "sensor.motion"),
    ("plug", ("ON_OFF",), "switch.plug"),
)


def _state(device: str, rng: random.Random, change: bool, last: dict) -> dict:
    if not change and device in last:
        return last[device]
    state = {
        "thermo": {
            "temperature": round(rng.uniform(18, 24), 1),
            "humidity": rng.randint(30, 60),
            "battery": 80,
        },
        "lamp": {"powerState": rng.choice(["ON", "OFF"]), "brightness": rng.randint(0, 100)},
        "door": {"contact": rng.choice(["open", "closed"]), "battery": 90},
        "motion": {
            "motion": rng.choice([True, False]),
            "illuminance": rng.randint(0, 800),
            "battery": 70,
        },
        "plug": {"powerState": rng.choice(["ON", "OFF"])},
    }[device]
    last[device] = state
    return state


def discovered(home: str, device: str, caps: tuple, kind: str, ts: int) -> tuple[str, dict]:
    """A DeviceDiscovered event, as the worker's processor takes it."""
    return (
        "DeviceDiscovered",
        {
            "event_id": str(uuid.uuid4()),
            "home_id": home,
            "ts": ts,
            "device_id": device,
            "name": device,
            "type": kind,
            "capabilities": list(caps),
        },
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--homes", type=int, default=200)
    ap.add_argument("--reports", type=int, default=100_000)
    ap.add_argument("--noop", type=float, default=0.9, help="share of unchanged reports")
    args = ap.parse_args()
    rng = random.Random(1)
    codec = SingleObjectCodec(SchemaStore())
    t0 = 1_700_000_000_000
    homes = [f"home-{i:05d}" for i in range(args.homes)]
    proc = fold(
        discovered(home, device, caps, kind, t0) for home in homes for device, caps, kind in DEVICES
    )
    last: dict[str, dict] = {}
    inputs = []
    for n in range(args.reports):
        home = homes[n % len(homes)]
        device = DEVICES[(n // len(homes)) % len(DEVICES)][0]
        key = f"{home}/{device}"
        sub: dict = last.setdefault(key, {})
        state = _state(device, rng, rng.random() >= args.noop, sub)
        inputs.append(
            codec.encode(
                "DeviceReport",
                {
                    "event_id": str(uuid.uuid4()),
                    "home_id": home,
                    "ts": t0 + n,
                    "device_id": device,
                    "state": state,
                    "received_at": t0 + n,
                    "source": "mqtt",
                },
            )
        )
    per_event: list[float] = []
    emitted = 0
    started = time.perf_counter()
    for raw in inputs:
        t = time.perf_counter()
        decoded = codec.decode(raw)
        for e in proc.handle(decoded.name, decoded.record):
            codec.encode(e.record_name, e.record)
            emitted += 1
        per_event.append(time.perf_counter() - t)
    elapsed = time.perf_counter() - started
    q = statistics.quantiles(per_event, n=100)
    devices = [v for k, v in proc.store.data.items() if "/" in k]
    state_bytes = sum(len(json.dumps(v)) for v in devices) / len(devices)
    print(
        f"reports: {len(inputs):,} over {len(homes)} homes x {len(DEVICES)} devices, "
        f"{args.noop:.0%} unchanged by construction"
    )
    print(
        f"throughput: {len(inputs) / elapsed:,.0f} reports/s on one core "
        f"({elapsed:.2f} s), {emitted:,} output events"
    )
    print(
        f"per report: p50 {q[49] * 1e6:.0f} µs, p99 {q[98] * 1e6:.0f} µs, "
        f"max {max(per_event) * 1e6:.0f} µs"
    )
    print(f"dropped as no-op: {proc.counters['noop']:,}; applied: {proc.counters['applied']:,}")
    per_100k_mb = state_bytes * 100_000 / 1e6
    print(
        f"state per device: {state_bytes:,.0f} bytes JSON -> {per_100k_mb:,.0f} MB "
        "per 100,000 devices (before RocksDB compression)"
    )


if __name__ == "__main__":
    main()
