"""domain.automation.parse / model / yamldoc / durations / home: what a document may say."""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.automation import model as m
from domain.automation.canonical import canonical
from domain.automation.durations import SpellingError, parse_duration, parse_time_of_day
from domain.automation.home import Place, PlaceError, parse_place
from domain.automation.parse import AutomationInvalid, parse, revision, validate
from domain.automation.yamldoc import YamlSyntaxError, locate, parse_yaml

quick = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

NOTIFY = [{"action": "notify", "message": "hi"}]


def doc(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "alias": "Test",
        "triggers": [{"trigger": "time", "at": "22:00"}],
        "actions": NOTIFY,
    }
    base.update(fields)
    return base


def problems(document: Any) -> dict[str, str]:
    return dict(validate(document))


FULL = {
    "alias": "Everything",
    "description": "one of each",
    "mode": "queued",
    "max": 3,
    "triggers": [
        {"trigger": "state", "device_id": "lamp", "attribute": "powerState", "to": "ON"},
        {
            "trigger": "state",
            "device_id": ["door", "back_door"],
            "attribute": "contact",
            "from": "closed",
            "to": ["open"],
            "for": {"minutes": 2},
        },
        {"trigger": "state", "device_id": "lamp"},
        {"trigger": "numeric_state", "device_id": "t1", "attribute": "temperature", "above": 25},
        {"trigger": "time", "at": ["07:30", "22:00:05"]},
        {"trigger": "time_pattern", "minutes": "/15"},
        {"trigger": "sun", "event": "sunset", "offset": "-00:30:00"},
        {"trigger": "event", "device_id": "button", "event": "press", "data": {"button": 1}},
        {"trigger": "hub", "to": "offline", "id": "hub-down"},
    ],
    "conditions": [
        {"condition": "time", "after": "22:00", "before": "06:00", "weekday": ["sat", "sun"]},
        {
            "condition": "or",
            "conditions": [
                {"condition": "state", "device_id": "lock", "attribute": "lockState",
                 "state": "LOCKED"},
                {"condition": "numeric_state", "device_id": "t1", "attribute": "temperature",
                 "below": 5},
                {"condition": "sun", "after": "sunset", "before": "sunrise",
                 "after_offset": "00:10"},
            ],
        },
        {"condition": "not", "conditions": [{"condition": "time", "weekday": "mon"}]},
    ],
    "actions": [
        {"device_id": "lamp", "capability": "ON_OFF", "command": "turnOn"},
        {"action": "command", "group_id": "downstairs", "capability": "BRIGHTNESS",
         "command": "setBrightness", "parameters": {"brightness": 40}},
        {"delay": "00:00:05"},
        {"scene": "evening"},
        {"notify": {"message": "Door open", "title": "Alert"}},
        {
            "wait_for_trigger": [
                {"trigger": "state", "device_id": "door", "attribute": "contact", "to": "closed"}
            ],
            "timeout": 60000,
            "continue_on_timeout": False,
        },
        {"condition": "state", "device_id": "lamp", "attribute": "powerState", "state": ["ON"]},
        {"action": "scene", "scene_id": "night"},
    ],
}  # fmt: skip


def test_a_full_document_parses_into_typed_items():
    a = parse(FULL)
    assert (a.alias, a.mode, a.max_runs, a.enabled) == ("Everything", "queued", 3, True)
    kinds = [type(t).__name__ for t in a.triggers]
    assert kinds == [
        "StateTrigger", "StateTrigger", "StateTrigger", "NumericStateTrigger", "TimeTrigger",
        "TimePatternTrigger", "SunTrigger", "EventTrigger", "HubTrigger",
    ]  # fmt: skip
    door = a.triggers[1]
    assert isinstance(door, m.StateTrigger)
    assert door.device_ids == ("door", "back_door") and door.for_ms == 120_000
    assert door.from_values == ("closed",) and door.to_values == ("open",)
    assert door.path == "triggers[1]" and door.id == "1"
    assert a.triggers[8].id == "hub-down"
    time = a.triggers[4]
    assert isinstance(time, m.TimeTrigger) and time.at == (7 * 3600 + 1800, 22 * 3600 + 5)
    pattern = a.triggers[5]
    assert isinstance(pattern, m.TimePatternTrigger)
    assert pattern.minutes == (0, 15, 30, 45) and pattern.seconds == (0,)
    assert pattern.hours == tuple(range(24))
    sun = a.triggers[6]
    assert isinstance(sun, m.SunTrigger) and sun.offset_ms == -1_800_000
    nested = a.conditions[1]
    assert isinstance(nested, m.LogicCondition) and nested.kind == "or"
    assert nested.conditions[2].path == "conditions[1].conditions[2]"
    wait = a.actions[5]
    assert isinstance(wait, m.WaitAction)
    assert wait.timeout_ms == 60_000 and wait.continue_on_timeout is False
    assert wait.triggers[0].path == "actions[5].wait_for_trigger[0]"
    assert isinstance(a.actions[6], m.ConditionAction)
    command = a.actions[1]
    assert isinstance(command, m.CommandAction) and command.group_id == "downstairs"
    assert command.parameters == {"brightness": 40}


def test_home_assistant_spellings():
    a = parse(
        {
            "alias": "HA",
            "initial_state": False,
            "trigger": {"platform": "state", "device_id": "lamp", "attribute": "powerState"},
            "condition": [{"condition": "time", "after": "07:00"}],
            "action": [{"delay": {"seconds": 5}}, {"notify": "hello"}],
        }
    )
    assert a.enabled is False
    assert isinstance(a.triggers[0], m.StateTrigger) and a.triggers[0].path == "trigger[0]"
    assert isinstance(a.actions[0], m.DelayAction) and a.actions[0].ms == 5000
    assert isinstance(a.actions[1], m.NotifyAction) and a.actions[1].message == "hello"
    both = doc(trigger=[{"platform": "time", "at": "07:00"}])
    assert problems(both) == {"trigger": "give triggers or trigger, not both"}


def test_the_gateway_errors_keep_their_paths():
    # the same paths tests/unit/test_gateway_api.py expects from the gateway
    got = problems(doc(triggers=[{"trigger": "numeric_state", "device_id": "lamp"}]))
    assert set(got) == {"triggers[0].attribute", "triggers[0]"}
    got = problems(doc(conditions=[{"condition": "or", "conditions": [{"condition": "x"}]}]))
    assert list(got) == ["conditions[0].conditions[0].condition"]


@pytest.mark.parametrize(
    ("trigger", "path", "says"),
    [
        ({"trigger": "time", "at": "25:00"}, "triggers[0].at", "not a time of day"),
        ({"trigger": "time", "at": "12:60"}, "triggers[0].at", "not a time of day"),
        ({"trigger": "time", "at": ["07:00", "7"]}, "triggers[0].at[1]", "HH:MM"),
        ({"trigger": "time", "at": []}, "triggers[0].at", "1 to 100"),
        ({"trigger": "sometimes"}, "triggers[0].trigger", "must be one of"),
        ({"platform": "stat", "device_id": "x"}, "triggers[0].platform", "did you mean state"),
        ({"trigger": "state", "platform": "state"}, "triggers[0].platform", "not both"),
        ({"trigger": "state", "device_id": "x", "attribute": "powerState", "for": "5 min"},
         "triggers[0].for", "HH:MM:SS"),
        ({"trigger": "state", "device_id": "x", "attribute": "powerState", "for": -1},
         "triggers[0].for", "negative"),
        ({"trigger": "state", "device_id": "x", "attribute": "powerState", "for": {"weeks": 1}},
         "triggers[0].for", "not a unit"),
        ({"trigger": "state", "device_id": "x", "attribute": "powerState", "to": "on"},
         "triggers[0].to", "did you mean ON"),
        ({"trigger": "state", "device_id": "x", "to": "ON"}, "triggers[0].attribute", "from/to"),
        ({"trigger": "state", "device_id": "x", "attribute": "brightnes"},
         "triggers[0].attribute", "did you mean brightness"),
        ({"trigger": "state", "device_id": "x", "attribute": "color.hu"},
         "triggers[0].attribute", "no field"),
        ({"trigger": "state", "device_id": "a/b"}, "triggers[0].device_id", "+, # or /"),
        ({"trigger": "state", "device_id": "x", "devce_id": "y"}, "triggers[0].devce_id",
         "did you mean device_id"),
        ({"trigger": "numeric_state", "device_id": "x", "attribute": "powerState", "above": 1},
         "triggers[0].attribute", "not a number"),
        ({"trigger": "numeric_state", "device_id": "x", "attribute": "temperature", "above": 30,
          "below": 20}, "triggers[0]", "must be less than below"),
        ({"trigger": "numeric_state", "device_id": "x", "attribute": "temperature",
          "above": "warm"}, "triggers[0].above", "must be a number"),
        ({"trigger": "time_pattern"}, "triggers[0]", "needs hours, minutes or seconds"),
        ({"trigger": "time_pattern", "minutes": "/0"}, "triggers[0].minutes", "step"),
        ({"trigger": "time_pattern", "minutes": 60}, "triggers[0].minutes", "0 to 59"),
        ({"trigger": "time_pattern", "hours": "24"}, "triggers[0].hours", "0 to 23"),
        ({"trigger": "time_pattern", "seconds": "5s"}, "triggers[0].seconds", "/N"),
        ({"trigger": "sun", "event": "noon"}, "triggers[0].event", "sunrise or sunset"),
        ({"trigger": "sun", "event": "sunset", "offset": "-1 hour"}, "triggers[0].offset",
         "with - in front"),
        ({"trigger": "event", "event": ""}, "triggers[0].event", "event name"),
        ({"trigger": "event", "event": "press", "data": [1]}, "triggers[0].data", "object"),
        ({"trigger": "hub", "to": "away"}, "triggers[0].to", "online or offline"),
        ({"trigger": "hub", "id": ""}, "triggers[0].id", "1-200"),
        ("state", "triggers[0]", "must be an object"),
    ],
)  # fmt: skip
def test_bad_triggers_are_refused_with_their_path(trigger, path, says):
    got = problems(doc(triggers=[trigger]))
    assert path in got, got
    assert says in got[path]


@pytest.mark.parametrize(
    ("condition", "path", "says"),
    [
        ({"condition": "time", "after": "24:00"}, "conditions[0].after", "not a time of day"),
        ({"condition": "time", "weekday": "mo"}, "conditions[0].weekday", "not a weekday"),
        ({"condition": "time"}, "conditions[0]", "after, before or weekday"),
        ({"condition": "sun"}, "conditions[0]", "after or before"),
        ({"condition": "sun", "after": "dusk"}, "conditions[0].after", "sunrise or sunset"),
        ({"condition": "state", "device_id": "x", "attribute": "contact"}, "conditions[0].state",
         "required"),
        ({"condition": "state", "device_id": "x", "attribute": "contact", "state": "ajar"},
         "conditions[0].state", "not one of"),
        ({"condition": "state", "device_id": "x", "attribute": "contact", "state": None},
         "conditions[0].state", "a value"),
        ({"condition": "and"}, "conditions[0].conditions", "required"),
        ({"condition": "and", "conditions": []}, "conditions[0].conditions", "at least one"),
        ({"condition": "not", "conditions": [{"condition": "time", "after": "x"}]},
         "conditions[0].conditions[0].after", "HH:MM"),
        ({"condition": "numeric_state", "device_id": "x", "attribute": "temperature"},
         "conditions[0]", "above or below"),
    ],
)  # fmt: skip
def test_bad_conditions_are_refused_with_their_path(condition, path, says):
    got = problems(doc(conditions=[condition]))
    assert path in got, got
    assert says in got[path]


def test_conditions_nest_only_so_deep():
    inner: dict[str, Any] = {"condition": "time", "after": "07:00"}
    for _ in range(12):
        inner = {"condition": "and", "conditions": [inner]}
    got = problems(doc(conditions=[inner]))
    assert any("nest more than" in msg for msg in got.values()), got


@pytest.mark.parametrize(
    ("action", "path", "says"),
    [
        ({"notify": "x", "delay": 5}, "actions[0]", "more than one"),
        ({"message": "x"}, "actions[0]", "must say what it does"),
        ({"action": "dance"}, "actions[0].action", "must be one of"),
        ({"action": "command", "capability": "ON_OFF", "command": "turnOn"}, "actions[0]",
         "exactly one of device_id, group_id"),
        ({"device_id": "l", "group_id": "g", "capability": "ON_OFF", "command": "turnOn"},
         "actions[0]", "exactly one"),
        ({"device_id": "l", "capability": "ON_OF", "command": "turnOn"},
         "actions[0].capability", "did you mean ON_OFF"),
        ({"device_id": "l", "capability": "ON_OFF", "command": "switchOn"},
         "actions[0].command", "try turnOn"),
        ({"device_id": "l", "capability": "BRIGHTNESS", "command": "setBrightness",
          "parameters": {"brightness": 300}}, "actions[0].parameters.brightness", "out of range"),
        ({"device_id": "l", "capability": "BRIGHTNESS", "command": "setBrightness"},
         "actions[0].parameters.brightness", "needs parameter"),
        ({"command": {"device_id": "l", "capability": "ON_OFF"}}, "actions[0].command.command",
         "required"),
        ({"action": "scene"}, "actions[0].scene_id", "required"),
        ({"scene": "bad id!"}, "actions[0].scene", "not an id"),
        ({"delay": "soon"}, "actions[0].delay", "HH:MM:SS"),
        ({"delay": 1.5}, "actions[0].delay", "whole milliseconds"),
        ({"delay": "9000:00:00"}, "actions[0].delay", "at most 366 days"),
        ({"action": "delay"}, "actions[0].delay", "required"),
        ({"action": "notify"}, "actions[0].message", "required"),
        ({"notify": {"message": ""}}, "actions[0].notify.message", "non-empty"),
        ({"notify": {"message": "x", "level": 1}}, "actions[0].notify.level", "not a field"),
        ({"wait_for_trigger": []}, "actions[0].wait_for_trigger", "list of triggers"),
        ({"wait_for_trigger": [{"trigger": "time", "at": "7"}]},
         "actions[0].wait_for_trigger[0].at", "HH:MM"),
        ({"wait_for_trigger": [{"trigger": "hub"}], "timeout": "x"}, "actions[0].timeout",
         "duration"),
        ({"condition": "time", "after": "99:00"}, "actions[0].after", "not a time of day"),
        ({"delay": 5, "enabled": "no"}, "actions[0].enabled", "true or false"),
    ],
)  # fmt: skip
def test_bad_actions_are_refused_with_their_path(action, path, says):
    got = problems(doc(actions=[action]))
    assert path in got, got
    assert says in got[path]


@pytest.mark.parametrize(
    ("fields", "path"),
    [
        ({"mode": "sometimes"}, "mode"),
        ({"max": 0}, "max"),
        ({"max": True}, "max"),
        ({"max_exceeded": "loud"}, "max_exceeded"),
        ({"alias": 5}, "alias"),
        ({"enabled": "yes"}, "enabled"),
        ({"triggers": []}, "triggers"),
        ({"triggers": "time"}, "triggers"),
        ({"actions": [{"delay": 1}] * 101}, "actions"),
        ({"variables": {}}, "variables"),
    ],
)
def test_bad_top_level_fields(fields, path):
    assert path in problems(doc(**fields))


def test_not_a_document():
    assert validate([1]) == [
        ("", "an automation is an object (alias, triggers, actions), got a list")
    ]
    with pytest.raises(AutomationInvalid) as caught:
        parse("automation")
    assert caught.value.problems[0][0] == ""


def test_every_problem_is_reported_at_once():
    got = problems(
        doc(
            mode="x",
            triggers=[{"trigger": "time", "at": "25:00"}, {"trigger": "nope"}],
            actions=[{"delay": "later"}],
        )
    )
    assert set(got) == {"mode", "triggers[0].at", "triggers[1].trigger", "actions[0].delay"}


def test_disabled_items_are_left_out_but_keep_their_paths():
    a = parse(
        doc(
            triggers=[
                {"trigger": "time", "at": "07:00", "enabled": False},
                {"trigger": "time", "at": "08:00"},
            ],
            actions=[{"delay": 5, "enabled": False}, {"notify": "x"}],
        )
    )
    assert [t.path for t in a.triggers] == ["triggers[1]"]
    assert [x.path for x in a.actions] == ["actions[1]"]


def test_time_pattern_defaults_follow_home_assistant():
    def pattern(**f: Any) -> m.TimePatternTrigger:
        t = parse(doc(triggers=[{"trigger": "time_pattern", **f}])).triggers[0]
        assert isinstance(t, m.TimePatternTrigger)
        return t

    hours_only = pattern(hours=5)
    assert (hours_only.hours, hours_only.minutes, hours_only.seconds) == ((5,), (0,), (0,))
    seconds_only = pattern(seconds="/20")
    assert seconds_only.hours == tuple(range(24)) and seconds_only.minutes == tuple(range(60))
    assert seconds_only.seconds == (0, 20, 40)
    assert pattern(minutes="*").minutes == tuple(range(60))
    assert pattern(minutes="7").minutes == (7,)
    assert pattern(minutes="/7").minutes == (0, 7, 14, 21, 28, 35, 42, 49, 56)


def test_numeric_bounds_accept_numeric_text_as_home_assistant_does():
    t = parse(
        doc(triggers=[{"trigger": "numeric_state", "device_id": "t", "attribute": "temperature",
                       "above": "20.5"}])
    ).triggers[0]  # fmt: skip
    assert isinstance(t, m.NumericStateTrigger) and t.above == 20.5


def test_references_list_every_device_group_and_scene_with_its_path():
    refs = [(r.path, r.kind, r.id) for r in m.references(parse(FULL))]
    assert refs == [
        ("triggers[0].device_id", "device", "lamp"),
        ("triggers[1].device_id[0]", "device", "door"),
        ("triggers[1].device_id[1]", "device", "back_door"),
        ("triggers[2].device_id", "device", "lamp"),
        ("triggers[3].device_id", "device", "t1"),
        ("triggers[7].device_id", "device", "button"),
        ("conditions[1].conditions[0].device_id", "device", "lock"),
        ("conditions[1].conditions[1].device_id", "device", "t1"),
        ("actions[0].device_id", "device", "lamp"),
        ("actions[1].group_id", "group", "downstairs"),
        ("actions[3].scene_id", "scene", "evening"),
        ("actions[5].wait_for_trigger[0].device_id", "device", "door"),
        ("actions[6].device_id", "device", "lamp"),
        ("actions[7].scene_id", "scene", "night"),
    ]


def test_revision_is_about_content_not_storage():
    stored = {**FULL, "automation_id": "a1", "updated_at": 123}
    assert parse(stored).revision == parse(FULL).revision == revision(FULL)
    changed = copy.deepcopy(FULL)
    changed["actions"][2]["delay"] = "00:00:06"
    assert parse(changed).revision != parse(FULL).revision


# -- durations and times of day -------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "ms"),
    [
        ("00:00:05", 5000),
        ("01:30", 5_400_000),  # HH:MM, as Home Assistant reads it
        ("36:00:00", 36 * 3_600_000),
        ("00:00:01.5", 1500),
        (2500, 2500),
        (2500.0, 2500),
        ({"minutes": 1, "seconds": 30}, 90_000),
        ({"milliseconds": 250}, 250),
        ({"days": 1}, 86_400_000),
    ],
)
def test_durations(value, ms):
    assert parse_duration(value) == ms


def test_signed_durations_for_offsets():
    assert parse_duration("-00:30:00", signed=True) == -1_800_000
    assert parse_duration({"minutes": -5}, signed=True) == -300_000
    with pytest.raises(SpellingError):
        parse_duration("-00:30:00")


@pytest.mark.parametrize(
    "value", ["", "5", "1:2:3:4", "00:60", "00:00:60", True, None, [], {}, float("nan"), 1e30]
)
def test_bad_durations(value):
    with pytest.raises(SpellingError):
        parse_duration(value)


def test_times_of_day():
    assert parse_time_of_day("7:05") == 7 * 3600 + 300
    assert parse_time_of_day("23:59:59") == 86_399
    for bad in ("24:00", "12:5", "noon", "12:00:60", "\uff11\uff12:00", 1200):
        with pytest.raises(SpellingError):
            parse_time_of_day(bad)


# -- the home's place -----------------------------------------------------------------------
def test_place_validation():
    assert parse_place({"time_zone": "Europe/Berlin", "latitude": 52.5, "longitude": 13.4}).located
    assert not parse_place({"time_zone": "America/New_York"}).located
    for bad, path in [
        ({"time_zone": "Mars/Olympus_Mons"}, "time_zone"),
        ({"time_zone": "../../etc/passwd"}, "time_zone"),
        ({"time_zone": "/usr/share/zoneinfo/UTC"}, "time_zone"),
        ({"time_zone": 5}, "time_zone"),
        ({"latitude": 91, "longitude": 0}, "latitude"),
        ({"latitude": 10}, ""),
        ({"latitude": 0, "longitude": float("inf")}, "longitude"),
        ({"tz": "UTC"}, "tz"),
    ]:
        with pytest.raises(PlaceError) as caught:
            parse_place(bad)
        assert path in dict(caught.value.problems), (bad, caught.value.problems)
    with pytest.raises(PlaceError):
        Place(time_zone="Nowhere/Special")


# -- YAML ------------------------------------------------------------------------------------
HA_YAML = """
- id: '1700000000000'
  alias: Porch light at sunset
  mode: restart
  trigger:
    - platform: sun
      event: sunset
      offset: "-00:30:00"
    - platform: time
      at: 22:00
  condition:
    - condition: time
      after: 7:30
      weekday: [mon, tue]
  action:
    - device_id: porch
      capability: ON_OFF
      command: turnOn
    - delay: 00:10:00
    - notify: Lights on
"""


def test_yaml_paste_of_a_home_assistant_automation():
    entry = "\n".join(line[2:] for line in HA_YAML.strip().splitlines())  # one list item
    document = parse_yaml(entry)
    # 22:00 and 7:30 stay text (YAML 1.1 would make them the base-60 numbers 1320 and 450)
    assert document["trigger"][1]["at"] == "22:00"
    assert document["condition"][0]["after"] == "7:30"
    a = parse(document)
    assert a.mode == "restart" and isinstance(a.triggers[0], m.SunTrigger)
    assert isinstance(a.actions[1], m.DelayAction) and a.actions[1].ms == 600_000


def test_canonical_spelling_means_the_same_automation():
    entry = "\n".join(line[2:] for line in HA_YAML.strip().splitlines())
    document = {**parse_yaml(entry), "initial_state": False}
    plain = canonical(document)
    assert list(plain) == ["id", "alias", "mode", "triggers", "conditions", "actions", "enabled"]
    assert [t["trigger"] for t in plain["triggers"]] == ["sun", "time"]
    assert all("platform" not in t for t in plain["triggers"])

    # the same automation, but for where each item stands (triggers[0], not trigger[0])
    def meaning(a: m.Automation) -> str:
        return re.sub(r"path='[^']*'", "", repr(dataclasses.replace(a, revision="")))

    assert meaning(parse(plain)) == meaning(parse(document))
    assert canonical(plain) == plain
    one = canonical({"alias": "a", "trigger": {"platform": "hub"}, "action": {"delay": 1}})
    assert one == {"alias": "a", "triggers": [{"trigger": "hub"}], "actions": [{"delay": 1}]}


@pytest.mark.parametrize(
    ("text", "path", "says"),
    [
        (HA_YAML, "", "paste one of them"),
        ("just text", "", "must be a mapping"),
        ("", "", "must be a mapping"),
        ("a: [", "", "not YAML"),
        ("a: &x [1]\nb: *x", "", "aliases"),
        ("a: .nan", "a", "NaN"),
        ("1: x", "1", "key must be text"),
        ("on: x", "True", "quote on/off"),
        ("a: !!binary aGk=", "a", "no JSON form"),
        ("a: !!python/object/apply:os.system [ls]", "", "not YAML"),
        ('a: "\\0"', "", "NUL"),
    ],
)
def test_yaml_refusals(text, path, says):
    with pytest.raises(AutomationInvalid) as caught:
        parse_yaml(text)
    got = dict(caught.value.problems)
    assert path in got and says in got[path], got


def test_mode_conditions_name_the_homes_modes():
    assert problems(doc(conditions=[{"condition": "mode", "mode": ["away", "night"]}])) == {}
    got = problems(doc(conditions=[{"condition": "mode", "mode": "vacation"}]))
    assert "home, away, night" in got["conditions[0].mode"]
    got = problems(doc(conditions=[{"condition": "mode"}]))
    assert got == {"conditions[0].mode": "is required for a mode condition"}
    got = problems(doc(conditions=[{"condition": "mode", "mode": "awya"}]))
    assert "away" in got["conditions[0].mode"]  # did you mean


@pytest.mark.parametrize(
    ("text", "line", "column", "says"),
    [
        ("alias: x\ntriggers:\n  - at: [22:00\nactions: []", 4, 8, "flow sequence at line 3"),
        ("alias: x\n alias: y", 2, 7, "mapping values are not allowed"),
        ("a: 1\nb: &x 2\nc: *x", 3, 4, "aliases"),
        ("alias: a\nmode: single\nalias: b", 3, 1, "'alias' is given twice"),
    ],
)
def test_yaml_syntax_errors_say_where(text, line, column, says):
    with pytest.raises(YamlSyntaxError) as caught:
        parse_yaml(text)
    assert (caught.value.line, caught.value.column) == (line, column)
    assert says in caught.value.message
    [(path, message)] = caught.value.problems  # still an AutomationInvalid, path ""
    assert path == "" and message.startswith(f"not YAML: line {line}, column {column}: ")


def test_locate_finds_the_line_of_a_field_path():
    text = "\n".join(
        [
            "alias: Porch",  # 1
            "trigger:",  # 2
            "  platform: time",  # 3
            "  at: 25:00",  # 4
            "actions:",  # 5
            "  - device_id: porch",  # 6
            "    capability: BRIGHTNESS",  # 7
            "    command: setBrightness",  # 8
            "    parameters: {brightness: 300}",  # 9
            "  - delay:",  # 10
            "      minutes: x",  # 11
        ]
    )
    assert locate(text, "alias") == 1
    assert locate(text, "trigger[0].at") == 4  # a single trigger counts as a list of one
    assert locate(text, "actions[0].parameters.brightness") == 9
    assert locate(text, "actions[1].delay.minutes") == 11
    assert locate(text, "actions[0].missing") == 6  # the nearest enclosing item
    assert locate(text, "") == 1
    assert locate("a: [", "a") is None


def test_yaml_keeps_ordinary_numbers_and_dates_as_text():
    got = parse_yaml("a: 1_000\nb: 017\nc: 1.5\nd: 2024-05-01\ne: -3\nf: 0x1F")
    assert got == {"a": 1000, "b": 15, "c": 1.5, "d": "2024-05-01", "e": -3, "f": 31}


# -- properties ------------------------------------------------------------------------------
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=30,
)  # fmt: skip


@quick
@given(json_values)
def test_parse_of_random_json_raises_only_automation_invalid(value):
    try:
        parse(value)
    except AutomationInvalid as exc:
        assert exc.problems and all(
            isinstance(p, str) and isinstance(msg, str) for p, msg in exc.problems
        )


def _mutations() -> st.SearchStrategy[dict[str, Any]]:
    """The full document with one value somewhere replaced by random JSON."""

    def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        out = [prefix]
        if isinstance(value, dict):
            for k, v in value.items():
                out += paths(v, (*prefix, k))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                out += paths(v, (*prefix, i))
        return out

    all_paths = paths(FULL)[1:]

    def mutate(path: tuple[Any, ...], replacement: Any) -> dict[str, Any]:
        document = copy.deepcopy(FULL)
        node: Any = document
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = replacement
        return document

    return st.builds(mutate, st.sampled_from(all_paths), json_values)


@quick
@given(_mutations())
def test_parse_of_a_mutated_document_raises_only_automation_invalid(document):
    try:
        parse(document)
    except AutomationInvalid as exc:
        assert exc.problems


@quick
@given(st.text(max_size=200))
def test_parse_yaml_of_random_text_raises_only_automation_invalid(text):
    try:
        document = parse_yaml(text)
    except AutomationInvalid:
        return
    assert isinstance(document, dict)
    json.dumps(document, allow_nan=False)  # it has a JSON form
