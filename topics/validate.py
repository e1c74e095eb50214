"""Check a Python record against its Avro schema before encoding, with precise messages.

``conform`` returns the value to hand to fastavro (defaults filled in, datetimes and UUIDs
turned into their wire values) or raises EncodeError naming the field path and the expected
versus actual type, e.g. ``DeviceReport.ts: expected long, got str 'abc'``. fastavro's own
errors name the schema, not the offending value, and it silently drops unknown keys.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Any

from topics.errors import EncodeError
from topics.fingerprint import PRIMITIVES, fullname

_INT_RANGE = (-(1 << 31), (1 << 31) - 1)
_LONG_RANGE = (-(1 << 63), (1 << 63) - 1)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class _Mismatch(Exception):
    """Internal: value does not fit; carries the path and message."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")


def _show(value: Any) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"


def _describe(schema: Any) -> str:
    if isinstance(schema, str):
        return schema.rpartition(".")[2]
    if isinstance(schema, list):
        return " | ".join(_describe(b) for b in schema)
    kind = schema.get("type")
    if kind in ("record", "enum", "fixed"):
        return f"{kind} {schema['name']}"
    if kind == "array":
        return f"array<{_describe(schema['items'])}>"
    if kind == "map":
        return f"map<{_describe(schema['values'])}>"
    return _describe(kind)


class Conformer:
    """Validates and normalises records for one top-level record schema."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        self.names: dict[str, dict[str, Any]] = {}
        self._collect(schema, "")

    def _collect(self, s: Any, ns: str) -> None:
        if isinstance(s, list):
            for branch in s:
                self._collect(branch, ns)
        elif isinstance(s, dict):
            kind = s.get("type")
            if kind in ("record", "error", "enum", "fixed"):
                full = fullname(s["name"], s.get("namespace", ns))
                self.names[full] = s
                ns = full.rpartition(".")[0]
                for f in s.get("fields", ()):
                    self._collect(f["type"], ns)
            elif kind == "array":
                self._collect(s["items"], ns)
            elif kind == "map":
                self._collect(s["values"], ns)
            elif isinstance(kind, (dict, list)):
                self._collect(kind, ns)

    def conform(self, record: Any) -> dict[str, Any]:
        """The record ready for fastavro, or EncodeError."""
        try:
            out = self._value(self.schema, record, self.schema["name"], "")
        except _Mismatch as exc:
            raise EncodeError(str(exc)) from None
        return out

    # -- one value against one schema ----------------------------------------------------
    def _value(self, s: Any, v: Any, path: str, ns: str) -> Any:
        if isinstance(s, list):
            return self._union(s, v, path, ns)
        if isinstance(s, str):
            if s in PRIMITIVES:
                return self._primitive(s, None, v, path)
            return self._value(self.names[fullname(s, ns)], v, path, ns)
        kind = s["type"]
        if isinstance(kind, (dict, list)):
            return self._value(kind, v, path, ns)
        if kind in PRIMITIVES:
            return self._primitive(kind, s.get("logicalType"), v, path)
        if kind in ("record", "error"):
            return self._record(s, v, path, ns)
        if kind == "enum":
            if not isinstance(v, str) or v not in s["symbols"]:
                raise _Mismatch(path, f"expected one of {s['symbols']}, got {_show(v)}")
            return v
        if kind == "fixed":
            if not isinstance(v, (bytes, bytearray)) or len(v) != s["size"]:
                raise _Mismatch(path, f"expected {s['size']} bytes (fixed), got {_show(v)}")
            return bytes(v)
        if kind == "array":
            if not isinstance(v, (list, tuple)):
                raise _Mismatch(path, f"expected {_describe(s)}, got {_show(v)}")
            return [self._value(s["items"], item, f"{path}[{i}]", ns) for i, item in enumerate(v)]
        if kind == "map":
            if not isinstance(v, Mapping):
                raise _Mismatch(path, f"expected {_describe(s)}, got {_show(v)}")
            out = {}
            for key, item in v.items():
                if not isinstance(key, str):
                    raise _Mismatch(path, f"map keys must be str, got {_show(key)}")
                out[key] = self._value(s["values"], item, f"{path}[{key!r}]", ns)
            return out
        return self._value(self.names[fullname(kind, ns)], v, path, ns)

    def _record(self, s: dict[str, Any], v: Any, path: str, ns: str) -> dict[str, Any]:
        if not isinstance(v, Mapping):
            raise _Mismatch(path, f"expected record {s['name']}, got {_show(v)}")
        inner = fullname(s["name"], s.get("namespace", ns)).rpartition(".")[0]
        known = {f["name"] for f in s["fields"]}
        extra = sorted(str(k) for k in v if k not in known)
        if extra:
            raise _Mismatch(f"{path}.{extra[0]}", f"unknown field (not in record {s['name']})")
        out = {}
        for f in s["fields"]:
            name = f["name"]
            if name in v:
                out[name] = self._value(f["type"], v[name], f"{path}.{name}", inner)
            elif "default" in f:
                out[name] = f["default"]
            else:
                raise _Mismatch(
                    f"{path}.{name}", f"missing required field of type {_describe(f['type'])}"
                )
        return out

    def _union(self, branches: list[Any], v: Any, path: str, ns: str) -> Any:
        for branch in branches:
            try:
                return self._value(branch, v, path, ns)
            except _Mismatch:
                continue
        # For a container value with one matching container branch, report the deeper error.
        containers = [b for b in branches if self._container_kind(b, ns) == _container_of(v)]
        if _container_of(v) and len(containers) == 1:
            return self._value(containers[0], v, path, ns)
        raise _Mismatch(path, f"expected {_describe(branches)}, got {_show(v)}")

    def _container_kind(self, s: Any, ns: str) -> str | None:
        if isinstance(s, str):
            target = None if s in PRIMITIVES else self.names.get(fullname(s, ns))
            return self._container_kind(target, ns) if target else None
        if isinstance(s, dict):
            kind = s.get("type")
            if kind in ("map", "record", "error"):
                return "mapping"
            if kind == "array":
                return "sequence"
        return None

    @staticmethod
    def _primitive(kind: str, logical: Any, v: Any, path: str) -> Any:
        if logical in ("timestamp-millis", "timestamp-micros") and isinstance(v, dt.datetime):
            if v.tzinfo is None:
                raise _Mismatch(path, f"expected epoch ms or an aware datetime, got naive {v!r}")
            delta = v - _EPOCH
            ms = delta // dt.timedelta(milliseconds=1)
            return ms if logical == "timestamp-millis" else delta // dt.timedelta(microseconds=1)
        if logical == "uuid":
            if isinstance(v, uuid.UUID):
                return str(v)
            if isinstance(v, str):
                try:
                    uuid.UUID(v)
                except ValueError:
                    raise _Mismatch(path, f"expected a UUID string, got {_show(v)}") from None
        ok = _PRIMITIVE_CHECKS[kind](v)
        if not ok:
            raise _Mismatch(path, f"expected {kind}, got {_show(v)}")
        if kind in ("float", "double"):
            return float(v)
        if kind == "bytes":
            return bytes(v)
        return v


def _is_int(v: Any, bounds: tuple[int, int]) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and bounds[0] <= v <= bounds[1]


def _container_of(v: Any) -> str | None:
    if isinstance(v, Mapping):
        return "mapping"
    if isinstance(v, (list, tuple)):
        return "sequence"
    return None


_PRIMITIVE_CHECKS = {
    "null": lambda v: v is None,
    "boolean": lambda v: isinstance(v, bool),
    "int": lambda v: _is_int(v, _INT_RANGE),
    "long": lambda v: _is_int(v, _LONG_RANGE),
    "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "double": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "bytes": lambda v: isinstance(v, (bytes, bytearray)),
    "string": lambda v: isinstance(v, str),
}
