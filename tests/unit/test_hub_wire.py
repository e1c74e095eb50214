"""hub.wire: hub MQTT topics and JSON payloads <-> Avro events (CONTRACT.md section 2)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from hub import wire
from hub.wire import Ignored, Inbound, Outbound, Rejected, dead_letter, encode_outbound, parse
from topics import catalogue as t
from topics.codec import SingleObjectCodec
from topics.schemas import SchemaStore

STORE = SchemaStore()
CODEC = SingleObjectCodec(STORE)
NOW = 1_700_000_000_123
HUB_TS = 1_699_999_999_000


def dead_letter_reasons() -> set[str]:
    schema = STORE.latest("DeadLetter").schema
    field = next(f for f in schema["fields"] if f["name"] == "reason")
    return set(field["type"]["symbols"]) - {"UNKNOWN"}


def j(value: Any) -> bytes:
    return json.dumps(value).encode()


def inbound(topic: str, payload: bytes, **kw: Any) -> Inbound:
    result = parse(topic, payload, received_at=NOW, **kw)
    assert isinstance(result, Inbound), result
    return result


def rejected(topic: str, payload: bytes, **kw: Any) -> Rejected:
    result = parse(topic, payload, received_at=NOW, **kw)
    assert isinstance(result, Rejected), result
    return result


def roundtrip(result: Inbound) -> dict[str, Any]:
    """Encode as the bridge does, decode, and return the record."""
    record = {"event_id": str(uuid.uuid4()), "home_id": result.home_id, **result.fields}
    decoded = CODEC.decode(CODEC.encode(result.record_name, record))
    assert decoded.name == result.record_name
    assert result.record_name in t.topic(result.kafka_topic).value_schemas
    return decoded.record


def schema_fields(name: str) -> set[str]:
    return {f["name"] for f in STORE.latest(name).schema["fields"]} - {"event_id", "home_id"}


# -- every kind of hub -> cloud message ------------------------------------------------------
VALID = [
    ("hub/h1/status", b"online", "HubStatus", t.HUB_STATUS),
    ("hub/h1/availability/lamp", b'"offline"', "Availability", t.DEVICE_AVAILABILITY),
    (
        "hub/h1/discovery/lamp",
        j({"name": "Lamp", "type": "light.dimmer", "capabilities": ["ON_OFF", "BRIGHTNESS"]}),
        "DeviceDiscovered",
        t.DEVICE_DISCOVERY,
    ),
    ("hub/h1/discovery/lamp", b"", "DeviceRemoved", t.DEVICE_DISCOVERY),
    ("hub/h1/state/lamp", j({"state": {"brightness": 40}}), "DeviceReport", t.DEVICE_REPORTS),
    ("hub/h1/event/door", j({"event": "ring"}), "DeviceEvent", t.DEVICE_EVENTS),
    (
        "hub/h1/ack/lamp",
        j({"command_id": "c1", "status": "COMPLETED"}),
        "HubAck",
        t.COMMANDS_ACKS,
    ),
    (
        "hub/h1/shadow/lamp/update",
        j({"state": {"desired": {"brightness": 10}}}),
        "ShadowUpdateRequest",
        t.SHADOW_REQUESTS,
    ),
    ("hub/h1/shadow/lamp/get", b"", "ShadowUpdateRequest", t.SHADOW_REQUESTS),
    ("hub/h1/shadow/lamp/delete", b"{}", "ShadowUpdateRequest", t.SHADOW_REQUESTS),
]


@pytest.mark.parametrize(("topic", "payload", "name", "kafka_topic"), VALID)
def test_every_kind_maps_to_its_record_and_encodes(topic, payload, name, kafka_topic):
    result = inbound(topic, payload)
    assert (result.record_name, result.kafka_topic, result.home_id) == (name, kafka_topic, "h1")
    # Every field of the record but event_id and home_id, so nothing relies on defaults.
    assert set(result.fields) == schema_fields(name)
    record = roundtrip(result)
    assert record["ts"] == NOW
    if "device_id" in result.fields:
        assert record["device_id"] == result.device_id == topic.split("/")[3]
    else:
        assert result.device_id is None


def test_status_and_availability_accept_the_bare_word_and_the_json_string():
    for payload, online in [
        (b"online", True),
        (b"offline", False),
        (b'"online"', True),
        (b'"offline"', False),
        (b"online\n", True),
        (b' "offline" ', False),
    ]:
        assert inbound("hub/h1/status", payload).fields == {
            "ts": NOW,
            "online": online,
            "source": "mqtt",
        }
        avail = inbound("hub/h1/availability/plug", payload)
        assert avail.fields == {"ts": NOW, "device_id": "plug", "online": online, "source": "mqtt"}


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", "SCHEMA_VIOLATION"),
        (b"ONLINE", "MALFORMED_JSON"),
        (b"on line", "MALFORMED_JSON"),
        (b'"maybe"', "OUT_OF_RANGE"),
        (b"true", "WRONG_TYPE"),
        (b'{"online": true}', "WRONG_TYPE"),
        (b"\xffonline", "INVALID_UTF8"),
    ],
)
def test_status_rejects_anything_but_online_or_offline(payload, reason):
    for topic in ("hub/h1/status", "hub/h1/availability/plug"):
        r = rejected(topic, payload)
        assert r.reason == reason
        assert r.home_id == "h1"
        assert r.reply is None


def test_state_report_keeps_values_and_their_avro_types():
    state = {
        "powerState": "ON",
        "brightness": 40,
        "temperature": 21.5,
        "whole": 3.0,
        "motion": False,
        "zero": 0,
        "cleared": None,
        "color": {"hue": 120, "saturation": 55.5, "on": True, "gone": None},
    }
    result = inbound("hub/h1/state/lamp", j({"state": state, "ts": HUB_TS}))
    assert result.fields == {
        "ts": HUB_TS,
        "device_id": "lamp",
        "state": state,
        "received_at": NOW,
        "source": "mqtt",
        "local_runs": [],
    }
    back = roundtrip(result)["state"]
    assert back == state
    # long vs double vs boolean survive Avro: 3.0 stays a float, False is not 0.
    assert type(back["brightness"]) is int
    assert type(back["whole"]) is float
    assert type(back["motion"]) is bool
    assert type(back["zero"]) is int
    assert type(back["color"]["hue"]) is int
    assert type(back["color"]["saturation"]) is float
    assert type(back["color"]["on"]) is bool


def test_ts_defaults_to_received_at_and_null_means_absent():
    assert inbound("hub/h1/state/lamp", j({"state": {}})).fields["ts"] == NOW
    assert inbound("hub/h1/state/lamp", j({"state": {}, "ts": None})).fields["ts"] == NOW
    assert inbound("hub/h1/event/door", j({"event": "ring", "ts": 0})).fields["ts"] == 0


@pytest.mark.parametrize(
    ("ts", "reason"),
    [
        (1.7e12, "WRONG_TYPE"),
        ("1700000000000", "WRONG_TYPE"),
        (True, "WRONG_TYPE"),
        (-1, "OUT_OF_RANGE"),
        (10**15, "OUT_OF_RANGE"),
        (2**63, "OUT_OF_RANGE"),
    ],
)
def test_bad_ts(ts, reason):
    for topic, doc in [
        ("hub/h1/state/lamp", {"state": {"brightness": 1}}),
        ("hub/h1/event/door", {"event": "ring"}),
    ]:
        r = rejected(topic, j({**doc, "ts": ts}))
        assert r.reason == reason
        if reason == "WRONG_TYPE" or ts != 2**63:  # 2**63 is refused while parsing the JSON
            assert "ts" in r.message


@pytest.mark.parametrize(
    ("doc", "reason", "in_message"),
    [
        ({"state": {"brightness": [1, 2]}}, "WRONG_TYPE", "state.brightness: expected"),
        ({"state": {"color": {"hue": [1]}}}, "WRONG_TYPE", "state.color.hue: expected"),
        ({"state": {"color": {"hue": {"deg": 1}}}}, "TOO_DEEP", "state.color.hue"),
        ({"state": [1]}, "WRONG_TYPE", "state: expected an object"),
        ({"state": None}, "WRONG_TYPE", "got null"),
        ({"state": "ON"}, "WRONG_TYPE", "got string"),
        ({"state": {}, "extra": 1}, "SCHEMA_VIOLATION", "'extra'"),
        ({"ts": 1}, "SCHEMA_VIOLATION", "'state'"),
        ([{"state": {}}], "WRONG_TYPE", "must be a JSON object, got array"),
        ("state", "WRONG_TYPE", "got string"),
    ],
)
def test_state_report_shape(doc, reason, in_message):
    r = rejected("hub/h1/state/lamp", j(doc))
    assert r.reason == reason
    assert in_message in r.message
    assert (r.home_id, r.device_id) == ("h1", "lamp")


def test_wrong_type_wins_over_too_deep_in_one_report():
    doc = {"state": {"a": {"b": {"c": 1}}, "z": [1]}}
    assert rejected("hub/h1/state/lamp", j(doc)).reason == "WRONG_TYPE"


def test_weird_attribute_names_are_quoted_in_the_path():
    r = rejected("hub/h1/state/lamp", j({"state": {"my attr": [1]}}))
    assert r.message.startswith("state['my attr']: expected")


def test_attribute_names_are_not_judged_here():
    # The stream worker checks names against the capability table: one place for that.
    result = inbound("hub/h1/state/lamp", j({"state": {"noSuchAttribute": 1, "": "x"}}))
    assert result.fields["state"] == {"noSuchAttribute": 1, "": "x"}


# -- payload checks, in order -------------------------------------------------------------
@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", "MALFORMED_JSON"),
        (b"   ", "MALFORMED_JSON"),
        (b"{", "MALFORMED_JSON"),
        (b"{'state': {}}", "MALFORMED_JSON"),
        (b'{"state": {}, "state": {}}', "MALFORMED_JSON"),
        (b"\xef\xbb\xbf" + j({"state": {}}), "MALFORMED_JSON"),
        (b'{"state": {"a": 1}}\xff', "INVALID_UTF8"),
        (b'{"state": {"a": "\xed\xa0\x80"}}', "INVALID_UTF8"),  # an encoded surrogate
        (b'{"state": {"a": "\\ud800"}}', "INVALID_UTF8"),  # an escaped unpaired one
        (b'{"state": {"\\udc00": 1}}', "INVALID_UTF8"),
        # NUL: PostgreSQL text and jsonb cannot hold it (the gateway's rule too)
        (b'{"state": {"a": "x\\u0000y"}}', "INVALID_UTF8"),
        (b'{"state": {"\\u0000": 1}}', "INVALID_UTF8"),
        (b'{"state": {"a": {"b": ["\\u0000"]}}}', "INVALID_UTF8"),
        (b'{"state": {"a": NaN}}', "WRONG_TYPE"),
        (b'{"state": {"a": Infinity}}', "WRONG_TYPE"),
        (b'{"state": {"a": -Infinity}}', "WRONG_TYPE"),
        (b'{"state": {"a": 1e400}}', "OUT_OF_RANGE"),
        (b'{"state": {"a": 9223372036854775808}}', "OUT_OF_RANGE"),
        (b'{"state": {"a": -9223372036854775809}}', "OUT_OF_RANGE"),
        (b'{"state": {"a": ' + b"9" * 5000 + b"}}", "OUT_OF_RANGE"),
        (b"[" * 100 + b"]" * 100, "TOO_DEEP"),
        (b'{"state": {"a": ' + b"[" * 64 + b"]" * 64 + b"}}", "TOO_DEEP"),
        (b"[" * 50_000, "TOO_DEEP"),  # deeper than the JSON parser's recursion
    ],
)
def test_payload_problems(payload, reason):
    r = rejected("hub/h1/state/lamp", payload)
    assert r.reason == reason
    assert r.message


def test_paired_surrogate_escapes_are_fine():
    result = inbound("hub/h1/state/lamp", b'{"state": {"emoji": "\\ud83d\\ude00"}}')
    assert roundtrip(result)["state"] == {"emoji": "\U0001f600"}


def test_64_bit_integer_limits_are_kept_exactly():
    state = {"max": 2**63 - 1, "min": -(2**63)}
    assert roundtrip(inbound("hub/h1/state/lamp", j({"state": state})))["state"] == state


def test_size_is_checked_first():
    big = b"\xff" * (wire.MAX_PAYLOAD_BYTES + 1)
    assert rejected("hub/h1/state/lamp", big).reason == "PAYLOAD_TOO_LARGE"
    ok = j({"state": {"text": "x" * 100}})
    assert rejected("hub/h1/state/lamp", ok, max_bytes=50).reason == "PAYLOAD_TOO_LARGE"
    assert isinstance(parse("hub/h1/state/lamp", ok, received_at=NOW, max_bytes=len(ok)), Inbound)


def test_messages_are_printable_and_bounded():
    r = rejected("hub/h1/state/lamp", j({"state": {"x" * 5000: [1]}}))
    assert len(r.message) < 300
    r = rejected("hub/h1/status", b"\x00\x01" * 1000)
    assert len(r.message) < 300
    assert "\x00" not in r.message


# -- discovery -----------------------------------------------------------------------------
def test_full_descriptor():
    descriptor = {
        "name": "Living Room Ceiling",
        "type": "light.dimmer",
        "room": "Living Room",
        "protocol": "zigbee",
        "manufacturer": "IKEA",
        "model": "LED1836G9",
        "capabilities": ["ON_OFF", "BRIGHTNESS"],
        "endpoint": "zigbee://00:11:22:33:44:55:66:77",
        "extra": {"firmware": {"version": "2.3.1"}, "ota": True},
    }
    result = inbound("hub/h1/discovery/ceiling", j(descriptor), retained=True)
    record = roundtrip(result)
    assert json.loads(record.pop("extra")) == descriptor.pop("extra")
    for key, value in descriptor.items():
        assert record[key] == value
    assert record["device_id"] == "ceiling"


def test_minimal_descriptor_has_nulls():
    doc = {"name": "Plug", "type": "switch.plug", "capabilities": [], "room": None}
    fields = inbound("hub/h1/discovery/plug", j(doc)).fields
    assert fields["capabilities"] == []
    assert [fields[k] for k in ("room", "protocol", "manufacturer", "model", "endpoint")] == [
        None
    ] * 5
    assert fields["extra"] is None


@pytest.mark.parametrize(
    ("change", "reason", "in_message"),
    [
        ({"colour": "red"}, "SCHEMA_VIOLATION", "'colour'"),
        ({"name": None}, "WRONG_TYPE", "name"),
        ({"type": 3}, "WRONG_TYPE", "type"),
        ({"capabilities": "ON_OFF"}, "WRONG_TYPE", "capabilities"),
        ({"capabilities": ["ON_OFF", 2]}, "WRONG_TYPE", "capabilities[1]"),
        ({"room": 1}, "WRONG_TYPE", "room"),
        ({"extra": [1]}, "WRONG_TYPE", "extra"),
    ],
)
def test_descriptor_problems(change, reason, in_message):
    doc = {"name": "Plug", "type": "switch.plug", "capabilities": ["ON_OFF"], **change}
    r = rejected("hub/h1/discovery/plug", j(doc))
    assert r.reason == reason
    assert in_message in r.message


def test_descriptor_needs_name_type_and_capabilities():
    for missing in ("name", "type", "capabilities"):
        doc = {"name": "Plug", "type": "switch.plug", "capabilities": ["ON_OFF"]}
        del doc[missing]
        r = rejected("hub/h1/discovery/plug", j(doc))
        assert (r.reason, repr(missing) in r.message) == ("SCHEMA_VIOLATION", True)


def test_empty_discovery_payload_removes_the_device():
    result = inbound("hub/h1/discovery/plug", b"", retained=True)
    assert result.record_name == "DeviceRemoved"
    assert result.fields == {"ts": NOW, "device_id": "plug", "source": "hub", "removed_by": None}


# -- events and acks -----------------------------------------------------------------------
def test_event_data_is_json_text():
    data = {"confidence": 0.9, "boxes": [[1, 2, 3, 4]], "meta": {"a": {"b": {"c": None}}}}
    record = roundtrip(
        inbound("hub/h1/event/cam", j({"event": "person_detected", "data": data, "ts": HUB_TS}))
    )
    assert record["event"] == "person_detected"
    assert json.loads(record["data"]) == data
    assert (record["ts"], record["received_at"], record["source"]) == (HUB_TS, NOW, "mqtt")
    assert inbound("hub/h1/event/cam", j({"event": "x", "data": None})).fields["data"] is None


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        ({}, "SCHEMA_VIOLATION"),
        ({"event": 1}, "WRONG_TYPE"),
        ({"event": "x", "data": [1]}, "WRONG_TYPE"),
        ({"event": "x", "data": "text"}, "WRONG_TYPE"),
        ({"event": "x", "state": {}}, "SCHEMA_VIOLATION"),
    ],
)
def test_event_problems(doc, reason):
    assert rejected("hub/h1/event/cam", j(doc)).reason == reason


def test_acks():
    for status in wire.ACK_STATUSES:
        doc = {
            "command_id": "c-1",
            "status": status,
            "error": "jammed" if status == "FAILED" else None,
        }
        record = roundtrip(inbound("hub/h1/ack/lock", j(doc)))
        assert (record["command_id"], record["status"], record["error"]) == (
            "c-1",
            status,
            doc["error"],
        )


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        ({"command_id": "c", "status": "DONE"}, "OUT_OF_RANGE"),
        ({"command_id": "c", "status": "UNKNOWN"}, "OUT_OF_RANGE"),
        ({"command_id": "c", "status": "completed"}, "OUT_OF_RANGE"),
        ({"command_id": "c", "status": 1}, "WRONG_TYPE"),
        ({"command_id": 7, "status": "COMPLETED"}, "WRONG_TYPE"),
        ({"command_id": "c", "status": "FAILED", "error": {"x": 1}}, "WRONG_TYPE"),
        ({"status": "COMPLETED"}, "SCHEMA_VIOLATION"),
        ({"command_id": "c", "status": "COMPLETED", "ts": 1}, "SCHEMA_VIOLATION"),
    ],
)
def test_ack_problems(doc, reason):
    assert rejected("hub/h1/ack/lock", j(doc)).reason == reason


# -- the shadow API ------------------------------------------------------------------------
def test_shadow_update_carries_sections_as_json_text():
    doc = {
        "state": {"desired": {"brightness": 10, "color": {"hue": 1}}, "reported": None},
        "clientToken": "tok-1",
        "version": 4,
    }
    payload = j(doc)
    result = inbound("hub/h1/shadow/lamp/update", payload)
    record = roundtrip(result)
    assert json.loads(record["desired"]) == doc["state"]["desired"]
    assert record["reported"] == "null"  # null clears all of reported
    assert (record["operation"], record["client_token"], record["version"]) == (
        "UPDATE",
        "tok-1",
        4,
    )
    assert record["payload_size"] == len(payload)
    assert (record["source"], record["request_id"], record["requested_by"]) == ("mqtt", None, None)


def test_absent_section_is_avro_null():
    fields = inbound("hub/h1/shadow/lamp/update", j({"state": {"reported": {"a": 1}}})).fields
    assert fields["desired"] is None
    assert fields["reported"] == '{"a":1}'


def test_shadow_limits_are_left_to_the_worker():
    # 9 KB (over the shadow's 8 KB) and 8 levels (over its 6): the worker answers 413/400.
    deep: Any = 1
    for _ in range(8):
        deep = {"k": deep}
    doc = {"state": {"desired": {"big": "x" * 9000, "deep": deep}}, "version": -1}
    payload = j(doc)
    fields = inbound("hub/h1/shadow/lamp/update", payload).fields
    assert fields["payload_size"] == len(payload) > 8192
    assert json.loads(fields["desired"]) == doc["state"]["desired"]
    assert fields["version"] == -1  # "Invalid version" is the worker's answer too


@pytest.mark.parametrize("op", ["get", "delete"])
def test_get_and_delete(op):
    for payload, token in [
        (b"", None),
        (b" ", None),
        (b"{}", None),
        (j({"clientToken": "t"}), "t"),
    ]:
        fields = inbound(f"hub/h1/shadow/lamp/{op}", payload).fields
        assert fields["operation"] == op.upper()
        assert fields["client_token"] == token
        assert (fields["desired"], fields["reported"], fields["version"]) == (None, None, None)
        assert fields["payload_size"] == len(payload)


def sent_token(payload: bytes) -> str | None:
    """The clientToken a reply must echo: a string one in a JSON object, else none."""
    try:
        doc = json.loads(payload)
    except (ValueError, RecursionError):
        return None
    token = doc.get("clientToken") if isinstance(doc, dict) else None
    return token if isinstance(token, str) else None


def reply_of(r: Rejected, topic: str) -> dict[str, Any]:
    assert r.reply is not None
    assert r.reply.mqtt_topic == topic
    assert (r.reply.qos, r.reply.retain) == (1, False)
    doc = json.loads(r.reply.payload)
    assert doc["timestamp"] == NOW // 1000
    return doc


@pytest.mark.parametrize(
    ("payload", "reason", "code", "aws_message"),
    [
        (b"{nope", "MALFORMED_JSON", 400, "Invalid JSON"),
        (b"", "MALFORMED_JSON", 400, "payload is empty"),
        (b"[]", "WRONG_TYPE", 400, "Invalid JSON"),
        (j({"clientToken": "t"}), "SCHEMA_VIOLATION", 400, "Missing required node: state"),
        (j({"state": [], "clientToken": "t"}), "WRONG_TYPE", 400, "State node must be an object"),
        (j({"state": {"desired": 1}}), "WRONG_TYPE", 400, "Desired node must be an object"),
        (j({"state": {"reported": "x"}}), "WRONG_TYPE", 400, "Reported node must be an object"),
        (j({"state": {"delta": {}}}), "SCHEMA_VIOLATION", 400, "State contains an invalid node"),
        (j({"state": {}, "version": "3"}), "WRONG_TYPE", 400, "Invalid version"),
        (j({"state": {}, "version": 1.5}), "WRONG_TYPE", 400, "Invalid version"),
        (j({"state": {}, "clientToken": 5}), "WRONG_TYPE", 400, "Invalid clientToken"),
        (j({"state": {}, "metadata": {}}), "SCHEMA_VIOLATION", 400, "unknown field 'metadata'"),
        (b'{"state": {"desired": {"a": NaN}}}', "WRONG_TYPE", 400, "NaN"),
        (b"\xff", "INVALID_UTF8", 415, "Unsupported documented encoding"),
        (b"{" * 70_000, "PAYLOAD_TOO_LARGE", 413, "exceeds the maximum size"),
        (b"[" * 5000, "TOO_DEEP", 400, "too many levels of nesting"),
    ],
)
def test_shadow_update_rejections_answer_on_rejected(payload, reason, code, aws_message):
    r = rejected("hub/h1/shadow/lamp/update", payload)
    assert (r.reason, r.home_id, r.device_id) == (reason, "h1", "lamp")
    doc = reply_of(r, "hub/h1/shadow/lamp/update/rejected")
    assert doc["code"] == code
    assert aws_message in doc["message"]
    assert doc.get("clientToken") == sent_token(payload)


def test_rejected_reply_echoes_a_string_client_token():
    r = rejected("hub/h1/shadow/lamp/update", j({"state": 1, "clientToken": "abc"}))
    assert reply_of(r, "hub/h1/shadow/lamp/update/rejected")["clientToken"] == "abc"


@pytest.mark.parametrize(
    "payload", [b"[]", b"null", j({"clientToken": 1}), j({"clientToken": "t", "state": {}})]
)
def test_get_rejections_answer_on_get_rejected(payload):
    r = rejected("hub/h1/shadow/lamp/get", payload)
    doc = reply_of(r, "hub/h1/shadow/lamp/get/rejected")
    assert doc["code"] == 400
    if b'"t"' in payload:
        assert doc["clientToken"] == "t"


def test_retained_shadow_request_is_refused_without_reply():
    r = rejected("hub/h1/shadow/lamp/update", j({"state": {"desired": {}}}), retained=True)
    assert (r.reason, r.reply) == ("SCHEMA_VIOLATION", None)
    assert "retained" in r.message


# -- topics --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "topic",
    [
        "hub/h1/command/lamp",
        "hub/h1/pairing",
        "hub/h1/shadow/lamp/update/accepted",
        "hub/h1/shadow/lamp/update/rejected",
        "hub/h1/shadow/lamp/update/delta",
        "hub/h1/shadow/lamp/update/documents",
        "hub/h1/shadow/lamp/get/accepted",
        "hub/h1/shadow/lamp/get/rejected",
        "hub/h1/shadow/lamp/delete/accepted",
        "hub/h1/shadow/lamp/delete/rejected",
    ],
)
def test_cloud_to_hub_topics_are_ignored(topic):
    result = parse(topic, b"\xff garbage", received_at=NOW)
    assert isinstance(result, Ignored)
    assert result.why


@pytest.mark.parametrize(
    ("topic", "home"),
    [
        ("", ""),
        ("hub", ""),
        ("hub/h1", ""),
        ("$SYS/broker/uptime", ""),
        ("home/h1/status", ""),
        ("/hub/h1/status", ""),
        ("hub//status", ""),
        ("hub/-h1/status", ""),
        ("hub/h 1/status", ""),
        ("hub/h1\n/status", ""),
        ("hub/" + "h" * 65 + "/status", ""),
        ("hub/+/status", ""),
        ("hub/#", ""),
        ("hub/h1/status/x", "h1"),
        ("hub/h1/state", "h1"),
        ("hub/h1/state/", "h1"),
        ("hub/h1/state/lamp/x", "h1"),
        ("hub/h1/states/lamp", "h1"),
        ("hub/h1/pairing/x", "h1"),
        ("hub/h1/command", "h1"),
        ("hub/h1/shadow/lamp", "h1"),
        ("hub/h1/shadow/lamp/patch", "h1"),
        ("hub/h1/shadow/lamp/get/delta", "h1"),
        ("hub/h1/shadow//update", "h1"),
        ("hub/h1/state/la+mp", "h1"),
        ("hub/h1/state/la#mp", "h1"),
        ("hub/h1/state/lamp\x00", "h1"),
        ("hub/h1/state/lamp\x7f", "h1"),
        ("hub/h1/state/lamp\u0085", "h1"),
        ("hub/h1/state/\ud800", "h1"),
        ("hub/h1/state/" + "d" * 129, "h1"),
    ],
)
def test_topics_outside_the_scheme(topic, home):
    r = rejected(topic, j({"state": {}}))
    assert (r.reason, r.home_id, r.device_id) == ("SCHEMA_VIOLATION", home, None)
    assert "outside the hub topic scheme (CONTRACT.md section 2)" in r.message
    assert len(r.message) < 400
    r.message.encode("utf-8")  # printable even for an unpaired surrogate


def test_device_ids_may_be_long_and_unicode():
    device = "ä" * 128
    assert inbound(f"hub/h1/state/{device}", j({"state": {}})).device_id == device
    assert inbound("hub/H_1-x/state/zigbee:00:11.ep-1", j({"state": {}})).home_id == "H_1-x"


def test_inbound_filters():
    assert wire.inbound_filters() == ["hub/#"]


# -- dead letters --------------------------------------------------------------------------
def test_dead_letter_record():
    payload = b'{"state": {"brightness": [1]}}'
    r = rejected("hub/h1/state/lamp", payload)
    record = dead_letter(
        r, "hub/h1/state/lamp", payload, received_at=NOW, headers={"content-type": "json"}
    )
    decoded = CODEC.decode(CODEC.encode("DeadLetter", record)).record
    assert decoded["reason"] == "WRONG_TYPE"
    assert decoded["message"] == r.message
    assert decoded["original"] == payload
    assert decoded["source"] == {
        "transport": "mqtt",
        "mqtt_topic": "hub/h1/state/lamp",
        "kafka_topic": None,
        "kafka_partition": None,
        "kafka_offset": None,
    }
    assert (decoded["home_id"], decoded["device_id"]) == ("h1", "lamp")
    assert (decoded["ts"], decoded["first_seen"], decoded["attempts"]) == (NOW, NOW, 1)
    assert decoded["processor"] == "bridge"
    assert decoded["headers"] == {"content-type": "json"}
    # A redelivery of the same message gets the same id; another message does not.
    assert (
        dead_letter(r, "hub/h1/state/lamp", payload, received_at=NOW)["event_id"]
        == (record["event_id"])
    )
    assert (
        dead_letter(r, "hub/h1/state/lamp", b"x", received_at=NOW)["event_id"]
        != (record["event_id"])
    )


def test_dead_letter_of_an_unencodable_topic_still_encodes():
    topic = "hub/\ud800/state/x"
    r = rejected(topic, b"\xff")
    record = dead_letter(r, topic, b"\xff", received_at=NOW, headers={"\udc80": "\ud800"})
    decoded = CODEC.decode(CODEC.encode("DeadLetter", record)).record
    assert decoded["home_id"] == ""
    assert decoded["source"]["mqtt_topic"] == "hub/\\ud800/state/x"


def test_every_reason_is_a_dead_letter_symbol():
    assert wire.REASONS.issubset(dead_letter_reasons())


# -- cloud -> hub --------------------------------------------------------------------------
def test_command_dispatched():
    record = {
        "event_id": str(uuid.uuid4()),
        "home_id": "h1",
        "ts": NOW,
        "device_id": "lamp",
        "command_id": "c-9",
        "capability": "BRIGHTNESS",
        "command": "setBrightness",
        "parameters": {"brightness": 40},
        "desired": {"brightness": 40, "color": {"hue": 1.5}},
        "issued_at": NOW - 5,
    }
    decoded = CODEC.decode(CODEC.encode("CommandDispatched", record)).record
    out = encode_outbound("CommandDispatched", decoded)
    assert out == Outbound("hub/h1/command/lamp", out.payload, retain=False, qos=1)
    assert json.loads(out.payload) == {
        "command_id": "c-9",
        "capability": "BRIGHTNESS",
        "command": "setBrightness",
        "parameters": {"brightness": 40},
        "desired": {"brightness": 40, "color": {"hue": 1.5}},
        "issued_at": NOW - 5,
    }
    assert b" " not in out.payload  # compact


def test_pairing_request():
    record = {"home_id": "h1", "permit": True, "duration": 60, "requested_by": "ann"}
    out = encode_outbound("PairingRequest", record)
    assert (out.mqtt_topic, out.payload, out.qos, out.retain) == (
        "hub/h1/pairing",
        b'{"permit":true,"duration":60}',
        1,
        False,
    )


@pytest.mark.parametrize(
    ("operation", "outcome", "suffix"),
    [
        ("UPDATE", "ACCEPTED", "update/accepted"),
        ("UPDATE", "REJECTED", "update/rejected"),
        ("UPDATE", "DOCUMENTS", "update/documents"),
        ("GET", "ACCEPTED", "get/accepted"),
        ("GET", "REJECTED", "get/rejected"),
        ("DELETE", "ACCEPTED", "delete/accepted"),
        ("DELETE", "REJECTED", "delete/rejected"),
    ],
)
def test_shadow_response(operation, outcome, suffix):
    text = '{"state":{"reported":{"émoji":"✓"}},"version":3,"timestamp":1700000000}'
    record = {"home_id": "h1", "device_id": "lamp", "operation": operation}
    out = encode_outbound("ShadowResponse", {**record, "outcome": outcome, "payload": text})
    assert out.mqtt_topic == f"hub/h1/shadow/lamp/{suffix}"
    assert out.payload == text.encode("utf-8")
    assert (out.qos, out.retain) == (1, False)


def test_shadow_delta():
    record = {
        "home_id": "h1",
        "device_id": "lamp",
        "version": 7,
        "timestamp": 1_700_000_000,
        "state": '{"brightness":50}',
        "metadata": '{"brightness":{"timestamp":1700000000}}',
        "client_token": "tok",
    }
    out = encode_outbound("ShadowDelta", record)
    assert out.mqtt_topic == "hub/h1/shadow/lamp/update/delta"
    assert json.loads(out.payload) == {
        "state": {"brightness": 50},
        "metadata": {"brightness": {"timestamp": 1_700_000_000}},
        "version": 7,
        "timestamp": 1_700_000_000,
        "clientToken": "tok",
    }
    bare = json.loads(
        encode_outbound("ShadowDelta", {**record, "metadata": None, "client_token": None}).payload
    )
    assert set(bare) == {"state", "version", "timestamp"}


@pytest.mark.parametrize(
    ("name", "record"),
    [
        ("DeviceReport", {"home_id": "h1", "device_id": "lamp"}),
        ("ShadowResponse", {"home_id": "h1", "device_id": "d", "operation": "UNKNOWN",
                            "outcome": "ACCEPTED", "payload": "{}"}),
        ("ShadowResponse", {"home_id": "h1", "device_id": "d", "operation": "GET",
                            "outcome": "UNKNOWN", "payload": "{}"}),
        ("PairingRequest", {"home_id": "h1", "permit": True}),
        ("PairingRequest", {"home_id": "h/1", "permit": True, "duration": 60}),
        ("ShadowDelta", {"home_id": "h1", "device_id": "+", "version": 1, "timestamp": 1,
                         "state": "{}"}),
        ("ShadowDelta", {"home_id": "h1", "device_id": "d", "version": 1, "timestamp": 1,
                         "state": "{not json"}),
        ("ShadowDelta", {"home_id": "h1", "device_id": "d", "version": 1, "timestamp": 1,
                         "state": None}),
    ],
)  # fmt: skip
def test_encode_outbound_refuses_what_it_cannot_publish(name, record):
    with pytest.raises(ValueError):
        encode_outbound(name, record)


def test_outbound_replies_are_ignored_when_heard_back():
    """The bridge hears its own publishes through hub/#: they must come back Ignored."""
    record = {"home_id": "h1", "device_id": "lamp", "operation": "GET", "outcome": "ACCEPTED"}
    outs = [
        encode_outbound("ShadowResponse", {**record, "payload": "{}"}),
        encode_outbound("PairingRequest", {"home_id": "h1", "permit": False, "duration": 0}),
        encode_outbound(
            "ShadowDelta",
            {"home_id": "h1", "device_id": "lamp", "version": 1, "timestamp": 1, "state": "{}"},
        ),
    ]
    reply = rejected("hub/h1/shadow/lamp/get", b"[]").reply
    assert reply is not None
    for out in [*outs, reply]:
        assert isinstance(parse(out.mqtt_topic, out.payload, received_at=NOW), Ignored)
