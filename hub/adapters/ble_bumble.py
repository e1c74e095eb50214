"""A bleak backend on bumble's Bluetooth host: bleak's ``backend=`` hook, so the BLE adapter
speaks bleak's public API whatever the radio is.

bumble is a complete Bluetooth host in Python. Its ``Device`` drives any HCI controller:
a USB dongle (``usb:0``), a serial one (``serial:/dev/ttyACM0``), or bumble's own
in-process virtual controller on a ``LocalLink`` (the tests and benches: real peripherals
with real GATT servers, no radio). Hand the powered-on ``Device`` to bleak as
``bumble_device=``::

    BleakScanner(callback, backend=BumbleScanner, bumble_device=device)
    BleakClient(ble_device, backend=BumbleClient, bumble_device=device)

Only what the hub uses is carried: scanning, connect/disconnect, the GATT tree, reads,
writes and notifications. Pairing is not (the standard sensor services need none).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, BaseBleakScanner
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakError
from bleak.uuids import normalize_uuid_str
from bumble import gatt
from bumble.core import UUID, AdvertisingData
from bumble.device import Advertisement, Connection, Device, Peer

_PROPERTIES = {
    gatt.Characteristic.Properties.BROADCAST: "broadcast",
    gatt.Characteristic.Properties.READ: "read",
    gatt.Characteristic.Properties.WRITE_WITHOUT_RESPONSE: "write-without-response",
    gatt.Characteristic.Properties.WRITE: "write",
    gatt.Characteristic.Properties.NOTIFY: "notify",
    gatt.Characteristic.Properties.INDICATE: "indicate",
    gatt.Characteristic.Properties.AUTHENTICATED_SIGNED_WRITES: "authenticated-signed-writes",
    gatt.Characteristic.Properties.EXTENDED_PROPERTIES: "extended-properties",
}
_UUID_LISTS = (
    AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
    AdvertisingData.INCOMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
    AdvertisingData.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
    AdvertisingData.INCOMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
)


def uuid_text(uuid: UUID) -> str:
    """bumble's UUID as bleak spells it: 128-bit, lower case, dashed."""
    return normalize_uuid_str(uuid.to_hex_str("-").lower())


def _device(kwargs: dict[str, Any]) -> Device:
    device = kwargs.get("bumble_device")
    if not isinstance(device, Device):
        raise BleakError("the bumble backend needs bumble_device=<a powered-on bumble Device>")
    return device


def advertisement_data(adv: Advertisement) -> AdvertisementData:
    data = adv.data
    name = data.get(AdvertisingData.COMPLETE_LOCAL_NAME) or data.get(
        AdvertisingData.SHORTENED_LOCAL_NAME
    )
    uuids: list[str] = []
    for kind in _UUID_LISTS:
        for found in data.get_all(kind):
            for u in found if isinstance(found, list) else [found]:
                if isinstance(u, UUID) and uuid_text(u) not in uuids:
                    uuids.append(uuid_text(u))
    manufacturer = dict(data.get_all(AdvertisingData.MANUFACTURER_SPECIFIC_DATA))
    service_data: dict[str, bytes] = {}
    for item in data.get_all(AdvertisingData.SERVICE_DATA_16_BIT_UUID):
        if isinstance(item, tuple) and isinstance(item[0], UUID):
            service_data[uuid_text(item[0])] = bytes(item[1])
    tx_power = data.get(AdvertisingData.TX_POWER_LEVEL)
    return AdvertisementData(
        local_name=name if isinstance(name, str) else None,
        manufacturer_data=manufacturer,
        service_data=service_data,
        service_uuids=uuids,
        tx_power=tx_power if isinstance(tx_power, int) else None,
        rssi=adv.rssi,
        platform_data=(adv,),
    )


class BumbleScanner(BaseBleakScanner):
    def __init__(
        self,
        detection_callback: Any,
        service_uuids: list[str] | None,
        scanning_mode: str = "active",
        **kwargs: Any,
    ) -> None:
        super().__init__(detection_callback, service_uuids)
        self._bumble = _device(kwargs)
        self._active = scanning_mode != "passive"

    def _on_advertisement(self, adv: Advertisement) -> None:
        data = advertisement_data(adv)
        if not self.is_allowed_uuid(data.service_uuids):
            return
        address = str(adv.address)
        previous = self.seen_devices.get(address)
        if data.local_name is None and previous is not None:  # a scan response lacks it
            data = data._replace(local_name=previous[1].local_name)
        device = self.create_or_update_device(address, address, data.local_name, adv.address, data)
        self.call_detection_callbacks(device, data)

    async def start(self) -> None:
        self.seen_devices = {}
        self._bumble.on(Device.EVENT_ADVERTISEMENT, self._on_advertisement)
        await self._bumble.start_scanning(active=self._active, filter_duplicates=False)

    async def stop(self) -> None:
        self._bumble.remove_listener(Device.EVENT_ADVERTISEMENT, self._on_advertisement)
        with contextlib.suppress(Exception):  # the controller may already be gone
            await self._bumble.stop_scanning()


class BumbleClient(BaseBleakClient):
    def __init__(
        self,
        address_or_ble_device: BLEDevice | str,
        *,
        disconnected_callback: Callable[[], None] | None,
        timeout: float,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            address_or_ble_device, disconnected_callback=disconnected_callback, timeout=timeout
        )
        self._bumble = _device(kwargs)
        self._details = (
            address_or_ble_device.details if isinstance(address_or_ble_device, BLEDevice) else None
        )
        self._connection: Connection | None = None
        self._peer: Peer | None = None
        self._subscribers: dict[int, Callable[[bytes], None]] = {}
        self._closing = False

    @property
    def name(self) -> str:
        return self.address

    @property
    def mtu_size(self) -> int:
        return self._connection.att_mtu if self._connection is not None else 23

    @property
    def is_connected(self) -> bool:
        return self._connection is not None

    async def connect(self, pair: bool, **kwargs: Any) -> None:
        target = self._details if self._details is not None else self.address
        try:
            connection = await asyncio.wait_for(
                self._bumble.connect(target, timeout=self._timeout), self._timeout
            )
        except TimeoutError:
            raise TimeoutError(f"{self.address} did not answer in {self._timeout:g} s") from None
        self._connection = connection
        self._closing = False
        connection.on(Connection.EVENT_DISCONNECTION, self._on_disconnection)
        peer = Peer(connection)
        self._peer = peer
        await peer.discover_services()
        for service in peer.services:
            await service.discover_characteristics()
            for characteristic in service.characteristics:
                await characteristic.discover_descriptors()
        self.services = self._collection(peer)

    def _on_disconnection(self, _reason: int) -> None:
        self._connection = None
        self._peer = None
        self._subscribers.clear()
        if not self._closing and self._disconnected_callback is not None:
            self._disconnected_callback()

    @staticmethod
    def _collection(peer: Peer) -> BleakGATTServiceCollection:
        services = BleakGATTServiceCollection()
        for s in peer.services:
            service = BleakGATTService(s, s.handle, uuid_text(s.uuid))
            services.add_service(service)
            for c in s.characteristics:
                props: list[Any] = [n for flag, n in _PROPERTIES.items() if c.properties & flag]
                characteristic = BleakGATTCharacteristic(
                    c, c.handle, uuid_text(c.uuid), props, lambda: 20, service
                )
                services.add_characteristic(characteristic)
                for d in c.descriptors:
                    services.add_descriptor(
                        BleakGATTDescriptor(d, d.handle, uuid_text(d.type), characteristic)
                    )
        return services

    def _require_peer(self) -> Peer:
        if self._peer is None:
            raise BleakError(f"not connected to {self.address}")
        return self._peer

    async def disconnect(self) -> None:
        connection = self._connection
        if connection is None:
            return
        self._closing = True
        with contextlib.suppress(Exception):  # already gone is what was asked for
            await connection.disconnect()
        self._connection = None
        self._peer = None

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError("pairing is not carried by the bumble backend")

    async def unpair(self) -> None:
        raise NotImplementedError("pairing is not carried by the bumble backend")

    async def read_gatt_char(
        self, characteristic: BleakGATTCharacteristic, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        return bytearray(await self._require_peer().read_value(characteristic.obj))

    async def read_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        return bytearray(await self._require_peer().read_value(descriptor.obj))

    async def write_gatt_char(
        self, characteristic: BleakGATTCharacteristic, data: Any, response: bool
    ) -> None:
        await self._require_peer().write_value(
            characteristic.obj, bytes(data), with_response=response
        )

    async def write_gatt_descriptor(self, descriptor: BleakGATTDescriptor, data: Any) -> None:
        await self._require_peer().write_value(descriptor.obj, bytes(data), with_response=True)

    async def start_notify(
        self, characteristic: BleakGATTCharacteristic, callback: NotifyCallback, **kwargs: Any
    ) -> None:
        def on_value(value: bytes) -> None:
            callback(bytearray(value))

        self._subscribers[characteristic.handle] = on_value
        await self._require_peer().subscribe(characteristic.obj, on_value)

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        on_value = self._subscribers.pop(characteristic.handle, None)
        if on_value is not None and self._peer is not None:
            await self._peer.unsubscribe(characteristic.obj, on_value)
