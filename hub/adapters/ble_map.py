"""The standard GATT sensor services -> CONTRACT capabilities and state (pure).

Bluetooth SIG assigned numbers (GATT Specification Supplement):

* Environmental Sensing 0x181A: Temperature 0x2A6E, sint16 in 0.01 degC (0x8000 = unknown);
  Humidity 0x2A6F, uint16 in 0.01 % (0xFFFF = unknown);
* Battery 0x180F: Battery Level 0x2A19, uint8 0..100 %;
* Device Information 0x180A: Manufacturer Name 0x2A29, Model Number 0x2A24 (UTF-8).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Any, Final


def sig(short: int) -> str:
    """A 16-bit SIG number as bleak's 128-bit UUID text."""
    return f"0000{short:04x}-0000-1000-8000-00805f9b34fb"


ENVIRONMENTAL_SENSING: Final = sig(0x181A)
BATTERY_SERVICE: Final = sig(0x180F)
DEVICE_INFORMATION: Final = sig(0x180A)
TEMPERATURE: Final = sig(0x2A6E)
HUMIDITY: Final = sig(0x2A6F)
BATTERY_LEVEL: Final = sig(0x2A19)
MANUFACTURER: Final = sig(0x2A29)
MODEL: Final = sig(0x2A24)

# Services whose advertisement makes a device one the hub can take.
SENSOR_SERVICES: Final = frozenset({ENVIRONMENTAL_SENSING, BATTERY_SERVICE})
# characteristic -> the capability it gives the device
CAPABILITY: Final = {
    TEMPERATURE: "TEMPERATURE_SENSOR",
    HUMIDITY: "HUMIDITY_SENSOR",
    BATTERY_LEVEL: "BATTERY",
}


class GattValueError(ValueError):
    """A characteristic value that is not what its assigned number says."""


def decode(characteristic: str, data: bytes) -> dict[str, Any]:
    """One characteristic's value as a partial state; {} for the SIG's 'unknown' value."""
    if characteristic == TEMPERATURE:
        (raw,) = _unpack("<h", data, "temperature")
        return {} if raw == -0x8000 else {"temperature": round(raw / 100, 2)}
    if characteristic == HUMIDITY:
        (raw,) = _unpack("<H", data, "humidity")
        return {} if raw == 0xFFFF else {"humidity": round(raw / 100, 2)}
    if characteristic == BATTERY_LEVEL:
        (raw,) = _unpack("<B", data, "battery level")
        return {"battery": raw}
    raise GattValueError(f"characteristic {characteristic} is not one the hub reads")


def _unpack(fmt: str, data: bytes, what: str) -> tuple[int, ...]:
    size = struct.calcsize(fmt)
    if len(data) != size:
        raise GattValueError(f"{what}: expected {size} bytes, got {len(data)} ({data.hex()})")
    return struct.unpack(fmt, data)


def device_id_for(address: str) -> str:
    """``ble-`` and the address's 12 hex digits (lower case, without colons or type)."""
    digits = "".join(c for c in address.split("/")[0] if c.isalnum()).lower()
    return f"ble-{digits}"


def text(data: bytes) -> str | None:
    value = data.decode("utf-8", errors="replace").strip("\x00 ").strip()
    return value or None


def descriptor(
    name: str | None,
    address: str,
    characteristics: Iterable[str],
    manufacturer: str | None,
    model: str | None,
) -> dict[str, Any] | None:
    """CONTRACT section 2's descriptor, or None when the device serves no sensor we map."""
    from hub.adapters.common import device_type, in_contract_order

    caps = in_contract_order(CAPABILITY[c] for c in characteristics if c in CAPABILITY)
    dtype = device_type(caps)
    if dtype is None:
        return None
    return {
        "name": name or f"BLE sensor {address}",
        "type": dtype,
        "protocol": "ble",
        "manufacturer": manufacturer,
        "model": model,
        "capabilities": caps,
        "endpoint": f"ble://{address.split('/')[0]}",
    }
