"""Helpers for bridge tests: bridge processes and plain MQTT hubs on the test stack."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt

from hub.bridge import bridge_argv


class BridgeProc:
    """One `homestream bridge` process."""

    def __init__(self, env: dict[str, str], name: str, data_dir: Path, metrics_port: int):
        self.name = name
        self.dir = data_dir / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log = self.dir / "bridge.log"
        self.metrics_port = metrics_port
        self.proc = subprocess.Popen(
            [*bridge_argv(name, self.dir, metrics_port), "--loglevel", "info"],
            env={**os.environ, **env},
            stdout=open(self.log, "ab"),  # noqa: SIM115 - the process owns it
            stderr=subprocess.STDOUT,
        )

    def counters(self) -> dict[str, int]:
        """Live counters from /metrics."""
        from runtime.metrics import outcomes_at

        counts = outcomes_at("127.0.0.1", self.metrics_port, "homestream_bridge_messages_total")
        return {outcome: int(value) for outcome, value in counts.items()}

    def wait_ready(self, timeout: float = 30) -> None:
        from runtime.metrics import ready_at

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"bridge exited: {self.log.read_text()[-2000:]}"
            try:
                # Ready (subscribed to the hubs), and the outbound consumer has its partitions.
                if ready_at("127.0.0.1", self.metrics_port) and (
                    self.counters().get("out_partitions", 0) > 0
                ):
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"bridge not ready: {self.log.read_text()[-2000:]}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Hub:
    """A hub as plain paho: QoS 1 publishes, counting PUBACKs; collects what it receives."""

    def __init__(self, settings, username: str, password: str, home: str):
        self.home = home
        self.acked = 0
        self.received: list[tuple[str, bytes]] = []
        self._cond = threading.Condition()
        c = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"hub-{home}-{uuid.uuid4().hex[:4]}",
            protocol=mqtt.MQTTv5,
        )
        c.username_pw_set(username, password)
        c.max_inflight_messages_set(200)
        c.max_queued_messages_set(0)
        connected = threading.Event()
        c.on_connect = lambda *a: connected.set()
        c.on_publish = self._on_publish
        c.on_message = self._on_message
        c.on_subscribe = self._on_subscribe
        self._subacks: set[int] = set()
        c.connect(settings.host, settings.ports.mqtt, keepalive=30)
        c.loop_start()
        assert connected.wait(10), "hub could not connect"
        self.c = c

    def _on_publish(self, *_a) -> None:
        with self._cond:
            self.acked += 1
            self._cond.notify_all()

    def _on_message(self, _c, _u, msg) -> None:
        with self._cond:
            self.received.append((msg.topic, msg.payload))
            self._cond.notify_all()

    def _on_subscribe(self, _c, _u, mid, *_a) -> None:
        with self._cond:
            self._subacks.add(mid)
            self._cond.notify_all()

    def subscribe(self, sub: str) -> None:
        """Subscribe and wait for the SUBACK: what is published after this returns arrives."""
        _rc, mid = self.c.subscribe(f"hub/{self.home}/{sub}", qos=1)
        with self._cond:
            assert self._cond.wait_for(lambda: mid in self._subacks, 10), f"no SUBACK for {sub}"

    def publish(self, sub: str, payload, *, retain: bool = False) -> None:
        if isinstance(payload, dict):
            payload = json.dumps(payload)
        self.c.publish(f"hub/{self.home}/{sub}", payload, qos=1, retain=retain)

    def wait_acked(self, n: int, timeout: float = 60) -> None:
        with self._cond:
            assert self._cond.wait_for(lambda: self.acked >= n, timeout), (
                f"{self.acked}/{n} PUBACKs"
            )

    def wait_received(self, pred, timeout: float = 30):
        with self._cond:
            assert self._cond.wait_for(lambda: pred(self.received), timeout), self.received
            return list(self.received)

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()
