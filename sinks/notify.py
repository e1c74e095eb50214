"""Notification delivery: ``homestream.notifications`` -> each member's channels, through
apprise (docs/notifications.md).

One process (``homestream notify``) in the consumer group ``homestream-notify``, two loops:

- the recorder (main thread) consumes Notifications (read_committed), finds the channels
  of the home's members that want each one's kind (``stores.notify_channels``), and writes
  one ``pending`` delivery per notification and channel to the outbox
  (``stores.notify_outbox``) before it commits the Kafka offsets. A crash in between
  re-reads the records and the outbox's primary key skips what it has: none lost, none
  doubled. PostgreSQL down: the batch waits, retried with backoff, the consumer paused;
- the sender (a thread, with ``HOMESTREAM_NOTIFY_SENDERS`` sending threads) claims due
  deliveries, sends each with apprise, and settles it: delivered; or pending again after
  the backoff (``sinks.notify_rows.RetryPolicy``); or failed after the last attempt or
  once the notification is too old. The recorder wakes it for new rows; otherwise it
  sleeps until the next delivery is due.

Delivery is at least once: a sender that dies between a receiver's answer and its
settlement leaves a claim whose lease runs out, and the delivery is sent again. A sender
told to stop finishes and settles what it is sending and gives back what it had only
queued, so a clean stop doubles nothing. Channel
URLs are secrets: logs show ``domain.notify.mask_url`` and errors pass ``scrub``.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime import kafka
from runtime.cli import command_line
from runtime.config import Settings
from runtime.deadletter import DeadLetters
from runtime.metrics import ServiceMetrics, snapshot
from runtime.service import first_line, retry_while_running, stop_on_signals
from sinks.notify_rows import MAX_ERROR, RetryPolicy, deliveries_for, failure_text, notify_type
from stores import notify_outbox as outbox
from stores.notify_channels import home_channels, quiet_apprise
from stores.notify_outbox import Claimed, Settlement
from topics import catalogue as t

log = logging.getLogger("homestream.sinks.notify")

GROUP = "homestream-notify"
PROCESSOR = "notify"
# How long the notify process waits for its in-flight sends when it stops. Each send is
# bounded by its plugin's own timeouts (apprise: 4 s connect and 4 s read for HTTP, cto/rto
# in the URL; 15 s for SMTP).
SEND_DEADLINE_S = 30.0
IDLE_WAKE_S = 1.0  # the sender looks for due deliveries at least this often
HOUSEKEEPING_S = 5.0  # pending gauge; the purge of old deliveries runs hourly
PURGE_EVERY_S = 3600.0


@dataclass(frozen=True)
class Sent:
    """What apprise made of one send. ``usable`` False: retrying cannot help."""

    ok: bool
    usable: bool = True
    error: str | None = None


class AppriseSender:
    """Sends one delivery with apprise: ``Apprise().add(url)`` and ``notify(title, body)``
    (``json://`` and ``jsons://`` POST JSON; ``mailto://`` speaks SMTP; and so on)."""

    def __init__(self) -> None:
        import apprise

        quiet_apprise()
        self.apprise = apprise
        # No deadline of apprise's own: with one, apprise hands each send to its shared
        # pool (cpu count + 4 threads), which would cap HOMESTREAM_NOTIFY_SENDERS; without,
        # it sends in the calling thread, ours.
        self.asset = apprise.AppriseAsset(service_timeout=0)

    def send(self, url: str, title: str, body: str, severity: str | None) -> Sent:
        from domain.notify import scrub

        client = self.apprise.Apprise(asset=self.asset)
        if not client.add(url):
            return Sent(False, False, "apprise cannot use this channel's URL; set it again")
        try:
            result = client.notify(
                body=body or title,
                title=title,
                notify_type=notify_type(severity),
                log_level=logging.WARNING,
            )
        except Exception as exc:  # a plugin's own bug: retried like a refusal
            return Sent(False, True, scrub(f"{type(exc).__name__}: {first_line(exc)}", url))
        if result:
            return Sent(True)
        return Sent(False, True, scrub(_problem(result), url)[:MAX_ERROR])


def _problem(result: Any) -> str:
    """The warnings and errors apprise logged for a failed send, or its status."""
    found: list[str] = []
    for service in getattr(result, "results", ()):
        for entry in service.logs():
            if entry.level in ("WARNING", "ERROR", "CRITICAL") and entry.message not in found:
                found.append(entry.message)
        with contextlib.suppress(Exception):
            service.close()
    status = getattr(getattr(result, "status", None), "name", "FAILURE")
    return "; ".join(found[:3]) or f"apprise: {status.lower()}"


class NotifyService:
    def __init__(
        self,
        settings: Settings,
        *,
        name: str = "notify-1",
        group: str = GROUP,
        batch_size: int = 500,
        metrics_port: int | None = None,
        sender: AppriseSender | None = None,
    ) -> None:
        from topics.codec import make_codec
        from topics.schemas import SchemaStore

        self.settings = settings
        self.name = name
        self.group = group
        self.batch_size = batch_size
        self.metrics_port = metrics_port
        self.policy = RetryPolicy.from_settings(settings)
        self.lease_s = float(settings.notify_lease_s)
        self.senders = settings.notify_senders
        self.sender = sender or AppriseSender()
        self.codec = make_codec(SchemaStore(), settings.schema_registry_url)
        self.running = True
        self.stopping = threading.Event()
        self.wake = threading.Event()
        self.counters: Counter[str] = Counter()
        self.gauges = {"partitions": 0, "pending": 0, "inflight": 0, "pg_up": 0}
        self.metrics = ServiceMetrics(
            {"service": "notify", "worker": name},
            "homestream_notify_up",
            "1 while the notify service is connected to PostgreSQL (its readiness, /ready).",
            ready=lambda: self.gauges["pg_up"] == 1,
        )
        self.metrics.outcomes(
            "homestream_notify_total",
            "Notification delivery counters by outcome: consumed, recorded (deliveries new "
            "in the outbox), replayed (already there), unwanted (no channel wants it), "
            "delivered, retried, failed, channel_removed, expired, released, settled_late, "
            "dead_letter_<reason>, pg_retries, ...",
            self.counters,
        )
        self.latency = self.metrics.fast_histogram(
            "homestream_notify_delivery_seconds",
            "A notification's ts to its delivery's success (apprise's answer).",
        )
        for gauge, what in (
            ("partitions", "Partitions of homestream.notifications assigned to this process."),
            ("pending", "Deliveries pending in the outbox (all processes), every 5 s."),
            ("inflight", "Deliveries this process is sending or has queued to send."),
        ):
            self.metrics.gauge(f"homestream_notify_{gauge}", what, self._gauge_reader(gauge))
        self._conn: Any = None
        self.dead_letters = DeadLetters(settings, self.codec, PROCESSOR, self.counters, log)
        self.sender_error: BaseException | None = None

    def _gauge_reader(self, name: str) -> Callable[[], float]:
        return lambda: float(self.gauges[name])

    def _nap(self, seconds: float) -> None:
        """Wait, waking early when told to stop."""
        self.stopping.wait(seconds)

    # -- life cycle ----------------------------------------------------------------------
    def stop(self) -> None:
        self.running = False
        self.stopping.set()
        self.wake.set()

    def run(self, *, signals: bool = True) -> int:
        if signals:
            stop_on_signals(self.stop)
        server = None
        if self.metrics_port:
            server = self.metrics.serve(self.settings.host, self.metrics_port)
        deliverer = threading.Thread(target=self._deliver_loop, name="notify-sender")
        try:
            if not self._connect_retrying():
                return 0
            deliverer.start()
            self._consume_loop()
            return 0
        finally:
            self.stop()
            if deliverer.is_alive():
                deliverer.join(SEND_DEADLINE_S + 10)
            if self._conn is not None:
                with contextlib.suppress(Exception):
                    self._conn.close()
            if server is not None:
                server.shutdown()
            log.info("notify stopped", extra={"worker": self.name, **snapshot(self.counters)})
        if self.sender_error is not None:  # a bug, not an outage: say so and exit non-zero
            raise SystemExit(f"notify sender failed: {first_line(self.sender_error)}")

    # -- PostgreSQL ----------------------------------------------------------------------
    def _pg(self) -> Any:
        import psycopg

        return psycopg.connect(
            self.settings.pg_dsn(), autocommit=True, application_name=f"homestream-{self.name}"
        )

    def _connect_retrying(self) -> bool:
        def connect() -> bool:
            self._conn = self._pg()
            self.gauges["pg_up"] = 1
            return True

        def failed(_exc: BaseException, _delay: float) -> None:
            self.gauges["pg_up"] = 0
            self.counters["pg_retries"] += 1

        return bool(
            retry_while_running(
                connect,
                running=lambda: self.running,
                retry_on=_transient,
                log=log,
                what="connecting to PostgreSQL",
                on_retry=failed,
                sleep=self._nap,
            )
        )

    # -- the recorder: Kafka -> outbox ---------------------------------------------------
    def _consume_loop(self) -> None:
        from confluent_kafka import KafkaException
        from confluent_kafka import TopicPartition as TP

        consumer = kafka.consumer(
            self.settings,
            self.group,
            {"client.id": f"homestream-{self.name}", "max.poll.interval.ms": 1_800_000},
        )

        def assigned(_c: Any, parts: list[Any]) -> None:
            self.gauges["partitions"] += len(parts)
            log.info("partitions assigned", extra={"worker": self.name, "count": len(parts)})

        def revoked(_c: Any, parts: list[Any]) -> None:
            self.gauges["partitions"] = max(0, self.gauges["partitions"] - len(parts))

        consumer.subscribe([t.NOTIFICATIONS], on_assign=assigned, on_revoke=revoked)
        log.info("notify started", extra={"worker": self.name, "group": self.group})
        last_report = time.monotonic()
        reported: dict[str, int] = {}
        try:
            while self.running:
                # One record, then whatever else is already fetched: a lone notification
                # is recorded at once, a burst in batches.
                first = consumer.poll(0.5)
                if first is None:
                    msgs = []
                else:
                    msgs = [first, *consumer.consume(self.batch_size - 1, timeout=0)]
                if msgs:
                    offsets = self._record_batch(consumer, msgs)
                    if offsets is None:  # stopping while PostgreSQL is down: not committed
                        break
                    if offsets:
                        tps = [TP(tp, p, o) for (tp, p), o in offsets.items()]
                        try:
                            consumer.commit(offsets=tps, asynchronous=False)
                        except KafkaException as exc:  # re-read later; the outbox skips them
                            self.counters["commit_failed"] += 1
                            log.warning("offset commit failed: %s", exc)
                if time.monotonic() - last_report > 30:
                    last_report = time.monotonic()
                    now = snapshot(self.counters)
                    if now != reported:  # a quiet service stays quiet in its log
                        reported = now
                        log.info("notify counters", extra={"worker": self.name, **now})
        finally:
            with contextlib.suppress(Exception):
                consumer.close()
            self.dead_letters.close()

    def _record_batch(self, consumer: Any, msgs: list[Any]) -> dict[tuple[str, int], int] | None:
        """Record the batch's deliveries; the offsets to commit, None when stopped first."""
        from topics.errors import CodecError

        offsets: dict[tuple[str, int], int] = {}
        records: list[tuple[Any, dict[str, Any]]] = []
        for msg in msgs:
            if kafka.consume_error(msg):
                continue
            offsets[(msg.topic(), msg.partition())] = msg.offset() + 1
            if msg.value() is None:
                continue
            try:
                decoded = self.codec.decode(msg.value())
            except CodecError as exc:
                self.dead_letters.send(msg, exc)
                continue
            if decoded.name != "Notification":
                self.counters["ignored"] += 1
                continue
            self.counters["consumed"] += 1
            records.append((msg, decoded.record))
        if records:
            stored = self._retrying(consumer, lambda: self._record(records))
            if stored is None:
                return None
        if not self.dead_letters.flush(lambda: self.running):
            return None
        return offsets

    def _record(self, records: list[tuple[Any, dict[str, Any]]]) -> bool:
        import psycopg

        if self._conn is None:
            self._conn = self._pg()
        homes = sorted({str(r.get("home_id") or "") for _m, r in records} - {""})
        channels = home_channels(self._conn, homes)
        rows, per_record = [], []
        for msg, record in records:
            try:
                mine = deliveries_for(record, channels.get(str(record.get("home_id")), []))
            except (ValueError, TypeError) as exc:
                self.dead_letters.send(msg, exc)
                continue
            if not mine:
                self.counters["unwanted"] += 1
            rows += mine
            per_record.append((msg, mine))
        try:
            new = outbox.record(self._conn, rows)
        except (psycopg.DataError, psycopg.IntegrityError):
            new = 0  # find the record PostgreSQL refuses; record the others
            for msg, mine in per_record:
                try:
                    new += outbox.record(self._conn, mine)
                except (psycopg.DataError, psycopg.IntegrityError) as exc:
                    self.dead_letters.send(msg, exc)
        self.gauges["pg_up"] = 1
        self.counters["recorded"] += new
        self.counters["replayed"] += len(rows) - new
        if new:
            self.wake.set()
        return True

    def _retrying(self, consumer: Any, fn: Callable[[], bool]) -> bool | None:
        from confluent_kafka import KafkaException

        paused: list[Any] = []

        def failed(_exc: BaseException, _delay: float) -> None:
            nonlocal paused
            self.gauges["pg_up"] = 0
            self.counters["pg_retries"] += 1
            if self._conn is not None:
                with contextlib.suppress(Exception):
                    self._conn.close()
            self._conn = None
            if not paused:  # the consumer waits with the batch, staying in its group
                paused = consumer.assignment()
                consumer.pause(paused)

        def wait(seconds: float) -> None:
            end = time.monotonic() + seconds
            while self.running and time.monotonic() < end:
                msg = consumer.poll(min(0.2, max(0.0, end - time.monotonic())))
                if msg is not None and msg.error() is None:  # a partition assigned meanwhile
                    with contextlib.suppress(KafkaException):
                        consumer.seek(_tp(msg))
                        consumer.pause(consumer.assignment())

        try:
            return retry_while_running(
                fn,
                running=lambda: self.running,
                retry_on=_transient,
                log=log,
                what="recording deliveries in PostgreSQL",
                first=0.2,
                longest=5.0,
                on_retry=failed,
                sleep=wait,
            )
        finally:
            if paused:
                with contextlib.suppress(KafkaException):
                    consumer.resume(consumer.assignment())

    # -- the sender: outbox -> apprise -> outbox -----------------------------------------
    def _deliver_loop(self) -> None:
        conn: Any = None
        # (claim, what the send gave or None when it was cancelled unsent, when)
        done: queue.SimpleQueue[tuple[Claimed, Sent | None, float]] = queue.SimpleQueue()
        unsettled: list[tuple[Claimed, Settlement, float]] = []
        released: list[Claimed] = []
        inflight: set[Future[Any]] = set()
        pool = ThreadPoolExecutor(self.senders, thread_name_prefix="notify-send")
        next_housekeeping = next_purge = 0.0
        backoff = 0.2

        def sent(claim: Claimed, fut: Future[Sent]) -> None:
            result: Sent | None = None
            if not fut.cancelled():
                try:
                    result = fut.result()
                except Exception as exc:  # AppriseSender catches plugins' errors; this is ours
                    result = Sent(False, True, f"{type(exc).__name__}")
            done.put((claim, result, time.time()))
            self.wake.set()

        try:
            while self.running or inflight or unsettled or released or not done.empty():
                self.wake.clear()
                if not self.running:  # stopping: what is only queued goes back, unsent
                    for fut in inflight:
                        fut.cancel()
                while not done.empty():
                    claim, result, at = done.get()
                    if result is None:
                        released.append(claim)
                    else:
                        unsettled.append((claim, self._settlement(claim, result, at), at))
                inflight = {f for f in inflight if not f.done()}
                self.gauges["inflight"] = len(inflight)
                try:
                    if conn is None:
                        conn = self._pg()
                    if unsettled:
                        self._settle(conn, unsettled)
                        unsettled = []
                    if released:
                        outbox.release(conn, released)
                        self.counters["released"] += len(released)
                        released = []
                    timeout = IDLE_WAKE_S
                    # Claim ahead, up to four deliveries per sender, a sender's worth at a
                    # time: a sending thread finds its next delivery queued instead of waiting
                    # for this loop (which waits for the GIL like them), and a burst costs a
                    # query per chunk, not per delivery.
                    free = 4 * self.senders - len(inflight)
                    if self.running and (free >= self.senders or not inflight):
                        claims = outbox.claim(conn, free, self.lease_s)
                        for claim in claims:
                            early = self._settle_unsendable(claim)
                            if early is not None:
                                unsettled.append((claim, early, time.time()))
                                continue
                            fut = pool.submit(
                                self.sender.send, claim.url or "", claim.title, claim.body,
                                claim.severity,
                            )  # fmt: skip
                            inflight.add(fut)
                            fut.add_done_callback(functools.partial(sent, claim))
                        if unsettled:
                            continue
                        if len(claims) < free:  # nothing else due now: sleep until it is
                            due = outbox.next_due_s(conn)
                            if due is not None:
                                timeout = min(IDLE_WAKE_S, max(0.005, due))
                    if time.monotonic() >= next_housekeeping:
                        next_housekeeping = time.monotonic() + HOUSEKEEPING_S
                        self.gauges["pending"] = outbox.pending_count(conn)
                        if time.monotonic() >= next_purge:
                            next_purge = time.monotonic() + PURGE_EVERY_S
                            purged = outbox.purge(conn, self.settings.notify_keep_days)
                            if purged:
                                log.info("purged old deliveries", extra={"count": purged})
                    backoff = 0.2
                except Exception as exc:
                    if not _transient(exc):
                        raise
                    self.counters["pg_retries"] += 1
                    log.warning("sender: PostgreSQL unavailable (%s); retrying", first_line(exc))
                    if conn is not None:
                        with contextlib.suppress(Exception):
                            conn.close()
                    conn = None
                    if self.running:
                        self._nap(backoff)
                    else:
                        time.sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
                    if not self.running and not inflight:
                        # Stopping with PostgreSQL gone: the claims' leases run out and
                        # they are sent again by whoever runs next.
                        log.warning("stopping with %s deliveries unsettled", len(unsettled))
                        return
                    continue
                if not self.running and not (inflight or unsettled or released) and done.empty():
                    return
                self.wake.wait(timeout)
        except BaseException as exc:
            log.exception("notify sender failed; stopping")
            self.sender_error = exc
            self.stop()
            raise
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()

    def _settle_unsendable(self, claim: Claimed) -> Settlement | None:
        """A claim not worth sending: its channel is gone, or its notification too old."""
        if claim.url is None:
            self.counters["channel_removed"] += 1
            return Settlement(
                claim.event_id, claim.channel_id, claim.attempts, "failed", 0.0,
                "the channel was removed before the notification could be delivered",
            )  # fmt: skip
        age = time.time() - claim.event_ts_ms / 1000
        if self.policy.too_old(age):
            self.counters["expired"] += 1
            return Settlement(
                claim.event_id, claim.channel_id, claim.attempts, "failed", 0.0,
                f"not delivered within HOMESTREAM_NOTIFY_MAX_AGE_S ({self.policy.max_age_s:.0f} s)",
            )  # fmt: skip
        return None

    def _settlement(self, claim: Claimed, result: Sent, at: float) -> Settlement:
        key = (claim.event_id, claim.channel_id, claim.attempts)
        if result.ok:
            return Settlement(*key, "delivered")
        error = (result.error or "not delivered").replace("\x00", "")
        if not result.usable:
            return Settlement(*key, "failed", 0.0, failure_text(claim.attempts, error))
        status, wait = self.policy.after_failure(claim.attempts, at - claim.event_ts_ms / 1000)
        if status == "failed":
            return Settlement(*key, "failed", 0.0, failure_text(claim.attempts, error))
        return Settlement(*key, "pending", wait, error[:MAX_ERROR])

    def _settle(self, conn: Any, unsettled: list[tuple[Claimed, Settlement, float]]) -> None:
        held = outbox.settle(conn, [s for _c, s, _at in unsettled])
        if held < len(unsettled):
            self.counters["settled_late"] += len(unsettled) - held
        for claim, s, at in unsettled:
            where = {
                "event_id": claim.event_id,
                "home_id": claim.home_id,
                "user": claim.username,
                "channel": claim.channel,  # masked
                "attempts": claim.attempts,
            }
            if s.status == "delivered":
                self.counters["delivered"] += 1
                self.latency.observe(max(0.0, at - claim.event_ts_ms / 1000))
                log.debug("delivered", extra=where)
            elif s.status == "pending":
                self.counters["retried"] += 1
                log.warning(
                    "delivery failed; retrying in %.1f s", s.delay_s,
                    extra={**where, "error": s.error},
                )  # fmt: skip
            else:
                self.counters["failed"] += 1
                log.error("delivery failed for good", extra={**where, "error": s.error})


def _tp(msg: Any) -> Any:
    from confluent_kafka import TopicPartition

    return TopicPartition(msg.topic(), msg.partition(), msg.offset())


def _transient(exc: BaseException) -> bool:
    """PostgreSQL unreachable or restarting: wait and try again."""
    import psycopg

    return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)


# -- process entry points ----------------------------------------------------------------
def notify_argv(
    data_dir: Path,
    metrics_port: int | None = None,
    *,
    name: str = "notify-1",
    group: str | None = None,
) -> list[str]:
    """The command line of one notify process (the launcher's, the tests', the bench's)."""
    return command_line(
        "notify", name=name, data_dir=data_dir, metrics_port=metrics_port or None, group=group
    )


def run_notify(
    settings: Settings,
    *,
    name: str = "notify-1",
    group: str = GROUP,
    metrics_port: int | None = None,
    loglevel: str = "info",
    data_dir: Path | None = None,
    batch_size: int = 500,
) -> int:
    from runtime.logs import setup

    setup(loglevel, settings.log_format)
    service = NotifyService(
        settings, name=name, group=group, metrics_port=metrics_port, batch_size=batch_size
    )
    code = service.run()
    if data_dir is not None:  # the last counters, for post-mortems
        data_dir.mkdir(parents=True, exist_ok=True)
        (data_dir / "counters.json").write_text(json.dumps(dict(service.counters), indent=1))
    return code
