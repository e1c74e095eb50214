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
import asyncio
import logging
import random
from collections.abc import Mapping
from typing import Any, Protocol

log = logging.getLogger("homestream.hub.adapters")


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


class Reconnect:
    """How an adapter waits between attempts to reach its radio: 1 s doubling to
    ``max_s``, with +-20 % jitter so many hubs do not retry in step. The first failure of
    a run is reported as the radio being away (once, not at every attempt)."""

    def __init__(self, events: AdapterEvents, protocol: str, target: str, max_s: float) -> None:
        self.events = events
        self.protocol = protocol
        self.target = target
        self.max_s = max_s
        self._delay = 1.0
        self._reported = False

    async def failed(self, exc: BaseException) -> None:
        if not self._reported:
            self.events.radio(self.protocol, False, f"cannot reach {self.target}: {exc}")
            self._reported = True
        delay = self._delay * random.uniform(0.8, 1.2)
        log.warning(
            "radio unreachable, retrying",
            extra={
                "protocol": self.protocol,
                "target": self.target,
                "err": str(exc),
                "retry_in_s": round(delay, 1),
            },
        )
        await asyncio.sleep(delay)
        self._delay = min(self._delay * 2, self.max_s)

    def succeeded(self) -> None:
        self._delay = 1.0
        self._reported = False
