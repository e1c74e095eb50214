"""Avro single-object encode/decode cost of one DeviceReport.

.venv/bin/python bench/codec.py
"""

from __future__ import annotations

import statistics
import time
import uuid

from topics.codec import SingleObjectCodec
from topics.schemas import SchemaStore

ROUNDS, N = 5, 20_000


def main() -> None:
    codec = SingleObjectCodec(SchemaStore())
    record = {
        "event_id": str(uuid.uuid4()),
        "home_id": "h1",
        "device_id": "lamp-1",
        "ts": 1_700_000_000_000,
        "received_at": 1_700_000_000_001,
        "state": {"powerState": "ON", "brightness": 42, "color": {"hue": 120, "saturation": 50}},
    }
    data = codec.encode("DeviceReport", record)
    cases = [
        ("encode", lambda: codec.encode("DeviceReport", record)),
        ("decode", lambda: codec.decode(data)),
    ]
    for name, fn in cases:
        per_op = []
        for _ in range(ROUNDS):
            t0 = time.perf_counter()
            for _ in range(N):
                fn()
            per_op.append((time.perf_counter() - t0) / N * 1e6)
        med = statistics.median(per_op)
        print(
            f"{name}: median {med:.1f} µs/op ({1e6 / med:,.0f} ops/s), "
            f"min {min(per_op):.1f}, max {max(per_op):.1f}, {ROUNDS}x{N} ops, {len(data)} bytes"
        )


if __name__ == "__main__":
    main()
