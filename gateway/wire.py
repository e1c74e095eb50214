"""The gateway's WebSocket server: uvicorn's websockets Sans-I/O protocol, with ``/v1/ws``
served by the protocol itself rather than through ASGI.

Why (BENCHMARKS.md, issue #22): through ASGI every connection keeps a task with a dozen
coroutine frames (uvicorn, Starlette's middleware, the route, the endpoint's receive
loop), a receive queue and the handshake's scope, about 32 KB each; and every frame to
every client goes through ASGI, the websockets state machine and a frame serializer. Here
a connection is this protocol object and a :class:`Wire`; messages from the client are
pushed to the endpoint's handler (``gateway.ws``), and the fan-out writes each home's
pre-encoded frames (``gateway.frames.Event.wire``: a server's frames are not masked, so
they are the same bytes for everyone) to the socket, a Kafka batch in one write. A client
whose socket buffer holds more than ``high_water`` bytes is behind: ``write`` refuses and
the endpoint resyncs it once ``drained()``.

Every other request (and WebSocket paths other than ``/v1/ws``) goes to the ASGI app as
uvicorn does it. ``WireProtocol.serving(path, opener)`` binds the path and the function
that opens a session for a handshake.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol
from urllib.parse import parse_qsl

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request

HIGH_WATER = 512 * 1024


class Handler(Protocol):
    """What the endpoint gives for an open connection."""

    def received(self, text: str | None) -> Any:
        """A message (None: a binary one); a coroutine, awaited before the next."""

    def closed(self) -> None:
        """The connection is gone."""


Opener = Callable[["Wire", Mapping[str, str], Mapping[str, str]], Handler]


class Wire:
    """Writes on one accepted WebSocket connection (the loop thread only)."""

    __slots__ = ("high_water", "protocol")

    def __init__(self, protocol: WireProtocol, high_water: int | None = None) -> None:
        self.protocol = protocol
        self.high_water = HIGH_WATER if high_water is None else high_water

    @property
    def open(self) -> bool:
        p = self.protocol
        return not p.close_sent and not p.disconnected and not p.transport.is_closing()

    def buffered(self) -> int:
        return int(self.protocol.transport.get_write_buffer_size())

    def write(self, frames: Sequence[bytes]) -> bool:
        """Write whole pre-encoded frames; False when closed or too far behind."""
        if not self.open or self.buffered() > self.high_water:
            return False
        self.protocol.transport.write(frames[0] if len(frames) == 1 else b"".join(frames))
        return True

    def send_text(self, text: str) -> None:
        """One message of the endpoint's own (a reply, a snapshot), whatever the backlog."""
        if self.open:
            conn = self.protocol.conn
            conn.send_text(text.encode())
            self.protocol.transport.write(b"".join(conn.data_to_send()))

    def close(self, code: int = 1000, reason: str = "") -> None:
        p = self.protocol
        if self.open:
            p.conn.send_close(code, reason)
            p.transport.write(b"".join(p.conn.data_to_send()))
            p.close_sent = True
            p.close_timer = p.loop.call_later(p.close_timeout, p.transport.close)

    async def drained(self, poll: float = 0.05) -> bool:
        """Wait until the client has taken most of what was written; False once closed."""
        while self.open:
            await self.protocol.writable.wait()
            if self.buffered() <= self.high_water // 4:
                return True
            await asyncio.sleep(poll)
        return False


class _Disconnects:
    """Stands in for uvicorn's ASGI receive queue on a connection served here."""

    __slots__ = ()

    def put_nowait(self, message: Any) -> None:
        return None

    def empty(self) -> bool:
        return True


class WireProtocol(WebSocketsSansIOProtocol):
    """uvicorn's Sans-I/O WebSocket protocol; the bound path is served without ASGI."""

    path = "/v1/ws"
    opener: Opener | None = None

    @classmethod
    def serving(cls, path: str, opener: Opener) -> type[WireProtocol]:
        return type("WireProtocol", (cls,), {"path": path, "opener": staticmethod(opener)})

    handler: Handler | None = None
    _inbox: deque[str | None] | None = None
    _busy = False

    def handle_connect(self, event: Request) -> None:
        opener = type(self).opener
        raw_path, _, query = event.path.partition("?")
        if opener is None or raw_path != self.path:
            super().handle_connect(event)
            return
        self.handshake_initiated = True
        response = self.conn.accept(event)
        self.conn.send_response(response)
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.handshake_complete = True
        if response.status_code != 101:
            self.close_sent = True
            self.transport.close()
            return
        self.start_keepalive()
        # uvicorn's queue to the ASGI app: only told of the disconnect here (memory).
        self.queue = _Disconnects()  # type: ignore[assignment]
        self.handler = opener(Wire(self), event.headers, dict(parse_qsl(query)))

    def send_receive_event_to_app(self) -> None:
        if self.handler is None:
            super().send_receive_event_to_app()
            return
        data = self.frames[0] if len(self.frames) == 1 else b"".join(self.frames)
        self.frames = []
        if self.close_sent:
            return
        text: str | None = None
        if self.curr_msg_data_type == "text":
            try:
                text = data.decode()
            except UnicodeDecodeError:
                self.conn.send_close(1007)
                self.handle_parser_exception()
                return
        if self._inbox is None:
            self._inbox = deque()
        self._inbox.append(text)
        if not self._busy:
            self._busy = True
            task = self.loop.create_task(self._handle_inbox())
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        elif not self.read_paused:  # one message at a time: the client waits
            self.read_paused = True
            self.transport.pause_reading()

    async def _handle_inbox(self) -> None:
        """The client's messages in order; the task ends when there are none."""
        try:
            while self._inbox and self.handler is not None and not self.disconnected:
                await self.handler.received(self._inbox.popleft())
                if self.read_paused and not self._inbox:
                    self.read_paused = False
                    self.transport.resume_reading()
        finally:
            self._busy = False

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        handler, self.handler = self.handler, None
        if handler is not None:
            handler.closed()
