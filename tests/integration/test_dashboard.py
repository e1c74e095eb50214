"""The whole pipeline, live: a simulated hub over MQTT, the bridge, a stream worker, the
Redis sink and the gateway, each its own process on the test stack; then the WebSocket
protocol and the dashboard in headless Chromium (Debian's `chromium`, driven by
Playwright): sign in, switch a simulated light on, and see its tile change from the
device's own report."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from compose.process import free_port
from gateway.service import gateway_argv
from hub.bridge import forget_session
from sinks.redis_sink import redis_sink_argv
from tests.integration.bridge_support import BridgeProc
from tests.integration.streams_support import Worker

pytestmark = pytest.mark.integration

PASSWORD = "correct-horse-9"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
LAMP = "living-room-lamp"


def _spawn(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        argv,
        env={**os.environ, **env},
        stdout=open(log, "ab"),
        stderr=subprocess.STDOUT,
    )


def _get(url: str, token: str | None = None) -> dict:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as r:
        return json.loads(r.read())


def _token(base: str, user: str) -> str:
    req = urllib.request.Request(
        f"{base}/v1/auth/token",
        data=json.dumps({"username": user, "password": PASSWORD}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())["access_token"]


@pytest.fixture(scope="module")
def live(stack_env, settings, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("live")
    uid = uuid.uuid4().hex[:6]
    user, home = f"dash-{uid}", f"dash-{uid}"
    for args in (
        ("users", "add", "--username", user, "--password", PASSWORD),
        ("homes", "add", "--home", home, "--owner", user),
    ):
        cli = [sys.executable, "-m", "homestream.cli", *args]
        done = subprocess.run(cli, env={**os.environ, **stack_env}, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    gw_port = int(stack_env["HOMESTREAM_GATEWAY_PORT"])
    base = f"http://{settings.host}:{gw_port}"
    bridge = BridgeProc(stack_env, f"dash-{uid}", tmp, free_port())
    procs = [
        bridge.proc,
        Worker(stack_env, f"dash-{uid}", tmp / "worker").proc,
        _spawn(
            redis_sink_argv(tmp / "sink", free_port(), name=f"dash-{uid}"),
            stack_env,
            tmp / "sink.log",
        ),
        _spawn(
            [*gateway_argv(tmp / "gw", gw_port), "--loglevel", "warning"],
            stack_env,
            tmp / "gateway.log",
        ),
    ]
    try:
        bridge.wait_ready()
        sim = [
            sys.executable,
            "-m",
            "homestream.cli",
            "simulate",
            "--home",
            home,
            "--floorplan",
            "demo",
            "--owner",
            user,
            "--no-outages",
            "--progress",
            "60",
            "--sim-dir",
            str(tmp / "sim"),
        ]
        procs.append(_spawn(sim, stack_env, tmp / "sim.log"))
        token = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # the gateway is up and the lamp has a state
            try:
                token = token or _token(base, user)
                lamp = _get(f"{base}/v1/homes/{home}/devices/{LAMP}", token)
                if lamp.get("state", {}).get("powerState"):
                    break
            except OSError:
                pass
            time.sleep(0.5)
        else:
            logs = {p.name: p.read_text()[-1500:] for p in tmp.glob("*.log")}
            raise AssertionError(f"the pipeline never showed the lamp: {logs}")
        yield {"base": base, "user": user, "home": home, "token": token, "tmp": tmp}
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        forget_session(settings, bridge.name)


def test_websocket_snapshot_commands_and_live_state(live):
    from websockets.sync.client import connect

    ws_url = live["base"].replace("http", "ws") + f"/v1/ws?access_token={live['token']}"
    with connect(ws_url, open_timeout=10) as ws:
        # Frames that did not match are kept: the state frame and COMPLETED come from
        # different topics, so either may arrive first.
        skipped: list[dict] = []

        def next_frame(pred, timeout=30):
            for i, frame in enumerate(skipped):
                if pred(frame):
                    return skipped.pop(i)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                frame = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
                if pred(frame):
                    return frame
                skipped.append(frame)
            raise AssertionError(f"no such frame; skipped {skipped[-5:]}")

        ws.send(json.dumps({"type": "subscribe", "home_id": live["home"]}))
        snap = next_frame(lambda f: f["type"] == "snapshot")
        lamp = next(d for d in snap["devices"] if d["device_id"] == LAMP)
        # A bad frame gets an error and the socket stays open.
        ws.send("{not json")
        assert next_frame(lambda f: f["type"] == "error")["code"] == "bad_json"
        ws.send(json.dumps({"type": "ping"}))
        next_frame(lambda f: f["type"] == "pong")
        on = lamp["state"]["powerState"] != "ON"
        ws.send(
            json.dumps(
                {
                    "type": "command",
                    "request_id": "r-1",
                    "device_id": LAMP,
                    "capability": "ON_OFF",
                    "command": "turnOn" if on else "turnOff",
                    "parameters": {},
                }
            )
        )
        done = next_frame(
            lambda f: (
                f["type"] == "command.status"
                and f.get("request_id") == "r-1"
                and f["status"] == "COMPLETED"
            )
        )
        assert done["command_id"]
        state = next_frame(
            lambda f: (
                f["type"] == "device.state"
                and f["device_id"] == LAMP
                and f["reported"].get("powerState") == ("ON" if on else "OFF")
            )
        )
        assert state["version"] > lamp["version"]
        # A guest-level check of roles on the socket: another home is refused, socket open.
        ws.send(json.dumps({"type": "subscribe", "home_id": "not-my-home"}))
        assert next_frame(lambda f: f["type"] == "error")["code"] == "not_found"
        ws.send(json.dumps({"type": "ping"}))
        next_frame(lambda f: f["type"] == "pong")


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")
def test_dashboard_in_chromium(live):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless=new", "--no-sandbox", "--disable-background-networking"],
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(live["base"] + "/")
            page.fill("#username", live["user"])
            page.fill("#password", PASSWORD)
            page.click("#sign-in")
            tile = page.locator(f"#tile-{LAMP}")
            tile.wait_for(timeout=30_000)
            page.wait_for_function("() => document.querySelector('#conn').textContent === 'live'")
            was_on = "on" in (tile.get_attribute("class") or "").split()
            version = int(tile.get_attribute("data-version") or 0)
            tile.locator("button.power").click()
            # The tile follows the lamp's own report: the class flips only from `reported`.
            page.wait_for_function(
                f"() => document.querySelector('#tile-{LAMP}').classList.contains('on') "
                f"=== {'false' if was_on else 'true'}",
                timeout=30_000,
            )
            assert int(tile.get_attribute("data-version") or 0) > version
            assert tile.locator(".state").inner_text().startswith("Off" if was_on else "On")
            page.screenshot(path=str(live["tmp"] / "dashboard.png"), full_page=True)
        finally:
            browser.close()
