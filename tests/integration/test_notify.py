"""The notify service against the test stack's Kafka and PostgreSQL and real receivers: a
local HTTP server for ``json://`` channels and an aiosmtpd SMTP server for ``mailto://``.

- Every notification reaches each channel that wants its kind, once; while the HTTP
  receiver is down the email channel keeps getting its mail, the webhook deliveries wait
  with backoff (their status says why, without the URL), and when the receiver is back on
  the same port every one arrives, once.
- A notify process SIGKILLed mid-stream and started again loses nothing: each delivery
  row exists once, all end delivered, and a receiver sees a notification twice only for
  sends the killed process had in flight.
- A delivery that cannot succeed fails after its last attempt, and those to a channel
  its member removed meanwhile are settled as failed.
"""

from __future__ import annotations

import contextlib
import json
import signal
import threading
import time
import uuid
from collections.abc import Iterator

import pytest

from gateway.store import PgStore
from stores import accounts, db
from stores.notify_channels import channels_from, set_member_channels
from tests.integration.notify_support import HttpReceiver, NotifyProcess, SmtpReceiver, until
from topics import catalogue as t
from topics.codec import make_codec
from topics.producer import EventProducer
from topics.schemas import SchemaStore

pytestmark = pytest.mark.integration

KINDS = ("SECURITY", "LOW_BATTERY", "AUTOMATION", "DEVICE_OFFLINE")


@pytest.fixture
def producer(settings) -> Iterator[EventProducer]:
    p = EventProducer(
        settings.kafka_bootstrap,
        settings.partitions,
        make_codec(SchemaStore(), settings.schema_registry_url),
    )
    yield p
    p.producer.flush(10)


@pytest.fixture
def receivers() -> Iterator[tuple[HttpReceiver, SmtpReceiver]]:
    http, smtp = HttpReceiver(), SmtpReceiver()
    http.start()
    smtp.start()
    yield http, smtp
    http.stop()
    smtp.stop()


@pytest.fixture
def home(settings, receivers) -> Iterator[str]:
    """A home with alice (owner: a webhook for everything and one for SECURITY only) and
    bob (member: email for everything); their channels go when the test ends."""
    http, smtp = receivers
    home = f"notify-{uuid.uuid4().hex[:8]}"
    with db.connect(settings) as conn:
        for user in ("alice", "bob"):
            with contextlib.suppress(accounts.AccountError):
                accounts.add_user(conn, f"{user}-n", "password-123")
        accounts.add_home(conn, home, "alice-n")
        accounts.set_member(conn, home, "bob-n", "member")
        conn.commit()
        set_member_channels(
            conn,
            home,
            "alice-n",
            channels_from(
                home,
                "alice-n",
                [{"url": http.url("/all")}, {"url": http.url("/security"), "kinds": ["SECURITY"]}],
            ),
        )
        set_member_channels(
            conn,
            home,
            "bob-n",
            channels_from(home, "bob-n", [{"url": smtp.url("bob@example.com")}]),
        )
    yield home
    with db.connect(settings) as conn:  # later tests' services need not try these receivers
        set_member_channels(conn, home, "alice-n", [])
        set_member_channels(conn, home, "bob-n", [])


@pytest.fixture
def notifiers(stack_env, tmp_path) -> Iterator[list[NotifyProcess]]:
    started: list[NotifyProcess] = []
    yield started
    for proc in started:
        with contextlib.suppress(AssertionError):
            proc.stop()


def _start(notifiers, stack_env, tmp_path, group: str, name: str, **env: str) -> NotifyProcess:
    proc = NotifyProcess(stack_env, tmp_path, group, name, **env)
    notifiers.append(proc)
    proc.wait_ready()
    return proc


def _send(producer: EventProducer, home: str, run: str, numbers: range) -> dict[str, str]:
    """One notification per number, kinds in turn; returns message -> kind."""
    sent = {}
    for i in numbers:
        kind = KINDS[i % len(KINDS)]
        message = f"{run}-{i:04d}"
        producer.send(
            t.NOTIFICATIONS,
            "Notification",
            home,
            kind=kind,
            severity="WARNING",
            message=message,
            title=None,
            device_id=f"dev-{i}",
            automation_id=None,
            data=None,
        )
        sent[message] = kind
    producer.producer.flush(10)
    return sent


def _rows(settings, home: str) -> list[tuple]:
    with db.connect(settings) as conn:
        return conn.execute(
            "SELECT event_id::text, channel_id, username, status, attempts, last_error"
            " FROM notification_deliveries WHERE home_id = %s",
            (home,),
        ).fetchall()


def test_each_channel_gets_each_notification_through_a_receiver_outage(
    settings, stack_env, tmp_path, producer, receivers, home, notifiers
):
    http, smtp = receivers
    notify = _start(notifiers, stack_env, tmp_path, f"notify-{home}", "notify-a")
    run = uuid.uuid4().hex[:6]

    first = _send(producer, home, run, range(12))
    security = {m for m, k in first.items() if k == "SECURITY"}
    assert until(lambda: len(http.messages("/all")) == 12 and len(smtp.messages()) == 12, 30), (
        f"http {len(http.messages('/all'))}, smtp {len(smtp.messages())}\n{notify.tail()}"
    )
    assert until(lambda: set(http.messages("/security")) == security, 10)
    assert http.messages("/all") == dict.fromkeys(first, 1)
    assert smtp.messages() == dict.fromkeys(first, 1)
    assert http.messages("/security") == dict.fromkeys(security, 1)  # only its kind

    # The webhook receiver goes away; email goes on; webhooks wait with backoff.
    http.stop()
    second = _send(producer, home, run, range(12, 24))
    assert until(lambda: len(smtp.messages()) == 24, 30), notify.tail()
    assert until(
        lambda: sum(1 for r in _rows(settings, home) if r[2] == "alice-n" and r[4] >= 3) >= 12,
        30,
    ), notify.tail()
    waiting = [r for r in _rows(settings, home) if r[3] == "pending"]
    assert waiting and all(r[2] == "alice-n" for r in waiting)
    for row in waiting:  # why, without the channel's URL
        assert row[5] and "Connection" in row[5] and f":{http.port}" not in row[5]
        assert "/all" not in row[5] and "/security" not in row[5]

    # Back on the same port: everything arrives, once (nothing crashed).
    http.start()
    assert until(lambda: len(http.messages("/all")) == 24, 30), notify.tail()
    every_security = {m for m, k in {**first, **second}.items() if k == "SECURITY"}
    assert until(lambda: set(http.messages("/security")) == every_security, 10)
    assert http.messages("/all") == dict.fromkeys({**first, **second}, 1)
    assert http.messages("/security") == dict.fromkeys(every_security, 1)
    assert smtp.messages() == dict.fromkeys({**first, **second}, 1)
    assert until(lambda: all(r[3] == "delivered" for r in _rows(settings, home)), 10)
    rows = _rows(settings, home)
    assert len(rows) == 24 * 2 + len(every_security)  # alice /all, bob's email, alice /security
    counters = notify.counters()
    assert counters["delivered"] == len(rows) and counters["retried"] >= 12
    assert counters.get("failed", 0) == 0

    # What the gateway shows each member of their own deliveries.
    store = PgStore(settings.pg_dsn())
    store.open()
    try:
        ids = [r[0] for r in rows]
        alice, bob = store.deliveries(home, "alice-n", ids), store.deliveries(home, "bob-n", ids)
        assert {d["channel"] for ds in alice.values() for d in ds} == {"json://127.0.0.1"}
        assert {d["channel"] for ds in bob.values() for d in ds} == {"mailto://127.0.0.1"}
        assert all(d["status"] == "delivered" for ds in alice.values() for d in ds)
        retried = [d for ds in alice.values() for d in ds if d["attempts"] > 1]
        assert len(retried) >= 12 and all(d["last_error"] for d in retried)
        assert sum(len(ds) for ds in bob.values()) == 24
        assert store.channels(home, "bob-n") == [{"url": smtp.url("bob@example.com")}]
    finally:
        store.close()
    assert notify.stop() == 0


def test_a_killed_notify_process_loses_nothing(
    settings, stack_env, tmp_path, producer, receivers, home, notifiers
):
    http, smtp = receivers
    group = f"notify-{home}"
    first = _start(notifiers, stack_env, tmp_path, group, "notify-k1")
    run = uuid.uuid4().hex[:6]
    total = 240
    sent: dict[str, str] = {}

    def produce() -> None:  # ~120 notifications a second, through the kill and restart
        for start in range(0, total, 12):
            sent.update(_send(producer, home, run, range(start, start + 12)))
            time.sleep(0.1)

    feeder = threading.Thread(target=produce)
    feeder.start()
    assert until(lambda: len(http.messages("/all")) >= 60, 30), first.tail()
    first.stop(signal.SIGKILL)
    time.sleep(0.5)
    second = _start(notifiers, stack_env, tmp_path, group, "notify-k2")
    feeder.join(60)
    security = {m for m, k in sent.items() if k == "SECURITY"}
    assert len(sent) == total
    assert until(
        lambda: (
            set(http.messages("/all")) == set(sent)
            and set(smtp.messages()) == set(sent)
            and set(http.messages("/security")) == security
        ),
        60,
    ), (
        f"http {len(http.messages('/all'))}/{total}, smtp {len(smtp.messages())}/{total}\n"
        f"{second.tail()}"
    )
    # Each delivery row once, every one delivered.
    assert until(lambda: all(r[3] == "delivered" for r in _rows(settings, home)), 15)
    rows = _rows(settings, home)
    assert len(rows) == len({(r[0], r[1]) for r in rows}) == 2 * total + len(security)
    # Twice only what the killed process was sending (at most HOMESTREAM_NOTIFY_SENDERS at
    # once, per receiver) or had sent without settling yet.
    doubled = sum(n - 1 for c in (http.messages("/all"), http.messages("/security"),
                                  smtp.messages()) for n in c.values())  # fmt: skip
    print(f"SIGKILL: {doubled} of {2 * total + len(security)} deliveries received twice")
    assert doubled <= 3 * 8, f"{doubled} notifications received twice"
    assert second.stop() == 0


def test_a_stopped_notify_process_gives_back_what_it_had_only_queued(
    settings, stack_env, tmp_path, producer, receivers, home, notifiers
):
    http, smtp = receivers
    http.delay = 0.25  # 8 senders: ~30 webhooks a second, so most wait in the queue
    group = f"notify-{home}"
    first = _start(notifiers, stack_env, tmp_path, group, "notify-s1")
    sent = _send(producer, home, "stop", range(40))
    assert until(lambda: len(http.messages("/all")) >= 5, 30), first.tail()
    started = time.monotonic()
    assert first.stop() == 0
    assert time.monotonic() - started < 10  # it does not send its whole queue first
    counters = _counters_from(first)
    assert counters["released"] > 0, counters
    for _e, _c, _u, status, attempts, _err in _rows(settings, home):
        assert status == "delivered" or attempts == 0  # in flight: settled; queued: given back
    second = _start(notifiers, stack_env, tmp_path, group, "notify-s2")
    http.delay = 0.0
    security = {m for m, k in sent.items() if k == "SECURITY"}

    def arrived() -> bool:
        return len(http.messages("/all")) == len(smtp.messages()) == 40 and len(
            http.messages("/security")
        ) == len(security)

    assert until(arrived, 30), second.tail()
    # a clean stop doubles nothing
    assert http.messages("/all") == dict.fromkeys(sent, 1)
    assert http.messages("/security") == dict.fromkeys(security, 1)
    assert smtp.messages() == dict.fromkeys(sent, 1)
    assert second.stop() == 0


def _counters_from(proc: NotifyProcess) -> dict[str, int]:
    """The counters a stopped notify process wrote to its data dir."""
    return json.loads((proc.dir / "counters.json").read_text())


def test_a_hopeless_delivery_fails_after_its_last_attempt(
    settings, stack_env, tmp_path, producer, home, notifiers
):
    dead = HttpReceiver()  # a port nothing listens on
    with db.connect(settings) as conn:
        set_member_channels(
            conn, home, "alice-n", channels_from(home, "alice-n", [{"url": dead.url("/x")}])
        )
        set_member_channels(conn, home, "bob-n", [])
    notify = _start(
        notifiers,
        stack_env,
        tmp_path,
        f"notify-{home}",
        "notify-f",
        HOMESTREAM_NOTIFY_MAX_ATTEMPTS="3",
        HOMESTREAM_NOTIFY_RETRY_FIRST_MS="50",
    )
    _send(producer, home, "hopeless", range(2))
    assert until(lambda: len(_rows(settings, home)) == 2 and all(
        r[3] == "failed" for r in _rows(settings, home)), 30), notify.tail()  # fmt: skip
    for _e, _c, _u, _status, attempts, error in _rows(settings, home):
        assert attempts == 3 and error.startswith("gave up after 3 attempt(s): ")
        assert str(dead.port) not in error

    assert notify.stop() == 0


def test_deliveries_to_a_removed_channel_end_failed(
    settings, stack_env, tmp_path, producer, receivers, home, notifiers
):
    http, _smtp = receivers
    notify = _start(notifiers, stack_env, tmp_path, f"notify-{home}", "notify-r")
    http.stop()
    _send(producer, home, "orphan", range(4))
    alice = lambda: [r for r in _rows(settings, home) if r[2] == "alice-n"]  # noqa: E731
    assert until(lambda: len(alice()) == 5 and all(r[4] >= 2 for r in alice()), 30), notify.tail()
    with db.connect(settings) as conn:
        set_member_channels(conn, home, "alice-n", [])
    assert until(lambda: all(r[3] == "failed" for r in alice()), 30), notify.tail()
    assert all("removed" in r[5] for r in alice())
    assert notify.counters()["channel_removed"] == 5
    assert all(r[3] == "delivered" for r in _rows(settings, home) if r[2] == "bob-n")
    http.start()
    assert notify.stop() == 0
