"""The MQTT <-> Kafka bridge on the real Mosquitto and Kafka of the test stack."""

from __future__ import annotations

import json
import signal
import uuid

import pytest

from compose.process import free_port
from hub.bridge import forget_session
from tests.integration.bridge_support import BridgeProc, Hub
from tests.integration.streams_support import CODEC, read_all
from topics import catalogue as t
from topics.producer import EventProducer

pytestmark = pytest.mark.integration

DESCRIPTOR = {
    "name": "Living Room Ceiling",
    "type": "light.dimmer",
    "room": "Living Room",
    "protocol": "zigbee",
    "capabilities": ["ON_OFF", "BRIGHTNESS"],
    "endpoint": "zigbee://00:11:22:33:44:55:66:77",
}


@pytest.fixture
def home_hub(run_cli):
    home = f"br-{uuid.uuid4().hex[:6]}"
    run_cli("users", "add", "--username", f"owner-{home}", "--password", "correct-horse-1")
    run_cli("homes", "add", "--home", home, "--owner", f"owner-{home}")
    creds = json.loads(run_cli("hubs", "add", "--home", home).stdout)
    return home, creds


@pytest.fixture
def bridges(stack_env, settings, tmp_path):
    started: list[BridgeProc] = []

    def start(name: str | None = None) -> BridgeProc:
        b = BridgeProc(stack_env, name or f"bt-{uuid.uuid4().hex[:6]}", tmp_path, free_port())
        started.append(b)
        b.wait_ready()
        return b

    yield start
    for b in started:
        b.kill(signal.SIGTERM)
    for name in {b.name for b in started}:
        forget_session(settings, name)


def test_every_hub_message_becomes_its_event_or_a_dead_letter(settings, home_hub, bridges):
    home, creds = home_hub
    bridges()
    hub = Hub(settings, creds["username"], creds["password"], home)
    try:
        hub.publish("status", "online", retain=True)
        hub.publish("discovery/lamp-1", DESCRIPTOR, retain=True)
        hub.publish("availability/lamp-1", '"online"', retain=True)
        hub.publish("state/lamp-1", {"state": {"powerState": "ON", "brightness": 40}, "ts": 5})
        hub.publish("event/doorbell-1", {"event": "doorbell_pressed", "data": {"button": 1}})
        hub.publish("ack/lamp-1", {"command_id": "c-1", "status": "COMPLETED"})
        hub.publish("discovery/old-plug", b"", retain=True)  # removal
        bad = {
            "MALFORMED_JSON": ("state/lamp-1", b'{"state": {"powerState": '),
            "INVALID_UTF8": ("state/lamp-1", b'{"state": {"x": "\xff\xfe"}}'),
            "PAYLOAD_TOO_LARGE": ("state/lamp-1", b'{"state": {"a": "' + b"x" * 70_000 + b'"}}'),
            "WRONG_TYPE": ("state/lamp-1", b'{"state": ["not", "an", "object"]}'),
            "SCHEMA_VIOLATION": ("bogus/lamp-1", b"{}"),
        }
        for sub, payload in bad.values():
            hub.publish(sub, payload)
        hub.wait_acked(7 + len(bad))
        want = {
            "HubStatus",
            "DeviceDiscovered",
            "Availability",
            "DeviceReport",
            "DeviceEvent",
            "HubAck",
            "DeviceRemoved",
        }
        topics = [
            t.HUB_STATUS,
            t.DEVICE_DISCOVERY,
            t.DEVICE_AVAILABILITY,
            t.DEVICE_REPORTS,
            t.DEVICE_EVENTS,
            t.COMMANDS_ACKS,
            t.DEADLETTER,
        ]

        def done(recs):
            dead = [r for n, r in recs if n == "DeadLetter"]
            return want <= {n for n, _ in recs} and len(dead) >= len(bad)

        recs = read_all(settings, topics, {home}, until=done, timeout=60)
        by = {}
        for name, rec in recs:
            by.setdefault(name, []).append(rec)
        assert want <= set(by), sorted(by)
        [report] = by["DeviceReport"]
        assert report["device_id"] == "lamp-1" and report["ts"] == 5
        assert report["state"] == {"powerState": "ON", "brightness": 40}
        assert by["DeviceDiscovered"][0]["capabilities"] == ["ON_OFF", "BRIGHTNESS"]
        assert by["DeviceRemoved"][0]["device_id"] == "old-plug"
        assert by["Availability"][0]["online"] is True
        assert by["HubStatus"][0]["online"] is True
        assert json.loads(by["DeviceEvent"][0]["data"]) == {"button": 1}
        assert by["HubAck"][0]["status"] == "COMPLETED"
        # Every bad message is kept whole, with its reason, its topic and a message.
        dead = {d["reason"]: d for d in by["DeadLetter"]}
        for reason, (sub, payload) in bad.items():
            assert reason in dead, (reason, sorted(dead))
            assert dead[reason]["original"] == payload
            assert dead[reason]["source"]["mqtt_topic"] == f"hub/{home}/{sub}"
            assert dead[reason]["message"]
    finally:
        before = hub.acked
        for sub in ("status", "discovery/lamp-1", "availability/lamp-1", "discovery/old-plug"):
            hub.publish(sub, b"", retain=True)  # clear retained messages for later tests
        hub.wait_acked(before + 4, timeout=10)
        hub.close()


def test_commands_and_pairing_reach_the_hub(settings, home_hub, bridges):
    home, creds = home_hub
    bridges()
    hub = Hub(settings, creds["username"], creds["password"], home)
    feed = EventProducer(settings.kafka_bootstrap, settings.partitions, CODEC)
    try:
        hub.subscribe("command/+")
        hub.subscribe("pairing")
        feed.send(
            t.COMMANDS_DISPATCHED,
            "CommandDispatched",
            home,
            device_id="lamp-1",
            command_id="cmd-42",
            capability="BRIGHTNESS",
            command="setBrightness",
            parameters={"brightness": 30},
            desired={"brightness": 30},
            issued_at=1_700_000_000_000,
        )
        feed.send(t.HUB_PAIRING, "PairingRequest", home, permit=True, duration=60)
        feed.flush()
        got = dict(hub.wait_received(lambda r: len(r) >= 2))
        cmd = json.loads(got[f"hub/{home}/command/lamp-1"])
        assert cmd == {
            "command_id": "cmd-42",
            "capability": "BRIGHTNESS",
            "command": "setBrightness",
            "parameters": {"brightness": 30},
            "desired": {"brightness": 30},
            "issued_at": 1_700_000_000_000,
        }
        assert json.loads(got[f"hub/{home}/pairing"]) == {"permit": True, "duration": 60}
    finally:
        hub.close()


def _reports(settings, home: str, devices: int, per_device: int):
    def done(recs):
        seen = {(r["device_id"], r["state"]["seq"]) for n, r in recs if n == "DeviceReport"}
        return len(seen) >= devices * per_device

    recs = read_all(settings, [t.DEVICE_REPORTS], {home}, until=done, timeout=120)
    return [r for n, r in recs if n == "DeviceReport"]


def _publish_numbered(hub: Hub, devices: int, start: int, stop: int) -> None:
    for seq in range(start, stop):
        for d in range(devices):
            hub.publish(f"state/sensor-{d}", {"state": {"seq": seq}})


def test_sigkill_under_load_loses_no_report(settings, home_hub, bridges):
    home, creds = home_hub
    devices, per_device = 3, 1500
    name = f"bk-{uuid.uuid4().hex[:6]}"
    first = bridges(name)
    hub = Hub(settings, creds["username"], creds["password"], home)
    try:
        _publish_numbered(hub, devices, 0, 500)
        hub.wait_acked(devices * 200)
        produced_before_kill = first.counters().get("produced", 0)
        first.kill()  # mid-stream: produced-but-unacked and queued messages exist
        _publish_numbered(hub, devices, 500, 1000)  # the broker queues them for the session
        bridges(name)  # same name: resumes the session
        _publish_numbered(hub, devices, 1000, per_device)
        hub.wait_acked(devices * per_device)
        reports = _reports(settings, home, devices, per_device)
    finally:
        hub.close()
    # The kill really came mid-stream: the first bridge had not produced all of the first
    # 1,500 messages (the rest were in flight or queued on its session).
    assert produced_before_kill < devices * 500
    print(f"duplicates after the kill: {len(reports) - devices * per_device}")
    for d in range(devices):
        seqs = [r["state"]["seq"] for r in reports if r["device_id"] == f"sensor-{d}"]
        assert set(seqs) == set(range(per_device)), f"sensor-{d} lost reports"
        firsts = list(dict.fromkeys(seqs))  # first occurrence of each, in Kafka order
        assert firsts == sorted(firsts), f"sensor-{d}: first deliveries out of order"


def test_two_bridges_share_the_hubs(settings, home_hub, bridges):
    home, creds = home_hub
    a, b = bridges(), bridges()
    hub = Hub(settings, creds["username"], creds["password"], home)
    devices, per_device = 4, 250
    try:
        _publish_numbered(hub, devices, 0, per_device)
        hub.wait_acked(devices * per_device)
        reports = _reports(settings, home, devices, per_device)
    finally:
        hub.close()
    seen = {(r["device_id"], r["state"]["seq"]) for r in reports}
    assert len(seen) == devices * per_device
    ca, cb = a.counters().get("produced", 0), b.counters().get("produced", 0)
    assert ca > 0 and cb > 0, f"one bridge did all the work: {ca} / {cb}"
    assert ca + cb >= devices * per_device


def test_store_and_forward_through_an_outage_reaches_kafka_in_order(
    settings, home_hub, bridges, tmp_path
):
    """Mosquitto stops mid-stream; the hub keeps reporting into its SQLite outbox; after the
    broker returns every report is in Kafka, first copies in order per device."""
    from hub.hubclient import HubClient
    from tests.integration.test_hub_store_forward import Broker

    home, creds = home_hub
    bridges()
    broker = Broker(settings)
    hub = HubClient(
        home_id=home,
        username=creds["username"],
        password=creds["password"],
        host=settings.host,
        port=settings.ports.mqtt,
        outbox=tmp_path / "outbox.db",
        keepalive=10,
    )
    devices, rounds = 3, 300
    hub.start()
    try:
        for seq in range(rounds):
            if seq == 100:
                assert hub.wait_drained(30)
                broker.stop()
            if seq == 200:
                assert hub.pending() >= 100 * devices  # really queued while away
                broker.start()
            for d in range(devices):
                hub.publish(f"state/sensor-{d}", {"state": {"seq": seq}, "ts": 1_000 + seq})
        assert hub.wait_drained(90)
        reports = _reports(settings, home, devices, rounds)
    finally:
        broker.start()
        hub.stop()
    for d in range(devices):
        seqs = [r["state"]["seq"] for r in reports if r["device_id"] == f"sensor-{d}"]
        firsts = list(dict.fromkeys(seqs))
        assert firsts == list(range(rounds)), f"sensor-{d}: lost or reordered"
