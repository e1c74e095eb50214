"""The fan-out: records -> WebSocket events, per-home subscriptions, command statuses."""

from __future__ import annotations

import asyncio
import json

from gateway.fanout import Event, Fanout, KafkaFeed, MemoryCommandLog, to_events
from topics.codec import SingleObjectCodec
from topics.schemas import SchemaStore


def _state_change(**over):
    rec = {
        "event_id": "e1",
        "home_id": "h1",
        "ts": 5,
        "device_id": "lamp",
        "version": 3,
        "changed": {"brightness": 40},
        "reported": {"brightness": 40, "powerState": "ON"},
        "desired": {},
        "desired_changed": {},
        "delta": {},
        "source": "report",
        "client_token": None,
        "command_id": None,
        "accepted_at": 5,
        "state_json": None,
    }
    rec.update(over)
    return rec


def test_state_change_becomes_device_state():
    (ev,) = to_events("StateChange", _state_change())
    assert ev.type == "device.state" and ev.home_id == "h1"
    assert ev.frame["version"] == 3 and ev.frame["changed"] == {"brightness": 40}
    assert ev.frame["reported"]["powerState"] == "ON"


def test_desired_change_and_deep_state():
    rec = _state_change(changed={}, desired_changed={"brightness": 10}, desired={"brightness": 10})
    (ev,) = to_events("StateChange", rec)
    assert ev.type == "device.desired" and ev.frame["desired"] == {"brightness": 10}
    deep = _state_change(reported={}, state_json=json.dumps({"reported": {"a": [1, 2]}}))
    (ev,) = to_events("StateChange", deep)
    assert ev.frame["reported"] == {"a": [1, 2]}


def test_other_records():
    assert to_events("Availability", {"home_id": "h1", "device_id": "d", "online": False, "ts": 1})[
        0
    ].frame == {
        "type": "device.online",
        "home_id": "h1",
        "device_id": "d",
        "online": False,
        "ts": 1,
    }
    st = to_events("CommandStatus", {"home_id": "h1", "command_id": "c", "status": "SENT"})[0]
    assert st.type == "command.status" and st.frame["status"] == "SENT"
    n = to_events(
        "Notification",
        {"home_id": "h1", "kind": "LOW_BATTERY", "message": "m", "data": '{"level": 5}'},
    )[0]
    assert n.type == "notification" and n.frame["data"] == {"level": 5}
    assert (
        to_events("DeviceRemoved", {"home_id": "h1", "device_id": "d"})[0].type == "device.removed"
    )
    assert to_events("SceneRun", {"home_id": "h1", "scene_id": "s"})[0].type == "scene.status"
    assert to_events("DeviceReport", {"home_id": "h1"}) == []
    assert to_events("StateChange", {"home_id": ""}) == []


async def test_subscriptions_are_per_home_and_bounded():
    fan = Fanout(MemoryCommandLog(), queue_size=2)
    a, b = fan.subscribe("h1"), fan.subscribe("h2")
    events = [Event("device.state", "h1", {"n": i}) for i in range(3)]
    fan.publish(events)
    assert a.queue.qsize() == 2 and a.overflowed and a.dropped == 1
    assert b.queue.qsize() == 0 and not b.overflowed
    assert (await a.get()).frame == {"n": 0}
    a.clear_overflow()
    fan.unsubscribe(a)
    fan.publish([Event("device.state", "h1", {"n": 9})])
    assert a.queue.qsize() == 1  # no longer delivered to
    assert fan.subscribers() == 1


async def test_events_cross_from_the_feed_thread():
    fan = Fanout(MemoryCommandLog())
    await fan.start()
    sub = fan.subscribe("h1")
    import threading

    t = threading.Thread(target=fan._from_thread, args=([Event("x", "h1", {})],))
    t.start()
    t.join()
    ev = await asyncio.wait_for(sub.get(), 1)
    assert ev.type == "x"


async def test_wait_status_wakes_on_final():
    fan = Fanout(MemoryCommandLog())
    fan.note_status({"command_id": "c1", "home_id": "h1", "status": "PENDING"})

    async def later():
        await asyncio.sleep(0.05)
        fan.publish(
            to_events("CommandStatus", {"home_id": "h1", "command_id": "c1", "status": "COMPLETED"})
        )

    task = asyncio.create_task(later())
    got = await fan.wait_status("c1", 2.0)
    await task
    assert got is not None and got["status"] == "COMPLETED"
    assert (await fan.wait_status("c2", 0.05)) is None


def test_command_log_never_goes_back():
    log = MemoryCommandLog()
    log.record({"command_id": "c", "status": "PENDING", "device_id": "d"})
    log.record({"command_id": "c", "status": "ACKNOWLEDGED", "device_id": None})
    assert not log.record({"command_id": "c", "status": "SENT"})
    assert log.get("c") == {"command_id": "c", "status": "ACKNOWLEDGED", "device_id": "d"}
    log.record({"command_id": "c", "status": "COMPLETED"})
    assert not log.record({"command_id": "c", "status": "TIMEOUT"})
    assert log.get("c")["status"] == "COMPLETED"


def test_feed_handles_encoded_records_and_garbage():
    codec = SingleObjectCodec(SchemaStore())
    log = MemoryCommandLog()
    feed = KafkaFeed("unused:1", codec, commands=log)
    value = codec.encode(
        "CommandStatus",
        {
            "event_id": "00000000-0000-0000-0000-000000000001",
            "home_id": "h1",
            "ts": 1,
            "command_id": "c9",
            "status": "FAILED",
            "reason": "no such device",
        },
    )
    (ev,) = feed.handle(value)
    assert ev.frame["status"] == "FAILED" and log.get("c9")["reason"] == "no such device"
    assert feed.handle(b"\x00garbage") == []
