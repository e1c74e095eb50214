"""A light WebSocket client for the gateway bench: one asyncio Protocol per connection over
websockets' Sans-I/O ``ClientProtocol``, no tasks or queues of its own.

Thousands of these fit in one bench process; the bench's own cost per frame stays small
(its share of the latency is the same for the gateway and the baseline it compares with).
Pings are answered by the protocol; each text message goes to ``on_text(data, now)``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import cast

from websockets.client import ClientProtocol
from websockets.frames import Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri

OnText = Callable[[bytes, float], None]


class Client(asyncio.Protocol):
    """One WebSocket connection; ``opened`` resolves once the handshake is done."""

    def __init__(self, uri: str, on_text: OnText | None = None) -> None:
        self.conn = ClientProtocol(parse_uri(uri), max_size=None)
        self.on_text = on_text
        self.transport: asyncio.Transport | None = None
        loop = asyncio.get_running_loop()
        self.opened: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.first_text: asyncio.Future[bytes] = loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.conn.send_request(self.conn.connect())
        self._flush()

    def data_received(self, data: bytes) -> None:
        now = time.time()
        self.conn.receive_data(data)
        for event in self.conn.events_received():
            if isinstance(event, Response):
                if self.conn.state is State.OPEN:
                    self._resolve(self.opened, None)
                else:
                    self._fail(f"handshake refused: HTTP {event.status_code}")
            elif event.opcode is Opcode.TEXT:
                payload = bytes(event.data)
                if not self.first_text.done():
                    self.first_text.set_result(payload)
                if self.on_text is not None:
                    self.on_text(payload, now)
        if self.conn.handshake_exc is not None and not self.opened.done():
            self._fail(f"handshake failed: {self.conn.handshake_exc}")
        self._flush()  # pongs, a close reply

    def send_text(self, text: str) -> None:
        self.conn.send_text(text.encode())
        self._flush()

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            if self.conn.state is State.OPEN:
                self.conn.send_close(1000)
                self._flush()
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail("connection lost")
        self._resolve(self.closed, None)

    def _flush(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            for chunk in self.conn.data_to_send():
                if chunk:
                    self.transport.write(chunk)

    def _fail(self, why: str) -> None:
        for fut in (self.opened, self.first_text):
            if not fut.done():
                fut.set_exception(ConnectionError(why))
                fut.exception()  # retrieved: nobody may be waiting

    @staticmethod
    def _resolve(fut: asyncio.Future[None], value: None) -> None:
        if not fut.done():
            fut.set_result(value)


async def connect(uri: str, on_text: OnText | None = None, timeout: float = 30.0) -> Client:
    """An open connection to ``uri`` (ws://host:port/path?query)."""
    parsed = parse_uri(uri)
    loop = asyncio.get_running_loop()
    _transport, client = await asyncio.wait_for(
        loop.create_connection(lambda: Client(uri, on_text), parsed.host, parsed.port), timeout
    )
    try:
        await asyncio.wait_for(asyncio.shield(client.opened), timeout)
    except BaseException:
        client.close()
        raise
    return client
