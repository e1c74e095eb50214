"""The hub's outbox: a durable FIFO of MQTT publishes, kept in SQLite.

Every report the hub produces is written here (and committed) before anything tries
to send it; a row is deleted only once the broker has taken the message (PUBACK for
QoS 1). While the cloud broker is unreachable the outbox simply grows, and on
reconnect the client replays it from the oldest row.

Durability choices
------------------
* ``journal_mode=WAL``: a commit appends to the ``-wal`` file, readers never block the
  writer, and a half-written transaction is discarded on the next open, so the file is
  never corrupted by a crash at any point.
* ``synchronous=NORMAL`` by default (``synchronous="FULL"`` to change it). In WAL mode
  NORMAL does not fsync on each commit, only at checkpoints. A committed row is in
  the WAL file (the kernel's page cache) the moment ``put`` returns, so it survives
  the hub *process* dying in any way (crash, OOM kill, ``kill -9``): that is the
  failure the store-and-forward feature is about, and the tests check it. What
  NORMAL gives up is the last few commits on a *power cut or kernel crash*, and
  even then the database stays consistent. FULL would fsync on every report, which
  costs 5-20 ms on the SD card or eMMC of a typical hub and caps the report rate
  at 50-200 per second; a home that wants that trade can pass ``synchronous="FULL"``.
* ``AUTOINCREMENT`` ids: SQLite never reuses an id, even after the queue has been
  emptied. Ids therefore grow with insertion order, so ``ORDER BY id`` is FIFO order
  and a sender may keep a cursor ("sent everything up to id N") that a later ``put``
  can never fall behind.

Bound policy
------------
The outbox holds at most ``max_rows`` rows (default 1,000,000). When a ``put`` finds
it full, it makes room by dropping the OLDEST droppable rows, in this order:

1. non-retained state reports (``hub/{home}/state/{device}``). A newer report of the
   same device supersedes them (the shadow keeps the latest value), so they are the
   cheapest thing to lose;
2. any other non-retained message (events, command acks, shadow requests).

Retained messages (status, discovery, availability) are never dropped: they describe
what exists, and losing one would leave the cloud with a wrong picture until the next
change. If every row is retained, ``put`` raises :class:`OutboxFull`. Each dropped
row is counted (``dropped``, kept in the database so it survives restarts) and logged.

One ``Outbox`` object owns the file. It is safe to share between threads (a lock
serialises every statement); two processes must not open the same file.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

log = logging.getLogger("homestream.hub")

DEFAULT_MAX_ROWS = 1_000_000

# Row kinds, in the order the bound policy drops them (RETAINED never).
KIND_STATE = 0
KIND_OTHER = 1
KIND_RETAINED = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    topic       TEXT    NOT NULL,
    payload     BLOB    NOT NULL,
    retain      INTEGER NOT NULL,
    qos         INTEGER NOT NULL,
    kind        INTEGER NOT NULL,
    enqueued_at REAL    NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_kind_id ON outbox (kind, id);
CREATE TABLE IF NOT EXISTS outbox_meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT OR IGNORE INTO outbox_meta (key, value) VALUES ('dropped', 0);
"""

_ACK_CHUNK = 500  # ids per DELETE statement (well under SQLite's variable limit)


class OutboxError(RuntimeError):
    """The outbox cannot do what was asked."""


class OutboxFull(OutboxError):
    """Full, and nothing in it may be dropped (every row is a retained message)."""


class OutboxClosed(OutboxError):
    """The outbox was closed."""


@dataclass(frozen=True, slots=True)
class Item:
    id: int
    topic: str
    payload: bytes
    retain: bool
    qos: int
    enqueued_at: float


def row_kind(topic: str, retain: bool) -> int:
    """Which tier of the bound policy a message belongs to."""
    if retain:
        return KIND_RETAINED
    parts = topic.split("/")
    if len(parts) == 4 and parts[0] == "hub" and parts[2] == "state":
        return KIND_STATE
    return KIND_OTHER


class Outbox:
    def __init__(
        self,
        path: str | Path,
        *,
        max_rows: int = DEFAULT_MAX_ROWS,
        synchronous: str = "NORMAL",
    ) -> None:
        if max_rows < 1:
            raise ValueError("max_rows must be at least 1")
        sync = synchronous.upper()
        if sync not in ("NORMAL", "FULL", "EXTRA"):
            raise ValueError("synchronous must be NORMAL, FULL or EXTRA")
        self.path = Path(path)
        self.max_rows = max_rows
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        # Autocommit mode (isolation_level=None): transactions are explicit below.
        conn = sqlite3.connect(
            str(self.path), check_same_thread=False, isolation_level=None, timeout=10.0
        )
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise OutboxError(f"{self.path}: SQLite refused WAL mode (got {mode!r})")
            conn.execute(f"PRAGMA synchronous={sync}")
            conn.executescript(_SCHEMA)
            self._count = int(conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])
        except BaseException:
            conn.close()
            raise
        self._conn: sqlite3.Connection | None = conn
        log.info(
            "outbox opened",
            extra={"outbox": str(self.path), "pending": self._count, "synchronous": sync},
        )

    # -- writing ----------------------------------------------------------------------
    def put(self, topic: str, payload: bytes, retain: bool = False, qos: int = 1) -> int:
        """Append one message; it is committed when this returns. Returns its id."""
        if qos not in (0, 1, 2):
            raise ValueError(f"qos must be 0, 1 or 2, not {qos!r}")
        data = bytes(payload)
        kind = row_kind(topic, retain)
        with self._lock:
            with self._transaction() as conn:
                dropped = 0
                excess = self._count + 1 - self.max_rows
                if excess > 0:
                    dropped = self._evict(conn, excess)
                    if dropped < excess:
                        raise OutboxFull(
                            f"outbox {self.path} is full ({self._count} rows, all retained)"
                        )
                cur = conn.execute(
                    "INSERT INTO outbox (topic, payload, retain, qos, kind, enqueued_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (topic, data, int(bool(retain)), qos, kind, time.time()),
                )
            self._count += 1 - dropped
            row_id = cur.lastrowid
        if dropped:
            log.warning(
                "outbox full: dropped oldest non-retained messages",
                extra={"outbox": str(self.path), "dropped": dropped, "max_rows": self.max_rows},
            )
        assert row_id is not None
        return int(row_id)

    def _evict(self, conn: sqlite3.Connection, n: int) -> int:
        # (kind, id) index: the oldest state reports first, then other non-retained rows.
        ids = [
            r[0]
            for r in conn.execute(
                "SELECT id FROM outbox WHERE kind < ? ORDER BY kind, id LIMIT ?",
                (KIND_RETAINED, n),
            )
        ]
        if len(ids) < n:
            return 0
        self._delete(conn, ids)
        conn.execute("UPDATE outbox_meta SET value = value + ? WHERE key = 'dropped'", (n,))
        return n

    @staticmethod
    def _delete(conn: sqlite3.Connection, ids: list[int]) -> int:
        deleted = 0
        for i in range(0, len(ids), _ACK_CHUNK):
            chunk = ids[i : i + _ACK_CHUNK]
            marks = ",".join("?" * len(chunk))
            deleted += conn.execute(f"DELETE FROM outbox WHERE id IN ({marks})", chunk).rowcount
        return deleted

    def ack(self, ids: Iterable[int]) -> int:
        """Delete the given rows (sent and acknowledged). Unknown ids are ignored.
        Returns how many rows were deleted."""
        wanted = sorted({int(i) for i in ids})
        if not wanted:
            return 0
        with self._lock:
            with self._transaction() as conn:
                deleted = self._delete(conn, wanted)
            self._count -= deleted
        return deleted

    def remove(self, item_id: int) -> bool:
        return self.ack([item_id]) == 1

    # -- reading ----------------------------------------------------------------------
    def peek(self, limit: int = 100, *, after: int = 0) -> list[Item]:
        """Up to ``limit`` rows with an id greater than ``after``, oldest first."""
        if limit <= 0:
            return []
        with self._lock:
            rows = (
                self._require_open()
                .execute(
                    "SELECT id, topic, payload, retain, qos, enqueued_at FROM outbox "
                    "WHERE id > ? ORDER BY id LIMIT ?",
                    (after, limit),
                )
                .fetchall()
            )
        return [Item(r[0], r[1], bytes(r[2]), bool(r[3]), r[4], r[5]) for r in rows]

    def last_id(self) -> int:
        """The id of the newest row ever written (0 for a new outbox)."""
        with self._lock:
            row = (
                self._require_open()
                .execute("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'")
                .fetchone()
            )
        return int(row[0]) if row else 0

    @property
    def dropped(self) -> int:
        """Rows dropped by the bound policy over the life of this file."""
        with self._lock:
            row = (
                self._require_open()
                .execute("SELECT value FROM outbox_meta WHERE key = 'dropped'")
                .fetchone()
            )
        return int(row[0])

    def __len__(self) -> int:
        # Kept in memory: COUNT(*) walks the whole table, and this object is the only
        # writer of its file.
        return self._count

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, committed on success (caller holds the lock)."""
        conn = self._require_open()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise

    # -- lifecycle --------------------------------------------------------------------
    def _require_open(self) -> sqlite3.Connection:
        if self._conn is None:
            raise OutboxClosed(f"outbox {self.path} is closed")
        return self._conn

    @property
    def closed(self) -> bool:
        return self._conn is None

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Outbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
