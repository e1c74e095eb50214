"""Mosquitto on the test stack: hub logins, the per-home ACL, TLS, anonymous refused."""

from __future__ import annotations

import json
import queue
import ssl
import threading
import uuid

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.reasoncodes import ReasonCode

from runtime.secrets import BRIDGE_MQTT_USER, load_secrets

pytestmark = pytest.mark.integration


class Client:
    """A small synchronous wrapper over paho for assertions."""

    def __init__(self, settings, username, password, *, tls=False, cert=None):
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.connack: queue.Queue[int] = queue.Queue()
        self.acks: queue.Queue[tuple[int, list[int]]] = queue.Queue()
        self.disconnects: queue.Queue[int] = queue.Queue()
        self.pubacks: dict[int, ReasonCode] = {}
        self.puback_event = threading.Condition()
        c = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"t-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )
        if username is not None:
            c.username_pw_set(username, password)
        if tls or cert:  # cert: (certificate file, key file) of a certificate hub
            certfile, keyfile = cert or (None, None)
            c.tls_set(
                ca_certs=str(settings.mqtt_ca_file),
                certfile=certfile,
                keyfile=keyfile,
                cert_reqs=ssl.CERT_REQUIRED,
            )
        c.on_connect = lambda cl, ud, fl, rc, pr: self.connack.put(rc.value)
        c.on_message = lambda cl, ud, msg: self.messages.put(msg)
        c.on_disconnect = lambda cl, ud, fl, rc, pr: self.disconnects.put(rc.value)
        c.on_subscribe = lambda cl, ud, mid, rcs, pr: self.acks.put((mid, [r.value for r in rcs]))

        def on_publish(cl, ud, mid, rc, pr):
            with self.puback_event:
                self.pubacks[mid] = rc
                self.puback_event.notify_all()

        c.on_publish = on_publish
        self.c = c
        port = settings.ports.mqtt_cert if cert else settings.ports.mqtt_tls if tls else None
        port = port or settings.ports.mqtt
        host = "localhost" if tls or cert else settings.host
        c.connect(host, port, keepalive=10)
        c.loop_start()
        self.rc = self.connack.get(timeout=10)

    def subscribe(self, topic: str) -> list[int]:
        self.c.subscribe(topic, qos=1)
        return self.acks.get(timeout=10)[1]

    def publish(self, topic: str, payload: str) -> ReasonCode:
        info = self.c.publish(topic, payload, qos=1)
        with self.puback_event:
            self.puback_event.wait_for(lambda: info.mid in self.pubacks, timeout=10)
        return self.pubacks[info.mid]

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


@pytest.fixture
def hub_login(run_cli):
    home = f"home-{uuid.uuid4().hex[:6]}"
    run_cli("users", "add", "--username", f"owner-{home}", "--password", "correct-horse-1")
    run_cli("homes", "add", "--home", home, "--owner", f"owner-{home}")
    creds = json.loads(run_cli("hubs", "add", "--home", home).stdout)
    return home, creds


@pytest.fixture
def bridge(settings):
    c = Client(settings, BRIDGE_MQTT_USER, load_secrets(settings).bridge_mqtt_password)
    assert c.rc == 0
    assert c.subscribe("hub/#") == [1]
    yield c
    c.close()


def _next_of(q: queue.Queue, home: str, timeout: float = 10) -> mqtt.MQTTMessage:
    """The next live message under hub/<home>/: other tests leave retained ones behind."""
    while True:
        msg = q.get(timeout=timeout)
        if msg.topic.startswith(f"hub/{home}/") and not msg.retain:
            return msg


def _drain(q: queue.Queue, seconds: float) -> list:
    out = []
    try:
        while True:
            out.append(q.get(timeout=seconds))
    except queue.Empty:
        return out


def test_hubs_add_prints_contract_json(hub_login):
    home, creds = hub_login
    assert set(creds) >= {"username", "password"}
    assert creds["home_id"] == home
    assert len(creds["password"]) >= 24


def test_hub_publishes_to_its_own_home(settings, hub_login, bridge):
    home, creds = hub_login
    hub = Client(settings, creds["username"], creds["password"])
    try:
        assert hub.rc == 0
        payload = json.dumps({"state": {"powerState": "ON"}})
        assert not hub.publish(f"hub/{home}/state/lamp-1", payload).is_failure
        got = _next_of(bridge.messages, home)
        assert got.topic == f"hub/{home}/state/lamp-1"
        assert json.loads(got.payload) == {"state": {"powerState": "ON"}}
    finally:
        hub.close()


def test_hub_is_refused_another_homes_topics(settings, hub_login, bridge):
    home, creds = hub_login
    hub = Client(settings, creds["username"], creds["password"])
    try:
        # Mosquitto 2.0 may grant the SUBACK and enforce read access per message (later
        # versions answer 0x87): either way nothing from another home may arrive.
        for pattern in ("hub/other-home/command/#", "hub/#"):
            assert hub.subscribe(pattern)[0] in (0, 1, 0x80, 0x87)
        assert hub.subscribe(f"hub/{home}/command/#") == [1]
        assert not bridge.publish("hub/other-home/command/lamp-1", "theirs").is_failure
        assert not bridge.publish(f"hub/{home}/command/lamp-1", "ours").is_failure
        got = _drain(hub.messages, 1.5)
        assert [m.topic for m in got if m.payload == b"ours"], "own-home delivery must work"
        assert not [m for m in got if m.payload == b"theirs" or "other-home" in m.topic]
        # Publishing elsewhere is refused in the PUBACK and never delivered.
        _drain(bridge.messages, 0.5)
        rc = hub.publish("hub/other-home/state/lamp-1", '{"state":{"powerState":"ON"}}')
        assert rc.value == 0x87
        assert not [m for m in _drain(bridge.messages, 1.0) if "other-home" in m.topic]
    finally:
        hub.close()


def test_wrong_password_and_anonymous_are_refused(settings, hub_login):
    _home, creds = hub_login
    bad = Client(settings, creds["username"], "not-the-password")
    anon = Client(settings, None, None)
    try:
        assert bad.rc in (0x86, 0x87)  # bad user name or password / not authorised
        assert anon.rc in (0x86, 0x87)  # anonymous: not authorised
    finally:
        bad.close()
        anon.close()


def test_tls_listener_with_generated_ca(settings, hub_login, bridge):
    home, creds = hub_login
    hub = Client(settings, creds["username"], creds["password"], tls=True)
    try:
        assert hub.rc == 0
        assert not hub.publish(f"hub/{home}/status", "online").is_failure
        assert _next_of(bridge.messages, home).payload == b"online"
    finally:
        hub.close()


def test_revoking_a_hub_takes_it_off_the_broker_at_once(settings, run_cli, hub_login):
    home, creds = hub_login
    hub = Client(settings, creds["username"], creds["password"])
    try:
        assert hub.rc == 0
        listed = json.loads(run_cli("hubs", "list", "--home", home, "--json").stdout)
        assert [(h["username"], h["revoked"]) for h in listed] == [(creds["username"], False)]
        out = json.loads(run_cli("hubs", "revoke", "--username", creds["username"]).stdout)
        assert out == {"username": creds["username"], "home_id": home, "revoked": True}
        hub.disconnects.get(timeout=10)  # the broker dropped the connected hub
    finally:
        hub.close()
    again = Client(settings, creds["username"], creds["password"])
    try:
        assert again.rc != 0, "a revoked login must be refused"
    finally:
        again.close()
    listed = json.loads(run_cli("hubs", "list", "--home", home, "--json").stdout)
    assert listed[0]["revoked"] and listed[0]["revoked_at"]
    refused = run_cli("hubs", "revoke", "--username", creds["username"], check=False)
    assert refused.returncode == 2 and "is revoked" in refused.stderr


def test_rotating_a_hub_password_drops_the_old_one(settings, run_cli, hub_login):
    _home, creds = hub_login
    hub = Client(settings, creds["username"], creds["password"])
    try:
        assert hub.rc == 0
        new = json.loads(run_cli("hubs", "rotate", "--username", creds["username"]).stdout)
        assert new["username"] == creds["username"] and new["password"] != creds["password"]
        hub.disconnects.get(timeout=10)
    finally:
        hub.close()
    old = Client(settings, creds["username"], creds["password"])
    fresh = Client(settings, new["username"], new["password"])
    try:
        assert old.rc != 0 and fresh.rc == 0
    finally:
        old.close()
        fresh.close()


def test_a_certificate_hub_is_its_cn_to_the_acl_and_revoking_puts_it_on_the_crl(
    settings, run_cli, hub_login, bridge, tmp_path
):
    home, _password_hub = hub_login
    other = f"home-{uuid.uuid4().hex[:6]}"
    run_cli("homes", "add", "--home", other, "--owner", f"owner-{home}")
    creds = json.loads(run_cli("hubs", "add", "--home", home, "--cert").stdout)
    assert "password" not in creds and creds["username"].startswith(f"hub-{home}-")
    cert, key = tmp_path / "hub.crt", tmp_path / "hub.key"
    cert.write_text(creds["certificate_pem"])
    key.write_text(creds["private_key_pem"])
    assert creds["ca_pem"] == settings.mqtt_ca_file.read_text()

    hub = Client(settings, None, None, cert=(str(cert), str(key)))
    try:
        assert hub.rc == 0
        assert not hub.publish(f"hub/{home}/status", "online").is_failure
        assert _next_of(bridge.messages, home).payload == b"online"
        # The CN is the user the ACL checks: another home's topics are refused (Mosquitto
        # 2.0 grants the SUBACK and filters each message; see the test above).
        hub.subscribe(f"hub/{other}/#")
        assert not bridge.publish(f"hub/{other}/command/lamp-1", "theirs").is_failure
        assert not [m for m in _drain(hub.messages, 1.5) if m.payload == b"theirs"]
        assert hub.publish(f"hub/{other}/status", "online").value == 0x87
    finally:
        hub.close()
    # Without a certificate, or with a password, the certificate listener refuses (the TLS
    # handshake fails: an error, or no CONNACK ever).
    with pytest.raises((ssl.SSLError, OSError, queue.Empty)):
        Client(settings, creds["username"], "anything", cert=(None, None))
    # A certificate hub has no password to rotate.
    rotate = run_cli("hubs", "rotate", "--username", creds["username"], check=False)
    assert rotate.returncode == 2 and "certificate" in rotate.stderr

    run_cli("hubs", "revoke", "--username", creds["username"])
    with pytest.raises((ssl.SSLError, OSError, queue.Empty)):  # the broker reloaded its CRL
        Client(settings, None, None, cert=(str(cert), str(key)))
