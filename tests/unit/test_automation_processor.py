"""The automation engine as a processor of the fold: configuration from homes.config,
triggers from the home processor's StateChanges (chained), device events, hub status and
ticks; commands, notifications and run reports out; timers that survive a restore."""

from __future__ import annotations

import copy
import datetime as dt
import json
from typing import Any

from streams.fold.automations import docs_key, state_key
from streams.fold.config import ProcessorConfig
from streams.fold.dispatch import Fold
from streams.fold.store import DictStore
from tests.unit.test_processor import CODEC, HOME, T0, discovered, eid, report, tick
from topics import catalogue as t

MOTION_LIGHT = {
    "alias": "Hall light on motion",
    "mode": "restart",
    "triggers": [{"trigger": "state", "device_id": "pir", "attribute": "motion", "to": True}],
    "actions": [
        {"device_id": "hall", "capability": "ON_OFF", "command": "turnOn"},
        {"wait_for_trigger": [{"trigger": "state", "device_id": "pir", "attribute": "motion",
                               "to": False, "for": "00:02:00"}]},
        {"device_id": "hall", "capability": "ON_OFF", "command": "turnOff"},
    ],
}  # fmt: skip


def config(kind: str, doc_id: str, document: dict[str, Any] | None, ts: int = T0):
    return "HomeConfig", {
        "event_id": eid(),
        "home_id": HOME,
        "ts": ts,
        "kind": kind,
        "doc_id": doc_id,
        "document": None if document is None else json.dumps(document),
        "by": "alice",
    }


def new_fold(data: dict[str, Any] | None = None) -> Fold:
    return Fold(DictStore(data if data is not None else {}), ProcessorConfig())


def home(fold: Fold, *docs: tuple[str, dict[str, Any]]) -> list[Any]:
    out = []
    for name, rec in (
        discovered("pir", ("MOTION_SENSOR", "BATTERY"), "sensor.motion"),
        discovered("hall", ("ON_OFF",), "switch.plug"),
        report({"motion": False, "battery": 90}, dev="pir"),
        report({"powerState": "OFF"}, dev="hall"),
        *(config("automation", aid, doc) for aid, doc in docs),
    ):
        out += fold.handle(name, rec)
    return out


def commands(out: list[Any]) -> list[str]:
    return [e.record["command"] for e in out if e.record_name == "CommandRequested"] + [
        e.record["command"] for e in out if e.record_name == "CommandDispatched"
    ]


def named(out: list[Any], name: str) -> list[dict[str, Any]]:
    return [e.record for e in out if e.record_name == name]


def motion(fold: Fold, value: bool, ts: int) -> list[Any]:
    return fold.handle(*report({"motion": value}, dev="pir", ts=ts))


def test_motion_turns_the_light_on_and_off_two_minutes_after_it_stops():
    fold = new_fold()
    home(fold, ("hall-light", MOTION_LIGHT))
    on = motion(fold, True, T0 + 1_000)
    # In the transaction of the motion report: the StateChange, the automation's command
    # (dispatched to the hub) and the run's STARTED report.
    assert "turnOn" in commands(on)
    # It started, then reported its trace so far as it began to wait.
    started, waiting = named(on, "AutomationFired")
    assert started["status"] == "STARTED" and started["automation_id"] == "hall-light"
    assert waiting["status"] == "STARTED" and waiting["run_id"] == started["run_id"]
    assert [a["action"] for a in json.loads(waiting["trace"])["actions"]] == [
        "command",
        "wait_for_trigger",
    ]
    off = motion(fold, False, T0 + 10_000)
    assert commands(off) == []
    assert commands(fold.handle(*tick(T0 + 10_000 + 119_000))) == []
    done = fold.handle(*tick(T0 + 10_000 + 121_000))
    assert "turnOff" in commands(done)
    [finished] = named(done, "AutomationFired")
    assert finished["status"] == "COMPLETED" and finished["run_id"] == started["run_id"]
    trace = json.loads(finished["trace"])
    assert [a["action"] for a in trace["actions"]] == ["command", "wait_for_trigger", "command"]
    assert "due_at" not in fold.store.data[state_key(HOME, "hall-light")]  # nothing pending
    for e in on + off + done:  # every output is a valid event of its topic
        CODEC.encode(e.record_name, e.record)


def test_motion_again_within_the_two_minutes_restarts_the_run():
    fold = new_fold()
    home(fold, ("hall-light", MOTION_LIGHT))
    motion(fold, True, T0 + 1_000)
    motion(fold, False, T0 + 2_000)
    again = motion(fold, True, T0 + 60_000)
    statuses = [r["status"] for r in named(again, "AutomationFired")]
    assert statuses == ["ABORTED", "STARTED", "STARTED"]  # the new run started, then waits
    motion(fold, False, T0 + 61_000)
    assert commands(fold.handle(*tick(T0 + 2_000 + 121_000))) == []  # the first wait is gone
    assert "turnOff" in commands(fold.handle(*tick(T0 + 61_000 + 121_000)))


def test_pending_timers_survive_a_restore_and_fire_once():
    """The state is JSON in the store: a worker rebuilt from it mid-wait carries on exactly
    as one that never stopped, and a timer fires once (it leaves the state as it fires)."""
    fold = new_fold()
    home(fold, ("hall-light", MOTION_LIGHT))
    motion(fold, True, T0 + 1_000)
    motion(fold, False, T0 + 2_000)
    restored = new_fold(json.loads(json.dumps(fold.store.data)))
    late = T0 + 2_000 + 300_000  # the restart took five minutes
    a, b = fold.handle(*tick(late)), restored.handle(*tick(late))
    strip = [(e.topic, e.record_name, {**e.record, "event_id": ""}) for e in a]
    assert strip == [(e.topic, e.record_name, {**e.record, "event_id": ""}) for e in b]
    assert "turnOff" in commands(b)
    assert commands(restored.handle(*tick(late + 1_000))) == []


def test_time_triggers_follow_the_homes_time_zone():
    fold = new_fold()
    berlin = {"time_zone": "Europe/Berlin", "latitude": 52.52, "longitude": 13.405}
    night = {
        "alias": "Lights off at 23:00",
        "triggers": [{"trigger": "time", "at": "23:00"}],
        "actions": [
            {"device_id": "hall", "capability": "ON_OFF", "command": "turnOff"},
            {"notify": "Good night"},
        ],
    }
    start = int(dt.datetime(2024, 6, 21, 12, 0, tzinfo=dt.UTC).timestamp() * 1000)
    for name, rec in (
        discovered("hall", ("ON_OFF",), "switch.plug", ts=start),
        config("home", "settings", berlin, start),
        config("automation", "night", night, start),
    ):
        fold.handle(name, rec)
    at_23_berlin = int(dt.datetime(2024, 6, 21, 21, 0, tzinfo=dt.UTC).timestamp() * 1000)
    assert fold.store.data[state_key(HOME, "night")]["due_at"] == at_23_berlin
    early = named(fold.handle(*tick(at_23_berlin - 1_000)), "Notification")
    assert [n for n in early if n["kind"] == "AUTOMATION"] == []
    out = fold.handle(*tick(at_23_berlin))
    [note] = [n for n in named(out, "Notification") if n["kind"] == "AUTOMATION"]
    assert note["kind"] == "AUTOMATION" and note["message"] == "Good night"
    assert note["automation_id"] == "night"
    # and the next one is tomorrow's 23:00
    assert fold.store.data[state_key(HOME, "night")]["due_at"] == at_23_berlin + 24 * 3600 * 1000


def test_device_events_and_the_hub_going_offline_fire_their_triggers():
    fold = new_fold()
    doorbell = {
        "alias": "Doorbell",
        "triggers": [{"trigger": "event", "device_id": "bell", "event": "ring"}],
        "actions": [{"notify": "Someone is at the door"}],
    }
    hub_down = {
        "alias": "Hub offline",
        "triggers": [{"trigger": "hub", "to": "offline"}],
        "actions": [{"notify": "The hub went offline"}],
    }
    home(fold)
    fold.handle(*discovered("bell", ("BATTERY",), "doorbell"))
    fold.handle(*config("automation", "bell", doorbell))
    fold.handle(*config("automation", "hub", hub_down))
    ring = fold.handle(
        "DeviceEvent",
        {"event_id": eid(), "home_id": HOME, "ts": T0, "device_id": "bell", "event": "ring",
         "data": "{}", "received_at": T0, "source": "mqtt"},
    )  # fmt: skip
    assert [n["message"] for n in named(ring, "Notification")] == ["Someone is at the door"]

    def hub(online: bool, ts: int) -> list[Any]:
        return fold.handle(
            "HubStatus",
            {"event_id": eid(), "home_id": HOME, "ts": ts, "online": online, "source": "mqtt"},
        )

    assert named(hub(True, T0 + 1), "Notification") == []
    down = named(hub(False, T0 + 2), "Notification")
    assert [(n["kind"], n["message"]) for n in down if n["kind"] == "AUTOMATION"] == [
        ("AUTOMATION", "The hub went offline")
    ]
    # The system's own notice too, once per transition
    assert [(n["kind"], n["severity"]) for n in down if n["kind"] != "AUTOMATION"] == [
        ("SYSTEM", "WARNING")
    ]
    assert [n["kind"] for n in named(hub(False, T0 + 3), "Notification")] == []
    back = named(hub(True, T0 + 4), "Notification")
    assert [(n["kind"], n["title"]) for n in back] == [("SYSTEM", "The hub is back online")]


def test_a_mode_condition_reads_the_mode_the_gateway_published():
    fold = new_fold()
    away_alert = {
        "alias": "Front door while away",
        "triggers": [{"trigger": "state", "device_id": "door", "attribute": "contact",
                      "to": "open"}],
        "conditions": [{"condition": "mode", "mode": "away"}],
        "actions": [{"notify": "The front door opened while nobody is home"}],
    }  # fmt: skip
    home(fold)
    fold.handle(*discovered("door", ("CONTACT_SENSOR",), "sensor.contact"))
    fold.handle(*report({"contact": "closed"}, dev="door"))
    fold.handle(*config("automation", "away-door", away_alert))

    def door(value: str, ts: int) -> list[Any]:
        return fold.handle(*report({"contact": value}, dev="door", ts=ts))

    def automation_notes(out: list[Any]) -> list[str]:  # not the built-in SECURITY alert
        return [n["message"] for n in named(out, "Notification") if n["kind"] == "AUTOMATION"]

    # mode home (never set): the run ends at its condition
    out = door("open", T0 + 1_000)
    assert automation_notes(out) == []
    [fired] = named(out, "AutomationFired")
    assert fired["status"] == "CONDITIONS_FAILED"
    assert json.loads(fired["trace"])["conditions"][0]["mode"] == "home"
    door("closed", T0 + 2_000)
    fold.handle(*config("home", "mode", {"mode": "away"}, ts=T0 + 3_000))
    out = door("open", T0 + 4_000)
    assert automation_notes(out) == ["The front door opened while nobody is home"]


def test_removing_an_automation_ends_its_runs_and_timers():
    fold = new_fold()
    home(fold, ("hall-light", MOTION_LIGHT))
    motion(fold, True, T0 + 1_000)
    motion(fold, False, T0 + 2_000)
    assert fold.store.data[state_key(HOME, "hall-light")]["due_at"] == T0 + 2_000 + 120_000
    out = fold.handle(*config("automation", "hall-light", None, T0 + 3_000))
    assert [r["status"] for r in named(out, "AutomationFired")] == ["ABORTED"]
    assert state_key(HOME, "hall-light") not in fold.store.data  # nothing of it is kept
    assert fold.store.data[docs_key(HOME)]["automations"] == {}
    assert commands(fold.handle(*tick(T0 + 500_000))) == []


def test_an_invalid_document_is_dead_lettered_and_runs_nothing():
    fold = new_fold()
    home(fold)
    out = fold.handle(*config("automation", "bad", {"alias": "x", "triggers": []}))
    [dl] = named(out, "DeadLetter")
    assert dl["reason"] == "SCHEMA_VIOLATION" and "triggers" in dl["message"]
    CODEC.encode("DeadLetter", dl)
    assert fold.store.data.get(docs_key(HOME), {"automations": {}})["automations"] == {}


def test_a_home_without_automations_reads_one_key_and_writes_none():
    fold = new_fold()
    home(fold)
    before = copy.deepcopy(fold.store.data)
    out = motion(fold, True, T0 + 1_000)
    assert named(out, "AutomationFired") == []
    changed = {k for k in fold.store.data if fold.store.data[k] != before.get(k)}
    assert changed == {f"{HOME}/pir", HOME} or changed == {f"{HOME}/pir"}
    assert not any("#automation/" in key for key in fold.store.data)


def test_automation_outputs_go_to_their_topics():
    fold = new_fold()
    home(fold, ("hall-light", MOTION_LIGHT))
    out = motion(fold, True, T0 + 1_000)
    topics = {e.record_name: e.topic for e in out}
    assert topics["AutomationFired"] == t.AUTOMATIONS_RUNS


def test_a_door_opened_or_a_person_seen_while_away_is_a_security_alert():
    fold = new_fold()
    home(fold)
    fold.handle(*discovered("front", ("CONTACT_SENSOR", "BATTERY"), "sensor.contact",
                            name="Front door"))  # fmt: skip
    fold.handle(*discovered("cam", ("BATTERY",), "camera", name="Porch camera"))
    fold.handle(*report({"contact": "closed", "battery": 80}, dev="front"))

    def door(value: str, ts: int) -> list[dict[str, Any]]:
        out = fold.handle(*report({"contact": value}, dev="front", ts=ts))
        return [n for n in named(out, "Notification") if n["kind"] == "SECURITY"]

    def person(ts: int) -> list[dict[str, Any]]:
        out = fold.handle(
            "DeviceEvent",
            {"event_id": eid(), "home_id": HOME, "ts": ts, "device_id": "cam",
             "event": "person_detected", "data": "{}", "received_at": ts, "source": "mqtt"},
        )  # fmt: skip
        return [n for n in named(out, "Notification") if n["kind"] == "SECURITY"]

    assert door("open", T0 + 1) == [] and person(T0 + 2) == []  # at home: nothing
    door("closed", T0 + 3)
    fold.handle(*config("home", "mode", {"mode": "away"}, T0 + 4))
    [alert] = door("open", T0 + 5)
    assert alert["severity"] == "CRITICAL" and alert["device_id"] == "front"
    assert alert["title"] == "Front door opened"
    [seen] = person(T0 + 6)
    assert seen["title"] == "Porch camera saw a person"
    CODEC.encode("Notification", seen)
    assert door("closed", T0 + 7) == []


def test_a_device_event_reaches_only_the_automations_watching_it():
    """watched_devices: trigger and wait devices; an event trigger without a device
    watches every device."""
    from domain.automation.model import watched_devices
    from domain.automation.parse import parse

    assert watched_devices(parse(MOTION_LIGHT)) == {"pir"}
    any_button = {
        "alias": "Any button",
        "triggers": [{"trigger": "event", "event": "press"}],
        "actions": [{"notify": "pressed"}],
    }
    assert watched_devices(parse(any_button)) is None
    timed = {
        "alias": "t",
        "triggers": [{"trigger": "time", "at": "07:00"}],
        "actions": [{"device_id": "hall", "capability": "ON_OFF", "command": "turnOn"}],
    }
    assert watched_devices(parse(timed)) == frozenset()


def test_the_same_automation_sent_again_changes_nothing():
    """A republish (homestream topics republish-config) sends the stored document, whose
    keys PostgreSQL may have reordered: the same revision, so a waiting run goes on."""
    fold = new_fold()
    home(fold, ("hall-light", MOTION_LIGHT))
    motion(fold, True, T0 + 1_000)
    reordered = dict(reversed(list(MOTION_LIGHT.items())))
    again = fold.handle(*config("automation", "hall-light", reordered, T0 + 2_000))
    assert named(again, "AutomationFired") == []
    motion(fold, False, T0 + 3_000)
    assert "turnOff" in commands(fold.handle(*tick(T0 + 3_000 + 121_000)))


def test_an_automation_the_hub_ran_offline_is_not_run_again_by_the_cloud():
    """A report replayed from the hub's outbox names the automations the hub already ran on
    it (local_runs): the cloud's triggers follow the change, but nothing fires twice."""
    simple = {**MOTION_LIGHT, "actions": MOTION_LIGHT["actions"][:1]}
    fold = new_fold()
    home(fold, ("hall-light", simple), ("other", simple))
    name, rec = report({"motion": True}, dev="pir", ts=T0 + 1_000)
    out = fold.handle(name, {**rec, "local_runs": ["hall-light"]})
    [change] = [c for c in named(out, "StateChange") if c["source"] == "report"]
    assert json.loads(change["state"])["local_runs"] == ["hall-light"]
    fired = named(out, "AutomationFired")
    assert {r["automation_id"] for r in fired} == {"other"}  # the one the hub did not run
    assert commands(out) == ["turnOn"]
    # the trigger state followed: motion stays on, so nothing fires on a repeat "to: true"
    assert (
        named(fold.handle(*report({"motion": False}, dev="pir", ts=T0 + 2_000)), "AutomationFired")
        == []
    )
    again = fold.handle(*report({"motion": True}, dev="pir", ts=T0 + 3_000))
    assert {r["automation_id"] for r in named(again, "AutomationFired")} == {"hall-light", "other"}
