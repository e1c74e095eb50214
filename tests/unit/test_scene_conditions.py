"""Scene conditions (the stand-in evaluator behind domain.scene_conditions) and steps."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import pytest

from domain.scene_conditions import conditions_hold
from domain.scenes import action_result, run_status, steps


@dataclass
class Facts:
    states: dict[str, dict[str, Any]] = field(default_factory=dict)
    time_zone: str = "Europe/Berlin"

    def reported(self, device_id: str) -> dict[str, Any] | None:
        return self.states.get(device_id)


FACTS = Facts({"lamp": {"powerState": "ON", "brightness": 40, "color": {"hue": 10}},
               "temp": {"temperature": 21.5}, "bare": {}})  # fmt: skip
# 2026-01-05 was a Monday; 22:30 in Berlin (UTC+1 in winter).
NIGHT = int(dt.datetime(2026, 1, 5, 21, 30, tzinfo=dt.UTC).timestamp() * 1000)


def holds(*conditions: dict[str, Any], at: int = NIGHT) -> bool:
    return conditions_hold(list(conditions), FACTS, at)[0]


def state(**kw: Any) -> dict[str, Any]:
    return {"condition": "state", "device_id": "lamp", "attribute": "powerState", **kw}


def test_state_and_numeric_state():
    assert holds(state(state="ON")) and holds(state(state=["OFF", "ON"]))
    assert not holds(state(state="OFF"))
    assert holds(state(attribute="color.hue", state=10))
    assert not holds(state(attribute="brightness", state=True))  # a number is not a boolean
    num = {"condition": "numeric_state", "device_id": "temp", "attribute": "temperature"}
    assert holds({**num, "above": 21, "below": 22})
    assert not holds({**num, "above": 21.5})
    assert not holds({**num, "device_id": "lamp", "attribute": "powerState", "above": 1})


@pytest.mark.parametrize(
    ("condition", "why"),
    [
        (state(device_id="ghost", state="ON"), "not in the home"),
        (state(device_id="bare", state="ON"), "reports no powerState"),
        ({"condition": "sun", "after": "sunset"}, "not evaluated yet"),
        (state(state="OFF"), "is 'ON', not 'OFF'"),
    ],
)
def test_what_cannot_be_decided_does_not_hold_and_says_why(condition, why):
    held, reason = conditions_hold([condition], FACTS, NIGHT)
    assert not held and why in reason and reason.startswith("conditions[0]")


def test_time_in_the_homes_zone_wrapping_midnight_and_weekdays():
    assert holds({"condition": "time", "after": "22:00"})
    assert not holds({"condition": "time", "before": "22:00"})
    assert holds({"condition": "time", "after": "22:00", "before": "06:00"})
    assert not holds({"condition": "time", "after": "06:00", "before": "22:00"})
    assert holds({"condition": "time", "weekday": ["mon", "tue"]})
    assert not holds({"condition": "time", "weekday": "sat"})
    assert not holds({"condition": "time", "after": "25:00"})
    utc = Facts(FACTS.states, "UTC")
    assert not conditions_hold([{"condition": "time", "after": "22:00"}], utc, NIGHT)[0]


def test_and_or_not():
    on, off = state(state="ON"), state(state="OFF")
    assert holds({"condition": "or", "conditions": [off, on]})
    assert not holds({"condition": "and", "conditions": [on, off]})
    assert holds({"condition": "not", "conditions": [off]})
    assert not holds({"condition": "not", "conditions": [off, on]})
    assert holds() and not holds(on, off)


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
