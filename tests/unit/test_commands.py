"""Command validation, planning and completion (domain/commands.py)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.capabilities import CAPABILITIES, Command
from domain.commands import CommandRejected, desired_satisfied, plan_command, validate_command
from domain.dedupe import changes
from domain.shadow import merge
from domain.validate import ErrorCode, validate_state
from tests.unit.test_validate import CAPABILITY_SETS, JSON, valid_states, valid_value

ALL = sorted(CAPABILITIES)

PLANS: list[tuple[str, str, dict[str, Any] | None, dict[str, Any], dict[str, Any]]] = [
    ("ON_OFF", "turnOn", None, {}, {"powerState": "ON"}),
    ("ON_OFF", "turnOn", {}, {"powerState": "ON"}, {"powerState": "ON"}),
    ("ON_OFF", "turnOff", {}, {}, {"powerState": "OFF"}),
    ("ON_OFF", "toggle", {}, {"powerState": "ON"}, {"powerState": "OFF"}),
    ("ON_OFF", "toggle", {}, {"powerState": "OFF"}, {"powerState": "ON"}),
    ("ON_OFF", "toggle", {}, {}, {"powerState": "ON"}),
    ("BRIGHTNESS", "setBrightness", {"brightness": 40}, {}, {"brightness": 40}),
    ("BRIGHTNESS", "setBrightness", {"brightness": 40.0}, {}, {"brightness": 40}),
    ("BRIGHTNESS", "setBrightness", {"brightness": 0}, {}, {"brightness": 0}),
    ("COLOR_CONTROL", "setColor", {"hue": 120, "saturation": 80.5}, {},
     {"color": {"hue": 120.0, "saturation": 80.5}}),
    ("COLOR_CONTROL", "setColorTemperature", {"kelvin": 2700}, {}, {"colorTemperature": 2700}),
    ("THERMOSTAT", "setTemperature", {"temperature": 21.5}, {}, {"targetTemperature": 21.5}),
    ("THERMOSTAT", "setTemperature", {"temperature": 21, "mode": "heat"}, {},
     {"targetTemperature": 21.0, "mode": "heat"}),
    ("THERMOSTAT", "setTemperature", {"temperature": 21, "mode": None}, {},
     {"targetTemperature": 21.0}),
    ("THERMOSTAT", "setMode", {"mode": "cool"}, {}, {"mode": "cool"}),
    ("THERMOSTAT", "setMode", {"mode": "off"}, {}, {"mode": "off"}),
    ("LOCK", "lock", {}, {"lockState": "UNLOCKED"}, {"lockState": "LOCKED"}),
    ("LOCK", "unlock", {}, {}, {"lockState": "UNLOCKED"}),
    ("POSITION", "setPosition", {"position": 35}, {}, {"position": 35}),
    ("POSITION", "open", {}, {"position": 35}, {"position": 100}),
    ("POSITION", "close", None, {}, {"position": 0}),
]  # fmt: skip


@pytest.mark.parametrize(("capability", "command", "parameters", "reported", "patch"), PLANS)
def test_plans(
    capability: str,
    command: str,
    parameters: dict[str, Any] | None,
    reported: dict[str, Any],
    patch: dict[str, Any],
) -> None:
    planned = plan_command(ALL, capability, command, parameters, reported)
    assert planned == patch
    assert validate_state(ALL, planned).ok
    for key, value in patch.items():
        assert type(planned[key]) is type(value)


def test_every_command_has_a_plan_case() -> None:
    covered = {(c, cmd) for c, cmd, *_ in PLANS}
    assert covered == {(c.name, cmd.name) for c in CAPABILITIES.values() for cmd in c.commands}


def test_plan_without_reported_state() -> None:
    assert plan_command(["ON_OFF"], "ON_OFF", "toggle", {}) == {"powerState": "ON"}
    assert plan_command(["ON_OFF"], "ON_OFF", "toggle", {}, None) == {"powerState": "ON"}


REJECTIONS: list[tuple[list[str], Any, Any, Any, str, str]] = [
    (["ON_OFF"], "BRIGHTNESS", "setBrightness", {"brightness": 5}, "unsupported_capability",
     "device has no BRIGHTNESS capability; it supports ON_OFF"),
    ([], "ON_OFF", "turnOn", {}, "unsupported_capability", "it supports no capabilities"),
    (["ON_OFF"], "DIMMER", "turnOn", {}, "unknown_capability",
     "'DIMMER' is not a capability; known: ON_OFF, BRIGHTNESS"),
    (["ON_OFF"], "on_off", "turnOn", {}, "unknown_capability", "did you mean ON_OFF?"),
    (["ON_OFF"], None, "turnOn", {}, "wrong_type", "capability must be a capability name"),
    (["THERMOSTAT"], "THERMOSTAT", "warm", {}, "unknown_command",
     "THERMOSTAT has no command 'warm'; try setTemperature, setMode"),
    (["ON_OFF", "LOCK"], "LOCK", "turnOn", {}, "unknown_command",
     "(or use capability ON_OFF for 'turnOn')"),
    (["TEMPERATURE_SENSOR"], "TEMPERATURE_SENSOR", "read", {}, "unknown_command",
     "TEMPERATURE_SENSOR has no commands; it only reports state"),
    (["ON_OFF"], "ON_OFF", 3, {}, "wrong_type", "command must be a command name, got integer 3"),
    (["ON_OFF"], "ON_OFF", "turnOn", [], "wrong_type", "parameters must be an object"),
    (["ON_OFF"], "ON_OFF", "turnOn", {"brightness": 3}, "unknown_parameter",
     "turnOn has no parameter 'brightness'; it takes no parameters"),
    (["BRIGHTNESS"], "BRIGHTNESS", "setBrightness", {"level": 3}, "unknown_parameter",
     "setBrightness has no parameter 'level'; it takes brightness"),
    (["BRIGHTNESS"], "BRIGHTNESS", "setBrightness", {"brightness": 3, "brightnes": 4},
     "unknown_parameter", "did you mean brightness?"),
    (["BRIGHTNESS"], "BRIGHTNESS", "setBrightness", {}, "missing",
     "setBrightness needs parameter 'brightness' (whole number 0..100%)"),
    (["BRIGHTNESS"], "BRIGHTNESS", "setBrightness", {"brightness": None}, "missing", "needs"),
    (["COLOR_CONTROL"], "COLOR_CONTROL", "setColor", {"hue": 3}, "missing",
     "setColor needs parameter 'saturation'"),
    (["THERMOSTAT"], "THERMOSTAT", "setTemperature", {"mode": "heat"}, "missing",
     "setTemperature needs parameter 'temperature' (number 5..35 °C)"),
    (["BRIGHTNESS"], "BRIGHTNESS", "setBrightness", {"brightness": 140}, "out_of_range",
     "brightness 140 is out of range 0..100%"),
    (["BRIGHTNESS"], "BRIGHTNESS", "setBrightness", {"brightness": 40.5}, "wrong_type",
     "brightness 40.5 is not a whole number"),
    (["BRIGHTNESS"], "BRIGHTNESS", "setBrightness", {"brightness": True}, "wrong_type",
     "got boolean true"),
    (["BRIGHTNESS"], "BRIGHTNESS", "setBrightness", {"brightness": "50"}, "wrong_type",
     "got string '50'"),
    (["COLOR_CONTROL"], "COLOR_CONTROL", "setColor", {"hue": 361, "saturation": 1},
     "out_of_range", "hue 361 is out of range 0..360 °"),
    (["COLOR_CONTROL"], "COLOR_CONTROL", "setColorTemperature", {"kelvin": 20000},
     "out_of_range", "kelvin 20000 is out of range 1000..10000 K"),
    (["THERMOSTAT"], "THERMOSTAT", "setTemperature", {"temperature": 40}, "out_of_range",
     "temperature 40 is out of range 5..35 °C"),
    (["THERMOSTAT"], "THERMOSTAT", "setTemperature", {"temperature": 20, "mode": "HEAT"},
     "not_allowed", "mode 'HEAT' is not one of 'heat', 'cool', 'auto', 'off'"),
    (["THERMOSTAT"], "THERMOSTAT", "setMode", {"mode": "dry"}, "not_allowed", "'dry'"),
    (["THERMOSTAT"], "THERMOSTAT", "setMode", {"mode": 1}, "wrong_type", "got integer 1"),
    (["POSITION"], "POSITION", "setPosition", {"position": -5}, "out_of_range", "0..100%"),
    (["POSITION"], "POSITION", "open", {"position": 5}, "unknown_parameter", "no parameters"),
    (["LOCK"], "LOCK", "lock", {"code": "1234"}, "unknown_parameter", "lock has no parameter"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("caps", "capability", "command", "parameters", "code", "reason"), REJECTIONS
)
def test_rejections(
    caps: list[str], capability: Any, command: Any, parameters: Any, code: str, reason: str
) -> None:
    with pytest.raises(CommandRejected) as info:
        plan_command(caps, capability, command, parameters, {})
    assert info.value.code == code
    assert reason in info.value.reason
    assert str(info.value) == info.value.reason
    assert info.value.as_dict() == {"code": code, "message": info.value.reason}


@pytest.mark.parametrize(
    ("caps", "capability", "command", "parameters", "code", "reason"), REJECTIONS
)
def test_validation_rejects_with_the_planners_error(
    caps: list[str], capability: Any, command: Any, parameters: Any, code: str, reason: str
) -> None:
    # The gateway validates, the worker plans: a client must see the same error either way.
    with pytest.raises(CommandRejected) as planned:
        plan_command(caps, capability, command, parameters, {})
    with pytest.raises(CommandRejected) as validated:
        validate_command(caps, capability, command, parameters)
    assert validated.value.code == code
    assert reason in validated.value.reason
    assert (validated.value.code, validated.value.reason, validated.value.path) == (
        planned.value.code,
        planned.value.reason,
        planned.value.path,
    )


@pytest.mark.parametrize(("capability", "command", "parameters", "reported", "patch"), PLANS)
def test_validation_accepts_every_plannable_command_without_state(
    capability: str,
    command: str,
    parameters: dict[str, Any] | None,
    reported: dict[str, Any],
    patch: dict[str, Any],
) -> None:
    assert validate_command(ALL, capability, command, parameters) is None
    assert validate_command([capability], capability, command, parameters) is None


def test_every_rejection_code_is_exercised() -> None:
    assert {r[4] for r in REJECTIONS} == set(ErrorCode) - {"unknown_attribute"}


def test_rejection_names_the_parameter() -> None:
    with pytest.raises(CommandRejected) as info:
        plan_command(["COLOR_CONTROL"], "COLOR_CONTROL", "setColor", {"hue": 1, "saturation": 900})
    assert info.value.path == "saturation"


# -- completion --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("desired", "reported", "expected"),
    [
        ({"powerState": "ON"}, {"powerState": "ON", "brightness": 5}, True),
        ({"powerState": "ON"}, {"powerState": "OFF"}, False),
        ({"powerState": "ON"}, {}, False),
        ({"brightness": 40}, {"brightness": 40.0}, True),
        ({"targetTemperature": 21.0}, {"targetTemperature": 21}, True),
        ({"targetTemperature": 21.0}, {"targetTemperature": 20.6}, False),  # no deadband
        ({"position": 1}, {"position": True}, False),
        ({"color": {"hue": 120.0, "saturation": 80.0}}, {"color": {"hue": 120, "saturation": 80}},
         True),
        ({"color": {"hue": 120.0, "saturation": 80.0}}, {"color": {"hue": 120}}, False),
        ({"color": {"hue": 120.0}}, {"color": {"hue": 120, "saturation": 3}}, True),
        ({"targetTemperature": 21.0, "mode": "heat"}, {"targetTemperature": 21, "mode": "off"},
         False),
        ({"battery": None}, {}, True),
        ({}, {}, True),
        ({"powerState": "ON"}, None, False),
    ],
)  # fmt: skip
def test_desired_satisfied(desired: dict[str, Any], reported: Any, expected: bool) -> None:
    assert desired_satisfied(desired, reported) is expected


def test_temperature_sensor_deadband_does_not_complete_a_thermostat_command() -> None:
    patch = plan_command(ALL, "THERMOSTAT", "setTemperature", {"temperature": 22})
    assert not desired_satisfied(patch, {"targetTemperature": 21.8})
    assert desired_satisfied(patch, {"targetTemperature": 22})


# -- properties --------------------------------------------------------------------------------

COMMAND_NAMES = sorted({c.name for cap in CAPABILITIES.values() for c in cap.commands})
PARAM_NAMES = sorted({p.name for cap in CAPABILITIES.values() for c in cap.commands for p in
                      c.parameters})  # fmt: skip


@given(
    caps=CAPABILITY_SETS | JSON,
    capability=st.sampled_from(ALL) | JSON,
    command=st.sampled_from(COMMAND_NAMES) | JSON,
    parameters=st.dictionaries(st.sampled_from(PARAM_NAMES) | st.text(max_size=5), JSON) | JSON,
    reported=st.dictionaries(st.sampled_from(["powerState", "x"]), JSON) | JSON,
)
def test_plan_command_only_ever_raises_command_rejected(
    caps: Any, capability: Any, command: Any, parameters: Any, reported: Any
) -> None:
    try:
        patch = plan_command(caps, capability, command, parameters, reported)
    except CommandRejected as rejected:
        assert rejected.reason
        assert rejected.code in set(ErrorCode)
    else:
        assert isinstance(patch, dict) and patch
        assert validate_state(ALL, patch).ok


@given(
    caps=CAPABILITY_SETS | JSON,
    capability=st.sampled_from(ALL) | JSON,
    command=st.sampled_from(COMMAND_NAMES) | JSON,
    parameters=st.dictionaries(st.sampled_from(PARAM_NAMES) | st.text(max_size=5), JSON) | JSON,
    reported=st.dictionaries(st.sampled_from(["powerState", "x"]), JSON) | JSON,
)
def test_validation_agrees_with_planning_whatever_the_state(
    caps: Any, capability: Any, command: Any, parameters: Any, reported: Any
) -> None:
    def outcome(check: Any) -> tuple[str, str, str] | None:
        try:
            check()
        except CommandRejected as rejected:
            return (rejected.code, rejected.reason, rejected.path)
        return None

    validated = outcome(lambda: validate_command(caps, capability, command, parameters))
    planned = outcome(lambda: plan_command(caps, capability, command, parameters, reported))
    assert validated == planned


@st.composite
def valid_commands(draw: st.DrawFn) -> tuple[str, Command, dict[str, Any]]:
    cap = draw(st.sampled_from([c for c in CAPABILITIES.values() if c.commands]))
    cmd = draw(st.sampled_from(cap.commands))
    params = {}
    for p in cmd.parameters:
        if p.required or draw(st.booleans()):
            params[p.name] = draw(valid_value(p))
    return cap.name, cmd, params


@given(command=valid_commands(), data=st.data())
def test_valid_commands_plan_and_complete(
    command: tuple[str, Command, dict[str, Any]], data: st.DataObject
) -> None:
    capability, cmd, params = command
    reported = merge({}, data.draw(valid_states(ALL)))
    patch = plan_command(ALL, capability, cmd.name, params, reported)
    assert validate_state(ALL, patch).valid == patch
    after = merge(reported, patch)
    assert desired_satisfied(patch, after)
    assert changes(after, patch, ALL) == {}  # the device reporting the patch is then a no-op
