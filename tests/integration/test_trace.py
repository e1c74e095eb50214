"""A command's correlation id from the app through Kafka, the worker, the bridge and the hub
and back: in the records' headers, in each hop's JSON log lines, and in `homestream trace`."""

from __future__ import annotations

import json
import signal
import time
import uuid

import pytest

from compose.process import free_port
from hub.bridge import forget_session
from tests.integration.bridge_support import BridgeProc, Hub
from tests.integration.streams_support import CODEC, Worker
from tests.integration.test_bridge import DESCRIPTOR
from topics import catalogue as t
from topics.producer import EventProducer

pytestmark = pytest.mark.integration


def _json_lines(path) -> list[dict]:
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def test_a_command_is_traced_through_every_hop(stack_env, settings, run_cli, tmp_path):
    home = f"tr-{uuid.uuid4().hex[:6]}"
    run_cli("users", "add", "--username", f"owner-{home}", "--password", "correct-horse-1")
    run_cli("homes", "add", "--home", home, "--owner", f"owner-{home}")
    creds = json.loads(run_cli("hubs", "add", "--home", home).stdout)
    bridge = BridgeProc(stack_env, f"tr-{uuid.uuid4().hex[:4]}", tmp_path, free_port())
    worker_name = f"tr-{uuid.uuid4().hex[:4]}"
    worker = Worker(stack_env, worker_name, tmp_path / "w")
    hub = Hub(settings, creds["username"], creds["password"], home)
    try:
        bridge.wait_ready()
        hub.subscribe("command/+")
        hub.publish("discovery/lamp-1", DESCRIPTOR)
        hub.publish("state/lamp-1", {"state": {"powerState": "ON", "brightness": 10}})
        app = EventProducer(settings.kafka_bootstrap, settings.partitions, CODEC, hop="app")
        deadline = time.monotonic() + 90
        while True:
            # A new command until the worker has registered the lamp (before, one FAILs).
            assert time.monotonic() < deadline, "no command reached the hub"
            cid = str(uuid.uuid4())
            app.send(
                t.COMMANDS_REQUESTED,
                "CommandRequested",
                home,
                command_id=cid,
                device_id="lamp-1",
                capability="BRIGHTNESS",
                command="setBrightness",
                parameters={"brightness": 55},
                requested_by="trace-test",
                issued_at=int(time.time() * 1000),
            )
            app.flush()
            time.sleep(3)
            sent = [json.loads(p) for tp, p in hub.received if tp.endswith("/command/lamp-1")]
            if any(c["command_id"] == cid for c in sent):
                break
        hub.publish("ack/lamp-1", {"command_id": cid, "status": "COMPLETED"})
        hub.publish("state/lamp-1", {"state": {"powerState": "ON", "brightness": 55}})

        def traced() -> list[dict]:
            proc = run_cli("trace", cid, "--home", home, "--since", "10m", "--json")
            return json.loads(proc.stdout)

        deadline = time.monotonic() + 60
        hops = traced()
        while not any(h["what"].startswith("COMPLETED") for h in hops):
            assert time.monotonic() < deadline, hops
            time.sleep(1)
            hops = traced()
    finally:
        hub.close()
        worker.kill(signal.SIGTERM)
        bridge.kill(signal.SIGTERM)
        forget_session(settings, bridge.name)

    seen = [(h["hop"], h["record"], h["what"].split(" ")[0]) for h in hops]
    print("\n".join(map(str, seen)))
    assert seen[0] == ("app", "CommandRequested", "setBrightness")
    statuses = [w for hop, rec, w in seen if rec == "CommandStatus"]
    assert statuses[:2] == ["PENDING", "SENT"] and statuses[-1] == "COMPLETED"
    assert (bridge.name, "HubAck", "COMPLETED") in seen
    assert {hop for hop, rec, _w in seen if rec in ("CommandDispatched", "CommandStatus")} == {
        worker_name
    }
    assert any(rec == "StateChange" for _h, rec, _w in seen)
    times = [h["ts"] for h in hops]
    assert times == sorted(times)

    # The same id in the JSON log lines of each hop.
    worker_lines = [x for x in _json_lines(worker.log) if x.get("correlation_id") == cid]
    assert {x["msg"] for x in worker_lines} >= {"command dispatched", "command COMPLETED"}
    bridge_lines = [x for x in _json_lines(bridge.log) if x.get("correlation_id") == cid]
    assert {x["msg"] for x in bridge_lines} >= {"command to hub", "hub HubAck"}

    text = run_cli("trace", cid, "--home", home, "--since", "10m").stdout
    assert text.startswith(f"command {cid}: {len(hops)} hops in ")
    missing = run_cli("trace", "no-such-command", "--since", "10m", check=False)
    assert missing.returncode == 2 and "not found" in missing.stderr
