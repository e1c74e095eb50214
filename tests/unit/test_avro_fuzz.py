"""decode() raises nothing but CodecError on any bytes; encode/decode round-trips any state."""

from __future__ import annotations

import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from topics.codec import SingleObjectCodec
from topics.errors import CodecError

from .test_avro_schemas import STORE, sample_record

CODEC = SingleObjectCodec(STORE)
VALID = [CODEC.encode(name, sample_record(name)) for name in STORE.names()]
HEADERS = [b"\xc3\x01" + sv.fingerprint_bytes for sv in STORE]
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def decodes_or_codec_error(data: bytes) -> None:
    try:
        decoded = CODEC.decode(data)
    except CodecError:
        return
    # Whatever decodes must be a well-formed record of a known type.
    assert decoded.name in STORE
    assert isinstance(decoded.record, dict)
    assert isinstance(decoded.record["home_id"], str)


@FUZZ
@given(st.binary(max_size=200))
def test_random_bytes(data: bytes) -> None:
    decodes_or_codec_error(data)


@FUZZ
@given(st.sampled_from(HEADERS), st.binary(max_size=200))
def test_valid_header_random_body(header: bytes, body: bytes) -> None:
    decodes_or_codec_error(header + body)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(VALID)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[pos] = draw(st.sampled_from([0x00, 0x01, 0x7F, 0x80, 0xFF]))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=9))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 8))]
        else:
            del data[pos:]
    return bytes(data)


@FUZZ
@given(mutated())
def test_mutated_valid_messages(data: bytes) -> None:
    decodes_or_codec_error(data)


@FUZZ
@given(st.sampled_from(VALID), st.integers(10, 10_000))
def test_bodies_with_huge_length_prefixes(valid: bytes, n: int) -> None:
    # A huge varint where a string length or block count is expected must not hang or
    # allocate: it is just a DecodeError.
    huge = bytes([0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01])
    pos = 10 + n % max(len(valid) - 10, 1)
    decodes_or_codec_error(valid[:pos] + huge + valid[pos:])


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=20),
)
attr_names = st.text(string.ascii_letters, min_size=1, max_size=12)
states = st.dictionaries(
    attr_names, st.one_of(scalars, st.dictionaries(attr_names, scalars, max_size=4)), max_size=8
)


@settings(max_examples=200, deadline=None)
@given(states, st.text(max_size=30), st.integers(0, 2**62))
def test_any_state_round_trips(state: dict, home: str, ts: int) -> None:
    record = sample_record("DeviceReport") | {"state": state, "home_id": home, "ts": ts}
    decoded = CODEC.decode(CODEC.encode("DeviceReport", record))
    assert decoded.record["state"] == state
    assert decoded.record["home_id"] == home and decoded.record["ts"] == ts
    for key, value in state.items():
        assert type(decoded.record["state"][key]) is type(value)
