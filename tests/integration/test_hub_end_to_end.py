"""A hub over real MQTT, the bridge and a stream worker together: the shadow API and a
command's round trip, every hop real (Mosquitto, bridge process, Kafka, worker process)."""

from __future__ import annotations

import json
import signal
import time
import uuid

import pytest

from compose.process import free_port
from hub.bridge import forget_session
from tests.integration.bridge_support import BridgeProc, Hub
from tests.integration.streams_support import CODEC, Worker, read_all
from tests.integration.test_bridge import DESCRIPTOR
from topics import catalogue as t
from topics.producer import EventProducer

pytestmark = pytest.mark.integration


@pytest.fixture
def pipeline(stack_env, settings, run_cli, tmp_path):
    home = f"e2e-{uuid.uuid4().hex[:6]}"
    run_cli("users", "add", "--username", f"owner-{home}", "--password", "correct-horse-1")
    run_cli("homes", "add", "--home", home, "--owner", f"owner-{home}")
    creds = json.loads(run_cli("hubs", "add", "--home", home).stdout)
    bridge = BridgeProc(stack_env, f"e2e-{uuid.uuid4().hex[:4]}", tmp_path, free_port())
    worker = Worker(stack_env, f"e2e-{uuid.uuid4().hex[:4]}", tmp_path / "w")
    hub = Hub(settings, creds["username"], creds["password"], home)
    try:
        bridge.wait_ready()
        hub.subscribe("shadow/+/+/+")
        hub.subscribe("command/+")
        hub.publish("discovery/lamp-1", DESCRIPTOR)
        hub.publish("state/lamp-1", {"state": {"powerState": "OFF", "brightness": 10}})
        yield home, hub
    finally:
        hub.close()
        worker.kill(signal.SIGTERM)
        bridge.kill(signal.SIGTERM)
        forget_session(settings, bridge.name)


def _payloads(hub: Hub, topic_suffix: str) -> list[dict]:
    return [json.loads(p) for tp, p in hub.received if tp.endswith(topic_suffix)]


def _wait(hub: Hub, topic_suffix: str, pred=lambda docs: bool(docs), timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        docs = _payloads(hub, topic_suffix)
        if pred(docs):
            return docs
        time.sleep(0.1)
    raise AssertionError(f"nothing on {topic_suffix}: {hub.received[-5:]}")


def _registered(hub: Hub) -> dict:
    """The lamp's shadow document, once the worker has registered the lamp and folded its
    first report (a shadow get is answered 404 until then, so ask again)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        docs = _payloads(hub, "/lamp-1/get/accepted")
        if docs and docs[-1]["state"].get("reported"):
            return docs[-1]
        hub.publish("shadow/lamp-1/get", {"clientToken": "g1"})
        time.sleep(1)
    raise AssertionError(f"the lamp was never registered: {hub.received[-5:]}")


def test_shadow_api_over_mqtt(pipeline):
    _home, hub = pipeline
    doc = _registered(hub)
    assert doc["state"]["reported"] == {"powerState": "OFF", "brightness": 10}
    assert doc["clientToken"] == "g1"
    version = doc["version"]

    hub.publish(
        "shadow/lamp-1/update",
        {"state": {"desired": {"brightness": 70}}, "clientToken": "u1", "version": version},
    )
    [accepted] = _wait(hub, "/lamp-1/update/accepted")
    assert accepted["version"] == version + 1 and accepted["clientToken"] == "u1"
    [delta] = _wait(hub, "/lamp-1/update/delta")
    assert delta["state"] == {"brightness": 70}
    [documents] = _wait(hub, "/lamp-1/update/documents")
    assert documents["current"]["state"]["desired"] == {"brightness": 70}

    # A stale version is refused with 409; a value outside BRIGHTNESS with 400.
    hub.publish("shadow/lamp-1/update", {"state": {"desired": {"brightness": 5}}, "version": 1})
    hub.publish("shadow/lamp-1/update", {"state": {"reported": {"brightness": 900}}})
    rejected = _wait(hub, "/lamp-1/update/rejected", lambda d: len(d) >= 2)
    assert sorted(r["code"] for r in rejected) == [400, 409]
    # Not JSON: the bridge itself answers 400 and dead-letters the message.
    hub.publish("shadow/lamp-1/update", b"{nope")
    _wait(hub, "/lamp-1/update/rejected", lambda d: len(d) >= 3)


def test_command_round_trip_through_the_hub(settings, pipeline):
    home, hub = pipeline
    feed = EventProducer(settings.kafka_bootstrap, settings.partitions, CODEC)
    _registered(hub)
    feed.send(
        t.COMMANDS_REQUESTED,
        "CommandRequested",
        home,
        command_id="rt-1",
        device_id="lamp-1",
        capability="BRIGHTNESS",
        command="setBrightness",
        parameters={"brightness": 55},
        requested_by="test",
        issued_at=int(time.time() * 1000),
    )
    feed.flush()
    [cmd] = _wait(hub, "/command/lamp-1")
    assert cmd["command_id"] == "rt-1" and cmd["desired"]["brightness"] == 55

    def reached(status):
        def until(recs):
            return any(r.get("command_id") == "rt-1" and r["status"] == status for _n, r in recs)

        return until

    # The hub acks, then reports the new state. The ack and the report travel on different
    # topics, so the worker may read them in either order; a report read first completes the
    # command and the ack is then late (the unit tests cover that order). Waiting for the
    # ack's status before reporting pins the full sequence.
    hub.publish("ack/lamp-1", {"command_id": "rt-1", "status": "ACKNOWLEDGED"})
    read_all(settings, [t.COMMANDS_STATUS], {home}, until=reached("ACKNOWLEDGED"), timeout=60)
    hub.publish("state/lamp-1", {"state": {"powerState": "ON", "brightness": 55}})

    recs = read_all(settings, [t.COMMANDS_STATUS], {home}, until=reached("COMPLETED"), timeout=60)
    steps = [r["status"] for n, r in recs if r.get("command_id") == "rt-1"]
    assert steps == ["PENDING", "SENT", "ACKNOWLEDGED", "COMPLETED"]
