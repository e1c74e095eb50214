"""Scene conditions (domain.scene_conditions over the automation engine's evaluator),
steps and run status."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from domain.automation.home import HomeView, Place
from domain.scene_conditions import conditions_hold, read_conditions
from domain.scenes import action_result, run_status, steps

STATES = {
    "lamp": {"powerState": "ON", "brightness": 40, "color": {"hue": 10}},
    "temp": {"temperature": 21.5},
    "bare": {},
}
BERLIN = HomeView(Place("Europe/Berlin", 52.52, 13.40), STATES.get)
# 2026-01-05 was a Monday; 22:30 in Berlin (UTC+1 in winter), after sunset.
NIGHT = int(dt.datetime(2026, 1, 5, 21, 30, tzinfo=dt.UTC).timestamp() * 1000)
NOON = int(dt.datetime(2026, 1, 5, 11, 0, tzinfo=dt.UTC).timestamp() * 1000)


def holds(*conditions: dict[str, Any], at: int = NIGHT, home: HomeView = BERLIN) -> bool:
    return conditions_hold(list(conditions), home, at)[0]


def state(**kw: Any) -> dict[str, Any]:
    return {"condition": "state", "device_id": "lamp", "attribute": "powerState", **kw}


def test_state_and_numeric_state():
    assert holds(state(state="ON")) and holds(state(state=["OFF", "ON"]))
    assert not holds(state(state="OFF"))
    assert holds(state(attribute="color.hue", state=10))
    num = {"condition": "numeric_state", "device_id": "temp", "attribute": "temperature"}
    assert holds({**num, "above": 21, "below": 22})
    assert not holds({**num, "above": 21.5})


def test_only_after_sunset_and_times_in_the_homes_zone():
    after_sunset = {"condition": "sun", "after": "sunset"}
    assert holds(after_sunset) and not holds(after_sunset, at=NOON)
    nowhere = HomeView(Place("Europe/Berlin"), STATES.get)
    held, why = conditions_hold([after_sunset], nowhere, NIGHT)
    assert not held and "no location" in why
    assert holds({"condition": "time", "after": "22:00", "before": "06:00"})
    assert not holds({"condition": "time", "after": "22:00"}, home=HomeView(Place(), STATES.get))
    assert holds({"condition": "time", "weekday": ["mon", "tue"]})


@pytest.mark.parametrize(
    ("condition", "why"),
    [
        (state(device_id="ghost", state="ON"), "ghost: None"),
        (state(device_id="bare", state="ON"), "bare: None"),
        (state(state="OFF"), "lamp: 'ON'"),
        ({"condition": "time", "after": "06:00", "before": "22:00"}, "it is 22:30:00, mon"),
    ],
)
def test_what_does_not_hold_says_which_and_why(condition, why):
    held, reason = conditions_hold([condition], BERLIN, NIGHT)
    assert not held and reason.startswith("conditions[0]: ") and why in reason, reason


def test_and_or_not():
    on, off = state(state="ON"), state(state="OFF")
    assert holds({"condition": "or", "conditions": [off, on]})
    assert not holds({"condition": "and", "conditions": [on, off]})
    assert holds({"condition": "not", "conditions": [off]})
    assert holds() and not holds(on, off)


def test_a_bad_condition_is_a_problem_with_its_path_and_never_holds():
    _conditions, problems = read_conditions([{"condition": "sometimes"}], "actions[2].conditions")
    assert problems[0][0] == "actions[2].conditions[0].condition"
    held, why = conditions_hold([{"condition": "sometimes"}], BERLIN, NIGHT)
    assert not held and why.startswith("conditions[0].condition")
    assert read_conditions(None) == ([], [])


def test_steps_group_actions_due_at_the_same_time():
    actions = [{}, {"delay_ms": 0}, {"delay_ms": 500}, {"delay_ms": 0}, {"delay_ms": 250}]
    assert steps(actions) == [(0, (0, 1)), (500, (2, 3)), (750, (4,))]
    assert steps([{"delay_ms": 100}]) == [(100, (0,))]


def test_results_and_status():
    assert action_result(["COMPLETED", "COMPLETED"]) == "succeeded"
    assert action_result(["COMPLETED", "SENT"]) is None
    assert action_result(["COMPLETED", "TIMEOUT"]) == "failed"
    assert action_result([]) == "failed"
    assert [run_status(2, 0), run_status(1, 1), run_status(0, 1), run_status(0, 0)] == [
        "COMPLETED", "PARTIAL", "FAILED", "COMPLETED",
    ]  # fmt: skip
