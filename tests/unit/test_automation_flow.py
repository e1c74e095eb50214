"""The automation core end to end, driven the way a stream processor would drive it.

``MiniProcessor`` is a sketch of that processor in memory: it keeps the trigger states
and runs as JSON, an index of due timers rebuilt from them, and applies
``triggers`` -> ``runner.start`` -> ``modes.admit`` -> ``runner.advance/resume``. The
tests check the pieces fit: Home Assistant's modes, waits, conditions, and that a
processor restored from its stored JSON mid-run carries on exactly as one that never
stopped.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from typing import Any

from domain.automation import modes, runner, triggers
from domain.automation.home import HomeView, Place, to_ms
from domain.automation.parse import parse
from domain.automation.triggers import DeviceEvent, Event, StateChanged, TimerFired

BERLIN = Place("Europe/Berlin", 52.52, 13.405)
T0 = to_ms(dt.datetime(2024, 6, 21, 10, 0, tzinfo=dt.UTC))  # noon in Berlin, a Friday


class MiniProcessor:
    def __init__(self, documents: dict[str, dict[str, Any]], devices: dict[str, Any],
                 now: int, stored: dict[str, Any] | None = None) -> None:  # fmt: skip
        self.automations = {aid: parse(doc) for aid, doc in documents.items()}
        self.out: list[dict[str, Any]] = []
        if stored is not None:  # restored after a crash: everything from the JSON
            self.stored = json.loads(json.dumps(stored))
        else:
            self.stored = {"devices": devices, "triggers": {}, "runs": {}, "queues": {}}
            for aid, automation in self.automations.items():
                scope = runner.automation_scope(aid)
                armed = triggers.arm(automation.triggers, scope, now, self.home())
                self.stored["triggers"][aid] = armed.state
                self.stored["queues"][aid] = []
        # the index of due timers is derived, never stored
        self.due: dict[str, int] = {}
        for state in self.stored["triggers"].values():
            self.due.update(triggers.timers(state))
        for run in self.stored["runs"].values():
            self.due.update(runner.timers(run))

    def home(self) -> HomeView:
        return HomeView(BERLIN, self.stored["devices"])

    # -- inputs ----------------------------------------------------------------------------
    def event(self, event: Event, now: int) -> None:
        if isinstance(event, StateChanged):
            self.stored["devices"][event.device_id] = dict(event.new)
        for aid, automation in self.automations.items():
            self._triggers(aid, automation, event, now)
        for run_id in list(self.stored["runs"]):
            run = self.stored["runs"].get(run_id)
            if run is not None and run["status"] == "waiting":
                automation = self.automations[run["automation_id"]]
                self._apply(*runner.resume(run, automation, event, now, self.home()), now)

    def tick(self, now: int) -> None:
        while (
            self.due
            and (key := min(self.due, key=lambda k: (self.due[k], k)))
            and (self.due[key] <= now)
        ):
            at = self.due.pop(key)
            owner, ident = runner.timer_owner(key)
            if owner == "automation":
                self._triggers(ident, self.automations[ident], TimerFired(key, at), now)
            elif (run := self.stored["runs"].get(ident)) is not None:
                automation = self.automations[run["automation_id"]]
                self._apply(*runner.resume(run, automation, TimerFired(key, at), now,
                                           self.home()), now)  # fmt: skip

    # -- the pipeline ----------------------------------------------------------------------
    def _triggers(self, aid: str, automation: Any, event: Event, now: int) -> None:
        scope = runner.automation_scope(aid)
        state = self.stored["triggers"][aid]
        out = triggers.handle(automation.triggers, state, event, scope=scope, now=now,
                              home=self.home())  # fmt: skip
        self.stored["triggers"][aid] = out.state
        for key in out.cancel:
            self.due.pop(key, None)
        self.due.update(dict(out.arm))
        for fired in out.fired:
            self._fire(aid, automation, fired, now)

    def _fire(self, aid: str, automation: Any, fired: dict[str, Any], now: int) -> None:
        run, effects = runner.start(automation, aid, fired, now, self.home())
        if effects:  # conditions failed
            self._apply(run, effects, now)
            return
        active = [r for r in self.stored["runs"].values()
                  if r["automation_id"] == aid and r["status"] in runner.ACTIVE]  # fmt: skip
        queued = [self.stored["runs"][r] for r in self.stored["queues"][aid]]
        decision = modes.admit(automation, active, queued, run)
        for other in decision.cancel:
            self._apply(*runner.abort(self.stored["runs"][other], now, "restarted"), now)
        if decision.drop:
            self._apply(*runner.skip(run, now, decision.drop, warn=decision.warn), now)
        elif decision.queue:
            self.stored["queues"][aid].append(run["run_id"])
            self._apply(*runner.queue(run, now), now)
        else:
            self._apply(*runner.advance(run, automation, now, self.home()), now)

    def _apply(self, run: dict[str, Any], effects: list[dict[str, Any]], now: int) -> None:
        self.stored["runs"][run["run_id"]] = run
        for effect in effects:
            if effect["kind"] == "arm_timer":
                self.due[effect["key"]] = effect["at"]
            elif effect["kind"] == "cancel_timer":
                self.due.pop(effect["key"], None)
            elif effect["kind"] != "wait":
                self.out.append({**effect, "now": now})
            if effect["kind"] == "finished":
                self._finished(run, now)

    def _finished(self, run: dict[str, Any], now: int) -> None:
        aid = run["automation_id"]
        del self.stored["runs"][run["run_id"]]
        if run["run_id"] in self.stored["queues"][aid]:
            self.stored["queues"][aid].remove(run["run_id"])
        automation = self.automations[aid]
        active = [r for r in self.stored["runs"].values()
                  if r["automation_id"] == aid and r["status"] in runner.ACTIVE]  # fmt: skip
        queued = [self.stored["runs"][r] for r in self.stored["queues"][aid]]
        nxt = modes.dequeue(automation, active, queued)
        if nxt is not None:
            self.stored["queues"][aid].remove(nxt)
            self._apply(*runner.advance(self.stored["runs"][nxt], automation, now,
                                        self.home()), now)  # fmt: skip

    def said(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.out if e["kind"] == kind]


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
DEVICES = {"pir": {"motion": False}, "hall": {"powerState": "OFF"}}


def motion(p: MiniProcessor, n: int, value: bool, now: int) -> None:
    p.event(StateChanged(f"m{n}", "pir", {"motion": not value}, {"motion": value}), now)


def test_motion_light_turns_off_two_minutes_after_the_last_motion():
    p = MiniProcessor({"hall": MOTION_LIGHT}, copy.deepcopy(DEVICES), T0)
    motion(p, 1, True, T0)
    assert [c["command"] for c in p.said("command")] == ["turnOn"]
    motion(p, 2, False, T0 + 10_000)
    p.tick(T0 + 60_000)
    motion(p, 3, True, T0 + 70_000)  # restart: the first run is aborted, a new one starts
    statuses = [e["status"] for e in p.said("finished")]
    assert statuses == ["aborted"]
    motion(p, 4, False, T0 + 80_000)
    p.tick(T0 + 80_000 + 119_999)
    assert [c["command"] for c in p.said("command")] == ["turnOn", "turnOn"]
    p.tick(T0 + 200_000)
    assert [c["command"] for c in p.said("command")] == ["turnOn", "turnOn", "turnOff"]
    assert [e["status"] for e in p.said("finished")] == ["aborted", "completed"]
    assert p.due == {} and p.stored["runs"] == {}


def _pulse(mode: str, **extra: Any) -> dict[str, Any]:
    return {
        "alias": f"pulse {mode}",
        "mode": mode,
        **extra,
        "triggers": [{"trigger": "event", "device_id": "button", "event": "press"}],
        "actions": [
            {"device_id": "hall", "capability": "ON_OFF", "command": "toggle"},
            {"delay": 10_000},
            {"notify": "pulse done"},
        ],
    }


def press(p: MiniProcessor, n: int, now: int) -> None:
    p.event(DeviceEvent(f"p{n}", "button", "press"), now)


def test_mode_single_skips_with_a_warning():
    p = MiniProcessor({"a": _pulse("single")}, copy.deepcopy(DEVICES), T0)
    press(p, 1, T0)
    press(p, 2, T0 + 1000)
    finished = p.said("finished")
    assert [f["status"] for f in finished] == ["skipped"]
    p.tick(T0 + 10_000)
    assert [f["status"] for f in p.said("finished")] == ["skipped", "completed"]
    assert len(p.said("notify")) == 1


def test_mode_queued_runs_one_after_another_in_order():
    p = MiniProcessor({"a": _pulse("queued", max=3)}, copy.deepcopy(DEVICES), T0)
    for n in range(4):
        press(p, n, T0 + n)
    assert [f["status"] for f in p.said("finished")] == ["skipped"]  # 1 running + 2 queued max
    for step in range(1, 4):
        p.tick(T0 + step * 10_000 + 3)
    notes = p.said("notify")
    assert [n["now"] for n in notes] == [T0 + 10_003, T0 + 20_003, T0 + 30_003]
    assert len({n["run_id"] for n in notes}) == 3


def test_mode_parallel_up_to_max():
    p = MiniProcessor({"a": _pulse("parallel", max=2)}, copy.deepcopy(DEVICES), T0)
    for n in range(3):
        press(p, n, T0 + n)
    assert len(p.said("command")) == 2 and [f["status"] for f in p.said("finished")] == ["skipped"]
    p.tick(T0 + 20_000)
    assert len(p.said("notify")) == 2


def test_time_trigger_with_conditions_across_days():
    doc = {
        "alias": "Weekend evening",
        "triggers": [{"trigger": "time", "at": "21:00"}],
        "conditions": [{"condition": "time", "weekday": ["sat", "sun"]}],
        "actions": [{"scene": "evening"}],
    }
    p = MiniProcessor({"e": doc}, copy.deepcopy(DEVICES), T0)  # Friday noon
    for day in range(4):
        p.tick(T0 + day * 86_400_000 + 9 * 3_600_000 + 500)  # each day 21:00:00.5 Berlin
    finished = [f["status"] for f in p.said("finished")]
    assert finished == ["conditions_failed", "completed", "completed", "conditions_failed"]
    assert len(p.said("scene")) == 2


SCRIPT: list[tuple[str, int, int]] = [
    ("on", 1, 0), ("off", 2, 5_000), ("press", 3, 6_000), ("tick", 0, 16_000),
    ("press", 4, 17_000), ("on", 5, 18_000), ("off", 6, 19_000), ("tick", 0, 30_000),
    ("tick", 0, 200_000), ("press", 7, 201_000), ("tick", 0, 300_000),
]  # fmt: skip


def _play(p: MiniProcessor, script: list[tuple[str, int, int]]) -> None:
    for what, n, offset in script:
        if what == "tick":
            p.tick(T0 + offset)
        elif what == "press":
            press(p, n, T0 + offset)
        else:
            motion(p, n, what == "on", T0 + offset)


def test_a_processor_restored_from_its_json_carries_on_identically():
    docs = {"hall": MOTION_LIGHT, "pulse": _pulse("queued")}
    straight = MiniProcessor(docs, copy.deepcopy(DEVICES), T0)
    _play(straight, SCRIPT)
    for cut in range(1, len(SCRIPT)):
        first = MiniProcessor(docs, copy.deepcopy(DEVICES), T0)
        _play(first, SCRIPT[:cut])
        # crash: only the stored JSON survives; the timer index is rebuilt from it
        restored = MiniProcessor(docs, {}, T0, stored=first.stored)
        assert restored.due == first.due
        _play(restored, SCRIPT[cut:])
        assert first.out + restored.out == straight.out, cut
        assert restored.stored == straight.stored


def test_replaying_the_same_inputs_gives_the_same_ids():
    docs = {"hall": MOTION_LIGHT, "pulse": _pulse("parallel")}
    a, b = (MiniProcessor(docs, copy.deepcopy(DEVICES), T0) for _ in range(2))
    _play(a, SCRIPT)
    _play(b, SCRIPT)
    assert a.out == b.out and len(a.said("command")) >= 4
    ids = [e["command_id"] for e in a.said("command")]
    assert len(set(ids)) == len(ids)
