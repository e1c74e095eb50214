"""The scenes processor (scene runs, group commands) in the fold, without Kafka.

The scenes processor hands its commands to the home processor's handler in the same
handling; ``pump`` would also play homestream.commands.requested, handing any
CommandRequested emitted back to the fold as the next input, as the next transaction would.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from domain.groups import child_command_id
from streams.due import DueIndex
from streams.fold.config import ProcessorConfig
from streams.fold.dispatch import Fold
from streams.fold.groups import DOC_WAIT_MS, RESULT_GRACE_MS
from streams.fold.store import DictStore
from streams.txloop import PartitionStore
from tests.unit.test_processor import CODEC, HOME, T0, ack, discovered, eid, report, tick
from topics import catalogue as t

LAMP = {"device_id": "lamp", "capability": "ON_OFF", "command": "turnOn"}
PLUG = {"device_id": "plug", "capability": "ON_OFF", "command": "turnOn"}
DIM = {
    "device_id": "lamp",
    "capability": "BRIGHTNESS",
    "command": "setBrightness",
    "parameters": {"brightness": 30},
}


def config(kind: str, doc_id: str, doc: dict[str, Any] | None, ts: int = T0 - 10_000):
    return "HomeConfig", {
        "event_id": eid(),
        "home_id": HOME,
        "ts": ts,
        "kind": kind,
        "doc_id": doc_id,
        "document": None if doc is None else json.dumps(doc),
        "by": "alice",
    }


def scene_request(scene_id: str = "evening", run_id: str = "run-1", ts: int = T0):
    return "SceneRequested", {
        "event_id": eid(),
        "home_id": HOME,
        "ts": ts,
        "scene_id": scene_id,
        "run_id": run_id,
        "requested_by": "alice",
        "request_id": "r-1",
    }


def group_command(cid: str = "g-1", group: str = "all", ts: int = T0, **kw: Any):
    return "CommandRequested", {
        "event_id": eid(),
        "home_id": HOME,
        "ts": ts,
        "issued_at": ts,
        "command_id": cid,
        "device_id": None,
        "group_id": group,
        "capability": kw.get("capability", "ON_OFF"),
        "command": kw.get("command", "turnOn"),
        "parameters": kw.get("parameters", {}),
        "requested_by": "alice",
        "timeout_ms": 5000,
        "request_id": "rq",
        "parent_command_id": None,
    }


def home(fold: Fold, *docs) -> None:
    """A home with a dimmable lamp and a plug, and the given documents."""
    for name, rec in [
        discovered("lamp", ts=T0 - 20_000),
        discovered("plug", caps=("ON_OFF",), type_="switch.plug", ts=T0 - 20_000),
        *docs,
    ]:
        fold.handle(name, rec)


def pump(fold: Fold, name: str, rec: dict[str, Any]) -> list:
    """Handle one input, then every CommandRequested it sent (the topic's next reads)."""
    out = fold.handle(name, rec)
    i = 0
    while i < len(out):
        e = out[i]
        i += 1
        if e.topic == t.COMMANDS_REQUESTED and e.record_name == "CommandRequested":
            out += fold.handle(e.record_name, e.record)
    return out


def of(out, name: str) -> list[dict[str, Any]]:
    return [e.record for e in out if e.record_name == name]


def runs(out) -> list[tuple[str, int, int, int]]:
    return [
        (r["status"], r["actions_succeeded"], r["actions_failed"], r["actions_skipped"])
        for r in of(out, "SceneRun")
    ]


def sent(out) -> list[str]:
    """Devices of the commands the home processor dispatched."""
    return [r["device_id"] for r in of(out, "CommandDispatched")]


def no_leftovers(fold: Fold) -> None:
    """Nothing of a run or group command stays in the state, and nothing asks for ticks."""
    keys = [k for k in fold.store.data if "/#scenes" in k and ":doc:" not in k]
    assert keys == []


@pytest.fixture
def fold() -> Fold:
    return Fold(DictStore(), ProcessorConfig(default_timeout_ms=5000))


SCENE = {"name": "Evening", "actions": [LAMP, PLUG, {**DIM, "delay_ms": 2000}]}


def test_a_scene_runs_its_steps_across_ticks_and_completes(fold):
    home(fold, config("scene", "evening", SCENE))
    out = pump(fold, *scene_request())
    assert runs(out) == [("STARTED", 0, 0, 0)]
    # The first step, both actions at once; each command named by the run.
    assert sent(out) == ["lamp", "plug"]
    ids = [r["command_id"] for r in of(out, "CommandDispatched")]
    assert ids == [child_command_id("run-1", "0"), child_command_id("run-1", "1")]
    # Handed to the home processor in the same handling: no CommandRequested record.
    assert of(out, "CommandRequested") == []
    statuses = of(out, "CommandStatus")
    assert {(s["parent_command_id"], s["request_id"]) for s in statuses} == {("run-1", "r-1")}
    out = pump(fold, *ack(ids[0], "COMPLETED", ts=T0 + 50))
    out += pump(fold, *ack(ids[1], "COMPLETED", dev="plug", ts=T0 + 60))
    assert runs(out) == []
    assert sent(pump(fold, *tick(T0 + 1_000))) == []
    out = pump(fold, *tick(T0 + 2_000))
    assert sent(out) == ["lamp"]
    last = of(out, "CommandDispatched")[0]
    assert last["issued_at"] == T0 + 2_000 and last["desired"] == {"brightness": 30}
    out = pump(fold, *report({"brightness": 30}, ts=T0 + 2_300))  # completes it
    assert runs(out) == [("COMPLETED", 3, 0, 0)]
    (final,) = of(out, "SceneRun")
    assert final["execution_time_ms"] == 2_300
    assert final["command_ids"] == [*ids, child_command_id("run-1", "2")]
    assert (final["run_id"], final["request_id"], final["error"]) == ("run-1", "r-1", None)
    no_leftovers(fold)


def test_actions_of_the_same_delay_go_out_together_at_their_time(fold):
    scene = {
        "name": "Steps",
        "actions": [
            {**LAMP, "delay_ms": 1500},
            {**PLUG, "delay_ms": 0},  # same step as the lamp: 1.5 s
            {**DIM, "delay_ms": 1000},  # 2.5 s
        ],
    }
    home(fold, config("scene", "steps", scene))
    out = pump(fold, *scene_request("steps"))
    assert sent(out) == []
    assert sent(pump(fold, *tick(T0 + 1_000))) == []
    out = pump(fold, *tick(T0 + 1_600))
    assert sent(out) == ["lamp", "plug"]
    assert len({r["issued_at"] for r in of(out, "CommandDispatched")}) == 1
    # A late tick sends what became due meanwhile, once.
    out = pump(fold, *tick(T0 + 4_000))
    assert sent(out) == ["lamp"]
    assert sent(pump(fold, *tick(T0 + 5_000))) == []


def test_a_failed_action_makes_the_run_partial_with_the_reason(fold):
    home(fold, config("scene", "evening", SCENE))
    out = pump(fold, *scene_request())
    lamp, plug = (r["command_id"] for r in of(out, "CommandDispatched"))
    pump(fold, *ack(lamp, "COMPLETED", ts=T0 + 10))
    pump(fold, *ack(plug, "FAILED", dev="plug", ts=T0 + 20, error="relay stuck"))
    pump(fold, *tick(T0 + 2_000))
    out = pump(fold, *report({"brightness": 30}, ts=T0 + 2_100))
    assert runs(out) == [("PARTIAL", 2, 1, 0)]
    (final,) = of(out, "SceneRun")
    assert final["errors"] == [{"action": 1, "message": "plug: relay stuck"}]
    assert final["error"] == "actions[1]: plug: relay stuck"
    no_leftovers(fold)


def test_a_command_that_times_out_fails_its_action(fold):
    home(fold, config("scene", "one", {"name": "One", "actions": [LAMP]}))
    pump(fold, *scene_request("one"))
    assert runs(pump(fold, *tick(T0 + 4_999))) == []
    out = pump(fold, *tick(T0 + 5_000))  # the home processor's TIMEOUT, chained
    assert [s["status"] for s in of(out, "CommandStatus")] == ["TIMEOUT"]
    assert runs(out) == [("FAILED", 0, 1, 0)]
    assert "no completion within 5000 ms" in of(out, "SceneRun")[0]["error"]
    no_leftovers(fold)


def test_an_unknown_device_fails_its_action_at_once(fold):
    scene = {"name": "Ghost", "actions": [LAMP, {**PLUG, "device_id": "ghost"}]}
    home(fold, config("scene", "ghost", scene))
    out = pump(fold, *scene_request("ghost"))
    failed = [s for s in of(out, "CommandStatus") if s["status"] == "FAILED"]
    assert failed[0]["device_id"] == "ghost"
    out = pump(fold, *ack(child_command_id("run-1", "0"), "COMPLETED", ts=T0 + 5))
    assert runs(out) == [("PARTIAL", 1, 1, 0)]


def test_conditions_that_do_not_hold_skip_actions(fold):
    on = {"condition": "state", "device_id": "lamp", "attribute": "powerState", "state": "ON"}
    scene = {
        "name": "If on",
        "actions": [{**PLUG, "conditions": [on]}, {**DIM, "delay_ms": 1000}],
    }
    home(fold, config("scene", "ifon", scene))
    fold.handle(*report({"powerState": "OFF"}, ts=T0 - 1_000))
    out = pump(fold, *scene_request("ifon"))
    assert sent(out) == []  # the plug's action is skipped: the lamp is off
    out = pump(fold, *tick(T0 + 1_000))
    assert sent(out) == ["lamp"]
    out = pump(fold, *report({"brightness": 30}, ts=T0 + 1_200))
    assert runs(out) == [("COMPLETED", 1, 0, 1)]

    # The scene's own conditions: none of its actions goes out.
    never = {"condition": "time", "after": "00:00", "before": "00:00:01"}
    home(fold, config("scene", "night", {**scene, "conditions": [never]}))
    out = pump(fold, *scene_request("night", run_id="run-2", ts=T0 + 5_000))
    assert runs(out) == [("STARTED", 0, 0, 0), ("COMPLETED", 0, 0, 2)]
    assert of(out, "CommandRequested") == []
    no_leftovers(fold)


def test_a_run_waits_for_a_scene_the_worker_does_not_have_yet(fold):
    home(fold)
    out = pump(fold, *scene_request("late"))
    assert runs(out) == []
    out = pump(fold, *config("scene", "late", {"name": "Late", "actions": [PLUG]}, ts=T0 + 300))
    assert runs(out) == [("STARTED", 0, 0, 0)] and sent(out) == ["plug"]
    out = pump(fold, *ack(child_command_id("run-1", "0"), "COMPLETED", dev="plug", ts=T0 + 400))
    assert runs(out) == [("COMPLETED", 1, 0, 0)]
    assert of(out, "SceneRun")[0]["execution_time_ms"] == 400

    out = pump(fold, *scene_request("never", run_id="run-2", ts=T0 + 1_000))
    assert runs(pump(fold, *tick(T0 + 1_000 + DOC_WAIT_MS - 1))) == []
    out = pump(fold, *tick(T0 + 1_000 + DOC_WAIT_MS))
    assert runs(out) == [("FAILED", 0, 0, 0)]
    assert "not known" in of(out, "SceneRun")[0]["error"]
    no_leftovers(fold)


def test_a_group_command_goes_to_each_member_and_ends_with_their_aggregate(fold):
    home(fold, config("group", "all", {"name": "All", "devices": ["lamp", "plug"]}))
    out = pump(fold, *group_command())
    # The home processor does not take the group command itself.
    statuses = [(s["command_id"], s["status"]) for s in of(out, "CommandStatus")]
    assert statuses[0] == ("g-1", "PENDING")
    assert sent(out) == ["lamp", "plug"]
    lamp, plug = child_command_id("g-1", "lamp"), child_command_id("g-1", "plug")
    assert [r["command_id"] for r in of(out, "CommandDispatched")] == [lamp, plug]
    members = [s for s in of(out, "CommandStatus") if s["command_id"] != "g-1"]
    assert {(s["parent_command_id"], s["group_id"]) for s in members} == {("g-1", "all")}
    # When every member is SENT, so is the group command.
    assert ("g-1", "SENT") in statuses
    out = pump(fold, *ack(lamp, "COMPLETED", ts=T0 + 10))
    assert [s["command_id"] for s in of(out, "CommandStatus")] == [lamp]
    out = pump(fold, *ack(plug, "COMPLETED", dev="plug", ts=T0 + 20))
    parent = [s for s in of(out, "CommandStatus") if s["command_id"] == "g-1"]
    assert [(p["status"], p["reason"], p["group_id"]) for p in parent] == [
        ("COMPLETED", None, "all")
    ]
    no_leftovers(fold)


def test_a_group_command_with_a_failed_member_fails_and_says_which(fold):
    home(fold, config("group", "all", {"name": "All", "devices": ["lamp", "plug"]}))
    dim = {"capability": "BRIGHTNESS", "command": "setBrightness", "parameters": {"brightness": 2}}
    out = pump(fold, *group_command(**dim))
    assert sent(out) == ["lamp"]  # the plug has no BRIGHTNESS
    # The skipped member ends under its own id: the gateway may have listed it as PENDING.
    plug = child_command_id("g-1", "plug")
    (skipped,) = [s for s in of(out, "CommandStatus") if s["command_id"] == plug]
    assert (skipped["status"], skipped["device_id"], skipped["parent_command_id"]) == (
        "FAILED",
        "plug",
        "g-1",
    )
    assert skipped["reason"].startswith("skipped: ") and "BRIGHTNESS" in skipped["reason"]
    CODEC.encode("CommandStatus", skipped)  # a valid event of the contract
    out = pump(fold, *ack(child_command_id("g-1", "lamp"), "FAILED", ts=T0 + 5, error="jammed"))
    (parent,) = [s for s in of(out, "CommandStatus") if s["command_id"] == "g-1"]
    assert parent["status"] == "FAILED"
    assert "0 of 1 members completed" in parent["reason"] and "plug" in parent["reason"]


def test_a_group_command_whose_members_never_answer_times_out(fold):
    home(fold, config("group", "all", {"name": "All", "devices": ["lamp", "plug"]}))
    pump(fold, *group_command())
    pump(fold, *ack(child_command_id("g-1", "lamp"), "COMPLETED", ts=T0 + 5))
    out = pump(fold, *tick(T0 + 5_000))
    parent = [s for s in of(out, "CommandStatus") if s["command_id"] == "g-1"]
    assert [p["status"] for p in parent] == ["TIMEOUT"]
    no_leftovers(fold)


def test_a_group_the_worker_does_not_know_fails_after_a_wait(fold):
    home(fold)
    pump(fold, *group_command(group="nope"))
    out = pump(fold, *tick(T0 + DOC_WAIT_MS))
    (parent,) = of(out, "CommandStatus")
    assert parent["status"] == "FAILED" and "not known" in parent["reason"]
    assert fold.counters["command_failed"] == 0  # the home processor never saw it
    no_leftovers(fold)


def test_a_scene_action_on_a_group_sends_to_its_members(fold):
    action = {"group_id": "all", "capability": "ON_OFF", "command": "turnOn"}
    scene = {"name": "All on", "actions": [action]}
    home(
        fold,
        config("group", "all", {"name": "All", "devices": ["lamp", "plug"]}),
        config("scene", "allon", scene),
    )
    out = pump(fold, *scene_request("allon"))
    assert sent(out) == ["lamp", "plug"]
    ids = [child_command_id("run-1", "0", d) for d in ("lamp", "plug")]
    pump(fold, *ack(ids[0], "COMPLETED", ts=T0 + 5))
    out = pump(fold, *ack(ids[1], "COMPLETED", dev="plug", ts=T0 + 6))
    assert runs(out) == [("COMPLETED", 1, 0, 0)]
    assert of(out, "SceneRun")[0]["command_ids"] == ids


def test_deleted_documents_are_forgotten(fold):
    home(fold, config("scene", "evening", SCENE), config("scene", "evening", None))
    pump(fold, *scene_request())
    out = pump(fold, *tick(T0 + DOC_WAIT_MS))
    assert runs(out) == [("FAILED", 0, 0, 0)]
    assert not [k for k in fold.store.data if "/#scenes" in k]


def test_a_malformed_document_is_dead_lettered(fold):
    name, rec = config("scene", "bad", None)
    out = fold.handle(name, {**rec, "document": "{not json"})
    assert [d["reason"] for d in of(out, "DeadLetter")] == ["MALFORMED_JSON"]


def _session() -> list[tuple[str, dict[str, Any]]]:
    """A run with a delayed step, a failure, a group command and a timeout."""
    return [
        discovered("lamp", ts=T0 - 20_000),
        discovered("plug", caps=("ON_OFF",), type_="switch.plug", ts=T0 - 20_000),
        config("scene", "evening", SCENE),
        config("group", "all", {"name": "All", "devices": ["lamp", "plug"]}),
        scene_request(),
        group_command(ts=T0 + 5),
        ack(child_command_id("run-1", "0"), "COMPLETED", ts=T0 + 50),
        ack(child_command_id("run-1", "1"), "FAILED", dev="plug", ts=T0 + 60, error="no"),
        tick(T0 + 2_000),
        report({"brightness": 30}, ts=T0 + 2_100),
        tick(T0 + 10_000),
        tick(T0 + 20_000),
    ]


def _replay(events, store) -> list:
    fold = Fold(store, ProcessorConfig(default_timeout_ms=5000))
    out = []
    for name, rec in events:
        out += pump(fold, name, rec)
    return out


def test_replaying_the_same_input_gives_the_same_outputs_and_every_output_encodes():
    events = _session()
    first = _replay(events, DictStore())
    again = _replay(events, DictStore())
    assert [(e.topic, e.key, e.record_name, e.record) for e in first] == [
        (e.topic, e.key, e.record_name, e.record) for e in again
    ]
    assert runs(first) == [("STARTED", 0, 0, 0), ("PARTIAL", 2, 1, 0)]
    group = [s["status"] for s in of(first, "CommandStatus") if s["command_id"] == "g-1"]
    assert group[0] == "PENDING" and group[-1] in ("TIMEOUT", "FAILED")
    for e in first:
        assert e.record_name in t.topic(e.topic).value_schemas
        CODEC.encode(e.record_name, e.record)
    ids = [e.record["event_id"] for e in first]
    assert len(ids) == len(set(ids))


def test_the_agenda_asks_the_due_index_for_ticks_only_while_something_is_due():
    due = DueIndex(30_000)
    store = PartitionStore({}, due)
    fold = Fold(store, ProcessorConfig(default_timeout_ms=5000))
    home(fold, config("scene", "evening", SCENE))
    pump(fold, *scene_request())
    assert due.timers == {f"{HOME}/#scenes": T0 + 2_000}
    assert HOME in due.due(T0 + 2_000, T0 + 2_000)
    pump(fold, *ack(child_command_id("run-1", "0"), "COMPLETED", ts=T0 + 10))
    pump(fold, *ack(child_command_id("run-1", "1"), "COMPLETED", dev="plug", ts=T0 + 10))
    pump(fold, *tick(T0 + 2_000))
    assert due.timers == {f"{HOME}/#scenes": T0 + 2_000 + 5_000 + RESULT_GRACE_MS}
    pump(fold, *report({"brightness": 30}, ts=T0 + 2_100))
    assert due.timers == {}
    # The index rebuilt from the state agrees (a restarted worker).
    rebuilt = DueIndex(30_000)
    rebuilt.rebuild(store.data.items())
    assert rebuilt.timers == due.timers


def test_a_replayed_request_does_not_start_a_second_run(fold):
    home(fold, config("scene", "evening", SCENE))
    name, rec = scene_request()
    pump(fold, name, rec)
    out = pump(fold, name, {**rec, "event_id": str(uuid.uuid4())})
    assert out == []


def test_an_automations_scene_and_group_command_are_handed_over_in_its_transaction(fold):
    automation = {
        "alias": "Lamp on: the rest too",
        "triggers": [{"trigger": "state", "device_id": "lamp", "attribute": "powerState",
                      "to": "ON"}],
        "actions": [
            {"scene": "plug-on"},
            {"group_id": "all", "capability": "BRIGHTNESS", "command": "setBrightness",
             "parameters": {"brightness": 5}},
        ],
    }  # fmt: skip
    home(
        fold,
        config("scene", "plug-on", {"name": "Plug", "actions": [PLUG]}),
        config("group", "all", {"name": "All", "devices": ["lamp", "plug"]}),
        config("automation", "rest", automation),
    )
    fold.handle(*report({"powerState": "OFF"}, ts=T0 - 1_000))
    out = fold.handle(*report({"powerState": "ON"}, ts=T0))
    # The automation's scene run started and its group command went out, in the
    # transaction of the report that fired it; no request records on the way.
    assert runs(out) == [("STARTED", 0, 0, 0)]
    assert of(out, "SceneRequested") == [] and of(out, "CommandRequested") == []
    assert sent(out) == ["plug", "lamp"]  # the scene's plug, the group's lamp
    (run,) = of(out, "SceneRun")
    assert run["requested_by"] == "automation:rest"
    group = [s for s in of(out, "CommandStatus") if s["device_id"] is None]
    assert [(s["group_id"], s["status"]) for s in group][:1] == [("all", "PENDING")]
    for e in out:
        CODEC.encode(e.record_name, e.record)
