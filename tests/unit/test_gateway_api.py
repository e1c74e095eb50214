"""Request validation (field paths), errors, rate limits and the main flows, in memory."""

from __future__ import annotations

import json

import httpx
import pytest

from gateway.app import create_app
from gateway.auth import issue_token
from gateway.memory import memory_backend
from gateway.schema import validate
from topics import catalogue as t


@pytest.fixture
def backend():
    b = memory_backend(rate_limit="1000/60")
    b.scene_wait_s = 0.05
    b.command_wait_max_s = 0.3
    b.store.add_user("alice", "password-1")
    b.store.add_user("bob", "password-2")
    b.store.add_home("h1", "alice", "Alice's flat")
    b.devices.add("h1", "lamp", ["ON_OFF", "BRIGHTNESS"], name="Lamp")
    b.devices.add("h1", "plug", ["ON_OFF"], type="switch.plug", room="Kitchen")
    return b


@pytest.fixture
async def client(backend):
    transport = httpx.ASGITransport(app=create_app(backend=backend))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        token = issue_token(backend.token_secret, "alice")[0]
        c.headers["Authorization"] = f"Bearer {token}"
        yield c


def _paths(resp) -> list[str]:
    return [d["path"] for d in resp.json()["error"].get("details", [])]


# -- sign in ---------------------------------------------------------------------------
async def test_token_endpoint(backend):
    transport = httpx.ASGITransport(app=create_app(backend=backend))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        ok = await c.post("/v1/auth/token", json={"username": "alice", "password": "password-1"})
        assert ok.status_code == 200
        body = ok.json()
        assert body["token_type"] == "bearer" and body["expires_in"] == 3600
        homes = await c.get(
            "/v1/homes", headers={"Authorization": f"Bearer {body['access_token']}"}
        )
        assert homes.json()["homes"][0] == {
            "home_id": "h1",
            "name": "Alice's flat",
            "role": "owner",
            "permissions": ["view", "control", "configure", "manage"],
        }
        bad = await c.post("/v1/auth/token", json={"username": "alice", "password": "nope-nope"})
        assert bad.status_code == 401 and bad.json()["error"]["code"] == "unauthorized"
        missing = await c.post("/v1/auth/token", json={"username": "alice"})
        assert missing.status_code == 422 and _paths(missing) == ["password"]


async def test_failed_sign_ins_throttle_the_user_then_the_address():
    from gateway.ratelimit import Limit

    b = memory_backend()
    b.failed_login_limit = Limit(3, 900)
    b.failed_login_addr_limit = Limit(5, 900)
    for user in ("alice", "bob", "carol"):
        b.store.add_user(user, f"password-{user}")
    app = create_app(backend=b)

    def client(addr: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(addr, 40000))
        return httpx.AsyncClient(transport=transport, base_url="http://t")

    async def sign_in(c: httpx.AsyncClient, user: str, password: str) -> httpx.Response:
        return await c.post("/v1/auth/token", json={"username": user, "password": password})

    async with client("10.0.0.1") as a, client("10.0.0.2") as other:
        # Wrong passwords for alice: after 3, even the right one waits (429, Retry-After),
        # from any address; bob, from the same address, still signs in.
        assert [(await sign_in(a, "alice", "guess")).status_code for _ in range(3)] == [401] * 3
        refused = await sign_in(other, "alice", "password-alice")
        assert refused.status_code == 429 and 0 < int(refused.headers["Retry-After"]) <= 900
        assert (await sign_in(a, "bob", "password-bob")).status_code == 200
        # A right password does not count: bob signs in again and again.
        for _ in range(6):
            assert (await sign_in(a, "bob", "password-bob")).status_code == 200
        # Two more failures from 10.0.0.1 (5 in all): that address waits for every user,
        # the other address does not.
        assert (await sign_in(a, "bob", "guess")).status_code == 401
        assert (await sign_in(a, "carol", "guess")).status_code == 401
        assert (await sign_in(a, "carol", "password-carol")).status_code == 429
        assert (await sign_in(other, "carol", "password-carol")).status_code == 200


async def test_bad_tokens_get_a_401_that_says_why(backend):
    import jwt

    secret = backend.token_secret
    claims = {"sub": "alice", "iat": 1, "exp": 9_999_999_999}
    cases = {
        issue_token(secret, "alice", 60, now=1_000)[0]: "token expired",
        issue_token(secret + "-not-ours", "alice")[0]: "invalid token signature",
        jwt.encode(claims, secret * 2, algorithm="HS512"): "not signed with HS256",
        jwt.encode(claims, None, algorithm="none"): "not signed with HS256",
        "not-a-token": "malformed token",
    }
    transport = httpx.ASGITransport(app=create_app(backend=backend))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        for token, why in cases.items():
            resp = await c.get("/v1/homes", headers={"Authorization": f"Bearer {token}"})
            assert resp.status_code == 401, why
            error = resp.json()["error"]
            assert error["code"] == "unauthorized" and why in error["message"]


async def test_login_attempts_are_limited(backend):
    backend.login_limit = type(backend.login_limit)(3, 60)
    transport = httpx.ASGITransport(app=create_app(backend=backend))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        codes = [
            (
                await c.post("/v1/auth/token", json={"username": "alice", "password": "x"})
            ).status_code
            for _ in range(4)
        ]
    assert codes == [401, 401, 401, 429]


async def test_rate_limit_per_user(backend, client):
    backend.rate_limit = type(backend.rate_limit)(5, 60)
    codes = [(await client.get("/v1/homes")).status_code for _ in range(6)]
    assert codes == [200] * 5 + [429]
    limited = await client.get("/v1/homes")
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.json()["error"]["code"] == "rate_limited"
    # another user has their own budget
    other = issue_token(backend.token_secret, "bob")[0]
    assert (
        await client.get("/v1/homes", headers={"Authorization": f"Bearer {other}"})
    ).status_code == 200


# -- validation --------------------------------------------------------------------------
async def test_command_validation_names_fields(client):
    r = await client.post("/v1/homes/h1/commands", json={"device_id": "lamp", "capability": 3})
    assert r.status_code == 422
    assert set(_paths(r)) == {"capability", "command"}
    r = await client.post(
        "/v1/homes/h1/commands",
        json={
            "device_id": "lamp",
            "capability": "BRIGHTNESS",
            "command": "setBrightness",
            "parameters": {"brightness": 101},
        },
    )
    assert r.status_code == 422 and _paths(r) == ["parameters.brightness"]
    r = await client.post(
        "/v1/homes/h1/commands",
        json={
            "device_id": "plug",
            "capability": "BRIGHTNESS",
            "command": "setBrightness",
            "parameters": {"brightness": 1},
        },
    )
    assert r.status_code == 422 and _paths(r) == ["capability"]
    assert "ON_OFF" in r.json()["error"]["message"]
    r = await client.post(
        "/v1/homes/h1/commands",
        json={"device_id": "lamp", "capability": "ON_OFF", "command": "turnOnn"},
    )
    assert r.status_code == 422 and _paths(r) == ["command"]
    r = await client.post(
        "/v1/homes/h1/commands",
        json={"device_id": "lamp", "capability": "ON_OFF", "command": "turnOn", "colour": 1},
    )
    assert r.status_code == 422 and _paths(r) == ["colour"]
    r = await client.post(
        "/v1/homes/h1/commands",
        json={"device_id": "ghost", "capability": "ON_OFF", "command": "turnOn"},
    )
    assert r.status_code == 404


async def test_malformed_large_and_wrong_type_bodies(client, backend):
    r = await client.post(
        "/v1/homes/h1/commands", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
    r = await client.post("/v1/homes/h1/commands", json=[1, 2])
    assert r.status_code == 422 and "object" in r.json()["error"]["message"]
    big = {
        "device_id": "lamp",
        "capability": "ON_OFF",
        "command": "turnOn",
        "parameters": {"x": "y" * (backend.max_body_bytes + 10)},
    }
    r = await client.post("/v1/homes/h1/commands", json=big)
    assert r.status_code == 413
    r = await client.post(
        "/v1/homes/h1/commands",
        content=b"a=b",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 415


async def test_scene_and_automation_paths(client):
    scene = {
        "name": "Evening",
        "actions": [
            {"device_id": "lamp", "capability": "ON_OFF", "command": "turnOn"},
            {
                "device_id": "lamp",
                "capability": "BRIGHTNESS",
                "command": "setBrightness",
                "parameters": {"brightness": 30},
                "delay_ms": -1,
            },
        ],
    }
    r = await client.put("/v1/homes/h1/scenes/evening", json=scene)
    assert r.status_code == 422 and _paths(r) == ["actions[1].delay_ms"]
    scene["actions"][1]["delay_ms"] = 0
    scene["actions"][1]["parameters"] = {"brightness": 300}
    r = await client.put("/v1/homes/h1/scenes/evening", json=scene)
    assert r.status_code == 422 and _paths(r) == ["actions[1].parameters.brightness"]
    scene["actions"][1]["parameters"] = {"brightness": 30}
    scene["actions"][0]["group_id"] = "g"
    r = await client.put("/v1/homes/h1/scenes/evening", json=scene)
    assert r.status_code == 422 and _paths(r) == ["actions[0]"]

    auto = {
        "alias": "Night",
        "triggers": [{"trigger": "numeric_state", "device_id": "lamp"}],
        "actions": [{"action": "notify", "message": "hi"}],
    }
    r = await client.put("/v1/homes/h1/automations/night", json=auto)
    assert r.status_code == 422
    assert set(_paths(r)) == {"triggers[0].attribute", "triggers[0]"}
    auto["triggers"] = [{"trigger": "time", "at": "22:00"}]
    auto["conditions"] = [{"condition": "or", "conditions": [{"condition": "sometimes"}]}]
    r = await client.put("/v1/homes/h1/automations/night", json=auto)
    assert r.status_code == 422 and _paths(r) == ["conditions[0].conditions[0].condition"]
    auto["conditions"] = []
    r = await client.put("/v1/homes/h1/automations/night", json=auto)
    assert r.status_code == 201
    assert (await client.put("/v1/homes/h1/automations/night", json=auto)).status_code == 200
    listed = await client.get("/v1/homes/h1/automations")
    assert [a["automation_id"] for a in listed.json()["automations"]] == ["night"]
    runs = await client.get("/v1/homes/h1/automations/night/runs")
    assert runs.status_code == 200 and runs.json()["runs"] == []


async def test_stored_documents_are_published_for_the_stream_workers(client, backend):
    """Every PUT and DELETE of a document is told to the workers on homestream.homes.config,
    keyed per document so compaction keeps the latest; a refused PUT tells nothing."""
    sent = backend.producer
    auto = {
        "alias": "Night",
        "triggers": [{"trigger": "time", "at": "22:00"}],
        "actions": [{"action": "notify", "message": "hi"}],
    }
    assert (await client.put("/v1/homes/h1/automations/night", json=auto)).status_code == 201
    bad = {**auto, "triggers": [{"trigger": "sometimes"}]}
    assert (await client.put("/v1/homes/h1/automations/late", json=bad)).status_code == 422
    assert (await client.delete("/v1/homes/h1/automations/night")).status_code == 204
    configs = [
        (key, rec)
        for key, (topic, _n, rec) in zip(sent.keys, sent.sent, strict=True)
        if topic == t.HOME_CONFIG
    ]
    assert [key for key, _ in configs] == ["h1/automation:night", "h1/automation:night"]
    put, deleted = (rec for _, rec in configs)
    assert (put["kind"], put["doc_id"], put["by"]) == ("automation", "night", "alice")
    assert json.loads(put["document"]) == auto
    assert deleted["document"] is None


async def test_automation_names_only_what_the_home_has(client):
    auto = {
        "alias": "Evening",
        "triggers": [
            {"trigger": "state", "device_id": "ghost", "attribute": "powerState", "to": "ON"},
            {"trigger": "time", "at": "25:00"},
        ],
        "actions": [
            {"device_id": "plug", "capability": "BRIGHTNESS", "command": "setBrightness",
             "parameters": {"brightness": 20}},
            {"group_id": "nogroup", "capability": "ON_OFF", "command": "turnOn"},
            {"scene": "noscene"},
        ],
    }  # fmt: skip
    r = await client.put("/v1/homes/h1/automations/evening", json=auto)
    # the document's own rules first: the impossible time
    assert r.status_code == 422 and _paths(r) == ["triggers[1].at"]
    auto["triggers"][1]["at"] = "22:00"
    r = await client.put("/v1/homes/h1/automations/evening", json=auto)
    assert r.status_code == 422
    assert _paths(r) == [
        "triggers[0].device_id",
        "actions[1].group_id",
        "actions[2].scene_id",
        "actions[0].capability",
    ]
    assert "ghost" in r.json()["error"]["details"][0]["message"]
    auto["triggers"][0]["device_id"] = "lamp"
    auto["actions"] = [{"device_id": "lamp", "capability": "BRIGHTNESS",
                        "command": "setBrightness", "parameters": {"brightness": 20}}]  # fmt: skip
    assert (await client.put("/v1/homes/h1/automations/evening", json=auto)).status_code == 201


async def test_query_validation(client):
    r = await client.get("/v1/homes/h1/notifications?limit=abc")
    assert r.status_code == 422 and _paths(r) == ["limit"]
    r = await client.get("/v1/homes/h1/devices/lamp/history?bucket=2m")
    assert r.status_code == 422 and _paths(r) == ["bucket"]
    r = await client.get("/v1/homes/h1/devices/lamp/history?from=yesterday")
    assert r.status_code == 422 and _paths(r) == ["from"]


def test_validator_edge_cases():
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    assert validate({"n": True}, schema) == [("n", "must be a whole number, got boolean")]
    assert validate({"n": 2.0}, schema) == []
    assert validate({"n": 2.5}, schema)[0][0] == "n"
    assert validate(None, {"type": "string", "nullable": True}) == []
    unique = {"type": "array", "uniqueItems": True, "items": {"type": "string"}}
    assert validate(["a", "b"], unique) == []
    assert validate(["a", "b", "a"], unique) == [("[2]", "repeats an earlier item")]


# -- flows -------------------------------------------------------------------------------
async def test_command_is_produced_and_tracked(client, backend):
    r = await client.post(
        "/v1/homes/h1/commands",
        json={
            "device_id": "lamp",
            "capability": "BRIGHTNESS",
            "command": "setBrightness",
            "parameters": {"brightness": 40},
            "request_id": "r1",
        },
    )
    assert r.status_code == 202
    cid = r.json()["command_id"]
    topic, name, record = backend.producer.sent[-1]
    assert (topic, name) == (t.COMMANDS_REQUESTED, "CommandRequested")
    assert record["command_id"] == cid and record["requested_by"] == "alice"
    assert record["parameters"] == {"brightness": 40} and record["request_id"] == "r1"
    # the stream worker's status, as the Redis sink keeps it in the command log
    backend.fanout.commands.record({"command_id": cid, "home_id": "h1", "status": "COMPLETED"})
    got = await client.get(f"/v1/homes/h1/commands/{cid}")
    assert got.json()["status"] == "COMPLETED" and got.json()["device_id"] == "lamp"
    assert (await client.get("/v1/homes/h1/commands/nope")).status_code == 404


async def test_toggle_is_validated_not_planned(client, backend):
    # Which way a toggle goes depends on the state; the stream worker holds it and plans,
    # the gateway only checks the request and passes it on as asked.
    r = await client.post(
        "/v1/homes/h1/commands",
        json={"device_id": "plug", "capability": "ON_OFF", "command": "toggle"},
    )
    assert r.status_code == 202
    topic, name, record = backend.producer.sent[-1]
    assert (topic, name) == (t.COMMANDS_REQUESTED, "CommandRequested")
    assert (record["capability"], record["command"], record["parameters"]) == (
        "ON_OFF",
        "toggle",
        {},
    )
    assert "desired" not in record


async def test_wait_returns_latest_status_when_no_final_one(client):
    r = await client.post(
        "/v1/homes/h1/commands",
        json={"device_id": "lamp", "capability": "ON_OFF", "command": "turnOn", "wait": True},
    )
    assert r.status_code == 200 and r.json()["status"] == "PENDING"


async def test_devices_patch_delete_add(client, backend):
    r = await client.patch("/v1/homes/h1/devices/lamp", json={"name": "Reading lamp", "room": None})
    assert r.status_code == 200 and r.json()["name"] == "Reading lamp" and r.json()["room"] is None
    listed = (await client.get("/v1/homes/h1/devices")).json()["devices"]
    assert {d["device_id"]: d["name"] for d in listed}["lamp"] == "Reading lamp"
    topic, name, rec = backend.producer.sent[-1]
    assert (topic, name, rec["name"]) == (t.DEVICE_DISCOVERY, "DeviceDiscovered", "Reading lamp")
    assert (await client.patch("/v1/homes/h1/devices/lamp", json={})).status_code == 422

    r = await client.delete("/v1/homes/h1/devices/plug")
    assert r.status_code == 202
    (topic, name, rec), forgot = backend.producer.sent[-2:]  # then the hub's copy, cleared
    assert forgot[2]["kind"] == "device" and forgot[2]["document"] is None
    assert (name, rec["device_id"], rec["removed_by"], rec["source"]) == (
        "DeviceRemoved",
        "plug",
        "alice",
        "api",
    )

    new = {"device_id": "fan", "name": "Fan", "type": "switch.plug", "capabilities": ["ON_OF"]}
    r = await client.post("/v1/homes/h1/devices", json=new)
    assert r.status_code == 422 and _paths(r) == ["capabilities[0]"]
    new["capabilities"] = ["ON_OFF"]
    assert (await client.post("/v1/homes/h1/devices", json=new)).status_code == 202
    new["device_id"] = "lamp"
    assert (await client.post("/v1/homes/h1/devices", json=new)).status_code == 409


async def test_members(client, backend):
    r = await client.put("/v1/homes/h1/members/bob", json={"role": "guest"})
    assert r.status_code == 201 and r.json()["role"] == "guest"
    assert (await client.put("/v1/homes/h1/members/bob", json={"role": "admin"})).status_code == 200
    assert (await client.put("/v1/homes/h1/members/bob", json={"role": "king"})).status_code == 422
    assert (
        await client.put("/v1/homes/h1/members/nobody", json={"role": "guest"})
    ).status_code == 404
    members = (await client.get("/v1/homes/h1/members")).json()["members"]
    assert [(m["username"], m["role"]) for m in members] == [("alice", "owner"), ("bob", "admin")]
    r = await client.delete("/v1/homes/h1/members/alice")
    assert r.status_code == 409 and r.json()["error"]["code"] == "last_owner"
    assert (await client.delete("/v1/homes/h1/members/bob")).status_code == 204
    assert (await client.get("/v1/homes/h1/members/bob")).status_code == 404


async def test_permit_voice_notifications(client, backend):
    r = await client.post("/v1/homes/h1/discovery/permit", json={"duration": 90})
    assert r.status_code == 202 and r.json()["duration"] == 90
    topic, name, rec = backend.producer.sent[-1]
    assert (topic, name, rec["permit"], rec["duration"]) == (
        t.HUB_PAIRING,
        "PairingRequest",
        True,
        90,
    )
    r = await client.post("/v1/homes/h1/voice", json={"text": "what's the weather like"})
    assert r.status_code == 200 and r.json()["intent"] is None and r.json()["response"]
    r = await client.get("/v1/homes/h1/notifications")
    assert r.json() == {"home_id": "h1", "source": "recent", "notifications": []}


async def test_unknown_route_and_method_are_json(client):
    r = await client.get("/v1/nothing")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = await client.post("/v1/homes")
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"


# -- metrics ---------------------------------------------------------------------------
async def test_metrics_count_requests_and_time_them_in_a_histogram(client):
    from prometheus_client.parser import text_string_to_metric_families

    assert (await client.get("/v1/homes")).status_code == 200
    resp = await client.get("/metrics")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
    samples = {
        s.name: s
        for f in text_string_to_metric_families(resp.text)
        for s in f.samples
        if s.labels.get("route") in ("/v1/homes", None) and not s.name.endswith("_created")
    }
    total = samples["homestream_gateway_requests_total"]
    assert total.labels == {"method": "GET", "route": "/v1/homes", "status": "200"}
    assert total.value == 1
    assert samples["homestream_gateway_request_duration_seconds_count"].value == 1
    assert samples["homestream_gateway_fanout_ready"].value in (0, 1)
    assert samples["homestream_gateway_ws_subscribers"].value == 0
    assert "homestream_gateway_fanout_events_total" in samples
    assert "homestream_gateway_fanout_dropped_total" in samples


async def test_home_mode_and_settings(client, backend):
    """Mode and settings default sensibly, are checked, and reach the stream workers."""
    r = await client.get("/v1/homes/h1/mode")
    assert r.json() == {"home_id": "h1", "mode": "home"}
    r = await client.put("/v1/homes/h1/mode", json={"mode": "away"})
    assert r.status_code == 200 and r.json()["mode"] == "away"
    assert (await client.get("/v1/homes/h1/mode")).json()["mode"] == "away"
    r = await client.put("/v1/homes/h1/mode", json={"mode": "vacation"})
    assert r.status_code == 422 and _paths(r) == ["mode"]

    r = await client.get("/v1/homes/h1/settings")
    assert r.json() == {"home_id": "h1", "time_zone": "UTC", "latitude": None, "longitude": None}
    r = await client.put("/v1/homes/h1/settings", json={"time_zone": "Mars/Olympus"})
    assert r.status_code == 422 and _paths(r) == ["time_zone"]
    r = await client.put("/v1/homes/h1/settings", json={"time_zone": "UTC", "latitude": 52.5})
    assert r.status_code == 422 and _paths(r) == ["latitude"]
    berlin = {"time_zone": "Europe/Berlin", "latitude": 52.52, "longitude": 13.405}
    r = await client.put("/v1/homes/h1/settings", json=berlin)
    assert r.status_code == 200 and r.json() == {"home_id": "h1", **berlin}
    published = [
        (key, json.loads(rec["document"]))
        for key, (topic, _n, rec) in zip(backend.producer.keys, backend.producer.sent, strict=True)
        if topic == t.HOME_CONFIG
    ]
    assert published == [("h1/home:mode", {"mode": "away"}), ("h1/home:settings", berlin)]


async def test_a_guest_may_read_the_mode_but_not_set_it(backend):
    backend.store.add_user("gus", "password-3")
    backend.store.set_member("h1", "gus", "guest")
    transport = httpx.ASGITransport(app=create_app(backend=backend))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        c.headers["Authorization"] = f"Bearer {issue_token(backend.token_secret, 'gus')[0]}"
        assert (await c.get("/v1/homes/h1/mode")).status_code == 200
        assert (await c.put("/v1/homes/h1/mode", json={"mode": "away"})).status_code == 403


async def test_a_users_device_fields_are_published_for_the_hub(client, backend):
    """A rename or a room is the hub's too: a ``device`` document on homestream.homes.config
    (the bridge keeps it retained on hub/{home}/config/device/{id}) holding every field the
    user set so far; removing the device clears it."""
    sent = backend.producer
    assert (
        await client.patch("/v1/homes/h1/devices/lamp", json={"name": "Desk"})
    ).status_code == 200
    r = await client.patch("/v1/homes/h1/devices/lamp", json={"room": "Study", "tags": ["work"]})
    assert r.status_code == 200
    assert (await client.delete("/v1/homes/h1/devices/lamp")).status_code == 202
    docs = [
        (key, rec)
        for key, (topic, _n, rec) in zip(sent.keys, sent.sent, strict=True)
        if topic == t.HOME_CONFIG
    ]
    assert [key for key, _ in docs] == ["h1/device:lamp"] * 3
    first, second, removed = (rec for _, rec in docs)
    assert (first["kind"], first["doc_id"], first["by"]) == ("device", "lamp", "alice")
    assert json.loads(first["document"]) == {"name": "Desk"}
    assert json.loads(second["document"]) == {"name": "Desk", "room": "Study", "tags": ["work"]}
    assert removed["document"] is None
