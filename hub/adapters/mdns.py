"""WiFi devices found by mDNS / DNS-SD (python-zeroconf): the common smart-home service
types (hub/adapters/mdns_map.py) are browsed on the hub's LAN.

A service instance seen for the first time is resolved (SRV, TXT, addresses) and becomes
a device (``device_added`` with its descriptor) that is online; one that goes away
(goodbye packet or TTL expiry) -> availability offline; when it comes back, online again,
with a new descriptor if its name, address or TXT changed. Found devices are not
controlled (no capabilities): a command to one fails with the reason.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from zeroconf import IPVersion, ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from hub.adapters import mdns_map
from hub.adapters.base import Adapter, AdapterEvents, CommandFailed

log = logging.getLogger("homestream.hub.mdns")


@dataclass
class MdnsConfig:
    service_types: tuple[str, ...] = mdns_map.SERVICE_TYPES
    resolve_timeout_s: float = 3.0
    interfaces: Any = None  # zeroconf's InterfaceChoice or a list of addresses; None: all


class MdnsAdapter(Adapter):
    protocol = "mdns"

    def __init__(self, config: MdnsConfig, events: AdapterEvents) -> None:
        self.config = config
        self.events = events
        self._zc: AsyncZeroconf | None = None
        self._browser: AsyncServiceBrowser | None = None
        self._descriptors: dict[str, dict[str, Any]] = {}
        self._online: dict[str, bool] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        kwargs: dict[str, Any] = {"ip_version": IPVersion.V4Only}
        if self.config.interfaces is not None:
            kwargs["interfaces"] = self.config.interfaces
        self._zc = AsyncZeroconf(**kwargs)
        self._browser = AsyncServiceBrowser(
            self._zc.zeroconf, list(self.config.service_types), handlers=[self._on_change]
        )
        self.events.radio(self.protocol, True, f"browsing {len(self.config.service_types)} types")

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._browser is not None:
            await self._browser.async_cancel()
        if self._zc is not None:
            await self._zc.async_close()

    async def permit(self, duration_s: int) -> None:
        """Nothing to open: LAN devices announce themselves without a pairing window."""

    def owns(self, device_id: str) -> bool:
        return device_id in self._descriptors

    async def execute(
        self, device_id: str, capability: str, command: str, parameters: Mapping[str, Any]
    ) -> None:
        raise CommandFailed(f"{device_id} was found on the LAN; the hub does not control it")

    # zeroconf calls this on the loop, with keyword arguments
    def _on_change(
        self, zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange
    ) -> None:
        device_id = mdns_map.device_id_for(name, service_type)
        if state_change is ServiceStateChange.Removed:
            if self._online.get(device_id):
                self._online[device_id] = False
                log.info("mdns service gone", extra={"device_id": device_id, "service": name})
                self.events.availability(device_id, False)
            return
        task = asyncio.create_task(self._resolve(service_type, name, device_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _resolve(self, service_type: str, name: str, device_id: str) -> None:
        assert self._zc is not None
        info = AsyncServiceInfo(service_type, name)
        timeout_ms = int(self.config.resolve_timeout_s * 1000)
        if not await info.async_request(self._zc.zeroconf, timeout_ms):
            self.events.dead_letter(
                device_id,
                "INTERVIEW_TIMEOUT",
                {"service": name, "error": f"not resolved in {self.config.resolve_timeout_s:g} s"},
            )
            return
        record = mdns_map.txt(info.properties)
        desc = mdns_map.descriptor(
            name, service_type, record, info.parsed_scoped_addresses(), info.port
        )
        if self._descriptors.get(device_id) != desc:
            self._descriptors[device_id] = desc
            log.info("mdns device found", extra={"device_id": device_id, "type": desc["type"]})
            self.events.device_added(device_id, desc)
        if not self._online.get(device_id):
            self._online[device_id] = True
            self.events.availability(device_id, True)
