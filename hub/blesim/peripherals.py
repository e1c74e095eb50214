"""BLE peripherals with real bumble GATT servers on bumble's virtual link (no radio).

``VirtualAir`` is one ``LocalLink`` (the air) to which every controller is attached:
``central()`` is the hub's own bumble ``Device`` (what the adapter scans and connects
with), and ``Sensor`` a peripheral that advertises Environmental Sensing 0x181A and serves

* Device Information 0x180A: manufacturer 0x2A29, model 0x2A24;
* Environmental Sensing 0x181A: temperature 0x2A6E (sint16, 0.01 degC) and, for a climate
  sensor, humidity 0x2A6F (uint16, 0.01 %); read and notify;
* Battery 0x180F: level 0x2A19 (uint8 %), read and notify, when battery powered.

``set(temperature=..., humidity=..., battery=...)`` changes the values and notifies the
subscribers; ``power_off()`` drops the link (the hub sees the device go away) and
``power_on()`` brings it back advertising.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from bumble import gatt, hci
from bumble.controller import Controller
from bumble.core import UUID, AdvertisingData
from bumble.device import Device
from bumble.host import Host
from bumble.link import LocalLink
from bumble.profiles.device_information_service import DeviceInformationService
from bumble.transport.common import AsyncPipeSink

ESS = gatt.GATT_ENVIRONMENTAL_SENSING_SERVICE
BATTERY = gatt.GATT_BATTERY_SERVICE
TEMPERATURE = UUID.from_16_bits(0x2A6E, "Temperature")
HUMIDITY = UUID.from_16_bits(0x2A6F, "Humidity")
_READ_NOTIFY = gatt.Characteristic.Properties.READ | gatt.Characteristic.Properties.NOTIFY


class VirtualAir:
    """One shared link; each device gets its own controller with a public address."""

    def __init__(self) -> None:
        self.link = LocalLink()
        self._n = 0

    def _device(self, name: str) -> Device:
        self._n += 1
        address = f"F0:00:00:00:{self._n // 256:02X}:{self._n % 256:02X}"
        controller = Controller(name, link=self.link, public_address=address)
        return Device(
            name=name,
            address=hci.Address(address),
            host=Host(controller, AsyncPipeSink(controller)),
        )

    async def central(self, name: str = "hub") -> Device:
        device = self._device(name)
        await device.power_on()
        return device


@dataclass
class Sensor:
    """A thermometer (temperature only) or a battery-powered climate sensor."""

    air: VirtualAir
    name: str
    manufacturer: str = "Homestream Labs"
    model: str = "TH-1"
    temperature: float = 21.5
    humidity: float | None = None
    battery: int | None = None
    device: Device = field(init=False)

    def __post_init__(self) -> None:
        self.device = self.air._device(self.name)
        chars = [
            gatt.Characteristic(
                TEMPERATURE, _READ_NOTIFY, gatt.Characteristic.READABLE,
                gatt.CharacteristicValue(read=lambda _c: self._temperature()),
            )
        ]  # fmt: skip
        if self.humidity is not None:
            chars.append(
                gatt.Characteristic(
                    HUMIDITY, _READ_NOTIFY, gatt.Characteristic.READABLE,
                    gatt.CharacteristicValue(read=lambda _c: self._humidity()),
                )
            )  # fmt: skip
        self.chars = {c.uuid: c for c in chars}
        services: list[gatt.Service] = [
            DeviceInformationService(manufacturer_name=self.manufacturer, model_number=self.model),
            gatt.Service(ESS, chars),
        ]
        uuids = [ESS]
        if self.battery is not None:
            level = gatt.Characteristic(
                gatt.GATT_BATTERY_LEVEL_CHARACTERISTIC, _READ_NOTIFY,
                gatt.Characteristic.READABLE,
                gatt.CharacteristicValue(read=lambda _c: bytes([self.battery or 0])),
            )  # fmt: skip
            self.chars[level.uuid] = level
            services.append(gatt.Service(BATTERY, [level]))
            uuids.append(BATTERY)
        self.device.add_services(services)
        self.advertising = bytes(
            AdvertisingData(
                [
                    (AdvertisingData.FLAGS, bytes([0x06])),
                    (AdvertisingData.COMPLETE_LOCAL_NAME, self.name.encode()),
                    (
                        AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
                        b"".join(bytes(u) for u in uuids),
                    ),
                ]
            )
        )

    @property
    def address(self) -> str:
        return str(self.device.random_address)

    def _temperature(self) -> bytes:
        return struct.pack("<h", round(self.temperature * 100))

    def _humidity(self) -> bytes:
        return struct.pack("<H", round((self.humidity or 0) * 100))

    async def power_on(self) -> None:
        if not self.device.powered_on:
            await self.device.power_on()
        await self.device.start_advertising(
            advertising_data=self.advertising,
            auto_restart=True,
            advertising_interval_min=20,
            advertising_interval_max=20,
        )

    async def power_off(self) -> None:
        """Gone from the air: advertising stops and every connection drops."""
        await self.device.stop_advertising()
        for connection in list(self.device.connections.values()):
            await connection.disconnect()

    async def set(
        self,
        *,
        temperature: float | None = None,
        humidity: float | None = None,
        battery: int | None = None,
    ) -> None:
        """Change values; each changed characteristic notifies its subscribers."""
        changed = []
        if temperature is not None:
            self.temperature = temperature
            changed.append((TEMPERATURE, self._temperature()))
        if humidity is not None:
            self.humidity = humidity
            changed.append((HUMIDITY, self._humidity()))
        if battery is not None:
            self.battery = battery
            changed.append((gatt.GATT_BATTERY_LEVEL_CHARACTERISTIC, bytes([battery])))
        for uuid, value in changed:
            await self.device.notify_subscribers(self.chars[uuid], value)
