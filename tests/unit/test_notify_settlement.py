"""What the notify service's sender makes of one send (no Kafka, PostgreSQL or apprise)."""

from __future__ import annotations

import time

import pytest

from runtime.config import Settings
from sinks.notify import NotifyService, Sent
from stores.notify_outbox import Claimed


class NoSender:
    def send(self, *_args: object) -> Sent:
        raise AssertionError("not sent in these tests")


@pytest.fixture
def service(tmp_path) -> NotifyService:
    settings = Settings.from_env(
        {
            "HOMESTREAM_STATE_DIR": str(tmp_path),
            "HOMESTREAM_NOTIFY_RETRY_FIRST_MS": "500",
            "HOMESTREAM_NOTIFY_RETRY_MAX_MS": "4000",
            "HOMESTREAM_NOTIFY_MAX_ATTEMPTS": "4",
            "HOMESTREAM_NOTIFY_MAX_AGE_S": "600",
        }
    )
    return NotifyService(settings, sender=NoSender())  # type: ignore[arg-type]


def _claim(attempts: int = 1, age_s: float = 1.0, url: str | None = "json://h.example/x"):
    return Claimed(
        event_id="6c1e3a52-3c8f-4a7e-9d0e-0d5f7a1f2b3c",
        channel_id="c" * 32,
        home_id="h1",
        username="alice",
        channel="json://h.example",
        kind="SECURITY",
        severity="WARNING",
        title="Security alert",
        body="door",
        event_ts_ms=int((time.time() - age_s) * 1000),
        attempts=attempts,
        url=url,
    )


def test_a_success_is_delivered(service):
    s = service._settlement(_claim(), Sent(True), time.time())
    assert (s.status, s.attempts, s.error) == ("delivered", 1, None)


def test_a_failure_waits_the_backoff_then_fails_for_good(service):
    now = time.time()
    waits = [service._settlement(_claim(n), Sent(False, True, "HTTP 503"), now) for n in (1, 2, 3)]
    assert [(s.status, s.delay_s, s.error) for s in waits] == [
        ("pending", 0.5, "HTTP 503"),
        ("pending", 1.0, "HTTP 503"),
        ("pending", 2.0, "HTTP 503"),
    ]
    last = service._settlement(_claim(4), Sent(False, True, "HTTP 503"), now)
    assert (last.status, last.error) == ("failed", "gave up after 4 attempt(s): HTTP 503")
    late = service._settlement(_claim(1, age_s=599.8), Sent(False, True, "refused"), now)
    assert late.status == "failed"  # the next try would come after the max age


def test_a_url_apprise_no_longer_takes_fails_at_once(service):
    s = service._settlement(_claim(), Sent(False, False, "apprise cannot use it"), time.time())
    assert s.status == "failed" and s.error.startswith("gave up after 1 attempt(s)")


def test_removed_channels_and_old_notifications_are_not_sent(service):
    assert service._settle_unsendable(_claim()) is None
    removed = service._settle_unsendable(_claim(url=None))
    assert removed.status == "failed" and "removed" in removed.error
    old = service._settle_unsendable(_claim(age_s=700))
    assert old.status == "failed" and "HOMESTREAM_NOTIFY_MAX_AGE_S" in old.error
    assert service.counters["channel_removed"] == service.counters["expired"] == 1
