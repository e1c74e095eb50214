# ruff: noqa: F811  (the module fixtures imported from test_gateway are test arguments here)
"""Hostile input against the live gateway (real PostgreSQL, Redis, Kafka): 4xx, never 500.

Each case found by the fuzz of issue 21 is a regression test here, and a hypothesis property
drives arbitrary JSON (deep nesting, control characters, NUL, lone surrogates, NaN, huge
numbers and strings) through every route that reads a JSON body and through the WebSocket.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.ratelimit import Limit, RedisRateLimiter
from tests.integration.test_gateway import (  # noqa: F401  (module fixtures)
    backend,
    client,
    people,
    registered,
)

pytestmark = pytest.mark.integration
PASSWORD = "correct-horse-9"
EXAMPLES = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def owner(client, people) -> dict[str, str]:
    r = client.post("/v1/auth/token", json={"username": people["owner"], "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _json_routes(client, people) -> list[tuple[str, str]]:
    """(method, url) of every route that reads a JSON body, with ids of the test's home."""
    ids = {
        "home_id": people["home"],
        "device_id": "lamp",
        "group_id": "g-hostile",
        "scene_id": "s-hostile",
        "automation_id": "a-hostile",
        "username": people["guest"],
        "command_id": "c-hostile",
        "area_id": "hall",
    }
    routes = [(e.method, e.path.format(**ids)) for e in client.app.state.endpoints if e.body]
    assert len(routes) >= 12
    return routes


def _send(client, method: str, url: str, body: bytes | str, headers: dict[str, str]):
    return client.request(
        method, url, content=body, headers={**headers, "Content-Type": "application/json"}
    )


def _error(r) -> dict[str, Any]:
    body = r.json()
    assert set(body) == {"error"} and {"code", "message"} <= set(body["error"]), body
    return body["error"]


# -- 1. deeply nested JSON ---------------------------------------------------------------------
def test_deep_nesting_is_a_400_on_every_json_route(client, people, owner):
    for method, url in _json_routes(client, people):
        headers = {} if url == "/v1/auth/token" else owner
        for body in ("[" * 5000, "[" * 5000 + "]" * 5000, '{"a":' * 100 + "1" + "}" * 100):
            r = _send(client, method, url, body, headers)
            assert r.status_code == 400, (method, url, r.status_code, r.text)
            assert _error(r)["code"] == "invalid_json"


# -- 2. and 3. NUL and lone surrogates ----------------------------------------------------------
@pytest.mark.parametrize("bad", ["\\u0000", "\\ud800", "a\\udfffb"])
def test_nul_and_lone_surrogates_in_bodies_are_400(client, people, owner, bad):
    home = people["home"]
    cases = [
        ("POST", "/v1/auth/token", '{"username": "%s", "password": "x"}', {}),
        (
            "POST",
            f"/v1/homes/{home}/commands",
            '{"device_id": "%s", "capability": "ON_OFF", "command": "turnOn"}',
            owner,
        ),
        ("PUT", f"/v1/homes/{home}/groups/g1", '{"name": "%s", "devices": ["lamp"]}', owner),
        ("PUT", f"/v1/homes/{home}/scenes/s1", '{"name": "%s", "actions": []}', owner),
        (
            "PUT",
            f"/v1/homes/{home}/automations/a1",
            '{"name": "%s", "triggers": [], "actions": []}',
            owner,
        ),
    ]
    for method, url, template, headers in cases:
        r = _send(client, method, url, template % bad, headers)
        assert r.status_code == 400, (url, r.status_code, r.text)
        assert _error(r)["code"] == "invalid_json"


@pytest.mark.parametrize(
    "path",
    [
        "/v1/homes/{home}%00",
        "/v1/homes/{home}%00/devices",
        "/v1/homes/{home}/devices/lamp%00",
        "/v1/homes/{home}/devices/lamp%00/shadow",
        "/v1/homes/{home}/commands/abc%00",
        "/v1/homes/{home}/groups/g%00",
        "/v1/homes/{home}/scenes/s%00",
        "/v1/homes/{home}/automations/a%00",
        "/v1/homes/{home}/members/x%00yz",
        "/v1/homes/%ED%A0%80/devices",  # an encoded surrogate: not UTF-8
    ],
)
def test_nul_in_a_path_id_is_a_404(client, people, owner, path):
    r = client.get(path.format(home=people["home"]), headers=owner)
    assert r.status_code == 404, r.text
    assert _error(r)["code"] == "not_found"


def test_a_put_of_an_id_that_cannot_exist_is_a_422(client, people, owner):
    r = client.put(
        f"/v1/homes/{people['home']}/groups/g%00",
        json={"name": "G", "devices": ["lamp"]},
        headers=owner,
    )
    assert r.status_code == 422 and _error(r)["details"][0]["path"] == "group_id"


def test_nul_in_the_history_attribute_is_a_422(client, people, owner):
    url = f"/v1/homes/{people['home']}/devices/lamp/history?attribute=on%00"
    r = client.get(url, headers=owner)
    assert r.status_code == 422 and _error(r)["details"][0]["path"] == "attribute"


def test_control_characters_in_a_device_id_are_refused_before_any_lookup(client, people, owner):
    body = {"device_id": "lamp\u0001", "capability": "ON_OFF", "command": "turnOn"}
    r = client.post(f"/v1/homes/{people['home']}/commands", json=body, headers=owner)
    assert r.status_code == 422 and _error(r)["details"][0]["path"] == "device_id"


# -- the limiter ------------------------------------------------------------------------------
def test_the_limiter_counts_any_key_in_the_real_redis(settings):
    limiter = RedisRateLimiter(redis.Redis.from_url(settings.redis_url()))
    limit = Limit(2, 60)
    for key in ("login:\ud800", "login:a\x00b", "login:\\ud800"):
        decisions = [limiter.hit(key, limit, now=1_000_000.0) for _ in range(3)]
        assert [d.allowed for d in decisions] == [True, True, False], key


def test_the_login_limiter_fails_closed_when_redis_is_down(client, backend, people):
    from compose.process import free_port

    saved = backend.limiter
    dead = redis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.5)
    backend.limiter = RedisRateLimiter(dead)
    try:
        body = {"username": people["owner"], "password": PASSWORD}
        r = client.post("/v1/auth/token", json=body)
        assert r.status_code == 503, r.text
        assert r.headers["Retry-After"] and _error(r)["code"] == "unavailable"
    finally:
        backend.limiter = saved
    assert client.post("/v1/auth/token", json=body).status_code == 200


# -- 4. times near the calendar's ends ---------------------------------------------------------
@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("to=0001-01-01T00:00:00Z", "to"),
        ("from=0001-01-01T00:00:00%2B14:00", "from"),
        ("to=9999-12-31T23:59:59-14:00", "to"),
        ("from=-99999999999999999", "from"),
        ("to=99999999999999999999999999", "to"),
    ],
)
def test_history_times_out_of_range_are_422(client, people, owner, query, param):
    r = client.get(f"/v1/homes/{people['home']}/devices/lamp/history?{query}", headers=owner)
    assert r.status_code == 422, r.text
    assert _error(r)["details"][0]["path"] == param


def test_history_from_the_epoch_is_served(client, people, owner):
    url = f"/v1/homes/{people['home']}/devices/lamp/history?to=1970-01-01T00:00:01Z"
    r = client.get(url, headers=owner)
    assert r.status_code == 200, r.text
    assert r.json()["from"] == "1970-01-01T00:00:00Z" and r.json()["points"] == []


# -- 5. the WebSocket --------------------------------------------------------------------------
def _ws_url(owner: dict[str, str]) -> str:
    return "/v1/ws?access_token=" + owner["Authorization"].removeprefix("Bearer ")


def _still_open(ws) -> None:
    ws.send_text('{"type": "ping", "request_id": 7}')
    assert ws.receive_json() == {"type": "pong", "request_id": 7}


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ('{"type": "subscribe", "home_id": "demo-home\\u0000"}', "bad_json"),
        ('{"type": "subscribe", "home_id": "\\ud800"}', "bad_json"),
        ('{"type": "subscribe", "home_id": "demo home"}', "validation_error"),
        ('{"type": "subscribe", "home_id": "h\\u0001"}', "validation_error"),
        ('{"type": "ping", "request_id": NaN}', "bad_json"),
        ('{"type": "ping", "request_id": Infinity}', "bad_json"),
        ("[" * 5000, "bad_json"),
        (
            '{"type": "command", "home_id": "%(home)s", "device_id": "a/b", "capability": "ON_OFF",'
            ' "command": "turnOn"}',
            "validation_error",
        ),
        (
            '{"type": "scene.run", "home_id": "%(home)s", "scene_id": "s\\u0007"}',
            "validation_error",
        ),
    ],
)
def test_hostile_frames_get_an_error_frame_and_the_socket_stays_open(
    client, people, owner, frame, code
):
    with client.websocket_connect(_ws_url(owner)) as ws:
        ws.send_text(frame % {"home": people["home"]} if "%(" in frame else frame)
        reply = ws.receive_json()
        assert reply["type"] == "error" and reply["code"] == code, reply
        json.dumps(reply, allow_nan=False)  # what we send is JSON a browser can parse
        _still_open(ws)


# -- 6. 405 lists every method of the path -----------------------------------------------------
def test_405_allow_lists_every_method_of_the_path(client, people, owner):
    r = client.post(f"/v1/homes/{people['home']}/groups/g1", headers=owner)
    assert r.status_code == 405 and _error(r)["code"] == "method_not_allowed"
    assert {m.strip() for m in r.headers["allow"].split(",")} == {"GET", "HEAD", "PUT", "DELETE"}


# -- the property: arbitrary JSON through every JSON route and the WebSocket -------------------
TEXT = st.text(st.characters(codec=None), max_size=30)  # includes NUL, controls, surrogates
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats()  # NaN and infinities included
    | TEXT
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=20,
)


@st.composite
def hostile_json(draw) -> str:
    value = draw(VALUES)
    text = json.dumps(value, allow_nan=True)  # NaN, Infinity; surrogates as \u escapes
    shape = draw(st.sampled_from(["plain", "deep", "huge-string", "huge-number", "raw-control"]))
    if shape == "deep":
        depth = draw(st.integers(min_value=60, max_value=3000))
        text = "[" * depth + text + "]" * depth
    elif shape == "huge-string":
        text = json.dumps({"name": "x" * draw(st.integers(min_value=1_000, max_value=200_000))})
    elif shape == "huge-number":
        text = '{"n": ' + "9" * draw(st.integers(min_value=20, max_value=6000)) + "}"
    elif shape == "raw-control":
        text = text[: len(text) // 2] + "\x00\x1f" + text[len(text) // 2 :]
    return text


def test_arbitrary_json_through_every_json_route_is_never_a_500(client, people, owner):
    routes = _json_routes(client, people)

    @EXAMPLES
    @given(st.sampled_from(routes), hostile_json())
    def check(route: tuple[str, str], text: str) -> None:
        method, url = route
        headers = {} if url == "/v1/auth/token" else owner
        r = _send(client, method, url, text.encode("utf-8", "surrogatepass"), headers)
        assert r.status_code < 500, (method, url, text[:200], r.status_code, r.text)
        if r.status_code >= 400:
            _error(r)

    check()


def test_arbitrary_json_frames_never_close_the_websocket(client, people, owner):
    with client.websocket_connect(_ws_url(owner)) as ws:

        @EXAMPLES
        @given(hostile_json(), st.sampled_from(["subscribe", "command", "scene.run", "ping", None]))
        def check(text: str, kind: str | None) -> None:
            if kind is not None and text.startswith("{") and text.endswith("}"):
                head = json.dumps({"type": kind, "home_id": people["home"]})
                text = head[:-1] + ", " + text[1:]
                text = text.replace(", }", "}")
            ws.send_text(text.encode("utf-8", "surrogatepass").decode("utf-8", "replace"))
            reply = ws.receive_json()
            while reply["type"] not in ("error", "pong", "snapshot", "command.status"):
                reply = ws.receive_json()  # live events of a home it subscribed
            _still_open(ws)

        check()
