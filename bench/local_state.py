"""What the stream worker's state costs, per 100,000 devices: on disk in RocksDB, and in
memory decoded; and how fast values come back from disk when the cache misses.

    .venv/bin/python bench/local_state.py [--homes 20000] [--cache-keys 10000]

The state is real: discoveries and one report per device folded by the worker's own
processor, then written through ``RocksPartition`` in commit-sized batches.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import sys
import tempfile
import time
import tracemalloc
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from streams_fold import DEVICES, _state, discovered  # bench/ is not a package: on sys.path above

from streams.fold.dispatch import fold
from streams.localstate import RocksPartition


def _events(homes: list[str], t0: int):
    rng = random.Random(3)
    for home in homes:
        for device, caps, kind in DEVICES:
            yield discovered(home, device, caps, kind, t0)
            yield (
                "DeviceReport",
                {
                    "event_id": str(uuid.uuid4()),
                    "home_id": home,
                    "ts": t0 + 1,
                    "device_id": device,
                    "state": _state(device, rng, True, {}),
                    "received_at": t0 + 1,
                    "source": "mqtt",
                },
            )


def _dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--homes", type=int, default=20_000, help="homes of 5 devices each")
    ap.add_argument("--cache-keys", type=int, default=10_000, help="cache for the read test")
    ap.add_argument("--reads", type=int, default=100_000)
    args = ap.parse_args()
    homes = [f"home-{i:06d}" for i in range(args.homes)]
    print(f"folding {args.homes * len(DEVICES):,} devices in {args.homes:,} homes ...", flush=True)
    state = fold(_events(homes, 1_700_000_000_000)).store.data  # type: ignore[attr-defined]
    devices = [k for k in state if "/" in k]
    per_100k = 100_000 / len(devices)
    raw = {k: json.dumps(v).encode() for k, v in state.items()}
    json_bytes = sum(len(k) + len(v) for k, v in raw.items())

    # Decoded in memory: what the worker held for every key before RocksDB.
    del state
    gc.collect()
    tracemalloc.start()
    decoded = {k: json.loads(v) for k, v in raw.items()}
    mem_bytes = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del decoded

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "partition-0"
        part = RocksPartition(path, cache_keys=args.cache_keys)
        started = time.perf_counter()
        items = list(raw.items())
        for i in range(0, len(items), 500):
            part.commit(dict(items[i : i + 500]), None)
        write_s = time.perf_counter() - started
        part.close()  # flushes the memtable: what is on disk is the state
        disk_bytes = _dir_bytes(path)

        part = RocksPartition(path, cache_keys=args.cache_keys)
        rng = random.Random(5)
        times = []
        hits = 0
        for _ in range(args.reads):
            key = rng.choice(devices)
            hits += key in part.cache
            t = time.perf_counter()
            assert part.get(key) is not None
            times.append(time.perf_counter() - t)
            part.trim()  # as after each batch
        part.close()
    q = statistics.quantiles(times, n=100)
    mb = 1e6
    print(f"devices: {len(devices):,} (+ {len(raw) - len(devices):,} home records)")
    print(f"JSON, as the changelog carries it: {json_bytes * per_100k / mb:,.0f} MB / 100k devices")
    print(f"RocksDB on disk (lz4): {disk_bytes * per_100k / mb:,.0f} MB / 100k devices")
    print(f"decoded in memory: {mem_bytes * per_100k / mb:,.0f} MB / 100k devices")
    print(f"write: {len(raw) / write_s:,.0f} keys/s in batches of 500")
    print(
        f"random device reads, cache of {args.cache_keys:,} ({hits / args.reads:.0%} hits): "
        f"p50 {q[49] * 1e6:.1f} µs, p99 {q[98] * 1e6:.1f} µs, "
        f"{args.reads / sum(times):,.0f} reads/s"
    )


if __name__ == "__main__":
    main()
