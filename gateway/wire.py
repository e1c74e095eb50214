"""The gateway's WebSocket server protocol: uvicorn's websockets Sans-I/O protocol, plus a
way to write pre-encoded frames straight to a client's socket.

uvicorn hands every ``websocket.send`` through ASGI, the websockets state machine and a
frame serializer, once per client. For the fan-out that is the same bytes for every
subscriber of a home (``gateway.frames.Event.wire``), so :class:`Wire` writes those bytes
to the transport itself, a Kafka batch's frames for one client in one ``write``. It is in
the connection's ASGI scope as ``scope["extensions"]["homestream.wire"]``; under another
server (the tests' TestClient) it is absent and ``gateway/ws.py`` sends through ASGI.

A client whose socket buffer holds more than ``high_water`` bytes is behind: ``write``
refuses, and the endpoint resyncs it once ``drained()``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

HIGH_WATER = 512 * 1024
KEY = "homestream.wire"


class Wire:
    """Raw frame writes on one accepted WebSocket connection."""

    __slots__ = ("high_water", "protocol")

    def __init__(self, protocol: WireProtocol, high_water: int = HIGH_WATER) -> None:
        self.protocol = protocol
        self.high_water = high_water

    @property
    def open(self) -> bool:
        p = self.protocol
        return (
            p.handshake_complete
            and p.initial_response is None
            and not p.close_sent
            and not p.disconnected
            and not p.transport.is_closing()
        )

    def buffered(self) -> int:
        return int(self.protocol.transport.get_write_buffer_size())

    def write(self, frames: Sequence[bytes]) -> bool:
        """Write whole frames; False when the client is closed or too far behind."""
        if not self.open or self.buffered() > self.high_water:
            return False
        transport = self.protocol.transport
        transport.write(frames[0] if len(frames) == 1 else b"".join(frames))
        return True

    async def drained(self, poll: float = 0.05) -> bool:
        """Wait until the client has taken most of what was written; False once closed."""
        while self.open:
            await self.protocol.writable.wait()
            if self.buffered() <= self.high_water // 4:
                return True
            await asyncio.sleep(poll)
        return False


class WireProtocol(WebSocketsSansIOProtocol):
    """uvicorn's Sans-I/O WebSocket protocol with a :class:`Wire` in each connection's scope."""

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None:
            scope["extensions"][KEY] = Wire(self)  # type: ignore[index]


def wire_of(scope: dict[str, Any]) -> Wire | None:
    """The connection's Wire, when the server is this protocol."""
    found = (scope.get("extensions") or {}).get(KEY)
    return found if isinstance(found, Wire) else None
