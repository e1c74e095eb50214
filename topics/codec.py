"""Avro codecs: single-object encoding (default) and the Confluent wire format.

Both write with the latest schema version of a record name and read with the writer's
schema, resolving to the latest version (Avro schema evolution). ``decode`` raises only
CodecError subclasses, whatever the input bytes.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from fastavro import parse_schema, schemaless_reader, schemaless_writer

from topics.errors import CodecError, DecodeError, EncodeError, RegistryError, UnknownSchemaError
from topics.fingerprint import fingerprint
from topics.registry import RegistryClient
from topics.schemas import SchemaStore, SchemaVersion, strip_logical_types
from topics.validate import Conformer

SINGLE_OBJECT_MARKER = b"\xc3\x01"
CONFLUENT_MAGIC = b"\x00"


@dataclass(frozen=True)
class Decoded:
    """A decoded event.

    ``record`` has the shape of ``version`` (the latest version of ``name`` this process
    knows); ``writer_version`` is the version the producer wrote with, or None when the
    writer schema came from the registry and is newer than anything in avro/.
    """

    name: str
    version: int
    record: dict[str, Any]
    writer_version: int | None


class Codec(Protocol):
    def encode(
        self,
        name: str,
        record: Mapping[str, Any],
        *,
        topic: str | None = None,
        trusted: bool = False,
    ) -> bytes:
        """Avro-encode ``record`` as the latest version of record type ``name``.

        ``trusted``: the record was built complete and well-typed by our own code (the
        bridge's parser, the stream fold), so the field-by-field check is skipped; fastavro
        still refuses what it cannot write, and then the checked path names the field."""
        ...

    def decode(self, data: bytes, *, topic: str | None = None) -> Decoded:
        """Decode one message value; raises only CodecError subclasses."""
        ...


class _Body:
    """Avro binary bodies (no header) for one store: validation, write, resolving read."""

    def __init__(self, store: SchemaStore) -> None:
        self.store = store
        self._conformers: dict[int, Conformer] = {}

    def write(
        self, name: str, record: Mapping[str, Any], trusted: bool = False
    ) -> tuple[SchemaVersion, bytes]:
        try:
            sv = self.store.latest(name)
        except KeyError:
            raise EncodeError(
                f"unknown record type {name!r}; known: {', '.join(self.store.names())}"
            ) from None
        if trusted:  # ~5x faster; any doubt falls through to the checked path below
            buf = io.BytesIO()
            try:
                schemaless_writer(buf, sv.plain, record)
                return sv, buf.getvalue()
            except Exception:
                pass
        conformer = self._conformers.get(sv.fingerprint)
        if conformer is None:
            conformer = self._conformers[sv.fingerprint] = Conformer(sv.schema)
        datum = conformer.conform(record)
        buf = io.BytesIO()
        try:
            schemaless_writer(buf, sv.plain, datum)
        except Exception as exc:  # e.g. a lone surrogate in a string
            raise EncodeError(f"{name}: cannot encode: {type(exc).__name__}: {exc}") from exc
        return sv, buf.getvalue()

    def read(self, body: bytes, writer: Any, name: str, label: str) -> tuple[SchemaVersion, dict]:
        """Read ``body`` written with parsed schema ``writer``; resolve to latest ``name``."""
        reader = self.store.latest(name)
        buf = io.BytesIO(body)
        try:
            record = schemaless_reader(
                buf, writer, None if writer is reader.plain else reader.plain
            )
        except Exception as exc:  # fastavro raises EOFError, ValueError, UnicodeError, ...
            raise DecodeError(f"cannot decode {label} body: {type(exc).__name__}: {exc}") from None
        rest = len(body) - buf.tell()
        if rest:
            raise DecodeError(f"{rest} trailing byte(s) after the {label} record")
        if not isinstance(record, dict):
            raise DecodeError(f"{label} body is not a record")
        return reader, record


def _as_bytes(data: Any) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    raise DecodeError(f"expected bytes, got {type(data).__name__}")


class SingleObjectCodec:
    """Avro single-object encoding: C3 01, 8-byte little-endian CRC-64-AVRO fingerprint, body.

    Self-describing without a registry: the fingerprint names the writer schema in avro/.
    """

    def __init__(self, store: SchemaStore) -> None:
        self.store = store
        self._body = _Body(store)

    def encode(
        self,
        name: str,
        record: Mapping[str, Any],
        *,
        topic: str | None = None,
        trusted: bool = False,
    ) -> bytes:
        sv, body = self._body.write(name, record, trusted)
        return SINGLE_OBJECT_MARKER + sv.fingerprint_bytes + body

    def decode(self, data: bytes, *, topic: str | None = None) -> Decoded:
        try:
            return self._decode(_as_bytes(data))
        except CodecError:
            raise
        except Exception as exc:  # belt and braces: never leak another exception type
            raise DecodeError(f"cannot decode: {type(exc).__name__}: {exc}") from None

    def _decode(self, data: bytes) -> Decoded:
        if data[:2] != SINGLE_OBJECT_MARKER:
            hint = (
                " (this looks like the Confluent wire format: set HOMESTREAM_SCHEMA_REGISTRY_URL)"
                if data[:1] == CONFLUENT_MAGIC and len(data) >= 5
                else ""
            )
            raise DecodeError(
                f"not Avro single-object encoding: expected marker c301, got {data[:2].hex()!r}"
                + hint
            )
        if len(data) < 10:
            raise DecodeError(f"truncated single-object header: {len(data)} bytes, need 10")
        writer = self.store.by_fingerprint(int.from_bytes(data[2:10], "little"))
        reader, record = self._body.read(
            data[10:], writer.plain, writer.name, f"{writer.name} v{writer.version}"
        )
        return Decoded(writer.name, reader.version, record, writer.version)


# -- Confluent Schema Registry ------------------------------------------------------------
SubjectStrategy = Callable[[str | None, str], str]


def _need_topic(topic: str | None, fullname: str) -> str:
    if not topic:
        raise EncodeError(f"{fullname}: the subject name strategy needs the topic")
    return topic


SUBJECT_STRATEGIES: dict[str, SubjectStrategy] = {
    # Several record types share a topic, so the topic+record strategy is the default.
    "topic_record": lambda topic, full: f"{_need_topic(topic, full)}-{full}",
    "record": lambda topic, full: full,
    "topic": lambda topic, full: f"{_need_topic(topic, full)}-value",
}
SUBJECT_STRATEGIES["TopicRecordNameStrategy"] = SUBJECT_STRATEGIES["topic_record"]
SUBJECT_STRATEGIES["RecordNameStrategy"] = SUBJECT_STRATEGIES["record"]
SUBJECT_STRATEGIES["TopicNameStrategy"] = SUBJECT_STRATEGIES["topic"]


@dataclass(frozen=True, eq=False)
class _Writer:
    name: str
    version: int | None
    plain: Any


class ConfluentCodec:
    """Confluent wire format: magic 0, 4-byte big-endian schema id, body.

    Schemas are registered (or looked up, with ``auto_register=False``) under the subject
    the strategy names; ids are cached both ways. Messages in single-object encoding are
    decoded too, so a deployment can switch formats without draining topics.
    """

    def __init__(
        self,
        store: SchemaStore,
        registry_url: str,
        subject_strategy: str | SubjectStrategy = "topic_record",
        *,
        auto_register: bool = True,
        timeout: float = 5.0,
    ) -> None:
        self.store = store
        self.registry = RegistryClient(registry_url, timeout=timeout)
        if isinstance(subject_strategy, str):
            try:
                subject_strategy = SUBJECT_STRATEGIES[subject_strategy]
            except KeyError:
                raise ValueError(
                    f"unknown subject strategy {subject_strategy!r}; "
                    f"use one of {sorted(SUBJECT_STRATEGIES)} or a callable"
                ) from None
        self.subject_for: SubjectStrategy = subject_strategy
        self.auto_register = auto_register
        self._body = _Body(store)
        self._single = SingleObjectCodec(store)
        self._ids: dict[tuple[str, int], int] = {}  # (subject, fingerprint) -> id
        self._writers: dict[int, _Writer] = {}  # id -> writer schema
        self._lock = threading.Lock()

    def encode(
        self,
        name: str,
        record: Mapping[str, Any],
        *,
        topic: str | None = None,
        trusted: bool = False,
    ) -> bytes:
        sv, body = self._body.write(name, record, trusted)
        topic = topic or _only_topic_of(name)
        schema_id = self._schema_id(self.subject_for(topic, sv.fullname), sv)
        return CONFLUENT_MAGIC + schema_id.to_bytes(4, "big") + body

    def decode(self, data: bytes, *, topic: str | None = None) -> Decoded:
        try:
            return self._decode(_as_bytes(data))
        except CodecError:
            raise
        except Exception as exc:
            raise DecodeError(f"cannot decode: {type(exc).__name__}: {exc}") from None

    def _decode(self, data: bytes) -> Decoded:
        if data[:2] == SINGLE_OBJECT_MARKER:
            return self._single.decode(data)
        if data[:1] != CONFLUENT_MAGIC:
            raise DecodeError(f"not Confluent wire format: magic byte {data[:1].hex()!r}, want 00")
        if len(data) < 5:
            raise DecodeError(f"truncated Confluent header: {len(data)} bytes, need 5")
        schema_id = int.from_bytes(data[1:5], "big")
        writer = self._writer(schema_id)
        label = f"{writer.name} (registry id {schema_id})"
        reader, record = self._body.read(data[5:], writer.plain, writer.name, label)
        return Decoded(writer.name, reader.version, record, writer.version)

    def _schema_id(self, subject: str, sv: SchemaVersion) -> int:
        key = (subject, sv.fingerprint)
        with self._lock:
            cached = self._ids.get(key)
        if cached is not None:
            return cached
        text = json.dumps(sv.schema)
        try:
            if self.auto_register:
                schema_id = self.registry.register(subject, text)
            else:
                schema_id = self.registry.lookup(subject, text)
        except UnknownSchemaError as exc:
            raise EncodeError(f"{sv.name} v{sv.version}: {exc}") from None
        with self._lock:
            self._ids[key] = schema_id
            self._writers.setdefault(schema_id, _Writer(sv.name, sv.version, sv.plain))
        return schema_id

    def _writer(self, schema_id: int) -> _Writer:
        with self._lock:
            cached = self._writers.get(schema_id)
        if cached is not None:
            return cached
        writer = self._resolve(schema_id, self.registry.schema_by_id(schema_id))
        with self._lock:
            self._writers[schema_id] = writer
        return writer

    def _resolve(self, schema_id: int, text: str) -> _Writer:
        try:
            raw = json.loads(text)
            fp = fingerprint(raw)
        except Exception as exc:
            raise RegistryError(f"registry schema id {schema_id} is not Avro JSON: {exc}") from None
        if self.store.has_fingerprint(fp):
            sv = self.store.by_fingerprint(fp)
            return _Writer(sv.name, sv.version, sv.plain)
        # Not in avro/ (a newer producer?): decode with the registry's schema as writer,
        # resolving to our latest version of the same record name, if we know the name.
        name = raw.get("name", "") if isinstance(raw, dict) else ""
        if isinstance(raw, dict) and raw.get("namespace") and "." not in name:
            name = f"{raw['namespace']}.{name}"
        short = name.rpartition(".")[2]
        if short not in self.store:
            raise UnknownSchemaError(
                f"unknown schema id {schema_id} ({name or 'unnamed'}, fingerprint 0x{fp:016x}): "
                f"no such record in {self.store.path} — dead-letter it"
            )
        try:
            plain = parse_schema(strip_logical_types(raw))
        except Exception as exc:
            raise RegistryError(f"registry schema id {schema_id} does not parse: {exc}") from None
        return _Writer(short, None, plain)


def _only_topic_of(name: str) -> str | None:
    """The topic carrying ``name`` when the catalogue has exactly one, else None."""
    from topics.catalogue import topics_for_record

    found = topics_for_record(name)
    return found[0].name if len(found) == 1 else None


def make_codec(
    store: SchemaStore,
    registry_url: str | None,
    subject_strategy: str | SubjectStrategy = "topic_record",
) -> SingleObjectCodec | ConfluentCodec:
    """Confluent wire format when a registry URL is configured, else single-object encoding."""
    if registry_url:
        return ConfluentCodec(store, registry_url, subject_strategy)
    return SingleObjectCodec(store)
