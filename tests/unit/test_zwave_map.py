"""Z-Wave values <-> capabilities (hub/adapters/zwave_map.py) and hub.toml loading."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.validate import validate_state
from hub.adapters import zwave_map as zw
from hub.adapters.common import CommandError, device_type
from hub.hubrun import ConfigError, load_config

MULTISENSOR = [
    (49, "Air temperature", None),
    (49, "Humidity", None),
    (49, "Illuminance", None),
    (113, "Home Security", "Motion sensor status"),
    (128, "level", None),
]


def test_capabilities_and_types() -> None:
    assert zw.capabilities([(37, "currentValue", None)]) == ["ON_OFF"]
    dimmer = zw.capabilities([(38, "currentValue", None), (38, "targetValue", None)])
    assert dimmer == ["ON_OFF", "BRIGHTNESS"] and device_type(dimmer) == "light.dimmer"
    caps = zw.capabilities(MULTISENSOR)
    assert caps == [
        "TEMPERATURE_SENSOR",
        "HUMIDITY_SENSOR",
        "ILLUMINANCE_SENSOR",
        "MOTION_SENSOR",
        "BATTERY",
    ]
    assert device_type(caps) == "sensor.motion"
    thermo = zw.capabilities(
        [(64, "mode", None), (67, "setpoint", 1), (49, "Air temperature", None)]
    )
    assert device_type(thermo) == "thermostat"
    assert device_type(zw.capabilities([(98, "currentMode", None), (128, "level", None)])) == "lock"
    color = zw.capabilities([(38, "currentValue", None), (51, "currentColor", None)])
    assert (
        color == ["ON_OFF", "BRIGHTNESS", "COLOR_CONTROL"] and device_type(color) == "light.color"
    )
    door = zw.capabilities([(113, "Access Control", "Door state")])
    assert device_type(door) == "sensor.contact"


@pytest.mark.parametrize(
    ("cc", "prop", "key", "value", "state"),
    [
        (37, "currentValue", None, True, {"powerState": "ON"}),
        (38, "currentValue", None, 0, {"powerState": "OFF", "brightness": 0}),
        (38, "currentValue", None, 50, {"powerState": "ON", "brightness": 50}),
        (38, "currentValue", None, 99, {"powerState": "ON", "brightness": 100}),
        (38, "currentValue", None, 254, {}),  # unknown
        (98, "currentMode", None, 255, {"lockState": "LOCKED"}),
        (98, "currentMode", None, 0, {"lockState": "UNLOCKED"}),
        (49, "Air temperature", None, 21.456, {"temperature": 21.46}),
        (49, "Humidity", None, 140, {}),
        (113, "Home Security", "Motion sensor status", 8, {"motion": True}),
        (113, "Home Security", "Motion sensor status", 0, {"motion": False}),
        (113, "Access Control", "Door state", 22, {"contact": "open"}),
        (113, "Access Control", "Door state", 23, {"contact": "closed"}),
        (128, "level", None, 87, {"battery": 87}),
        (64, "mode", None, 1, {"mode": "heat"}),
        (64, "mode", None, 31, {}),
        (67, "setpoint", 1, 21.5, {"targetTemperature": 21.5}),
        (67, "setpoint", 2, 26, {}),  # cooling setpoint: not the target
        (37, "currentValue", None, None, {}),
        (
            51,
            "currentColor",
            None,
            {"red": 255, "green": 0, "blue": 0},
            {"color": {"hue": 0, "saturation": 100}},
        ),
        (51, "hexColor", None, "80ff80", {"color": {"hue": 120, "saturation": 50}}),
        (51, "hexColor", None, "zz0000", {}),
        (51, "currentColor", 2, 255, {}),  # one component: the whole colour comes too
    ],
)
def test_state_from_value(cc, prop, key, value, state) -> None:
    assert zw.state_from_value(cc, prop, key, value) == state


@given(
    cc=st.sampled_from([37, 38, 49, 64, 67, 98, 113, 128]),
    prop=st.sampled_from(
        ["currentValue", "currentMode", "Air temperature", "Humidity", "level", "mode", "setpoint"]
    ),
    value=st.one_of(
        st.none(), st.booleans(), st.integers(-1000, 1000), st.floats(), st.text(max_size=3)
    ),
)
def test_any_value_maps_to_a_valid_state_or_nothing(cc, prop, value) -> None:
    from domain.capabilities import CAPABILITIES

    patch = zw.state_from_value(cc, prop, 1, value)
    # a wrong type never; a value outside a capability's range is the adapter's to drop
    errors = validate_state(list(CAPABILITIES), patch).errors
    assert all(e.code == "out_of_range" for e in errors), errors


def test_set_values() -> None:
    sv = zw.set_values
    assert sv({37}, "ON_OFF", "turnOn", {}, {}) == [zw.SetValue(37, "targetValue", None, True)]
    assert sv({38}, "ON_OFF", "toggle", {}, {"powerState": "ON"}) == [
        zw.SetValue(38, "targetValue", None, 0)
    ]
    assert sv({38}, "BRIGHTNESS", "setBrightness", {"brightness": 100}, {})[0].value == 99
    assert sv({98}, "LOCK", "lock", {}, {})[0].value == 0xFF
    steps = sv({64, 67}, "THERMOSTAT", "setTemperature", {"temperature": 21, "mode": "heat"}, {})
    assert steps == [zw.SetValue(67, "setpoint", 1, 21.0), zw.SetValue(64, "mode", None, 1)]
    assert sv({51}, "COLOR_CONTROL", "setColor", {"hue": 120, "saturation": 50}, {}) == [
        zw.SetValue(51, "targetColor", None, {"red": 128, "green": 255, "blue": 128})
    ]
    with pytest.raises(CommandError, match="no Z-Wave form"):
        sv({51}, "COLOR_CONTROL", "setColorTemperature", {"kelvin": 2700}, {})
    with pytest.raises(CommandError, match="mode must be one of"):
        sv({64}, "THERMOSTAT", "setMode", {"mode": "eco"}, {})
    with pytest.raises(CommandError, match="no Z-Wave form"):
        sv({37}, "BRIGHTNESS", "setBrightness", {"brightness": 3}, {})


def test_hub_toml(tmp_path: Path) -> None:
    cfg = tmp_path / "hub.toml"
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(cfg)
    cfg.write_text("[cloud]\nhome = 'h'\n")
    with pytest.raises(ConfigError, match="password"):
        load_config(cfg)
    (tmp_path / "s").write_text("secret\n")
    cfg.write_text("[cloud]\nhome = 'h'\nusername = 'u'\npassword_file = 's'\n")
    with pytest.raises(ConfigError, match="names no radio"):
        load_config(cfg)
    cfg.write_text(
        "[cloud]\nhome = 'h'\nusername = 'u'\npassword_file = 's'\ntls_ca = 'ca.crt'\n"
        "[zigbee]\nport = 'socket://127.0.0.1:6638'\n"
    )
    c = load_config(cfg)
    assert (c.password, c.port, c.tls_ca) == ("secret", 8883, tmp_path / "ca.crt")
    assert c.zigbee == {"port": "socket://127.0.0.1:6638"} and c.state_dir == tmp_path / "hub-state"
    cfg.write_text("[cloud\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(cfg)
