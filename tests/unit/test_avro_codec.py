"""SingleObjectCodec: round trips, the wire layout, and the error messages."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import uuid
from pathlib import Path

import pytest

from topics.codec import Decoded, SingleObjectCodec, make_codec
from topics.errors import CodecError, DecodeError, EncodeError, UnknownSchemaError
from topics.schemas import SchemaStore, default_avro_dir
from topics.state_change import encode_state, state_of

from .test_avro_schemas import RICH_STATE, STORE, TS_MS, sample_record, sample_value

CODEC = SingleObjectCodec(STORE)
AVRO = default_avro_dir()
EVENT_ID = "3f1c1a52-8a4b-4c8e-9d61-0c6a1b2f9e10"


def report(**overrides: object) -> dict:
    base = {
        "event_id": EVENT_ID,
        "home_id": "home-1",
        "ts": TS_MS,
        "device_id": "living-room-ceiling",
        "state": dict(RICH_STATE),
        "received_at": TS_MS + 5,
    }
    return base | overrides


@pytest.mark.parametrize("name", STORE.names())
def test_every_schema_round_trips(name: str) -> None:
    record = sample_record(name)
    decoded = CODEC.decode(CODEC.encode(name, record))
    latest = STORE.latest(name).version
    assert decoded == Decoded(name, latest, record, latest)


def test_wire_layout_is_avro_single_object_encoding() -> None:
    data = CODEC.encode("DeviceReport", report())
    sv = STORE.latest("DeviceReport")
    assert data[:2] == b"\xc3\x01"
    assert int.from_bytes(data[2:10], "little") == sv.fingerprint
    # The body is plain Avro binary: the first field, event_id, is a length-prefixed string.
    assert data[10] == len(EVENT_ID) * 2  # zig-zag varint of 36
    assert data[11 : 11 + len(EVENT_ID)] == EVENT_ID.encode()


def test_state_values_decode_to_plain_python() -> None:
    decoded = CODEC.decode(CODEC.encode("DeviceReport", report()))
    state = decoded.record["state"]
    assert state == RICH_STATE
    assert type(state["brightness"]) is int and type(state["temperature"]) is float
    assert state["motion"] is True and state["lockState"] is None
    assert type(state["color"]) is dict
    assert type(decoded.record["ts"]) is int  # epoch ms, not datetime
    assert decoded.record["event_id"] == EVENT_ID  # str, not uuid.UUID


def test_defaults_fill_missing_optional_fields() -> None:
    decoded = CODEC.decode(CODEC.encode("DeviceReport", report()))
    assert decoded.record["source"] == "mqtt"
    req = sample_record("CommandRequested")
    del req["timeout_ms"], req["parameters"], req["group_id"]
    decoded = CODEC.decode(CODEC.encode("CommandRequested", req))
    assert decoded.record["timeout_ms"] == 5000
    assert decoded.record["parameters"] == {}
    assert decoded.record["group_id"] is None


def test_state_change_carries_deep_shadows_in_its_one_encoding() -> None:
    deep = {"config": {"schedule": [{"at": "07:00", "temp": 21}]}}
    text = encode_state(changed=deep, reported=deep, desired={}, desired_changed={}, delta={})
    empty = {k: {} for k in ("changed", "reported", "desired", "desired_changed", "delta")}
    record = sample_record("StateChange") | empty | {"state": text, "state_json": None}
    decoded = CODEC.decode(CODEC.encode("StateChange", record))
    assert state_of(decoded.record).reported == deep
    assert decoded.record["reported"] == {}  # the version 1 maps stay empty


def test_state_change_v1_records_read_the_same_as_v2(tmp_path: Path) -> None:
    """Both ways version 1 carried state (the maps, state_json for deep shadows) read
    through the version 2 reader into the same ChangeState."""
    v1 = STORE.get("StateChange", 1)
    (tmp_path / "StateChange").mkdir()
    shutil.copy(AVRO / "StateChange/v1.avsc", tmp_path / "StateChange/v1.avsc")
    old_codec = SingleObjectCodec(SchemaStore(tmp_path))
    flat = {"powerState": "ON", "color": {"hue": 120, "saturation": 50}}
    deep = {"config": {"schedule": [{"at": "07:00"}]}}
    base = sample_value(v1.schema, {})
    maps = base | {"changed": flat, "reported": flat, "desired": {}, "desired_changed": {}}
    maps |= {"delta": {}, "state_json": None}
    empty = {k: {} for k in ("changed", "reported", "desired", "desired_changed", "delta")}
    fallback = base | empty | {"state_json": json.dumps({"changed": deep, "reported": deep})}
    for record, want in ((maps, flat), (fallback, deep)):
        data = old_codec.encode("StateChange", record)
        decoded = CODEC.decode(data)
        assert (decoded.writer_version, decoded.version) == (1, STORE.latest("StateChange").version)
        state = state_of(decoded.record)
        assert state.changed == want and state.reported == want and state.desired == {}


def test_accepts_aware_datetimes_and_uuid_objects() -> None:
    when = dt.datetime(2024, 5, 1, 12, 0, 0, 250_000, tzinfo=dt.UTC)
    event_id = uuid.uuid4()
    decoded = CODEC.decode(CODEC.encode("DeviceReport", report(ts=when, event_id=event_id)))
    assert decoded.record["ts"] == int(when.timestamp() * 1000)
    assert decoded.record["event_id"] == str(event_id)


def test_bool_is_not_a_number_and_int_stays_int() -> None:
    decoded = CODEC.decode(CODEC.encode("DeviceReport", report(state={"a": True, "b": 1})))
    assert decoded.record["state"] == {"a": True, "b": 1}
    assert type(decoded.record["state"]["b"]) is int


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (report(ts="abc"), "DeviceReport.ts: expected long, got str 'abc'"),
        (report(ts=True), "DeviceReport.ts: expected long, got bool True"),
        (report(ts=2**64), "DeviceReport.ts: expected long, got int 18446744073709551616"),
        (report(home_id=None), "DeviceReport.home_id: expected string, got NoneType None"),
        (report(event_id="nope"), "DeviceReport.event_id: expected a UUID string, got str 'nope'"),
        (
            report(state={"color": {"hue": [1, 2]}}),
            "DeviceReport.state['color']['hue']: expected null | boolean | long | double | string,"
            " got list [1, 2]",
        ),
        (
            report(state={"a": {"b": {"c": 1}}}),
            "DeviceReport.state['a']['b']: expected null | boolean | long | double | string, "
            "got dict {'c': 1}",
        ),
        (report(state=[1]), "DeviceReport.state: expected map<null | boolean | long"),
        (report(state={1: "x"}), "DeviceReport.state: map keys must be str, got int 1"),
        (report(colour=1), "DeviceReport.colour: unknown field (not in record DeviceReport)"),
        (
            report(ts=dt.datetime(2024, 1, 1)),
            "DeviceReport.ts: expected epoch ms or an aware datetime, got naive",
        ),
        ({"event_id": EVENT_ID}, "DeviceReport.home_id: missing required field of type string"),
        ("not a dict", "DeviceReport: expected record DeviceReport, got str 'not a dict'"),
    ],
)
def test_encode_errors_name_the_field_and_types(record: object, message: str) -> None:
    with pytest.raises(EncodeError) as err:
        CODEC.encode("DeviceReport", record)  # type: ignore[arg-type]
    assert str(err.value).startswith(message)


def test_encode_errors_in_nested_records_enums_and_arrays() -> None:
    dead = sample_record("DeadLetter")
    with pytest.raises(EncodeError, match=r"^DeadLetter\.source\.kafka_offset: expected null \| "):
        CODEC.encode("DeadLetter", dead | {"source": dead["source"] | {"kafka_offset": "7"}})
    with pytest.raises(EncodeError, match=r"^DeadLetter\.reason: expected one of \['UNKNOWN', "):
        CODEC.encode("DeadLetter", dead | {"reason": "BOGUS"})
    with pytest.raises(EncodeError, match=r"^DeadLetter\.original: expected bytes, got str"):
        CODEC.encode("DeadLetter", dead | {"original": "text"})
    disc = sample_record("DeviceDiscovered")
    with pytest.raises(EncodeError, match=r"^DeviceDiscovered\.capabilities\[1\]: expected string"):
        CODEC.encode("DeviceDiscovered", disc | {"capabilities": ["ON_OFF", 3]})


def test_encode_unknown_record_type() -> None:
    with pytest.raises(EncodeError, match="unknown record type 'Nope'; known: AutomationFired"):
        CODEC.encode("Nope", {})


def test_encode_unencodable_text_is_an_encode_error() -> None:
    with pytest.raises(EncodeError, match="DeviceReport: cannot encode"):
        CODEC.encode("DeviceReport", report(device_id="\ud800"))


@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        (b"", DecodeError, "expected marker c301, got ''"),
        (b"{}", DecodeError, "not Avro single-object encoding"),
        (b"\xc3\x01\x00", DecodeError, "truncated single-object header: 3 bytes"),
        (b"\x00\x00\x00\x00\x07xyz", DecodeError, "Confluent wire format"),
        (
            b"\xc3\x01" + b"\x11" * 8,
            UnknownSchemaError,
            "unknown schema fingerprint 0x1111111111111111",
        ),
        ("text", DecodeError, "expected bytes, got str"),
        (None, DecodeError, "expected bytes, got NoneType"),
    ],
)
def test_decode_errors(data: bytes, error: type[CodecError], message: str) -> None:
    with pytest.raises(error, match=message.replace("(", r"\(")):
        CODEC.decode(data)


def test_decode_truncated_and_padded_bodies() -> None:
    data = CODEC.encode("DeviceReport", report())
    for cut in (11, 30, len(data) - 1):
        with pytest.raises(DecodeError, match="cannot decode DeviceReport v2 body"):
            CODEC.decode(data[:cut])
    with pytest.raises(DecodeError, match="1 trailing byte"):
        CODEC.decode(data + b"\x00")


def test_decode_accepts_bytearray_and_memoryview() -> None:
    data = CODEC.encode("HubStatus", sample_record("HubStatus"))
    assert CODEC.decode(bytearray(data)) == CODEC.decode(memoryview(data)) == CODEC.decode(data)


def test_make_codec_without_registry_is_single_object() -> None:
    assert isinstance(make_codec(STORE, None), SingleObjectCodec)
    assert isinstance(make_codec(STORE, ""), SingleObjectCodec)


@pytest.mark.parametrize("name", STORE.names())
def test_trusted_encoding_is_byte_identical(name: str) -> None:
    record = sample_record(name)
    assert CODEC.encode(name, record, trusted=True) == CODEC.encode(name, record)


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (report(ts="abc"), "DeviceReport.ts: expected long"),
        (report(home_id=None), "DeviceReport.home_id: expected string"),
        (report(state=[1]), "DeviceReport.state: expected map"),
        ({"event_id": EVENT_ID}, "DeviceReport.home_id: missing required field"),
    ],
)
def test_trusted_encoding_falls_back_to_the_checked_error(record: dict, message: str) -> None:
    # What fastavro refuses still gets the message that names the field.
    with pytest.raises(EncodeError) as err:
        CODEC.encode("DeviceReport", record, trusted=True)
    assert str(err.value).startswith(message)
