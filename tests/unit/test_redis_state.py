"""The Redis sink's pure parts: key layout, records -> writes (device state and the
gateway's side stores), stored hash -> documents."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from domain.lifecycle import rank
from domain.shadow import Shadow
from stores.command_log import COMMAND_TTL_MS, status_write
from stores.event_views import automation_run_view, command_view, notification_view
from stores.recent_events import NOTIFICATIONS_KEPT, RUNS_KEPT
from stores.redis_state import (
    Keys,
    Op,
    device_view,
    op_for,
    registry_entry,
    shadow_document,
    shadow_entry,
    snapshot_order,
    text_hash,
    tombstone_op,
)
from streams.fold.dispatch import fold
from topics import catalogue as t
from topics.codec import SingleObjectCodec
from topics.schemas import SchemaStore

HOME = "h1"
T0 = 1_700_000_000_000
CODEC = SingleObjectCodec(SchemaStore())


def eid() -> str:
    return str(uuid.uuid4())


def discovered(dev: str, caps: tuple[str, ...], type_: str, ts: int = T0, room: str | None = None):
    return "DeviceDiscovered", {
        "event_id": eid(),
        "home_id": HOME,
        "ts": ts,
        "device_id": dev,
        "name": dev.title(),
        "type": type_,
        "room": room,
        "protocol": "zigbee",
        "capabilities": list(caps),
    }


def report(dev: str, state: dict[str, Any], ts: int):
    return "DeviceReport", {
        "event_id": eid(),
        "home_id": HOME,
        "ts": ts,
        "received_at": ts,
        "device_id": dev,
        "state": state,
        "source": "mqtt",
    }


def registered(dev="lamp", **kw):
    return {
        "event_id": eid(),
        "home_id": HOME,
        "ts": T0,
        "device_id": dev,
        "name": kw.get("name", "Lamp"),
        "type": "light.dimmer",
        "room": kw.get("room", "Living Room"),
        "protocol": "zigbee",
        "manufacturer": None,
        "model": None,
        "capabilities": ["ON_OFF", "BRIGHTNESS"],
        "endpoint": None,
        "extra": kw.get("extra"),
        "source": "discovery",
        "registered_at": T0,
    }


def stored(ops: list[Op]) -> dict[str, str]:
    """What the scripts leave in a device hash for these ops, applied in order, when every
    one of them is accepted (the compare-and-set itself runs in Redis: integration tests)."""
    h: dict[str, str] = {}
    for op in ops:
        if op.script == "register":
            h.update(reg=str(op.args[1]), reg_off=str(op.args[0]), registered_at=str(op.args[2]))
        elif op.script == "shadow":
            h.update(shadow=str(op.args[2]), version=str(op.args[0]), shadow_ts=str(op.args[1]))
        elif op.script == "availability":
            h.update(online=str(op.args[2]), avail_off=str(op.args[0]), avail_ts=str(op.args[1]))
    return h


# -- key layout ----------------------------------------------------------------------------
def test_key_layout():
    k = Keys("hs")
    assert k.gen == "hs:gen"
    assert k.genseq == "hs:genseq"
    assert k.building == "hs:building"
    assert k.space(3) == "hs:g3:"
    assert k.device("3", "home-a", "lamp") == "hs:g3:dev:home-a/lamp"
    assert k.home(3, "home-a") == "hs:g3:home:home-a"
    assert k.gone(3, "home-a") == "hs:g3:gone:home-a"
    assert Keys("test-1").device(1, "h", "d") == "test-1:g1:dev:h/d"


@pytest.mark.parametrize("prefix", ["", "a b", "x*", "q?"])
def test_prefix_that_would_break_scan_patterns_is_refused(prefix):
    with pytest.raises(ValueError):
        Keys(prefix)


# -- records -> writes ---------------------------------------------------------------------
def test_registered_becomes_a_register_write_with_the_offset():
    op = op_for(t.DEVICE_REGISTRY, 41, "DeviceRegistered", registered())
    assert op is not None
    assert (op.script, op.home, op.device) == ("register", HOME, "lamp")
    offset, entry, registered_at = op.args
    assert offset == 41 and registered_at == T0
    assert json.loads(str(entry)) == {
        "name": "Lamp",
        "type": "light.dimmer",
        "room": "Living Room",
        "protocol": "zigbee",
        "manufacturer": None,
        "model": None,
        "capabilities": ["ON_OFF", "BRIGHTNESS"],
        "endpoint": None,
        "extra": None,
        "source": "discovery",
        "registered_at": T0,
    }


def test_removed_and_registry_tombstone_become_removals():
    rec = {"event_id": eid(), "home_id": HOME, "ts": T0 + 5, "device_id": "lamp", "source": "hub"}
    assert op_for(t.DEVICE_REGISTRY, 7, "DeviceRemoved", rec) == Op(
        "remove", HOME, "lamp", (7, T0 + 5)
    )
    assert tombstone_op(t.DEVICE_REGISTRY, 8, b"h1/lamp") == Op("remove", HOME, "lamp", (8, 0))
    # a tombstone elsewhere keeps nothing; a malformed registry key is an error
    assert tombstone_op(t.SHADOW_DOCUMENTS, 9, b"h1/lamp") is None
    with pytest.raises(ValueError):
        tombstone_op(t.DEVICE_REGISTRY, 9, b"h1")


def test_availability_becomes_an_offset_guarded_write():
    rec = {"event_id": eid(), "home_id": HOME, "ts": T0, "device_id": "d", "online": False}
    rec["source"] = "silence"
    assert op_for(t.DEVICE_AVAILABILITY, 3, "Availability", rec) == Op(
        "availability", HOME, "d", (3, T0, "0")
    )


def test_records_the_sink_does_not_keep_and_records_it_cannot_use():
    rec = registered()
    assert op_for(t.DEVICE_DISCOVERY, 1, "DeviceRegistered", rec) is None
    assert op_for(t.DEVICE_REGISTRY, 1, "DeviceDiscovered", rec) is None
    with pytest.raises(ValueError):
        op_for(t.DEVICE_REGISTRY, 1, "DeviceRegistered", {**rec, "device_id": ""})
    bad = {"home_id": HOME, "device_id": "d", "version": 2, "ts": T0, "reported": "[1, 2]"}
    with pytest.raises(ValueError):
        op_for(t.SHADOW_DOCUMENTS, 1, "ShadowDocument", bad)
    with pytest.raises(ValueError):
        op_for(t.SHADOW_DOCUMENTS, 1, "ShadowDocument", {**bad, "reported": "{not json"})


def test_shadow_entry_keeps_state_metadata_version_and_timestamp():
    rec = {
        "home_id": HOME,
        "device_id": "lamp",
        "version": 4,
        "timestamp": T0 // 1000,
        "desired": '{"on": true}',
        "reported": '{"on": false}',
        "delta": '{"on": true}',
        "metadata": '{"desired": {"on": {"timestamp": 1}}, "reported": {"on": {"timestamp": 2}}}',
    }
    assert shadow_entry(rec) == {
        "desired": {"on": True},
        "reported": {"on": False},
        "metadata": {"desired": {"on": {"timestamp": 1}}, "reported": {"on": {"timestamp": 2}}},
        "version": 4,
        "timestamp": T0 // 1000,
    }
    empty = shadow_entry({**rec, "desired": None, "reported": "null", "metadata": None})
    assert empty["desired"] == {} and empty["reported"] == {}
    assert empty["metadata"] == {"desired": {}, "reported": {}}


# -- documents from the stream worker's own outputs ----------------------------------------------
def _worker_outputs(events) -> tuple[Any, list[tuple[str, dict[str, Any]]]]:
    """Fold events like the stream worker; its outputs pass through Avro like on Kafka."""
    proc = fold([])
    outs = []
    for name, record in events:
        for e in proc.handle(name, record):
            decoded = CODEC.decode(CODEC.encode(e.record_name, e.record, topic=e.topic))
            outs.append((e.topic, decoded.name, decoded.record))
    return proc, outs


def _ops(outs) -> list[Op]:
    ops = []
    for offset, (topic, name, record) in enumerate(outs):
        op = op_for(topic, offset, name, record)
        if op is not None:
            ops.append(op)
    return ops


def test_documents_from_the_worker_outputs_equal_the_workers_shadow():
    proc, outs = _worker_outputs(
        [
            discovered("motion", ("MOTION_SENSOR", "BATTERY"), "sensor.motion", room="Hallway"),
            report("motion", {"motion": True, "battery": 80}, T0 + 1_000),
            report("motion", {"motion": False, "battery": 15}, T0 + 2_000),
        ]
    )
    h = stored(_ops(outs))
    state = proc.store.get("h1/motion")
    assert state is not None
    s = state["shadow"]
    live = Shadow(s["desired"], s["reported"], s["metadata"], s["version"], s["timestamp"])
    assert shadow_document(h) == live.to_document()
    view = device_view(HOME, "motion", h)
    assert view is not None
    assert view["version"] == 2 == state["shadow"]["version"]
    assert view["battery"] == 15 == state["battery"]
    assert view["online"] is True
    assert view["lastSeen"] == T0 + 2_000 == state["last_seen"]
    assert view["state"] == {"motion": False, "battery": 15}
    assert view["room"] == "Hallway" and view["type"] == "sensor.motion"
    assert view["capabilities"] == ["MOTION_SENSOR", "BATTERY"]


def test_device_view_online_and_last_seen_from_availability():
    h = stored(_ops([(t.DEVICE_REGISTRY, "DeviceRegistered", registered())]))
    view = device_view(HOME, "lamp", h)
    assert view is not None
    # registered, nothing else known yet: online (the worker's rule), seen at registration
    assert view["online"] is True and view["lastSeen"] == T0
    assert view["version"] == 0 and view["state"] == {} and view["battery"] is None
    assert shadow_document(h) is None  # no shadow yet: AWS would answer 404
    h.update(online="0", avail_off="5", avail_ts=str(T0 + 900_000))
    view = device_view(HOME, "lamp", h)
    assert view is not None and view["online"] is False and view["lastSeen"] == T0
    h.update(online="1", avail_off="6", avail_ts=str(T0 + 950_000))
    view = device_view(HOME, "lamp", h)
    assert view is not None and view["online"] is True and view["lastSeen"] == T0 + 950_000


def test_unregistered_hash_is_invisible():
    shadow = json.dumps(
        {"desired": {}, "reported": {"on": True}, "metadata": {}, "version": 3, "timestamp": 1}
    )
    h = {"shadow": shadow, "version": "3", "shadow_ts": str(T0)}
    assert device_view(HOME, "lamp", h) is None
    assert shadow_document(h) is None


def test_extra_json_text_is_parsed_and_battery_must_be_numeric():
    h = stored(_ops([(t.DEVICE_REGISTRY, "DeviceRegistered", registered(extra='{"fw": "1.2"}'))]))
    h["shadow"] = json.dumps(
        {"desired": {}, "reported": {"battery": True}, "metadata": {}, "version": 1, "timestamp": 1}
    )
    view = device_view(HOME, "lamp", h)
    assert view is not None
    assert view["extra"] == {"fw": "1.2"}
    assert view["battery"] is None


def test_text_hash_accepts_bytes():
    assert text_hash({b"reg": b"{}", "version": 3}) == {"reg": "{}", "version": "3"}


def test_snapshot_order_is_room_then_name_rooms_missing_last():
    entries = [
        {"device_id": "d1", "room": None, "name": "Alpha"},
        {"device_id": "d2", "room": "kitchen", "name": "Zed"},
        {"device_id": "d3", "room": "Kitchen", "name": "apple"},
        {"device_id": "d4", "room": "Bedroom", "name": "Lamp"},
        {"device_id": "d5", "room": "Bedroom", "name": None},
    ]
    ordered = [e["device_id"] for e in sorted(entries, key=snapshot_order)]
    assert ordered == ["d5", "d4", "d3", "d2", "d1"]


def test_ready_once_partitions_are_assigned():
    import redis
    from prometheus_client.parser import text_string_to_metric_families

    from runtime.config import Settings
    from sinks.redis_sink import RedisSink

    # The client connects on its first command, which this test never sends.
    sink = RedisSink(Settings(), "redis-1", client=redis.Redis(host="127.0.0.1", port=1))
    assert not sink.metrics.is_ready()
    sink.gauges["partitions"] = 12
    assert sink.metrics.is_ready()
    families = {
        f.name: f for f in text_string_to_metric_families(sink.metrics.exposition().decode())
    }
    [sample] = families["homestream_redis_sink_partitions"].samples
    assert sample.labels == {"sink": "redis-1"} and sample.value == 12
    assert families["homestream_redis_sink_ready"].samples[0].value == 1


def test_registry_entry_defaults():
    rec = registered()
    del rec["registered_at"]
    entry = registry_entry({**rec, "capabilities": None})
    assert entry["capabilities"] == [] and entry["registered_at"] == T0


# -- the gateway's side stores: records -> writes ------------------------------------------
def _status(**over: Any) -> dict[str, Any]:
    return {
        "event_id": eid(),
        "home_id": HOME,
        "ts": T0,
        "command_id": "c1",
        "status": "SENT",
        "reason": None,
        "device_id": "lamp",
        "group_id": None,
        "capability": "ON_OFF",
        "command": "turnOn",
        "request_id": None,
        "parent_command_id": None,
        **over,
    }


def _notification(**over: Any) -> dict[str, Any]:
    return {
        "event_id": eid(),
        "home_id": HOME,
        "ts": T0,
        "kind": "LOW_BATTERY",
        "severity": "WARNING",
        "message": "Lamp is at 5% battery",
        "title": None,
        "device_id": "lamp",
        "automation_id": None,
        "data": '{"battery": 5}',
        **over,
    }


def _fired(**over: Any) -> dict[str, Any]:
    return {
        "event_id": eid(),
        "home_id": HOME,
        "ts": T0,
        "automation_id": "night:lights",
        "run_id": "r1",
        "alias": "Night",
        "trigger": '{"platform": "time"}',
        "status": "COMPLETED",
        "trace": "[]",
        "error": None,
        **over,
    }


def test_command_status_becomes_a_merge_into_its_command_kept_a_day_from_its_time():
    from sinks.redis_sink import side_op_for

    op = side_op_for(t.COMMANDS_STATUS, "CommandStatus", _status())
    assert op is not None and (op.script, op.keys) == ("command_status", ("gw:cmd:c1",))
    view, status_rank, expires_at = op.args
    assert json.loads(str(view)) == command_view(_status())
    assert status_rank == rank("SENT") and expires_at == T0 + COMMAND_TTL_MS
    assert side_op_for(t.COMMANDS_STATUS, "Notification", _notification()) is None
    with pytest.raises(ValueError):
        side_op_for(t.COMMANDS_STATUS, "CommandStatus", _status(command_id=""))
    # the routes' own write: the same key and rule, with their extra fields
    keys, args = status_write({"command_id": "g1", "status": "PENDING", "ts": T0, "children": []})
    assert keys == ("gw:cmd:g1",) and json.loads(args[0])["children"] == []


def test_notifications_and_runs_are_named_by_their_record_ids():
    from sinks.redis_sink import side_op_for

    note = _notification()
    op = side_op_for(t.NOTIFICATIONS, "Notification", note)
    assert op is not None and op.script == "notification"
    assert op.keys == (f"gw:notif-ids:{HOME}", f"gw:notif-views:{HOME}")
    entry_id, ts, view, kept, _ttl = op.args
    assert (entry_id, ts, kept) == (note["event_id"], T0, NOTIFICATIONS_KEPT)
    assert json.loads(str(view)) == notification_view(note)
    assert json.loads(str(view))["data"] == {"battery": 5}
    # the same record again is the same write: a replay adds nothing
    assert side_op_for(t.NOTIFICATIONS, "Notification", note) == op

    run = side_op_for(t.AUTOMATIONS_RUNS, "AutomationFired", _fired())
    assert run is not None and run.script == "automation_run"
    assert run.keys == (f"gw:arun-ids:{HOME}:night:lights", f"gw:arun-views:{HOME}:night:lights")
    assert (run.args[0], run.args[3]) == ("r1", RUNS_KEPT)
    assert json.loads(str(run.args[2])) == automation_run_view(_fired())
    # a later record of the same run is a write of the same entry
    later = side_op_for(t.AUTOMATIONS_RUNS, "AutomationFired", _fired(ts=T0 + 9))
    assert later is not None and later.args[0] == "r1" and later.args[1] == T0 + 9

    for topic, name, bad in (
        (t.NOTIFICATIONS, "Notification", _notification(event_id="")),
        (t.NOTIFICATIONS, "Notification", _notification(home_id="")),
        (t.AUTOMATIONS_RUNS, "AutomationFired", _fired(run_id="")),
        (t.AUTOMATIONS_RUNS, "AutomationFired", _fired(automation_id="")),
    ):
        with pytest.raises(ValueError):
            side_op_for(topic, name, bad)


class _Msg:
    """A consumed message, as much of it as the sink's plan reads."""

    def __init__(self, topic: str, offset: int, value: bytes | None, key: bytes = b"h1"):
        self._topic, self._offset, self._value, self._key = topic, offset, value, key

    def error(self) -> None:
        return None

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset

    def value(self) -> bytes | None:
        return self._value

    def key(self) -> bytes:
        return self._key


def test_plan_sends_each_topic_to_its_store_and_bad_records_to_the_dead_letters():
    from collections import Counter

    from sinks.redis_sink import STATE_TOPICS, TOPICS, SideOp, plan

    msgs = [
        _Msg(t.COMMANDS_STATUS, 1, CODEC.encode("CommandStatus", _status())),
        _Msg(t.NOTIFICATIONS, 2, CODEC.encode("Notification", _notification())),
        _Msg(t.NOTIFICATIONS, 3, b"\x00not avro"),
        _Msg(t.AUTOMATIONS_RUNS, 4, CODEC.encode("AutomationFired", _fired(run_id=""))),
        _Msg(t.DEVICE_REGISTRY, 5, CODEC.encode("DeviceRegistered", registered())),
        _Msg(t.COMMANDS_STATUS, 6, None),  # a tombstone where none is expected: ignored
    ]
    counters: Counter[str] = Counter()
    bad: list[tuple[int, str]] = []
    planned = plan(
        CODEC, msgs, counters, lambda m, exc: bad.append((m.offset(), type(exc).__name__))
    )
    assert [op.script for op in planned.ops] == [
        "command_status",
        "notification",
        "register",
    ]
    assert isinstance(planned.ops[0], SideOp) and isinstance(planned.ops[2], Op)
    assert [offset for offset, _ in bad] == [3, 4]
    assert counters["records"] == 6 and counters["ignored"] == 1
    assert planned.offsets[(t.NOTIFICATIONS, 0)] == 4
    # a rebuild reads the compacted topics only; the live sink reads the side topics too
    assert set(TOPICS) - set(STATE_TOPICS) == {
        t.COMMANDS_STATUS,
        t.NOTIFICATIONS,
        t.AUTOMATIONS_RUNS,
    }
