"""Notification channels' rules (domain.notify): which channels get which kinds, stable
channel ids, and what logs may show of a channel URL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from domain.notify import KINDS, Channel, channel_id, channels_for, mask_url, scrub, wants

AVRO = Path(__file__).resolve().parents[2] / "avro" / "Notification"


def test_kinds_are_the_schemas_kinds_less_the_readers_fallback():
    (latest,) = sorted(AVRO.glob("v*.avsc"))[-1:]
    kind = next(f for f in json.loads(latest.read_text())["fields"] if f["name"] == "kind")
    assert list(KINDS) == [s for s in kind["type"]["symbols"] if s != "UNKNOWN"]


def test_a_channel_without_kinds_gets_every_kind_even_unknown_ones():
    assert all(wants(None, k) for k in (*KINDS, "UNKNOWN"))
    assert wants(("SECURITY",), "SECURITY")
    assert not wants(("SECURITY",), "LOW_BATTERY")
    assert not wants(("SECURITY",), "UNKNOWN")  # a kind this version cannot name


def test_channels_for_keeps_the_order_and_filters_by_kind():
    every = Channel("h", "alice", "json://a.example.com/x")
    security = Channel("h", "bob", "mailto://u:p@mail.example.com", ("SECURITY",))
    battery = Channel("h", "alice", "ntfy://topic", ("LOW_BATTERY", "DEVICE_OFFLINE"))
    chans = [every, security, battery]
    assert channels_for(chans, "SECURITY") == [every, security]
    assert channels_for(chans, "DEVICE_OFFLINE") == [every, battery]
    assert channels_for(chans, "AUTOMATION") == [every]
    assert channels_for([], "SECURITY") == []


def test_channel_ids_are_stable_and_per_member():
    url = "json://127.0.0.1:8080/hook"
    assert (
        channel_id("alice", url)
        == channel_id("alice", url)
        == Channel("h", "alice", url).channel_id
    )
    assert channel_id("alice", url) != channel_id("bob", url)
    assert channel_id("alice", url) != channel_id("alice", url + "2")
    assert len(channel_id("alice", url)) == 32


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("json://127.0.0.1:8080/hook/s3cr3t-path", "json://127.0.0.1"),
        ("jsons://hooks.example.com/abc?token=xyz", "jsons://hooks.example.com"),
        (
            "mailto://alice:hunter22@smtp.example.com:587?to=a@b.example",
            "mailto://smtp.example.com",
        ),
        ("ntfys://ntfy.example.com/private-topic", "ntfys://ntfy.example.com"),
        ("json://localhost/x", "json://localhost"),
        ("jsons://[::1]:9000/x", "jsons://[::1]"),
        # apprise puts tokens where a host goes: hidden
        ("tgram://123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/12345", "tgram://***"),
        ("ntfy://my-private-topic", "ntfy://***"),
        ("discord://4174216298/JHMHI8qBe7bk2ZwO5U711o3dV_js", "discord://***"),
        ("pover://u123@a456", "pover://***"),
        ("not a url", "?://***"),
        ("json://[broken", "json://***"),
    ],
)
def test_mask_shows_the_scheme_and_a_machines_name_only(url, shown):
    assert mask_url(url) == shown


def test_scrub_removes_every_secret_part_of_the_url():
    url = "mailto://alice:hunter22@smtp.example.com:587?to=boss@corp.example&from=hs@corp.example"
    text = (
        f"could not send to {url}: login alice/hunter22 refused for boss@corp.example "
        "by smtp.example.com"
    )
    out = scrub(text, url)
    for secret in ("hunter22", "alice", "boss@corp.example", url):
        assert secret not in out
    assert "smtp.example.com" in out  # the host is not a secret here

    token_url = "tgram://123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/12345"
    out = scrub("Telegram 123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw failed", token_url)
    assert "AAHdqTcv" not in out and "123456789" not in out
