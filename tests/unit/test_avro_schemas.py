"""The event catalogue in avro/: conventions every schema follows, and sample records.

``sample_record`` (used by the other test_avro_* modules) builds a valid record for any
schema, choosing non-default values so a round trip exercises every field.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastavro import parse_schema

from topics.catalogue import record_names
from topics.fingerprint import PRIMITIVES
from topics.schemas import NAMESPACE, SchemaStore, default_avro_dir

STORE = SchemaStore()
ALL = list(STORE)
TS_MS = 1_700_000_000_123
SCALARS = ["null", "boolean", "long", "double", "string"]
STATE_MAP = {"type": "map", "values": [*SCALARS, {"type": "map", "values": SCALARS}]}
RICH_STATE = {
    "powerState": "ON",
    "brightness": 42,
    "temperature": 21.5,
    "motion": True,
    "lockState": None,
    "color": {"hue": 120, "saturation": 80.5, "x": None, "on": False, "name": "teal"},
}


def sample_value(s: Any, names: dict[str, Any], field: str = "") -> Any:
    """A valid, non-default value of schema ``s``."""
    if isinstance(s, list):
        if s == STATE_MAP["values"]:
            return "ON"
        return sample_value(s[-1], names, field)
    if isinstance(s, str):
        if s in PRIMITIVES:
            return {
                "null": None,
                "boolean": True,
                "int": 7,
                "long": 123_456_789_012,
                "float": 0.5,
                "double": 1.25,
                "bytes": b"\x00\xffraw",
                "string": f"{field or 'x'}-value",
            }[s]
        return sample_value(names[s.rpartition(".")[2]], names, field)
    kind = s["type"]
    if s == STATE_MAP:
        return dict(RICH_STATE)
    logical = s.get("logicalType")
    if logical == "timestamp-millis":
        return TS_MS
    if logical == "uuid":
        return str(uuid.UUID(int=0x1234))
    if kind in PRIMITIVES:
        return sample_value(kind, names, field)
    if kind == "record":
        names[s["name"]] = s
        return {f["name"]: sample_value(f["type"], names, f["name"]) for f in s["fields"]}
    if kind == "enum":
        names[s["name"]] = s
        return s["symbols"][-1]
    if kind == "array":
        return [sample_value(s["items"], names, field)]
    if kind == "map":
        return {"k": sample_value(s["values"], names, field)}
    raise AssertionError(f"unexpected schema {s!r}")


def sample_record(name: str, store: SchemaStore = STORE) -> dict[str, Any]:
    return sample_value(store.latest(name).schema, {})  # type: ignore[no-any-return]


def _fields_of(schema: Any, path: str) -> list[tuple[str, dict[str, Any]]]:
    """Every (path, field) in a schema, nested records included."""
    out: list[tuple[str, dict[str, Any]]] = []
    if isinstance(schema, list):
        for branch in schema:
            out += _fields_of(branch, path)
    elif isinstance(schema, dict):
        kind = schema.get("type")
        if kind == "record":
            for f in schema["fields"]:
                out.append((f"{path}.{f['name']}", f))
                out += _fields_of(f["type"], f"{path}.{f['name']}")
        elif kind == "array":
            out += _fields_of(schema["items"], path)
        elif kind == "map":
            out += _fields_of(schema["values"], path)
    return out


def _named_types(schema: Any) -> list[dict[str, Any]]:
    found = []
    if isinstance(schema, list):
        for branch in schema:
            found += _named_types(branch)
    elif isinstance(schema, dict):
        if schema.get("type") in ("record", "enum", "fixed"):
            found.append(schema)
        for f in schema.get("fields", ()):
            found += _named_types(f["type"])
        for key in ("items", "values"):
            if key in schema:
                found += _named_types(schema[key])
    return found


EXPECTED = {
    "DeviceReport", "StateChange", "ShadowDocument", "ShadowDelta", "ShadowUpdateRequest",
    "ShadowResponse", "CommandRequested", "CommandDispatched", "CommandStatus", "HubAck",
    "DeviceDiscovered", "DeviceRegistered", "DeviceRemoved", "Availability", "HubStatus",
    "DeviceEvent", "PairingRequest", "SceneRun", "AutomationFired", "Notification",
    "VoiceUtterance", "DeadLetter", "StreamTick", "HomeConfig", "SceneRequested",
}  # fmt: skip


def test_every_event_of_the_brief_has_a_schema() -> None:
    assert set(STORE.names()) == EXPECTED
    assert STORE.path == default_avro_dir()


def test_layout_is_name_slash_version() -> None:
    files = sorted(p.relative_to(STORE.path) for p in STORE.path.rglob("*") if p.is_file())
    assert files == sorted(Path(sv.name) / f"v{sv.version}.avsc" for sv in ALL)


@pytest.mark.parametrize("sv", ALL, ids=repr)
def test_namespace_and_docs_everywhere(sv) -> None:
    schema = sv.schema
    assert schema["namespace"] == NAMESPACE
    for named in _named_types(schema):
        assert named.get("doc", "").strip(), f"{sv.name}: {named['name']} has no doc"
    fields = _fields_of(schema, sv.name)
    assert fields
    undocumented = [path for path, f in fields if not f.get("doc", "").strip()]
    assert not undocumented


@pytest.mark.parametrize("sv", ALL, ids=repr)
def test_every_event_has_the_common_header(sv) -> None:
    by_name = {f["name"]: f for f in sv.schema["fields"]}
    assert by_name["event_id"]["type"] == {"type": "string", "logicalType": "uuid"}
    assert by_name["home_id"]["type"] == "string"
    assert by_name["ts"]["type"] == {"type": "long", "logicalType": "timestamp-millis"}
    assert [f["name"] for f in sv.schema["fields"][:3]] == ["event_id", "home_id", "ts"]


@pytest.mark.parametrize("sv", ALL, ids=repr)
def test_enums_have_a_default_symbol(sv) -> None:
    enums = [t for t in _named_types(sv.schema) if t["type"] == "enum"]
    for enum in enums:
        assert enum.get("default") in enum["symbols"], f"{sv.name}.{enum['name']}"


@pytest.mark.parametrize("sv", ALL, ids=repr)
def test_each_file_is_self_contained(sv) -> None:
    # Parses alone, with no other schema known: no cross-file references.
    parsed = parse_schema(json.loads(sv.path.read_text()), named_schemas={})
    assert parsed["name"] == f"{NAMESPACE}.{sv.name}"


@pytest.mark.parametrize("sv", ALL, ids=repr)
def test_json_documents_are_said_to_be_json(sv) -> None:
    """Free-form documents travel as JSON text and their docs must say so."""
    json_fields = {
        "ShadowDocument": {"desired", "reported", "delta", "metadata"},
        "ShadowDelta": {"state", "metadata"},
        "ShadowUpdateRequest": {"desired", "reported"},
        "ShadowResponse": {"payload"},
        "DeviceEvent": {"data"},
        "AutomationFired": {"trigger", "trace"},
        "Notification": {"data"},
        "DeviceDiscovered": {"extra"},
        "DeviceRegistered": {"extra"},
        "StateChange": {"state_json", "state"},
    }.get(sv.name, set())
    for f in sv.schema["fields"]:
        if f["name"] in json_fields:
            assert "JSON" in f["doc"], f"{sv.name}.{f['name']}"


def test_attribute_maps_use_the_shared_state_value_union() -> None:
    state_fields = {
        "DeviceReport": {"state"},
        "StateChange": {"changed", "reported", "desired", "desired_changed", "delta"},
        "CommandRequested": {"parameters"},
        "CommandDispatched": {"parameters", "desired"},
        "VoiceUtterance": {"slots"},
    }
    for name, wanted in state_fields.items():
        fields = {f["name"]: f for f in STORE.latest(name).schema["fields"]}
        for field in wanted:
            assert fields[field]["type"] == STATE_MAP, f"{name}.{field}"


def test_contract_payload_fields_are_carried() -> None:
    """Everything the MQTT payloads of contract section 2 carry has a field."""
    fields = {sv.name: {f["name"] for f in sv.schema["fields"]} for sv in ALL}
    assert {"command_id", "capability", "command", "parameters", "desired", "issued_at"} <= fields[
        "CommandDispatched"
    ]
    assert {"command_id", "status", "error"} <= fields["HubAck"]
    assert {"permit", "duration"} <= fields["PairingRequest"]
    descriptor = {"name", "type", "room", "protocol", "manufacturer", "model", "capabilities"}
    assert descriptor | {"endpoint"} <= fields["DeviceDiscovered"]
    assert descriptor | {"endpoint"} <= fields["DeviceRegistered"]
    assert {"state", "ts", "received_at", "source", "device_id"} <= fields["DeviceReport"]
    assert {"event", "data", "ts"} <= fields["DeviceEvent"]
    assert {"version", "changed", "reported", "delta", "ts"} <= fields["StateChange"]
    assert {"desired", "reported", "delta", "metadata", "version", "timestamp", "client_token"} <= (
        fields["ShadowDocument"]
    )
    assert {"client_token", "version", "operation"} <= fields["ShadowUpdateRequest"]
    assert {"outcome", "error_code", "error_message", "payload"} <= fields["ShadowResponse"]
    assert {"device_id", "group_id", "requested_by", "timeout_ms", "issued_at"} <= fields[
        "CommandRequested"
    ]
    assert {"text", "audio_ref", "transcript", "intent", "slots", "session_id"} <= fields[
        "VoiceUtterance"
    ]
    assert {"reason", "message", "original", "source", "first_seen", "attempts"} <= fields[
        "DeadLetter"
    ]


def test_defaults_the_brief_asks_for() -> None:
    req = {f["name"]: f for f in STORE.latest("CommandRequested").schema["fields"]}
    assert req["timeout_ms"]["type"] == "long" and req["timeout_ms"]["default"] == 5000
    status = {f["name"]: f for f in STORE.latest("CommandStatus").schema["fields"]}
    assert status["status"]["type"]["symbols"][1:] == [
        "PENDING", "SENT", "ACKNOWLEDGED", "COMPLETED", "FAILED", "TIMEOUT",
    ]  # fmt: skip
    ack = {f["name"]: f for f in STORE.latest("HubAck").schema["fields"]}
    assert ack["status"]["type"]["symbols"][1:] == ["ACKNOWLEDGED", "COMPLETED", "FAILED"]


def test_catalogue_record_names_exist_in_avro() -> None:
    assert record_names() == set(STORE.names())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_records_are_valid(name: str) -> None:
    from fastavro.validation import validate

    assert validate(sample_record(name), STORE.latest(name).plain, raise_errors=True)
