"""A small MQTT 5 client for the bridge's hot path: one connection, single-threaded.

Why not paho here: the bridge handles every hub message, and in CPython paho's generic
machinery (threads, locks, a Properties object per packet) cost more CPU per message than
the bridge's own work (profiled: ~48 % of the busy thread). The bridge needs little of
MQTT: a persistent session, one shared subscription, QoS 1 in with the PUBACK sent when
*we* say (after Kafka has the message), and QoS 1 out. This module does exactly that, with
buffered socket writes and a parser that works on whole read buffers. Hubs keep using
paho (``hub/hubclient.py``).

Everything runs on the caller's thread: ``pump()`` reads what has arrived, calls the
callbacks and flushes queued packets; nothing here is thread-safe.
"""

from __future__ import annotations

import select
import socket
import ssl
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn

CONNECT, CONNACK, PUBLISH, PUBACK, SUBSCRIBE, SUBACK = 1, 2, 3, 4, 8, 9
PINGREQ, PINGRESP, DISCONNECT = 12, 13, 14

# Property identifiers (MQTT 5, 2.2.2.2) this client writes or must understand.
SESSION_EXPIRY = 0x11
RECEIVE_MAXIMUM = 0x21


class MqttError(ConnectionError):
    """The connection failed or the broker refused something; reconnect."""


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    qos: int
    retain: bool
    packet_id: int  # 0 for QoS 0


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _utf8(text: str) -> bytes:
    raw = text.encode("utf-8")
    return len(raw).to_bytes(2, "big") + raw


def _packet(first: int, body: bytes) -> bytes:
    return bytes([first]) + varint(len(body)) + body


def read_varint(buf: bytes | bytearray | memoryview, pos: int) -> tuple[int, int] | None:
    """(value, next position), or None when ``buf`` ends inside the integer."""
    value, shift = 0, 0
    for i in range(4):
        if pos + i >= len(buf):
            return None
        byte = buf[pos + i]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos + i + 1
        shift += 7
    raise MqttError("malformed remaining length from the broker")


def split_packets(buf: bytearray) -> tuple[list[tuple[int, int, bytes]], int]:
    """Whole packets at the start of ``buf`` as (type, flags, body), and how many bytes
    they took; an incomplete packet at the end is left for the next read."""
    out: list[tuple[int, int, bytes]] = []
    pos, end = 0, len(buf)
    while end - pos >= 2:
        rl = read_varint(buf, pos + 1)
        if rl is None:
            break
        length, start = rl
        if start + length > end:
            break
        first = buf[pos]
        out.append((first >> 4, first & 0x0F, bytes(buf[start : start + length])))
        pos = start + length
    return out, pos


def parse_publish(flags: int, body: bytes) -> Message:
    qos = (flags >> 1) & 0x03
    tlen = int.from_bytes(body[0:2], "big")
    topic = body[2 : 2 + tlen].decode("utf-8")
    pos = 2 + tlen
    pid = 0
    if qos:
        pid = int.from_bytes(body[pos : pos + 2], "big")
        pos += 2
    props = read_varint(body, pos)
    if props is None:
        raise MqttError("truncated PUBLISH properties")
    plen, pos = props
    return Message(topic, body[pos + plen :], qos, bool(flags & 0x01), pid)


class Mqtt5Client:
    def __init__(
        self,
        host: str,
        port: int,
        client_id: str,
        *,
        username: str | None = None,
        password: str | None = None,
        keepalive: int = 30,
        clean_start: bool = False,
        session_expiry: int = 0,
        receive_maximum: int = 65535,
        tls: ssl.SSLContext | None = None,
        on_message: Callable[[Message], None],
        on_puback: Callable[[int, int], None] | None = None,
    ) -> None:
        self.host, self.port, self.client_id = host, port, client_id
        self.username, self.password = username, password
        self.keepalive, self.clean_start = keepalive, clean_start
        self.session_expiry, self.receive_maximum = session_expiry, receive_maximum
        self.tls = tls
        self.on_message = on_message
        self.on_puback = on_puback
        self.sock: socket.socket | None = None
        self.session_present = False
        self.subscribed = False
        self._rbuf = bytearray()
        self._wbuf = bytearray()
        self._next_pid = 0
        self._inflight: set[int] = set()  # our QoS 1 publishes awaiting PUBACK
        self._held: deque[tuple[int, bytes]] = deque()  # over the broker's receive maximum
        self._send_quota = 65535
        self._last_write = time.monotonic()
        self._ping_sent: float | None = None
        self._sub_pid: int | None = None

    # -- connection ----------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self.sock is not None

    def connect(self, timeout: float = 10.0) -> bool:
        """Open the connection; returns whether the broker resumed our session."""
        sock = socket.create_connection((self.host, self.port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tls is not None:
            sock = self.tls.wrap_socket(sock, server_hostname=self.host)
        props = bytes([SESSION_EXPIRY]) + self.session_expiry.to_bytes(4, "big")
        props += bytes([RECEIVE_MAXIMUM]) + self.receive_maximum.to_bytes(2, "big")
        flags = 0x02 if self.clean_start else 0x00
        payload = _utf8(self.client_id)
        if self.username is not None:
            flags |= 0x80
            payload += _utf8(self.username)
        if self.password is not None:
            flags |= 0x40
            payload += _utf8(self.password)
        body = _utf8("MQTT") + bytes([5, flags]) + self.keepalive.to_bytes(2, "big")
        body += varint(len(props)) + props + payload
        sock.sendall(_packet(CONNECT << 4, body))
        buf = bytearray()
        deadline = time.monotonic() + timeout
        while True:
            packets, used = split_packets(buf)
            if packets:
                break
            if time.monotonic() > deadline:
                sock.close()
                raise MqttError("no CONNACK from the broker")
            chunk = sock.recv(4096)
            if not chunk:
                sock.close()
                raise MqttError("the broker closed the connection before CONNACK")
            buf += chunk
        kind, _flags, ack = packets[0]
        if kind != CONNACK or len(ack) < 2:
            sock.close()
            raise MqttError(f"expected CONNACK, got packet type {kind}")
        if ack[1] >= 0x80:
            sock.close()
            raise MqttError(f"connection refused by the broker: reason code 0x{ack[1]:02x}")
        self.session_present = bool(ack[0] & 0x01)
        self._send_quota = self._receive_maximum_of(ack)
        sock.settimeout(None)
        sock.setblocking(False)
        self.sock = sock
        self._rbuf = bytearray(buf[used:])
        self._wbuf.clear()
        self._held.clear()
        self._ping_sent = None
        self._last_write = time.monotonic()
        self.subscribed = False
        # Our un-acked publishes died with the old connection: the caller re-publishes
        # (the bridge re-reads them from Kafka), so forget them here.
        self._inflight.clear()
        if len(packets) > 1:  # the broker may send queued messages right after CONNACK
            self._dispatch(packets[1:])
        return self.session_present

    @staticmethod
    def _receive_maximum_of(connack: bytes) -> int:
        parsed = read_varint(connack, 2)
        if parsed is None:
            return 65535
        plen, pos = parsed
        end = pos + plen
        while pos < end:
            ident = connack[pos]
            pos += 1
            if ident == RECEIVE_MAXIMUM:
                return int.from_bytes(connack[pos : pos + 2], "big")
            pos += _PROPERTY_SIZES.get(ident, 0)
            if ident in _VARIABLE_PROPERTIES:
                return 65535  # a property we do not walk: keep the protocol default
        return 65535

    def close(self) -> None:
        if self.sock is None:
            return
        try:
            self._wbuf += b"\xe0\x00"  # DISCONNECT, normal: the session stays
            self._flush(block=True)
        except OSError:
            pass
        self.sock.close()
        self.sock = None

    def _fail(self, why: str) -> NoReturn:
        if self.sock is not None:
            self.sock.close()
        self.sock = None
        self.subscribed = False
        raise MqttError(why)

    # -- requests --------------------------------------------------------------------------
    def _pid(self) -> int:
        for _ in range(65535):
            self._next_pid = self._next_pid % 65535 + 1
            if self._next_pid not in self._inflight and self._next_pid != self._sub_pid:
                return self._next_pid
        raise MqttError("no free packet identifier")

    def subscribe(self, filters: list[tuple[str, int]]) -> None:
        pid = self._pid()
        self._sub_pid = pid
        body = pid.to_bytes(2, "big") + b"\x00"
        for topic, qos in filters:
            body += _utf8(topic) + bytes([qos])
        self._wbuf += _packet(0x82, body)

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> int:
        """Queue a publish; returns its packet id (0 for QoS 0). ``on_puback`` reports it."""
        pid = self._pid() if qos else 0
        body = _utf8(topic) + (pid.to_bytes(2, "big") if qos else b"") + b"\x00" + payload
        packet = _packet((PUBLISH << 4) | (qos << 1) | int(retain), body)
        if qos:
            self._inflight.add(pid)
            if len(self._inflight) > self._send_quota:
                self._held.append((pid, packet))
                return pid
        self._wbuf += packet
        return pid

    def ack(self, packet_id: int) -> None:
        """PUBACK (success) for a QoS 1 message we received."""
        self._wbuf += b"\x40\x02" + packet_id.to_bytes(2, "big")

    @property
    def inflight(self) -> int:
        return len(self._inflight)

    # -- the loop ------------------------------------------------------------------------
    def pump(self, timeout: float = 0.0) -> None:
        """Flush queued packets, read what arrived (waiting up to ``timeout``), dispatch."""
        if self.sock is None:
            raise MqttError("not connected")
        self._keepalive()
        self._flush()
        wait_write = bool(self._wbuf)
        try:
            readable, writable, _ = select.select(
                [self.sock], [self.sock] if wait_write else [], [], timeout
            )
        except (OSError, ValueError) as exc:
            self._fail(f"socket error: {exc}")
        if writable:
            self._flush()
        if not readable:
            return
        try:
            chunk = self.sock.recv(262_144)
        except (BlockingIOError, ssl.SSLWantReadError):
            return
        except OSError as exc:
            self._fail(f"socket error: {exc}")
        if not chunk:
            self._fail("the broker closed the connection")
        self._rbuf += chunk
        packets, used = split_packets(self._rbuf)
        if used:
            del self._rbuf[:used]
        self._dispatch(packets)
        self._flush()

    def _dispatch(self, packets: list[tuple[int, int, bytes]]) -> None:
        for kind, flags, body in packets:
            if kind == PUBLISH:
                self.on_message(parse_publish(flags, body))
            elif kind == PUBACK:
                pid = int.from_bytes(body[0:2], "big")
                reason = body[2] if len(body) > 2 else 0
                self._inflight.discard(pid)
                if self._held and len(self._inflight) - len(self._held) < self._send_quota:
                    _held_pid, packet = self._held.popleft()
                    self._wbuf += packet
                if self.on_puback is not None:
                    self.on_puback(pid, reason)
            elif kind == SUBACK:
                parsed = read_varint(body, 2)
                codes = body[parsed[1] + parsed[0] :] if parsed else b""
                if any(code >= 0x80 for code in codes):
                    self._fail(f"subscription refused: reason codes {list(codes)}")
                self.subscribed = True
                self._sub_pid = None
            elif kind == PINGRESP:
                self._ping_sent = None
            elif kind == DISCONNECT:
                reason = body[0] if body else 0
                self._fail(f"the broker disconnected us: reason code 0x{reason:02x}")
            # QoS 2 is never subscribed to or published here; anything else is ignored.

    def _keepalive(self) -> None:
        now = time.monotonic()
        if self._ping_sent is not None and now - self._ping_sent > self.keepalive:
            self._fail("no PINGRESP from the broker")
        if self._ping_sent is None and now - self._last_write > self.keepalive / 2:
            self._wbuf += b"\xc0\x00"
            self._ping_sent = now

    def _flush(self, block: bool = False) -> None:
        if not self._wbuf or self.sock is None:
            return
        if block:
            self.sock.setblocking(True)
            self.sock.sendall(self._wbuf)
            self._wbuf.clear()
            return
        try:
            sent = self.sock.send(self._wbuf)
        except (BlockingIOError, ssl.SSLWantWriteError):
            return
        except OSError as exc:
            self._fail(f"socket error: {exc}")
        del self._wbuf[:sent]
        self._last_write = time.monotonic()


# Fixed sizes of the CONNACK properties we may have to step over (MQTT 5, 3.2.2.3).
_PROPERTY_SIZES = {
    0x11: 4,  # session expiry interval
    0x21: 2,  # receive maximum
    0x24: 1,  # maximum QoS
    0x25: 1,  # retain available
    0x27: 4,  # maximum packet size
    0x22: 2,  # topic alias maximum
    0x28: 1,  # wildcard subscription available
    0x29: 1,  # subscription identifiers available
    0x2A: 1,  # shared subscription available
    0x13: 2,  # server keep alive
}
# Properties of variable length (strings, user properties, binary data).
_VARIABLE_PROPERTIES = {0x12, 0x1A, 0x1C, 0x1F, 0x26, 0x15, 0x16}
