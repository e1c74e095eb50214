"""/v1/graphql against the test stack, driven by an independent client (``gql``).

- a real ``homestream gateway`` process; users and homes made with the real CLI;
- queries and mutations over HTTP: devicesByHome over 100 devices (as REST lists them),
  device, shadow, a command sent and read back, a guest refused with REST's code;
- subscriptions over graphql-transport-ws, fed by Kafka like the WebSocket: deviceState
  (an older version is never sent), commandStatus (PENDING .. COMPLETED, then done),
  notifications;
- devicesByHome with every device's shadow is one Redis round trip (a counting client).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from gql import Client, GraphQLRequest
from gql.transport.exceptions import TransportQueryError
from gql.transport.httpx import HTTPXAsyncTransport
from gql.transport.websockets import WebsocketsTransport

from bench.graphql import write_devices
from compose.process import free_port
from compose.services.gateway import GatewayService
from gateway.app import create_app
from gateway.auth import issue_token
from gateway.backend import Backend
from runtime.secrets import load_secrets
from stores.redis_state import RedisState
from tests.integration.notify_support import until
from topics import catalogue as t
from topics.producer import EventProducer

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
PASSWORD = "correct-horse-9"
DEVICES = 100


def _cli(stack_env: dict[str, str], *args: str) -> None:
    exe = Path(sys.executable).with_name("homestream")
    proc = subprocess.run(
        [str(exe), *args], env={**os.environ, **stack_env}, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr


@pytest.fixture(scope="module")
def people(stack_env, settings) -> dict[str, str]:
    uid = uuid.uuid4().hex[:8]
    names = {k: f"{k}-{uid}" for k in ("owner", "guest")}
    for name in names.values():
        _cli(stack_env, "users", "add", "--username", name, "--password", PASSWORD)
    names["home"] = f"gq-{uid}"
    _cli(stack_env, "homes", "add", "--home", names["home"], "--owner", names["owner"])
    client = redis.Redis.from_url(settings.redis_url())
    write_devices(client, names["home"], DEVICES)
    client.close()
    return names


@pytest.fixture(scope="module")
def gateway(settings, stack_env, people) -> Iterator[str]:
    """A real ``homestream gateway`` on a port of its own; its Kafka feed ready."""
    port = free_port()
    svc = GatewayService(settings.with_ports(gateway=port), load_secrets(settings))
    svc.prepare()
    env = {
        **os.environ,
        **stack_env,
        "HOMESTREAM_GATEWAY_PORT": str(port),
        "HOMESTREAM_GATEWAY_RATE_LIMIT": "100000/60",
    }
    log = svc.dir / f"graphql-{port}.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            list(svc.argv()), env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO
        )
    base = f"http://{settings.host}:{port}"

    def ready() -> bool:
        if proc.poll() is not None:
            return True
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=2) as resp:
                return bool(json.loads(resp.read())["fanout"]["ready"])
        except OSError:
            return False

    try:
        assert until(ready, 90) and proc.poll() is None, log.read_text()
        yield base
    finally:
        proc.terminate()
        proc.wait(30)


def _token(base: str, username: str) -> str:
    r = httpx.post(base + "/v1/auth/token", json={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def _http(base: str, token: str) -> Client:
    headers = {"Authorization": f"Bearer {token}"}
    return Client(transport=HTTPXAsyncTransport(base + "/v1/graphql", headers=headers))


def _ws(base: str, token: str) -> Client:
    url = base.replace("http://", "ws://") + "/v1/graphql"
    transport = WebsocketsTransport(
        url=url,
        init_payload={"Authorization": f"Bearer {token}"},
        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
    )
    return Client(transport=transport)


def _q(text: str, **variables: Any) -> GraphQLRequest:
    return GraphQLRequest(text, variable_values=variables or None)


DEVICES_BY_HOME = """query($h: ID!) { devicesByHome(homeId: $h) {
    id name type online version state metadata { room area }
    capabilities { type commands } shadow { version state } } }"""


async def test_queries_and_mutations_with_gql(gateway, people):
    home = people["home"]
    token = _token(gateway, people["owner"])
    async with _http(gateway, token) as session:
        result = await session.execute(_q(DEVICES_BY_HOME, h=home))
        devices = result["devicesByHome"]
        rest = httpx.get(
            f"{gateway}/v1/homes/{home}/devices", headers={"Authorization": f"Bearer {token}"}
        ).json()["devices"]
        assert [d["id"] for d in devices] == [d["device_id"] for d in rest]
        assert len(devices) == DEVICES
        d7 = next(d for d in devices if d["id"] == "d007")
        assert d7["state"] == {"powerState": "ON", "brightness": 7}
        assert d7["shadow"]["version"] == 1 and d7["metadata"]["room"] == "Kitchen"
        one = await session.execute(
            _q('query($h: ID!) { device(homeId: $h, id: "d042") { name } }', h=home)
        )
        assert one == {"device": {"name": "Light 42"}}
        sent = await session.execute(
            _q(
                """mutation($h: ID!, $i: ExecuteCommandInput!) {
                   executeCommand(homeId: $h, input: $i) { id status deviceId parameters } }""",
                h=home,
                i={
                    "deviceId": "d001",
                    "capability": "BRIGHTNESS",
                    "command": "setBrightness",
                    "parameters": {"brightness": 40},
                },
            )
        )
        command = sent["executeCommand"]
        assert command["status"] == "PENDING" and command["parameters"] == {"brightness": 40}
        read = await session.execute(
            _q(
                "query($h: ID!, $c: ID!) { command(homeId: $h, id: $c) { status } }",
                h=home,
                c=command["id"],
            )
        )
        assert read["command"]["status"] in ("PENDING", "SENT", "FAILED", "TIMEOUT")
    member = httpx.put(
        f"{gateway}/v1/homes/{home}/members/{people['guest']}",
        json={"role": "guest"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert member.status_code in (200, 201), member.text
    async with _http(gateway, _token(gateway, people["guest"])) as session:
        with pytest.raises(TransportQueryError) as refused:
            await session.execute(
                _q('mutation($h: ID!) { deleteDevice(homeId: $h, id: "d001") }', h=home)
            )
        error = refused.value.errors[0]  # type: ignore[index]
        assert error["extensions"]["code"] == "forbidden"
        assert "needs the 'configure' permission" in error["message"]


def _state(producer: EventProducer, home: str, device: str, version: int) -> None:
    producer.send(
        t.STATE_CHANGES,
        "StateChange",
        home,
        device_id=device,
        version=version,
        changed={"brightness": version},
        reported={"brightness": version},
        accepted_at=int(time.time() * 1000),
    )
    producer.flush()


async def test_subscriptions_follow_the_kafka_feed(gateway, people, settings):
    home = people["home"]
    token = _token(gateway, people["owner"])
    producer = EventProducer(settings.kafka_bootstrap, settings.partitions)
    async with _ws(gateway, token) as session:
        events = session.subscribe(
            _q(
                """subscription($h: ID!) { deviceState(homeId: $h, deviceId: "d005",
                   snapshot: true) { kind deviceId version reported } }""",
                h=home,
            )
        )
        first = await asyncio.wait_for(anext(events), 20)
        assert first["deviceState"]["version"] == 1  # the snapshot
        assert first["deviceState"]["reported"]["brightness"] == 5
        _state(producer, home, "d005", 7)
        _state(producer, home, "d005", 3)  # older than one sent: never shown
        _state(producer, home, "d005", 8)
        seen = []
        while not seen or seen[-1] < 8:
            event = await asyncio.wait_for(anext(events), 20)
            seen.append(event["deviceState"]["version"])
        assert seen == [7, 8]
        await events.aclose()

    async with _http(gateway, token) as http:
        sent = await http.execute(
            _q(
                """mutation($h: ID!) { executeCommand(homeId: $h, input: {deviceId: "d002",
                   capability: "ON_OFF", command: "turnOff"}) { id } }""",
                h=home,
            )
        )
    cid = sent["executeCommand"]["id"]
    async with _ws(gateway, token) as session:
        statuses = session.subscribe(
            _q(
                "subscription($h: ID!, $c: ID!) { commandStatus(homeId: $h, commandId: $c) "
                "{ status } }",
                h=home,
                c=cid,
            )
        )
        got = [(await asyncio.wait_for(anext(statuses), 20))["commandStatus"]["status"]]
        base = {
            "command_id": cid,
            "device_id": "d002",
            "capability": "ON_OFF",
            "command": "turnOff",
        }
        for status in ("SENT", "PENDING", "COMPLETED"):  # PENDING again: never shown
            producer.send(t.COMMANDS_STATUS, "CommandStatus", home, status=status, **base)
        producer.flush()
        async for result in statuses:  # ends after the final status
            got.append(result["commandStatus"]["status"])
        assert got == ["PENDING", "SENT", "COMPLETED"]

        notes = session.subscribe(
            _q("subscription($h: ID!) { notifications(homeId: $h) { kind message } }", h=home)
        )
        waiting = asyncio.ensure_future(anext(notes))
        await asyncio.sleep(1)  # subscribed before the event is produced
        producer.send(
            t.NOTIFICATIONS,
            "Notification",
            home,
            kind="LOW_BATTERY",
            severity="WARNING",
            message="d003 is at 5%",
            device_id="d003",
        )
        producer.flush()
        note = await asyncio.wait_for(waiting, 20)
        assert note["notifications"] == {"kind": "LOW_BATTERY", "message": "d003 is at 5%"}
        await notes.aclose()


async def test_subscriptions_refuse_a_stranger(gateway, people, stack_env):
    stranger = f"stranger-{uuid.uuid4().hex[:6]}"
    _cli(stack_env, "users", "add", "--username", stranger, "--password", PASSWORD)
    async with _ws(gateway, _token(gateway, stranger)) as session:
        with pytest.raises(TransportQueryError) as refused:
            async for _ in session.subscribe(
                _q("subscription($h: ID!) { notifications(homeId: $h) { kind } }", h=people["home"])
            ):
                pass
    assert refused.value.errors[0]["extensions"]["code"] == "not_found"  # type: ignore[index]


class CountingRedis(redis.Redis):
    """A redis-py client that notes each round trip: a command, or a whole pipeline."""

    trips: list[str]

    def execute_command(self, *args: Any, **options: Any) -> Any:
        self.trips.append(str(args[0]))
        return super().execute_command(*args, **options)


async def test_devices_by_home_is_one_redis_round_trip(settings, people):
    counting = CountingRedis.from_url(settings.redis_url())
    counting.trips = []
    backend = Backend.connect(settings.model_copy(update={"gateway_rate_limit": "100000/60"}))
    backend.devices = RedisState(counting)
    token = issue_token(backend.token_secret, people["owner"])[0]
    transport = httpx.ASGITransport(app=create_app(backend=backend))
    headers = {"Authorization": f"Bearer {token}"}
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            query = {"query": DEVICES_BY_HOME, "variables": {"h": people["home"]}}
            await c.post("/v1/graphql", json=query, headers=headers)  # loads the script
            counting.trips.clear()
            resp = await c.post("/v1/graphql", json=query, headers=headers)
            assert len(resp.json()["data"]["devicesByHome"]) == DEVICES
            assert counting.trips == ["EVALSHA"]  # every hash, shadows included
            counting.trips.clear()
            rest = await c.get(f"/v1/homes/{people['home']}/devices", headers=headers)
            assert len(rest.json()["devices"]) == DEVICES and counting.trips == ["EVALSHA"]
    finally:
        await backend.stop()
        counting.close()
