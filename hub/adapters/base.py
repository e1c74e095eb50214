"""The one interface every protocol adapter implements, and what it reports through.

An adapter owns one radio (a Zigbee coordinator, a Z-Wave JS server, ...). The hub process
(hub/hubrun.py) starts it, forwards the cloud's pairing permits and commands to it, and
turns what it reports into CONTRACT.md section 2 messages:

* ``device_added(device_id, descriptor)``: interviewed, with capabilities -> discovery
* ``device_removed(device_id)``: left or excluded -> empty retained discovery
* ``state(device_id, partial_state)`` -> ``state/{device}``
* ``availability(device_id, online)`` -> ``availability/{device}`` (the cloud raises the
  offline notification)
* ``radio(protocol, online, detail)``: the radio link itself went away or came back
* ``dead_letter(device_id, reason, detail)``: something a device sent or failed to send
  that cannot become a message (garbage, an interview that never completes)

Adapters run on the hub's asyncio loop; every method here is called on that loop.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Any, Protocol


class CommandFailed(Exception):
    """A command the device did not carry out; the message goes into the FAILED ack."""


class AdapterEvents(Protocol):
    def device_added(self, device_id: str, descriptor: dict[str, Any]) -> None: ...

    def device_removed(self, device_id: str) -> None: ...

    def state(self, device_id: str, state: Mapping[str, Any]) -> None: ...

    def availability(self, device_id: str, online: bool) -> None: ...

    def radio(self, protocol: str, online: bool, detail: str) -> None: ...

    def dead_letter(
        self, device_id: str | None, reason: str, detail: Mapping[str, Any]
    ) -> None: ...


class Adapter(abc.ABC):
    """One radio. ``start`` returns once the adapter runs (it reconnects by itself)."""

    protocol: str = ""

    @abc.abstractmethod
    async def start(self) -> None: ...

    @abc.abstractmethod
    async def stop(self) -> None: ...

    @abc.abstractmethod
    async def permit(self, duration_s: int) -> None:
        """Open pairing (inclusion) for ``duration_s`` seconds; 0 closes it."""

    @abc.abstractmethod
    def owns(self, device_id: str) -> bool:
        """Whether ``device_id`` is one of this adapter's devices."""

    @abc.abstractmethod
    async def execute(
        self, device_id: str, capability: str, command: str, parameters: Mapping[str, Any]
    ) -> None:
        """Carry out one command; raise CommandFailed (or ValueError) with the reason."""
