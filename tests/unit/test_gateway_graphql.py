"""/v1/graphql in memory: the brief's queries and mutations, the REST role checks and
error codes, the dataloader's one read per home, depth and cost limits, the SDL file."""

from __future__ import annotations

import httpx
import pytest

from gateway.app import create_app
from gateway.auth import issue_token
from gateway.graphql.limits import COST_CODE, DEPTH_CODE, MAX_COST, MAX_DEPTH
from gateway.graphql.sdl import SDL_FILE, sdl
from gateway.memory import memory_backend
from topics import catalogue as t


@pytest.fixture
def backend():
    b = memory_backend(rate_limit="1000/60")
    b.scene_wait_s = 0.05
    b.command_wait_max_s = 0.3
    for user in ("alice", "gina"):
        b.store.add_user(user, "password-1")
    b.store.add_home("h1", "alice", "Alice's flat")
    b.store.set_member("h1", "gina", "guest")
    b.devices.add("h1", "lamp", ["ON_OFF", "BRIGHTNESS"], name="Lamp", state={"power": "ON"})
    b.devices.add("h1", "plug", ["ON_OFF"], type="switch.plug", room="Kitchen")
    return b


def _client(backend, user: str | None = "alice") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(backend=backend))
    headers = {}
    if user is not None:
        headers["Authorization"] = f"Bearer {issue_token(backend.token_secret, user)[0]}"
    return httpx.AsyncClient(transport=transport, base_url="http://t", headers=headers)


async def _gql(backend, query: str, variables=None, user: str | None = "alice") -> dict:
    async with _client(backend, user) as c:
        resp = await c.post("/v1/graphql", json={"query": query, "variables": variables or {}})
    assert resp.status_code == 200, resp.text
    return resp.json()


def _codes(result: dict) -> list[str]:
    return [e.get("extensions", {}).get("code") for e in result.get("errors") or []]


async def test_devices_by_home_shows_what_rest_shows(backend):
    q = """{ devicesByHome(homeId: "h1") { id name type online version state
              capabilities { type commands attributes { name kind } }
              metadata { room area tags } shadow { version state } } }"""
    result = await _gql(backend, q)
    assert "errors" not in result
    devices = result["data"]["devicesByHome"]
    async with _client(backend) as c:
        rest = (await c.get("/v1/homes/h1/devices")).json()["devices"]
    assert sorted(d["id"] for d in devices) == sorted(d["device_id"] for d in rest)
    lamp = next(d for d in devices if d["id"] == "lamp")
    assert lamp["state"] == {"power": "ON"} and lamp["shadow"]["version"] == 1
    assert lamp["metadata"] == {"room": "Living Room", "area": "living_room", "tags": []}
    on_off = lamp["capabilities"][0]
    assert on_off["type"] == "ON_OFF" and "turnOn" in on_off["commands"]
    plug = next(d for d in devices if d["id"] == "plug")
    assert plug["shadow"] is None and plug["type"] == "switch.plug"


async def test_a_hundred_devices_and_their_shadows_are_one_read(backend):
    for i in range(100):
        backend.devices.add("h1", f"d{i:03}", ["ON_OFF"], state={"power": "OFF"})
    backend.devices.reads = 0
    q = '{ devicesByHome(homeId: "h1") { id shadow { version } } }'
    result = await _gql(backend, q)
    assert len(result["data"]["devicesByHome"]) == 102
    assert backend.devices.reads == 1
    # device() by alias: batched by the dataloader into one read as well
    backend.devices.reads = 0
    aliases = " ".join(f'a{i}: device(homeId: "h1", id: "d{i:03}") {{ id }}' for i in range(20))
    result = await _gql(backend, "{ " + aliases + " }")
    assert result["data"]["a7"] == {"id": "d007"} and backend.devices.reads == 1


async def test_devices_by_type_and_one_device(backend):
    result = await _gql(
        backend,
        '{ devicesByType(homeId: "h1", type: "switch.plug") { id } '
        'device(homeId: "h1", id: "lamp") { name } none: device(homeId: "h1", id: "x") { id } }',
    )
    assert result["data"] == {
        "devicesByType": [{"id": "plug"}],
        "device": {"name": "Lamp"},
        "none": None,
    }


async def test_same_errors_as_rest(backend):
    q = '{ devicesByHome(homeId: "h1") { id } }'
    assert _codes(await _gql(backend, q, user=None)) == ["unauthorized"]
    assert _codes(await _gql(backend, '{ devicesByHome(homeId: "zz") { id } }')) == ["not_found"]
    cmd = """mutation($i: ExecuteCommandInput!) { executeCommand(homeId: "h1", input: $i)
             { id status } }"""
    i = {"deviceId": "lamp", "capability": "ON_OFF", "command": "turnOn"}
    guest = await _gql(backend, cmd, {"i": i}, user="gina")
    assert _codes(guest) == ["forbidden"]
    assert guest["errors"][0]["extensions"]["status"] == 403
    async with _client(backend, "gina") as c:
        rest = await c.post(
            "/v1/homes/h1/commands",
            json={"device_id": "lamp", **{"capability": "ON_OFF", "command": "turnOn"}},
        )
    assert rest.json()["error"]["message"] == guest["errors"][0]["message"]
    bad = await _gql(
        backend,
        cmd,
        {
            "i": {
                **i,
                "command": "setBrightness",
                "capability": "BRIGHTNESS",
                "parameters": {"brightness": 400},
            }
        },
    )
    assert _codes(bad) == ["validation_error"]
    assert bad["errors"][0]["extensions"]["details"][0]["path"] == "parameters.brightness"


async def test_mutations_go_through_the_rest_handlers(backend):
    cmd = """mutation($i: [ExecuteCommandInput!]!) {
               executeBatchCommands(homeId: "h1", inputs: $i) { id status deviceId } }"""
    inputs = [
        {"deviceId": d, "capability": "ON_OFF", "command": "turnOn"} for d in ("lamp", "plug")
    ]
    result = await _gql(backend, cmd, {"i": inputs})
    commands = result["data"]["executeBatchCommands"]
    assert [c["status"] for c in commands] == ["PENDING", "PENDING"]
    sent = [r for topic, _name, r in backend.producer.sent if topic == t.COMMANDS_REQUESTED]
    assert {r["command_id"] for r in sent} == {c["id"] for c in commands}
    mixed = await _gql(backend, cmd, {"i": [inputs[0], {**inputs[1], "deviceId": "nope"}]})
    assert _codes(mixed) == ["not_found"] and mixed["data"] is None
    ext = mixed["errors"][0]["extensions"]
    assert ext["refused"] == [1] and len(ext["sent"]) == 1  # the good one went out
    assert "inputs[1]: device 'nope' not found" in mixed["errors"][0]["message"]
    renamed = await _gql(
        backend, 'mutation { renameDevice(homeId: "h1", id: "lamp", name: "Desk lamp") { name } }'
    )
    assert renamed["data"]["renameDevice"]["name"] == "Desk lamp"
    added = await _gql(
        backend,
        """mutation { registerDevice(homeId: "h1", input: {id: "new1",
        name: "New", type: "switch.plug", capabilities: ["ON_OFF"]}) { deviceId status } }""",
    )
    assert added["data"]["registerDevice"] == {"deviceId": "new1", "status": "registering"}
    gone = await _gql(backend, 'mutation { deleteDevice(homeId: "h1", id: "plug") }')
    assert gone["data"]["deleteDevice"] is True
    missing = await _gql(backend, 'mutation { runScene(homeId: "h1", sceneId: "nope") { status } }')
    assert _codes(missing) == ["not_found"]


async def test_update_device_sets_the_briefs_icon_and_tags(backend):
    """The brief's metadata (room, icon, tags) is the user's to set, through GraphQL's
    updateDevice and REST's PATCH alike; a field left out is kept."""
    update = """mutation($i: UpdateDeviceInput!) {
                  updateDevice(homeId: "h1", id: "lamp", input: $i) {
                    name metadata { room icon tags } } }"""
    first = await _gql(backend, update, {"i": {"icon": "lightbulb", "tags": ["main", "overhead"]}})
    assert first["data"]["updateDevice"] == {
        "name": "Lamp",
        "metadata": {"room": "Living Room", "icon": "lightbulb", "tags": ["main", "overhead"]},
    }
    second = await _gql(backend, update, {"i": {"room": "Study"}})
    assert second["data"]["updateDevice"]["metadata"] == {
        "room": "Study",
        "icon": "lightbulb",
        "tags": ["main", "overhead"],
    }
    async with _client(backend) as c:
        shown = (await c.get("/v1/homes/h1/devices/lamp")).json()
        assert (shown["icon"], shown["tags"]) == ("lightbulb", ["main", "overhead"])
        bad = await c.patch("/v1/homes/h1/devices/lamp", json={"icon": "No Spaces!"})
        assert bad.status_code == 422 and "icon" in bad.text
        dupes = await c.patch("/v1/homes/h1/devices/lamp", json={"tags": ["a", "a"]})
        assert dupes.status_code == 422 and "tags" in dupes.text
    refused = await _gql(backend, update, {"i": {"icon": "lamp"}}, user="gina")  # a guest
    assert _codes(refused) == ["forbidden"]


async def test_abusive_queries_are_refused_with_a_clear_error(backend):
    fields = "id shadow { version } history { points { ts } }"
    costly = (
        "{ "
        + " ".join(f'a{i}: devicesByHome(homeId: "h1") {{ {fields} }}' for i in range(3))
        + " }"
    )
    result = await _gql(backend, costly)
    assert _codes(result) == [COST_CODE] and result.get("data") is None
    assert f"over the limit of {MAX_COST:,}" in result["errors"][0]["message"]
    everything = """{ devicesByHome(homeId: "h1") { id homeId name type manufacturer model
        protocol online lastSeen battery version firmware state desired delta
        metadata { room area icon tags } capabilities { type commands
        attributes { name kind unit minimum maximum values writable } }
        shadow { version state metadata timestamp } history { bucket points { ts value } } } }"""
    assert "errors" not in await _gql(backend, everything)  # a whole device view passes
    # introspection's types nest without end: the depth limit stops it
    nested = "name"
    for _ in range(8):
        nested = f"fields {{ type {{ {nested} }} }}"
    result = await _gql(backend, "{ __schema { types { " + nested + " } } }")
    assert _codes(result)[0] == DEPTH_CODE  # (graphql-core adds its own introspection limit)
    assert f"over the limit of {MAX_DEPTH}" in result["errors"][0]["message"]
    from graphql import get_introspection_query

    assert "errors" not in await _gql(backend, get_introspection_query(descriptions=True))


def test_the_sdl_file_is_the_schema():
    """docs/schema.graphql is the schema served (`make graphql-schema` writes it)."""
    assert SDL_FILE.read_text() == sdl(), (
        "docs/schema.graphql drifted from gateway/graphql: run `make graphql-schema` and "
        "review the diff"
    )


# Codes a generated query may get: ids that are not there, input REST refuses, limits.
EXPECTED_CODES = {"not_found", "validation_error", "forbidden", COST_CODE, DEPTH_CODE}


def test_generated_queries_get_data_or_a_coded_error(backend):
    """Schemathesis generates operations from the live schema (introspection): each gets
    an HTTP 200 and either data or errors with one of the REST codes, never a crash."""
    import hypothesis
    import schemathesis
    from hypothesis import HealthCheck, given
    from hypothesis import strategies as st
    from schemathesis.graphql import nodes

    backend.rate_limit = backend.rate_limit.parse("1000000/60", "limit")
    for name in ("DeviceType", "CapabilityType"):
        values = st.sampled_from(["light.dimmer", "switch.plug", "ON_OFF", "", "x" * 300])
        schemathesis.graphql.scalar(name, values.map(nodes.String))
    schemathesis.graphql.scalar("JSON", st.just(nodes.Object([])))
    app = create_app(backend=backend)
    headers = {"Authorization": f"Bearer {issue_token(backend.token_secret, 'alice')[0]}"}
    problems: list[str] = []
    operations = 0
    for found in schemathesis.graphql.from_asgi("/v1/graphql", app).get_all_operations():
        op = found.ok()
        operations += 1

        @given(case=op.as_strategy())
        @hypothesis.settings(
            max_examples=5,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
        )
        def check(case):
            label = case.operation.label
            resp = case.call(headers=headers)
            body = resp.json()
            codes = {e.get("extensions", {}).get("code") for e in body.get("errors") or []}
            if resp.status_code != 200 or "data" not in body or not codes <= EXPECTED_CODES:
                problems.append(f"{label}: {resp.status_code} {body} for {case.body}")

        check()
    assert operations == 13  # every query and mutation (subscriptions are not generated)
    assert not problems, "\n".join(problems[:5])


def test_versions_never_go_back_within_a_life():
    from gateway.versions import DeviceVersions, StatusProgress

    v = DeviceVersions()
    v.seed("lamp", 5)
    assert [v.admit("lamp", n) for n in (4, 5, 7, 6, 7)] == [False, True, True, False, True]
    v.forget("lamp")  # removed and registered again
    assert v.admit("lamp", 1)
    p = StatusProgress()
    steps = ("PENDING", "SENT", "PENDING", "COMPLETED", "FAILED")
    assert [p.admit(s) for s in steps] == [True, True, False, True, False]
