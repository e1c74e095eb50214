"""Schema evolution: every version reads all older ones, proven against fixtures.

tests/unit/avro_evolution/ holds a real v1 -> v2 evolution of CommandStatus twice: once
compatible (good/) and once not (bad/), so this test demonstrably catches a bad change.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from topics.codec import SingleObjectCodec
from topics.compat import check_backward, check_store
from topics.errors import UnknownSchemaError
from topics.schemas import SchemaStore

from .test_avro_schemas import STORE, sample_record

FIXTURES = Path(__file__).parent / "avro_evolution"


@pytest.mark.parametrize("name", STORE.names())
def test_every_version_reads_the_previous_one(name: str) -> None:
    versions = STORE.versions(name)
    assert versions == list(range(1, len(versions) + 1))
    for n in versions[1:]:
        new, old = STORE.get(name, n), STORE.get(name, n - 1)
        assert check_backward(new.schema, old.schema) == [], f"{name} v{n}"


def test_whole_store_is_backward_transitive() -> None:
    assert check_store(STORE) == []


def test_good_fixture_evolution_passes() -> None:
    store = SchemaStore(FIXTURES / "good")
    assert store.versions("CommandStatus") == [1, 2]
    assert check_store(store) == []


def test_bad_fixture_evolution_is_caught() -> None:
    problems = check_store(SchemaStore(FIXTURES / "bad"))
    assert len(problems) == 3
    text = "\n".join(problems)
    assert "CommandStatus v2 cannot read v1" in text
    assert "CommandStatus.command_id: type changed from string to long" in text
    assert "CommandStatus.status: enum symbol(s) UNKNOWN, TIMEOUT removed" in text
    assert "CommandStatus.priority: new field without a default" in text


def test_fixture_v1_is_the_real_v1() -> None:
    real = STORE.get("CommandStatus", 1)
    for variant in ("good", "bad"):
        fixture = SchemaStore(FIXTURES / variant).get("CommandStatus", 1)
        assert fixture.schema == real.schema


def test_v1_bytes_decode_into_the_v2_shape(tmp_path: Path) -> None:
    """What the codec does with an evolved schema: old bytes resolve to the latest version."""
    only_v1 = tmp_path / "CommandStatus"
    only_v1.mkdir()
    shutil.copy(FIXTURES / "good/CommandStatus/v1.avsc", only_v1 / "v1.avsc")
    old_codec = SingleObjectCodec(SchemaStore(tmp_path))
    new_codec = SingleObjectCodec(SchemaStore(FIXTURES / "good"))

    record = sample_record("CommandStatus") | {"status": "TIMEOUT", "reason": "no completion"}
    decoded = new_codec.decode(old_codec.encode("CommandStatus", record))
    assert (decoded.name, decoded.version, decoded.writer_version) == ("CommandStatus", 2, 1)
    assert decoded.record["detail"] == "no completion"  # renamed through its alias
    assert decoded.record["attempt"] == 1  # default of the new field
    assert "capability" not in decoded.record  # dropped in v2
    assert decoded.record["status"] == "TIMEOUT"

    # The other way round single-object encoding cannot work: v1-only readers do not know
    # the v2 fingerprint, and say so.
    v2_bytes = new_codec.encode("CommandStatus", decoded.record | {"status": "CANCELLED"})
    with pytest.raises(UnknownSchemaError, match="dead-letter it"):
        old_codec.decode(v2_bytes)
