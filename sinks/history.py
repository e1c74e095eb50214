"""The history sink: Kafka events -> PostgreSQL/TimescaleDB, for analysts (docs/history.md).

Per process, two threads:
  consumer thread: consume a batch (read_committed) -> decode and turn each event into
  rows (``sinks.history_rows``, pure) -> hand the batch to the writer (a queue of one, so the next
  batch is decoded while PostgreSQL works) -> commit the offsets of stored batches;
  writer thread: COPY the rows into TEMP staging tables -> history.merge_stage() moves them
  into the history tables with INSERT ... ON CONFLICT DO NOTHING on natural keys (and
  maintains the native roll-ups) -> PostgreSQL COMMIT -> report the batch as stored.
Offsets are only committed by the consumer thread (librdkafka's commit must not race its
own consume) and only for batches PostgreSQL has committed, in order.

Offsets are committed only after PostgreSQL has the rows, so a crash re-reads at most one
batch; the natural keys skip what is already there, so every row is stored exactly once.
When PostgreSQL is unreachable the batch is retried with backoff until it comes back.
A record that cannot be decoded, or whose rows PostgreSQL refuses (found by splitting the
batch), goes to homestream.deadletter with the reason and the sink carries on.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import faulthandler
import json
import logging
import queue
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runtime import kafka
from runtime.cli import command_line
from runtime.config import Settings
from runtime.metrics import ServiceMetrics, snapshot
from runtime.service import first_line, retry_while_running, stop_on_signals
from sinks import history_schema as schema
from sinks.history_rows import PARTITION_FUTURE_DAYS, STAGES, Row, partition_days, rows_for
from topics import catalogue as t

log = logging.getLogger("homestream.sinks.history")

GROUP = "homestream-history"
TOPICS = (
    t.STATE_CHANGES,
    t.DEVICE_EVENTS,
    t.COMMANDS_STATUS,
    t.NOTIFICATIONS,
    t.DEVICE_AVAILABILITY,
    t.DEVICE_REGISTRY,
    t.COMMANDS_REQUESTED,  # who sent each command (the logbook)
    t.AUTOMATIONS_RUNS,
)


# -- the sink process --------------------------------------------------------------------
@dataclass
class Item:
    """One consumed Kafka record and the rows it became."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    rows: list[tuple[str, Row]]
    timestamp_ms: int = 0


@dataclass
class Batch:
    items: list[Item] = field(default_factory=list)
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    dead: int = 0

    def staged(self) -> dict[str, list[Row]]:
        out: dict[str, list[Row]] = {s: [] for s in STAGES}
        for item in self.items:
            for stage, row in item.rows:
                out[stage].append(row)
        return out


class PostgresDown(Exception):
    pass


class HistorySink:
    def __init__(
        self,
        settings: Settings,
        *,
        name: str = "history-1",
        group: str = GROUP,
        batch_size: int = 5000,
        max_wait: float = 0.1,
        metrics_port: int | None = None,
        backoff: tuple[float, float] = (0.5, 15.0),
        maintenance_interval: float = 3600.0,
    ):

        from topics.codec import make_codec
        from topics.schemas import SchemaStore

        self.settings = settings
        self.name = name
        self.group = group
        self.batch_size = batch_size
        self.max_wait = max_wait
        self.metrics_port = metrics_port
        self.backoff = backoff
        self.maintenance_interval = maintenance_interval
        self.codec = make_codec(SchemaStore(), settings.schema_registry_url)
        self.counters: Counter[str] = Counter()
        self.running = True
        self.pg_up = False
        self.metrics = ServiceMetrics(
            {"sink": "history", "worker": name},
            "homestream_sink_up",
            "1 while the sink is connected to PostgreSQL (its readiness, GET /ready).",
            ready=lambda: self.pg_up,
        )
        self.metrics.outcomes(
            "homestream_sink_events_total",
            "History sink counters by outcome (consumed_<record>, rows_<table> inserted, "
            "duplicates_<table> skipped, batches, pg_retries, dead_letter_<reason>, ...).",
            self.counters,
        )
        # Observed by the writer thread only.
        self.lag = self.metrics.fast_histogram(
            "homestream_sink_lag_seconds",
            "A record's Kafka timestamp to the commit of its rows in PostgreSQL.",
        )
        self.conn: Any = None
        self.engine = "native"
        self._days_ready: set[dt.date] = set()
        self._next_maintenance = 0.0
        self._stop_event = threading.Event()
        self._queue: queue.Queue[Batch | None] = queue.Queue(maxsize=1)
        self._writer_error: BaseException | None = None
        self._dead_lock = threading.Lock()
        self._done: dict[tuple[str, int], int] = {}
        self._done_lock = threading.Lock()
        self.consumer = kafka.consumer(
            settings,
            group,
            {
                "client.id": name,
                # A PostgreSQL outage holds a batch without polling: stay in the group
                # for a while (after that the group moves on; nothing is lost either way).
                "max.poll.interval.ms": 1_800_000,
                "fetch.max.bytes": 16 * 1024 * 1024,
            },
        )
        self.producer = kafka.producer(settings)

    # -- life cycle ----------------------------------------------------------------------
    def run(self) -> int:
        """Consume and build batches here; a writer thread stores them and commits the
        offsets in order, so decoding the next batch overlaps PostgreSQL's work."""
        stop_on_signals(self.stop)
        if self.metrics_port:
            self.metrics.serve(self.settings.host, self.metrics_port)
        self.counters["started"] = 1
        if not self._connect_with_retry():
            return 0
        self._maintenance()
        writer = threading.Thread(target=self._writer_loop, name="pg-writer", daemon=True)
        writer.start()
        self.consumer.subscribe(list(TOPICS), on_revoke=self._on_revoke)
        log.info(
            "history sink %s started", self.name, extra={"group": self.group, "engine": self.engine}
        )
        try:
            while self.running and writer.is_alive():
                msgs = self.consumer.consume(self.batch_size, timeout=self.max_wait)
                if msgs:
                    self._enqueue(self.build(msgs))
                self.commit_stored()
        finally:
            self._enqueue(None)
            writer.join()
            self.commit_stored()
            self.consumer.close()
            self.producer.flush(10)
            if self.conn is not None:
                self.conn.close()
            log.info("history sink %s stopped", self.name, extra=snapshot(self.counters))
        if self._writer_error is not None:
            raise SystemExit(f"history sink writer failed: {self._writer_error}")
        return 0

    def _enqueue(self, batch: Batch | None) -> None:
        while True:
            try:
                self._queue.put(batch, timeout=0.5)
                return
            except queue.Full:
                self.commit_stored()

    def _on_revoke(self, consumer: Any, partitions: list[Any]) -> None:
        # Store and commit what was read from these partitions before they move.
        self._queue.join()
        self.commit_stored()

    def _writer_loop(self) -> None:
        abandoned = False
        try:
            while True:
                try:
                    batch = self._queue.get(timeout=1.0)
                except queue.Empty:
                    if self.pg_up and time.monotonic() >= self._next_maintenance:
                        self._maintenance()
                    continue
                try:
                    if batch is None:
                        return
                    if abandoned:
                        continue  # after an uncommitted batch nothing later may commit
                    if self.write(batch):
                        self.stored(batch)
                    else:
                        abandoned = True
                finally:
                    self._queue.task_done()
                if self.pg_up and time.monotonic() >= self._next_maintenance:
                    self._maintenance()
        except BaseException as exc:  # stop the sink rather than skip a batch
            log.exception("history sink writer failed")
            self._writer_error = exc
            self.running = False
            while True:  # unblock the consumer thread
                try:
                    self._queue.get_nowait()
                    self._queue.task_done()
                except queue.Empty:
                    break

    def stop(self) -> None:
        self.running = False
        self._stop_event.set()

    # -- PostgreSQL ----------------------------------------------------------------------
    def _connect(self) -> None:
        import psycopg

        self.conn = psycopg.connect(
            self.settings.pg_dsn(), application_name=f"homestream-{self.name}"
        )
        self.engine = schema.engine(self.conn)
        schema.open_stage(self.conn)
        if not self.pg_up:
            log.info("connected to PostgreSQL", extra={"engine": self.engine})
        self.pg_up = True
        self._days_ready.clear()

    def _disconnect(self) -> None:
        self.pg_up = False
        if self.conn is not None:
            with contextlib.suppress(Exception):  # a broken connection: nothing to save
                self.conn.close()
        self.conn = None

    def _sleep(self, seconds: float) -> None:
        self._stop_event.wait(seconds)

    def _connect_with_retry(self) -> bool:
        def connect() -> bool:
            self._connect()
            return True

        def failed(_exc: BaseException, _delay: float) -> None:
            self._disconnect()
            self.counters["pg_retries"] += 1

        connected = retry_while_running(
            connect,
            running=lambda: self.running,
            retry_on=lambda exc: isinstance(exc, Exception),  # unreachable, or no schema yet
            log=log,
            what="connecting to PostgreSQL",
            first=self.backoff[0],
            longest=self.backoff[1],
            on_retry=failed,
            sleep=self._sleep,
        )
        return bool(connected)

    def _maintenance(self) -> None:
        """Partitions for the days around today and retention (native engine)."""
        import psycopg

        self._next_maintenance = time.monotonic() + self.maintenance_interval
        if self.engine != "native":
            return
        today = dt.datetime.now(dt.UTC).date()
        try:
            days = {today + dt.timedelta(days=d) for d in range(-1, PARTITION_FUTURE_DAYS + 1)}
            schema.ensure_partitions(self.conn, days)
            self._days_ready |= days
            dropped = schema.apply_retention(self.conn)
            if dropped:
                log.info("retention dropped %s partitions", dropped)
        except psycopg.Error as exc:
            log.warning("maintenance failed (%s); will try again", first_line(exc))
            self._next_maintenance = time.monotonic() + 30
            try:
                self.conn.rollback()
            except psycopg.Error:
                self._disconnect()

    # -- processing ----------------------------------------------------------------------
    def build(self, msgs: list[Any]) -> Batch:

        from topics.errors import CodecError

        batch = Batch()
        for msg in msgs:
            if kafka.consume_error(msg):
                continue
            batch.offsets[(msg.topic(), msg.partition())] = msg.offset() + 1
            value = msg.value()
            if value is None:  # a tombstone on a compacted topic
                continue
            item = Item(
                msg.topic(),
                msg.partition(),
                msg.offset(),
                msg.key(),
                value,
                [],
                msg.timestamp()[1],
            )
            try:
                decoded = self.codec.decode(value)
                item.rows = rows_for(decoded.name, decoded.record, msg.offset())
                self.counters[f"consumed_{decoded.name}"] += 1
            except CodecError as exc:
                self.dead_letter(item, exc)
                batch.dead += 1
                continue
            except Exception as exc:  # a record our row builder cannot handle
                log.warning("cannot build rows for %s@%s: %s", msg.topic(), msg.offset(), exc)
                self.dead_letter(item, exc)
                batch.dead += 1
                continue
            batch.items.append(item)
        return batch

    def write(self, batch: Batch) -> bool:
        """Store the batch's rows; retries until PostgreSQL takes them. False if stopped."""
        import psycopg

        if not any(item.rows for item in batch.items):
            return True
        transient = (
            psycopg.OperationalError,
            psycopg.InterfaceError,
            psycopg.InternalError,
            psycopg.ProgrammingError,
            schema.SchemaMissing,
            PostgresDown,
        )
        attempts = 0

        def store() -> bool:
            if self.conn is None:
                self._connect()
            self._write_items(batch.items)
            return True

        def failed(_exc: BaseException, _delay: float) -> None:
            nonlocal attempts
            attempts += 1
            self.counters["pg_retries"] += 1
            self._disconnect()

        stored = retry_while_running(
            store,
            running=lambda: self.running,
            retry_on=lambda exc: isinstance(exc, transient),
            log=log,
            what="PostgreSQL write",  # the batch is kept and written again
            first=self.backoff[0],
            longest=self.backoff[1],
            on_retry=failed,
            sleep=self._sleep,
        )
        if stored is None:
            log.warning(
                "stopping: %s records left uncommitted, re-read on restart", len(batch.items)
            )
            return False
        if attempts:
            log.info("PostgreSQL is back: batch stored after %s retries", attempts)
        return True

    def _write_items(self, items: list[Item]) -> None:
        """One transaction for these items; on a data error, split to find the bad one."""
        import psycopg

        conn = self.conn
        rows = [r for item in items for r in item.rows]
        if self.engine == "native":
            today = dt.datetime.now(dt.UTC).date()
            missing = partition_days(rows, today) - self._days_ready
            if missing:
                schema.ensure_partitions(conn, missing)
                self._days_ready |= missing
        staged: dict[str, list[Row]] = {}
        for stage, row in rows:
            staged.setdefault(stage, []).append(row)
        try:
            result = schema.copy_and_merge(conn, staged)
            conn.commit()
        except (psycopg.DataError, psycopg.IntegrityError) as exc:
            conn.rollback()
            if len(items) == 1:
                log.warning(
                    "PostgreSQL refused %s@%s/%s: %s",
                    items[0].topic,
                    items[0].partition,
                    items[0].offset,
                    first_line(exc),
                )
                self.dead_letter(items[0], exc)
                return
            half = len(items) // 2
            self._write_items(items[:half])
            self._write_items(items[half:])
            return
        now = time.time()
        for item in items:
            if item.timestamp_ms > 0:
                self.lag.observe(max(0.0, now - item.timestamp_ms / 1000))
        for tbl, (n_staged, n_inserted) in result.items():
            if n_staged:
                self.counters[f"rows_{tbl}"] += n_inserted
                self.counters[f"duplicates_{tbl}"] += n_staged - n_inserted

    def stored(self, batch: Batch) -> None:
        """The writer stored ``batch``: its offsets may be committed (by the consumer's
        thread, ``commit_stored``; librdkafka's commit must not race its consume)."""
        with self._done_lock:
            for tp, offset in batch.offsets.items():
                self._done[tp] = max(offset, self._done.get(tp, 0))
            self.counters["batches"] += 1

    def commit_stored(self) -> None:
        """Commit the offsets of every stored batch (consumer thread only)."""
        from confluent_kafka import KafkaException, TopicPartition

        with self._done_lock:
            done, self._done = self._done, {}
        if not done:
            return
        if len(self.producer):
            left = self.producer.flush(30)
            if left:  # never commit past a dead letter Kafka does not have
                raise SystemExit(f"{left} dead letters not delivered to Kafka; restart the sink")
        offsets = [TopicPartition(tp, p, o) for (tp, p), o in done.items()]
        try:
            self.consumer.commit(offsets=offsets, asynchronous=False)
            self.counters["commits"] += 1
        except KafkaException as exc:
            # E.g. the group moved on during a long PostgreSQL outage: the new owner
            # re-reads these records and the natural keys skip them.
            self.counters["commit_failed"] += 1
            log.warning("offset commit failed (%s); records will be re-read", exc)

    def dead_letter(self, item: Item, exc: Exception) -> None:
        from runtime.deadletter import input_dead_letter

        home, record = input_dead_letter(
            item.topic,
            item.partition,
            item.offset,
            item.key,
            item.value,
            exc,
            int(time.time() * 1000),
        )
        record["processor"] = "history-sink"
        record["error_detail"] = f"{type(exc).__name__}: {first_line(exc)}"[:2000]
        with self._dead_lock:  # called from the consumer and the writer thread
            self.counters[f"dead_letter_{record['reason']}"] += 1
            value = self.codec.encode("DeadLetter", record)
            kafka.produce_to_home(self.producer, self.settings, t.DEADLETTER, home, value)
            self.producer.poll(0)


# -- process entry points ----------------------------------------------------------------
def sink_argv(
    data_dir: Path,
    metrics_port: int | None = None,
    *,
    name: str = "history-1",
    group: str | None = None,
) -> list[str]:
    """The command line of one history sink process (the launcher's and the tests')."""
    return command_line(
        "sink",
        "history",
        name=name,
        data_dir=data_dir,
        metrics_port=metrics_port or None,
        group=group or None,
    )


def run_sink(
    settings: Settings,
    *,
    name: str = "history-1",
    group: str = GROUP,
    metrics_port: int | None = None,
    loglevel: str = "info",
    data_dir: Path | None = None,
    batch_size: int = 5000,
    on_start: Callable[[HistorySink], None] | None = None,
) -> int:
    from runtime.logs import setup

    setup(loglevel, settings.log_format)
    faulthandler.register(signal.SIGUSR1)  # kill -USR1 <pid>: every thread's stack on stderr
    sink = HistorySink(
        settings, name=name, group=group, metrics_port=metrics_port, batch_size=batch_size
    )
    if on_start is not None:
        on_start(sink)
    code = sink.run()
    if data_dir is not None:  # the last counters, for post-mortems
        data_dir.mkdir(parents=True, exist_ok=True)
        (data_dir / "counters.json").write_text(json.dumps(dict(sink.counters), indent=1))
    return code
