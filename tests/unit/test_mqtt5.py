"""The bridge's MQTT 5 framing and property parsing (hub/mqtt5.py): pure parts, no broker.
Against a real Mosquitto: tests/integration/test_mqtt5_conformance.py."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from hub import mqtt5 as m
from hub.mqtt5 import (
    PUBLISH,
    Message,
    MqttError,
    ServerInfo,
    _packet,
    _utf8,
    encode_properties,
    parse_connack,
    parse_disconnect,
    parse_properties,
    parse_puback,
    parse_publish,
    parse_suback,
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


# -- properties (MQTT 5, 2.2.2) --------------------------------------------------------------


def test_each_property_type_parses_from_hand_written_bytes():
    body = (
        b"\x01\x01"  # payload format indicator: byte
        b"\x13\x00\x3c"  # server keep alive: two-byte integer
        b"\x27\x00\x01\x00\x00"  # maximum packet size: four-byte integer
        b"\x0b\xc0\x84\x3d"  # subscription identifier: varint 1,000,000
        b"\x1f\x00\x04d\xc3\xa9j"  # reason string: UTF-8 "déj"
        b"\x16\x00\x03\x00\xff\x01"  # authentication data: binary
        b"\x26\x00\x01k\x00\x01v"  # user property: string pair
        b"\x26\x00\x01k\x00\x02v2"  # ... which may repeat
    )
    block = varint(len(body)) + body
    props, end = parse_properties(b"\xaa" + block + b"rest", 1)
    assert end == 1 + len(block)
    assert props == {
        m.PAYLOAD_FORMAT_INDICATOR: 1,
        m.SERVER_KEEP_ALIVE: 60,
        m.MAXIMUM_PACKET_SIZE: 65536,
        m.SUBSCRIPTION_IDENTIFIER: [1_000_000],
        m.REASON_STRING: "déj",
        m.AUTHENTICATION_DATA: b"\x00\xff\x01",
        m.USER_PROPERTY: [("k", "v"), ("k", "v2")],
    }
    assert encode_properties(props) == block  # and back, byte for byte


def _value(kind: int):
    return {
        m.BYTE: st.integers(0, 0xFF),
        m.TWO_BYTE_INT: st.integers(0, 0xFFFF),
        m.FOUR_BYTE_INT: st.integers(0, 0xFFFF_FFFF),
        m.VARINT: st.integers(1, 268_435_455),
        m.UTF8: st.text(max_size=40),
        m.BINARY: st.binary(max_size=40),
        m.UTF8_PAIR: st.tuples(st.text(max_size=10), st.text(max_size=10)),
    }[kind]


@st.composite
def property_sets(draw, allowed=tuple(m.PROPERTY_TYPES)):
    idents = draw(st.sets(st.sampled_from(sorted(allowed))))
    props = {}
    for ident in sorted(idents):
        value = _value(m.PROPERTY_TYPES[ident])
        repeated = ident in m.REPEATABLE
        props[ident] = draw(st.lists(value, min_size=1, max_size=4) if repeated else value)
    return props


@given(property_sets())
def test_any_property_set_round_trips(props):
    block = encode_properties(props)
    assert parse_properties(block, 0) == (props, len(block))


@given(property_sets(), st.data())
def test_a_cut_property_block_is_an_mqtt_error_not_a_crash(props, data):
    assume(props)
    block = encode_properties(props)
    _length, start = read_varint(block, 0)
    cut = data.draw(st.integers(start, len(block) - 1))
    # The length still claims the whole block: the packet ends inside it.
    with pytest.raises(MqttError, match="malformed"):
        parse_properties(block[:cut], 0)
    # Or the length itself is shortened, so a property may be cut in the middle.
    shortened = varint(cut - start) + block[start:cut]
    try:
        got, _ = parse_properties(shortened, 0)
    except MqttError:
        return
    # A cut that falls between properties leaves a leading part of them, intact.
    for ident, value in got.items():
        want = props[ident][: len(value)] if ident in m.REPEATABLE else props[ident]
        assert value == want


@given(st.binary(max_size=60))
def test_arbitrary_bytes_parse_or_raise_mqtt_error(junk):
    try:
        props, end = parse_properties(junk, 0)
    except MqttError:
        return
    assert end <= len(junk)
    assert set(props) <= set(m.PROPERTY_TYPES)


def test_property_protocol_errors():
    with pytest.raises(MqttError, match="unknown property 0x7f"):
        parse_properties(b"\x02\x7f\x00", 0)
    with pytest.raises(MqttError, match="given twice"):
        parse_properties(b"\x04\x24\x01\x24\x00", 0)
    with pytest.raises(MqttError, match="not UTF-8"):
        parse_properties(b"\x05\x1f\x00\x02\xff\xfe", 0)


# -- CONNACK (3.2) -----------------------------------------------------------------------------


def connack(props: dict, flags: int = 0, reason: int = 0) -> bytes:
    return bytes([flags, reason]) + encode_properties(props)


def test_connack_without_properties_has_the_protocol_defaults():
    info = parse_connack(b"\x01\x00\x00")
    assert info == ServerInfo(session_present=True)
    assert info.receive_maximum == 65535 and info.maximum_qos == 2 and info.retain_available
    assert info.maximum_packet_size is None and info.topic_alias_maximum == 0
    assert info.server_keep_alive is None
    assert parse_connack(b"\x00\x00") == ServerInfo()  # no property length at all


def test_connack_with_every_property():
    props = {
        m.SESSION_EXPIRY: 3600,
        m.RECEIVE_MAXIMUM: 20,
        m.MAXIMUM_QOS: 1,
        m.RETAIN_AVAILABLE: 0,
        m.MAXIMUM_PACKET_SIZE: 4096,
        m.ASSIGNED_CLIENT_IDENTIFIER: "auto-1F2E",
        m.TOPIC_ALIAS_MAXIMUM: 10,
        m.REASON_STRING: "welcome",
        m.USER_PROPERTY: [("region", "eu"), ("region", "us")],
        m.WILDCARD_SUBSCRIPTION_AVAILABLE: 0,
        m.SUBSCRIPTION_IDENTIFIERS_AVAILABLE: 0,
        m.SHARED_SUBSCRIPTION_AVAILABLE: 0,
        m.SERVER_KEEP_ALIVE: 5,
        m.RESPONSE_INFORMATION: "resp/",
        m.SERVER_REFERENCE: "other:1883",
        m.AUTHENTICATION_METHOD: "SCRAM-SHA-1",
        m.AUTHENTICATION_DATA: b"\x00\x01",
    }
    assert set(props) == m.CONNACK_PROPERTIES  # the test covers all of them
    assert parse_connack(connack(props, flags=1)) == ServerInfo(
        reason_code=0,
        session_present=True,
        session_expiry_interval=3600,
        receive_maximum=20,
        maximum_qos=1,
        retain_available=False,
        maximum_packet_size=4096,
        assigned_client_identifier="auto-1F2E",
        topic_alias_maximum=10,
        reason_string="welcome",
        user_properties=(("region", "eu"), ("region", "us")),
        wildcard_subscription_available=False,
        subscription_identifiers_available=False,
        shared_subscription_available=False,
        server_keep_alive=5,
        response_information="resp/",
        server_reference="other:1883",
        authentication_method="SCRAM-SHA-1",
        authentication_data=b"\x00\x01",
    )


@given(property_sets(allowed=tuple(m.CONNACK_PROPERTIES)), st.booleans())
def test_any_valid_connack_parses_to_its_properties(props, present):
    # Keep to the values the protocol allows (3.2.2.3): booleans 0/1, maxima above 0.
    for ident in (m.MAXIMUM_QOS, m.RETAIN_AVAILABLE, m.WILDCARD_SUBSCRIPTION_AVAILABLE):
        if ident in props:
            props[ident] &= 1
    for ident in (m.SUBSCRIPTION_IDENTIFIERS_AVAILABLE, m.SHARED_SUBSCRIPTION_AVAILABLE):
        if ident in props:
            props[ident] &= 1
    for ident in (m.RECEIVE_MAXIMUM, m.MAXIMUM_PACKET_SIZE):
        if ident in props:
            props[ident] = max(1, props[ident])
    info = parse_connack(connack(props, flags=int(present)))
    assert info.session_present is present
    assert info.receive_maximum == props.get(m.RECEIVE_MAXIMUM, 65535)
    assert info.maximum_packet_size == props.get(m.MAXIMUM_PACKET_SIZE)
    assert info.topic_alias_maximum == props.get(m.TOPIC_ALIAS_MAXIMUM, 0)
    assert info.server_keep_alive == props.get(m.SERVER_KEEP_ALIVE)
    assert info.maximum_qos == props.get(m.MAXIMUM_QOS, 2)
    assert info.retain_available == bool(props.get(m.RETAIN_AVAILABLE, 1))
    assert info.assigned_client_identifier == props.get(m.ASSIGNED_CLIENT_IDENTIFIER)
    assert info.reason_string == props.get(m.REASON_STRING)
    assert info.user_properties == tuple(props.get(m.USER_PROPERTY, ()))
    assert info.authentication_data == props.get(m.AUTHENTICATION_DATA)


@pytest.mark.parametrize(
    "body, why",
    [
        (b"\x00", "shorter"),
        (b"\x02\x00\x00", "reserved"),
        (connack({m.RECEIVE_MAXIMUM: 0}), "0x21 is 0"),
        (connack({m.MAXIMUM_PACKET_SIZE: 0}), "0x27 is 0"),
        (connack({m.MAXIMUM_QOS: 2}), "0x24 above 1"),
        (connack({m.RETAIN_AVAILABLE: 2}), "0x25 above 1"),
        (connack({m.PAYLOAD_FORMAT_INDICATOR: 1}), "0x01 is not allowed in CONNACK"),
        (connack({m.TOPIC_ALIAS: 3}), "0x23 is not allowed"),
        (connack({}) + b"\x00", "after its properties"),
        (b"\x00\x00\x05\x21\x00", "malformed"),
    ],
)
def test_broken_connacks_are_refused(body, why):
    with pytest.raises(MqttError, match=why):
        parse_connack(body)


# -- acks and DISCONNECT -----------------------------------------------------------------------


def test_suback_puback_disconnect_reason_codes_and_strings():
    why = {m.REASON_STRING: "ACL"}
    assert parse_suback(b"\x00\x07\x00\x01\x87") == (7, [1, 0x87], None)
    assert parse_suback(b"\x00\x07" + encode_properties(why) + b"\x87") == (7, [0x87], "ACL")
    assert parse_puback(b"\x00\x09") == (9, 0, None)  # reason and properties left out
    assert parse_puback(b"\x00\x09\x10") == (9, 0x10, None)
    assert parse_puback(b"\x00\x09\x87" + encode_properties(why)) == (9, 0x87, "ACL")
    assert parse_disconnect(b"") == (0, None, None)
    assert parse_disconnect(b"\x8e") == (0x8E, None, None)
    moved = encode_properties({m.REASON_STRING: "moved", m.SERVER_REFERENCE: "b:1883"})
    assert parse_disconnect(b"\x9d" + moved) == (0x9D, "moved", "b:1883")
    assert m.describe(0x95) == "0x95 packet too large"
    assert m.describe(0x87, "ACL") == "0x87 not authorized (ACL)"
    for bad in (b"\x00", b""):
        with pytest.raises(MqttError):
            parse_puback(bad)
    with pytest.raises(MqttError):
        parse_suback(b"\x00\x01")
