"""The logbook's pure parts (stores.logbook) and its route over the in-memory backend."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest

from gateway.app import create_app
from gateway.auth import issue_token
from gateway.memory import memory_backend
from stores.logbook import LogbookQueryError, build_query, entry_message

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)


def test_the_span_defaults_to_the_last_day():
    q = build_query(now=NOW)
    assert (q.start, q.end, q.limit, q.kinds) == (NOW - dt.timedelta(hours=24), NOW, 500, None)
    assert build_query(kinds="command, state", now=NOW).kinds == ("command", "state")


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"start": "yesterday"}, "from"),
        ({"limit": 0}, "limit"),
        ({"limit": "x"}, "limit"),
        ({"kinds": "state,bogus"}, "kind"),
        ({"start": "2026-06-02T00:00:00Z"}, "from"),  # after `to`
    ],
)
def test_bad_parameters_name_themselves(kwargs, param):
    with pytest.raises(LogbookQueryError) as exc:
        build_query(now=NOW, **kwargs)
    assert exc.value.param == param


@pytest.mark.parametrize(
    ("entry", "name", "says"),
    [
        ({"kind": "state", "detail": {"attribute": "powerState", "value": "ON"}}, "Lamp",
         "Lamp powerState changed to ON"),
        ({"kind": "command", "device_id": "lamp", "detail": {
            "command": "setBrightness", "parameters": {"brightness": 40},
            "requested_by": "alice", "status": "COMPLETED"}}, "Lamp",
         'alice sent setBrightness {"brightness":40} to Lamp: completed'),
        ({"kind": "command", "detail": {"command": "turnOff", "group_id": "all",
          "requested_by": "automation:night", "status": "FAILED", "reason": "offline"}},
         None, "automation night sent turnOff to group all: failed (offline)"),
        ({"kind": "automation", "detail": {"alias": "Night", "status": "COMPLETED"}}, None,
         "automation Night ran (completed)"),
        ({"kind": "availability", "device_id": "door", "detail": {"online": False}}, None,
         "door went offline"),
        ({"kind": "event", "detail": {"event": "press"}}, "Button", "Button: press"),
        ({"kind": "notification", "detail": {"title": "Door", "message": "open"}}, None,
         "notification: Door: open"),
    ],
)  # fmt: skip
def test_every_kind_reads_as_a_sentence(entry, name, says):
    assert entry_message(entry, name) == says


async def test_the_route_names_devices_and_filters_by_area():
    b = memory_backend()
    b.store.add_user("owner1", "password-1")
    b.store.add_home("h1", "owner1")
    b.devices.add("h1", "lamp", ["ON_OFF"], name="Lamp", room="Kitchen")
    b.devices.add("h1", "tv", ["ON_OFF"], name="TV", room="Lounge")
    b.store.logbook_rows["h1"] = [
        {"ts": 1_780_000_000_000, "kind": "state", "device_id": "lamp",
         "detail": {"attribute": "powerState", "value": "ON"}},
    ]  # fmt: skip
    seen: list = []
    original = b.store.logbook
    b.store.logbook = lambda home, **kw: seen.append(kw) or original(home, **kw)
    token = issue_token(b.token_secret, "owner1")[0]
    transport = httpx.ASGITransport(app=create_app(backend=b))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        resp = await c.get(
            "/v1/homes/h1/logbook?area=kitchen", headers={"Authorization": f"Bearer {token}"}
        )
        bad = await c.get(
            "/v1/homes/h1/logbook?from=banana", headers={"Authorization": f"Bearer {token}"}
        )
    assert resp.status_code == 200, resp.text
    [entry] = resp.json()["entries"]
    assert entry["message"] == "Lamp powerState changed to ON"
    assert (entry["device_name"], entry["area"]) == ("Lamp", "kitchen")
    assert seen[0]["devices"] == ["lamp"]
    assert bad.status_code == 422
