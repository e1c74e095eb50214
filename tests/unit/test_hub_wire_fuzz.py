"""hub.wire under fuzzing: parse() never raises, and whatever it returns can be produced."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub import wire
from hub.wire import Ignored, Inbound, Rejected, dead_letter, parse
from topics import catalogue as t
from topics.codec import SingleObjectCodec
from topics.schemas import SchemaStore

STORE = SchemaStore()
CODEC = SingleObjectCodec(STORE)
NOW = 1_700_000_000_123
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
HOME_RULE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def _symbols(record: str, field: str) -> set[str]:
    schema = STORE.latest(record).schema
    return set(next(f for f in schema["fields"] if f["name"] == field)["type"]["symbols"])


REASONS = _symbols("DeadLetter", "reason") - {"UNKNOWN"}

# -- topics: real shapes, near misses and noise ---------------------------------------------
HOMES = st.sampled_from(["h1", "Home_2", "x", "", "-h", "h 1", "h+", "é"]) | st.text(max_size=8)
DEVICES = st.sampled_from(["lamp", "", "a+b", "a#", "\x00", "\ud800", "d" * 129]) | st.text(
    max_size=10
)
SHAPES = [
    "status",
    "pairing",
    "discovery/{d}",
    "availability/{d}",
    "state/{d}",
    "event/{d}",
    "ack/{d}",
    "command/{d}",
    "shadow/{d}/update",
    "shadow/{d}/get",
    "shadow/{d}/delete",
    "shadow/{d}/update/accepted",
    "shadow/{d}/update/delta",
    "shadow/{d}/get/documents",
    "shadow/{d}",
    "state/{d}/extra",
    "unknown/{d}",
]
STRUCTURED = st.builds(
    lambda home, shape, device: f"hub/{home}/" + shape.replace("{d}", device),
    HOMES,
    st.sampled_from(SHAPES),
    DEVICES,
)
LEVELS = st.lists(
    st.sampled_from(["hub", "h1", "state", "shadow", "update", "lamp", "$SYS", "", "+", "#"])
    | st.text(max_size=6),
    min_size=1,
    max_size=7,
).map("/".join)
TOPICS = STRUCTURED | LEVELS | st.text(max_size=40)

# -- payloads: bytes, JSON of any shape, near-valid documents --------------------------------
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**64), max_value=2**64)
    | st.floats()  # NaN and infinities included: json.dumps writes NaN / Infinity
    | st.text(max_size=12)
    | st.sampled_from(["\ud800", "a\udc00", "online", "offline", "ON", "COMPLETED"])
)
KEYS = st.sampled_from(
    [
        "state",
        "ts",
        "event",
        "data",
        "command_id",
        "status",
        "error",
        "name",
        "type",
        "capabilities",
        "room",
        "extra",
        "desired",
        "reported",
        "clientToken",
        "version",
        "color",
        "\ud800",
    ]
) | st.text(max_size=8)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=5),
    max_leaves=25,
)
DOCUMENTS = st.dictionaries(KEYS, JSON_VALUES, max_size=6)
PAYLOADS = (
    st.binary(max_size=200)
    | JSON_VALUES.map(lambda v: json.dumps(v).encode())
    | DOCUMENTS.map(lambda v: json.dumps(v).encode())
    | st.sampled_from([b"", b"online", b'"offline"', b"[" * 3000, b"{" * 3000, b"\xef\xbb\xbf{}"])
)


def check(result: Any, topic: str, payload: bytes) -> None:
    assert isinstance(result, Inbound | Rejected | Ignored)
    if isinstance(result, Inbound):
        assert HOME_RULE.fullmatch(result.home_id)
        assert result.record_name in t.topic(result.kafka_topic).value_schemas
        names = {f["name"] for f in STORE.latest(result.record_name).schema["fields"]}
        assert set(result.fields) == names - {"event_id", "home_id"}
        record = {"event_id": str(uuid.uuid4()), "home_id": result.home_id, **result.fields}
        CODEC.encode(result.record_name, record)  # raises if the parser let through junk
    elif isinstance(result, Rejected):
        assert result.reason in REASONS
        assert result.reason != "PROCESSING_ERROR", result.message  # the safety net is unused
        assert result.home_id == "" or HOME_RULE.fullmatch(result.home_id)
        letter = dead_letter(result, topic, payload, received_at=NOW, headers={"k": topic})
        CODEC.encode("DeadLetter", letter)
        if result.reply is not None:
            assert result.reply.mqtt_topic.endswith("/rejected")
            doc = json.loads(result.reply.payload)
            assert isinstance(doc["code"], int) and isinstance(doc["message"], str)
            heard_back = parse(result.reply.mqtt_topic, result.reply.payload, received_at=NOW)
            assert isinstance(heard_back, Ignored)
    else:
        assert result.why


@FUZZ
@given(TOPICS, PAYLOADS, st.booleans())
def test_any_topic_any_payload(topic: str, payload: bytes, retained: bool) -> None:
    check(parse(topic, payload, received_at=NOW, retained=retained), topic, payload)


@FUZZ
@given(st.sampled_from(SHAPES), PAYLOADS, st.integers(min_value=0, max_value=300))
def test_real_topics_any_payload(shape: str, payload: bytes, max_bytes: int) -> None:
    topic = "hub/h1/" + shape.replace("{d}", "lamp")
    check(parse(topic, payload, received_at=NOW, max_bytes=max_bytes), topic, payload)


# -- valid documents of every kind, and one mutation away from valid --------------------------
# Text that every store can hold: no NUL, no unpaired surrogate (domain.strictjson refuses both).
STORABLE = st.characters(codec="utf-8", exclude_characters="\x00")
LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(STORABLE, max_size=20)
)
STATES = st.dictionaries(
    st.text(STORABLE, max_size=12),
    LEAVES | st.dictionaries(st.text(STORABLE, max_size=8), LEAVES, max_size=4),
)
TS = st.none() | st.integers(min_value=0, max_value=253_402_300_799_999)
TEXT = st.text(STORABLE, max_size=12)
CLEAN_JSON = st.recursive(
    LEAVES,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=10,
)
OBJECTS = st.dictionaries(TEXT, CLEAN_JSON, max_size=3)
VALID_DOCS: dict[str, st.SearchStrategy[Any]] = {
    "status": st.sampled_from(["online", "offline"]),
    "availability/lamp": st.sampled_from(["online", "offline"]),
    "state/lamp": st.fixed_dictionaries({"state": STATES}, optional={"ts": TS}),
    "event/lamp": st.fixed_dictionaries(
        {"event": TEXT}, optional={"data": st.none() | OBJECTS, "ts": TS}
    ),
    "ack/lamp": st.fixed_dictionaries(
        {"command_id": TEXT, "status": st.sampled_from(wire.ACK_STATUSES)},
        optional={"error": st.none() | TEXT},
    ),
    "discovery/lamp": st.fixed_dictionaries(
        {"name": TEXT, "type": TEXT, "capabilities": st.lists(TEXT, max_size=3)},
        optional={
            **{k: st.none() | TEXT for k in ("room", "protocol", "manufacturer", "model")},
            "endpoint": st.none() | TEXT,
            "extra": st.none() | OBJECTS,
        },
    ),
    "shadow/lamp/update": st.fixed_dictionaries(
        {
            "state": st.fixed_dictionaries(
                {}, optional={"desired": st.none() | OBJECTS, "reported": st.none() | OBJECTS}
            )
        },
        optional={
            "clientToken": st.none() | TEXT,
            "version": st.none() | st.integers(min_value=0, max_value=2**63 - 1),
        },
    ),
    "shadow/lamp/get": st.fixed_dictionaries({}, optional={"clientToken": st.none() | TEXT}),
    "shadow/lamp/delete": st.fixed_dictionaries({}, optional={"clientToken": st.none() | TEXT}),
}


@st.composite
def near_valid(draw: st.DrawFn) -> tuple[str, bytes, bool]:
    """(topic, payload, mutated): a valid message of some kind, perhaps changed once."""
    shape = draw(st.sampled_from(sorted(VALID_DOCS)))
    doc = draw(VALID_DOCS[shape])
    mutation = draw(st.sampled_from(["none", "set", "drop", "add", "nest"]))
    if isinstance(doc, dict) and mutation != "none":
        target = doc
        if mutation == "nest" and isinstance(doc.get("state"), dict):
            target = doc["state"]
        keys = sorted(target)
        if mutation == "drop" and keys:
            del target[draw(st.sampled_from(keys))]
        elif mutation in ("set", "nest") and keys:
            target[draw(st.sampled_from(keys))] = draw(JSON_VALUES)
        else:
            target[draw(KEYS)] = draw(JSON_VALUES)
    elif mutation != "none":
        doc = draw(JSON_VALUES)
    # surrogatepass: a lone surrogate becomes bytes that are not UTF-8, for the parser to refuse
    payload = (
        doc.encode("utf-8", "surrogatepass") if isinstance(doc, str) else json.dumps(doc).encode()
    )
    return f"hub/h1/{shape}", payload, mutation != "none"


@FUZZ
@given(near_valid())
def test_near_valid_messages(message: tuple[str, bytes, bool]) -> None:
    topic, payload, mutated = message
    result = parse(topic, payload, received_at=NOW)
    check(result, topic, payload)
    if not mutated:  # every valid document of every kind is accepted
        assert isinstance(result, Inbound), result


# -- round trips -----------------------------------------------------------------------------


def same(a: Any, b: Any) -> bool:
    """Equal values of identical types all the way down (1 != 1.0 != True here)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


@FUZZ
@given(STATES, st.none() | st.integers(min_value=0, max_value=253_402_300_799_999))
def test_valid_state_reports_round_trip(state: dict[str, Any], ts: int | None) -> None:
    doc: dict[str, Any] = {"state": state} if ts is None else {"state": state, "ts": ts}
    result = parse("hub/h1/state/lamp", json.dumps(doc).encode(), received_at=NOW)
    assert isinstance(result, Inbound), result
    assert same(result.fields["state"], state)
    assert result.fields["ts"] == (NOW if ts is None else ts)
    record = {"event_id": str(uuid.uuid4()), "home_id": "h1", **result.fields}
    decoded = CODEC.decode(CODEC.encode("DeviceReport", record)).record
    assert same(decoded["state"], state)


@FUZZ
@given(
    st.dictionaries(st.text(max_size=8), JSON_VALUES.filter(lambda v: v is not None), max_size=4),
    st.none() | st.text(max_size=10),
)
def test_shadow_sections_round_trip_as_json_text(desired: dict[str, Any], token: str | None):
    doc: dict[str, Any] = {"state": {"desired": desired}, "clientToken": token}
    result = parse("hub/h1/shadow/lamp/update", json.dumps(doc).encode(), received_at=NOW)
    if isinstance(result, Inbound):
        assert json.loads(result.fields["desired"]) == json.loads(json.dumps(desired))
        assert result.fields["client_token"] == token
    else:  # only for values JSON or Avro cannot carry (NaN, 2**64, "\ud800")
        assert isinstance(result, Rejected)
        assert result.reason in {"WRONG_TYPE", "OUT_OF_RANGE", "INVALID_UTF8"}
        assert result.reply is not None


def test_reasons_used_are_dead_letter_symbols() -> None:
    assert wire.REASONS.issubset(REASONS)
