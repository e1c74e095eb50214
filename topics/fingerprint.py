"""Avro Parsing Canonical Form and the CRC-64-AVRO (Rabin) fingerprint, per the Avro spec.

Written here rather than taken from fastavro because fastavro's canonical form first parses
(and so rejects) schemas it finds invalid, and its fingerprint is a hex string of the
little-endian bytes; the single-object header needs the plain 64-bit number.
"""

from __future__ import annotations

import json
from typing import Any

PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
NAMED = frozenset({"record", "error", "enum", "fixed"})

_EMPTY = 0xC15D213AA4D7A795  # the spec's CRC-64-AVRO seed
_MASK64 = (1 << 64) - 1


def _table() -> tuple[int, ...]:
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (_EMPTY if fp & 1 else 0)
        table.append(fp)
    return tuple(table)


_TABLE = _table()


def rabin64(data: bytes) -> int:
    """CRC-64-AVRO of ``data`` as an unsigned 64-bit integer."""
    fp = _EMPTY
    for byte in data:
        fp = (fp >> 8) ^ _TABLE[(fp ^ byte) & 0xFF]
    return fp & _MASK64


def fullname(name: str, namespace: str | None) -> str:
    """A name made full with the enclosing namespace, unless it already has one."""
    if "." in name or not namespace:
        return name
    return f"{namespace}.{name}"


def _space_of(full: str) -> str:
    return full.rpartition(".")[0]


def _str(value: str) -> str:
    # [STRINGS]: UTF-8, no escapes beyond what JSON requires.
    return json.dumps(value, ensure_ascii=False)


def canonical_form(schema: Any) -> str:
    """The Parsing Canonical Form of a schema given as parsed JSON (dict, list or str)."""
    return _pcf(schema, "", set())


def _pcf(s: Any, ns: str, seen: set[str]) -> str:
    if isinstance(s, str):
        # [PRIMITIVES] / [FULLNAMES]: a bare name is a primitive or a reference.
        return _str(s if s in PRIMITIVES else fullname(s, ns))
    if isinstance(s, list):
        return "[" + ",".join(_pcf(branch, ns, seen) for branch in s) + "]"
    if not isinstance(s, dict):
        raise ValueError(f"not an Avro schema: {s!r}")
    kind = s.get("type")
    if not isinstance(kind, str):
        return _pcf(kind, ns, seen)  # {"type": {...}} or {"type": [...]}
    if kind in PRIMITIVES:
        return _str(kind)  # [STRIP] drops logicalType and every other attribute
    if kind in NAMED:
        full = fullname(s["name"], s.get("namespace", ns))
        if full in seen:  # a named type is written in full only once
            return _str(full)
        seen.add(full)
        parts = [f'"name":{_str(full)}', f'"type":{_str("record" if kind == "error" else kind)}']
        inner = _space_of(full)
        if kind in ("record", "error"):
            fields = ",".join(
                f'{{"name":{_str(f["name"])},"type":{_pcf(f["type"], inner, seen)}}}'
                for f in s["fields"]
            )
            parts.append(f'"fields":[{fields}]')
        elif kind == "enum":
            parts.append('"symbols":[' + ",".join(_str(x) for x in s["symbols"]) + "]")
        else:
            parts.append(f'"size":{int(s["size"])}')
        return "{" + ",".join(parts) + "}"
    if kind == "array":
        return f'{{"type":"array","items":{_pcf(s["items"], ns, seen)}}}'
    if kind == "map":
        return f'{{"type":"map","values":{_pcf(s["values"], ns, seen)}}}'
    return _str(fullname(kind, ns))  # {"type": "SomeNamedType"}


def fingerprint(schema: Any) -> int:
    """CRC-64-AVRO fingerprint of the schema's Parsing Canonical Form (unsigned 64-bit)."""
    return rabin64(canonical_form(schema).encode("utf-8"))
