"""The bridge's MQTT 5 framing (hub/mqtt5.py): pure parts, no broker."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.mqtt5 import (
    PUBLISH,
    Message,
    MqttError,
    _packet,
    _utf8,
    parse_publish,
    read_varint,
    split_packets,
    varint,
)


@given(st.integers(min_value=0, max_value=268_435_455))
def test_varint_round_trips(n):
    data = varint(n)
    assert 1 <= len(data) <= 4
    assert read_varint(data, 0) == (n, len(data))


def test_varint_known_values():
    assert varint(0) == b"\x00"
    assert varint(127) == b"\x7f"
    assert varint(128) == b"\x80\x01"
    assert varint(16_383) == b"\xff\x7f"
    assert read_varint(b"\x80", 0) is None  # more bytes to come
    with pytest.raises(MqttError):
        read_varint(b"\xff\xff\xff\xff\x01", 0)


def publish(topic: str, payload: bytes, qos: int = 1, pid: int = 7, retain=False) -> bytes:
    body = _utf8(topic) + (pid.to_bytes(2, "big") if qos else b"") + b"\x00" + payload
    return _packet((PUBLISH << 4) | (qos << 1) | int(retain), body)


def test_split_packets_keeps_a_partial_packet_for_later():
    a = publish("hub/h1/state/lamp", b'{"state":{}}')
    b = publish("hub/h1/state/plug", b"x" * 300, qos=0, retain=True)
    buf = bytearray(a + b + b[:5])
    packets, used = split_packets(buf)
    assert used == len(a) + len(b)
    assert [p[0] for p in packets] == [PUBLISH, PUBLISH]
    first = parse_publish(packets[0][1], packets[0][2])
    assert first == Message("hub/h1/state/lamp", b'{"state":{}}', 1, False, 7)
    second = parse_publish(packets[1][1], packets[1][2])
    assert (second.qos, second.retain, second.packet_id, len(second.payload)) == (0, True, 0, 300)


@given(
    st.lists(
        st.tuples(
            st.text(min_size=1, max_size=30).filter(lambda s: "\x00" not in s),
            st.binary(max_size=400),
            st.sampled_from([0, 1]),
            st.integers(1, 65535),
        ),
        max_size=8,
    ),
    st.integers(1, 50),
)
def test_any_stream_of_publishes_splits_back_into_the_same_messages(items, chunk):
    stream = b"".join(publish(t, p, q, pid) for t, p, q, pid in items)
    buf, got = bytearray(), []
    for i in range(0, len(stream), chunk):  # arrives in arbitrary pieces
        buf += stream[i : i + chunk]
        packets, used = split_packets(buf)
        del buf[:used]
        got += [parse_publish(f, b) for _k, f, b in packets]
    assert not buf
    assert [(m.topic, m.payload, m.qos, m.packet_id if m.qos else 0) for m in got] == [
        (t, p, q, pid if q else 0) for t, p, q, pid in items
    ]
