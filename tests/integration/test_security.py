"""Security you can show: another home's credentials are refused on every REST route, on
the WebSocket and on MQTT; the gateway serves HTTPS with the stack's CA when asked."""

from __future__ import annotations

import json
import re
import ssl
import urllib.error
import urllib.request
import uuid

import pytest
from starlette.testclient import TestClient

from compose.stack import Stack
from gateway.app import create_app
from gateway.backend import Backend
from gateway.routes import all_endpoints
from runtime.config import Settings
from runtime.secrets import BRIDGE_MQTT_USER, load_secrets
from tests.integration.test_mqtt_acl import Client, _drain

pytestmark = pytest.mark.integration

PASSWORD = "correct-horse-sec-1"


@pytest.fixture(scope="module")
def two_homes(stack_env):
    import os
    import subprocess
    import sys
    from pathlib import Path

    exe = Path(sys.executable).with_name("homestream")

    def cli(*args: str) -> str:
        proc = subprocess.run(
            [str(exe), *args], env={**os.environ, **stack_env}, capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    uid = uuid.uuid4().hex[:6]
    people = {"victim": f"sec-v-{uid}", "intruder": f"sec-i-{uid}"}
    for user in people.values():
        cli("users", "add", "--username", user, "--password", PASSWORD)
    homes = {"victim": f"secv-{uid}", "intruder": f"seci-{uid}"}
    cli("homes", "add", "--home", homes["victim"], "--owner", people["victim"])
    cli("homes", "add", "--home", homes["intruder"], "--owner", people["intruder"])
    hub = json.loads(cli("hubs", "add", "--home", homes["intruder"]))
    return people, homes, hub


def _fill(path: str, home: str, user: str) -> str:
    """A route's path with the victim's home and user, and made-up ids for the rest."""
    path = path.replace("{home_id}", home).replace("{username}", user)
    return re.sub(r"\{[a-z_]+\}", "x1", path)


def test_another_homes_credentials_are_refused_on_every_route(settings, two_homes):
    people, homes, hub = two_homes
    victim = homes["victim"]
    backend = Backend.connect(settings)
    routes = [e for e in all_endpoints() if "{home_id}" in e.path]
    assert len(routes) > 40  # every home route the gateway has
    with TestClient(create_app(backend=backend)) as client:
        r = client.post(
            "/v1/auth/token", json={"username": people["intruder"], "password": PASSWORD}
        )
        token = r.json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        answers = {}
        for e in routes:
            # A valid body where the route needs one, so only the membership check can refuse.
            body = {"role": "guest"} if e.path.endswith("/members/{username}") else {}
            path = _fill(e.path, victim, people["victim"])
            resp = client.request(e.method, path, headers=auth, json=body)
            answers[f"{e.method} {e.path}"] = resp.status_code
        # Not a member: the home does not exist for the intruder (404), before any body check.
        assert {k: v for k, v in answers.items() if v != 404} == {}
        # The same token reaches its own home.
        own = client.get(f"/v1/homes/{homes['intruder']}", headers=auth)
        assert own.status_code == 200

        # The WebSocket: subscribing to the victim's home is an error frame, not a snapshot.
        with client.websocket_connect(f"/v1/ws?access_token={token}") as ws:
            ws.send_json({"type": "subscribe", "home_id": victim})
            frame = ws.receive_json()
            assert frame["type"] == "error" and "snapshot" not in json.dumps(frame), frame
            ws.send_json({"type": "subscribe", "home_id": homes["intruder"]})
            assert ws.receive_json()["type"] == "snapshot"

    # MQTT: the intruder home's hub can neither read nor write the victim's topics.
    c = Client(settings, hub["username"], hub["password"])
    platform = Client(settings, BRIDGE_MQTT_USER, load_secrets(settings).bridge_mqtt_password)
    try:
        assert c.rc == 0 and platform.rc == 0
        c.subscribe(f"hub/{victim}/#")  # Mosquitto 2.0 grants it, then filters each message
        assert not platform.publish(f"hub/{victim}/command/lamp-1", "theirs").is_failure
        assert not [m for m in _drain(c.messages, 1.5) if m.payload == b"theirs"]
        assert c.publish(f"hub/{victim}/state/lamp-1", '{"state": {}}').value == 0x87
        assert c.subscribe(f"hub/{homes['intruder']}/#") == [1]
    finally:
        c.close()
        platform.close()
    print(f"{len(answers)} REST routes refused, WebSocket and MQTT refused")


def test_the_gateway_serves_https_with_the_stacks_ca(stack_env, two_homes):
    people, _homes, _hub = two_homes
    env = {**stack_env, "HOMESTREAM_GATEWAY": "1", "HOMESTREAM_GATEWAY_TLS": "on"}
    settings = Settings.from_env(env)
    stack = Stack(settings, say=lambda line: None)
    stack.up(install=False, demo=False)
    try:
        assert settings.gateway_url.startswith("https://")
        ca = ssl.create_default_context(cafile=str(settings.mqtt_ca_file))
        req = urllib.request.Request(
            f"{settings.gateway_url}/v1/auth/token",
            json.dumps({"username": people["victim"], "password": PASSWORD}).encode(),
            {"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10, context=ca) as resp:
            assert resp.status == 200 and json.loads(resp.read())["token_type"] == "bearer"
        # Without the CA, the certificate is not trusted; plain HTTP gets no answer.
        with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
            urllib.request.urlopen(f"{settings.gateway_url}/healthz", timeout=10)
        plain = settings.gateway_url.replace("https://", "http://")
        with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
            urllib.request.urlopen(f"{plain}/healthz", timeout=10).read()
        assert {r.name: r.healthy for r in stack.status()}["gateway"]
    finally:
        stack.supervisor.shutdown()
