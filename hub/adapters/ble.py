"""Bluetooth LE sensors through bleak: scan, connect, the standard GATT services
(hub/adapters/ble_map.py), notifications -> state reports, reconnect on loss.

bleak is driven through its public API only. Which host stack it runs on is its
``backend=`` choice: bleak's own platform backend (BlueZ over D-Bus on Linux) by default,
or, with ``[ble] hci = "usb:0"`` (any bumble transport name), bumble's Bluetooth host on
that controller (hub/adapters/ble_bumble.py). Tests and benches hand the adapter a bumble
``Device`` on bumble's virtual link, with real GATT peripherals (hub/blesim/).

Pairing: while a permit is open, an advertising device that offers Environmental Sensing
or Battery is connected, its Device Information read and its services mapped; a device
with a temperature (and humidity, battery) is added and remembered in ``ble.json``.
Remembered devices are connected whenever they advertise, also after a hub restart.
A dropped link -> availability offline; the next advertisement reconnects (1 s doubling
to ``backoff_max_s`` between attempts of one device), the state is read again and the
notifications are subscribed anew.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bleak import BleakClient, BleakScanner
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData

from hub.adapters import ble_map
from hub.adapters.base import Adapter, AdapterEvents, CommandFailed
from hub.adapters.common import checked_state

log = logging.getLogger("homestream.hub.ble")


@dataclass
class BleConfig:
    state_file: Path  # the remembered devices (ble.json)
    hci: str | None = None  # a bumble transport ("usb:0", "serial:/dev/ttyACM0"); None: bleak's own
    central: Any = None  # a powered-on bumble Device (tests, benches): overrides hci
    connect_timeout_s: float = 10.0
    backoff_max_s: float = 60.0


@dataclass
class _Known:
    address: str
    descriptor: dict[str, Any]
    client: BleakClient | None = None
    connecting: bool = False
    next_try: float = 0.0
    delay: float = 1.0
    chars: list[str] = field(default_factory=list)


class BleAdapter(Adapter):
    protocol = "ble"

    def __init__(self, config: BleConfig, events: AdapterEvents) -> None:
        self.config = config
        self.events = events
        self._known: dict[str, _Known] = {}
        self._joining: set[str] = set()
        self._permit_until = 0.0
        self._scanner: BleakScanner | None = None
        self._central: Any = None
        self._tasks: set[asyncio.Task[None]] = set()
        # One connection attempt at a time: a controller makes one LE connection at once.
        self._connecting = asyncio.Lock()
        self._load()

    # -- remembered devices ------------------------------------------------------------
    def _load(self) -> None:
        try:
            doc = json.loads(self.config.state_file.read_text())
        except FileNotFoundError:
            return
        for device_id, entry in doc.get("devices", {}).items():
            self._known[device_id] = _Known(entry["address"], entry["descriptor"])

    def _save(self) -> None:
        doc = {
            "devices": {
                d: {"address": k.address, "descriptor": k.descriptor}
                for d, k in sorted(self._known.items())
            }
        }
        self.config.state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.config.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc, indent=1))
        tmp.replace(self.config.state_file)

    # -- bleak, on the chosen host stack --------------------------------------------------
    async def _backend(self, kind: str) -> dict[str, Any]:
        if self._central is None and self.config.central is None and self.config.hci is None:
            return {}  # bleak's own platform backend
        if self._central is None:
            self._central = self.config.central or await _open_hci(self.config.hci or "")
        from hub.adapters.ble_bumble import BumbleClient, BumbleScanner

        backend = BumbleScanner if kind == "scanner" else BumbleClient
        return {"backend": backend, "bumble_device": self._central}

    async def start(self) -> None:
        self._scanner = BleakScanner(self._on_advertisement, **await self._backend("scanner"))
        await self._scanner.start()
        self.events.radio(self.protocol, True, "scanning")
        log.info("ble scanning", extra={"known": len(self._known)})

    async def stop(self) -> None:
        if self._scanner is not None:
            await self._scanner.stop()
        for task in list(self._tasks):
            task.cancel()
        for known in self._known.values():
            client, known.client = known.client, None
            if client is not None:
                await client.disconnect()

    async def permit(self, duration_s: int) -> None:
        self._permit_until = time.monotonic() + duration_s
        log.info("ble pairing", extra={"duration_s": duration_s})

    def owns(self, device_id: str) -> bool:
        return device_id in self._known

    async def execute(
        self, device_id: str, capability: str, command: str, parameters: Mapping[str, Any]
    ) -> None:
        raise CommandFailed(f"{device_id} is a BLE sensor: it takes no commands")

    # -- advertisements -> connections ----------------------------------------------------
    def _on_advertisement(self, device: BLEDevice, adv: AdvertisementData) -> None:
        device_id = ble_map.device_id_for(device.address)
        known = self._known.get(device_id)
        if known is not None:
            if known.client is None and not known.connecting and time.monotonic() >= known.next_try:
                known.connecting = True
                self._spawn(self._connect(device_id, device, adv))
            return
        if (
            time.monotonic() < self._permit_until
            and device_id not in self._joining
            and ble_map.SENSOR_SERVICES & set(adv.service_uuids)
        ):
            self._joining.add(device_id)
            self._spawn(self._connect(device_id, device, adv))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _connect(self, device_id: str, device: BLEDevice, adv: AdvertisementData) -> None:
        client = BleakClient(
            device,
            disconnected_callback=lambda _c: self._lost(device_id),
            timeout=self.config.connect_timeout_s,
            **await self._backend("client"),
        )
        try:
            async with self._connecting:
                await client.connect()
            await self._serve(device_id, device, adv, client)
        except Exception as exc:
            log.warning(
                "ble connect failed", extra={"device_id": device_id, "err": str(exc) or repr(exc)}
            )
            await _quietly_disconnect(client)
            self._retry_later(device_id)
        finally:
            self._joining.discard(device_id)
            known = self._known.get(device_id)
            if known is not None:
                known.connecting = False

    async def _serve(
        self, device_id: str, device: BLEDevice, adv: AdvertisementData, client: BleakClient
    ) -> None:
        chars = {
            c.uuid: c
            for service in client.services
            for c in service.characteristics
            if c.uuid in ble_map.CAPABILITY
        }
        known = self._known.get(device_id)
        if known is None:
            info = {}
            for uuid in (ble_map.MANUFACTURER, ble_map.MODEL):
                c = client.services.get_characteristic(uuid)
                info[uuid] = ble_map.text(bytes(await client.read_gatt_char(c))) if c else None
            desc = ble_map.descriptor(
                adv.local_name or device.name,
                device.address,
                chars,
                info[ble_map.MANUFACTURER],
                info[ble_map.MODEL],
            )
            if desc is None:
                log.info("ble device has no sensor the hub maps", extra={"address": device.address})
                await client.disconnect()
                return
            known = _Known(device.address, desc)
            self._known[device_id] = known
            self._save()
            self.events.device_added(device_id, desc)
        known.client, known.delay, known.chars = client, 1.0, list(chars)
        # Subscribed before the first read: a change in between is notified, not lost.
        for uuid, c in chars.items():
            if "notify" in c.properties or "indicate" in c.properties:
                await client.start_notify(c, self._notifier(device_id, uuid))
        state: dict[str, Any] = {}
        for uuid, c in chars.items():
            state.update(self._decode(device_id, uuid, bytes(await client.read_gatt_char(c))))
        self.events.availability(device_id, True)
        self._report(device_id, state)
        log.info("ble device connected", extra={"device_id": device_id, "chars": len(chars)})

    def _notifier(self, device_id: str, uuid: str) -> Any:
        def on_notify(_c: BleakGATTCharacteristic, data: bytearray) -> None:
            self._report(device_id, self._decode(device_id, uuid, bytes(data)))

        return on_notify

    def _decode(self, device_id: str, uuid: str, data: bytes) -> dict[str, Any]:
        try:
            return ble_map.decode(uuid, data)
        except ble_map.GattValueError as exc:
            self.events.dead_letter(
                device_id, "MALFORMED", {"characteristic": uuid, "error": str(exc)}
            )
            return {}

    def _report(self, device_id: str, state: dict[str, Any]) -> None:
        if not state:
            return
        known = self._known[device_id]
        valid, problems = checked_state(known.descriptor["capabilities"], state)
        if problems:
            self.events.dead_letter(device_id, "OUT_OF_RANGE", {"state": state, "errors": problems})
        if valid:
            self.events.state(device_id, valid)

    def _lost(self, device_id: str) -> None:
        known = self._known.get(device_id)
        if known is None or known.client is None:
            return
        known.client = None
        log.warning("ble device lost", extra={"device_id": device_id})
        self.events.availability(device_id, False)

    def _retry_later(self, device_id: str) -> None:
        known = self._known.get(device_id)
        if known is None:
            return
        known.next_try = time.monotonic() + known.delay * random.uniform(0.8, 1.2)
        known.delay = min(known.delay * 2, self.config.backoff_max_s)


async def _quietly_disconnect(client: BleakClient) -> None:
    try:
        await client.disconnect()
    except Exception as exc:  # the link may already be gone: nothing to undo
        log.debug("ble disconnect after failure", extra={"err": str(exc)})


async def _open_hci(spec: str) -> Any:
    """A bumble host on the controller behind ``spec`` (a bumble transport name)."""
    from bumble.device import Device, DeviceConfiguration
    from bumble.transport import open_transport

    transport = await open_transport(spec)
    config = DeviceConfiguration(name="homestream-hub")
    device = Device.from_config_with_hci(config, transport.source, transport.sink)
    await device.power_on()
    return device
