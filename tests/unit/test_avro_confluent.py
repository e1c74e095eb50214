"""ConfluentCodec against a stand-in Schema Registry.

STAND-IN: an in-test HTTP server implementing only the REST calls the codec uses
(POST /subjects/{s}/versions, POST /subjects/{s}, GET /schemas/ids/{id}), with the real
registry's answer and error shapes. No real registry runs here (Karapace is not on PyPI).
"""

from __future__ import annotations

import contextlib
import json
import threading
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from topics.codec import ConfluentCodec, SingleObjectCodec, make_codec
from topics.errors import CodecError, DecodeError, EncodeError, RegistryError, UnknownSchemaError
from topics.schemas import SchemaStore

from .test_avro_schemas import STORE, sample_record

FIXTURES = Path(__file__).parent / "avro_evolution"
CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


class FakeRegistry:
    """Schemas get global ids (same schema text -> same id), subjects keep version lists."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}  # normalised schema -> id
        self.schemas: dict[int, str] = {}
        self.subjects: dict[str, list[int]] = {}
        self.calls: Counter[str] = Counter()
        self.content_types: set[str] = set()
        self.fail_with: int | None = None

    def handle(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        parts = [urllib.parse.unquote(p) for p in path.strip("/").split("/")]
        self.calls[f"{method} {parts[0]}"] += 1
        if self.fail_with:
            return self.fail_with, {"error_code": 50001, "message": "backend down"}
        if method == "GET" and parts[:2] == ["schemas", "ids"] and len(parts) == 3:
            sid = int(parts[2])
            if sid not in self.schemas:
                return 404, {"error_code": 40403, "message": "Schema not found"}
            return 200, {"schema": self.schemas[sid]}
        if method == "POST" and parts[0] == "subjects":
            subject = parts[1]
            try:
                key = json.dumps(json.loads(body["schema"]), sort_keys=True)
            except (KeyError, TypeError, ValueError):
                return 422, {"error_code": 42201, "message": "Invalid schema"}
            if parts[2:] == ["versions"]:
                sid = self.ids.setdefault(key, len(self.ids) + 1)
                self.schemas[sid] = body["schema"]
                versions = self.subjects.setdefault(subject, [])
                if sid not in versions:
                    versions.append(sid)
                return 200, {"id": sid}
            if not parts[2:]:
                sid = self.ids.get(key, 0)
                if sid not in self.subjects.get(subject, []):
                    return 404, {"error_code": 40403, "message": "Schema not found"}
                version = self.subjects[subject].index(sid) + 1
                return 200, {"subject": subject, "id": sid, "version": version,
                             "schema": self.schemas[sid]}  # fmt: skip
        return 404, {"error_code": 404, "message": "HTTP 404 Not Found"}


@contextlib.contextmanager
def serve(fake: FakeRegistry) -> Iterator[str]:
    """Run ``fake`` behind a real HTTP server on a free loopback port; yields its URL."""

    class Handler(BaseHTTPRequestHandler):
        def _serve(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if raw:
                fake.content_types.add(self.headers.get("Content-Type", ""))
            status, answer = fake.handle(method, self.path, json.loads(raw) if raw else None)
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", CONTENT_TYPE)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def registry() -> Iterator[tuple[FakeRegistry, str]]:
    fake = FakeRegistry()
    with serve(fake) as url:
        yield fake, url


@pytest.fixture(scope="module")
def fuzz_codec() -> Iterator[ConfluentCodec]:
    with serve(FakeRegistry()) as url:
        codec = ConfluentCodec(STORE, url)
        codec.encode("HubStatus", sample_record("HubStatus"))  # id 1 exists
        yield codec


def test_wire_format_and_topic_record_subjects(registry: tuple[FakeRegistry, str]) -> None:
    fake, url = registry
    codec = ConfluentCodec(STORE, url)
    record = sample_record("DeviceReport")
    data = codec.encode("DeviceReport", record, topic="homestream.device.reports")
    assert data[0] == 0
    schema_id = int.from_bytes(data[1:5], "big")
    assert fake.subjects == {
        "homestream.device.reports-io.homestream.events.DeviceReport": [schema_id]
    }
    assert json.loads(fake.schemas[schema_id]) == STORE.latest("DeviceReport").schema
    assert fake.content_types == {CONTENT_TYPE}
    # Same body as single-object encoding, after a different header.
    single = SingleObjectCodec(STORE).encode("DeviceReport", record)
    assert data[5:] == single[10:]
    decoded = codec.decode(data)
    assert (decoded.name, decoded.version, decoded.writer_version) == ("DeviceReport", 2, 2)
    assert decoded.record == record


def test_topic_defaults_to_the_only_catalogue_topic(registry: tuple[FakeRegistry, str]) -> None:
    fake, url = registry
    codec = ConfluentCodec(STORE, url)
    codec.encode("StateChange", sample_record("StateChange"))
    assert list(fake.subjects) == ["homestream.state.changes-io.homestream.events.StateChange"]
    # DeviceRemoved is on two topics, so the topic must be given.
    with pytest.raises(EncodeError, match="strategy needs the topic"):
        codec.encode("DeviceRemoved", sample_record("DeviceRemoved"))


def test_ids_are_cached_both_ways(registry: tuple[FakeRegistry, str]) -> None:
    fake, url = registry
    producer = ConfluentCodec(STORE, url)
    messages = [producer.encode("HubStatus", sample_record("HubStatus")) for _ in range(5)]
    assert fake.calls == Counter({"POST subjects": 1})
    for msg in messages:  # the producer learnt id -> schema when registering
        producer.decode(msg)
    assert fake.calls["GET schemas"] == 0
    consumer = ConfluentCodec(STORE, url)
    for msg in messages:
        assert consumer.decode(msg).name == "HubStatus"
    assert fake.calls["GET schemas"] == 1


@pytest.mark.parametrize(
    ("strategy", "subject"),
    [
        ("record", "io.homestream.events.HubAck"),
        ("RecordNameStrategy", "io.homestream.events.HubAck"),
        ("topic", "homestream.commands.acks-value"),
        ("TopicRecordNameStrategy", "homestream.commands.acks-io.homestream.events.HubAck"),
        (lambda topic, full: f"custom-{full.rpartition('.')[2]}", "custom-HubAck"),
    ],
)
def test_subject_strategies(
    registry: tuple[FakeRegistry, str], strategy: Any, subject: str
) -> None:
    fake, url = registry
    codec = ConfluentCodec(STORE, url, strategy)
    codec.encode("HubAck", sample_record("HubAck"), topic="homestream.commands.acks")
    assert list(fake.subjects) == [subject]


def test_unknown_strategy_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown subject strategy"):
        ConfluentCodec(STORE, "http://127.0.0.1:1", "nope")


def test_lookup_only_mode(registry: tuple[FakeRegistry, str]) -> None:
    _fake, url = registry
    lookup = ConfluentCodec(STORE, url, auto_register=False)
    with pytest.raises(EncodeError, match="404"):
        lookup.encode("HubAck", sample_record("HubAck"))
    data = ConfluentCodec(STORE, url).encode("HubAck", sample_record("HubAck"))
    assert lookup.encode("HubAck", sample_record("HubAck"))[:5] == data[:5]


def test_decode_errors(registry: tuple[FakeRegistry, str]) -> None:
    _fake, url = registry
    codec = ConfluentCodec(STORE, url)
    with pytest.raises(DecodeError, match="magic byte '7b'"):
        codec.decode(b'{"json": 1}')
    with pytest.raises(DecodeError, match="truncated Confluent header"):
        codec.decode(b"\x00\x00\x01")
    with pytest.raises(UnknownSchemaError, match="404"):
        codec.decode(b"\x00\x00\x00\x03\x99" + b"\x00" * 8)
    good = codec.encode("HubStatus", sample_record("HubStatus"))
    with pytest.raises(DecodeError, match=r"cannot decode HubStatus \(registry id 1\) body"):
        codec.decode(good[:-3])


def test_registry_failures_are_codec_errors(registry: tuple[FakeRegistry, str]) -> None:
    fake, url = registry
    fake.fail_with = 500
    codec = ConfluentCodec(STORE, url)
    with pytest.raises(RegistryError, match=r"500 .*backend down"):
        codec.encode("HubStatus", sample_record("HubStatus"))
    with pytest.raises(RegistryError):
        codec.decode(b"\x00\x00\x00\x00\x01\x00")
    down = ConfluentCodec(STORE, "http://127.0.0.1:9/", timeout=2)
    with pytest.raises(RegistryError, match="unreachable"):
        down.encode("HubStatus", sample_record("HubStatus"))


def test_single_object_messages_still_decode(registry: tuple[FakeRegistry, str]) -> None:
    _fake, url = registry
    record = sample_record("Notification")
    data = SingleObjectCodec(STORE).encode("Notification", record)
    assert ConfluentCodec(STORE, url).decode(data).record == record


def test_newer_writer_from_the_registry_resolves_to_our_latest(
    registry: tuple[FakeRegistry, str], tmp_path: Path
) -> None:
    """A producer with CommandStatus v2 (new enum symbol CANCELLED); we only know v1."""
    _fake, url = registry
    newer = ConfluentCodec(SchemaStore(FIXTURES / "good"), url)
    v2_record = {k: v for k, v in sample_record("CommandStatus").items() if k != "capability"}
    v2_record["detail"] = v2_record.pop("reason")
    data = newer.encode("CommandStatus", v2_record | {"status": "CANCELLED", "attempt": 2})
    decoded = ConfluentCodec(STORE, url).decode(data)
    assert (decoded.name, decoded.version, decoded.writer_version) == ("CommandStatus", 1, None)
    assert decoded.record["status"] == "UNKNOWN"  # the v1 enum's default
    assert decoded.record["capability"] is None  # v1 field missing in v2: its default
    assert decoded.record["reason"] is None  # renamed in v2; v1 has no alias for it


def test_unknown_record_from_the_registry(registry: tuple[FakeRegistry, str]) -> None:
    fake, url = registry
    alien = {"type": "record", "name": "Alien", "namespace": "x", "fields": []}
    fake.handle("POST", "/subjects/t-x.Alien/versions", {"schema": json.dumps(alien)})
    with pytest.raises(UnknownSchemaError, match=r"unknown schema id 1 \(x.Alien"):
        ConfluentCodec(STORE, url).decode(b"\x00\x00\x00\x00\x01")


def test_basic_auth_in_url_is_sent_as_header(registry: tuple[FakeRegistry, str]) -> None:
    _fake, url = registry
    codec = ConfluentCodec(STORE, url.replace("http://", "http://user:p%40ss@"))
    assert codec.registry.base == url
    assert codec.registry._auth == "Basic dXNlcjpwQHNz"  # base64("user:p@ss")
    codec.encode("HubStatus", sample_record("HubStatus"))


def test_make_codec_with_registry(registry: tuple[FakeRegistry, str]) -> None:
    _fake, url = registry
    codec = make_codec(STORE, url)
    assert isinstance(codec, ConfluentCodec)
    assert codec.encode("HubStatus", sample_record("HubStatus"))[0] == 0


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=60), schema_id=st.integers(0, 3))
def test_fuzz_decode_only_raises_codec_errors(
    fuzz_codec: ConfluentCodec, data: bytes, schema_id: int
) -> None:
    message = b"\x00" + schema_id.to_bytes(4, "big") + data
    for candidate in (data, message):
        with contextlib.suppress(CodecError):
            fuzz_codec.decode(candidate)
