"""Exactly-once stream worker on Kafka transactions (confluent-kafka), without Faust.

One loop per process:
  consume a batch (read_committed) -> fold each event (``streams.fold``) ->
  in ONE transaction: the outputs, the final value of every state key the batch
  changed (to the compacted changelog), and the batch's input offsets.
Either all of it commits or none of it does. The changelog is the truth; each
partition's state also lives in a local RocksDB copy (``streams.localstate``) that
holds committed state only, with the changelog offset it reaches. When a partition
is assigned, the copy is brought up to date from that offset (read_committed), or
rebuilt from the start when it cannot be, so state, outputs and offsets always agree.

Partitions: the inputs and the changelog have the same partition count and the
range assignor gives one consumer the same partition numbers of every topic, so a
worker owns all of a home's inputs and state (``topics.partitioning``).
"""

from __future__ import annotations

import gc
import logging
import time
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    TopicPartition,
)

from domain.lifecycle import FINAL
from runtime import kafka
from runtime.config import Settings
from runtime.deadletter import message_dead_letter
from runtime.metrics import ServiceMetrics
from runtime.service import stop_on_signals
from streams.due import DueIndex
from streams.fold.config import ProcessorConfig
from streams.fold.context import TOMBSTONE
from streams.fold.dispatch import Fold
from streams.fold.store import DictStore
from streams.localstate import Checkpoint, RocksPartition, usable_checkpoint
from topics import catalogue as t
from topics import jsontext, trace
from topics.catalogue import TopicSpec
from topics.codec import make_codec
from topics.errors import CodecError
from topics.schemas import SchemaStore

log = logging.getLogger("homestream.streams")

GROUP = "homestream-streams"
# The workers' own state changelog: internal, JSON values (not an event, so not in
# the Avro catalogue); the worker creates it, compacted, on start.
CHANGELOG = "homestream.streams.state"


def changelog_spec(partitions: int) -> TopicSpec:
    """The workers' state changelog: each worker makes sure it exists, and so does the
    launcher before any worker starts (a cluster's brokers learn a new topic a little later)."""
    return TopicSpec(
        CHANGELOG, "home_id/device_id", partitions, "compact", None, (), "stream worker state"
    )


# The changelog is created with the broker's delete.retention.ms (24 h): a local copy
# older than this may have missed a deletion and is rebuilt instead.
LOCAL_STATE_MAX_AGE_MS = 12 * 3600 * 1000


# A partition with no input for this long is taken to be caught up with its topics.
QUIET_MS = 2_000
# Commands timed for homestream_command_latency_seconds at once (an unanswered one is
# forgotten, oldest first, beyond this).
MAX_TIMED_COMMANDS = 50_000


def tick_time(
    wall_ms: int,
    input_seen: Mapping[str, tuple[int, int]],
    assigned_ms: int,
    quiet_ms: int = QUIET_MS,
) -> int | None:
    """The time a partition's tick carries, or None for no tick yet.

    Ticks judge silence and command deadlines. A worker catching up on a backlog (after
    a restart, or when it falls behind) must judge them at the time its input has
    reached, not by the wall clock: otherwise every device whose newer reports still
    wait in the backlog looks silent, goes offline with a notification, and comes back.

    ``input_seen`` maps each input topic to (wall ms when the partition's last input
    from it was processed, the newest Kafka timestamp in that input). The tick runs as
    late as the most delayed topic that still has input; a topic quiet for ``quiet_ms``
    is caught up. A partition just assigned waits that long for its first input.
    """
    delays = [
        max(0, processed - newest)
        for processed, newest in input_seen.values()
        if wall_ms - processed < quiet_ms
    ]
    if not input_seen and wall_ms - assigned_ms < quiet_ms:
        return None
    return wall_ms - max(delays, default=0)


# No transactional call may block forever (librdkafka's default): a broker lost mid-call
# left a worker blocked in one past max.poll.interval.ms (the cluster test), deaf to SIGTERM.
TXN_CALL_TIMEOUT_S = 30.0


class PartitionStore:
    """The fold's view of one partition during a batch: remembers which keys the
    batch changed, and keeps the partition's DueIndex (which homes a tick has work for)
    current. The state behind it is RocksDB (a worker) or a dict (tests)."""

    def __init__(
        self, backing: RocksPartition | dict[str, dict[str, Any]], due: DueIndex | None = None
    ):
        self.backing = DictStore(backing) if isinstance(backing, dict) else backing
        self.dirty: set[str] = set()
        self.due = due
        self.get = self.backing.get  # the hot path: no hop through a method of ours

    @property
    def data(self) -> dict[str, dict[str, Any]]:
        assert isinstance(self.backing, DictStore), "a dict-backed store only"
        return self.backing.data

    def put(self, key: str, value: dict[str, Any] | None) -> None:
        self.backing.put(key, value)
        self.dirty.add(key)
        if self.due is not None:
            self.due.update(key, value)

    def homes(self) -> Iterable[str]:
        return self.backing.homes()

    def due_homes(self, last_tick: int, now: int) -> Iterable[str]:
        return self.homes() if self.due is None else self.due.due(last_tick, now)


# topic, home key, encoded event (None: tombstone), headers (a command's: topics.trace)
Output = tuple[str, str, bytes | None, trace.Headers | None]


class Batch:
    """One consumed batch, folded: what its transaction writes."""

    def __init__(self, group_metadata: Any) -> None:
        self.group_metadata = group_metadata
        self.offsets: dict[tuple[str, int], int] = {}  # (topic, partition) -> next offset
        self.stores: dict[int, PartitionStore] = {}
        self.outputs: list[Output] = []
        self.writes: dict[int, dict[str, bytes | None]] = {}  # the changed keys' values
        self.changed_at: list[int] = []  # Kafka timestamps of reports that changed state
        self.fold_s = 0.0


class Timings(NamedTuple):
    offsets_s: float
    produce_s: float
    commit_s: float


class TxWorker:
    def __init__(
        self,
        settings: Settings,
        name: str,
        *,
        config: ProcessorConfig | None = None,
        data_dir: Path | None = None,
        cache_keys: int | None = None,
        batch_size: int = 500,
        tick_interval: float = 1.0,
        metrics_port: int | None = None,
    ):
        self.settings = settings
        self.name = name
        self.batch_size = batch_size
        self.tick_interval = tick_interval
        self.codec = make_codec(SchemaStore(), settings.schema_registry_url)
        self.fold = Fold(PartitionStore({}), config)
        # RocksDB files are per worker name: a restarted worker finds its own again.
        self.data_dir = data_dir or settings.state_dir / "streams" / name
        # Decoded state values kept in memory, over all partitions; the rest is read from
        # RocksDB when needed. ~3-4 KB per device decoded (bench/local_state.py).
        keys = settings.streams_cache_keys if cache_keys is None else cache_keys
        self.cache_keys = max(1, keys // max(1, settings.partitions))
        self.state: dict[int, RocksPartition] = {}  # the partitions this worker owns
        self.due: dict[int, DueIndex] = {}  # per partition, derived from self.state
        self.changelog_id = ""  # the changelog topic's id, which checkpoints name
        # Per partition: the next changelog offset after this worker's delivered writes.
        self.changelog_next: dict[int, int] = {}
        # Per partition, for tick_time: per input topic, (wall ms, newest Kafka timestamp)
        # of the last batch with input from it; and when the partition was assigned.
        self.input_seen: dict[int, dict[str, tuple[int, int]]] = {}
        self.assigned_ms: dict[int, int] = {}
        self.ready = False  # the first assignment is restored
        self.restoring = 0
        self.running = True
        self.metrics_port = metrics_port
        self.metrics = worker_metrics(self)
        self.txn_seconds = self.metrics.histogram(
            "homestream_streams_transaction_seconds",
            "One batch's transaction: offsets, processing, commit and the local state's write.",
        )
        self.report_to_commit = self.metrics.fast_histogram(
            "homestream_streams_report_to_commit_seconds",
            "A device report's Kafka timestamp (the bridge produced it) to the commit of the "
            "transaction holding the StateChange it caused.",
        )
        # The design brief's buckets (seconds): command sent -> the device's ack or report.
        self.command_seconds = self.metrics.fast_histogram(
            "homestream_command_latency_seconds",
            "A command's request (issued_at) to the hub's final ack or the report that "
            "completed it, in the events' own times; commands this worker dispatched.",
            (0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0),
        )
        self.scene_seconds = self.metrics.fast_histogram(
            "homestream_scene_execution_seconds",
            "A scene run's request to its final status (SceneRun.execution_time_ms).",
            (0.5, 1.0, 2.0, 5.0, 10.0, 30.0),
        )
        self.in_flight: dict[str, int] = {}  # command id -> issued_at (ms), until it ends
        self.consumer = kafka.consumer(
            settings,
            GROUP,
            {
                # range: the same partition numbers of every input for one consumer.
                "partition.assignment.strategy": "range",
                "max.poll.interval.ms": 120_000,
                # Under load, let the broker gather up to 2 ms of input per fetch instead of
                # answering every single append: fewer requests on a broker that shares the
                # cores. Idle, a lone event waits those 2 ms (5 ms cost the command round
                # trip ~7 ms at p50; 1 byte, Kafka's default, cost ~20 ms at p99 under load).
                "fetch.wait.max.ms": settings.streams_fetch_wait_ms,
                "fetch.min.bytes": 100_000,
            },
        )
        self.producer = kafka.producer(
            settings,
            {
                # One transactional id per worker name: a restarted worker fences its
                # dead predecessor and aborts whatever it left open.
                "transactional.id": f"{GROUP}-{name}",
                "transaction.timeout.ms": 10_000,
                "linger.ms": 0,
                # The coordinator answers CONCURRENT_TRANSACTIONS while it is still writing
                # the previous commit's markers, which is nearly every time when batches
                # follow each other closely. librdkafka then waits retry.backoff.ms before
                # asking again: its default of 100 ms was most of our p99. Doubles up to 1 s.
                "retry.backoff.ms": settings.streams_retry_backoff_ms,
                "retry.backoff.max.ms": 1_000,
            },
        )
        self.tick_producer = kafka.producer(settings, {"linger.ms": 0})

    # -- life cycle --------------------------------------------------------------------
    def run(self) -> None:
        stop_on_signals(self.stop)
        self._ensure_changelog()
        if self.metrics_port:
            self.metrics.serve(self.settings.host, self.metrics_port)
        self.producer.init_transactions(30)
        self.consumer.subscribe(
            list(self.fold.input_topics), on_assign=self._on_assign, on_revoke=self._on_revoke
        )
        log.info("worker %s started", self.name)
        if self.settings.streams_gc_tuning:
            # The state is many long-lived dicts without reference cycles: a full cyclic
            # collection walking all of them stalls the loop for tens of ms (p99 latency).
            # Collect young garbage less often, and move what survived into the permanent
            # generation now and then; refcounting still frees it when it is replaced.
            gc.set_threshold(50_000, 50, 100)
        next_tick = next_freeze = time.monotonic()
        try:
            while self.running:
                msgs = self._next_batch(max(0.0, min(next_tick - time.monotonic(), 0.1)))
                if msgs:
                    self._process_batch(msgs)
                now = time.monotonic()
                if now >= next_tick and self.fold.timed:
                    self._tick()
                    next_tick = time.monotonic() + self.tick_interval
                if self.settings.streams_gc_tuning and now >= next_freeze:
                    gc.freeze()
                    next_freeze = now + 10.0
        finally:
            self.consumer.close()  # leaves the group: partitions move at once
            self.tick_producer.flush(5)
            for part in self.state.values():
                part.close()
            log.info("worker %s stopped", self.name)

    def _next_batch(self, idle_timeout: float) -> list:
        """Group commit: whatever arrived while the last transaction ran, at once.

        Only when nothing is waiting does the loop block, for the first message (or
        until ``idle_timeout``), and takes whatever came with it. Outputs become readable
        (read_committed) only when the transaction commits, so any timer would be latency:
        under load the batch is what queued during one transaction."""
        msgs = self.consumer.consume(self.batch_size, timeout=0)
        if msgs:
            return msgs
        first = self.consumer.poll(idle_timeout)
        if first is None:
            return []
        return [first, *self.consumer.consume(self.batch_size - 1, timeout=0)]

    def stop(self) -> None:
        self.running = False

    def _ensure_changelog(self) -> None:
        from topics.admin import ensure_topics

        spec = changelog_spec(self.settings.partitions)
        rf, isr = self.settings.kafka_replication
        for name, outcome in ensure_topics(
            self.settings.kafka_bootstrap, [spec], replication_factor=rf, min_insync_replicas=isr
        ):
            if outcome not in ("created", "exists"):
                raise SystemExit(f"cannot use the state changelog {name}: {outcome}")
        from confluent_kafka import TopicCollection
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": self.settings.kafka_bootstrap})
        deadline = time.monotonic() + 60
        while True:  # a topic just created takes a moment to be known everywhere
            try:
                found = admin.describe_topics(TopicCollection([CHANGELOG]))[CHANGELOG].result(30)
                break
            except KafkaException as exc:
                if time.monotonic() > deadline:
                    raise SystemExit(f"cannot describe the state changelog: {exc}") from exc
                time.sleep(0.5)
        self.changelog_id = str(found.topic_id)

    # -- rebalancing -------------------------------------------------------------------
    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        todo = sorted({tp.partition for tp in partitions} - set(self.state))
        self.restoring = len(todo)
        self._await_stable_offsets(consumer, todo)
        for p in todo:
            self._load(p)
            self.restoring -= 1
        for p in todo:  # from now on it can read input (tick_time)
            self.assigned_ms[p] = _wall_ms()
        self.ready = True
        log.info("worker %s owns partitions %s", self.name, sorted(self.state))

    def _await_stable_offsets(self, consumer: Consumer, parts: list[int]) -> None:
        """Wait until no transaction of a previous owner is pending on these partitions'
        offsets. A worker that stalled between sending its offsets and committing may
        still commit after losing the partitions; restoring before that commit lands
        would miss its state. Read committed, the offset fetch waits for it (KIP-447)."""
        if not parts:
            return
        try:
            consumer.committed(
                [TopicPartition(topic, p) for topic in self.fold.input_topics for p in parts],
                timeout=30,
            )
        except KafkaException as exc:  # restore anyway: this is a guard, not a need
            log.warning("could not check for pending offsets before restoring: %s", exc)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Batches commit before the next consume(), so nothing is open here. The local
        # copy stays on disk: if the partition comes back, only what its other owner
        # wrote meanwhile is replayed.
        for p in {tp.partition for tp in partitions}:
            part = self.state.pop(p, None)
            if part is not None:
                part.close()
            self.changelog_next.pop(p, None)
            self.due.pop(p, None)
            self.input_seen.pop(p, None)
            self.assigned_ms.pop(p, None)

    def _load(self, p: int) -> None:
        """Bring partition ``p``'s local state up to date with the changelog (opening it
        first if need be); its DueIndex follows lazily."""
        part = self.state.get(p)
        if part is None:
            path = self.data_dir / f"partition-{p}"
            try:
                part = RocksPartition(path, self.cache_keys)
            except Exception as exc:  # rocksdict raises plain Exception (e.g. its LOCK)
                raise SystemExit(
                    f"cannot open the worker's state at {path}: {exc}. Is another worker "
                    f"named {self.name!r} running? Names must be unique per machine."
                ) from exc
            self.state[p] = part
        self._restore(p, part)
        self.due.pop(p, None)

    def _due_index(self, p: int) -> DueIndex:
        idx = self.due.get(p)
        if idx is None:  # after a restore: derived from the state once
            idx = self.due[p] = DueIndex(self.fold.config.scan_interval_ms)
            idx.rebuild(self.state[p].home_items())
        return idx

    def _restore(self, partition: int, part: RocksPartition) -> None:
        """Replay the changelog into the local copy, from its checkpoint if that is
        usable, else from the start: committed records only, to the end."""
        restorer = kafka.consumer(
            self.settings,
            f"{GROUP}-restore-{uuid.uuid4().hex}",  # assigned, never joined
            {
                "enable.partition.eof": True,
                # At the end the broker would hold an empty fetch this long (500 ms by
                # default) before the end-of-partition event: per partition, per restore.
                "fetch.wait.max.ms": 10,
                "statistics.interval.ms": 0,  # a throwaway group: no lag to show
            },
        )
        started = time.monotonic()
        next_note, records = started + 5.0, 0
        part.rollback()
        try:
            low, high = restorer.get_watermark_offsets(
                TopicPartition(CHANGELOG, partition), timeout=30
            )
            checkpoint = part.checkpoint
            why = usable_checkpoint(
                checkpoint,
                topic_id=self.changelog_id,
                low=low,
                high=high,
                now_ms=_wall_ms(),
                max_age_ms=LOCAL_STATE_MAX_AGE_MS,
            )
            if why is None and checkpoint is not None:
                start = checkpoint.offset
            else:
                start = OFFSET_BEGINNING
                if checkpoint is not None:
                    log.info("partition %s: rebuilding its local state: %s", partition, why)
                part.wipe()
            restorer.assign([TopicPartition(CHANGELOG, partition, start)])
            position, done = start, False
            while not done:
                chunk: list[tuple[bytes, bytes | None]] = []
                for msg in restorer.consume(10_000, timeout=0.05):
                    err = msg.error()
                    if err is not None:
                        if err.code() == KafkaError._PARTITION_EOF:
                            position, done = msg.offset() or 0, True
                            break
                        raise KafkaException(err)
                    chunk.append((msg.key() or b"", msg.value()))
                records += part.replay(chunk)
                if time.monotonic() >= next_note:  # long restores show progress
                    next_note = time.monotonic() + 5.0
                    log.info(
                        "partition %s: restoring, %s changelog records read", partition, records
                    )
            if position >= 0:  # the EOF's offset: where the copy now stands
                part.commit({}, Checkpoint(position, _wall_ms(), self.changelog_id))
        finally:
            restorer.close()
        log.info(
            "partition %s: local state brought up to date from %s with %s changelog "
            "records in %.2fs",
            partition,
            "its checkpoint" if start != OFFSET_BEGINNING else "the start",
            records,
            time.monotonic() - started,
        )

    # -- processing --------------------------------------------------------------------
    def _process_batch(self, msgs: list) -> None:
        """Fold a batch, then commit it in one transaction.

        One thread does both. Folding batch N+1 on a second thread while batch N commits
        was measured (BENCHMARKS.md): N+1's transaction then opened while the coordinator
        still wrote N's markers, so its offsets took ~4x longer (CONCURRENT_TRANSACTIONS
        retries), and report -> command got no faster. The fold's time is when the
        coordinator finishes the last commit."""
        batch = self._fold_batch(msgs)
        try:
            timings = self._transact(batch)
        except KafkaException as exc:
            self._recover(exc, set(batch.stores))
            return
        self._finish(batch, timings)

    def _fold_batch(self, msgs: list) -> Batch:
        """Fold each event into the state's cache; the outputs and the changed keys' final
        values are encoded here, ready for the transaction."""
        batch = Batch(self.consumer.consumer_group_metadata())
        newest: dict[tuple[int, str], int] = {}  # the newest input timestamp
        t0 = time.perf_counter()
        for msg in msgs:
            if not msg.error():
                batch.offsets[(msg.topic(), msg.partition())] = msg.offset() + 1
        stores = batch.stores
        for msg in msgs:
            if kafka.consume_error(msg):
                continue
            p = msg.partition()
            store = stores.get(p)
            if store is None:
                if p not in self.state:  # not assigned through _on_assign: load it
                    self._load(p)
                store = stores[p] = PartitionStore(self.state[p], self._due_index(p))
            if self._handle(msg, store, batch.outputs) and msg.topic() == t.DEVICE_REPORTS:
                batch.changed_at.append(msg.timestamp()[1])
            if msg.topic() != t.STREAM_TICKS:
                tp = (p, msg.topic())
                newest[tp] = max(newest.get(tp, 0), msg.timestamp()[1])
        processed_ms = _wall_ms()
        for (p, topic), ts in newest.items():
            self.input_seen.setdefault(p, {})[topic] = (processed_ms, ts)
        for p, store in stores.items():
            encoded = batch.writes[p] = {}
            for key in store.dirty:  # only each key's final value: less changelog
                value = store.get(key)
                encoded[key] = None if value is None else jsontext.encode(value)
        batch.fold_s = time.perf_counter() - t0
        return batch

    def _transact(self, batch: Batch) -> Timings:
        """The batch's one transaction: its input offsets, outputs and changelog writes."""
        t0 = time.perf_counter()
        self.producer.begin_transaction()
        # The offsets go first. While the coordinator still writes the last commit's
        # markers it answers CONCURRENT_TRANSACTIONS: librdkafka retries AddOffsetsToTxn
        # after retry.backoff.ms, but AddPartitionsToTxn (which the first produce() sends)
        # after a fixed 20 ms. Once the offsets are in, the transaction is open and adding
        # partitions no longer waits.
        self.producer.send_offsets_to_transaction(
            [TopicPartition(tp, p, o) for (tp, p), o in batch.offsets.items()],
            batch.group_metadata,
            TXN_CALL_TIMEOUT_S,
        )
        t1 = time.perf_counter()
        for topic, key, value, headers in batch.outputs:
            kafka.produce_to_home(self.producer, self.settings, topic, key, value, headers=headers)
        for p, encoded in batch.writes.items():
            for key, raw in encoded.items():
                self.producer.produce(
                    CHANGELOG,
                    key=key.encode(),
                    value=raw,
                    partition=p,
                    on_delivery=self._changelog_delivered,
                )
        t2 = time.perf_counter()
        self.producer.commit_transaction(TXN_CALL_TIMEOUT_S)  # delivery callbacks run in here
        return Timings(t1 - t0, t2 - t1, time.perf_counter() - t2)

    def _finish(self, batch: Batch, timings: Timings) -> None:
        """Committed: now, and only now, the local copies may have it."""
        t3 = time.perf_counter()
        wall = _wall_ms()
        for p, encoded in batch.writes.items():
            if not encoded:  # nothing changed, so the checkpoint did not move either
                self.state[p].trim()
                continue
            nxt = self.changelog_next.get(p)
            self.state[p].commit(
                encoded, None if nxt is None else Checkpoint(nxt, wall, self.changelog_id)
            )
        local_s = time.perf_counter() - t3
        # Where a batch's time goes (Prometheus counters; divide by `transactions`).
        c = self.fold.counters
        c["transactions"] += 1
        c["txn_offsets_us"] += int(timings.offsets_s * 1e6)
        c["txn_process_us"] += int((batch.fold_s + timings.produce_s) * 1e6)
        c["txn_commit_us"] += int(timings.commit_s * 1e6)
        c["txn_local_us"] += int(local_s * 1e6)
        self.txn_seconds.observe(timings.offsets_s + timings.produce_s + timings.commit_s + local_s)
        committed_s = wall / 1000
        for ts in batch.changed_at:
            self.report_to_commit.observe(max(0.0, committed_s - ts / 1000))

    def _changelog_delivered(self, err: Any, msg: Any) -> None:
        # Only this transaction's writes are in flight when commit_transaction serves
        # these, so the next offset after them is a safe checkpoint once it commits.
        if err is None:
            p = msg.partition()
            self.changelog_next[p] = max(self.changelog_next.get(p, 0), msg.offset() + 1)

    def _recover(self, exc: KafkaException, stores: set[int]) -> None:
        """The transaction failed: undo this batch in memory and in the consumer."""
        err = exc.args[0]
        log.warning("transaction failed (%s): rolling back the batch", err)
        if err.fatal():
            raise SystemExit(f"fatal Kafka error, restart the worker: {err}") from exc
        if err.txn_requires_abort() or err.retriable():
            # A retriable failure (a call that timed out) leaves the transaction open:
            # abort it too. If even that cannot finish, a fresh process is the way out:
            # under supervision it is back in seconds, and it fences this one.
            try:
                self.producer.abort_transaction(TXN_CALL_TIMEOUT_S)
            except KafkaException as again:
                raise SystemExit(
                    f"could not abort a failed transaction ({again.args[0]}): restart the worker"
                ) from again
        self.changelog_next.clear()  # deliveries of an aborted batch are no checkpoint
        for p in stores:  # the cache ran ahead of Kafka: drop it, replay what committed
            if p in self.state:
                self._load(p)
        committed = self.consumer.committed(self.consumer.assignment(), timeout=10)
        for tp in committed:
            self.consumer.seek(
                tp if tp.offset >= 0 else TopicPartition(tp.topic, tp.partition, OFFSET_BEGINNING)
            )

    def _handle(self, msg: Any, store: PartitionStore, out: list[Output]) -> bool:
        """Fold one input, its encoded outputs to ``out``; True when it emitted a
        StateChange."""
        self.fold.store = store
        if msg.value() is None:
            # A tombstone on a compacted input (a removed home): the record before it
            # already told the fold; compaction's delete marker has nothing to fold.
            return False
        try:
            decoded = self.codec.decode(msg.value())
        except CodecError as exc:
            self._emit_dead_letter(msg, exc, out)
            return False
        try:
            emits = self.fold.handle(decoded.name, decoded.record)
        except Exception as exc:  # never crash the worker on one event
            log.exception(
                "processing %s at %s[%s]@%s",
                decoded.name,
                msg.topic(),
                msg.partition(),
                msg.offset(),
            )
            self._emit_dead_letter(msg, exc, out)
            return False
        changed = False
        inbound = trace.header(msg.headers(), trace.CORRELATION)
        for e in emits:
            cid = trace.correlation_of(e.record) or inbound
            self._encode(out, e.topic, e.key, e.record_name, e.record, cid)
            changed = changed or e.topic == t.STATE_CHANGES
            if e.record_name in ("CommandDispatched", "CommandStatus", "SceneRun"):
                self._follow(e.record_name, e.record)
        return changed

    def _follow(self, name: str, record: dict[str, Any]) -> None:
        """A command's hop in the log (correlation_id: its id), its latency (its request's
        issued_at to the ack or report that ended it, in the events' own times), and a
        scene run's execution time, from the fold's outputs."""
        if name != "SceneRun":
            log.info(
                "command %s",
                "dispatched" if name == "CommandDispatched" else record.get("status"),
                extra={
                    "correlation_id": record.get("command_id"),
                    "home_id": record.get("home_id"),
                    "device_id": record.get("device_id"),
                    "worker": self.name,
                },
            )
        if name == "SceneRun":
            if record.get("execution_time_ms") is not None:
                self.scene_seconds.observe(record["execution_time_ms"] / 1000)
            return
        cid = str(record.get("command_id"))
        if name == "CommandDispatched":
            self.in_flight[cid] = int(record["issued_at"])
            if len(self.in_flight) > MAX_TIMED_COMMANDS:  # never answered: forget the oldest
                del self.in_flight[next(iter(self.in_flight))]
        elif record.get("status") in FINAL:
            issued = self.in_flight.pop(cid, None)
            if issued is not None:
                self.command_seconds.observe(max(0.0, (int(record["ts"]) - issued) / 1000))

    def _encode(
        self,
        out: list[Output],
        topic: str,
        key: str,
        record_name: str,
        record: dict[str, Any],
        correlation: str | None = None,
    ) -> None:
        try:
            value = (
                None
                if record_name == TOMBSTONE
                else self.codec.encode(record_name, record, trusted=True)
            )
        except CodecError as exc:  # a bug of ours: say so loudly, keep going
            log.error("cannot encode %s for %s: %s", record_name, topic, exc)
            self.fold.counters["encode_errors"] += 1
            return
        out.append((topic, key, value, trace.headers(correlation, self.name)))

    def _emit_dead_letter(self, msg: Any, exc: Exception, out: list[Output]) -> None:
        home, record = message_dead_letter(msg, exc, _wall_ms())
        self._encode(out, t.DEADLETTER, home, "DeadLetter", record)

    # -- time --------------------------------------------------------------------------
    def _tick(self) -> None:
        """Time passes, in the log: one tick per owned partition (plain producer)."""
        wall = _wall_ms()
        for p in sorted(self.state):
            now = tick_time(wall, self.input_seen.get(p, {}), self.assigned_ms.get(p, 0))
            if now is None:
                continue
            record = {"event_id": str(uuid.uuid4()), "home_id": "", "ts": now, "partition": p}
            self.tick_producer.produce(
                t.STREAM_TICKS,
                key=b"",
                value=self.codec.encode("StreamTick", record),
                partition=p,
            )
        self.tick_producer.poll(0)


def worker_metrics(worker: TxWorker) -> ServiceMetrics:
    """The worker's metrics: the fold's outcome counters and the worker's gauges, read
    when Prometheus scrapes; ready once its first assignment is restored."""
    m = ServiceMetrics(
        {"worker": worker.name},
        "homestream_streams_ready",
        "1 once the worker has restored the state of the partitions it was given and "
        "processes events.",
        ready=lambda: worker.ready,
    )
    m.outcomes(
        "homestream_streams_events_total",
        "Events handled by the stream worker, by outcome (reports, noop = dropped as "
        "unchanged, applied, parked, dead_letter_<reason>, command_<status>, ...; "
        "transactions and txn_<phase>_us: where a batch's time goes).",
        worker.fold.counters,
    )
    m.gauge(
        "homestream_streams_restoring",
        "Partitions whose state is being restored from the changelog right now.",
        lambda: worker.restoring,
    )
    m.gauge(
        "homestream_streams_partitions",
        "Partitions this worker owns.",
        lambda: len(worker.state),
    )
    m.gauge(
        "homestream_streams_cached_keys",
        "State values held decoded in memory; the rest of the state is read from the "
        "worker's RocksDB when needed (HOMESTREAM_STREAMS_CACHE_KEYS).",
        lambda: sum(len(s.cache) for s in list(worker.state.values())),
    )
    return m


def _wall_ms() -> int:
    return int(time.time() * 1000)
