"""ZCL <-> capabilities (hub/adapters/zcl_map.py) and the ZNP simulator's MT framing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.capabilities import CAPABILITIES
from domain.validate import validate_state
from hub.adapters import zcl_map as z
from hub.adapters.common import CommandError, device_type, merge_state

# -- clusters -> capabilities and type ---------------------------------------------------


@pytest.mark.parametrize(
    ("clusters", "zone", "ha_id", "caps", "dtype"),
    [
        ({0x0000, 0x0006}, None, 0x0100, ["ON_OFF"], "light.switch"),
        ({0x0006}, None, 0x0051, ["ON_OFF"], "switch.plug"),
        ({0x0006, 0x0008}, None, 0x0101, ["ON_OFF", "BRIGHTNESS"], "light.dimmer"),
        (
            {0x0006, 0x0008, 0x0300},
            None,
            0x0102,
            ["ON_OFF", "BRIGHTNESS", "COLOR_CONTROL"],
            "light.color",
        ),
        ({0x0500, 0x0001}, 0x0015, 0x0402, ["CONTACT_SENSOR", "BATTERY"], "sensor.contact"),
        ({0x0500, 0x0001}, 0x000D, 0x0402, ["MOTION_SENSOR", "BATTERY"], "sensor.motion"),
        ({0x0406, 0x0400}, None, 0x0107, ["ILLUMINANCE_SENSOR", "MOTION_SENSOR"], "sensor.motion"),
        (
            {0x0402, 0x0405},
            None,
            0x0302,
            ["TEMPERATURE_SENSOR", "HUMIDITY_SENSOR"],
            "sensor.climate",
        ),
        ({0x0402}, None, 0x0302, ["TEMPERATURE_SENSOR"], "sensor.temperature"),
        ({0x0101, 0x0001}, None, 0x000A, ["LOCK", "BATTERY"], "lock"),
        ({0x0102}, None, 0x0202, ["POSITION"], "blinds"),
        ({0x0500}, 0x002B, 0x0402, [], None),  # a gas sensor zone: nothing we model
        ({0x0000, 0x0019}, None, 0x0000, [], None),
    ],
)
def test_capabilities_and_type(clusters, zone, ha_id, caps, dtype) -> None:
    assert z.capabilities(clusters, zone) == caps
    assert device_type(caps, ha_id) == dtype
    assert set(caps) <= set(CAPABILITIES)


# -- attribute values -> state ------------------------------------------------------------


@pytest.mark.parametrize(
    ("cluster", "attr", "value", "state"),
    [
        (0x0006, 0, True, {"powerState": "ON"}),
        (0x0006, 0, 0, {"powerState": "OFF"}),
        (0x0008, 0, 254, {"brightness": 100}),
        (0x0008, 0, 127, {"brightness": 50}),
        (0x0008, 0, 255, {}),  # 0xFF: invalid level
        (0x0300, 0, 254, {"color": {"hue": 360}}),
        (0x0300, 1, 127, {"color": {"saturation": 50}}),
        (0x0300, 7, 250, {"colorTemperature": 4000}),
        (0x0300, 7, 0, {}),
        (0x0402, 0, 2150, {"temperature": 21.5}),
        (0x0402, 0, -0x8000, {}),  # unknown
        (0x0405, 0, 4550, {"humidity": 45.5}),
        (0x0405, 0, 0xFFFF, {}),
        (0x0400, 0, 1, {"illuminance": 1.0}),
        (0x0400, 0, 20001, {"illuminance": 100.0}),
        (0x0400, 0, 0, {"illuminance": 0}),
        (0x0406, 0, 0b01, {"motion": True}),
        (0x0406, 0, 0b10, {"motion": False}),
        (0x0101, 0, 1, {"lockState": "LOCKED"}),
        (0x0101, 0, 2, {"lockState": "UNLOCKED"}),
        (0x0101, 0, 0, {}),  # not fully locked
        (0x0102, 8, 0, {"position": 100}),
        (0x0102, 8, 100, {"position": 0}),
        (0x0001, 0x21, 200, {"battery": 100}),
        (0x0001, 0x21, 0xFF, {}),
        (0x0006, 0, "on", {}),
        (0x0402, 0, float("nan"), {}),
    ],
)
def test_state_from_attribute(cluster, attr, value, state) -> None:
    assert z.state_from_attribute(cluster, attr, value) == state


def test_zone_status() -> None:
    assert z.state_from_zone_status(0x0015, 0x0001) == {"contact": "open"}
    assert z.state_from_zone_status(0x0015, 0x0020) == {"contact": "closed"}
    assert z.state_from_zone_status(0x000D, 0x0001) == {"motion": True}
    assert z.state_from_zone_status(None, 0x0001) == {}


@given(
    cluster=st.sampled_from(sorted(z.REPORTED)),
    attr=st.integers(0, 0x40),
    value=st.one_of(st.integers(-(2**31), 2**32), st.booleans(), st.floats(), st.text(max_size=3)),
)
def test_any_reported_value_is_valid_state_or_nothing(cluster, attr, value) -> None:
    patch = z.state_from_attribute(cluster, attr, value)
    # a wrong type never; a value outside a capability's range is the adapter's to drop
    errors = validate_state(list(CAPABILITIES), patch).errors
    assert all(e.code == "out_of_range" for e in errors), errors


# -- commands -> cluster commands ----------------------------------------------------------


def test_commands() -> None:
    cc = z.cluster_commands
    assert cc("ON_OFF", "turnOn", {}) == [z.ClusterCommand(0x0006, "on")]
    assert cc("BRIGHTNESS", "setBrightness", {"brightness": 50})[0].args == {
        "level": 127,
        "transition_time": 0,
    }
    assert cc("COLOR_CONTROL", "setColor", {"hue": 180, "saturation": 100})[0].args["hue"] == 127
    assert (
        cc("COLOR_CONTROL", "setColorTemperature", {"kelvin": 2700})[0].args["color_temp_mireds"]
        == 370
    )
    assert cc("POSITION", "setPosition", {"position": 30})[0].args == {"percentage_lift_value": 70}
    assert cc("POSITION", "open", {})[0].command == "up_open"
    assert cc("LOCK", "unlock", {})[0].command == "unlock_door"
    with pytest.raises(CommandError, match="must be a number"):
        cc("BRIGHTNESS", "setBrightness", {"brightness": "high"})
    with pytest.raises(CommandError, match="within"):
        cc("BRIGHTNESS", "setBrightness", {"brightness": 101})
    with pytest.raises(CommandError, match="no Zigbee command"):
        cc("THERMOSTAT", "setMode", {"mode": "heat"})


def test_merge_state_merges_color_fields() -> None:
    s: dict = {"color": {"hue": 10}}
    merge_state(s, {"color": {"saturation": 5}, "powerState": "ON"})
    assert s == {"color": {"hue": 10, "saturation": 5}, "powerState": "ON"}


# -- MT framing of the simulator ---------------------------------------------------------


def test_frames_round_trip_and_noise_is_skipped() -> None:
    import zigpy_znp.commands as c
    import zigpy_znp.types as t

    from hub.znpsim import mt

    raw = mt.encode(c.SYS.Ping.Rsp(Capabilities=t.MTCapabilities.SYS | t.MTCapabilities.AF))
    reader = mt.FrameReader()
    frames = list(reader.feed(b"\x00\x13garbage" + raw[:3]))
    assert frames == []
    frames = list(reader.feed(raw[3:] + b"\xfe\x01\x21\x01\x00\xff"))  # + a bad checksum
    assert len(frames) == 1 and frames[0].header == c.SYS.Ping.Rsp.header
    assert reader.bad_frames == 1


@given(st.binary(max_size=400))
def test_frame_reader_never_raises(data: bytes) -> None:
    from hub.znpsim import mt

    reader = mt.FrameReader()
    for frame in reader.feed(data):
        assert len(frame.data) <= mt.MAX_DATA
