"""domain.automation.runner and modes: runs as a pure state machine, and admission."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.automation import modes, runner
from domain.automation.home import HomeView, Place, to_ms
from domain.automation.model import Automation
from domain.automation.parse import parse
from domain.automation.triggers import DeviceEvent, StateChanged, TimerFired

BERLIN = Place("Europe/Berlin", 52.52, 13.405)
T0 = to_ms(dt.datetime(2024, 6, 21, 10, 0, tzinfo=dt.UTC))  # 12:00 in Berlin, a Friday
HOME = HomeView(BERLIN, {"lamp": {"powerState": "OFF"}, "door": {"contact": "open"}})
FIRED = {"platform": "event", "id": "0", "idx": 0, "path": "triggers[0]", "at": T0,
         "source": "evt-1", "device_id": "button", "event": "press", "data": {}}  # fmt: skip


def automation(*actions: dict[str, Any], **fields: Any) -> Automation:
    doc = {"alias": "A", "triggers": [{"trigger": "event", "event": "press"}],
           "actions": list(actions), **fields}  # fmt: skip
    return parse(doc)


def json_safe(run: dict[str, Any]) -> None:
    assert json.loads(json.dumps(run, allow_nan=False)) == run


def kinds(effects: list[dict[str, Any]]) -> list[str]:
    return [e["kind"] for e in effects]


LAMP_ON = {"device_id": "lamp", "capability": "ON_OFF", "command": "turnOn"}


# -- start -----------------------------------------------------------------------------------
def test_start_evaluates_the_conditions():
    a = automation(LAMP_ON, conditions=[{"condition": "time", "weekday": "mon"}])
    run, effects = runner.start(a, "a1", FIRED, T0, HOME)
    assert run["status"] == "conditions_failed" and run["finished_at"] == T0
    assert effects == [{"kind": "finished", "run_id": run["run_id"], "automation_id": "a1",
                        "status": "conditions_failed"}]  # fmt: skip
    assert run["trace"]["conditions"][0]["result"] is False
    ok = automation(LAMP_ON, conditions=[{"condition": "time", "weekday": "fri"}])
    run, effects = runner.start(ok, "a1", FIRED, T0, HOME)
    assert run["status"] == "pending" and effects == []
    assert run["trigger"] == FIRED and run["pointer"] == [0]
    json_safe(run)


def test_run_ids_derive_from_the_automation_and_the_firing():
    same = runner.run_id_for("a1", FIRED)
    assert same == runner.run_id_for("a1", dict(FIRED))
    assert same != runner.run_id_for("a2", FIRED)
    assert same != runner.run_id_for("a1", {**FIRED, "source": "evt-2"})
    assert same != runner.run_id_for("a1", {**FIRED, "idx": 1})


# -- actions ---------------------------------------------------------------------------------
def test_a_run_through_command_scene_and_notify():
    a = automation(
        LAMP_ON,
        {"group_id": "all", "capability": "BRIGHTNESS", "command": "setBrightness",
         "parameters": {"brightness": 30}, "alias": "dim all"},
        {"scene": "evening"},
        {"notify": {"message": "done", "title": "Home"}},
    )  # fmt: skip
    run, _ = runner.start(a, "a1", FIRED, T0, HOME)
    run, effects = runner.advance(run, a, T0 + 5, HOME)
    assert kinds(effects) == ["command", "command", "scene", "notify", "finished"]
    command = effects[0]
    assert command["device_id"] == "lamp" and command["group_id"] is None
    assert command["capability"] == "ON_OFF" and command["command"] == "turnOn"
    assert effects[1]["group_id"] == "all" and effects[1]["parameters"] == {"brightness": 30}
    assert effects[2]["scene_id"] == "evening" and effects[3]["title"] == "Home"
    assert effects[4]["status"] == "completed" and run["status"] == "completed"
    ids = [command["command_id"], effects[1]["command_id"], effects[2]["request_id"],
           effects[3]["notification_id"]]  # fmt: skip
    assert len(set(ids)) == 4
    trace = run["trace"]["actions"]
    assert [(t["path"], t["action"], t["result"], t["at"]) for t in trace] == [
        ("actions[0]", "command", "requested", T0 + 5),
        ("actions[1]", "command", "requested", T0 + 5),
        ("actions[2]", "scene", "requested", T0 + 5),
        ("actions[3]", "notify", "sent", T0 + 5),
    ]
    assert trace[1]["alias"] == "dim all"
    json_safe(run)


def test_a_delay_suspends_until_its_timer():
    a = automation({"delay": "00:00:30"}, LAMP_ON)
    run, _ = runner.start(a, "a1", FIRED, T0, HOME)
    run, effects = runner.advance(run, a, T0, HOME)
    key = f"run/{run['run_id']}/0/delay"
    assert run["status"] == "delayed"
    assert effects == [{"kind": "arm_timer", "run_id": run["run_id"], "automation_id": "a1",
                        "key": key, "at": T0 + 30_000}]  # fmt: skip
    assert runner.timer_owner(key) == ("run", run["run_id"])
    assert runner.timers(run) == {key: T0 + 30_000}  # what an index is rebuilt from
    # other events and other timers do not move it
    assert runner.resume(run, a, TimerFired("run/x/0/delay", T0 + 30_000), T0 + 30_000,
                         HOME) == (run, [])  # fmt: skip
    assert runner.resume(run, a, DeviceEvent("e", "b", "press"), T0 + 1, HOME) == (run, [])
    assert runner.advance(run, a, T0 + 1, HOME) == (run, [])  # only resume goes on
    run, effects = runner.resume(run, a, TimerFired(key, T0 + 30_000), T0 + 30_200, HOME)
    assert kinds(effects) == ["command", "finished"]
    assert run["trace"]["actions"][0] == {"path": "actions[0]", "action": "delay", "at": T0,
                                          "until": T0 + 30_000, "result": "done",
                                          "done_at": T0 + 30_200}  # fmt: skip
    json_safe(run)


def test_a_zero_delay_does_not_suspend():
    a = automation({"delay": 0}, LAMP_ON)
    run, _ = runner.start(a, "a1", FIRED, T0, HOME)
    assert kinds(runner.advance(run, a, T0, HOME)[1]) == ["command", "finished"]


DOOR_CLOSES = {"trigger": "state", "device_id": "door", "attribute": "contact", "to": "closed"}
OPEN, CLOSED = {"contact": "open"}, {"contact": "closed"}


def test_wait_for_trigger_goes_on_when_a_trigger_fires():
    a = automation({"wait_for_trigger": [DOOR_CLOSES], "timeout": "00:01:00"}, LAMP_ON)
    run, _ = runner.start(a, "a1", FIRED, T0, HOME)
    run, effects = runner.advance(run, a, T0, HOME)
    timeout_key = f"run/{run['run_id']}/0/timeout"
    assert run["status"] == "waiting"
    assert [(e["kind"], e.get("key"), e.get("at")) for e in effects] == [
        ("arm_timer", timeout_key, T0 + 60_000),
        ("wait", None, None),
    ]
    assert effects[1]["timeout_at"] == T0 + 60_000 and effects[1]["step"] == "actions[0]"
    # an event the triggers ignore changes nothing
    assert runner.resume(run, a, StateChanged("e1", "lamp", {}, {}), T0 + 1, HOME) == (run, [])
    run, effects = runner.resume(run, a, StateChanged("e2", "door", OPEN, CLOSED), T0 + 20_000,
                                 HOME)  # fmt: skip
    assert kinds(effects) == ["cancel_timer", "command", "finished"]
    assert effects[0]["key"] == timeout_key
    wait = run["variables"]["wait"]
    assert wait["remaining"] == 40_000 and wait["trigger"]["to"] == "closed"
    step = run["trace"]["actions"][0]
    assert (step["result"], step["done_at"], step["trigger"]["source"]) == (
        "triggered",
        T0 + 20_000,
        "e2",
    )
    json_safe(run)


@pytest.mark.parametrize(
    ("go_on", "after"), [(True, ["command", "finished"]), (False, ["finished"])]
)
def test_wait_for_trigger_timeout(go_on, after):
    a = automation({"wait_for_trigger": [DOOR_CLOSES], "timeout": 60_000,
                    "continue_on_timeout": go_on}, LAMP_ON)  # fmt: skip
    run, _ = runner.start(a, "a1", FIRED, T0, HOME)
    run, _ = runner.advance(run, a, T0, HOME)
    key = run["suspended"]["timeout_key"]
    assert runner.resume(run, a, TimerFired(key, T0 + 60_000), T0 + 59_000, HOME) == (run, [])
    run, effects = runner.resume(run, a, TimerFired(key, T0 + 60_000), T0 + 60_000, HOME)
    assert kinds(effects) == ["cancel_timer", *after]
    assert run["variables"]["wait"] == {"trigger": None, "remaining": 0}
    assert run["trace"]["actions"][0]["result"] == "timeout"
    assert run["status"] == "completed"
    assert (run["trace"]["stopped"] is None) == go_on


def test_a_wait_trigger_with_for_and_a_time_trigger():
    a = automation(
        {"wait_for_trigger": [{**DOOR_CLOSES, "for": 5000}, {"trigger": "time", "at": "23:00"}]},
        LAMP_ON,
    )
    run, _ = runner.start(a, "a1", FIRED, T0, HOME)
    run, effects = runner.advance(run, a, T0, HOME)
    scope = f"run/{run['run_id']}/0"
    assert [e.get("key") for e in effects] == [f"{scope}/1/at", None]  # no timeout: none armed
    run, effects = runner.resume(run, a, StateChanged("e1", "door", OPEN, CLOSED), T0 + 1, HOME)
    assert [(e["kind"], e["key"]) for e in effects] == [("arm_timer", f"{scope}/0/for/door")]
    assert set(runner.timers(run)) == {f"{scope}/0/for/door", f"{scope}/1/at"}
    assert run["status"] == "waiting"
    run, effects = runner.resume(run, a, TimerFired(f"{scope}/0/for/door", T0 + 5001),
                                 T0 + 5001, HOME)  # fmt: skip
    assert kinds(effects) == ["cancel_timer", "cancel_timer", "command", "finished"]
    assert {e["key"] for e in effects[:2]} == {f"{scope}/0/for/door", f"{scope}/1/at"}
    assert run["variables"]["wait"]["trigger"]["for"] == 5000


def test_a_condition_action_that_fails_ends_the_run_there():
    a = automation(
        {"condition": "state", "device_id": "lamp", "attribute": "powerState", "state": "ON"},
        LAMP_ON,
    )
    run, _ = runner.start(a, "a1", FIRED, T0, HOME)
    run, effects = runner.advance(run, a, T0, HOME)
    assert kinds(effects) == ["finished"] and effects[0]["status"] == "completed"
    assert run["trace"]["stopped"] == "actions[0]: the condition does not hold"
    assert run["trace"]["actions"][0]["result"] is False
    assert run["trace"]["actions"][0]["conditions"][0]["values"] == {"lamp": "OFF"}
    passing = automation(
        {"condition": "state", "device_id": "lamp", "attribute": "powerState", "state": "OFF"},
        LAMP_ON,
    )
    run, _ = runner.start(passing, "a1", FIRED, T0, HOME)
    assert kinds(runner.advance(run, passing, T0, HOME)[1]) == ["command", "finished"]


# -- stopping ----------------------------------------------------------------------------------
def test_abort_cancels_the_timers_of_the_step_it_waits_in():
    a = automation({"wait_for_trigger": [{"trigger": "time", "at": "23:00"}], "timeout": 10_000})
    run, _ = runner.start(a, "a1", FIRED, T0, HOME)
    run, _ = runner.advance(run, a, T0, HOME)
    run, effects = runner.abort(run, T0 + 1, "restarted (mode restart)")
    assert kinds(effects) == ["cancel_timer", "cancel_timer", "finished"]
    assert run["status"] == "aborted" and run["trace"]["stopped"] == "restarted (mode restart)"
    assert runner.abort(run, T0 + 2, "again") == (run, [])  # over is over
    assert runner.resume(run, a, TimerFired("x", T0), T0, HOME) == (run, [])


def test_a_changed_automation_aborts_its_runs():
    a = automation({"delay": 1000}, LAMP_ON)
    run, _ = runner.start(a, "a1", FIRED, T0, HOME)
    run, _ = runner.advance(run, a, T0, HOME)
    edited = automation({"delay": 2000}, LAMP_ON)
    key = run["suspended"]["key"]
    run, effects = runner.resume(run, edited, TimerFired(key, T0 + 1000), T0 + 1000, HOME)
    assert run["status"] == "aborted" and kinds(effects) == ["cancel_timer", "finished"]
    assert run["trace"]["stopped"] == "the automation changed"


def test_skip_queue_and_fail():
    a = automation(LAMP_ON)
    run, _ = runner.start(a, "a1", FIRED, T0, HOME)
    queued, effects = runner.queue(run, T0)
    assert queued["status"] == "queued" and effects == []
    skipped, effects = runner.skip(queued, T0, "already running (mode single)")
    assert skipped["status"] == "skipped" and kinds(effects) == ["finished"]
    assert skipped["trace"]["warnings"] == [{"at": T0, "message": "already running (mode single)"}]
    quiet, _ = runner.skip(run, T0, "limit", warn=False)
    assert quiet["trace"]["warnings"] == [] and quiet["trace"]["stopped"] == "limit"
    slow = automation({"delay": 10})
    started, _ = runner.advance(runner.start(slow, "a1", FIRED, T0, HOME)[0], slow, T0, HOME)
    failed, effects = runner.fail(started, T0 + 1, "scene 'x' is gone")
    assert failed["status"] == "failed" and failed["error"] == "scene 'x' is gone"
    assert kinds(effects) == ["cancel_timer", "finished"]


def test_report_has_the_automation_fired_fields():
    a = automation(LAMP_ON, alias="Lights")
    run, _ = runner.start(a, "a1", FIRED, T0, HOME)
    assert runner.report(run, T0)["status"] == "STARTED"
    run, _ = runner.advance(run, a, T0, HOME)
    rep = runner.report(run, T0 + 1)
    assert {k: rep[k] for k in ("ts", "automation_id", "run_id", "alias", "status", "error")} == {
        "ts": T0 + 1, "automation_id": "a1", "run_id": run["run_id"], "alias": "Lights",
        "status": "COMPLETED", "error": None,
    }  # fmt: skip
    assert rep["trigger"] == FIRED and rep["trace"]["actions"][0]["action"] == "command"
    json.dumps(rep)


# -- modes -----------------------------------------------------------------------------------
def runs(*ids: str) -> list[dict[str, str]]:
    return [{"run_id": i} for i in ids]


NEW = {"run_id": "new"}


def test_mode_single():
    a = automation(LAMP_ON, mode="single")
    assert modes.admit(a, [], [], NEW) == modes.Admission(start=True)
    got = modes.admit(a, runs("r1"), [], NEW)
    assert not got.start and got.drop and got.warn
    silent = automation(LAMP_ON, mode="single", max_exceeded="silent")
    assert modes.admit(silent, runs("r1"), [], NEW).warn is False


def test_mode_restart():
    a = automation(LAMP_ON, mode="restart")
    assert modes.admit(a, runs("r1", "r2"), [], NEW) == modes.Admission(
        start=True, cancel=("r1", "r2")
    )


def test_mode_queued():
    a = automation(LAMP_ON, mode="queued", max=3)
    assert modes.admit(a, [], [], NEW).start
    assert modes.admit(a, runs("r1"), [], NEW) == modes.Admission(queue=True)
    assert modes.admit(a, runs("r1"), runs("q1"), NEW).queue
    full = modes.admit(a, runs("r1"), runs("q1", "q2"), NEW)
    assert full.drop and "max 3" in full.drop
    assert modes.dequeue(a, [], runs("q1", "q2")) == "q1"
    assert modes.dequeue(a, runs("r1"), runs("q1")) is None
    assert modes.dequeue(a, [], []) is None
    assert modes.admit(automation(LAMP_ON, mode="queued"), runs(*"abcdefghi"), [], NEW).queue
    assert modes.admit(automation(LAMP_ON, mode="queued"), runs(*"abcdefghij"), [], NEW).drop


def test_mode_parallel():
    a = automation(LAMP_ON, mode="parallel", max=2)
    assert modes.admit(a, runs("r1"), [], NEW).start
    assert modes.admit(a, runs("r1", "r2"), [], NEW).drop
    assert modes.dequeue(a, [], runs("q")) is None
    # the new run itself in the list does not count against it
    assert modes.admit(a, runs("r1", "new"), [], NEW).start


# -- properties ------------------------------------------------------------------------------
steps = st.lists(
    st.one_of(
        st.just(LAMP_ON),
        st.integers(0, 5000).map(lambda ms: {"delay": ms}),
        st.just({"notify": "hi"}),
        st.just({"wait_for_trigger": [DOOR_CLOSES], "timeout": 3000}),
    ),
    min_size=1,
    max_size=8,
)


def _drive(actions: list[dict[str, Any]]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run to the end, firing each timer when due, as a processor would."""
    a = automation(*actions)
    run, out = runner.start(a, "a1", FIRED, T0, HOME)
    run, effects = runner.advance(run, a, T0, HOME)
    out += effects
    due: dict[str, int] = {}
    now = T0
    for _ in range(100):
        for e in effects:
            if e["kind"] == "arm_timer":
                due[e["key"]] = e["at"]
            elif e["kind"] == "cancel_timer":
                due.pop(e["key"], None)
        json_safe(run)
        if run["status"] in runner.FINISHED:
            break
        key = min(due, key=lambda k: (due[k], k))
        now = max(now, due.pop(key))
        run, effects = runner.resume(run, a, TimerFired(key, now), now, HOME)
        out += effects
    return run, out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps)
def test_every_run_finishes_with_each_action_once_and_the_same_ids_on_a_replay(actions):
    run, effects = _drive(actions)
    assert run["status"] == "completed"
    assert kinds(effects).count("finished") == 1 and effects[-1]["kind"] == "finished"
    assert kinds(effects).count("command") == sum(1 for x in actions if x is LAMP_ON)
    assert len(run["trace"]["actions"]) == len(actions)
    ids = [e.get("command_id") or e.get("notification_id") for e in effects
           if e["kind"] in ("command", "notify")]  # fmt: skip
    assert len(set(ids)) == len(ids)
    assert _drive(actions) == (run, effects)  # a replay gives the same run and effects
