"""`homestream simulate` against the test stack's Mosquitto, watched as the bridge user."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from domain.validate import validate_descriptor, validate_state
from runtime.secrets import BRIDGE_MQTT_USER, load_secrets

pytestmark = pytest.mark.integration

HOMESTREAM = str(Path(sys.executable).with_name("homestream"))


class Watcher:
    """A bridge-user MQTT client that records every message under a topic filter."""

    def __init__(self, settings, topic: str, prefix: str = "") -> None:
        self.prefix = prefix
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.seen: list[tuple[str, bytes, bool]] = []
        subscribed: queue.Queue[int] = queue.Queue()
        connected: queue.Queue[int] = queue.Queue()
        c = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"t-sim-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )
        c.username_pw_set(BRIDGE_MQTT_USER, load_secrets(settings).bridge_mqtt_password)
        c.on_connect = lambda cl, ud, fl, rc, pr: connected.put(rc.value)
        c.on_subscribe = lambda cl, ud, mid, rcs, pr: subscribed.put(rcs[0].value)
        c.on_message = lambda cl, ud, msg: self.messages.put(msg)
        c.connect(settings.host, settings.ports.mqtt, keepalive=10)
        c.loop_start()
        assert connected.get(timeout=10) == 0
        c.subscribe(topic, qos=1)
        assert subscribed.get(timeout=10) == 1
        self.client = c

    def drain(self, seconds: float = 0.0) -> list[tuple[str, bytes, bool]]:
        """Everything received so far (waiting up to ``seconds`` for more)."""
        deadline = time.monotonic() + seconds
        while True:
            try:
                msg = self.messages.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return self.seen
            if msg.topic.startswith(self.prefix):
                self.seen.append((msg.topic, bytes(msg.payload), bool(msg.retain)))

    def publish(self, topic: str, payload: dict[str, Any]) -> None:
        self.client.publish(topic, json.dumps(payload), qos=1).wait_for_publish(timeout=10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _kind(topic: str) -> str:
    return topic.split("/")[2]


@pytest.fixture
def owner(run_cli) -> str:
    name = f"sim-owner-{uuid.uuid4().hex[:6]}"
    run_cli("users", "add", "--username", name, "--password", "correct-horse-1")
    return name


def test_simulated_hubs_announce_report_and_obey_commands(settings, stack_env, run_cli, owner):
    prefix = f"s{uuid.uuid4().hex[:6]}"
    homes = [f"{prefix}-0001", f"{prefix}-0002"]
    live = Watcher(settings, "hub/+/#", prefix=f"hub/{prefix}-")
    try:
        # 1. The contract's command line: 2 homes x 5 devices, 20 reports/s, 5 s.
        proc = run_cli(
            "simulate",
            *("--homes", "2", "--devices", "5", "--rate", "20", "--duration", "5"),
            *("--owner", owner, "--prefix", prefix, "--progress", "1", "--no-outages"),
        )
        assert f"provisioned 2 home(s) owned by {owner!r} and 2 hub login(s)" in proc.stdout
        assert "hubs 2/2 connected" in proc.stdout, proc.stdout
        assert "stopped after" in proc.stdout
        seen = live.drain(2.0)
        states = [(t, p) for t, p, _ in seen if _kind(t) == "state"]
        for home in homes:
            assert (f"hub/{home}/status", b"online") in [(t, p) for t, p, _ in seen]
            assert len([t for t, _ in states if t.startswith(f"hub/{home}/")]) >= 10
        assert len(states) >= 40  # ~100 at 20/s for 5 s; connecting takes some of it
    finally:
        live.close()

    # 2. Retained: a newcomer gets every descriptor and availability, and the hubs' status.
    late = Watcher(settings, "hub/+/#", prefix=f"hub/{prefix}-")
    try:
        retained = {t: p for t, p, r in late.drain(2.0) if r}
    finally:
        late.close()
    descriptors = {t: json.loads(p) for t, p in retained.items() if _kind(t) == "discovery"}
    assert len(descriptors) == 10
    for topic, d in descriptors.items():
        assert validate_descriptor(d) == [], topic
        device = topic.split("/")[3]
        assert retained[f"hub/{topic.split('/')[1]}/availability/{device}"] == b"online"
    for home in homes:
        assert retained[f"hub/{home}/status"] == b"offline"  # stopped cleanly
        assert len([t for t in descriptors if t.startswith(f"hub/{home}/")]) == 5

    # 3. A running simulated light obeys a command: ack, state, COMPLETED on the MQTT side.
    home = homes[0]
    light_topic, light = next(
        (t, d) for t, d in sorted(descriptors.items()) if t.startswith(f"hub/{home}/")
        and d["type"].startswith("light.")
    )  # fmt: skip
    device = light_topic.split("/")[3]
    dimmable = "BRIGHTNESS" in light["capabilities"]
    watch = Watcher(settings, f"hub/{home}/#")
    sim = subprocess.Popen(
        [
            HOMESTREAM,
            "simulate",
            *("--homes", "2", "--devices", "5", "--rate", "4"),
            *("--duration", "60", "--owner", owner, "--prefix", prefix, "--no-outages"),
        ],
        env={**os.environ, **stack_env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        acks: dict[str, list[tuple[str, Any]]] = {}
        deadline = time.monotonic() + 45
        done = None
        while done is None and time.monotonic() < deadline:
            # The hub subscribes right after it connects; until then a command is lost
            # (clean session), so send a fresh one every few seconds until one is answered.
            command_id = f"cmd-{uuid.uuid4().hex[:8]}"
            acks[command_id] = []
            watch.publish(
                f"hub/{home}/command/{device}",
                {
                    "command_id": command_id,
                    **(
                        {"capability": "BRIGHTNESS", "command": "setBrightness",
                         "parameters": {"brightness": 37}, "desired": {"brightness": 37}}
                        if dimmable
                        else {"capability": "ON_OFF", "command": "turnOn", "parameters": {},
                              "desired": {"powerState": "ON"}}
                    ),
                    "issued_at": int(time.time() * 1000),
                },
            )  # fmt: skip
            until = time.monotonic() + 3
            while time.monotonic() < until:
                watch.drain(0.2)
                for cid in acks:
                    statuses = [
                        json.loads(p)["status"]
                        for t, p, _ in watch.seen
                        if t == f"hub/{home}/ack/{device}" and json.loads(p)["command_id"] == cid
                    ]
                    if "COMPLETED" in statuses:
                        done = cid
                if done:
                    break
        assert done, f"no COMPLETED ack from {home}/{device} within 45 s"
        # Order on the wire: ACKNOWLEDGED, then the state that carries the change, then COMPLETED.
        trail: list[tuple[str, dict[str, Any]]] = []
        for t, p, _ in watch.seen:
            if t in (f"hub/{home}/ack/{device}", f"hub/{home}/state/{device}"):
                body = json.loads(p)
                if _kind(t) == "state" or body["command_id"] == done:
                    trail.append((_kind(t), body))
        first_ack = trail.index(("ack", {"command_id": done, "status": "ACKNOWLEDGED"}))
        completed = trail.index(("ack", {"command_id": done, "status": "COMPLETED"}))
        assert first_ack < completed
        between = [b for k, b in trail[first_ack:completed] if k == "state"]
        assert between, trail
        state = between[-1]["state"]
        assert validate_state(light["capabilities"], state).ok
        if dimmable:
            assert state["brightness"] == 37
        else:
            assert state["powerState"] == "ON"

        # A command the light cannot take gets FAILED with a reason (the hub checks the
        # desired state it is given; it does not plan).
        watch.publish(
            f"hub/{home}/command/{device}",
            {"command_id": "bad-1", "capability": "LOCK", "command": "unlock", "parameters": {},
             "desired": {"lockState": "UNLOCKED"}},
        )  # fmt: skip
        failed: list[dict[str, Any]] = []
        until = time.monotonic() + 10
        while not failed and time.monotonic() < until:
            failed = [
                json.loads(p)
                for t, p, _ in watch.drain(0.2)
                if t == f"hub/{home}/ack/{device}" and json.loads(p)["command_id"] == "bad-1"
            ]
        assert failed and failed[0]["status"] == "FAILED" and "LOCK" in failed[0]["error"]
    finally:
        sim.send_signal(signal.SIGTERM)
        try:
            out, err = sim.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            sim.kill()
            out, err = sim.communicate()
        watch.close()
    assert sim.returncode == 0, err
    assert "provisioned" not in out  # the second run reused homes and hub logins
    assert "stopped after" in out


def test_simulate_names_the_fix_when_the_owner_is_missing(run_cli):
    proc = run_cli("simulate", "--homes", "1", "--owner", "nobody-here", "--duration", "1",
                   check=False)  # fmt: skip
    assert proc.returncode == 2
    assert "homestream users add" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_more_hubs_than_one_process_carries_all_connect(settings, run_cli, owner):
    """Past 120 hubs `simulate` runs a child process per share (paho's select() takes no
    descriptor above 1023, and each hub holds 7): every hub connects, reports and, stopped,
    leaves its retained status "offline"; one process alone connected 73 of 200."""
    prefix = f"m{uuid.uuid4().hex[:6]}"
    proc = run_cli(
        "simulate",
        *("--homes", "125", "--devices", "1", "--rate", "50", "--duration", "6"),
        *("--owner", owner, "--prefix", prefix, "--progress", "2", "--no-outages"),
    )
    assert "125 hubs in 2 processes of at most 120" in proc.stdout, proc.stdout
    late = Watcher(settings, "hub/+/status", prefix=f"hub/{prefix}-")
    try:
        statuses = {t: p for t, p, r in late.drain(3.0) if r}
    finally:
        late.close()
    assert len(statuses) == 125, sorted(statuses)[:5]
    assert set(statuses.values()) == {b"offline"}
