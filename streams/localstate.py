"""A stream worker's partition state in RocksDB (rocksdict), behind a bounded cache.

Kafka's compacted changelog stays the source of truth; this is the worker's local copy
of one partition of it. It gives two things the in-memory dict could not:

- state is not bounded by memory: only recently used keys are kept decoded in memory
  (``cache_keys``), the rest stays on disk;
- a restarted worker replays only the changelog written since its last commit, not all
  of it.

The copy only ever holds committed state. A batch's values are written after its Kafka
transaction commits, in one RocksDB write batch with the changelog offset they reach
(the checkpoint). A crash between the commit and that write leaves the older
checkpoint, and replaying from it writes the same values again: each record is a key's
whole value, so replaying more than needed is harmless. Until then the batch's values
live in the cache only, which is why it is never trimmed with a batch open.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from rocksdict import DBCompressionType, Options, Rdict, WriteBatch, WriteOptions

from topics import jsontext

# Not a state key: state keys are text and never start with NUL.
_META = b"\x00checkpoint"
_ABSENT = object()  # cached: the key has no value (deleted, or never written)


@dataclass(frozen=True)
class Checkpoint:
    """Where the local copy stands: the next changelog offset to read, and which
    changelog that offset belongs to."""

    offset: int
    written_at_ms: int
    topic_id: str

    def encode(self) -> bytes:
        return json.dumps(
            {"offset": self.offset, "written_at_ms": self.written_at_ms, "topic": self.topic_id}
        ).encode()

    @classmethod
    def decode(cls, raw: bytes) -> Checkpoint | None:
        try:
            d = json.loads(raw)
            return cls(int(d["offset"]), int(d["written_at_ms"]), str(d["topic"]))
        except (ValueError, KeyError, TypeError):
            return None


def usable_checkpoint(
    cp: Checkpoint | None,
    *,
    topic_id: str,
    low: int,
    high: int,
    now_ms: int,
    max_age_ms: int,
) -> str | None:
    """Why the local copy cannot be brought up to date from the changelog, or None if it
    can. ``low``/``high`` are the partition's watermarks now.

    Replaying from the checkpoint misses nothing only if every record written since is
    still there: compaction keeps each key's newest record, but drops tombstones after
    the topic's delete.retention.ms, so a copy older than that could keep a deleted key."""
    if cp is None:
        return "no local state"
    if cp.topic_id != topic_id:
        return "the changelog was recreated"
    if cp.offset > high:
        return f"the checkpoint {cp.offset} is past the changelog's end {high}"
    if cp.offset < low:
        return f"the changelog no longer starts at or before the checkpoint {cp.offset}"
    if now_ms - cp.written_at_ms > max_age_ms:
        return "the local state is older than the changelog keeps deletions"
    return None


def _options() -> Options:
    opts = Options(raw_mode=True)
    opts.create_if_missing(True)
    opts.set_compression_type(DBCompressionType.lz4())
    # One database per partition: 64 MB memtables (the default) would be up to ~400 MB
    # on a worker owning six, and each flush a longer burst of work on shared cores.
    opts.set_write_buffer_size(16 * 1024 * 1024)
    return opts


def _open(path: Path) -> Rdict:
    db = Rdict(str(path), _options())
    # No write-ahead log: the changelog is one. A crash loses the writes since the last
    # memtable flush, and since a write batch never straddles a flush, what survives is
    # a prefix of the batches with its own checkpoint: the replay redoes the rest. A
    # clean close flushes.
    writes = WriteOptions()
    writes.disable_wal = True  # type: ignore[method-assign,assignment]  # a property
    db.set_write_options(writes)
    return db


class RocksPartition:
    """One partition's committed state in RocksDB, read through a bounded cache of
    decoded values. ``put`` changes the cache only; ``commit`` makes a batch durable,
    ``rollback`` forgets it."""

    def __init__(self, path: Path, cache_keys: int) -> None:
        self.path = path
        self.cache_keys = max(1, cache_keys)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = _open(path)
        # Trims drop the oldest entries first (insertion order). A hit does not move its
        # key: hits are most reads, the tick's scans among them, and a hot key dropped
        # early costs one read from RocksDB (microseconds).
        self.cache: dict[str, Any] = {}

    # -- the fold's view -----------------------------------------------------------------
    def get(self, key: str) -> dict[str, Any] | None:
        value: Any = self.cache.get(key)
        if value is None:
            raw = self.db.get(key.encode())
            value = self.cache[key] = _ABSENT if raw is None else jsontext.loads(raw)
        return None if value is _ABSENT else value

    def put(self, key: str, value: dict[str, Any] | None) -> None:
        self.cache[key] = _ABSENT if value is None else value

    def _raw_items(self) -> Iterator[tuple[bytes, bytes]]:
        for key, value in self.db.items():
            if key != _META:
                yield cast(bytes, key), cast(bytes, value)

    def homes(self) -> Iterator[str]:
        """Home keys of the committed state (a batch's new homes are not listed)."""
        for raw, _value in self._raw_items():
            if b"/" not in raw:
                yield raw.decode()

    def items(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """Every committed key and value, decoded."""
        for raw, value in self._raw_items():
            yield raw.decode(), jsontext.loads(value)

    def home_items(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """Committed home records and processor timer keys (``home/#name``): a DueIndex
        needs nothing else."""
        for raw, value in self._raw_items():
            if b"/" not in raw or (b"/#" in raw and not raw.startswith(b"#/")):
                yield raw.decode(), jsontext.loads(value)

    # -- batches -------------------------------------------------------------------------
    def commit(self, writes: Mapping[str, bytes | None], checkpoint: Checkpoint | None) -> None:
        """Write a committed batch (each key's encoded value, None to delete) and, if
        given, the checkpoint it reaches, atomically; then trim the cache."""
        batch = WriteBatch(raw_mode=True)
        for key, value in writes.items():
            if value is None:
                batch.delete(key.encode())
            else:
                batch.put(key.encode(), value)
        if checkpoint is not None:
            batch.put(_META, checkpoint.encode())
        self.db.write(batch)
        self.trim()

    def rollback(self) -> None:
        """Forget an uncommitted batch: every get reads committed values again (the whole
        cache goes, in case a failed event changed a cached value in place)."""
        self.cache.clear()

    def replay(self, records: Iterable[tuple[bytes, bytes | None]]) -> int:
        """Apply changelog records (key, value or None), in order; returns how many."""
        batch = WriteBatch(raw_mode=True)
        n = 0
        for key, value in records:
            if value is None:
                batch.delete(key)
            else:
                batch.put(key, value)
            self.cache.pop(key.decode(), None)
            n += 1
        if n:
            self.db.write(batch)
        return n

    @property
    def checkpoint(self) -> Checkpoint | None:
        raw = self.db.get(_META)
        return None if raw is None else Checkpoint.decode(raw)

    def trim(self) -> None:
        excess = len(self.cache) - self.cache_keys
        if excess > 0:
            for key in [k for _, k in zip(range(excess), self.cache, strict=False)]:
                del self.cache[key]

    # -- life cycle ----------------------------------------------------------------------
    def wipe(self) -> None:
        """Drop the local copy (it is rebuilt from the changelog)."""
        self.db.close()
        Rdict.destroy(str(self.path), _options())
        shutil.rmtree(self.path, ignore_errors=True)
        self.db = _open(self.path)
        self.cache.clear()

    def close(self) -> None:
        self.cache.clear()
        self.db.close()
