"""`homestream report`: one state report or event of a device, sent as its simulated hub
sends them (same MQTT login, same topics), to try an automation without waiting for the
simulation to get round to it.

The simulated device does not know: its next periodic report (within its period, 30 s by
default) says what it holds again. For the demo that is the point: report motion in the
hallway and the hall light comes on; the sensor's own report clears the motion, and two
minutes later the light goes off.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from typing import Any

from hub.sim.provision import ProvisionError, credentials_path, load_credentials
from runtime.config import Settings


def report_message(
    home: str, device: str, *, state: dict[str, Any] | None = None, event: str | None = None,
    data: dict[str, Any] | None = None, now_ms: int | None = None,
) -> tuple[str, dict[str, Any]]:  # fmt: skip
    """The topic and payload (CONTRACT.md section 2) of a state report or an event."""
    ts = int(time.time() * 1000) if now_ms is None else now_ms
    if (state is None) == (event is None):
        raise ValueError("give a state or an event")
    if state is not None:
        return f"hub/{home}/state/{device}", {"state": state, "ts": ts}
    body: dict[str, Any] = {"event": event, "ts": ts}
    if data:
        body["data"] = data
    return f"hub/{home}/event/{device}", body


def send(settings: Settings, home: str, topic: str, payload: dict[str, Any]) -> None:
    """Publish with the home's simulated hub login (QoS 1, acknowledged by the broker)."""
    import paho.mqtt.client as mqtt

    path = credentials_path(settings)
    login = load_credentials(path).get(home)
    if login is None:
        raise ProvisionError(
            f"no simulated hub login for {home!r} in {path}: start its simulation first "
            f"(`homestream up` for demo-home, `homestream simulate --home {home}` otherwise)"
        )
    # Its own client id: the simulated hub's connection stays as it is.
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=f"homestream-report-{uuid.uuid4().hex[:8]}",
        protocol=mqtt.MQTTv5,
    )
    client.username_pw_set(login["username"], login["password"])
    try:
        client.connect(settings.host, settings.ports.mqtt, keepalive=30)
    except OSError as exc:
        raise ProvisionError(
            f"the MQTT broker at {settings.host}:{settings.ports.mqtt} did not answer ({exc}); "
            "is the stack up (`homestream status`)?"
        ) from None
    client.loop_start()
    try:
        info = client.publish(topic, json.dumps(payload), qos=1)
        with contextlib.suppress(RuntimeError, ValueError):  # not connected: said below
            info.wait_for_publish(timeout=10)
        if not info.is_published():
            raise ProvisionError(
                f"the broker did not take the message on {topic} (a refused login? see the "
                "broker's log)"
            )
    finally:
        client.disconnect()
        client.loop_stop()
