"""domain.automation.conditions: evaluating condition trees against a view of the home."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.automation.conditions import check, evaluate
from domain.automation.home import HomeView, Place, to_ms
from domain.automation.model import Condition
from domain.automation.parse import parse

BERLIN = Place("Europe/Berlin", 52.52, 13.405)
STATES = {
    "lamp": {"powerState": "ON", "brightness": 40, "color": {"hue": 120, "saturation": 50}},
    "plug": {"powerState": "OFF"},
    "t1": {"temperature": 21.5},
    "t2": {"temperature": 30},
    "weird": {"temperature": True},
}
HOME = HomeView(BERLIN, STATES)


def conditions(*items: dict[str, Any]) -> tuple[Condition, ...]:
    doc = {
        "alias": "c",
        "triggers": [{"trigger": "hub"}],
        "conditions": list(items),
        "actions": [{"delay": 0}],
    }
    return parse(doc).conditions


def one(item: dict[str, Any]) -> Condition:
    return conditions(item)[0]


def berlin(*fields: int, fold: int = 0) -> int:
    return to_ms(dt.datetime(*fields, tzinfo=BERLIN.zone, fold=fold))  # type: ignore[misc]


NOON = berlin(2024, 6, 21, 12, 0)  # a Friday


def holds(item: dict[str, Any], now: int = NOON, home: HomeView = HOME) -> bool:
    return evaluate(one(item), home, now)[0]


# -- state and numeric_state -----------------------------------------------------------------
def test_state():
    base = {"condition": "state", "attribute": "powerState"}
    assert holds({**base, "device_id": "lamp", "state": "ON"})
    assert not holds({**base, "device_id": "plug", "state": "ON"})
    assert holds({**base, "device_id": "plug", "state": ["ON", "OFF"]})
    # several devices: all of them
    assert not holds({**base, "device_id": ["lamp", "plug"], "state": "ON"})
    assert holds({**base, "device_id": ["lamp", "plug"], "state": ["ON", "OFF"]})
    # an unknown device or attribute has no value: false
    assert not holds({**base, "device_id": "ghost", "state": "ON"})
    assert holds({"condition": "state", "device_id": "lamp", "attribute": "color.hue",
                  "state": 120})  # fmt: skip


def test_state_trace_shows_the_values():
    ok, trace = evaluate(
        one({"condition": "state", "device_id": "plug", "attribute": "powerState", "state": "ON"}),
        HOME,
        NOON,
    )
    assert not ok
    assert trace == [
        {"path": "conditions[0]", "condition": "state", "values": {"plug": "OFF"}, "result": False}
    ]


def test_numeric_state_bounds_are_strict():
    base = {"condition": "numeric_state", "attribute": "temperature"}
    assert holds({**base, "device_id": "t1", "above": 21})
    assert not holds({**base, "device_id": "t1", "above": 21.5})
    assert holds({**base, "device_id": "t1", "above": 20, "below": 22})
    assert not holds({**base, "device_id": "t1", "below": 21.5})
    assert not holds({**base, "device_id": ["t1", "t2"], "below": 25})
    assert holds({**base, "device_id": ["t1", "t2"], "above": 20})


def test_numeric_state_without_a_number_is_false_and_says_why():
    base = {"condition": "numeric_state", "attribute": "temperature", "above": 0}
    for device in ("ghost", "weird", "lamp"):  # unknown, a boolean, no such attribute
        ok, trace = evaluate(one({**base, "device_id": device}), HOME, NOON)
        assert not ok and trace[0]["message"] == f"{device} has no number for temperature"


def test_a_state_lookup_function_works_like_a_mapping():
    seen: list[str] = []

    def lookup(device: str) -> dict[str, Any] | None:
        seen.append(device)
        return STATES.get(device)

    home = HomeView(BERLIN, lookup)
    assert holds({"condition": "state", "device_id": "lamp", "attribute": "powerState",
                  "state": "ON"}, home=home)  # fmt: skip
    assert seen == ["lamp"]


# -- time ------------------------------------------------------------------------------------
def test_time_window():
    window = {"condition": "time", "after": "08:00", "before": "17:00"}
    assert holds(window, berlin(2024, 6, 21, 8, 0))  # after is inclusive
    assert holds(window, berlin(2024, 6, 21, 16, 59, 59))
    assert not holds(window, berlin(2024, 6, 21, 17, 0))  # before is exclusive
    assert not holds(window, berlin(2024, 6, 21, 7, 59, 59))


def test_time_window_wrapping_midnight():
    night = {"condition": "time", "after": "22:00", "before": "06:00"}
    assert holds(night, berlin(2024, 6, 21, 23, 0))
    assert holds(night, berlin(2024, 6, 22, 0, 30))
    assert holds(night, berlin(2024, 6, 22, 5, 59))
    assert not holds(night, berlin(2024, 6, 22, 6, 0))
    assert not holds(night, berlin(2024, 6, 21, 12, 0))
    assert holds({"condition": "time", "after": "10:00", "before": "10:00"}, NOON)  # all day
    assert holds({"condition": "time", "after": "10:00"}, NOON)
    assert not holds({"condition": "time", "before": "10:00"}, NOON)


def test_weekdays_are_the_local_day():
    assert holds({"condition": "time", "weekday": "fri"}, NOON)
    assert holds({"condition": "time", "weekday": ["sat", "fri"]}, NOON)
    assert not holds({"condition": "time", "weekday": ["sat", "sun"]}, NOON)
    # 23:30 UTC on Friday is already Saturday in Berlin
    late = to_ms(dt.datetime(2024, 6, 21, 23, 30, tzinfo=dt.UTC))
    assert holds({"condition": "time", "weekday": "sat"}, late)
    _ok, trace = evaluate(one({"condition": "time", "weekday": "sat"}), HOME, late)
    assert trace[0]["now"] == "01:30:00" and trace[0]["weekday"] == "sat"


def test_time_uses_the_wall_clock_across_dst():
    early = {"condition": "time", "before": "02:45"}
    # 2024-10-27: both passes of 02:30 are before 02:45 on the wall clock
    assert holds(early, berlin(2024, 10, 27, 2, 30, fold=0))
    assert holds(early, berlin(2024, 10, 27, 2, 30, fold=1))
    # 2024-03-31 01:59:59 CET is followed by 03:00 CEST
    assert not holds(early, berlin(2024, 3, 31, 1, 59, 59) + 1000)


# -- sun -------------------------------------------------------------------------------------
SUNSET_JUNE_21 = berlin(2024, 6, 21, 21, 33)  # about


def test_sun_after_and_before():
    after_sunset = {"condition": "sun", "after": "sunset"}
    assert not holds(after_sunset, SUNSET_JUNE_21 - 10 * 60_000)
    assert holds(after_sunset, SUNSET_JUNE_21 + 10 * 60_000)
    assert holds({"condition": "sun", "after": "sunset", "after_offset": "-01:00:00"},
                 SUNSET_JUNE_21 - 30 * 60_000)  # fmt: skip
    day = {"condition": "sun", "after": "sunrise", "before": "sunset"}
    assert holds(day, NOON)
    assert not holds(day, berlin(2024, 6, 21, 23, 0))
    assert not holds(day, berlin(2024, 6, 21, 3, 0))


def test_sun_after_sunset_before_sunrise_is_the_night():
    night = {"condition": "sun", "after": "sunset", "before": "sunrise"}
    assert holds(night, berlin(2024, 6, 21, 23, 0))
    assert holds(night, berlin(2024, 6, 21, 3, 0))
    assert not holds(night, NOON)
    _ok, trace = evaluate(one(night), HOME, NOON)
    assert "sunrise" in trace[0] and "sunset" in trace[0]


def test_sun_without_a_location_or_without_the_event_is_false():
    ok, trace = evaluate(one({"condition": "sun", "after": "sunrise"}),
                         HomeView(Place("Europe/Berlin"), STATES), NOON)  # fmt: skip
    assert not ok and "no location" in trace[0]["message"]
    polar = HomeView(Place("Arctic/Longyearbyen", 78.22, 15.65), {})
    midsummer = to_ms(dt.datetime(2024, 6, 21, 12, tzinfo=dt.UTC))
    ok, trace = evaluate(one({"condition": "sun", "before": "sunset"}), polar, midsummer)
    assert not ok and trace[0]["message"] == "no sunset today"


# -- mode ------------------------------------------------------------------------------------
def test_mode_is_the_homes_and_home_by_default():
    away = HomeView(BERLIN, STATES, mode="away")
    assert holds({"condition": "mode", "mode": "away"}, home=away)
    assert holds({"condition": "mode", "mode": ["night", "away"]}, home=away)
    assert not holds({"condition": "mode", "mode": "away"})  # HOME has no mode set: home
    ok, trace = evaluate(one({"condition": "mode", "mode": "night"}), away, NOON)
    assert not ok and trace == [
        {"path": "conditions[0]", "condition": "mode", "mode": "away", "result": False}
    ]


# -- logic -----------------------------------------------------------------------------------
TRUE = {"condition": "time", "after": "00:00"}
FALSE = {"condition": "time", "weekday": "mon"}


def test_and_or_not():
    assert holds({"condition": "and", "conditions": [TRUE, TRUE]})
    assert not holds({"condition": "and", "conditions": [TRUE, FALSE]})
    assert holds({"condition": "or", "conditions": [FALSE, TRUE]})
    assert not holds({"condition": "or", "conditions": [FALSE, FALSE]})
    assert holds({"condition": "not", "conditions": [FALSE, FALSE]})  # none holds
    assert not holds({"condition": "not", "conditions": [FALSE, TRUE]})


def test_evaluation_stops_when_the_answer_is_known_and_the_trace_says_so():
    ok, trace = evaluate(one({"condition": "or", "conditions": [FALSE, TRUE, FALSE]}), HOME, NOON)
    assert ok
    assert [(e["path"], e["result"]) for e in trace] == [
        ("conditions[0]", True),
        ("conditions[0].conditions[0]", False),
        ("conditions[0].conditions[1]", True),
    ]
    ok, trace = check(conditions(TRUE, FALSE, TRUE), HOME, NOON)
    assert not ok and [e["path"] for e in trace] == ["conditions[0]", "conditions[1]"]
    assert check((), HOME, NOON) == (True, [])


leaves = st.sampled_from([TRUE, FALSE])


@settings(max_examples=100, deadline=None)
@given(st.lists(leaves, min_size=1, max_size=5))
def test_not_is_the_negation_of_or_and_and_is_all(items):
    values = [item is TRUE for item in items]
    assert holds({"condition": "not", "conditions": items}) == (not any(values))
    assert holds({"condition": "or", "conditions": items}) == any(values)
    assert holds({"condition": "and", "conditions": items}) == all(values)
