"""An ``AdapterEvents`` that keeps what it is told, with a hook per event (tests, benches)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from hub.adapters.common import merge_state


class Recorder:
    def __init__(self) -> None:
        self.added: dict[str, dict[str, Any]] = {}
        self.removed: list[str] = []
        self.states: dict[str, dict[str, Any]] = {}
        self.reports: list[tuple[str, dict[str, Any]]] = []
        self.online: dict[str, bool] = {}
        self.radio_events: list[tuple[bool, str]] = []
        self.dead: list[tuple[str | None, str, Mapping[str, Any]]] = []
        # called with (device_id, partial state) after each report is kept
        self.on_state: Callable[[str, Mapping[str, Any]], None] | None = None
        self.on_added: Callable[[str], None] | None = None

    def device_added(self, device_id: str, descriptor: dict[str, Any]) -> None:
        self.added[device_id] = descriptor
        if self.on_added is not None:
            self.on_added(device_id)

    def device_removed(self, device_id: str) -> None:
        self.removed.append(device_id)

    def state(self, device_id: str, state: Mapping[str, Any]) -> None:
        merge_state(self.states.setdefault(device_id, {}), state)
        self.reports.append((device_id, dict(state)))
        if self.on_state is not None:
            self.on_state(device_id, state)

    def availability(self, device_id: str, online: bool) -> None:
        self.online[device_id] = online

    def radio(self, protocol: str, online: bool, detail: str) -> None:
        self.radio_events.append((online, detail))

    def dead_letter(self, device_id: str | None, reason: str, detail: Mapping[str, Any]) -> None:
        self.dead.append((device_id, reason, detail))


async def until(pred: Callable[[], Any], timeout: float = 30, what: str = "") -> Any:
    """Poll ``pred`` on the loop until it is truthy (its value) or ``timeout`` s pass."""
    import asyncio
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what or pred}")
