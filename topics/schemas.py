"""SchemaStore: every avro/<RecordName>/v<N>.avsc, parsed, canonicalised and fingerprinted."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastavro import parse_schema

from topics.errors import SchemaStoreError, UnknownSchemaError
from topics.fingerprint import canonical_form, fingerprint

NAMESPACE = "io.homestream.events"
AVRO_DIR_ENV = "HOMESTREAM_AVRO_DIR"
_VERSION_FILE = re.compile(r"^v([1-9][0-9]*)\.avsc$")


def default_avro_dir() -> Path:
    """$HOMESTREAM_AVRO_DIR, else the repository's avro/ next to this package."""
    env = os.environ.get(AVRO_DIR_ENV)
    return Path(env) if env else Path(__file__).resolve().parents[1] / "avro"


def strip_logical_types(schema: Any) -> Any:
    """A copy without ``logicalType`` attributes.

    The codecs read and write through this copy so timestamps stay epoch-ms ints and uuids
    stay strings (plain dicts, JSON-friendly); the binary encoding is the same either way.
    """
    if isinstance(schema, dict):
        return {k: strip_logical_types(v) for k, v in schema.items() if k != "logicalType"}
    if isinstance(schema, list):
        return [strip_logical_types(v) for v in schema]
    return schema


@dataclass(frozen=True, eq=False)
class SchemaVersion:
    """One version of one record schema."""

    name: str
    version: int
    path: Path
    schema: dict[str, Any]  # the .avsc as written: docs, defaults, logical types
    canonical: str  # Parsing Canonical Form
    fingerprint: int  # CRC-64-AVRO of ``canonical``, unsigned
    plain: Any  # fastavro-parsed, logical types stripped: what the codecs use

    @property
    def fullname(self) -> str:
        return f"{self.schema.get('namespace', NAMESPACE)}.{self.name}"

    @property
    def fingerprint_bytes(self) -> bytes:
        """The fingerprint as the single-object header carries it (little-endian)."""
        return self.fingerprint.to_bytes(8, "little")

    @property
    def fingerprint_hex(self) -> str:
        return f"0x{self.fingerprint:016x}"

    def __repr__(self) -> str:
        return f"SchemaVersion({self.name} v{self.version} {self.fingerprint_hex})"


def load_version(name: str, version: int, path: Path) -> SchemaVersion:
    """Read and check one .avsc file."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SchemaStoreError(f"{path}: cannot read JSON: {exc}") from exc
    if not isinstance(raw, dict) or raw.get("type") != "record":
        raise SchemaStoreError(f"{path}: top level must be a record schema")
    if raw.get("name") != name:
        raise SchemaStoreError(
            f"{path}: record name {raw.get('name')!r} must equal its directory name {name!r}"
        )
    try:
        plain = parse_schema(strip_logical_types(raw))
        parse_schema(raw)  # also validates logical-type annotations and defaults
    except Exception as exc:  # fastavro raises several types for bad schemas
        raise SchemaStoreError(f"{path}: invalid Avro schema: {exc}") from exc
    canonical = canonical_form(raw)
    return SchemaVersion(
        name=name,
        version=version,
        path=path,
        schema=raw,
        canonical=canonical,
        fingerprint=fingerprint(raw),
        plain=plain,
    )


class SchemaStore:
    """All schema versions under one avro/ directory, loaded once at construction."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_avro_dir()
        if not self.path.is_dir():
            raise SchemaStoreError(f"no Avro schema directory at {self.path}")
        self._versions: dict[str, list[SchemaVersion]] = {}
        self._by_fp: dict[int, SchemaVersion] = {}
        for sub in sorted(p for p in self.path.iterdir() if p.is_dir()):
            if sub.name.startswith((".", "_")):
                continue
            self._versions[sub.name] = self._load_dir(sub)
        for versions in self._versions.values():
            # Later versions win: if a version only changed docs or defaults, its canonical
            # form (and fingerprint) equals the previous one's, and encode writes the latest.
            for sv in versions:
                self._by_fp[sv.fingerprint] = sv

    @staticmethod
    def _load_dir(sub: Path) -> list[SchemaVersion]:
        found: dict[int, Path] = {}
        for file in sub.iterdir():
            if file.name.startswith("."):
                continue
            m = _VERSION_FILE.match(file.name)
            if not m:
                raise SchemaStoreError(f"{file}: schema files are named v<N>.avsc (N from 1)")
            found[int(m.group(1))] = file
        if not found:
            raise SchemaStoreError(f"{sub}: no v<N>.avsc files")
        expected = list(range(1, len(found) + 1))
        if sorted(found) != expected:
            # Versions are kept forever, so a gap means one was deleted or misnamed.
            raise SchemaStoreError(f"{sub}: versions {sorted(found)} are not 1..{len(found)}")
        return [load_version(sub.name, n, found[n]) for n in expected]

    def names(self) -> list[str]:
        return sorted(self._versions)

    def versions(self, name: str) -> list[int]:
        return [sv.version for sv in self._all(name)]

    def latest(self, name: str) -> SchemaVersion:
        return self._all(name)[-1]

    def get(self, name: str, version: int) -> SchemaVersion:
        versions = self._all(name)
        if not 1 <= version <= len(versions):
            raise KeyError(f"{name} has versions 1..{len(versions)}, not {version}")
        return versions[version - 1]

    def by_fingerprint(self, fp: int) -> SchemaVersion:
        try:
            return self._by_fp[fp]
        except KeyError:
            raise UnknownSchemaError(
                f"unknown schema fingerprint 0x{fp:016x}: not in {self.path} — was it produced "
                "by a newer version? dead-letter it"
            ) from None

    def has_fingerprint(self, fp: int) -> bool:
        return fp in self._by_fp

    def __contains__(self, name: object) -> bool:
        return name in self._versions

    def __iter__(self) -> Iterator[SchemaVersion]:
        for name in self.names():
            yield from self._versions[name]

    def _all(self, name: str) -> list[SchemaVersion]:
        try:
            return self._versions[name]
        except KeyError:
            raise KeyError(f"no Avro schema named {name!r} in {self.path}") from None
