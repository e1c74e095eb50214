"""The notify service's pure parts (sinks/notify_rows.py): a Notification's delivery rows
and the backoff schedule of a failed delivery."""

from __future__ import annotations

import uuid

import pytest
from tenacity import RetryCallState, wait_exponential

from domain.notify import Channel, channel_id
from sinks.notify_rows import RetryPolicy, deliveries_for, failure_text, notify_type, render

HOME = "h1"
EVENT = str(uuid.uuid4())


def _note(**fields):
    return {
        "event_id": EVENT,
        "home_id": HOME,
        "ts": 1_700_000_000_000,
        "kind": "SECURITY",
        "severity": "CRITICAL",
        "message": "Front door opened while away",
        "title": None,
        "device_id": "door",
        "automation_id": None,
        "data": None,
        **fields,
    }


CHANNELS = [
    Channel(HOME, "alice", "json://127.0.0.1:9/hook"),
    Channel(HOME, "alice", "mailto://u:p@mail.example.com?to=a@x.example", ("LOW_BATTERY",)),
    Channel(HOME, "bob", "ntfy://bob-topic", ("SECURITY", "DEVICE_OFFLINE")),
    Channel("other-home", "carol", "json://10.0.0.1/x"),  # not this home's
]


def test_each_member_channel_that_wants_the_kind_gets_one_row():
    rows = deliveries_for(_note(), CHANNELS)
    assert [(r.username, r.channel) for r in rows] == [
        ("alice", "json://127.0.0.1"),
        ("bob", "ntfy://***"),
    ]
    first = rows[0]
    assert first.event_id == EVENT and first.home_id == HOME
    assert first.channel_id == channel_id("alice", "json://127.0.0.1:9/hook")
    assert (first.kind, first.severity, first.event_ts_ms) == (
        "SECURITY",
        "CRITICAL",
        1_700_000_000_000,
    )
    assert (first.title, first.body) == ("Security alert", "Front door opened while away")

    battery = deliveries_for(_note(kind="LOW_BATTERY", severity="WARNING"), CHANNELS)
    assert [r.username for r in battery] == ["alice", "alice"]
    assert deliveries_for(_note(kind="AUTOMATION"), CHANNELS[1:3]) == []


def test_the_same_event_gives_the_same_rows_so_a_replay_finds_them():
    assert deliveries_for(_note(), CHANNELS) == deliveries_for(_note(), CHANNELS)


@pytest.mark.parametrize("bad", [{"event_id": None}, {"home_id": ""}, {"event_id": "not-a-uuid"}])
def test_a_record_without_usable_ids_is_refused(bad):
    with pytest.raises(ValueError):
        deliveries_for(_note(**bad), CHANNELS)


def test_render_uses_the_title_or_one_for_the_kind():
    assert render(_note(title="Alarm")) == ("Alarm", "Front door opened while away")
    assert render(_note(kind="DEVICE_OFFLINE"))[0] == "Device offline"
    assert render(_note(kind="UNKNOWN"))[0] == "homestream"
    assert render(_note(message="a\x00b")) == ("Security alert", "ab")  # PostgreSQL refuses NUL
    assert [notify_type(s) for s in ("INFO", "WARNING", "CRITICAL", None, "UNKNOWN")] == [
        "info",
        "warning",
        "failure",
        "info",
        "info",
    ]


def test_backoff_is_tenacitys_exponential_schedule():
    policy = RetryPolicy(first_s=0.5, longest_s=30.0, max_attempts=10, max_age_s=3600)
    tenacity_wait = wait_exponential(multiplier=0.5, min=0.5, max=30.0)
    for attempt in range(1, 40):
        state = RetryCallState(None, None, (), {})
        state.attempt_number = attempt
        assert policy.delay(attempt) == pytest.approx(tenacity_wait(state))
    assert policy.schedule() == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert policy.delay(10_000) == 30.0


def test_a_delivery_fails_after_the_last_attempt_or_when_too_old():
    policy = RetryPolicy(first_s=1.0, longest_s=60.0, max_attempts=3, max_age_s=100.0)
    assert policy.after_failure(1, age_s=0.0) == ("pending", 1.0)
    assert policy.after_failure(2, age_s=10.0) == ("pending", 2.0)
    assert policy.after_failure(3, age_s=10.0) == ("failed", 0.0)  # the 3rd of 3 tries
    assert policy.after_failure(1, age_s=99.5) == ("failed", 0.0)  # the next try is too late
    assert policy.too_old(100.1) and not policy.too_old(99.0)
    assert failure_text(3, "HTTP 503").startswith("gave up after 3 attempt(s): HTTP 503")
    assert len(failure_text(3, "x" * 2000)) == 500


def test_the_policy_reads_its_settings(tmp_path):
    from runtime.config import Settings

    s = Settings.from_env(
        {
            "HOMESTREAM_STATE_DIR": str(tmp_path),
            "HOMESTREAM_NOTIFY_RETRY_FIRST_MS": "250",
            "HOMESTREAM_NOTIFY_RETRY_MAX_MS": "4000",
            "HOMESTREAM_NOTIFY_MAX_ATTEMPTS": "5",
            "HOMESTREAM_NOTIFY_MAX_AGE_S": "60",
        }
    )
    assert RetryPolicy.from_settings(s) == RetryPolicy(0.25, 4.0, 5, 60.0)
    defaults = RetryPolicy.from_settings(Settings.from_env({"HOMESTREAM_STATE_DIR": str(tmp_path)}))
    assert defaults == RetryPolicy(1.0, 300.0, 300, 86_400.0)
    # the defaults retry for about the max age (a day) before the attempts run out
    assert 0.95 * 86_400 < sum(defaults.schedule()) < 1.05 * 86_400
