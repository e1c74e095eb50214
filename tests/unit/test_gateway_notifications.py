"""``GET/PUT .../notifications/channels`` and the deliveries in ``GET .../notifications``,
in memory; the channel check itself (stores.notify_channels) with the real apprise."""

from __future__ import annotations

import logging

import httpx
import pytest

from gateway.app import create_app
from gateway.auth import issue_token
from gateway.memory import memory_backend
from stores.notify_channels import channel_problems, channels_from, url_problem

HOOK = "json://127.0.0.1:8099/hooks/s3cret-path"
MAIL = "mailto://alice:hunter22@127.0.0.1:2525?from=hs@example.com&to=alice@example.com"


@pytest.fixture
def backend():
    b = memory_backend(rate_limit="1000/60")
    for user in ("alice", "bob", "gus", "eve"):
        b.store.add_user(user, "password-1")
    b.store.add_home("h1", "alice")
    b.store.set_member("h1", "bob", "member")
    b.store.set_member("h1", "gus", "guest")
    return b


def _client(backend, user: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(backend=backend))
    token = issue_token(backend.token_secret, user)[0]
    return httpx.AsyncClient(
        transport=transport, base_url="http://t", headers={"Authorization": f"Bearer {token}"}
    )


def _paths(resp) -> list[str]:
    return [d["path"] for d in resp.json()["error"].get("details", [])]


# -- the check -------------------------------------------------------------------------------
def test_apprise_decides_which_urls_are_channels(capsys):
    assert url_problem(HOOK) is None
    assert url_problem(MAIL) is None
    assert url_problem("ntfys://ntfy.example.com/topic") is None
    for bad in ("bogus://x", "http://example.com/hook", "json://", "nothing at all"):
        problem = url_problem(bad)
        assert problem is not None and "apprise cannot use this URL" in problem
        assert bad not in problem or bad == "json://"  # named among the schemes to use
    # apprise logs a URL it cannot parse, whole: none of it may reach our output
    assert "bogus://x" not in capsys.readouterr().err


def test_apprise_logs_stay_out_of_the_process_logs(caplog):
    caplog.set_level(logging.DEBUG)
    url_problem("bogus://user:secret-pass@x")
    assert "secret-pass" not in repr([vars(r) for r in caplog.records])


def test_channel_problems_name_each_path():
    body = [
        {"url": HOOK},
        {"url": "bogus://x"},
        {"url": HOOK, "kinds": ["SECURITY"]},
        {"url": MAIL, "kinds": ["SECURITY", "NOPE"]},
    ]
    assert [p for p, _m in channel_problems(body)] == ["[1].url", "[2].url", "[3].kinds[1]"]
    assert channel_problems([{"url": f"{HOOK}{i}"} for i in range(11)])[0][0] == ""
    assert channel_problems([]) == []
    (chan,) = channels_from("h1", "bob", [{"url": MAIL, "kinds": ["SECURITY"]}])
    assert (chan.home_id, chan.username, chan.kinds) == ("h1", "bob", ("SECURITY",))


# -- the routes ------------------------------------------------------------------------------
async def test_each_member_sets_and_reads_only_their_own_channels(backend, caplog):
    caplog.set_level(logging.INFO)
    async with _client(backend, "bob") as bob, _client(backend, "alice") as alice:
        assert (await bob.get("/v1/homes/h1/notifications/channels")).json() == []
        body = [{"url": HOOK}, {"url": MAIL, "kinds": ["SECURITY", "LOW_BATTERY", "SECURITY"]}]
        r = await bob.put("/v1/homes/h1/notifications/channels", json=body)
        assert r.status_code == 200, r.text
        expected = [{"url": HOOK}, {"url": MAIL, "kinds": ["SECURITY", "LOW_BATTERY"]}]
        assert r.json() == expected
        assert (await bob.get("/v1/homes/h1/notifications/channels")).json() == expected
        # the owner does not see a member's channels: they are the member's secrets
        assert (await alice.get("/v1/homes/h1/notifications/channels")).json() == []
        r = await bob.put("/v1/homes/h1/notifications/channels", json=[])
        assert r.status_code == 200 and r.json() == []
    logged = repr([vars(r) for r in caplog.records])
    assert "hunter22" not in logged and "s3cret-path" not in logged
    (first, _emptied) = [r.channels for r in caplog.records if hasattr(r, "channels")]
    assert first == ["json://127.0.0.1", "mailto://127.0.0.1"]  # what logs may show


async def test_a_guest_may_set_channels_a_stranger_may_not(backend):
    async with _client(backend, "gus") as gus, _client(backend, "eve") as eve:
        r = await gus.put("/v1/homes/h1/notifications/channels", json=[{"url": HOOK}])
        assert r.status_code == 200
        r = await eve.put("/v1/homes/h1/notifications/channels", json=[{"url": HOOK}])
        assert r.status_code == 404
        assert (await eve.get("/v1/homes/h1/notifications/channels")).status_code == 404


@pytest.mark.parametrize(
    ("body", "paths"),
    [
        ([{"url": HOOK}, {"url": "bogus://x"}], ["[1].url"]),
        ([{"url": HOOK, "kinds": ["SECURITY", "NOPE"]}], ["[0].kinds[1]"]),
        ([{"url": HOOK, "kinds": []}], ["[0].kinds"]),
        ([{"url": HOOK, "extra": 1}], ["[0].extra"]),
        ([{"kinds": ["SECURITY"]}], ["[0].url"]),
        ([{"url": HOOK}, {"url": HOOK}], ["[1].url"]),
        ({"url": HOOK}, [""]),
        ([{"url": f"{HOOK}/{i}"} for i in range(11)], [""]),
    ],
)
async def test_bad_channel_lists_are_422_at_their_path(backend, body, paths):
    async with _client(backend, "bob") as bob:
        r = await bob.put("/v1/homes/h1/notifications/channels", json=body)
        assert r.status_code == 422, r.text
        assert _paths(r) == paths
        assert "bogus://" not in r.text  # a refused URL is not echoed back
        assert (await bob.get("/v1/homes/h1/notifications/channels")).json() == []


async def test_notifications_carry_the_callers_deliveries(backend):
    backend.store.notification_rows = {
        "h1": [
            {"event_id": "e2", "kind": "SECURITY", "message": "door", "ts": 2},
            {"event_id": "e1", "kind": "LOW_BATTERY", "message": "battery", "ts": 1},
        ]
    }
    delivered = {"channel": "json://127.0.0.1", "status": "delivered", "attempts": 2}
    backend.store.delivery_rows[("h1", "bob")] = {"e2": [delivered]}
    async with _client(backend, "bob") as bob, _client(backend, "alice") as alice:
        items = (await bob.get("/v1/homes/h1/notifications")).json()["notifications"]
        assert [n["deliveries"] for n in items] == [[delivered], []]
        items = (await alice.get("/v1/homes/h1/notifications")).json()["notifications"]
        assert [n["deliveries"] for n in items] == [[], []]
        assert [n["message"] for n in items] == ["door", "battery"]  # fields as they were
