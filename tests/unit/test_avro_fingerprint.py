"""Parsing Canonical Form, CRC-64-AVRO and the SchemaStore."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from fastavro.schema import fingerprint as fastavro_fingerprint
from fastavro.schema import to_parsing_canonical_form

from topics.errors import SchemaStoreError, UnknownSchemaError
from topics.fingerprint import canonical_form, fingerprint, rabin64
from topics.schemas import AVRO_DIR_ENV, SchemaStore, default_avro_dir

from .test_avro_schemas import STORE

# From the Avro project's share/test/data/schema-tests.txt: (input, canonical form, the
# fingerprint as Java prints it: a signed 64-bit long).
SPEC_VECTORS = [
    ('"null"', '"null"', 7195948357588979594),
    ('{"type":"null"}', '"null"', 7195948357588979594),
    ('"boolean"', '"boolean"', -6970731678124411036),
    ('"int"', '"int"', 8247732601305521295),
    ('{"type":"long"}', '"long"', -3434872931120570953),
    ('"float"', '"float"', 5583340709985441680),
    ('"double"', '"double"', -8181574048448539266),
    ('"bytes"', '"bytes"', 5746618253357095269),
    ('"string"', '"string"', -8142146995180207161),
    ("[  ]", "[]", -1241056759729112623),
    ('[ "int"  ]', '["int"]', -5232228896498058493),
    ('[ "int" , {"type":"boolean"} ]', '["int","boolean"]', 5392556393470105090),
    (
        '{"fields":[], "type":"record", "name":"foo"}',
        '{"name":"foo","type":"record","fields":[]}',
        -4824392279771201922,
    ),
    (
        '{"fields":[], "type":"record", "name":"foo", "namespace":"x.y"}',
        '{"name":"x.y.foo","type":"record","fields":[]}',
        5916914534497305771,
    ),
    (
        '{"fields":[], "type":"record", "name":"a.b.foo", "namespace":"x.y"}',
        '{"name":"a.b.foo","type":"record","fields":[]}',
        -4616218487480524110,
    ),
    (
        '{"fields":[], "type":"record", "name":"foo", "doc":"foo", "aliases":["foo","bar"]}',
        '{"name":"foo","type":"record","fields":[]}',
        -4824392279771201922,
    ),
    (
        '{"fields":[{"type":{"type":"boolean"}, "name":"f1"}], "type":"record", "name":"foo"}',
        '{"name":"foo","type":"record","fields":[{"name":"f1","type":"boolean"}]}',
        7843277075252814651,
    ),
    (
        '{ "fields":[{"type":"boolean", "aliases":[], "name":"f1", "default":"true"},'
        '{"order":"descending","name":"f2","doc":"Hello","type":"int"}],'
        '"type":"record", "name":"foo"}',
        '{"name":"foo","type":"record","fields":[{"name":"f1","type":"boolean"},'
        '{"name":"f2","type":"int"}]}',
        -4860222112080293046,
    ),
    (
        '{"type":"enum", "name":"foo", "symbols":["A1"]}',
        '{"name":"foo","type":"enum","symbols":["A1"]}',
        -6342190197741309591,
    ),
    (
        '{"namespace":"x.y.z", "type":"enum", "name":"foo", "doc":"foo bar",'
        ' "symbols":["A1", "A2"]}',
        '{"name":"x.y.z.foo","type":"enum","symbols":["A1","A2"]}',
        -4448647247586288245,
    ),
    (
        '{"name":"foo","type":"fixed","size":15}',
        '{"name":"foo","type":"fixed","size":15}',
        1756455273707447556,
    ),
    (
        '{"namespace":"x.y.z", "type":"fixed", "name":"foo", "doc":"foo bar", "size":32}',
        '{"name":"x.y.z.foo","type":"fixed","size":32}',
        -3064184465700546786,
    ),
    ('{ "items":{"type":"null"}, "type":"array"}', '{"type":"array","items":"null"}',
     -589620603366471059),
    ('{ "values":"string", "type":"map"}', '{"type":"map","values":"string"}',
     -8732877298790414990),
    (
        '{"name":"PigValue","type":"record",'
        '"fields":[{"name":"value", "type":["null", "int", "long", "PigValue"]}]}',
        '{"name":"PigValue","type":"record","fields":[{"name":"value",'
        '"type":["null","int","long","PigValue"]}]}',
        -1759257747318642341,
    ),
]  # fmt: skip


@pytest.mark.parametrize(("text", "canonical", "signed_fp"), SPEC_VECTORS)
def test_avro_spec_vectors(text: str, canonical: str, signed_fp: int) -> None:
    schema = json.loads(text)
    assert canonical_form(schema) == canonical
    assert fingerprint(schema) == signed_fp & (2**64 - 1)


def test_canonical_form_strips_logical_types_and_writes_named_types_once() -> None:
    schema = {
        "type": "record",
        "name": "R",
        "namespace": "a.b",
        "doc": "gone",
        "fields": [
            {"name": "t", "type": {"type": "long", "logicalType": "timestamp-millis"}},
            {"name": "e", "type": {"type": "enum", "name": "E", "symbols": ["X"], "default": "X"}},
            {"name": "e2", "type": "E"},
            {"name": "n", "type": {"type": "record", "name": "c.N", "fields": []}},
            {"name": "s", "type": "string", "default": "ü"},
        ],
    }
    assert canonical_form(schema) == (
        '{"name":"a.b.R","type":"record","fields":[{"name":"t","type":"long"},'
        '{"name":"e","type":{"name":"a.b.E","type":"enum","symbols":["X"]}},'
        '{"name":"e2","type":"a.b.E"},'
        '{"name":"n","type":{"name":"c.N","type":"record","fields":[]}},'
        '{"name":"s","type":"string"}]}'
    )


def test_rabin_of_empty_input_is_the_seed() -> None:
    assert rabin64(b"") == 0xC15D213AA4D7A795


def test_agrees_with_fastavro_on_every_homestream_schema() -> None:
    for sv in STORE:
        assert sv.canonical == to_parsing_canonical_form(sv.schema)
        # fastavro prints the little-endian bytes in hex.
        assert sv.fingerprint_bytes.hex() == fastavro_fingerprint(sv.canonical, "CRC-64-AVRO")


def test_store_api() -> None:
    sv = STORE.latest("DeviceReport")
    assert STORE.versions("DeviceReport") == [1, 2]
    assert STORE.get("DeviceReport", 2) is sv
    assert STORE.by_fingerprint(sv.fingerprint) is sv
    assert sv.fullname == "io.homestream.events.DeviceReport"
    assert sv.fingerprint_hex == f"0x{sv.fingerprint:016x}"
    assert "DeviceReport" in STORE and "Nope" not in STORE
    assert len({s.fingerprint for s in STORE}) == sum(len(STORE.versions(n)) for n in STORE.names())
    with pytest.raises(KeyError, match="Nope"):
        STORE.latest("Nope")
    with pytest.raises(KeyError, match=r"versions 1\.\.2"):
        STORE.get("DeviceReport", 3)


def test_unknown_fingerprint_message_names_it() -> None:
    with pytest.raises(UnknownSchemaError) as err:
        STORE.by_fingerprint(0xDEADBEEF)
    assert "unknown schema fingerprint 0x00000000deadbeef" in str(err.value)
    assert "dead-letter it" in str(err.value)


def test_default_dir_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    shutil.copytree(STORE.path / "HubStatus", tmp_path / "HubStatus")
    monkeypatch.setenv(AVRO_DIR_ENV, str(tmp_path))
    assert default_avro_dir() == tmp_path
    assert SchemaStore().names() == ["HubStatus"]
    monkeypatch.delenv(AVRO_DIR_ENV)
    assert default_avro_dir() == Path(__file__).resolve().parents[2] / "avro"


def _write(root: Path, rel: str, schema: object) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(schema if isinstance(schema, str) else json.dumps(schema))


REC = {"type": "record", "name": "Thing", "namespace": "io.homestream.events", "fields": []}


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"Thing/v1.avsc": {**REC, "name": "Other"}}, "must equal its directory name"),
        ({"Thing/v1.avsc": REC, "Thing/v3.avsc": REC}, r"versions \[1, 3\] are not 1..2"),
        ({"Thing/v1.avsc": REC, "Thing/V2.avsc": REC}, "named v<N>.avsc"),
        ({"Thing/v1.avsc": "{not json"}, "cannot read JSON"),
        ({"Thing/v1.avsc": {"type": "enum", "name": "Thing", "symbols": []}}, "must be a record"),
        (
            {"Thing/v1.avsc": {**REC, "fields": [{"name": "a", "type": "long", "default": "x"}]}},
            "invalid Avro schema",
        ),
        ({"Thing/notes.txt": "x"}, "named v<N>.avsc"),
    ],
)
def test_store_rejects_inconsistent_directories(tmp_path: Path, files: dict, message: str) -> None:
    for rel, schema in files.items():
        _write(tmp_path, rel, schema)
    with pytest.raises(SchemaStoreError, match=message):
        SchemaStore(tmp_path)


def test_store_needs_a_directory(tmp_path: Path) -> None:
    with pytest.raises(SchemaStoreError, match="no Avro schema directory"):
        SchemaStore(tmp_path / "missing")
