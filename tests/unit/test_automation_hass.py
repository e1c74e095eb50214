"""Home Assistant entity ids and service calls -> the contract's automation document
(domain.automation.hass): pastes from automations.yaml with only their ids changed become
automations ``parse`` accepts and that mean the same thing."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.automation import model as m
from domain.automation.hass import Device, translate, uses_hass_spelling
from domain.automation.parse import AutomationInvalid, parse
from domain.automation.yamldoc import parse_yaml

DEVICES = {
    "hall-pir": Device(("MOTION_SENSOR", "BATTERY"), "sensor.motion", "hall"),
    "hall": Device(("ON_OFF", "BRIGHTNESS"), "light.dimmer", "hall"),
    "hall-lamp": Device(("ON_OFF", "BRIGHTNESS", "COLOR_CONTROL"), "light.color", "hall"),
    "hall-plug": Device(("ON_OFF",), "switch.plug", "hall"),
    "front-door": Device(("CONTACT_SENSOR", "BATTERY"), "sensor.contact", "hall"),
    "front-lock": Device(("LOCK", "BATTERY"), "lock", "hall"),
    "climate": Device(("TEMPERATURE_SENSOR", "HUMIDITY_SENSOR"), "sensor.climate", "bedroom"),
    "thermostat": Device(("THERMOSTAT", "TEMPERATURE_SENSOR"), "thermostat", "bedroom"),
    "blinds": Device(("POSITION",), "blinds", "bedroom"),
    "light.odd": Device(("ON_OFF",), "light.switch", "attic"),
}

# Home Assistant's own example, as its UI editor writes it (2024.10+ spelling), with only
# the entity ids' object part changed to this home's device ids.
MOTION_LIGHT = """\
alias: Hall light on motion
mode: restart
triggers:
  - trigger: state
    entity_id: binary_sensor.hall-pir
    from: "off"
    to: "on"
conditions:
  - condition: state
    entity_id: lock.front-lock
    state: unlocked
actions:
  - action: light.turn_on
    target:
      entity_id: light.hall
    data:
      brightness_pct: 60
      transition: 2
  - wait_for_trigger:
      - trigger: state
        entity_id: binary_sensor.hall-pir
        to: "off"
        for:
          minutes: 2
    timeout: 600
  - action: light.turn_off
    target:
      entity_id: light.hall
"""


def run(doc: dict[str, Any]) -> m.Automation:
    out, problems = translate(doc, DEVICES)
    assert problems == []
    return parse(out)


def test_the_motion_light_paste_means_what_it_meant() -> None:
    doc = parse_yaml(MOTION_LIGHT)
    assert uses_hass_spelling(doc)
    automation = run(doc)
    (trigger,) = automation.triggers
    assert isinstance(trigger, m.StateTrigger)
    assert trigger.device_ids == ("hall-pir",)
    assert (trigger.attribute, trigger.from_values, trigger.to_values) == (
        "motion",
        (False,),
        (True,),
    )
    (condition,) = automation.conditions
    assert isinstance(condition, m.StateCondition)
    assert (condition.attribute, condition.states) == ("lockState", ("UNLOCKED",))
    on, dim, wait, off = automation.actions
    assert isinstance(on, m.CommandAction) and isinstance(dim, m.CommandAction)
    assert (on.device_id, on.capability, on.command) == ("hall", "ON_OFF", "turnOn")
    assert (dim.command, dim.parameters) == ("setBrightness", {"brightness": 60})
    assert isinstance(wait, m.WaitAction)
    assert wait.timeout_ms == 600_000  # Home Assistant's bare number: seconds
    assert wait.triggers[0].to_values == (False,)  # type: ignore[attr-defined]
    assert isinstance(off, m.CommandAction) and off.command == "turnOff"


def test_the_older_spelling_with_service_and_platform() -> None:
    doc = {
        "alias": "Door opened",
        "trigger": [{"platform": "state", "entity_id": "front-door", "to": "on", "for": 5}],
        "action": [
            {"service": "notify.mobile_app_phone", "data": {"message": "Door", "title": "Hi"}},
            {"delay": 3},
            {"service": "lock.lock", "entity_id": "lock.front-lock"},
        ],
    }
    automation = run(doc)
    trigger = automation.triggers[0]
    assert isinstance(trigger, m.StateTrigger)
    assert (trigger.attribute, trigger.to_values, trigger.for_ms) == ("contact", ("open",), 5000)
    notify, delay, lock = automation.actions
    assert isinstance(notify, m.NotifyAction) and (notify.message, notify.title) == ("Door", "Hi")
    assert isinstance(delay, m.DelayAction) and delay.ms == 3000
    assert isinstance(lock, m.CommandAction) and (lock.capability, lock.command) == ("LOCK", "lock")


def test_numeric_state_reads_the_one_sensor_number_or_asks() -> None:
    doc = {
        "alias": "Battery low",
        "triggers": [{"trigger": "numeric_state", "entity_id": "sensor.hall-pir", "below": 15}],
        "actions": [
            {
                "action": "climate.set_temperature",
                "target": {"entity_id": "thermostat"},
                "data": {"temperature": 19, "hvac_mode": "heat"},
            }
        ],
    }
    automation = run(doc)
    assert automation.triggers[0].attribute == "battery"  # type: ignore[attr-defined]
    (action,) = automation.actions
    assert isinstance(action, m.CommandAction)
    assert action.parameters == {"temperature": 19, "mode": "heat"}
    # a climate sensor measures two numbers: which one?
    doc["triggers"] = [{"trigger": "numeric_state", "entity_id": "sensor.climate", "above": 25}]
    _, problems = translate(doc, DEVICES)
    assert problems[0][0] == "triggers[0].attribute"
    assert "temperature, humidity" in problems[0][1]


def test_home_assistant_attributes_and_brightness_scale() -> None:
    doc = {
        "alias": "Bright",
        "triggers": [
            {
                "trigger": "numeric_state",
                "entity_id": "light.hall",
                "attribute": "brightness",
                "above": 127.5,
            },
            {"trigger": "state", "entity_id": "climate.thermostat", "attribute": "temperature"},
        ],
        "actions": [
            {
                "action": "light.turn_on",
                "target": {"entity_id": "hall-lamp"},
                "data": {"brightness": 255, "rgb_color": [255, 0, 0], "color_temp": 250},
            }
        ],
    }
    automation = run(doc)
    bright, setpoint = automation.triggers
    assert bright.attribute == "brightness" and bright.above == 50  # type: ignore[attr-defined]
    assert setpoint.attribute == "targetTemperature"  # type: ignore[attr-defined]
    commands = [(a.command, a.parameters) for a in automation.actions]  # type: ignore[attr-defined]
    assert commands == [
        ("turnOn", {}),
        ("setBrightness", {"brightness": 100}),
        ("setColorTemperature", {"kelvin": 4000}),
        ("setColor", {"hue": 0.0, "saturation": 100.0}),
    ]


def test_an_area_target_takes_the_devices_there_that_can() -> None:
    doc = {
        "alias": "Hall off",
        "triggers": [{"trigger": "time", "at": "23:00"}],
        "actions": [
            {"action": "light.turn_off", "target": {"area_id": "hall"}},
            {"action": "cover.close_cover", "target": {"area_id": "bedroom"}},
            {"action": "scene.turn_on", "target": {"entity_id": "scene.good_night"}},
        ],
    }
    automation = run(doc)
    targets = [(a.device_id, a.command) for a in automation.actions[:-1]]  # type: ignore[attr-defined]
    # lights only (not the plug, which is a switch), then the blinds
    assert targets == [("hall", "turnOff"), ("hall-lamp", "turnOff"), ("blinds", "close")]
    scene = automation.actions[-1]
    assert isinstance(scene, m.SceneAction) and scene.scene_id == "good_night"


def test_a_device_whose_id_has_the_dot_wins() -> None:
    out, problems = translate(
        {"triggers": [{"trigger": "state", "entity_id": "light.odd", "to": "on"}]}, DEVICES
    )
    assert problems == []
    assert out["triggers"][0]["device_id"] == "light.odd"
    assert out["triggers"][0]["to"] == "ON"


@pytest.mark.parametrize(
    ("action", "path", "words"),
    [
        (
            {"action": "light.turn_on", "target": {"entity_id": "light.kitchen"}},
            "actions[0].target.entity_id",
            "no device 'light.kitchen' or 'kitchen'",
        ),
        (
            {"action": "media_player.play_media", "target": {"entity_id": "hall"}},
            "actions[0].action",
            "has no homestream command",
        ),
        (
            {"action": "light.turn_on", "target": {"entity_id": "hall"}, "data": {"flash": "long"}},
            "actions[0].data.flash",
            "not a setting",
        ),
        ({"choose": []}, "actions[0].choose", "no equivalent"),
        (
            {"action": "light.turn_on", "target": {"area_id": "garage"}},
            "actions[0].target.area_id",
            "no device is in area 'garage'",
        ),
        ({"action": "light.turn_on"}, "actions[0].target", "names no entity"),
        (
            {"condition": "state", "entity_id": "front-door", "state": "unavailable"},
            "actions[0].state",
            "not a state homestream tracks",
        ),
        (
            {"condition": "state", "entity_id": "blinds", "state": "open"},
            "actions[0].attribute",
            "no on/off, lock, motion, contact or mode state",
        ),
    ],
)
def test_what_has_no_equivalent_is_a_problem_with_its_path(action, path, words) -> None:
    doc = {"alias": "x", "triggers": [{"trigger": "time", "at": "07:00"}], "actions": [action]}
    _, problems = translate(doc, DEVICES)
    assert [p for p, _ in problems] == [path]
    assert words in problems[0][1]


def test_a_contract_document_is_not_taken_for_a_paste() -> None:
    doc = {
        "alias": "ours",
        "triggers": [{"trigger": "state", "device_id": "hall-pir", "attribute": "motion"}],
        "actions": [
            {"action": "delay", "delay": 500},
            {"device_id": "hall", "capability": "ON_OFF", "command": "turnOn"},
        ],
    }
    assert not uses_hass_spelling(doc)


KEYS = [
    "entity_id",
    "action",
    "service",
    "target",
    "data",
    "to",
    "from",
    "state",
    "trigger",
    "platform",
    "condition",
    "attribute",
    "area_id",
    "above",
    "below",
    "for",
    "delay",
    "timeout",
    "conditions",
    "wait_for_trigger",
    "hvac_mode",
    "rgb_color",
    "hs_color",
    "brightness",
    "brightness_pct",
    "color_temp",
    "temperature",
    "message",
    "choose",
]
WORDS = [
    "hall",
    "light.hall",
    "hall-pir",
    "binary_sensor.hall-pir",
    "thermostat",
    "Hall",
    "light.turn_on",
    "climate.set_temperature",
    "climate.set_hvac_mode",
    "scene.turn_on",
    "notify.notify",
    "cover.set_cover_position",
    "state",
    "numeric_state",
    "on",
    "off",
    "heat",
    "brightness",
    "and",
    "not",
]
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.sampled_from(WORDS)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=5), inner, max_size=5)
    ),
    max_leaves=16,
)


@given(
    st.dictionaries(
        st.sampled_from(["triggers", "trigger", "conditions", "actions", "action", "condition"]),
        json_values,
        max_size=3,
    )
)
def test_any_document_translates_or_says_why(doc: dict[str, Any]) -> None:
    out, problems = translate(doc, DEVICES)
    assert isinstance(out, dict)
    assert all(isinstance(p, str) and isinstance(msg, str) and msg for p, msg in problems)
    with contextlib.suppress(AutomationInvalid):  # parse raises nothing else
        parse(out)
