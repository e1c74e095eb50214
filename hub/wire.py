"""The MQTT bridge's wire format: hub topics and JSON payloads <-> Avro events.

CONTRACT.md section 2 is the authority. Pure: no clients, no clock, no I/O.

* ``parse`` turns one hub -> cloud MQTT message into the one Avro event it stands for
  (``Inbound``), a dead letter (``Rejected``, never a silent drop) or nothing (``Ignored``:
  the cloud -> hub topics the bridge itself publishes and hears back through ``hub/#``).
* ``encode_outbound`` turns a record the bridge consumes from Kafka into the MQTT publish
  for the hub.

Only the wire shape is checked here: topic levels, payload size, UTF-8, JSON syntax and
types, and the nesting the Avro attribute map can carry. Attribute names, capabilities and
value ranges are the stream worker's job (``domain.validate``), and so are the shadow's
own 8 KB / depth-6 limits (``domain.shadow``): one place for each rule.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from domain import ids, strictjson
from domain.capabilities import json_type as _type
from domain.shadow import (
    MSG_DESIRED_NOT_OBJECT,
    MSG_ENCODING,
    MSG_INVALID_CLIENT_TOKEN,
    MSG_INVALID_JSON,
    MSG_INVALID_NODE,
    MSG_INVALID_VERSION,
    MSG_MISSING_STATE,
    MSG_REPORTED_NOT_OBJECT,
    MSG_STATE_NOT_OBJECT,
    MSG_TOO_DEEP,
    MSG_TOO_LARGE,
)
from topics import catalogue as t
from topics.descriptor import OPTIONAL_TEXT_FIELDS

MAX_PAYLOAD_BYTES: Final = 64 * 1024
# Far beyond anything a valid payload needs (the shadow allows 6); bounds the walks here,
# json.dumps and the worker's re-parse. Deeper input is TOO_DEEP, not a RecursionError.
MAX_JSON_DEPTH: Final = strictjson.MAX_DEPTH
PROCESSOR: Final = "bridge"
# DeadLetter reasons this module writes (a subset of the DeadLetterReason enum).
REASONS: Final = frozenset(
    {
        "MALFORMED_JSON",
        "INVALID_UTF8",
        "SCHEMA_VIOLATION",
        "WRONG_TYPE",
        "OUT_OF_RANGE",
        "PAYLOAD_TOO_LARGE",
        "TOO_DEEP",
        "PROCESSING_ERROR",
    }
)
ACK_STATUSES: Final = ("ACKNOWLEDGED", "COMPLETED", "FAILED")

# 9999-12-31T23:59:59.999Z: the last instant Python's datetime (sinks, gateway) can show.
_MAX_TS: Final = 253_402_300_799_999
_SCHEME = (
    "hub/{home}/status|discovery/{d}|availability/{d}|state/{d}|event/{d}|ack/{d}|shadow/{d}/{op}"
    "|automation/{a}"
)
# A state report names at most this many automations the hub ran on it (local_runs).
MAX_LOCAL_RUNS: Final = 100
RUN_STATUSES: Final = ("STARTED", "COMPLETED", "FAILED", "CONDITIONS_FAILED", "SKIPPED", "ABORTED")


# -- results -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Inbound:
    """One hub -> cloud message as one Avro event.

    ``fields`` holds every field of ``record_name`` except ``event_id`` and ``home_id``,
    which the bridge adds before encoding.
    """

    kafka_topic: str
    record_name: str
    home_id: str
    device_id: str | None
    fields: dict[str, Any]


@dataclass(frozen=True)
class Outbound:
    """One cloud -> hub MQTT publish."""

    mqtt_topic: str
    payload: bytes
    retain: bool = False
    qos: int = 1


@dataclass(frozen=True)
class Rejected:
    """A message for the dead-letter topic (see ``dead_letter``).

    ``reason`` is a DeadLetterReason symbol; ``home_id`` is "" when the topic names no valid
    home. ``reply`` is the AWS-style ``.../rejected`` answer for a shadow request.
    """

    reason: str
    message: str
    home_id: str
    device_id: str | None
    reply: Outbound | None = None


@dataclass(frozen=True)
class Ignored:
    """A cloud -> hub topic: the bridge's own publish, heard back through ``hub/#``."""

    why: str


class _Reject(Exception):
    """Internal: the payload is refused. ``code``/``aws`` feed a shadow request's reply."""

    def __init__(
        self, reason: str, message: str, *, code: int = 400, aws: str | None = None
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.code = code
        self.aws = aws


@dataclass(frozen=True)
class _Route:
    kind: str
    home: str
    device: str | None
    op: str | None = None  # shadow: update, get or delete


# -- the public API ------------------------------------------------------------------------
def inbound_filters() -> list[str]:
    """MQTT topic filters the bridge subscribes to (its own publishes come back: Ignored)."""
    return ["hub/#"]


def parse(
    mqtt_topic: str,
    payload: bytes,
    *,
    received_at: int,
    retained: bool = False,
    max_bytes: int = MAX_PAYLOAD_BYTES,
) -> Inbound | Rejected | Ignored:
    """The event one hub -> cloud message stands for, its dead letter, or Ignored.

    Never raises. ``received_at`` is epoch ms; it is the event's ``ts`` unless the payload
    carries one. ``retained`` matters for shadow requests only (see ``_shadow``).
    """
    route = _route(mqtt_topic)
    if not isinstance(route, _Route):
        return route
    data = bytes(payload)
    try:
        if route.kind == "shadow":
            return _shadow(route, data, received_at, retained, max_bytes)
        return _HANDLERS[route.kind](route, data, received_at, max_bytes)
    except _Reject as r:
        return Rejected(r.reason, r.message, route.home, route.device)
    except Exception as exc:  # a bug here must not lose the message; tests assert it never happens
        message = f"the bridge could not parse this message: {type(exc).__name__}: {exc}"
        return Rejected("PROCESSING_ERROR", _clean(message), route.home, route.device)


def dead_letter(
    rejected: Rejected,
    mqtt_topic: str,
    payload: bytes,
    *,
    received_at: int,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The full DeadLetter record for ``rejected``, ready for the codec.

    The event id is derived from topic, time and payload, so a QoS 1 redelivery of the same
    message in the same millisecond gets the same id and is de-duplicated downstream.
    """
    original = bytes(payload)
    digest = hashlib.sha256(original).hexdigest()
    seed = f"mqtt:{_clean(mqtt_topic)}:{received_at}:{digest}"
    return {
        "event_id": str(uuid.uuid5(uuid.NAMESPACE_URL, seed)),
        "home_id": rejected.home_id,
        "ts": received_at,
        "reason": rejected.reason,
        "message": _clean(rejected.message)[:2000],
        "original": original,
        "original_key": None,
        "source": {
            "transport": "mqtt",
            "mqtt_topic": _clean(mqtt_topic),
            "kafka_topic": None,
            "kafka_partition": None,
            "kafka_offset": None,
        },
        "device_id": rejected.device_id,
        "first_seen": received_at,
        "attempts": 1,
        "processor": PROCESSOR,
        "error_detail": None,
        "headers": {_clean(str(k)): _clean(str(v)) for k, v in (headers or {}).items()},
    }


def encode_outbound(record_name: str, record: Mapping[str, Any]) -> Outbound:
    """The MQTT publish for a decoded Avro record the bridge sends to hubs.

    Raises ValueError for a record name it does not publish, a missing field, an unknown
    shadow operation/outcome, or ids that cannot be MQTT topic levels.
    """
    encoder = _OUTBOUND.get(record_name)
    if encoder is None:
        raise ValueError(f"the bridge does not publish {record_name} records to hubs")
    try:
        return encoder(record)
    except KeyError as exc:
        raise ValueError(f"{record_name} record lacks field {exc.args[0]!r}") from None
    except TypeError as exc:  # e.g. a null where JSON text was expected
        raise ValueError(f"{record_name} record is malformed: {exc}") from None


# -- topics --------------------------------------------------------------------------------
_DEVICE_KINDS: Final = frozenset({"discovery", "availability", "state", "event", "ack"})
_SHADOW_OPS: Final = ("update", "get", "delete")
_SHADOW_REPLIES: Final = {
    "update": frozenset({"accepted", "rejected", "delta", "documents"}),
    "get": frozenset({"accepted", "rejected"}),
    "delete": frozenset({"accepted", "rejected"}),
}


def _route(topic: str) -> _Route | Rejected | Ignored:
    levels = topic.split("/")

    def outside(why: str, home: str = "") -> Rejected:
        return Rejected(
            "SCHEMA_VIOLATION",
            f"topic {_short(topic)} is outside the hub topic scheme (CONTRACT.md section 2): {why}",
            home,
            None,
        )

    if len(levels) < 3 or levels[0] != "hub":
        return outside(f"expected {_SCHEME}")
    home, kind, rest = levels[1], levels[2], levels[3:]
    if not ids.HOME_ID.fullmatch(home):  # fullmatch: a pattern's "$" would let a final "\n" in
        return outside(
            f"{_short(home)} is not a home id (1-64 letters, digits, _ or -, "
            "starting with a letter or digit)"
        )
    if (kind == "pairing" and not rest) or (kind == "command" and len(rest) == 1):
        return Ignored(f"{_short(topic)} is a cloud -> hub topic the bridge publishes")
    if kind == "shadow" and len(rest) == 3 and rest[2] in _SHADOW_REPLIES.get(rest[1], ()):
        return Ignored(f"{_short(topic)} is a shadow reply the bridge publishes")
    if kind == "config" and len(rest) == 2:
        return Ignored(f"{_short(topic)} is a home document the bridge publishes")
    if kind == "automation" and len(rest) == 1:
        problem = ids.doc_id_problem(rest[0])
        return outside(problem, home) if problem else _Route("automation", home, None, rest[0])

    if kind == "status" and not rest:
        return _Route("status", home, None)
    if kind in _DEVICE_KINDS and len(rest) == 1:
        device, op = rest[0], None
    elif kind == "shadow" and len(rest) == 2 and rest[1] in _SHADOW_OPS:
        device, op = rest
    elif kind == "shadow":
        return outside(
            "expected shadow/{device}/update|get|delete (replies: .../accepted|rejected, "
            "update/delta, update/documents)",
            home,
        )
    elif kind in _DEVICE_KINDS or kind in ("status", "pairing", "command", "config", "automation"):
        return outside(f"wrong number of levels after {_short(kind)}; expected {_SCHEME}", home)
    else:
        return outside(f"unknown kind {_short(kind)}; expected {_SCHEME}", home)
    problem = ids.device_id_problem(device)
    if problem:
        return outside(problem, home)
    return _Route(kind, home, device, op)


# -- payload decoding ----------------------------------------------------------------------
def _text(data: bytes, max_bytes: int) -> str:
    if len(data) > max_bytes:
        raise _Reject(
            "PAYLOAD_TOO_LARGE",
            f"payload is {len(data)} bytes; at most {max_bytes} are accepted",
            code=413,
            aws=MSG_TOO_LARGE,
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = data[exc.start : exc.start + 4].hex(" ")
        raise _Reject(
            "INVALID_UTF8",
            f"payload is not UTF-8 text: byte {exc.start} ({bad}...) {exc.reason}",
            code=415,
            aws=MSG_ENCODING,
        ) from None


def _json(text: str) -> Any:
    """Parse JSON by the platform's one set of rules (``domain.strictjson``), or _Reject."""
    try:
        return strictjson.loads(text)
    except strictjson.JsonRejected as exc:
        if exc.reason == "TOO_DEEP":
            raise _Reject(
                "TOO_DEEP",
                f"payload nests more than {MAX_JSON_DEPTH} levels deep",
                aws=MSG_TOO_DEEP,
            ) from None
        if exc.message.startswith("empty"):
            raise _Reject("MALFORMED_JSON", "payload is empty; expected a JSON object") from None
        if exc.reason == "MALFORMED_JSON" and exc.message.startswith("not JSON"):
            raise _Reject(
                "MALFORMED_JSON", f"payload is {exc.message}", aws=f"{MSG_INVALID_JSON}: {exc}"
            ) from None
        raise _Reject(exc.reason, exc.message) from None


# -- JSON documents ------------------------------------------------------------------------
def _document(
    data: bytes, max_bytes: int, what: str, allowed: tuple[str, ...], required: tuple[str, ...]
) -> dict[str, Any]:
    """A JSON object payload with only ``allowed`` keys and all ``required`` ones."""
    return _fields_of(_json(_text(data, max_bytes)), what, allowed, required)


def _fields_of(
    doc: Any, what: str, allowed: tuple[str, ...], required: tuple[str, ...]
) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise _Reject(
            "WRONG_TYPE",
            f"{what} must be a JSON object, got {_type(doc)}",
            aws=f"{MSG_INVALID_JSON}: the request must be a JSON object",
        )
    for key in doc:
        if key not in allowed:
            raise _Reject(
                "SCHEMA_VIOLATION",
                f"unknown field {_short(key)} in {what}; allowed: {', '.join(allowed)}",
            )
    for key in required:
        if key not in doc:
            raise _Reject("SCHEMA_VIOLATION", f"{what} needs the field {key!r}")
    return doc


def _string(doc: dict[str, Any], key: str, *, optional: bool = False) -> str | None:
    value = doc.get(key)
    if isinstance(value, str) or (optional and value is None):
        return value
    kind = "a string or null" if optional else "a string"
    raise _Reject("WRONG_TYPE", f"{key}: expected {kind}, got {_type(value)}")


def _object_text(doc: dict[str, Any], key: str) -> str | None:
    """An optional JSON object field, carried as compact JSON text (Avro cannot nest it)."""
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _Reject("WRONG_TYPE", f"{key}: expected an object or null, got {_type(value)}")
    return _json_text(value)


def _ts(doc: dict[str, Any], received_at: int) -> int:
    ts = doc.get("ts")
    if ts is None:
        return received_at
    if isinstance(ts, bool) or not isinstance(ts, int):
        raise _Reject("WRONG_TYPE", f"ts: expected whole epoch milliseconds, got {_type(ts)}")
    if not 0 <= ts <= _MAX_TS:
        raise _Reject("OUT_OF_RANGE", f"ts: {ts} is not epoch milliseconds between 0 and {_MAX_TS}")
    return ts


def _attribute_map(value: Any, path: str) -> dict[str, Any]:
    """A state map as the Avro attribute map carries it: each value null, boolean, long,
    double, string, or one level of object of those (e.g. color {hue, saturation})."""
    if not isinstance(value, dict):
        raise _Reject("WRONG_TYPE", f"{path}: expected an object of attributes, got {_type(value)}")
    too_deep: str | None = None
    for key, item in value.items():
        where = _join(path, key)
        if isinstance(item, list):
            raise _Reject(
                "WRONG_TYPE",
                f"{where}: expected a number, boolean, string, null or object, got array",
            )
        if not isinstance(item, dict):
            continue
        for inner_key, inner in item.items():
            inner_where = _join(where, inner_key)
            if isinstance(inner, list):
                raise _Reject(
                    "WRONG_TYPE",
                    f"{inner_where}: expected a number, boolean, string or null, got array",
                )
            if isinstance(inner, dict) and too_deep is None:
                too_deep = (
                    f"{_clip(inner_where, 120)}: an attribute's object may hold plain values "
                    "only (like color {hue, saturation}), not another object"
                )
    if too_deep:  # after the type checks, so a payload with both reports WRONG_TYPE
        raise _Reject("TOO_DEEP", too_deep)
    return value


def _online(data: bytes, max_bytes: int) -> bool:
    """``online``/``offline``, bare (as mosquitto_pub sends it) or as a JSON string."""
    text = _text(data, max_bytes)
    word = text.strip()
    if word in ("online", "offline"):
        return word == "online"
    if not word:
        raise _Reject("SCHEMA_VIOLATION", "payload is empty; expected online or offline")
    try:
        value = _json(word)
    except _Reject as r:
        if r.reason != "MALFORMED_JSON":
            raise
        raise _Reject(
            "MALFORMED_JSON", f"payload {_short(word)} is neither online, offline nor JSON"
        ) from None
    if not isinstance(value, str):
        raise _Reject("WRONG_TYPE", f"expected the string online or offline, got {_type(value)}")
    if value not in ("online", "offline"):
        raise _Reject("OUT_OF_RANGE", f"expected online or offline, got {_short(value)}")
    return value == "online"


# -- hub -> cloud handlers -----------------------------------------------------------------
_Handler = Callable[[_Route, bytes, int, int], Inbound]


def _status(route: _Route, data: bytes, received_at: int, max_bytes: int) -> Inbound:
    online = _online(data, max_bytes)
    fields = {"ts": received_at, "online": online, "source": "mqtt"}
    return Inbound(t.HUB_STATUS, "HubStatus", route.home, None, fields)


def _availability(route: _Route, data: bytes, received_at: int, max_bytes: int) -> Inbound:
    online = _online(data, max_bytes)
    fields = {"ts": received_at, "device_id": route.device, "online": online, "source": "mqtt"}
    return Inbound(t.DEVICE_AVAILABILITY, "Availability", route.home, route.device, fields)


_DESCRIPTOR_STRINGS: Final = OPTIONAL_TEXT_FIELDS
_DESCRIPTOR_KEYS: Final = ("name", "type", "capabilities", *_DESCRIPTOR_STRINGS, "extra")


def _removed(route: _Route, received_at: int) -> Inbound:
    # "hub" is the schema's source for an empty discovery payload ("api" for REST DELETE).
    fields = {"ts": received_at, "device_id": route.device, "source": "hub", "removed_by": None}
    return Inbound(t.DEVICE_DISCOVERY, "DeviceRemoved", route.home, route.device, fields)


def _discovery(route: _Route, data: bytes, received_at: int, max_bytes: int) -> Inbound:
    if not data:  # an empty (retained) payload clears the announcement: the device left
        return _removed(route, received_at)
    doc = _document(
        data, max_bytes, "a device descriptor", _DESCRIPTOR_KEYS, ("name", "type", "capabilities")
    )
    name, dtype = _string(doc, "name"), _string(doc, "type")
    capabilities = doc["capabilities"]
    if not isinstance(capabilities, list):
        raise _Reject(
            "WRONG_TYPE", f"capabilities: expected an array of strings, got {_type(capabilities)}"
        )
    for i, cap in enumerate(capabilities):
        if not isinstance(cap, str):
            raise _Reject("WRONG_TYPE", f"capabilities[{i}]: expected a string, got {_type(cap)}")
    fields: dict[str, Any] = {
        "ts": received_at,
        "device_id": route.device,
        "name": name,
        "type": dtype,
        **{key: _string(doc, key, optional=True) for key in _DESCRIPTOR_STRINGS},
        "capabilities": capabilities,
        "extra": _object_text(doc, "extra"),
    }
    return Inbound(t.DEVICE_DISCOVERY, "DeviceDiscovered", route.home, route.device, fields)


def _state(route: _Route, data: bytes, received_at: int, max_bytes: int) -> Inbound:
    doc = _document(data, max_bytes, "a state report", ("state", "ts", "local_runs"), ("state",))
    state = _attribute_map(doc["state"], "state")
    fields = {
        "ts": _ts(doc, received_at),
        "device_id": route.device,
        "state": state,
        "received_at": received_at,
        "source": "mqtt",
        "local_runs": _local_runs(doc.get("local_runs")),
    }
    return Inbound(t.DEVICE_REPORTS, "DeviceReport", route.home, route.device, fields)


def _local_runs(value: Any) -> list[str]:
    """The automations a hub ran on a report while the cloud was away (their ids)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise _Reject("WRONG_TYPE", f"local_runs: expected an array of ids, got {_type(value)}")
    if len(value) > MAX_LOCAL_RUNS:
        raise _Reject("OUT_OF_RANGE", f"local_runs: {len(value)} ids; at most {MAX_LOCAL_RUNS}")
    for i, item in enumerate(value):
        problem = ids.doc_id_problem(item)
        if problem:
            raise _Reject("WRONG_TYPE", f"local_runs[{i}]: {problem}")
    return list(value)


def _automation_run(route: _Route, data: bytes, received_at: int, max_bytes: int) -> Inbound:
    """A run of an automation the hub ran by itself while the cloud was away."""
    doc = _document(
        data,
        max_bytes,
        "an automation run",
        ("run_id", "alias", "trigger", "status", "trace", "error", "ts"),
        ("run_id", "trigger", "status"),
    )
    status = _string(doc, "status")
    if status not in RUN_STATUSES:
        raise _Reject(
            "OUT_OF_RANGE",
            f"status: expected one of {', '.join(RUN_STATUSES)}, got {_short(status)}",
        )
    trace = doc.get("trace")
    if trace is not None and not isinstance(trace, dict | list):
        raise _Reject("WRONG_TYPE", f"trace: expected an object, array or null, got {_type(trace)}")
    fields = {
        "ts": _ts(doc, received_at),
        "automation_id": route.op,
        "run_id": _string(doc, "run_id"),
        "alias": _string(doc, "alias", optional=True),
        "trigger": _object_text(doc, "trigger") or "{}",
        "status": status,
        "trace": None if trace is None else _json_text(trace),
        "error": _string(doc, "error", optional=True),
    }
    return Inbound(t.AUTOMATIONS_RUNS, "AutomationFired", route.home, None, fields)


def _event(route: _Route, data: bytes, received_at: int, max_bytes: int) -> Inbound:
    doc = _document(data, max_bytes, "an event", ("event", "data", "ts"), ("event",))
    event, text = _string(doc, "event"), _object_text(doc, "data")
    fields = {
        "ts": _ts(doc, received_at),
        "device_id": route.device,
        "event": event,
        "data": text,
        "received_at": received_at,
        "source": "mqtt",
    }
    return Inbound(t.DEVICE_EVENTS, "DeviceEvent", route.home, route.device, fields)


def _ack(route: _Route, data: bytes, received_at: int, max_bytes: int) -> Inbound:
    doc = _document(
        data, max_bytes, "an ack", ("command_id", "status", "error"), ("command_id", "status")
    )
    command_id, status = _string(doc, "command_id"), _string(doc, "status")
    if status not in ACK_STATUSES:
        raise _Reject(
            "OUT_OF_RANGE",
            f"status: expected one of {', '.join(ACK_STATUSES)}, got {_short(status)}",
        )
    fields = {
        "ts": received_at,
        "device_id": route.device,
        "command_id": command_id,
        "status": status,
        "error": _string(doc, "error", optional=True),
    }
    return Inbound(t.COMMANDS_ACKS, "HubAck", route.home, route.device, fields)


_HANDLERS: Final[dict[str, _Handler]] = {
    "status": _status,
    "availability": _availability,
    "discovery": _discovery,
    "state": _state,
    "event": _event,
    "ack": _ack,
    "automation": _automation_run,
}


# -- the AWS shadow API --------------------------------------------------------------------
def _shadow(
    route: _Route, data: bytes, received_at: int, retained: bool, max_bytes: int
) -> Inbound | Rejected:
    """An update/get/delete request. The worker judges the shadow's own limits (8 KB via
    payload_size, depth 6, version conflicts); here only what the record cannot carry is
    refused, answered on ``.../rejected`` as AWS would."""
    assert route.op is not None and route.device is not None
    if retained:
        # AWS refuses retained shadow requests; replaying an old update on every bridge
        # (re)subscribe would be wrong. No reply: the hub had its answer when it was live.
        return Rejected(
            "SCHEMA_VIOLATION",
            "retained message on a shadow request topic: requests are applied once, "
            "not retained (clear it by publishing an empty retained payload)",
            route.home,
            route.device,
        )
    token: str | None = None
    try:
        text = _text(data, max_bytes)
        # get/delete may come with no payload at all; an update needs its document.
        doc = {} if route.op != "update" and not text.strip() else _json(text)
        if isinstance(doc, dict) and isinstance(doc.get("clientToken"), str):
            token = doc["clientToken"]  # echoed in the reply, as AWS does
        fields = _shadow_fields(route.op, doc)
    except _Reject as r:
        reply = {"code": r.code, "message": r.aws or r.message, "timestamp": received_at // 1000}
        if token is not None:
            reply["clientToken"] = token
        topic = f"hub/{route.home}/shadow/{route.device}/{route.op}/rejected"
        return Rejected(
            r.reason, r.message, route.home, route.device, Outbound(topic, _dumps(reply))
        )
    fields = {
        "ts": received_at,
        "device_id": route.device,
        "operation": route.op.upper(),
        "source": "mqtt",
        **fields,
        "payload_size": len(data),
        "request_id": None,
        "requested_by": None,
    }
    return Inbound(t.SHADOW_REQUESTS, "ShadowUpdateRequest", route.home, route.device, fields)


def _shadow_fields(op: str, doc: Any) -> dict[str, Any]:
    if op != "update":
        doc = _fields_of(doc, f"a shadow {op} request", ("clientToken",), ())
        return {
            "desired": None,
            "reported": None,
            "client_token": _token(doc),
            "version": None,
        }
    doc = _fields_of(doc, "a shadow update", ("state", "clientToken", "version"), ())
    if "state" not in doc:
        raise _Reject("SCHEMA_VIOLATION", "a shadow update needs 'state'", aws=MSG_MISSING_STATE)
    state = doc["state"]
    if not isinstance(state, dict):
        raise _Reject(
            "WRONG_TYPE",
            f"state: expected an object, got {_type(state)}",
            aws=MSG_STATE_NOT_OBJECT,
        )
    for key in state:
        if key not in ("desired", "reported"):
            raise _Reject(
                "SCHEMA_VIOLATION",
                f"state.{_short(key)}: only desired and reported can be updated",
                aws=f"{MSG_INVALID_NODE}: {_short(key)} (only desired and reported can be updated)",
            )
    sections: dict[str, str | None] = {}
    for section, aws in (
        ("desired", MSG_DESIRED_NOT_OBJECT),
        ("reported", MSG_REPORTED_NOT_OBJECT),
    ):
        if section not in state:
            sections[section] = None  # untouched
            continue
        value = state[section]
        if value is not None and not isinstance(value, dict):
            raise _Reject(
                "WRONG_TYPE",
                f"state.{section}: expected an object or null, got {_type(value)}",
                aws=aws,
            )
        sections[section] = _json_text(value)  # "null" clears the section
    version = doc.get("version")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
        raise _Reject(
            "WRONG_TYPE",
            f"version: expected a whole number, got {_type(version)}",
            aws=MSG_INVALID_VERSION,
        )
    return {**sections, "client_token": _token(doc), "version": version}


def _token(doc: dict[str, Any]) -> str | None:
    token = doc.get("clientToken")
    if token is None or isinstance(token, str):
        return token  # its 64-byte limit is the worker's to judge (and to echo)
    raise _Reject(
        "WRONG_TYPE",
        f"clientToken: expected a string, got {_type(token)}",
        aws=MSG_INVALID_CLIENT_TOKEN,
    )


# -- cloud -> hub --------------------------------------------------------------------------
def _ids(record: Mapping[str, Any], *, device: bool = True) -> str:
    """``hub/{home}`` (+ ``/{kind}`` added by the caller), checking the ids are topic levels."""
    home = record["home_id"]
    if ids.home_id_problem(home) is not None:
        raise ValueError(f"home id {_short(home)} cannot be an MQTT topic level")
    if device:
        dev = record["device_id"]
        problem = ids.device_id_problem(dev)
        if problem:
            raise ValueError(problem)
    return f"hub/{home}"


def _command(record: Mapping[str, Any]) -> Outbound:
    body = {
        key: record[key]
        for key in ("command_id", "capability", "command", "parameters", "desired", "issued_at")
    }
    return Outbound(f"{_ids(record)}/command/{record['device_id']}", _dumps(body))


def _pairing(record: Mapping[str, Any]) -> Outbound:
    body = {"permit": record["permit"], "duration": record["duration"]}
    return Outbound(f"{_ids(record, device=False)}/pairing", _dumps(body))


def _shadow_response(record: Mapping[str, Any]) -> Outbound:
    prefix = f"{_ids(record)}/shadow/{record['device_id']}"
    op, outcome = record["operation"], record["outcome"]
    if outcome == "DOCUMENTS":
        topic = f"{prefix}/update/documents"
    elif op in ("UPDATE", "GET", "DELETE") and outcome in ("ACCEPTED", "REJECTED"):
        topic = f"{prefix}/{op.lower()}/{outcome.lower()}"
    else:
        raise ValueError(f"no shadow topic for operation {op!r} with outcome {outcome!r}")
    # The payload already is the AWS document the worker wrote.
    return Outbound(topic, str(record["payload"]).encode("utf-8"))


def _shadow_delta(record: Mapping[str, Any]) -> Outbound:
    body: dict[str, Any] = {"state": json.loads(record["state"])}
    if record.get("metadata") is not None:
        body["metadata"] = json.loads(record["metadata"])
    body["version"] = record["version"]
    body["timestamp"] = record["timestamp"]
    if record.get("client_token") is not None:
        body["clientToken"] = record["client_token"]
    return Outbound(f"{_ids(record)}/shadow/{record['device_id']}/update/delta", _dumps(body))


def _home_document(record: Mapping[str, Any]) -> Outbound:
    """A home document (automation, scene ...) for the hub's local store: retained, so a hub
    that connects gets every current one; a deletion clears it (empty payload)."""
    kind, doc_id = record["kind"], record["doc_id"]
    for what, value in (("kind", kind), ("doc id", doc_id)):
        problem = ids.doc_id_problem(value)
        if problem:
            raise ValueError(f"home document {what}: {problem}")
    text = record.get("document")
    payload = b"" if text is None else str(text).encode("utf-8")
    return Outbound(f"{_ids(record, device=False)}/config/{kind}/{doc_id}", payload, retain=True)


_OUTBOUND: Final[dict[str, Callable[[Mapping[str, Any]], Outbound]]] = {
    "HomeConfig": _home_document,
    "CommandDispatched": _command,
    "PairingRequest": _pairing,
    "ShadowResponse": _shadow_response,
    "ShadowDelta": _shadow_delta,
}


# -- small helpers -------------------------------------------------------------------------
_json_text = strictjson.dumps
_clip = strictjson.clip
_short = strictjson.short
_join = strictjson.join


def _dumps(value: Any) -> bytes:
    """The payload of every publish: compact UTF-8 JSON."""
    return _json_text(value).encode("utf-8")


def _clean(text: str) -> str:
    """``text`` made encodable as UTF-8 (an Avro string), escaping unpaired surrogates."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
