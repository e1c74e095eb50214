"""Hub store-and-forward against the test stack's real Mosquitto.

The hub keeps publishing numbered state reports for three devices while the broker is
stopped and started again. Nothing the hub published may be lost, and per device the
first delivery of each report must come in order (duplicates after the reconnect are
allowed: at-least-once).
"""

from __future__ import annotations

import contextlib
import json
import signal
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from compose.services.mosquitto import MosquittoService
from hub.hubclient import HubClient
from runtime.secrets import BRIDGE_MQTT_USER, load_secrets

pytestmark = pytest.mark.integration

DEVICES = [f"dev-{i}" for i in range(3)]
ROUNDS = 200


def _until(pred: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


def clear_retained(settings, home: str) -> int:
    """Delete the retained messages under hub/{home}/ (status, discovery, ...).

    Other tests subscribe to hub/# and take the first message they get for their
    own: a retained one left behind here would be it.
    """
    found: dict[str, bytes] = {}
    subscribed = threading.Event()
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    c.username_pw_set(BRIDGE_MQTT_USER, load_secrets(settings).bridge_mqtt_password)
    c.on_connect = lambda cl, ud, fl, rc, pr: cl.subscribe(f"hub/{home}/#", qos=1)
    c.on_subscribe = lambda cl, ud, mid, rcs, pr: subscribed.set()

    def on_message(cl, ud, msg):
        if msg.retain and msg.payload:
            found[msg.topic] = msg.payload

    c.on_message = on_message
    c.connect(settings.host, settings.ports.mqtt, keepalive=10)
    c.loop_start()
    try:
        assert subscribed.wait(10)
        time.sleep(0.5)  # retained messages follow the SUBACK
        for topic in list(found):
            c.publish(topic, b"", qos=1, retain=True).wait_for_publish(5)
    finally:
        c.disconnect()
        c.loop_stop()
    return len(found)


@pytest.fixture
def hub_login(run_cli, settings, broker):
    home = f"home-{uuid.uuid4().hex[:6]}"
    run_cli("users", "add", "--username", f"owner-{home}", "--password", "correct-horse-1")
    run_cli("homes", "add", "--home", home, "--owner", f"owner-{home}")
    creds = json.loads(run_cli("hubs", "add", "--home", home).stdout)
    yield home, creds
    broker.start()
    clear_retained(settings, home)


class Broker:
    """The test stack's Mosquitto, stopped and started in place (same port, config)."""

    def __init__(self, settings):
        self.svc = MosquittoService(settings, load_secrets(settings))
        self.persistent = "persistence true" in self.svc.conf.read_text()

    def stop(self) -> None:
        assert self.svc.stop(), "the test stack's Mosquitto was not running"

    def start(self) -> None:
        if self.svc.pid() is None:
            self.svc.start()
        self.svc.wait_healthy(time.monotonic() + self.svc.start_timeout)


@pytest.fixture
def broker(settings) -> Iterator[Broker]:
    b = Broker(settings)
    try:
        yield b
    finally:
        b.start()  # later tests need it, whatever happened here


class Watcher:
    """The cloud side: a bridge login with a persistent session that reconnects by
    itself and records every state report (topic, seq, dup flag) in arrival order."""

    def __init__(self, settings, home: str):
        self.topic = f"hub/{home}/state/+"
        self.lock = threading.Lock()
        self.got: list[tuple[str, int, bool]] = []
        self.connects = 0
        self.subscribed = threading.Event()
        c = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"watch-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )
        c.username_pw_set(BRIDGE_MQTT_USER, load_secrets(settings).bridge_mqtt_password)
        c.reconnect_delay_set(min_delay=1, max_delay=2)
        c.on_connect = self._on_connect
        c.on_subscribe = lambda cl, ud, mid, rcs, pr: self.subscribed.set()
        c.on_message = self._on_message
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 600
        c.connect_async(
            settings.host, settings.ports.mqtt, keepalive=10, clean_start=False, properties=props
        )
        c.loop_start()
        self.c = c
        assert self.subscribed.wait(15), "watcher could not subscribe"

    def _on_connect(self, client, userdata, flags, rc, props):
        if rc.is_failure:
            return
        self.connects += 1
        # Harmless when the broker kept the session; needed when it did not.
        client.subscribe(self.topic, qos=1)

    def _on_message(self, client, userdata, msg):
        seq = json.loads(msg.payload)["state"]["seq"]
        with self.lock:
            self.got.append((msg.topic.rsplit("/", 1)[1], seq, bool(msg.dup)))

    def first_seen(self) -> dict[str, list[int]]:
        """Per device, each seq in the order of its first arrival."""
        out: dict[str, list[int]] = defaultdict(list)
        seen: set[tuple[str, int]] = set()
        with self.lock:
            for dev, seq, _dup in self.got:
                if (dev, seq) not in seen:
                    seen.add((dev, seq))
                    out[dev].append(seq)
        return out

    def complete(self, rounds: int) -> bool:
        firsts = self.first_seen()
        return all(len(firsts.get(d, [])) >= rounds for d in DEVICES)

    def close(self) -> None:
        # End the broker-side session too (it was kept for 600 s).
        props = Properties(PacketTypes.DISCONNECT)
        props.SessionExpiryInterval = 0
        with contextlib.suppress(Exception):
            self.c.disconnect(properties=props)
        self.c.loop_stop()


def hub_client(settings, home: str, creds: dict, tmp_path, **kw) -> HubClient:
    """The home's hub with its outbox in ``tmp_path``."""
    return HubClient(
        home_id=home,
        username=creds["username"],
        password=creds["password"],
        host=settings.host,
        port=settings.ports.mqtt,
        outbox=tmp_path / "outbox.db",
        keepalive=10,
        **kw,
    )


def test_reports_survive_a_broker_outage_in_order(settings, hub_login, broker, tmp_path):
    home, creds = hub_login
    watcher = Watcher(settings, home)
    hub = hub_client(settings, home, creds, tmp_path)
    errors: list[BaseException] = []
    reached = {n: threading.Event() for n in (60, 150)}
    go_on = threading.Event()  # released at round 60 once the outage may begin
    broker_down = threading.Event()
    broker_up = threading.Event()

    def feed() -> None:
        try:
            for n in range(ROUNDS):
                if n in reached:
                    reached[n].set()
                if n == 60:
                    go_on.wait(60)
                if n == 120:  # from here on, publishes happen while the broker is away
                    assert broker_down.wait(60)
                if n == 160:  # ... and the rest once it is back, mixed with the replay
                    assert broker_up.wait(60)
                for dev in DEVICES:
                    hub.publish(
                        f"state/{dev}", {"state": {"seq": n}, "ts": int(time.time() * 1000)}
                    )
                time.sleep(0.005)
        except BaseException as exc:
            errors.append(exc)

    feeder = threading.Thread(target=feed, name="feeder", daemon=True)
    try:
        hub.start()
        assert _until(lambda: hub.connected, 15), "hub did not connect"
        feeder.start()

        assert reached[60].wait(30)
        if not broker.persistent:
            # Without broker persistence, reports the broker had accepted (PUBACKed)
            # but not yet delivered to the watcher die with it: let those through
            # first, so the test measures the hub and not the broker.
            assert hub.wait_drained(30)
            assert _until(lambda: watcher.complete(60), 30)
        go_on.set()  # the feeder keeps going while the broker stops (in-flight reports)
        broker.stop()
        broker_down.set()
        assert _until(lambda: not hub.connected, 15), "hub did not notice the outage"

        assert reached[150].wait(60)
        # 30 rounds at least were published while the broker was down: all queued.
        queued = hub.pending()
        assert queued >= 30 * len(DEVICES), queued
        assert not hub.connected

        broker.start()
        broker_up.set()
        feeder.join(60)
        assert not feeder.is_alive()
        assert not errors, errors  # publish never raised, outage or not

        assert hub.wait_drained(60), f"{hub.pending()} reports still queued"
        assert hub.connected
        assert _until(lambda: watcher.complete(ROUNDS), 30), {
            d: len(s) for d, s in watcher.first_seen().items()
        }
        firsts = watcher.first_seen()
        for dev in DEVICES:
            assert firsts[dev] == list(range(ROUNDS)), dev  # nothing lost, first in order
        assert watcher.connects >= 2  # it really lived through the outage
        assert hub.rejected == 0 and hub.dropped == 0
        with watcher.lock:
            dups = len(watcher.got) - ROUNDS * len(DEVICES)
        print(f"store-and-forward: {queued} queued during the outage, {dups} duplicates")
    finally:
        go_on.set()
        broker_down.set()
        broker_up.set()
        hub.stop()
        watcher.close()


def test_status_and_commands_after_reconnect(settings, hub_login, broker, tmp_path):
    """After the broker comes back the hub announces itself again (retained "online",
    the last will says "offline" on a lost connection) and gets its commands."""
    home, creds = hub_login
    commands: list[tuple[str, bytes]] = []
    got_command = threading.Event()

    def on_message(subtopic: str, payload: bytes) -> None:
        commands.append((subtopic, payload))
        got_command.set()

    hub = HubClient(
        home_id=home,
        username=creds["username"],
        password=creds["password"],
        host=settings.host,
        port=settings.ports.mqtt,
        outbox=tmp_path / "outbox.db",
        on_message=on_message,
        keepalive=10,
    )
    secret = load_secrets(settings).bridge_mqtt_password

    def retained_status() -> bytes | None:
        got: list[bytes] = []
        done = threading.Event()
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        c.username_pw_set(BRIDGE_MQTT_USER, secret)
        c.on_connect = lambda cl, ud, fl, rc, pr: cl.subscribe(f"hub/{home}/status", qos=1)
        c.on_subscribe = lambda cl, ud, mid, rcs, pr: threading.Timer(1.0, done.set).start()

        def on_msg(cl, ud, msg):
            got.append(msg.payload)
            done.set()

        c.on_message = on_msg
        c.connect(settings.host, settings.ports.mqtt, keepalive=10)
        c.loop_start()
        done.wait(10)
        c.disconnect()
        c.loop_stop()
        return got[-1] if got else None

    try:
        hub.start()
        assert _until(lambda: hub.connected, 15)
        assert _until(lambda: retained_status() == b"online", 10)
        broker.stop()
        assert _until(lambda: not hub.connected, 15)
        hub.publish("discovery/lamp-1", {"name": "Lamp", "type": "light.dimmer"}, retain=True)
        assert hub.pending() == 1
        broker.start()
        assert _until(lambda: hub.connected, 60)
        assert hub.wait_drained(30)
        assert retained_status() == b"online"

        cmd = json.dumps({"command_id": "c-1", "command": "turnOn"})
        pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        pub.username_pw_set(BRIDGE_MQTT_USER, secret)
        pub.connect(settings.host, settings.ports.mqtt, keepalive=10)
        pub.loop_start()
        try:
            # Subscriptions are made on connect; allow a moment for the SUBACK.
            for _ in range(20):
                pub.publish(f"hub/{home}/command/lamp-1", cmd, qos=1).wait_for_publish(5)
                if got_command.wait(0.5):
                    break
        finally:
            pub.disconnect()
            pub.loop_stop()
        assert commands and commands[0] == ("command/lamp-1", cmd.encode())
    finally:
        hub.stop()
    assert retained_status() == b"offline"


def test_outbox_outlives_the_hub_process(settings, hub_login, tmp_path):
    """Reports queued by a hub that never reached the broker are sent, in order, by
    the next hub started on the same outbox file."""
    home, creds = hub_login
    outbox = tmp_path / "outbox.db"

    def make_hub() -> HubClient:
        return HubClient(
            home_id=home,
            username=creds["username"],
            password=creds["password"],
            host=settings.host,
            port=settings.ports.mqtt,
            outbox=outbox,
        )

    first = make_hub()  # never started: as if the broker was unreachable all along
    for n in range(50):
        first.publish(f"state/{DEVICES[n % 3]}", {"state": {"seq": n // 3}})
    assert first.pending() == 50
    first.stop(offline=False)

    watcher = Watcher(settings, home)
    second = make_hub()
    try:
        assert second.pending() == 50
        second.start()
        assert second.wait_drained(30)
        assert _until(lambda: sum(map(len, watcher.first_seen().values())) == 50, 15)
        firsts = watcher.first_seen()
        for i, dev in enumerate(DEVICES):
            assert firsts[dev] == list(range(len(range(i, 50, 3)))), dev
    finally:
        second.stop()
        watcher.close()


def test_offline_minutes_land_in_history_at_their_own_times(
    stack_env, settings, hub_login, broker, tmp_path
):
    """A hub measures while the broker is away and replays its outbox on reconnect: every
    hop real (hub, Mosquitto, bridge, stream worker, history sink), the history rows keep
    the hub's times (the outage's spread), not the moment of the replay."""
    from compose.process import free_port
    from hub.bridge import forget_session
    from stores import db
    from tests.integration.bridge_support import BridgeProc
    from tests.integration.streams_support import Worker
    from tests.integration.test_history_sink import Sink

    home, creds = hub_login
    tag = uuid.uuid4().hex[:4]
    bridge = BridgeProc(stack_env, f"sf-{tag}", tmp_path, free_port())
    worker = Worker(stack_env, f"sf-{tag}", tmp_path / "worker")
    sink = Sink(stack_env, tmp_path, f"test-sf-{tag}", "sf")
    hub = hub_client(settings, home, creds, tmp_path)
    sent: dict[float, int] = {}

    def measure(value: float) -> None:
        ts = int(time.time() * 1000)  # the hub's clock, when it measured
        hub.publish("state/thermo", {"state": {"temperature": value}, "ts": ts})
        sent[value] = ts

    def history() -> list[tuple[float, int, int]]:
        with db.connect(settings) as conn:
            rows = conn.execute(
                "SELECT value_num, (extract(epoch FROM time) * 1000)::bigint,"
                " (extract(epoch FROM accepted_at) * 1000)::bigint FROM history.state_history"
                " WHERE home_id = %s AND attribute = 'temperature' ORDER BY version",
                (home,),
            ).fetchall()
        return [(float(v), int(t), int(a)) for v, t, a in rows]

    try:
        bridge.wait_ready()
        sink.wait_up()
        hub.start()
        assert _until(lambda: hub.connected, 15), "hub did not connect"
        hub.publish(
            "discovery/thermo",
            {"name": "Hall", "type": "sensor.temperature", "capabilities": ["TEMPERATURE_SENSOR"]},
            retain=True,
        )
        measure(10.0)
        assert _until(lambda: len(history()) == 1, 60), (
            sink.tail(),
            worker.log.read_text()[-2000:],
        )

        broker.stop()
        assert _until(lambda: not hub.connected, 15), "hub did not notice the outage"
        for i in range(1, 7):  # six readings, a second apart, while offline
            time.sleep(1.0)
            measure(10.0 + 2 * i)
        assert hub.pending() >= 6
        broker.start()
        back = int(time.time() * 1000)
        assert hub.wait_drained(60), f"{hub.pending()} reports still queued"
        assert _until(lambda: len(history()) == 7, 60), (history(), sink.tail())

        rows = history()
        assert [(v, t) for v, t, _ in rows] == sorted(sent.items())  # the hub's own times
        offline = rows[1:]
        assert all(accepted >= back - 500 for _, _, accepted in offline)  # received after
        assert offline[-1][1] - offline[0][1] >= 4500  # ... yet spread over the outage
        assert all(t < back for _, t, _ in offline)
    finally:
        hub.stop()
        sink.stop()
        worker.kill(signal.SIGTERM)
        bridge.kill(signal.SIGTERM)
        forget_session(settings, bridge.name)
