"""Conformance of the bridge's own MQTT 5 client (hub/mqtt5.py) with a real Mosquitto.

Each packet type the client speaks (CONNECT/CONNACK, SUBSCRIBE/SUBACK, PUBLISH QoS 0 and 1
both ways, PUBACK both ways, PINGREQ/PINGRESP, DISCONNECT both ways) runs against the
session stack's Mosquitto, with paho-mqtt as the independent peer. The CONNACK limits
(Maximum Packet Size, Receive Maximum, Server Keep Alive, Maximum QoS, Retain Available)
need a broker configured to declare them: those tests start a small Mosquitto of their own
on a free port, from their own tmp dir, and also show what that broker does to a client
that ignores the limit.
"""

from __future__ import annotations

import json
import queue
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from compose.process import free_port
from hub.mqtt5 import (
    CONNECT,
    DISCONNECT,
    Message,
    Mqtt5Client,
    MqttError,
    ServerLimitError,
    _packet,
    _utf8,
    parse_disconnect,
    split_packets,
)
from runtime.secrets import BRIDGE_MQTT_USER, load_secrets

pytestmark = pytest.mark.integration


class Ours:
    """An ``Mqtt5Client`` that records what it receives and the PUBACKs it gets."""

    def __init__(self, host: str, port: int, client_id: str | None = None, **kw):
        self.messages: list[Message] = []
        self.pubacks: list[tuple[int, int]] = []
        self.wire_after_ack: list[int] = []  # publishes on the wire after each PUBACK
        self.c = Mqtt5Client(
            host,
            port,
            f"conf-{uuid.uuid4().hex[:8]}" if client_id is None else client_id,
            on_message=self.messages.append,
            on_puback=self._puback,
            **kw,
        )

    def _puback(self, pid: int, reason: int) -> None:
        self.pubacks.append((pid, reason))
        self.wire_after_ack.append(self.c.inflight - self.c.held)

    def pump_until(self, done: Callable[[], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            assert time.monotonic() < deadline, "timed out waiting on the broker"
            self.c.pump(0.05)

    def pump_for(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.c.pump(0.05)


class Peer:
    """paho-mqtt on the other end: what a hub or any other client sees."""

    def __init__(self, host: str, port: int, username=None, password=None):
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.c = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"peer-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )
        if username is not None:
            self.c.username_pw_set(username, password)
        ready: queue.Queue[object] = queue.Queue()
        self.c.on_connect = lambda *_a: ready.put(None)
        self.c.on_subscribe = lambda *_a: ready.put(None)
        self.c.on_message = lambda _c, _u, msg: self.messages.put(msg)
        self._ready = ready
        self.c.connect(host, port, keepalive=30)
        self.c.loop_start()
        ready.get(timeout=10)

    def subscribe(self, topic: str, qos: int = 1) -> None:
        self.c.subscribe(topic, qos=qos)
        self._ready.get(timeout=10)

    def publish(self, topic: str, payload: bytes, qos: int) -> None:
        self.c.publish(topic, payload, qos=qos).wait_for_publish(10)

    def take(self, n: int, timeout: float = 10) -> list[mqtt.MQTTMessage]:
        return [self.messages.get(timeout=timeout) for _ in range(n)]

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


@pytest.fixture
def bridge_login(settings) -> dict:
    return {"username": BRIDGE_MQTT_USER, "password": load_secrets(settings).bridge_mqtt_password}


@pytest.fixture
def ours(settings, bridge_login) -> Iterator[Callable[..., Ours]]:
    made: list[Ours] = []

    def make(client_id: str | None = None, **kw) -> Ours:
        kw = {**bridge_login, **kw}
        o = Ours(settings.host, settings.ports.mqtt, client_id, **kw)
        made.append(o)
        return o

    yield make
    for o in made:
        o.c.close()


@pytest.fixture
def peer(settings, bridge_login) -> Iterator[Peer]:
    p = Peer(settings.host, settings.ports.mqtt, **bridge_login)
    yield p
    p.close()


@pytest.fixture
def hub_login(run_cli) -> tuple[str, dict]:
    home = f"m5-{uuid.uuid4().hex[:6]}"
    run_cli("users", "add", "--username", f"owner-{home}", "--password", "correct-horse-1")
    run_cli("homes", "add", "--home", home, "--owner", f"owner-{home}")
    return home, json.loads(run_cli("hubs", "add", "--home", home).stdout)


# -- CONNECT / CONNACK -------------------------------------------------------------------------


def test_connack_properties_are_read_and_a_session_resumes(ours, settings):
    conf = settings.service_dir("mosquitto") / "mosquitto.conf"  # the launcher's broker
    inflight = int(conf.read_text().split("max_inflight_messages ", 1)[1].split()[0])
    client_id = f"conf-{uuid.uuid4().hex[:8]}"
    first = ours(client_id, clean_start=True, session_expiry=120, keepalive=30)
    assert first.c.connect() is False
    server = first.c.server
    assert server.reason_code == 0 and not server.session_present
    # What our stack's Mosquitto declares: its max_inflight_messages as Receive Maximum,
    # its default of 10 topic aliases; no packet size limit, no keep alive of its own.
    assert server.receive_maximum == inflight
    assert server.topic_alias_maximum == 10
    assert server.maximum_packet_size is None and server.server_keep_alive is None
    assert server.maximum_qos == 2 and server.retain_available
    assert server.shared_subscription_available and server.wildcard_subscription_available
    assert first.c.keepalive_interval == 30  # ours stands
    first.c.close()
    again = ours(client_id, clean_start=False, session_expiry=120)
    assert again.c.connect() is True  # the session outlived the connection
    assert again.c.server.session_present
    again.c.close()
    ours(client_id, clean_start=True, session_expiry=0).c.connect()  # drop it


def test_an_assigned_client_identifier_is_kept_for_the_next_connect(ours):
    first = ours("", clean_start=True, session_expiry=120)
    first.c.connect()
    assigned = first.c.server.assigned_client_identifier
    assert assigned and first.c.client_id == assigned
    first.c.close()
    first.c.clean_start = False  # a reconnect that resumes ...
    assert first.c.connect() is True  # ... the same session, by the broker's name for it
    first.c.close()
    ours(assigned, clean_start=True, session_expiry=0).c.connect()


def test_a_refused_connect_carries_the_reason_code(settings):
    bad = Ours(settings.host, settings.ports.mqtt, username=BRIDGE_MQTT_USER, password="no")
    with pytest.raises(MqttError, match="not authorized") as refused:
        bad.c.connect()
    assert refused.value.reason_code == 0x87
    assert not bad.c.connected


# -- SUBSCRIBE / SUBACK --------------------------------------------------------------------------


def test_suback_grants_each_filter_its_qos(ours):
    o = ours(clean_start=True)
    o.c.connect()
    base = f"conf/{uuid.uuid4().hex[:8]}"
    o.c.subscribe([(f"{base}/a/#", 1), (f"{base}/b", 0), (f"$share/g/{base}/c/+", 1)])
    o.pump_until(lambda: o.c.subscribed)
    assert o.c.granted == [1, 0, 1]


def test_the_acl_filters_delivery_not_the_suback(settings, hub_login, peer):
    # Mosquitto 2.0 grants a hub's SUBSCRIBE outside its home and enforces the ACL per
    # message (a refusing SUBACK, >= 0x80, is covered by the unit tests' parser cases).
    home, creds = hub_login
    hub = Ours(
        settings.host, settings.ports.mqtt, username=creds["username"], password=creds["password"]
    )
    hub.c.connect()
    try:
        hub.c.subscribe([("hub/someone-else/#", 1), (f"hub/{home}/command/#", 1)])
        hub.pump_until(lambda: hub.c.subscribed)
        assert hub.c.granted == [1, 1]
        peer.publish("hub/someone-else/command/x", b"theirs", qos=1)
        peer.publish(f"hub/{home}/command/x", b"ours", qos=1)
        hub.pump_until(lambda: hub.messages)
        hub.pump_for(0.5)
        assert [m.payload for m in hub.messages] == [b"ours"]
    finally:
        hub.c.close()


# -- PUBLISH and PUBACK, both ways -------------------------------------------------------------


def test_our_publishes_reach_a_paho_subscriber_and_qos1_is_pubacked(ours, peer):
    topic = f"conf/{uuid.uuid4().hex[:8]}/out"
    peer.subscribe(f"{topic}/#", qos=1)
    o = ours(clean_start=True)
    o.c.connect()
    assert o.c.publish(f"{topic}/q0", b"zero", qos=0) == 0
    pid = o.c.publish(f"{topic}/q1", b"\x00one\xff", qos=1)
    assert pid > 0 and o.c.inflight == 1
    o.pump_until(lambda: o.pubacks)
    assert o.pubacks == [(pid, 0)] and o.c.inflight == 0  # success: a subscriber had it
    got = {m.topic: m for m in peer.take(2)}
    assert (got[f"{topic}/q0"].payload, got[f"{topic}/q0"].qos) == (b"zero", 0)
    assert (got[f"{topic}/q1"].payload, got[f"{topic}/q1"].qos) == (b"\x00one\xff", 1)


def test_a_retained_publish_is_kept_by_the_broker(ours, settings, bridge_login):
    topic = f"conf/{uuid.uuid4().hex[:8]}/retained"
    o = ours(clean_start=True)
    o.c.connect()
    pid = o.c.publish(topic, b"kept", qos=1, retain=True)
    o.pump_until(lambda: o.pubacks)
    assert o.pubacks[0][0] == pid
    late = Peer(settings.host, settings.ports.mqtt, **bridge_login)
    try:
        late.subscribe(topic)
        msg = late.take(1)[0]
        assert (msg.payload, msg.retain) == (b"kept", True)
    finally:
        late.close()
        o.c.publish(topic, b"", qos=1, retain=True)  # clear it
        o.pump_until(lambda: len(o.pubacks) == 2)


def test_a_puback_reports_the_brokers_refusal(settings, hub_login):
    home, creds = hub_login
    hub = Ours(
        settings.host, settings.ports.mqtt, username=creds["username"], password=creds["password"]
    )
    hub.c.connect()
    try:
        ok = hub.c.publish(f"hub/{home}/state/lamp", b"{}", qos=1)
        denied = hub.c.publish("hub/someone-else/state/lamp", b"{}", qos=1)
        hub.pump_until(lambda: len(hub.pubacks) == 2)
        codes = dict(hub.pubacks)
        assert codes[denied] == 0x87  # not authorized, and the connection stays
        assert codes[ok] in (0x00, 0x10)  # success, or success with no subscriber
        assert hub.c.connected and hub.c.inflight == 0
    finally:
        hub.c.close()


def test_publishes_from_paho_arrive_and_our_puback_settles_them(ours, peer):
    topic = f"conf/{uuid.uuid4().hex[:8]}/in"
    client_id = f"conf-{uuid.uuid4().hex[:8]}"
    o = ours(client_id, clean_start=True, session_expiry=120)
    o.c.connect()
    o.c.subscribe([(f"{topic}/#", 1)])
    o.pump_until(lambda: o.c.subscribed)
    peer.publish(f"{topic}/q0", b"zero", qos=0)
    peer.publish(f"{topic}/q1", b"one", qos=1)
    o.pump_until(lambda: len(o.messages) == 2)
    by_topic = {m.topic: m for m in o.messages}
    assert (by_topic[f"{topic}/q0"].qos, by_topic[f"{topic}/q0"].packet_id) == (0, 0)
    q1 = by_topic[f"{topic}/q1"]
    assert q1.qos == 1 and q1.packet_id > 0 and q1.payload == b"one"
    # Not acked: the broker keeps it on the session and sends it again on reconnect.
    o.c.close()
    o.c.clean_start = False
    o.messages.clear()
    assert o.c.connect() is True
    o.pump_until(lambda: o.messages)
    again = o.messages[0]
    assert (again.topic, again.payload, again.qos) == (q1.topic, b"one", 1)
    # Acked now: the broker forgets it, and a reconnect brings nothing.
    o.c.ack(again.packet_id)
    o.pump_for(0.3)
    o.c.close()
    o.messages.clear()
    assert o.c.connect() is True
    o.pump_for(1.0)
    assert o.messages == []
    o.c.close()
    ours(client_id, clean_start=True, session_expiry=0).c.connect()


# -- PINGREQ / PINGRESP ----------------------------------------------------------------------------


def test_an_idle_connection_pings_and_the_broker_answers(ours):
    o = ours(clean_start=True, keepalive=2)
    o.c.connect()
    o.pump_for(2.6)  # idle: a PINGREQ after half the keep alive, then more
    assert o.c.pings >= 2
    assert o.c.pongs == o.c.pings or o.c.pongs == o.c.pings - 1  # the last may be in flight
    assert o.c.connected


# -- DISCONNECT, both ways ---------------------------------------------------------------------


def test_the_brokers_disconnect_and_its_reason_code_are_read(ours):
    o = ours(clean_start=True)
    o.c.connect()
    o.c.subscribe([("conf/#/not-last", 1)])  # '#' must be last: a malformed SUBSCRIBE
    with pytest.raises(MqttError, match="disconnected us: 0x81 malformed packet") as exc:
        o.pump_until(lambda: o.c.subscribed, timeout=5)
    assert exc.value.reason_code == 0x81 and not o.c.connected


def test_a_second_connection_with_our_id_takes_the_session(ours):
    # Mosquitto 2.0 closes the old connection without a DISCONNECT; later versions send
    # 0x8E "session taken over": either way the client reports a lost connection.
    client_id = f"conf-{uuid.uuid4().hex[:8]}"
    first = ours(client_id, clean_start=True)
    first.c.connect()
    second = ours(client_id, clean_start=True)
    second.c.connect()
    with pytest.raises(MqttError, match=r"session taken over|closed the connection") as exc:
        first.pump_until(lambda: False, timeout=5)
    assert exc.value.reason_code in (None, 0x8E) and not first.c.connected
    second.pump_for(0.3)
    assert second.c.connected


# -- a broker of our own that declares limits -------------------------------------------------


@pytest.fixture
def own_broker(settings, tmp_path) -> Iterator[Callable[..., tuple[int, Path]]]:
    """Start a Mosquitto with extra config lines; (port, its log). ``settings`` first: the
    session stack is what installs Mosquitto."""
    started: list[subprocess.Popen] = []
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"

    def start(*lines: str) -> tuple[int, Path]:
        port = free_port()
        conf = tmp_path / f"mosquitto-{port}.conf"
        log = tmp_path / f"mosquitto-{port}.log"
        conf.write_text(
            "\n".join(
                [
                    f"listener {port} 127.0.0.1",
                    "allow_anonymous true",  # loopback only, and gone with the test
                    "persistence false",
                    "log_dest stderr",
                    "log_type all",
                    *lines,
                ]
            )
            + "\n"
        )
        proc = subprocess.Popen(
            [binary, "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=open(log, "wb"),  # noqa: SIM115 - the process owns it
        )
        started.append(proc)
        deadline = time.monotonic() + 10
        while True:
            assert proc.poll() is None, f"mosquitto exited: {log.read_text()}"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return port, log
            except OSError:
                assert time.monotonic() < deadline, f"mosquitto not up: {log.read_text()}"
                time.sleep(0.05)

    yield start
    for proc in started:
        proc.terminate()
        proc.wait(timeout=10)


def _raw_session(port: int, packet: bytes) -> int | None:
    """A bare MQTT 5 client that sends ``packet`` after CONNACK without asking what the
    broker allows: the reason code of the broker's DISCONNECT, or None if it sent none."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        body = _utf8("MQTT") + bytes([5, 0x02]) + (60).to_bytes(2, "big") + b"\x00"
        sock.sendall(_packet(CONNECT << 4, body + _utf8(f"raw-{uuid.uuid4().hex[:6]}")))
        buf = bytearray()
        while not split_packets(buf)[0]:
            buf += sock.recv(4096)
        sock.sendall(packet)
        buf = bytearray(buf[split_packets(buf)[1] :])
        try:
            while chunk := sock.recv(4096):
                buf += chunk
        except ConnectionResetError:
            pass
    for kind, _flags, body in split_packets(buf)[0]:
        if kind == DISCONNECT:
            return parse_disconnect(body)[0]
    return None


def _publish_packet(topic: str, payload: bytes, qos: int, retain: bool = False) -> bytes:
    pid = b"\x00\x01" if qos else b""
    return _packet(0x30 | (qos << 1) | int(retain), _utf8(topic) + pid + b"\x00" + payload)


def test_maximum_packet_size_is_honoured(own_broker):
    port, _log = own_broker("max_packet_size 1000")
    # What the broker does to a client that ignores it: it hangs up, 0x95.
    assert _raw_session(port, _publish_packet("t/big", b"x" * 2000, qos=1)) == 0x95
    o = Ours("127.0.0.1", port, clean_start=True)
    o.c.connect()
    assert o.c.server.maximum_packet_size == 1000
    with pytest.raises(ServerLimitError, match="over the broker's maximum packet size") as exc:
        o.c.publish("t/big", b"x" * 2000, qos=1)
    assert exc.value.reason_code == 0x95 and o.c.inflight == 0
    # 1 + 2 (remaining length) + 6 (topic) + 2 (packet id) + 1 (no properties) + payload
    at_limit = 1000 - 12
    assert len(_publish_packet("t/ok", b"y" * at_limit, qos=1)) == 1000
    with pytest.raises(ServerLimitError):
        o.c.publish("t/ok", b"y" * (at_limit + 1), qos=1)
    pid = o.c.publish("t/ok", b"y" * at_limit, qos=1)
    o.pump_until(lambda: o.pubacks)
    assert o.pubacks[0][0] == pid and o.c.connected
    with pytest.raises(ServerLimitError):
        o.c.subscribe([("t/" + "x" * 1000, 1)])  # SUBSCRIBE counts too
    o.c.close()


def test_receive_maximum_bounds_our_unacked_publishes(own_broker):
    port, _log = own_broker("max_inflight_messages 3")
    sub = Peer("127.0.0.1", port)
    sub.subscribe("t/rm/#")
    o = Ours("127.0.0.1", port, clean_start=True)
    try:
        o.c.connect()
        assert o.c.server.receive_maximum == 3
        pids = [o.c.publish(f"t/rm/{i}", str(i).encode(), qos=1) for i in range(10)]
        assert (o.c.inflight, o.c.held) == (10, 7)  # three on the wire, seven waiting
        o.pump_until(lambda: len(o.pubacks) == 10)
        assert [pid for pid, _r in o.pubacks] == pids and o.c.inflight == 0
        assert max(o.wire_after_ack) <= 3
        got = [m.payload for m in sub.take(10)]
        assert got == [str(i).encode() for i in range(10)]  # all of them, in order
    finally:
        o.c.close()
        sub.close()


def test_server_keep_alive_replaces_ours(own_broker):
    port, _log = own_broker("max_keepalive 10")
    o = Ours("127.0.0.1", port, clean_start=True, keepalive=60)
    o.c.connect()
    assert o.c.server.server_keep_alive == 10 and o.c.keepalive_interval == 10
    # With our 60 s the first PINGREQ would come at 30 s; the broker's 10 s brings it at 5 s
    # (and Mosquitto drops a client silent for 15 s).
    o.pump_for(6.0)
    assert o.c.pings == 1 and o.c.pongs == 1 and o.c.connected
    o.c.close()


def test_maximum_qos_and_retain_available_are_honoured(own_broker):
    port, _log = own_broker("max_qos 0", "retain_available false")
    assert _raw_session(port, _publish_packet("t/q", b"x", qos=1)) == 0x9B
    assert _raw_session(port, _publish_packet("t/r", b"x", qos=0, retain=True)) == 0x9A
    o = Ours("127.0.0.1", port, clean_start=True)
    o.c.connect()
    assert o.c.server.maximum_qos == 0 and o.c.server.retain_available is False
    with pytest.raises(ServerLimitError, match="QoS 0 at most") as qos:
        o.c.publish("t/q", b"x", qos=1)
    with pytest.raises(ServerLimitError, match="retained") as retain:
        o.c.publish("t/r", b"x", qos=0, retain=True)
    assert (qos.value.reason_code, retain.value.reason_code) == (0x9B, 0x9A)
    o.c.subscribe([("t/#", 0)])
    o.pump_until(lambda: o.c.subscribed)
    o.c.publish("t/fine", b"ok", qos=0)  # what it does take still flows
    o.pump_until(lambda: o.messages)
    assert (o.messages[0].topic, o.messages[0].payload) == ("t/fine", b"ok")
    assert o.c.connected
    o.c.close()


def test_our_disconnect_is_a_clean_one(own_broker):
    port, log = own_broker()
    o = Ours("127.0.0.1", port, "clean-bye", clean_start=True)
    o.c.connect()
    o.c.close()
    deadline = time.monotonic() + 5
    while "Client clean-bye disconnected" not in log.read_text():
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)
    # A dropped socket reads differently in the broker's log: the DISCONNECT made the
    # difference (and so no will message would be sent).
    assert "clean-bye closed its connection" not in log.read_text()
