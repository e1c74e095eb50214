"""Scenes and group commands through a gateway process and a stream worker on the real
stack: the worker owns a run, so a gateway killed mid-scene loses nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from compose.process import free_port
from compose.services.gateway import GatewayService
from runtime.secrets import load_secrets
from tests.integration.streams_support import Feed, Hub, Worker, read_all
from tests.integration.test_gateway import PASSWORD, REPO, _frame, _until, people, registered
from tests.integration.test_streams import wait_members
from topics import catalogue as t

pytestmark = pytest.mark.integration
__all__ = ["people", "registered"]  # fixtures of test_gateway, used here too


class Gateway:
    """One `homestream gateway` process on a port of its own."""

    def __init__(self, settings, stack_env, tag: str) -> None:
        self.port = free_port()
        self.url = f"http://{settings.host}:{self.port}"
        svc = GatewayService(settings.with_ports(gateway=self.port), load_secrets(settings))
        svc.prepare()
        env = {**os.environ, **stack_env, "HOMESTREAM_GATEWAY_PORT": str(self.port)}
        self.log = svc.dir / f"scenes-{tag}-{self.port}.log"
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                list(svc.argv()), env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO
            )
        up = _until(lambda: svc.healthy() or self.proc.poll() is not None, 60)
        assert up and self.proc.poll() is None, self.log.read_text()

    def call(self, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data, headers, method=method)
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read() or b"null")

    def token(self, username: str) -> str:
        _status, body = self.call(
            "POST", "/v1/auth/token", {"username": username, "password": PASSWORD}
        )
        return str(body["access_token"])

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        self.proc.wait(30)


@pytest.fixture
def stack(settings, stack_env, people, registered, tmp_path) -> Iterator[dict[str, Any]]:
    """A stream worker that knows the home's lamp and plug, and a hub that completes their
    commands; gateways are started by the test."""
    worker = Worker(stack_env, "scenes-gw", tmp_path / "streams")
    gateways: list[Gateway] = []
    hub = None
    try:
        wait_members(settings, 1)
        home = people["home"]
        feed = Feed(settings)
        feed.discover(home, "lamp", ["ON_OFF", "BRIGHTNESS"], "light.dimmer")
        feed.discover(home, "plug", ["ON_OFF"], "switch.plug")
        feed.flush()
        read_all(settings, [t.DEVICE_REGISTRY], {home}, until=lambda r: len(r) >= 2)
        hub = Hub(settings, {home})

        def gateway(tag: str) -> Gateway:
            g = Gateway(settings, stack_env, tag)
            gateways.append(g)
            return g

        yield {"home": home, "gateway": gateway, "hub": hub}
    finally:
        if hub is not None:
            hub.stop()
        for g in gateways:
            g.kill(signal.SIGTERM)
        worker.kill(signal.SIGTERM)


def test_a_scene_completes_when_its_gateway_is_killed_mid_scene(settings, people, stack):
    from websockets.sync.client import connect

    home = stack["home"]
    first = stack["gateway"]("first")
    token = first.token(people["owner"])
    scene = {
        "name": "Leaving",
        "actions": [
            {"device_id": "lamp", "capability": "ON_OFF", "command": "turnOn"},
            {"device_id": "plug", "capability": "ON_OFF", "command": "turnOn", "delay_ms": 12_000},
        ],
    }
    status, _body = first.call("PUT", f"/v1/homes/{home}/scenes/leaving", scene, token)
    assert status == 201
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["reply"] = first.call("POST", f"/v1/homes/{home}/scenes/leaving/run", {}, token)
        except (urllib.error.URLError, ConnectionError, OSError) as exc:
            outcome["error"] = exc

    request = threading.Thread(target=run, daemon=True)
    request.start()

    def started(records: list) -> list:
        return [r for n, r in records if n == "SceneRun" and r["scene_id"] == "leaving"]

    (begun,) = started(read_all(settings, [t.SCENES_RUNS], {home}, until=started))
    run_id = begun["run_id"]
    first.kill()  # mid-scene: the plug's step is 12 s away
    killed = time.time()
    request.join(30)
    assert "error" in outcome, outcome  # the request died with its gateway

    second = stack["gateway"]("second")  # a restarted gateway, told nothing of the run
    with connect(f"ws://{settings.host}:{second.port}/v1/ws?access_token={token}") as ws:
        ws.send(json.dumps({"type": "subscribe", "home_id": home}))
        _frame(ws, lambda f: f["type"] == "snapshot")
        pushed = _frame(
            ws,
            lambda f: f["type"] == "scene.status" and f["run_id"] == run_id,
            timeout=60,
        )
    assert (pushed["status"], pushed["actions_succeeded"], pushed["actions_failed"]) == (
        "COMPLETED",
        2,
        0,
    )
    assert pushed["execution_time_ms"] >= 12_000
    plug = pushed["command_ids"][1]
    assert next(when for when, rec in stack["hub"].acked if rec["command_id"] == plug) > killed

    # The same request on the restarted gateway answers with the run's outcome.
    scene["actions"][1]["delay_ms"] = 500
    assert second.call("PUT", f"/v1/homes/{home}/scenes/leaving", scene, token)[0] == 200
    status, body = second.call("POST", f"/v1/homes/{home}/scenes/leaving/run", {}, token)
    assert status == 200, body
    assert (body["status"], body["actions_succeeded"], body["actions_skipped"]) == (
        "COMPLETED",
        2,
        0,
    )


def test_a_group_command_through_the_gateway_and_the_worker(settings, people, stack):
    home = stack["home"]
    gw = stack["gateway"]("groups")
    token = gw.token(people["owner"])
    group = {"name": "Everything", "devices": ["lamp", "plug"]}
    assert gw.call("PUT", f"/v1/homes/{home}/groups/everything", group, token)[0] in (200, 201)
    status, body = gw.call(
        "POST",
        f"/v1/homes/{home}/groups/everything/commands",
        {"capability": "ON_OFF", "command": "turnOff", "wait": True},
        token,
    )
    assert status == 200, body
    assert body["status"] == "COMPLETED", body
    assert {c["device_id"]: c["status"] for c in body["commands"]} == {
        "lamp": "COMPLETED",
        "plug": "COMPLETED",
    }
    _status, got = gw.call("GET", f"/v1/homes/{home}/commands/{body['command_id']}", None, token)
    assert got["status"] == "COMPLETED" and len(got["commands"]) == 2
