"""Records -> WebSocket frames (gateway.frames): one table entry per record type."""

from __future__ import annotations

import json

import pytest

from gateway.frames import FRAMES, to_events
from stores.event_views import automation_run_view, command_view, notification_view
from topics.state_change import encode_state


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


# The frames' fields in order (CONTRACT.md section 5): the JSON text keeps this order.
FRAME_KEYS = {
    "device.state": [
        "type", "home_id", "device_id", "version", "ts", "source", "command_id",
        "changed", "reported", "delta",
    ],
    "device.desired": [
        "type", "home_id", "device_id", "version", "ts", "source", "command_id",
        "changed", "desired", "delta",
    ],
    "device.online": ["type", "home_id", "device_id", "online", "ts"],
    "device.added": ["type", "home_id", "device_id", "ts", "device"],
    "device.removed": ["type", "home_id", "device_id", "ts", "removed_by"],
    "command.status": [
        "type", "command_id", "home_id", "device_id", "group_id", "capability", "command",
        "status", "reason", "request_id", "parent_command_id", "ts",
    ],
    "notification": [
        "type", "event_id", "home_id", "ts", "kind", "severity", "title", "message",
        "device_id", "automation_id", "data",
    ],
    "scene.status": [
        "type", "home_id", "scene_id", "run_id", "status", "actions_succeeded",
        "actions_failed", "execution_time_ms", "request_id", "error", "ts",
        "actions_skipped", "command_ids", "errors",
    ],
    "automation.run": [
        "type", "home_id", "run_id", "automation_id", "alias", "status", "ts", "trigger",
        "trace", "error",
    ],
}  # fmt: skip


def test_every_frame_carries_its_fields_in_order():
    both = _state_change(desired_changed={"brightness": 1})
    records = {
        "StateChange": both,
        "Availability": {"home_id": "h1", "device_id": "d", "online": 1},
        "DeviceRegistered": {"home_id": "h1", "device_id": "d", "capabilities": ["onOff"]},
        "DeviceRemoved": {"home_id": "h1", "device_id": "d"},
        "CommandStatus": {"home_id": "h1", "command_id": "c"},
        "Notification": {"home_id": "h1"},
        "SceneRun": {"home_id": "h1"},
        "AutomationFired": {"home_id": "h1"},
    }
    assert set(records) == set(FRAMES)
    seen = []
    for name, rec in records.items():
        for ev in to_events(name, rec):
            assert list(ev.frame) == FRAME_KEYS[ev.type], ev.type
            assert list(json.loads(ev.text)) == FRAME_KEYS[ev.type]
            assert ev.frame["type"] == ev.type and ev.home_id == "h1"
            seen.append(ev.type)
    assert seen == list(FRAME_KEYS)  # one frame per type, state before desired


def test_state_change_frames_depend_on_what_changed():
    types = [e.type for e in to_events("StateChange", _state_change(changed={}))]
    assert types == ["device.state"]  # nothing changed: still the state
    rec = _state_change(desired_changed={"brightness": 1})
    assert [e.type for e in to_events("StateChange", rec)] == ["device.state", "device.desired"]


def test_computed_fields():
    (online,) = to_events("Availability", {"home_id": "h1", "online": 1})
    assert online.frame["online"] is True
    (added,) = to_events(
        "DeviceRegistered",
        {"home_id": "h1", "device_id": "d", "name": "Lamp", "capabilities": None, "extra": "x"},
    )
    device = added.frame["device"]
    assert device["device_id"] == "d" and device["name"] == "Lamp"
    assert device["capabilities"] == [] and "extra" not in device
    (n,) = to_events("Notification", {"home_id": "h1", "data": "not json"})
    assert n.frame["data"] == "not json"  # kept as it is
    (run,) = to_events("AutomationFired", {"home_id": "h1", "trigger": '{"at": 1}', "trace": ""})
    assert run.frame["trigger"] == {"at": 1} and run.frame["trace"] == ""


def test_views_are_the_frames_without_type():
    rec = {"home_id": "h1", "command_id": "c", "status": "SENT", "event_id": "e", "x": 1}
    (st,) = to_events("CommandStatus", rec)
    assert {"type": "command.status", **command_view(rec)} == st.frame
    note = {"home_id": "h1", "kind": "K", "data": '{"a": 1}'}
    (n,) = to_events("Notification", note)
    assert {"type": "notification", **notification_view(note)} == n.frame
    fired = {"home_id": "h1", "automation_id": "a", "run_id": "r"}
    (run,) = to_events("AutomationFired", fired)
    assert {"type": "automation.run", "home_id": "h1", **automation_run_view(fired)} == run.frame


def test_version_2_state_reads_like_version_1():
    """A v2 record (state as one JSON text, maps empty) gives the frames a v1 record gave."""
    state = encode_state(
        changed={"brightness": 40},
        reported={"brightness": 40, "powerState": "ON", "scenes": [{"n": 1}]},
        desired={"brightness": 60},
        desired_changed={"brightness": 60},
        delta={"brightness": 60},
    )
    empty = {k: {} for k in ("changed", "reported", "desired", "desired_changed", "delta")}
    state_ev, desired_ev = to_events("StateChange", _state_change(**empty, state=state))
    assert state_ev.frame["changed"] == {"brightness": 40}
    assert state_ev.frame["reported"]["scenes"] == [{"n": 1}]
    assert desired_ev.type == "device.desired" and desired_ev.frame["changed"] == {"brightness": 60}
    assert desired_ev.frame["delta"] == {"brightness": 60}


def test_unreadable_state_raises_a_value_error_the_feed_skips():
    with pytest.raises(ValueError, match="not a JSON object"):
        to_events("StateChange", _state_change(state="[1]"))
