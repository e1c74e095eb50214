"""The demo home's documents (hub.sim.demo_docs) and their seeding through the REST API
(compose.demo_seed), against the gateway in memory with the demo floor plan's devices."""

from __future__ import annotations

import warnings
from typing import Any

import pytest

from compose.demo_seed import SeedError, seed_demo
from domain.automation.parse import parse
from gateway.app import create_app
from gateway.auth import issue_token
from gateway.memory import memory_backend
from hub.sim import demo_docs
from hub.sim.floorplan import DEMO_HOME_ID, demo_home
from topics import catalogue as t

# Starlette's test client (a sync client, as the seeding is) warns that it wants httpx2.
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient


class ClientApi:
    """compose.demo_seed.Api over Starlette's test client."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.calls: list[tuple[str, str]] = []

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        self.calls.append((method, path))
        resp = self.client.request(method, path, json=body)
        return resp.status_code, resp.json() if resp.content else None


@pytest.fixture
def backend():
    b = memory_backend()
    b.store.add_user("demo", "demo-password")
    b.store.add_home(DEMO_HOME_ID, "demo", "Demo Home")
    for spec in demo_home():
        b.devices.add(
            DEMO_HOME_ID, spec.device_id, list(spec.capabilities), name=spec.name, type=spec.type,
            room=spec.room,
        )  # fmt: skip
    return b


@pytest.fixture
def api(backend):
    with TestClient(create_app(backend=backend)) as client:
        client.headers["Authorization"] = f"Bearer {issue_token(backend.token_secret, 'demo')[0]}"
        yield ClientApi(client)


def test_the_documents_name_only_devices_the_floor_plan_has():
    planned = {spec.device_id: spec for spec in demo_home()}
    assert demo_docs.device_ids() <= set(planned)
    # the roles the issue asks for are there, and are what they say
    assert planned[demo_docs.HALL_MOTION].type == "sensor.motion"
    assert planned[demo_docs.HALL_LIGHT].type == "light.switch"
    assert planned[demo_docs.FRONT_DOOR].type == "sensor.contact"
    assert len(demo_docs.LIGHTS) == 9 and len(demo_docs.BLINDS) == 3
    for doc in demo_docs.AUTOMATIONS.values():
        parse(doc)  # raises AutomationInvalid with every problem
    assert {s["name"] for s in demo_docs.SCENES.values()} == {
        "Good morning", "Good night", "Movie time", "Leave home",
    }  # fmt: skip


def test_seeding_puts_everything_in_once_and_keeps_what_is_there(api, backend):
    done = seed_demo(api, DEMO_HOME_ID, webhook_port=8099, wait_s=0)
    assert sorted(done.created) == sorted(
        ["settings", "webhook channel"]
        + [f"scene {s}" for s in demo_docs.SCENES]
        + [f"automation {a}" for a in demo_docs.AUTOMATIONS]
    )
    assert not done.notes
    # the demo user's channel for the home: the notify service delivers there
    channels = api.call("GET", f"/v1/homes/{DEMO_HOME_ID}/notifications/channels")[1]
    assert channels == [{"url": "json://127.0.0.1:8099/demo-webhook"}]
    published = {
        rec["doc_id"] for topic, _n, rec in backend.producer.sent if topic == t.HOME_CONFIG
    }
    assert published == {"settings", *demo_docs.SCENES, *demo_docs.AUTOMATIONS}
    settings = api.call("GET", f"/v1/homes/{DEMO_HOME_ID}/settings")[1]
    assert settings["time_zone"] == "Europe/Berlin" and settings["latitude"] == 52.52

    # a user's edit survives the next `up`
    edited = {**demo_docs.AUTOMATIONS["lights-off-2300"], "alias": "Lights off at midnight"}
    edited["triggers"] = [{"trigger": "time", "at": "00:00"}]
    assert (
        api.call("PUT", f"/v1/homes/{DEMO_HOME_ID}/automations/lights-off-2300", edited)[0] == 200
    )
    api.calls.clear()
    again = seed_demo(api, DEMO_HOME_ID, webhook_port=8099, wait_s=0)
    assert again.created == [] and len(again.kept) == 1 + 4 + 4 + 1
    assert all(method == "GET" for method, _ in api.calls)
    kept = api.call("GET", f"/v1/homes/{DEMO_HOME_ID}/automations/lights-off-2300")[1]
    assert kept["alias"] == "Lights off at midnight"


def test_seeding_waits_for_the_devices_and_says_which_are_missing(api, backend):
    del backend.devices.items[(DEMO_HOME_ID, demo_docs.HALL_MOTION)]
    now = [0.0]
    with pytest.raises(SeedError) as caught:
        seed_demo(
            api, DEMO_HOME_ID, wait_s=3, sleep=lambda s: now.__setitem__(0, now[0] + s),
            clock=lambda: now[0],
        )  # fmt: skip
    assert demo_docs.HALL_MOTION in str(caught.value) and "homestream up" in str(caught.value)
    assert now[0] >= 3
    assert [m for m, _ in api.calls] == ["GET"] * 4  # polled, nothing written


def test_the_demo_webhook_receiver_keeps_what_it_is_sent(tmp_path):
    import json
    import threading
    import urllib.request

    from compose.demo_webhook import Received, make_server

    server = make_server("127.0.0.1", 0, Received(tmp_path / "received.jsonl"))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        for title in ("first", "second"):
            body = json.dumps({"version": "1.0", "title": title, "message": "m", "type": "info"})
            req = urllib.request.Request(
                base + demo_docs.WEBHOOK_PATH, body.encode(), {"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(req, timeout=5) as resp:
                assert resp.status == 200
        with urllib.request.urlopen(base + demo_docs.WEBHOOK_PATH, timeout=5) as resp:
            got = json.loads(resp.read())["received"]
        assert [r["payload"]["title"] for r in got] == ["second", "first"]  # newest first
        lines = (tmp_path / "received.jsonl").read_text().splitlines()
        assert [json.loads(line)["payload"]["title"] for line in lines] == ["first", "second"]
    finally:
        server.shutdown()
        server.server_close()
