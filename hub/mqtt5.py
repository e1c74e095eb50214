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

The client reads every CONNACK property into ``client.server`` (``ServerInfo``) and keeps
to what the broker declared: at most Receive Maximum unacked QoS 1 publishes on the wire,
no packet over Maximum Packet Size, the Server Keep Alive instead of ours, no QoS above
Maximum QoS, no retained publish when Retain Available is 0, no wildcard or shared
subscription the broker said it lacks. It never sends topic aliases, so Topic Alias
Maximum is only recorded. A request over such a limit raises ``ServerLimitError`` and
sends nothing: the connection stays up. Reason codes of CONNACK, SUBACK, PUBACK and
DISCONNECT are read, with their reason strings.
"""

from __future__ import annotations

import select
import socket
import ssl
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

CONNECT, CONNACK, PUBLISH, PUBACK, SUBSCRIBE, SUBACK = 1, 2, 3, 4, 8, 9
PINGREQ, PINGRESP, DISCONNECT = 12, 13, 14

# Property identifiers (MQTT 5, 2.2.2.2).
PAYLOAD_FORMAT_INDICATOR = 0x01
MESSAGE_EXPIRY_INTERVAL = 0x02
CONTENT_TYPE = 0x03
RESPONSE_TOPIC = 0x08
CORRELATION_DATA = 0x09
SUBSCRIPTION_IDENTIFIER = 0x0B
SESSION_EXPIRY = 0x11
ASSIGNED_CLIENT_IDENTIFIER = 0x12
SERVER_KEEP_ALIVE = 0x13
AUTHENTICATION_METHOD = 0x15
AUTHENTICATION_DATA = 0x16
REQUEST_PROBLEM_INFORMATION = 0x17
WILL_DELAY_INTERVAL = 0x18
REQUEST_RESPONSE_INFORMATION = 0x19
RESPONSE_INFORMATION = 0x1A
SERVER_REFERENCE = 0x1C
REASON_STRING = 0x1F
RECEIVE_MAXIMUM = 0x21
TOPIC_ALIAS_MAXIMUM = 0x22
TOPIC_ALIAS = 0x23
MAXIMUM_QOS = 0x24
RETAIN_AVAILABLE = 0x25
USER_PROPERTY = 0x26
MAXIMUM_PACKET_SIZE = 0x27
WILDCARD_SUBSCRIPTION_AVAILABLE = 0x28
SUBSCRIPTION_IDENTIFIERS_AVAILABLE = 0x29
SHARED_SUBSCRIPTION_AVAILABLE = 0x2A

# The data types of properties (MQTT 5, 1.5).
BYTE, TWO_BYTE_INT, FOUR_BYTE_INT, VARINT, UTF8, BINARY, UTF8_PAIR = range(7)
PROPERTY_TYPES: dict[int, int] = {
    PAYLOAD_FORMAT_INDICATOR: BYTE,
    MESSAGE_EXPIRY_INTERVAL: FOUR_BYTE_INT,
    CONTENT_TYPE: UTF8,
    RESPONSE_TOPIC: UTF8,
    CORRELATION_DATA: BINARY,
    SUBSCRIPTION_IDENTIFIER: VARINT,
    SESSION_EXPIRY: FOUR_BYTE_INT,
    ASSIGNED_CLIENT_IDENTIFIER: UTF8,
    SERVER_KEEP_ALIVE: TWO_BYTE_INT,
    AUTHENTICATION_METHOD: UTF8,
    AUTHENTICATION_DATA: BINARY,
    REQUEST_PROBLEM_INFORMATION: BYTE,
    WILL_DELAY_INTERVAL: FOUR_BYTE_INT,
    REQUEST_RESPONSE_INFORMATION: BYTE,
    RESPONSE_INFORMATION: UTF8,
    SERVER_REFERENCE: UTF8,
    REASON_STRING: UTF8,
    RECEIVE_MAXIMUM: TWO_BYTE_INT,
    TOPIC_ALIAS_MAXIMUM: TWO_BYTE_INT,
    TOPIC_ALIAS: TWO_BYTE_INT,
    MAXIMUM_QOS: BYTE,
    RETAIN_AVAILABLE: BYTE,
    USER_PROPERTY: UTF8_PAIR,
    MAXIMUM_PACKET_SIZE: FOUR_BYTE_INT,
    WILDCARD_SUBSCRIPTION_AVAILABLE: BYTE,
    SUBSCRIPTION_IDENTIFIERS_AVAILABLE: BYTE,
    SHARED_SUBSCRIPTION_AVAILABLE: BYTE,
}
_FIXED_SIZES = {BYTE: 1, TWO_BYTE_INT: 2, FOUR_BYTE_INT: 4}
# Only these may appear more than once in one packet; parsed as lists.
REPEATABLE = frozenset({USER_PROPERTY, SUBSCRIPTION_IDENTIFIER})
# What a broker may put in a CONNACK (3.2.2.3); anything else there is a protocol error.
CONNACK_PROPERTIES = frozenset(
    {
        SESSION_EXPIRY,
        RECEIVE_MAXIMUM,
        MAXIMUM_QOS,
        RETAIN_AVAILABLE,
        MAXIMUM_PACKET_SIZE,
        ASSIGNED_CLIENT_IDENTIFIER,
        TOPIC_ALIAS_MAXIMUM,
        REASON_STRING,
        USER_PROPERTY,
        WILDCARD_SUBSCRIPTION_AVAILABLE,
        SUBSCRIPTION_IDENTIFIERS_AVAILABLE,
        SHARED_SUBSCRIPTION_AVAILABLE,
        SERVER_KEEP_ALIVE,
        RESPONSE_INFORMATION,
        SERVER_REFERENCE,
        AUTHENTICATION_METHOD,
        AUTHENTICATION_DATA,
    }
)

# Reason codes (MQTT 5, 2.4), for error messages people can act on.
REASON_NAMES = {
    0x00: "success",
    0x01: "granted QoS 1",
    0x02: "granted QoS 2",
    0x04: "disconnect with will message",
    0x10: "no matching subscribers",
    0x80: "unspecified error",
    0x81: "malformed packet",
    0x82: "protocol error",
    0x83: "implementation specific error",
    0x84: "unsupported protocol version",
    0x85: "client identifier not valid",
    0x86: "bad user name or password",
    0x87: "not authorized",
    0x88: "server unavailable",
    0x89: "server busy",
    0x8A: "banned",
    0x8B: "server shutting down",
    0x8C: "bad authentication method",
    0x8D: "keep alive timeout",
    0x8E: "session taken over",
    0x8F: "topic filter invalid",
    0x90: "topic name invalid",
    0x91: "packet identifier in use",
    0x92: "packet identifier not found",
    0x93: "receive maximum exceeded",
    0x94: "topic alias invalid",
    0x95: "packet too large",
    0x96: "message rate too high",
    0x97: "quota exceeded",
    0x98: "administrative action",
    0x99: "payload format invalid",
    0x9A: "retain not supported",
    0x9B: "QoS not supported",
    0x9C: "use another server",
    0x9D: "server moved",
    0x9E: "shared subscriptions not supported",
    0x9F: "connection rate exceeded",
    0xA0: "maximum connect time",
    0xA1: "subscription identifiers not supported",
    0xA2: "wildcard subscriptions not supported",
}


def describe(reason_code: int, reason_string: str | None = None) -> str:
    """``0x87 not authorized``, plus the broker's reason string when it sent one."""
    text = f"0x{reason_code:02x} {REASON_NAMES.get(reason_code, 'unknown reason code')}"
    return f"{text} ({reason_string})" if reason_string else text


class MqttError(ConnectionError):
    """The connection failed or the broker refused something; reconnect.

    ``reason_code`` is the broker's MQTT reason code when it gave one."""

    def __init__(self, message: str, reason_code: int | None = None) -> None:
        super().__init__(message)
        self.reason_code = reason_code


class ServerLimitError(ValueError):
    """A request the broker said in its CONNACK it would not take (too large, QoS or
    retain not available, ...). Nothing was sent and the connection is still up.

    ``reason_code`` is the code the broker would have answered with (e.g. 0x95)."""

    def __init__(self, message: str, reason_code: int) -> None:
        super().__init__(message)
        self.reason_code = reason_code


@dataclass(frozen=True)
class ServerInfo:
    """What the broker said in its CONNACK (MQTT 5, 3.2.2). ``None``: the property was
    absent; the defaults are the protocol's for an absent property."""

    reason_code: int = 0
    session_present: bool = False
    session_expiry_interval: int | None = None  # None: the one we asked for
    receive_maximum: int = 65535
    maximum_qos: int = 2
    retain_available: bool = True
    maximum_packet_size: int | None = None  # None: no limit beyond the protocol's
    assigned_client_identifier: str | None = None
    topic_alias_maximum: int = 0
    reason_string: str | None = None
    user_properties: tuple[tuple[str, str], ...] = ()
    wildcard_subscription_available: bool = True
    subscription_identifiers_available: bool = True
    shared_subscription_available: bool = True
    server_keep_alive: int | None = None  # None: ours stands
    response_information: str | None = None
    server_reference: str | None = None
    authentication_method: str | None = None
    authentication_data: bytes | None = None


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


def parse_properties(buf: bytes, pos: int) -> tuple[dict[int, Any], int]:
    """The property block at ``pos`` (MQTT 5, 2.2.2) as {identifier: value}, and the
    position after it. Values are int, str, bytes, or a list for the repeatable ones
    (user properties as (name, value) pairs, subscription identifiers as ints)."""
    parsed = read_varint(buf, pos)
    if parsed is None:
        raise MqttError("malformed packet: truncated property length", 0x81)
    length, pos = parsed
    end = pos + length
    if end > len(buf):
        raise MqttError("malformed packet: properties run past the packet", 0x81)
    props: dict[int, Any] = {}
    while pos < end:
        ident = buf[pos]  # a varint, but every identifier defined so far is < 128
        kind = PROPERTY_TYPES.get(ident)
        if kind is None:
            raise MqttError(f"malformed packet: unknown property 0x{ident:02x}", 0x81)
        value, pos = _read_value(buf, pos + 1, end, kind)
        if ident in REPEATABLE:
            props.setdefault(ident, []).append(value)
        elif ident in props:
            raise MqttError(f"protocol error: property 0x{ident:02x} given twice", 0x82)
        else:
            props[ident] = value
    return props, end


def _read_value(buf: bytes, pos: int, end: int, kind: int) -> tuple[Any, int]:
    size = _FIXED_SIZES.get(kind)
    if size is not None:
        if pos + size > end:
            raise MqttError("malformed packet: truncated property", 0x81)
        return int.from_bytes(buf[pos : pos + size], "big"), pos + size
    if kind == VARINT:
        parsed = read_varint(buf[:end], pos)
        if parsed is None:
            raise MqttError("malformed packet: truncated property", 0x81)
        return parsed
    if kind == UTF8_PAIR:
        name, pos = _read_value(buf, pos, end, UTF8)
        value, pos = _read_value(buf, pos, end, UTF8)
        return (name, value), pos
    if pos + 2 > end:
        raise MqttError("malformed packet: truncated property", 0x81)
    n = int.from_bytes(buf[pos : pos + 2], "big")
    if pos + 2 + n > end:
        raise MqttError("malformed packet: truncated property", 0x81)
    raw = bytes(buf[pos + 2 : pos + 2 + n])
    if kind == BINARY:
        return raw, pos + 2 + n
    try:
        return raw.decode("utf-8"), pos + 2 + n
    except UnicodeDecodeError:
        raise MqttError("malformed packet: a property string is not UTF-8", 0x81) from None


def encode_properties(props: Mapping[int, Any]) -> bytes:
    """The property block (length first) for {identifier: value}; the inverse of
    ``parse_properties``. Repeatable properties take a list of values."""
    out = bytearray()
    for ident, value in props.items():
        kind = PROPERTY_TYPES[ident]
        for item in value if ident in REPEATABLE else [value]:
            out.append(ident)
            size = _FIXED_SIZES.get(kind)
            if size is not None:
                out += int(item).to_bytes(size, "big")
            elif kind == VARINT:
                out += varint(item)
            elif kind == UTF8:
                out += _utf8(item)
            elif kind == BINARY:
                out += len(item).to_bytes(2, "big") + bytes(item)
            else:
                out += _utf8(item[0]) + _utf8(item[1])
    return varint(len(out)) + bytes(out)


def parse_connack(body: bytes) -> ServerInfo:
    """A CONNACK's variable header (MQTT 5, 3.2.2) as ``ServerInfo``. Raises MqttError
    for a malformed one, or one that breaks the protocol's rules for its properties."""
    if len(body) < 2:
        raise MqttError("malformed CONNACK: shorter than its fixed fields", 0x81)
    if body[0] & 0xFE:
        raise MqttError("malformed CONNACK: reserved acknowledge flags set", 0x81)
    props, end = parse_properties(body, 2) if len(body) > 2 else ({}, 2)
    if end != len(body):
        raise MqttError("malformed CONNACK: bytes after its properties", 0x81)
    stray = set(props) - CONNACK_PROPERTIES
    if stray:
        names = ", ".join(f"0x{i:02x}" for i in sorted(stray))
        raise MqttError(f"protocol error: property {names} is not allowed in CONNACK", 0x82)
    for ident in (
        MAXIMUM_QOS,
        RETAIN_AVAILABLE,
        WILDCARD_SUBSCRIPTION_AVAILABLE,
        SUBSCRIPTION_IDENTIFIERS_AVAILABLE,
        SHARED_SUBSCRIPTION_AVAILABLE,
    ):
        if props.get(ident, 0) > 1:
            raise MqttError(f"protocol error: CONNACK property 0x{ident:02x} above 1", 0x82)
    for ident in (RECEIVE_MAXIMUM, MAXIMUM_PACKET_SIZE):
        if props.get(ident) == 0:
            raise MqttError(f"protocol error: CONNACK property 0x{ident:02x} is 0", 0x82)
    return ServerInfo(
        reason_code=body[1],
        session_present=bool(body[0] & 0x01),
        session_expiry_interval=props.get(SESSION_EXPIRY),
        receive_maximum=props.get(RECEIVE_MAXIMUM, 65535),
        maximum_qos=props.get(MAXIMUM_QOS, 2),
        retain_available=bool(props.get(RETAIN_AVAILABLE, 1)),
        maximum_packet_size=props.get(MAXIMUM_PACKET_SIZE),
        assigned_client_identifier=props.get(ASSIGNED_CLIENT_IDENTIFIER),
        topic_alias_maximum=props.get(TOPIC_ALIAS_MAXIMUM, 0),
        reason_string=props.get(REASON_STRING),
        user_properties=tuple(props.get(USER_PROPERTY, ())),
        wildcard_subscription_available=bool(props.get(WILDCARD_SUBSCRIPTION_AVAILABLE, 1)),
        subscription_identifiers_available=bool(props.get(SUBSCRIPTION_IDENTIFIERS_AVAILABLE, 1)),
        shared_subscription_available=bool(props.get(SHARED_SUBSCRIPTION_AVAILABLE, 1)),
        server_keep_alive=props.get(SERVER_KEEP_ALIVE),
        response_information=props.get(RESPONSE_INFORMATION),
        server_reference=props.get(SERVER_REFERENCE),
        authentication_method=props.get(AUTHENTICATION_METHOD),
        authentication_data=props.get(AUTHENTICATION_DATA),
    )


def parse_suback(body: bytes) -> tuple[int, list[int], str | None]:
    """A SUBACK (MQTT 5, 3.9) as (packet id, one reason code per filter, reason string)."""
    if len(body) < 3:
        raise MqttError("malformed SUBACK", 0x81)
    props, pos = parse_properties(body, 2)
    return int.from_bytes(body[0:2], "big"), list(body[pos:]), props.get(REASON_STRING)


def parse_puback(body: bytes) -> tuple[int, int, str | None]:
    """A PUBACK (MQTT 5, 3.4) as (packet id, reason code, reason string). The reason code
    and the properties may be left out (then success, none)."""
    if len(body) < 2:
        raise MqttError("malformed PUBACK", 0x81)
    pid = int.from_bytes(body[0:2], "big")
    if len(body) == 2:
        return pid, 0, None
    if len(body) == 3:
        return pid, body[2], None
    return pid, body[2], parse_properties(body, 3)[0].get(REASON_STRING)


def parse_disconnect(body: bytes) -> tuple[int, str | None, str | None]:
    """A DISCONNECT (MQTT 5, 3.14) as (reason code, reason string, server reference)."""
    if not body:
        return 0, None, None
    if len(body) == 1:
        return body[0], None, None
    props, _end = parse_properties(body, 1)
    return body[0], props.get(REASON_STRING), props.get(SERVER_REFERENCE)


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
        self.server = ServerInfo()  # what the last CONNACK said
        self.subscribed = False
        self.granted: list[int] = []  # the last SUBACK's codes, one per filter
        self.last_reason_string: str | None = None  # of the last PUBACK that had one
        self.pings = 0  # PINGREQs sent ...
        self.pongs = 0  # ... and PINGRESPs received, on every connection
        self._rbuf = bytearray()
        self._wbuf = bytearray()
        self._next_pid = 0
        self._inflight: set[int] = set()  # our QoS 1 publishes awaiting PUBACK
        self._held: deque[tuple[int, bytes]] = deque()  # over the broker's receive maximum
        self._send_quota = 65535
        # The CONNACK's limits as plain attributes: publish() checks them per message.
        self._max_packet = 268_435_460  # the protocol's own (a 4-byte remaining length)
        self._max_qos = 2
        self._retain_ok = True
        self._keepalive_s = keepalive  # ours, or the broker's Server Keep Alive
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
        props = encode_properties(
            {SESSION_EXPIRY: self.session_expiry, RECEIVE_MAXIMUM: self.receive_maximum}
        )
        flags = 0x02 if self.clean_start else 0x00
        payload = _utf8(self.client_id)
        if self.username is not None:
            flags |= 0x80
            payload += _utf8(self.username)
        if self.password is not None:
            flags |= 0x40
            payload += _utf8(self.password)
        body = _utf8("MQTT") + bytes([5, flags]) + self.keepalive.to_bytes(2, "big")
        body += props + payload
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
        if kind != CONNACK:
            sock.close()
            raise MqttError(f"expected CONNACK, got packet type {kind}")
        try:
            server = parse_connack(ack)
        except MqttError:
            sock.close()
            raise
        if server.reason_code >= 0x80:
            sock.close()
            why = describe(server.reason_code, server.reason_string)
            if server.server_reference:
                why += f"; the broker points to {server.server_reference}"
            raise MqttError(f"connection refused by the broker: {why}", server.reason_code)
        self.server = server
        self.session_present = server.session_present
        self._send_quota = server.receive_maximum
        self._max_packet = server.maximum_packet_size or 268_435_460
        self._max_qos = server.maximum_qos
        self._retain_ok = server.retain_available
        # 3.2.2.3.14: the broker's keep alive, when it sends one, is the one to keep.
        ka = server.server_keep_alive
        self._keepalive_s = self.keepalive if ka is None else ka
        if server.assigned_client_identifier:
            # We sent no id: this one names our session; a reconnect resumes it.
            self.client_id = server.assigned_client_identifier
        self.granted = []
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

    def _fail(self, why: str, reason_code: int | None = None) -> NoReturn:
        if self.sock is not None:
            self.sock.close()
        self.sock = None
        self.subscribed = False
        raise MqttError(why, reason_code)

    # -- requests --------------------------------------------------------------------------
    def _pid(self) -> int:
        for _ in range(65535):
            self._next_pid = self._next_pid % 65535 + 1
            if self._next_pid not in self._inflight and self._next_pid != self._sub_pid:
                return self._next_pid
        raise MqttError("no free packet identifier")

    def subscribe(self, filters: list[tuple[str, int]]) -> None:
        """Queue a SUBSCRIBE; ``subscribed`` turns true on its SUBACK, and ``granted``
        holds the QoS granted per filter. A refused filter fails the connection."""
        for topic, _qos in filters:
            shared = topic.startswith("$share/")
            if shared and not self.server.shared_subscription_available:
                raise ServerLimitError(f"the broker has no shared subscriptions: {topic}", 0x9E)
            if ("+" in topic or "#" in topic) and not self.server.wildcard_subscription_available:
                raise ServerLimitError(f"the broker has no wildcard subscriptions: {topic}", 0xA2)
        pid = self._pid()
        body = pid.to_bytes(2, "big") + b"\x00"
        for topic, qos in filters:
            body += _utf8(topic) + bytes([qos])
        packet = _packet(0x82, body)
        self._check_size(len(packet), "SUBSCRIBE")
        self._sub_pid = pid
        self._wbuf += packet

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> int:
        """Queue a publish; returns its packet id (0 for QoS 0). ``on_puback`` reports it.

        Raises ServerLimitError, sending nothing, for what the broker said it would not
        take: a QoS above its Maximum QoS, retain without Retain Available, a packet over
        its Maximum Packet Size."""
        if qos > self._max_qos or (retain and not self._retain_ok):
            self._refuse(topic, qos, retain)
        pid = self._pid() if qos else 0
        body = _utf8(topic) + (pid.to_bytes(2, "big") if qos else b"") + b"\x00" + payload
        packet = _packet((PUBLISH << 4) | (qos << 1) | int(retain), body)
        if len(packet) > self._max_packet:
            self._check_size(len(packet), f"PUBLISH to {topic}")
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

    def _refuse(self, topic: str, qos: int, retain: bool) -> NoReturn:
        if qos > self._max_qos:
            raise ServerLimitError(
                f"the broker takes QoS {self._max_qos} at most: QoS {qos} to {topic} not sent",
                0x9B,
            )
        raise ServerLimitError(
            f"the broker does not keep retained messages: retained {topic} not sent", 0x9A
        )

    def _check_size(self, size: int, what: str) -> None:
        if size > self._max_packet:
            raise ServerLimitError(
                f"{what} is {size} bytes, over the broker's maximum packet size of "
                f"{self._max_packet}: not sent",
                0x95,
            )

    @property
    def inflight(self) -> int:
        """Our QoS 1 publishes not acked yet, including those held back (``held``)."""
        return len(self._inflight)

    @property
    def held(self) -> int:
        """Publishes queued but not sent: the broker's Receive Maximum is reached."""
        return len(self._held)

    @property
    def keepalive_interval(self) -> int:
        """The keep alive in force: ours, or the broker's Server Keep Alive."""
        return self._keepalive_s

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
                if len(body) == 2:  # success, as Mosquitto sends it: the fast path
                    pid, reason = int.from_bytes(body, "big"), 0
                else:
                    try:
                        pid, reason, why = parse_puback(body)
                    except MqttError as exc:
                        self._fail(f"{exc} from the broker", 0x81)
                    if why is not None:
                        self.last_reason_string = why
                self._inflight.discard(pid)
                if self._held and len(self._inflight) - len(self._held) < self._send_quota:
                    _held_pid, packet = self._held.popleft()
                    self._wbuf += packet
                if self.on_puback is not None:
                    self.on_puback(pid, reason)
            elif kind == SUBACK:
                _pid, codes, why = parse_suback(body)
                self.granted = codes
                refused = [describe(code) for code in codes if code >= 0x80]
                if refused:
                    detail = f" ({why})" if why else ""
                    self._fail(f"subscription refused: {', '.join(refused)}{detail}", codes[0])
                self.subscribed = True
                self._sub_pid = None
            elif kind == PINGRESP:
                self._ping_sent = None
                self.pongs += 1
            elif kind == DISCONNECT:
                try:
                    reason, why, moved = parse_disconnect(body)
                except MqttError:
                    reason, why, moved = (body[0] if body else 0), None, None
                text = describe(reason, why) + (f"; use {moved}" if moved else "")
                self._fail(f"the broker disconnected us: {text}", reason)
            # QoS 2 is never subscribed to or published here; anything else is ignored.

    def _keepalive(self) -> None:
        interval = self._keepalive_s
        if not interval:  # 0: the broker (or we) turned keep alive off
            return
        now = time.monotonic()
        if self._ping_sent is not None and now - self._ping_sent > interval:
            self._fail("no PINGRESP from the broker")
        if self._ping_sent is None and now - self._last_write > interval / 2:
            self._wbuf += b"\xc0\x00"
            self._ping_sent = now
            self.pings += 1

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
