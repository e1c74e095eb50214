"""Pairing end to end, every hop real: POST /v1/homes/{h}/discovery/permit on a gateway
process -> Kafka -> bridge process -> Mosquitto (TLS) -> `homestream hub run` -> zigpy-znp
-> the ZNP simulator opens permit-join -> a simulated dimmer joins and is interviewed ->
its descriptor goes back up -> the stream worker registers it -> `device.added` on the
WebSocket. Then a command through Kafka comes back as the device's new state and a
COMPLETED status, and the radio unplugged takes the device offline (with the cloud's
DEVICE_OFFLINE notification) until it is back.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from compose.process import free_port
from compose.services.gateway import GatewayService
from hub.adapters.zigbee import device_id_for
from hub.bridge import forget_session
from hub.znpsim.devices import ieee_for, ieee_text
from hub.znpsim.server import ThreadedSimulator
from runtime.secrets import load_secrets
from tests.integration.bridge_support import BridgeProc
from tests.integration.streams_support import CODEC, Worker
from topics import catalogue as t
from topics.producer import EventProducer

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
PASSWORD = "correct-horse-7"


def _until(pred, timeout: float = 30, step: float = 0.1, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out: {what}")


class Frames:
    """A WebSocket subscription to one home, with its frames kept."""

    def __init__(self, url: str, home: str) -> None:
        from websockets.sync.client import connect

        self.ws = connect(url, open_timeout=10)
        self.ws.send(json.dumps({"type": "subscribe", "home_id": home}))
        self.seen: list[dict[str, Any]] = []
        self.wait(lambda f: f["type"] == "snapshot")

    def wait(self, pred, timeout: float = 60) -> dict[str, Any]:
        return self.wait_count(pred, 1, timeout)[0]

    def wait_count(self, pred, n: int, timeout: float = 60) -> list[dict[str, Any]]:
        """The first ``n`` frames (seen or still to come) that ``pred`` accepts."""
        deadline = time.monotonic() + timeout
        while True:
            found = [f for f in self.seen if pred(f)]
            if len(found) >= n:
                return found[:n]
            if time.monotonic() >= deadline:
                raise AssertionError(f"{len(found)} of {n} frames; last: {self.seen[-5:]}")
            try:
                frame = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            except TimeoutError:
                continue
            self.seen.append(frame)


@pytest.fixture
def cloud(stack_env, settings, run_cli, tmp_path):
    """A home with an owner and a hub login, and the bridge, worker and gateway for it."""
    home = f"pair-{uuid.uuid4().hex[:6]}"
    owner = f"owner-{home}"
    run_cli("users", "add", "--username", owner, "--password", PASSWORD)
    run_cli("homes", "add", "--home", home, "--owner", owner)
    creds = json.loads(run_cli("hubs", "add", "--home", home).stdout)
    bridge = BridgeProc(stack_env, f"pair-{uuid.uuid4().hex[:4]}", tmp_path, free_port())
    worker = Worker(stack_env, f"pair-{uuid.uuid4().hex[:4]}", tmp_path / "w")
    port = free_port()
    svc = GatewayService(settings.with_ports(gateway=port), load_secrets(settings))
    svc.prepare()
    env = {**os.environ, **stack_env, "HOMESTREAM_GATEWAY_PORT": str(port)}
    with (tmp_path / "gateway.log").open("ab") as out:
        gateway = subprocess.Popen(
            list(svc.argv()), env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO
        )
    try:
        bridge.wait_ready()
        _until(lambda: svc.healthy() or gateway.poll() is not None, 60, what="gateway")
        assert gateway.poll() is None, (tmp_path / "gateway.log").read_text()[-2000:]
        base = f"http://{settings.host}:{port}"
        body = json.dumps({"username": owner, "password": PASSWORD}).encode()
        req = urllib.request.Request(
            base + "/v1/auth/token", body, {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            token = json.loads(resp.read())["access_token"]
        yield {"home": home, "creds": creds, "base": base, "token": token, "port": port}
    finally:
        gateway.send_signal(signal.SIGTERM)
        gateway.wait(30)
        worker.kill(signal.SIGTERM)
        bridge.kill(signal.SIGTERM)
        forget_session(settings, bridge.name)


def _hub_toml(path: Path, settings, creds: dict, home: str, radio: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    (path.parent / "hub.secret").write_text(creds["password"])
    path.write_text(
        f"""
[cloud]
home = "{home}"
username = "{creds["username"]}"
password_file = "hub.secret"
host = "{settings.host}"
port = {settings.ports.mqtt_tls}
tls_ca = "{settings.mqtt_ca_file}"

[hub]
state_dir = "state"

{radio}
"""
    )
    return path


def _start_hub(config: Path) -> tuple[subprocess.Popen[bytes], Path]:
    log = config.parent / "hub.log"
    hub = subprocess.Popen(
        [sys.executable, "-m", "homestream.cli", "hub", "run", "--config", str(config)],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        cwd=REPO,
    )
    return hub, log


def _stop_hub(hub: subprocess.Popen[bytes]) -> None:
    hub.send_signal(signal.SIGTERM)
    try:
        hub.wait(30)
    except subprocess.TimeoutExpired:
        hub.kill()
        hub.wait()


def _permit(cloud: dict, duration: int = 60) -> None:
    req = urllib.request.Request(
        f"{cloud['base']}/v1/homes/{cloud['home']}/discovery/permit",
        json.dumps({"duration": duration}).encode(),
        {"Content-Type": "application/json", "Authorization": f"Bearer {cloud['token']}"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 202


def test_zigbee_pairing_from_rest_to_websocket(cloud, settings, tmp_path):
    home, token = cloud["home"], cloud["token"]
    radio = ThreadedSimulator(tmp_path / "radio")
    radio.start()
    hub_dir = tmp_path / "hub"
    radio_section = f'[zigbee]\nport = "{radio.url}"\nchannel = 15'
    config = _hub_toml(hub_dir / "hub.toml", settings, cloud["creds"], home, radio_section)
    hub, log = _start_hub(config)
    try:
        # the hub formed its network and is ready (its endpoints registered on the radio)
        _until(
            lambda: "zigbee network up" in log.read_text() or hub.poll() is not None,
            60,
            what="hub up",
        )
        assert hub.poll() is None, log.read_text()[-3000:]
        frames = Frames(f"ws://{settings.host}:{cloud['port']}/v1/ws?access_token={token}", home)
        radio.call(lambda: radio.sim.add_device("pair-dimmer", "dimmer"))
        lamp = device_id_for(ieee_text(ieee_for("pair-dimmer")))

        started = time.monotonic()
        _permit(cloud)
        added = frames.wait(lambda f: f["type"] == "device.added" and f["device_id"] == lamp)
        pairing_s = time.monotonic() - started
        print(f"pairing REST -> device.added: {pairing_s:.2f} s")
        assert pairing_s < 30
        assert added["device"]["type"] == "light.dimmer"
        assert added["device"]["capabilities"] == ["ON_OFF", "BRIGHTNESS"]
        frames.wait(
            lambda f: (
                f["type"] == "device.state"
                and f["device_id"] == lamp
                and (f.get("reported") or {}).get("brightness") == 100
            )
        )

        # a command through the cloud: the device's report completes it
        feed = EventProducer(settings.kafka_bootstrap, settings.partitions, CODEC)
        feed.send(
            t.COMMANDS_REQUESTED,
            "CommandRequested",
            home,
            command_id="pair-cmd-1",
            device_id=lamp,
            capability="BRIGHTNESS",
            command="setBrightness",
            parameters={"brightness": 30},
            requested_by="test",
            issued_at=int(time.time() * 1000),
        )
        feed.flush()
        frames.wait(
            lambda f: (
                f["type"] == "command.status"
                and f.get("command_id") == "pair-cmd-1"
                and f.get("status") == "COMPLETED"
            )
        )
        assert radio.call(lambda: radio.sim.device("pair-dimmer").clusters[8][0].value) == 76
        frames.wait(
            lambda f: (
                f["type"] == "device.state"
                and f["device_id"] == lamp
                and (f.get("reported") or {}).get("brightness") == 30
            )
        )

        # the radio unplugged: offline with a notification; back: online again
        radio.stop()
        frames.wait(
            lambda f: f["type"] == "device.online" and f["device_id"] == lamp and not f["online"]
        )
        frames.wait(lambda f: f["type"] == "notification" and f.get("kind") == "DEVICE_OFFLINE")
        radio.start()
        frames.wait(
            lambda f: f["type"] == "device.online" and f["device_id"] == lamp and f["online"],
            timeout=90,
        )
    finally:
        if "frames" in locals():
            frames.ws.close()
        _stop_hub(hub)
        radio.close()
    assert hub.returncode == 0, log.read_text()[-3000:]


def test_zwave_inclusion_from_rest_to_websocket(cloud, settings, tmp_path):
    """The same for Z-Wave: real zwave-js (its mock serial server and @zwave-js/server)."""
    from hub.zwavesim.processes import ZWaveJsPeer

    home, token = cloud["home"], cloud["token"]
    peer = ZWaveJsPeer(tmp_path / "zwave")
    peer.start()
    config = _hub_toml(
        tmp_path / "hub" / "hub.toml",
        settings,
        cloud["creds"],
        home,
        f'[zwave]\nurl = "{peer.url}"',
    )
    hub, log = _start_hub(config)
    try:
        frames = Frames(f"ws://{settings.host}:{cloud['port']}/v1/ws?access_token={token}", home)
        # the six nodes already in the network are described when the hub connects
        frames.wait_count(lambda f: f["type"] == "device.added", 6, timeout=120)
        started = time.monotonic()
        _permit(cloud, 30)
        added = frames.wait(
            lambda f: f["type"] == "device.added" and f["device_id"].endswith("-7"), timeout=60
        )
        print(f"inclusion REST -> device.added: {time.monotonic() - started:.2f} s")
        assert time.monotonic() - started < 30
        assert added["device"]["capabilities"] == ["ON_OFF"]
        assert added["device"]["protocol"] == "zwave"
    finally:
        if "frames" in locals():
            frames.ws.close()
        _stop_hub(hub)
        peer.stop()
    assert hub.returncode == 0, log.read_text()[-3000:]
