"""The per-home fold of the stream worker, without Kafka."""

from __future__ import annotations

import copy
import itertools
import uuid
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime.config import ConfigError, Settings
from streams.due import scan_due, ticked_key
from streams.fold.config import ProcessorConfig
from streams.fold.context import TOMBSTONE
from streams.fold.dispatch import Fold
from streams.fold.home import HOME as HOME_PROCESSOR
from streams.fold.store import DictStore
from topics import catalogue as t
from topics.codec import SingleObjectCodec
from topics.schemas import SchemaStore
from topics.state_change import state_of

HOME = "h1"
T0 = 1_700_000_000_000
CODEC = SingleObjectCodec(SchemaStore())


def eid() -> str:
    return str(uuid.uuid4())


def discovered(dev="lamp", caps=("ON_OFF", "BRIGHTNESS"), type_="light.dimmer", ts=T0, **kw):
    return "DeviceDiscovered", {
        "event_id": eid(),
        "home_id": HOME,
        "ts": ts,
        "device_id": dev,
        "name": kw.get("name", dev.title()),
        "type": type_,
        "room": "Living Room",
        "protocol": "zigbee",
        "capabilities": list(caps),
    }


def report(state, dev="lamp", ts=T0):
    return "DeviceReport", {
        "event_id": eid(),
        "home_id": HOME,
        "ts": ts,
        "received_at": ts,
        "device_id": dev,
        "state": state,
        "source": "mqtt",
    }


def command(cmd, params=None, dev="lamp", cap="ON_OFF", ts=T0, cid=None, timeout_ms=5000):
    return "CommandRequested", {
        "event_id": eid(),
        "home_id": HOME,
        "ts": ts,
        "issued_at": ts,
        "command_id": cid or eid(),
        "device_id": dev,
        "capability": cap,
        "command": cmd,
        "parameters": params or {},
        "requested_by": "alice",
        "timeout_ms": timeout_ms,
    }


def ack(cid, status, dev="lamp", ts=T0, error=None):
    return "HubAck", {
        "event_id": eid(),
        "home_id": HOME,
        "ts": ts,
        "device_id": dev,
        "command_id": cid,
        "status": status,
        "error": error,
    }


def tick(ts):
    return "StreamTick", {"event_id": eid(), "home_id": "", "ts": ts, "partition": 0}


@pytest.fixture
def proc():
    return Fold(DictStore(), ProcessorConfig(offline_after_ms=60_000, park_ttl_ms=30_000))


def run(proc, *events):
    out = []
    for name, rec in events:
        out += proc.handle(name, rec)
    return out


def of(out, name):
    return [e.record for e in out if e.record_name == name]


def test_every_output_encodes_with_its_avro_schema_and_topic(proc):
    out = run(
        proc,
        report({"powerState": "ON"}),
        discovered(),
        report({"brightness": 140, "powerState": "OFF"}, ts=T0 + 1),
        command("turnOn", cid="c1", ts=T0 + 2),
        ack("c1", "ACKNOWLEDGED", ts=T0 + 3),
        report({"battery": 5}, ts=T0 + 4),
        tick(T0 + 10_000_000),
    )
    assert {e.record_name for e in out} >= {
        "DeviceRegistered",
        "StateChange",
        "ShadowDocument",
        "DeadLetter",
        "CommandStatus",
        "CommandDispatched",
        "Availability",
        "Notification",
    }
    for e in out:
        assert e.record_name in t.topic(e.topic).value_schemas
        assert CODEC.decode(CODEC.encode(e.record_name, e.record)).record["event_id"]


def test_report_before_discovery_is_parked_then_applied(proc):
    assert run(proc, report({"powerState": "ON"})) == []
    out = run(proc, discovered())
    assert [e.record_name for e in out][:1] == ["DeviceRegistered"]
    (change,) = of(out, "StateChange")
    assert change["version"] == 1
    assert state_of(change).changed == {"powerState": "ON"}
    assert proc.counters["parked"] == 1 and proc.counters["unparked"] == 1


def test_a_state_change_is_stamped_with_the_hub_time_of_its_report(proc):
    run(proc, discovered())
    late = report({"powerState": "ON"}, ts=T0 + 60_000)
    late[1]["ts"] = T0  # measured offline, received a minute later (an outbox replay)
    (change,) = of(run(proc, late), "StateChange")
    assert (change["ts"], change["accepted_at"]) == (T0, T0 + 60_000)
    (cmd,) = of(run(proc, command("turnOff", ts=T0 + 70_000)), "StateChange")
    assert cmd["ts"] == cmd["accepted_at"] == T0 + 70_000  # no hub time: acceptance


def test_no_op_and_deadband_reports_emit_nothing(proc):
    run(proc, discovered("t", ("TEMPERATURE_SENSOR",), "sensor.temperature"))
    first = run(proc, report({"temperature": 21.0}, dev="t"))
    assert of(first, "StateChange")[0]["version"] == 1
    assert run(proc, report({"temperature": 21.0}, dev="t", ts=T0 + 1)) == []
    assert run(proc, report({"temperature": 21.3}, dev="t", ts=T0 + 2)) == []  # inside 0.5
    out = run(proc, report({"temperature": 21.6}, dev="t", ts=T0 + 3))
    assert of(out, "StateChange")[0]["version"] == 2
    # what it was before this version (the last accepted value, not the deadbanded ones)
    assert state_of(of(first, "StateChange")[0]).previous == {"temperature": None}
    assert state_of(of(out, "StateChange")[0]).previous == {"temperature": 21.0}
    assert proc.counters["noop"] == 2


def test_invalid_attributes_are_dead_lettered_and_valid_ones_applied(proc):
    run(proc, discovered())
    out = run(proc, report({"brightness": 140, "powerState": "ON", "foo": 1}))
    (dl,) = of(out, "DeadLetter")
    assert dl["reason"] in ("OUT_OF_RANGE", "UNKNOWN_ATTRIBUTE")
    assert "brightness 140" in dl["message"] and "foo" in dl["message"]
    assert b'"brightness": 140' in dl["original"]
    assert state_of(of(out, "StateChange")[0]).changed == {"powerState": "ON"}


def test_command_lifecycle_completes_when_the_report_matches(proc):
    run(proc, discovered(), report({"powerState": "OFF", "brightness": 10}))
    out = run(proc, command("setBrightness", {"brightness": 60}, cap="BRIGHTNESS", cid="c1"))
    assert [s["status"] for s in of(out, "CommandStatus")] == ["PENDING", "SENT"]
    (dispatch,) = of(out, "CommandDispatched")
    assert dispatch["desired"] == {"brightness": 60}
    (desired_change,) = of(out, "StateChange")
    assert state_of(desired_change).desired_changed == {"brightness": 60}
    assert state_of(desired_change).delta == {"brightness": 60}
    out = run(proc, ack("c1", "ACKNOWLEDGED"))
    assert [s["status"] for s in of(out, "CommandStatus")] == ["ACKNOWLEDGED"]
    out = run(proc, report({"brightness": 60}, ts=T0 + 50))
    assert [s["status"] for s in of(out, "CommandStatus")] == ["COMPLETED"]
    assert state_of(of(out, "StateChange")[0]).delta == {}
    # A late ack and a later tick change nothing.
    assert run(proc, ack("c1", "COMPLETED"), tick(T0 + 60_000)) == []


def test_a_report_read_before_the_ack_completes_and_the_ack_is_late(proc):
    # Acks and reports arrive on different topics: the worker may read the report first.
    run(proc, discovered(), report({"powerState": "OFF", "brightness": 10}))
    run(proc, command("setBrightness", {"brightness": 60}, cap="BRIGHTNESS", cid="c2"))
    out = run(proc, report({"brightness": 60}, ts=T0 + 50))
    assert [s["status"] for s in of(out, "CommandStatus")] == ["COMPLETED"]
    assert run(proc, ack("c2", "ACKNOWLEDGED")) == []


def test_hub_ack_completed_and_failed(proc):
    run(proc, discovered())
    run(proc, command("turnOn", cid="ok"), command("turnOff", cid="bad"))
    out = run(proc, ack("ok", "COMPLETED"), ack("bad", "FAILED", error="zigbee timeout"))
    statuses = [(s["command_id"], s["status"], s["reason"]) for s in of(out, "CommandStatus")]
    assert statuses == [("ok", "COMPLETED", None), ("bad", "FAILED", "zigbee timeout")]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("turnOn", None, "ghost"), "does not exist"),
        (("setBrightness", {"brightness": 500}, "lamp", "BRIGHTNESS"), "100"),
        (("setColor", {"hue": 1, "saturation": 1}, "lamp", "COLOR_CONTROL"), "COLOR_CONTROL"),
        (("warm", None, "lamp", "ON_OFF"), "warm"),
    ],
)
def test_invalid_commands_fail_with_a_reason(proc, args, words):
    run(proc, discovered())
    out = run(proc, command(*args))
    (status,) = of(out, "CommandStatus")
    assert status["status"] == "FAILED" and words in status["reason"]
    assert of(out, "CommandDispatched") == []


def test_command_times_out_on_the_first_tick_past_its_deadline(proc):
    run(proc, discovered(), command("turnOn", cid="c1", timeout_ms=5000))
    assert of(run(proc, tick(T0 + 4_999)), "CommandStatus") == []
    out = run(proc, tick(T0 + 5_000))
    (status,) = of(out, "CommandStatus")
    assert (status["status"], status["reason"]) == ("TIMEOUT", "no completion within 5000 ms")
    assert run(proc, ack("c1", "COMPLETED"), tick(T0 + 9_000)) == []


def test_a_share_of_a_group_or_scene_names_its_parent_in_every_status():
    proc = Fold(DictStore(), processors=(HOME_PROCESSOR,))
    run(proc, discovered())
    name, rec = command("turnOn", cid="c1")
    out = run(proc, (name, {**rec, "group_id": "all", "parent_command_id": "p1"}))
    assert {(s["group_id"], s["parent_command_id"]) for s in of(out, "CommandStatus")} == {
        ("all", "p1")
    }
    out = run(proc, ack("c1", "COMPLETED"))
    assert of(out, "CommandStatus")[0]["parent_command_id"] == "p1"
    # A whole group's command is not the home processor's: the scenes processor expands it.
    name, rec = command("turnOn", dev=None, cid="g1")
    assert run(proc, (name, {**rec, "group_id": "all"})) == []


def test_replayed_command_request_is_not_executed_twice(proc):
    run(proc, discovered())
    name, rec = command("turnOn", cid="c1")
    run(proc, (name, rec))
    assert run(proc, (name, copy.deepcopy(rec))) == []


def test_silence_makes_a_device_offline_and_a_report_brings_it_back(proc):
    run(proc, discovered(), report({"powerState": "ON"}))
    out = run(proc, tick(T0 + 60_000))
    assert [a["online"] for a in of(out, "Availability")] == [False]
    (note,) = of(out, "Notification")
    assert note["kind"] == "DEVICE_OFFLINE" and note["device_id"] == "lamp"
    assert run(proc, tick(T0 + 120_000)) == []  # told once
    out = run(proc, report({"powerState": "ON"}, ts=T0 + 130_000))
    assert [a["online"] for a in of(out, "Availability")] == [True]


def test_availability_messages_and_low_battery_notice_once(proc):
    run(proc, discovered("s", ("MOTION_SENSOR", "BATTERY"), "sensor.motion"))
    out = run(proc, report({"battery": 15, "motion": False}, dev="s"))
    assert [n["kind"] for n in of(out, "Notification")] == ["LOW_BATTERY"]
    assert of(run(proc, report({"battery": 12}, dev="s", ts=T0 + 1)), "Notification") == []
    run(proc, report({"battery": 90}, dev="s", ts=T0 + 2))
    out = run(proc, report({"battery": 10}, dev="s", ts=T0 + 3))
    assert [n["kind"] for n in of(out, "Notification")] == ["LOW_BATTERY"]
    _name, rec = report({}, dev="s")
    off = {**rec, "online": False}
    out = proc.handle("Availability", off)
    assert [a["online"] for a in of(out, "Availability")] == [False]
    assert of(out, "Notification")[0]["kind"] == "DEVICE_OFFLINE"


def test_parked_reports_expire_and_overflow_to_the_dead_letter_topic():
    proc = Fold(
        DictStore(), ProcessorConfig(park_max_per_home=2, park_ttl_ms=1000, scan_interval_ms=1000)
    )
    out = run(proc, *(report({"powerState": "ON"}, dev=f"d{i}", ts=T0 + i) for i in range(3)))
    (dl,) = of(out, "DeadLetter")
    assert dl["reason"] == "UNKNOWN_DEVICE" and dl["device_id"] == "d0"
    assert "parking space" in dl["message"]
    out = run(proc, tick(T0 + 1_001))
    assert sorted(d["device_id"] for d in of(out, "DeadLetter")) == ["d1"]
    out = run(proc, tick(T0 + 10_000))
    assert sorted(d["device_id"] for d in of(out, "DeadLetter")) == ["d2"]


def test_bad_descriptor_is_dead_lettered(proc):
    name, rec = discovered(caps=("ON_OFF", "WARP_DRIVE"))
    out = proc.handle(name, rec)
    assert [d["reason"] for d in of(out, "DeadLetter")] == ["SCHEMA_VIOLATION"]
    assert "WARP_DRIVE" in of(out, "DeadLetter")[0]["message"]


def test_removal_forgets_the_device(proc):
    run(proc, discovered(), report({"powerState": "ON"}))
    _name, rec = discovered()
    out = proc.handle("DeviceRemoved", {**rec, "source": "hub"})
    assert [(e.topic, e.record_name) for e in out] == [
        (t.DEVICE_REGISTRY, "DeviceRemoved"),
        (t.DEVICE_REGISTRY, TOMBSTONE),  # then compaction forgets the key
    ]
    assert out[0].key == out[1].key
    assert run(proc, report({"powerState": "OFF"})) == []  # parked again: unknown now


def test_the_fold_is_deterministic():
    events = [
        report({"powerState": "ON"}),
        discovered(),
        report({"brightness": 30}, ts=T0 + 1),
        command("setBrightness", {"brightness": 70}, cap="BRIGHTNESS", cid="c1", ts=T0 + 2),
        report({"brightness": 70}, ts=T0 + 3),
        tick(T0 + 100_000_000),
    ]
    a, b = Fold(DictStore()), Fold(DictStore())
    out_a, out_b = run(a, *copy.deepcopy(events)), run(b, *copy.deepcopy(events))
    assert out_a == out_b
    assert a.store.data == b.store.data
    assert len({e.record["event_id"] for e in out_a}) == len(out_a)


def test_config_from_the_settings():
    settings = Settings.from_env(
        {
            "HOMESTREAM_PARK_TTL_S": "60",
            "HOMESTREAM_OFFLINE_AFTER_S": "120",
            "HOMESTREAM_COMMAND_TIMEOUT_MS": "2500",
            "UNRELATED": "x",
        }
    )
    cfg = ProcessorConfig.from_settings(settings)
    assert (cfg.park_ttl_ms, cfg.offline_after_ms, cfg.default_timeout_ms) == (
        60_000,
        120_000,
        2_500,
    )
    # One default per variable: the fold's own defaults are the settings'.
    assert ProcessorConfig.from_settings(Settings.from_env({})) == ProcessorConfig()
    with pytest.raises(ConfigError, match="HOMESTREAM_PARK_TTL_S"):
        Settings.from_env({"HOMESTREAM_PARK_TTL_S": "soon"})
    with pytest.raises(ConfigError, match="out of range"):
        Settings.from_env({"HOMESTREAM_LOW_BATTERY": "0"})


def test_silence_and_parking_scans_run_at_most_once_per_interval():
    interval = 30_000
    proc = Fold(DictStore(), ProcessorConfig(offline_after_ms=10_000))
    assert proc.config.scan_interval_ms == interval
    # The home's scan slots start where (t + its phase) is a multiple of the interval.
    phase = zlib.crc32(HOME.encode()) % interval
    start = T0 + interval - (T0 + phase) % interval
    run(proc, discovered(), report({"powerState": "ON"}, ts=start - 1_000))
    assert of(run(proc, tick(start)), "Availability") == []  # scanned: not silent yet
    # Silent long enough at the slot's last millisecond, but scanned in this slot already.
    assert of(run(proc, tick(start + interval - 1)), "Availability") == []
    out = run(proc, tick(start + interval))  # the next slot: scanned again
    assert [a["online"] for a in of(out, "Availability")] == [False]


@given(
    home=st.text(min_size=1, max_size=12),
    start=st.integers(min_value=1, max_value=10**13),  # 0 is "no tick yet"
    interval=st.integers(min_value=1_000, max_value=120_000),
)
def test_health_scans_once_per_interval_spread_by_home(home, start, interval):
    """Ticks every second: the first tick scans every home; after that a home is scanned
    exactly once in each of its slots, so scans are one interval apart, give or take a tick."""
    last_tick, scans = 0, []
    for now in range(start, start + 4 * interval, 1_000):
        if scan_due(home, last_tick, now, interval):
            scans.append(now)
        last_tick = now
    gaps = [b - a for a, b in itertools.pairwise(scans)]
    assert scans[0] == start and len(scans) >= 4
    assert all(interval - 1_000 < g < interval + 1_000 for g in gaps[1:])  # [0]: a part slot


def test_a_tick_writes_one_record_however_many_homes_it_scans():
    """The scan time is the partition's, not each home's: a scan writes no home record."""
    store = DictStore()
    proc = Fold(store, ProcessorConfig(offline_after_ms=60_000))
    for i in range(20):
        proc.handle(*discovered(dev=f"d{i}"))
        proc.handle("DeviceDiscovered", {**discovered()[1], "home_id": f"home-{i}"})
    before = copy.deepcopy(store.data)
    out = run(proc, tick(T0 + 1_000))  # the first tick scans every home: nobody silent yet
    assert out == []
    changed = {k for k in store.data if store.data[k] != before.get(k)}
    assert changed == {ticked_key(0)} and store.data[ticked_key(0)] == {"at": T0 + 1_000}
    run(proc, tick(T0 + 500))  # a late tick from another worker does not move time back
    assert store.data[ticked_key(0)] == {"at": T0 + 1_000}


def test_health_scans_of_different_homes_spread_over_the_interval():
    phases = {zlib.crc32(f"home-{i}".encode()) % 30_000 // 1_000 for i in range(300)}
    assert len(phases) >= 25  # of 30 one-second slots: not all in one tick


def test_own_availability_read_back_from_the_topic_changes_nothing(proc):
    """The worker writes derived availability to a topic it also reads: an old
    "offline" and a newer "online" of one device must not bounce back and forth."""
    run(proc, discovered(), report({"powerState": "ON"}))
    derived = of(run(proc, tick(T0 + 60_000)), "Availability")  # silence: offline
    derived += of(run(proc, report({"powerState": "ON"}, ts=T0 + 61_000)), "Availability")
    assert [(a["online"], a["source"]) for a in derived] == [(False, "silence"), (True, "report")]
    before = copy.deepcopy(proc.store.data)
    for rec in derived + derived[::-1]:  # read back, in either order, more than once
        assert proc.handle("Availability", {**rec, "home_id": HOME}) == []
    assert proc.store.data == before
    # The hub's own word still counts.
    out = proc.handle("Availability", {**derived[0], "home_id": HOME, "source": "mqtt"})
    assert [a["online"] for a in of(out, "Availability")] == [False]
