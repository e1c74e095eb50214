"""domain.automation.triggers: which triggers an event fires, trigger state and timers."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.automation.home import HomeView, Place, from_ms, to_ms
from domain.automation.model import Trigger
from domain.automation.parse import parse
from domain.automation.triggers import (
    MISFIRE_GRACE_MS,
    DeviceEvent,
    Event,
    HubStatus,
    Outcome,
    StateChanged,
    TimerFired,
    arm,
    disarm,
    handle,
    timers,
)

quick = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BERLIN = Place("Europe/Berlin", 52.52, 13.405)
SCOPE = "automation/a1"
T0 = to_ms(dt.datetime(2024, 6, 21, 12, 0, tzinfo=dt.UTC))


def triggers(*items: dict[str, Any]) -> tuple[Trigger, ...]:
    return parse({"alias": "t", "triggers": list(items), "actions": [{"delay": 0}]}).triggers


class Listener:
    """A trigger set as a caller keeps it: its state, and the timers it has asked for."""

    def __init__(self, *items: dict[str, Any], states: dict[str, Any] | None = None,
                 now: int = T0) -> None:  # fmt: skip
        self.triggers = triggers(*items)
        self.home = HomeView(BERLIN, states or {})
        out = arm(self.triggers, SCOPE, now, self.home)
        self.state = out.state
        self.due: dict[str, int] = dict(out.arm)
        self.n = 0

    def send(self, event: Event, now: int) -> Outcome:
        out = handle(self.triggers, self.state, event, scope=SCOPE, now=now, home=self.home)
        self.state = out.state
        for key in out.cancel:
            self.due.pop(key, None)
        self.due.update(dict(out.arm))
        assert self.due == timers(self.state)  # the outcome's diff keeps an index right
        return out

    def change(self, device: str, old: dict[str, Any], new: dict[str, Any], now: int) -> Outcome:
        self.n += 1
        return self.send(StateChanged(f"e{self.n}", device, old, new), now)

    def tick(self, now: int) -> list[dict[str, Any]]:
        """Every timer due by ``now``, in time order, as a worker's ticks would fire them."""
        fired = []
        while (
            self.due
            and (key := min(self.due, key=lambda k: (self.due[k], k)))
            and (self.due[key] <= now)
        ):
            fired += self.send(TimerFired(key, self.due[key]), now).fired
        return fired


POWER = {"trigger": "state", "device_id": "lamp", "attribute": "powerState"}
ON, OFF = {"powerState": "ON"}, {"powerState": "OFF"}


# -- state -----------------------------------------------------------------------------------
def test_state_trigger_to():
    listener = Listener({**POWER, "to": "ON"})
    (fired,) = listener.change("lamp", OFF, ON, T0).fired
    assert fired == {
        "platform": "state",
        "id": "0",
        "idx": 0,
        "path": "triggers[0]",
        "at": T0,
        "source": "e1",
        "device_id": "lamp",
        "attribute": "powerState",
        "from": "OFF",
        "to": "ON",
        "for": None,
    }
    assert listener.change("lamp", ON, OFF, T0).fired == ()
    assert listener.change("plug", OFF, ON, T0).fired == ()  # another device


def test_state_trigger_from_lists_and_negations():
    listener = Listener(
        {**POWER, "from": "OFF"},
        {**POWER, "to": ["ON", "OFF"]},
        {**POWER, "not_to": "OFF"},
        {**POWER, "not_from": "OFF"},
    )
    assert [f["idx"] for f in listener.change("lamp", OFF, ON, T0).fired] == [0, 1, 2]
    assert [f["idx"] for f in listener.change("lamp", ON, OFF, T0).fired] == [1, 3]
    # from nothing (first report): from "OFF" does not match None
    assert [f["idx"] for f in listener.change("lamp", {}, ON, T0).fired] == [1, 2, 3]


def test_an_attribute_trigger_fires_on_any_change_of_it_only():
    listener = Listener({"trigger": "state", "device_id": "lamp", "attribute": "brightness"})
    assert len(listener.change("lamp", {"brightness": 10}, {"brightness": 20}, T0).fired) == 1
    both = {"brightness": 20, "powerState": "ON"}
    assert listener.change("lamp", {"brightness": 20, "powerState": "OFF"}, both, T0).fired == ()
    assert listener.change("lamp", {"brightness": 20}, {"brightness": 20.0}, T0).fired == ()


def test_a_device_trigger_fires_on_any_change_and_carries_the_whole_state():
    listener = Listener({"trigger": "state", "device_id": ["lamp", "plug"]})
    (fired,) = listener.change("plug", {"powerState": "OFF"}, {"powerState": "ON"}, T0).fired
    assert fired["from"] == {"powerState": "OFF"} and fired["to"] == {"powerState": "ON"}
    assert fired["attribute"] is None


def test_a_field_of_an_object_attribute():
    listener = Listener({"trigger": "state", "device_id": "lamp", "attribute": "color.hue",
                         "to": 240})  # fmt: skip
    old, new = {"color": {"hue": 120, "saturation": 5}}, {"color": {"hue": 240, "saturation": 5}}
    assert listener.change("lamp", old, new, T0).fired[0]["to"] == 240


def test_state_for_fires_once_the_value_held():
    listener = Listener({**POWER, "to": "ON", "for": "00:00:10"})
    out = listener.change("lamp", OFF, ON, T0)
    assert out.fired == () and out.arm == ((f"{SCOPE}/0/for/lamp", T0 + 10_000),)
    # another attribute changing does not disturb it
    listener.change("lamp", {**ON, "brightness": 1}, {**ON, "brightness": 2}, T0 + 3000)
    assert listener.tick(T0 + 9_999) == []
    (fired,) = listener.tick(T0 + 10_000)
    assert fired["to"] == "ON" and fired["for"] == 10_000 and fired["at"] == T0 + 10_000
    assert fired["source"] == f"{SCOPE}/0/for/lamp@{T0 + 10_000}"
    assert timers(listener.state) == {}


def test_state_for_is_cancelled_when_the_value_changes_back():
    listener = Listener({**POWER, "to": "ON", "for": 10_000})
    listener.change("lamp", OFF, ON, T0)
    out = listener.change("lamp", ON, OFF, T0 + 5000)
    assert out.cancel == (f"{SCOPE}/0/for/lamp",) and listener.due == {}
    # a timer already queued by the caller is stale now: nothing happens
    stale = listener.send(TimerFired(f"{SCOPE}/0/for/lamp", T0 + 10_000), T0 + 10_000)
    assert stale.fired == ()
    # ON again restarts the wait from the new change
    listener.change("lamp", OFF, ON, T0 + 6000)
    assert listener.tick(T0 + 15_999) == [] and len(listener.tick(T0 + 16_000)) == 1


def test_state_for_with_only_from_waits_for_the_old_value_to_stay_away():
    listener = Listener({"trigger": "state", "device_id": "door", "attribute": "contact",
                         "from": "closed", "for": 10_000})  # fmt: skip
    listener.change("door", {"contact": "closed"}, {"contact": "open"}, T0)
    assert listener.tick(T0 + 10_000)[0]["to"] == "open"
    listener.change("door", {"contact": "open"}, {"contact": "closed"}, T0 + 20_000)
    listener.change("door", {"contact": "closed"}, {"contact": "open"}, T0 + 21_000)
    listener.change("door", {"contact": "open"}, {"contact": "closed"}, T0 + 22_000)
    assert listener.tick(T0 + 60_000) == []


def test_state_for_with_only_from_survives_moves_between_other_values():
    listener = Listener({"trigger": "state", "device_id": "hvac", "attribute": "mode",
                         "from": "off", "for": 10_000})  # fmt: skip
    listener.change("hvac", {"mode": "off"}, {"mode": "heat"}, T0)
    listener.change("hvac", {"mode": "heat"}, {"mode": "cool"}, T0 + 5000)  # still not off
    (fired,) = listener.tick(T0 + 10_000)
    assert (fired["from"], fired["to"]) == ("off", "heat")  # as it was when it changed
    with_to = Listener({"trigger": "state", "device_id": "hvac", "attribute": "mode",
                        "from": "off", "to": ["heat", "cool"], "for": 10_000})  # fmt: skip
    with_to.change("hvac", {"mode": "off"}, {"mode": "heat"}, T0)
    with_to.change("hvac", {"mode": "heat"}, {"mode": "cool"}, T0 + 5000)  # must stay heat
    assert with_to.tick(T0 + 60_000) == []


def test_for_timers_are_per_device():
    listener = Listener({"trigger": "state", "device_id": ["a", "b"], "attribute": "motion",
                         "to": True, "for": 1000})  # fmt: skip
    listener.change("a", {"motion": False}, {"motion": True}, T0)
    listener.change("b", {"motion": False}, {"motion": True}, T0 + 500)
    listener.change("a", {"motion": True}, {"motion": False}, T0 + 600)
    fired = listener.tick(T0 + 5000)
    assert [f["device_id"] for f in fired] == ["b"]


# -- numeric_state ---------------------------------------------------------------------------
HOT = {"trigger": "numeric_state", "device_id": "t1", "attribute": "temperature", "above": 25}


def temp(x: Any) -> dict[str, Any]:
    return {"temperature": x}


def test_numeric_fires_on_crossing_into_the_range_only():
    listener = Listener(HOT, states={"t1": temp(20)})
    assert listener.change("t1", temp(20), temp(24), T0).fired == ()
    (fired,) = listener.change("t1", temp(24), temp(26), T0).fired
    assert (fired["from"], fired["to"], fired["above"], fired["below"]) == (24, 26, 25.0, None)
    assert listener.change("t1", temp(26), temp(30), T0).fired == ()  # still inside
    assert listener.change("t1", temp(30), temp(25), T0).fired == ()  # 25 is not above 25
    assert len(listener.change("t1", temp(25), temp(25.5), T0).fired) == 1


def test_numeric_starts_ready_only_where_the_value_is_outside():
    inside_already = Listener(HOT, states={"t1": temp(30)})
    assert inside_already.change("t1", temp(30), temp(31), T0).fired == ()
    unknown = Listener(HOT, states={})
    assert len(unknown.change("t1", {}, temp(31), T0).fired) == 1
    # not a number (a boolean, text, nothing) counts as outside
    listener = Listener(HOT, states={"t1": temp(30)})
    listener.change("t1", temp(30), temp(None), T0)
    assert len(listener.change("t1", temp(None), temp(30), T0).fired) == 1


def test_numeric_with_both_bounds_and_several_devices():
    band = {"trigger": "numeric_state", "device_id": ["t1", "t2"], "attribute": "humidity",
            "above": 40, "below": 60}  # fmt: skip
    listener = Listener(band, states={"t1": {"humidity": 30}, "t2": {"humidity": 50}})
    assert listener.change("t2", {"humidity": 50}, {"humidity": 55}, T0).fired == ()
    assert len(listener.change("t1", {"humidity": 30}, {"humidity": 45}, T0).fired) == 1
    assert listener.change("t1", {"humidity": 45}, {"humidity": 60}, T0).fired == ()
    assert len(listener.change("t1", {"humidity": 60}, {"humidity": 59}, T0).fired) == 1


def test_numeric_for_is_cancelled_by_leaving_the_range():
    listener = Listener({**HOT, "for": {"minutes": 1}}, states={"t1": temp(20)})
    listener.change("t1", temp(20), temp(26), T0)
    listener.change("t1", temp(26), temp(27), T0 + 10_000)  # still inside: keeps waiting
    assert listener.tick(T0 + 59_999) == []
    (fired,) = listener.tick(T0 + 60_000)
    assert fired["to"] == 26 and fired["for"] == 60_000
    listener.change("t1", temp(27), temp(20), T0 + 70_000)
    listener.change("t1", temp(20), temp(28), T0 + 80_000)
    out = listener.change("t1", temp(28), temp(21), T0 + 90_000)
    assert out.cancel == (f"{SCOPE}/0/for/t1",)
    assert listener.tick(T0 + 200_000) == []


# -- time, time_pattern, sun -----------------------------------------------------------------
def berlin(*fields: int) -> int:
    return to_ms(dt.datetime(*fields, tzinfo=BERLIN.zone))  # type: ignore[misc]


def test_time_trigger_fires_and_rearms_for_the_next_day():
    now = berlin(2024, 6, 21, 12, 0)
    listener = Listener({"trigger": "time", "at": "22:00"}, now=now)
    key = f"{SCOPE}/0/at"
    assert listener.due == {key: berlin(2024, 6, 21, 22, 0)}
    (fired,) = listener.tick(berlin(2024, 6, 21, 22, 0, 0) + 400)
    assert fired["platform"] == "time" and fired["at"] == berlin(2024, 6, 21, 22, 0)
    assert fired["source"] == f"{key}@{berlin(2024, 6, 21, 22, 0)}"
    assert listener.due == {key: berlin(2024, 6, 22, 22, 0)}


def test_a_time_trigger_that_comes_due_too_late_rearms_without_firing():
    now = berlin(2024, 6, 21, 12, 0)
    listener = Listener({"trigger": "time_pattern", "minutes": 0}, now=now)
    first = berlin(2024, 6, 21, 13, 0)
    assert listener.tick(first + MISFIRE_GRACE_MS) != []  # late, but within the grace
    assert listener.due[f"{SCOPE}/0/at"] == berlin(2024, 6, 21, 14, 0)
    # the worker was down for three hours: no burst of missed hours, the next one is armed
    assert listener.tick(berlin(2024, 6, 21, 17, 30)) == []
    assert listener.due[f"{SCOPE}/0/at"] == berlin(2024, 6, 21, 18, 0)


def test_a_timer_delivered_early_or_twice_does_nothing():
    listener = Listener({"trigger": "time", "at": "22:00"}, now=berlin(2024, 6, 21, 12, 0))
    key, at = next(iter(listener.due.items()))
    assert listener.send(TimerFired(key, at), at - 1).fired == ()
    assert len(listener.send(TimerFired(key, at), at).fired) == 1
    assert listener.send(TimerFired(key, at), at).fired == ()  # replayed: already re-armed


def test_sun_triggers_arm_at_the_next_event_or_not_at_all():
    listener = Listener({"trigger": "sun", "event": "sunset", "offset": "-00:30:00"})
    (at,) = listener.due.values()
    assert from_ms(at).astimezone(BERLIN.zone).strftime("%H") == "21"
    (fired,) = listener.tick(at)
    assert fired["event"] == "sunset" and fired["offset"] == -1_800_000
    polar = HomeView(Place("Arctic/Longyearbyen", 78.22, 15.65), {})
    sun = triggers({"trigger": "sun", "event": "sunset"})
    august = arm(sun, SCOPE, T0, polar).arm[0][1]
    assert from_ms(august).month == 8
    nowhere = HomeView(Place("UTC"), {})
    assert arm(sun, SCOPE, T0, nowhere).arm == ()


def test_disarm_lists_every_timer():
    listener = Listener({"trigger": "time", "at": "22:00"}, {**POWER, "to": "ON", "for": 5000})
    listener.change("lamp", OFF, ON, T0)
    assert sorted(disarm(listener.state)) == [f"{SCOPE}/0/at", f"{SCOPE}/1/for/lamp"]


# -- events and the hub ----------------------------------------------------------------------
def test_event_triggers_match_name_device_and_data():
    listener = Listener(
        {"trigger": "event", "event": "press", "device_id": "button", "data": {"button": 1}},
        {"trigger": "event", "event": ["person_detected", "motion_detected"]},
    )
    (fired,) = listener.send(DeviceEvent("e1", "button", "press", {"button": 1, "x": 2}), T0).fired
    assert fired["data"] == {"button": 1, "x": 2} and fired["event"] == "press"
    assert listener.send(DeviceEvent("e2", "button", "press", {"button": 2}), T0).fired == ()
    assert listener.send(DeviceEvent("e3", "other", "press", {"button": 1}), T0).fired == ()
    assert listener.send(DeviceEvent("e4", "button", "press"), T0).fired == ()
    assert [
        f["idx"] for f in listener.send(DeviceEvent("e5", "cam", "person_detected"), T0).fired
    ] == [1]


def test_hub_triggers_fire_on_a_change_of_status():
    listener = Listener({"trigger": "hub", "to": "offline"}, {"trigger": "hub"})
    (down, any_change) = listener.send(HubStatus("e1", online=False, was_online=True), T0).fired
    assert (down["from"], down["to"]) == ("online", "offline") and any_change["idx"] == 1
    assert listener.send(HubStatus("e2", online=False, was_online=False), T0).fired == ()
    assert [f["idx"] for f in listener.send(HubStatus("e3", True, None), T0).fired] == [1]
    other_hub = Listener({"trigger": "hub", "hub_id": "h2"})
    assert other_hub.send(HubStatus("e4", False, True, hub_id="h1"), T0).fired == ()


# -- state is plain data and outcomes are deterministic ---------------------------------------
def test_the_state_survives_json_and_the_outcome_repeats():
    listener = Listener({**HOT, "for": 1000}, {**POWER, "to": "ON", "for": 5000},
                        {"trigger": "time", "at": "22:00"}, states={"t1": temp(20)})  # fmt: skip
    listener.change("t1", temp(20), temp(30), T0)
    listener.change("lamp", OFF, ON, T0)
    restored = json.loads(json.dumps(listener.state))
    assert restored == listener.state
    event = StateChanged("e9", "t1", temp(30), temp(10))
    a = handle(listener.triggers, restored, event, scope=SCOPE, now=T0 + 1, home=listener.home)
    b = handle(listener.triggers, listener.state, event, scope=SCOPE, now=T0 + 1,
               home=listener.home)  # fmt: skip
    assert a == b and restored == listener.state  # inputs are not changed


# -- properties ------------------------------------------------------------------------------
readings = st.lists(
    st.one_of(st.floats(0, 50, allow_nan=False), st.integers(0, 50), st.none(), st.booleans()),
    min_size=1,
    max_size=30,
)


def _inside(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and 20 < x < 30


@quick
@given(readings, st.one_of(st.floats(0, 50, allow_nan=False), st.none()))
def test_numeric_fires_once_per_entry_into_the_range(values, start):
    band = {"trigger": "numeric_state", "device_id": "t", "attribute": "temperature",
            "above": 20, "below": 30}  # fmt: skip
    listener = Listener(band, states={"t": temp(start)})
    fires = 0
    previous = start
    for x in values:
        fires += len(listener.change("t", temp(previous), temp(x), T0).fired)
        previous = x
    entries = sum(
        1 for a, b in zip([start, *values], values, strict=False) if not _inside(a) and _inside(b)
    )
    assert fires == entries


@quick
@given(st.lists(st.tuples(st.integers(1, 20_000), st.sampled_from(["ON", "OFF"])), max_size=25))
def test_state_for_fires_exactly_when_the_value_held_long_enough(steps):
    hold = 10_000
    listener = Listener({**POWER, "to": "ON", "for": hold})
    now, value, fires = T0, "OFF", 0
    expected = 0
    for gap, new in steps:
        fires += len(listener.tick(now + gap))  # timers due by the next change, first
        now += gap
        if new != value:
            listener.change("lamp", {"powerState": value}, {"powerState": new}, now)
            value = new
            if new == "ON":
                expected += 1 if _holds_until(steps, now, hold) else 0
        else:  # another attribute changes: no effect on the wait
            listener.change("lamp", {"powerState": value, "brightness": 1},
                            {"powerState": value, "brightness": 2}, now)  # fmt: skip
    fires += len(listener.tick(now + 10 * hold))
    assert fires == expected


def _holds_until(steps: list[tuple[int, str]], start: int, hold: int) -> bool:
    """Whether the ON that began at ``start`` lasts ``hold`` ms (no OFF before then)."""
    t = T0
    for gap, value in steps:
        t += gap
        if t > start and value == "OFF" and t < start + hold:
            return False
    return True
