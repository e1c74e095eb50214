"""Group commands: which members take one, the one status of several, members' ids."""

from __future__ import annotations

import pytest

from domain.groups import child_command_id, plan_group
from domain.lifecycle import aggregate

CAPS = {"lamp": ["ON_OFF", "BRIGHTNESS"], "plug": ["ON_OFF"], "lock": ["LOCK"]}


def test_members_that_cannot_take_the_command_are_skipped_with_a_reason():
    plan = plan_group(
        ["lamp", "plug", "ghost", "lamp"],
        CAPS.get,
        "BRIGHTNESS",
        "setBrightness",
        {"brightness": 5},
    )
    assert plan.targets == ("lamp",)
    assert [m for m, _why in plan.skipped] == ["plug", "ghost"]
    assert "BRIGHTNESS" in dict(plan.skipped)["plug"]
    assert dict(plan.skipped)["ghost"] == "no longer in the home"
    assert plan.first_rejection is not None and plan.first_rejection.path == "capability"


def test_bad_parameters_skip_every_member():
    plan = plan_group(["lamp"], CAPS.get, "BRIGHTNESS", "setBrightness", {"brightness": 300})
    assert plan.targets == () and plan.first_rejection is not None
    assert plan.first_rejection.path == "brightness"


def test_member_ids_derive_from_the_parent():
    a = child_command_id("p1", "lamp")
    assert a == child_command_id("p1", "lamp") != child_command_id("p2", "lamp")
    assert child_command_id("run", "0", "lamp") != child_command_id("run", "1", "lamp")


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([], "FAILED"),
        (["COMPLETED", "COMPLETED"], "COMPLETED"),
        (["COMPLETED", "SENT", "ACKNOWLEDGED"], "SENT"),
        ([None, "SENT"], "PENDING"),
        (["COMPLETED", "FAILED", "TIMEOUT"], "FAILED"),
        (["COMPLETED", "TIMEOUT"], "TIMEOUT"),
    ],
)
def test_aggregate(statuses, expected):
    assert aggregate(statuses) == expected
