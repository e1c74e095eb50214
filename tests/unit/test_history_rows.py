"""History sink: events -> staging rows (pure), without Kafka or PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import math
import uuid

import pytest

from sinks.history import TOPICS
from sinks.history_rows import (
    DAY_MS,
    FUTURE_TOLERANCE_MS,
    RETENTION_DAYS,
    STAGES,
    TIMED_STAGES,
    event_time,
    json_text,
    partition_days,
    rows_for,
    state_rows,
    value_columns,
)
from topics.catalogue import CATALOGUE
from topics.codec import SingleObjectCodec
from topics.schemas import SchemaStore
from topics.state_change import encode_state

TS = 1_780_000_000_000
EID = "6c1c2b1e-5b7a-4f0b-9a63-0d7c1f6a3e21"


def change(**over):
    rec = {
        "event_id": EID,
        "home_id": "home-1",
        "ts": TS,
        "device_id": "thermo-1",
        "version": 7,
        "changed": {"temperature": 21.5},
        "reported": {"temperature": 21.5, "mode": "heat"},
        "desired": {},
        "desired_changed": {},
        "delta": {},
        "source": "report",
        "client_token": None,
        "command_id": None,
        "accepted_at": TS + 40,
        "state_json": None,
    }
    rec.update(over)
    return rec


def test_one_row_per_changed_attribute_with_the_event_time_and_version():
    rows = state_rows(change(changed={"temperature": 21.5, "mode": "heat"}))
    assert [r[0] for r in rows] == ["stage_state", "stage_state"]
    by_attr = {r[1][4]: r[1] for r in rows}
    t = by_attr["temperature"]
    cols = dict(zip(STAGES["stage_state"], t, strict=True))
    assert cols == {
        "time_ms": TS,
        "home_id": "home-1",
        "device_id": "thermo-1",
        "kind": "reported",
        "attribute": "temperature",
        "value": "21.5",
        "value_num": 21.5,
        "value_text": None,
        "version": 7,
        "source": "report",
        "command_id": None,
        "accepted_ms": TS + 40,
        "event_id": EID,
        "clamped_ms": None,
    }
    m = dict(zip(STAGES["stage_state"], by_attr["mode"], strict=True))
    assert (m["value"], m["value_num"], m["value_text"]) == ('"heat"', None, "heat")


def test_the_hub_time_is_the_event_time_within_the_bounds():
    received = TS
    for ts in (TS - 3 * 3_600_000, TS - RETENTION_DAYS * DAY_MS, TS + FUTURE_TOLERANCE_MS):
        assert event_time(ts, received) == (ts, None)


@pytest.mark.parametrize(
    "ts",
    [TS + FUTURE_TOLERANCE_MS + 1, TS + 365 * DAY_MS, TS - RETENTION_DAYS * DAY_MS - 1, 0],
)
def test_a_hub_time_out_of_bounds_is_clamped_to_the_receive_time_and_kept(ts):
    assert event_time(ts, TS) == (TS, ts)


def test_state_rows_stamp_the_hub_time_and_flag_a_clamped_one():
    late = state_rows(change(ts=TS - 600_000, accepted_at=TS))
    cols = dict(zip(STAGES["stage_state"], late[0][1], strict=True))
    assert (cols["time_ms"], cols["accepted_ms"], cols["clamped_ms"]) == (TS - 600_000, TS, None)
    ahead = state_rows(change(ts=TS + 86_400_000, accepted_at=TS))
    cols = dict(zip(STAGES["stage_state"], ahead[0][1], strict=True))
    assert (cols["time_ms"], cols["clamped_ms"]) == (TS, TS + 86_400_000)
    # Clamped against the receive time, not the clock: a replay years later agrees.
    assert state_rows(change(ts=TS + 86_400_000, accepted_at=TS)) == ahead


def test_rows_are_deterministic_so_a_replay_hits_the_same_keys():
    rec = change(changed={"a": 1, "b": "x", "c": None})
    assert state_rows(rec) == state_rows(json.loads(json.dumps(rec)))


def test_desired_changes_become_desired_rows_with_the_command():
    rows = state_rows(
        change(changed={}, desired_changed={"powerState": "ON"}, source="command", command_id="c1")
    )
    assert len(rows) == 1
    cols = dict(zip(STAGES["stage_state"], rows[0][1], strict=True))
    assert cols["kind"] == "desired"
    assert cols["attribute"] == "powerState"
    assert cols["value_text"] == "ON"
    assert cols["source"] == "command"
    assert cols["command_id"] == "c1"


def test_state_json_is_authoritative_for_deep_shadows():
    doc = {"changed": {"schedule": [{"at": "07:00", "t": 21}]}, "desired_changed": {}}
    rows = state_rows(change(changed={}, state_json=json.dumps(doc)))
    assert len(rows) == 1
    cols = dict(zip(STAGES["stage_state"], rows[0][1], strict=True))
    assert cols["attribute"] == "schedule"
    assert json.loads(cols["value"]) == [{"at": "07:00", "t": 21}]
    assert cols["value_num"] is None


def test_a_change_that_changes_nothing_gives_no_rows():
    assert state_rows(change(changed={}, desired_changed={})) == []


@pytest.mark.parametrize(
    "value, expected",
    [
        (None, ("null", None, None)),
        (True, ("true", 1.0, None)),
        (False, ("false", 0.0, None)),
        (3, ("3", 3.0, None)),
        (2.5, ("2.5", 2.5, None)),
        ("ON", ('"ON"', None, "ON")),
        ({"hue": 120, "saturation": 50}, ('{"hue":120,"saturation":50}', None, None)),
    ],
)
def test_value_columns(value, expected):
    assert value_columns(value) == expected


def test_values_postgres_cannot_store_are_made_safe():
    # NaN is not JSON and jsonb / text cannot hold NUL: neither may block the sink.
    value, num, text = value_columns(math.nan)
    assert (json.loads(value), num, text) == ("nan", None, "nan")
    value, num, text = value_columns("a\x00b")
    assert "\x00" not in value and text == "a\ufffdb"
    value, _, _ = value_columns({"x": math.inf, "y": "\x00"})
    assert json.loads(value) == {"x": "inf", "y": "\ufffd"}
    rows = state_rows(change(changed={"t\x00": 1}, device_id="d\x00"))
    assert "\x00" not in repr(rows)


def test_json_text_keeps_valid_json_and_quotes_the_rest():
    assert json_text(None) is None
    assert json_text('{"a": 1}') == '{"a": 1}'
    assert json.loads(json_text("{not json")) == "{not json"
    assert json.loads(json_text('{"a": "\\u0000"}')) == {"a": "\ufffd"}


def test_device_event_command_status_notification_availability_rows():
    ev = rows_for(
        "DeviceEvent",
        {
            "event_id": EID,
            "home_id": "h",
            "ts": TS,
            "device_id": "door",
            "event": "ring",
            "data": '{"x": 1}',
            "received_at": TS + 5,
            "source": "mqtt",
        },
    )
    assert ev == [
        ("stage_events", (TS, EID, "h", "door", "ring", '{"x": 1}', TS + 5, "mqtt", None))
    ]
    cs = rows_for(
        "CommandStatus",
        {
            "event_id": EID,
            "home_id": "h",
            "ts": TS,
            "command_id": "c1",
            "status": "FAILED",
            "reason": "jammed",
            "device_id": "lock",
        },
    )
    cols = dict(zip(STAGES["stage_commands"], cs[0][1], strict=True))
    assert cols["status"] == "FAILED" and cols["reason"] == "jammed" and cols["group_id"] is None
    nt = rows_for(
        "Notification",
        {
            "event_id": EID,
            "home_id": "h",
            "ts": TS,
            "kind": "SECURITY",
            "severity": "CRITICAL",
            "message": "Person at the door",
        },
    )
    cols = dict(zip(STAGES["stage_notifications"], nt[0][1], strict=True))
    assert cols["kind"] == "SECURITY" and cols["data"] is None
    av = rows_for(
        "Availability",
        {"event_id": EID, "home_id": "h", "ts": TS, "device_id": "d", "online": False},
    )
    assert av == [("stage_availability", (TS, EID, "h", "d", False, "mqtt"))]


def test_registry_rows_and_removals():
    reg = rows_for(
        "DeviceRegistered",
        {
            "event_id": EID,
            "home_id": "h",
            "ts": TS,
            "device_id": "lamp",
            "name": "Lamp",
            "type": "light.dimmer",
            "room": "Office",
            "capabilities": ["ON_OFF", "BRIGHTNESS"],
            "registered_at": TS - 1000,
        },
        seq=42,
    )
    cols = dict(zip(STAGES["stage_devices"], reg[0][1], strict=True))
    assert cols["seq"] == 42 and cols["removed"] is False and cols["room"] == "Office"
    assert cols["capabilities"] == ["ON_OFF", "BRIGHTNESS"]
    rem = rows_for(
        "DeviceRemoved", {"event_id": EID, "home_id": "h", "ts": TS, "device_id": "lamp"}, 43
    )
    cols = dict(zip(STAGES["stage_devices"], rem[0][1], strict=True))
    assert cols["removed"] is True and cols["name"] is None


def test_tombstones_and_other_records_are_ignored():
    assert rows_for("DeviceRegistered", None) == []
    assert rows_for("StreamTick", {"event_id": EID}) == []


def test_every_staging_row_has_its_stage_width():
    samples = [
        ("StateChange", change(changed={"a": 1}, desired_changed={"b": 2})),
        (
            "Availability",
            {"event_id": EID, "home_id": "h", "ts": TS, "device_id": "d", "online": True},
        ),
        ("DeviceRemoved", {"event_id": EID, "home_id": "h", "ts": TS, "device_id": "d"}),
    ]
    for name, rec in samples:
        for stage, row in rows_for(name, rec):
            assert len(row) == len(STAGES[stage]), (name, stage)


def test_partition_days_are_the_event_days_in_the_window():
    today = dt.date(2026, 6, 1)
    day_ms = 86_400_000
    base = int(dt.datetime(2026, 6, 1, tzinfo=dt.UTC).timestamp() * 1000)
    rows = [
        ("stage_state", (base + 5,)),
        ("stage_events", (base - day_ms + 1,)),
        ("stage_commands", (base + 30 * 365 * day_ms,)),  # a clock far off: DEFAULT partition
        ("stage_devices", (1, base)),  # not time-partitioned
    ]
    assert partition_days(rows, today) == {dt.date(2026, 6, 1), dt.date(2026, 5, 31)}
    assert set(TIMED_STAGES) < set(STAGES)


def test_the_sink_reads_catalogue_topics_and_real_avro_records_build_rows():
    assert all(t in CATALOGUE for t in TOPICS)
    codec = SingleObjectCodec(SchemaStore())
    rec = change(changed={"temperature": 20.25, "color": {"hue": 10, "saturation": 5}})
    decoded = codec.decode(codec.encode("StateChange", rec))
    rows = rows_for(decoded.name, decoded.record)
    assert {r[1][4] for r in rows} == {"temperature", "color"}
    assert str(uuid.UUID(rows[0][1][12])) == EID


def test_version_2_state_gives_the_rows_version_1_gave():
    text = encode_state(
        changed={"temperature": 21.5},
        reported={"temperature": 21.5},
        desired={"mode": "heat"},
        desired_changed={"mode": "heat"},
        delta={"mode": "heat"},
    )
    empty = {k: {} for k in ("changed", "reported", "desired", "desired_changed", "delta")}
    v2 = state_rows(change(**empty, state=text))
    v1 = state_rows(change(desired={"mode": "heat"}, desired_changed={"mode": "heat"}))
    assert v2 == v1 and {r[1][3] for r in v2} == {"reported", "desired"}
