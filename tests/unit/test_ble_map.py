"""The GATT sensor values and descriptors the BLE adapter maps (hub/adapters/ble_map.py)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.adapters import ble_map as bm
from hub.adapters.recorder import Recorder
from hub.hubrun import ConfigError, load_config, make_adapters


def test_decode_values() -> None:
    assert bm.decode(bm.TEMPERATURE, struct.pack("<h", 2150)) == {"temperature": 21.5}
    assert bm.decode(bm.TEMPERATURE, struct.pack("<h", -450)) == {"temperature": -4.5}
    assert bm.decode(bm.TEMPERATURE, struct.pack("<h", -0x8000)) == {}  # the SIG's "unknown"
    assert bm.decode(bm.HUMIDITY, struct.pack("<H", 5525)) == {"humidity": 55.25}
    assert bm.decode(bm.HUMIDITY, b"\xff\xff") == {}
    assert bm.decode(bm.BATTERY_LEVEL, b"\x57") == {"battery": 87}
    with pytest.raises(bm.GattValueError, match="expected 2 bytes, got 3"):
        bm.decode(bm.TEMPERATURE, b"\x01\x02\x03")
    with pytest.raises(bm.GattValueError, match="not one the hub reads"):
        bm.decode(bm.MODEL, b"x")


@given(st.sampled_from([bm.TEMPERATURE, bm.HUMIDITY, bm.BATTERY_LEVEL]), st.binary(max_size=6))
def test_decode_never_crashes_on_garbage(char: str, data: bytes) -> None:
    try:
        state = bm.decode(char, data)
    except bm.GattValueError:
        return
    assert set(state) <= {"temperature", "humidity", "battery"}


def test_descriptor_and_ids() -> None:
    assert bm.device_id_for("F0:00:00:00:00:0A/P") == "ble-f0000000000a"
    desc = bm.descriptor(
        "Bath", "F0:00:00:00:00:0A", [bm.BATTERY_LEVEL, bm.HUMIDITY, bm.TEMPERATURE], "M", None
    )
    assert desc == {
        "name": "Bath",
        "type": "sensor.climate",
        "protocol": "ble",
        "manufacturer": "M",
        "model": None,
        "capabilities": ["TEMPERATURE_SENSOR", "HUMIDITY_SENSOR", "BATTERY"],
        "endpoint": "ble://F0:00:00:00:00:0A",
    }
    assert bm.descriptor(None, "A", [bm.BATTERY_LEVEL], None, None) is None  # nothing to show
    assert bm.text(b"Acme\x00\x00") == "Acme" and bm.text(b"\x00") is None


def test_hub_toml_ble(tmp_path: Path) -> None:
    cfg = tmp_path / "hub.toml"
    base = "[cloud]\nhome = 'h'\nusername = 'u'\npassword = 'p'\n"
    cfg.write_text(base + "[ble]\nhci = 'usb:0'\n")
    (ble,) = make_adapters(load_config(cfg), Recorder())
    assert ble.protocol == "ble" and ble.config.hci == "usb:0"
    assert ble.config.state_file == tmp_path / "hub-state" / "ble.json"
    cfg.write_text(base + "[ble]\nhci = 3\n")
    with pytest.raises(ConfigError, match="bumble transport"):
        make_adapters(load_config(cfg), Recorder())
