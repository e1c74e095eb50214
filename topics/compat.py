"""Avro schema-resolution checks: can data written with one schema be read with another?

``check_backward(new, old)`` applies the Avro spec's resolution rules with reader = new and
writer = old, and lists every problem (empty list = compatible). homestream only allows
BACKWARD-compatible changes, checked transitively (``check_store``): compacted topics keep
records forever, so the latest version must read every older one.
"""

from __future__ import annotations

from typing import Any

from fastavro import parse_schema

from topics.fingerprint import PRIMITIVES, fullname

# writer type -> reader types it may be promoted to
_PROMOTIONS = {
    "int": {"long", "float", "double"},
    "long": {"float", "double"},
    "float": {"double"},
    "string": {"bytes"},
    "bytes": {"string"},
}


def _names(schema: Any) -> dict[str, tuple[dict[str, Any], str]]:
    """fullname -> (named schema, its namespace), for resolving references."""
    found: dict[str, tuple[dict[str, Any], str]] = {}

    def walk(s: Any, ns: str) -> None:
        if isinstance(s, list):
            for branch in s:
                walk(branch, ns)
        elif isinstance(s, dict):
            kind = s.get("type")
            if kind in ("record", "error", "enum", "fixed"):
                full = fullname(s["name"], s.get("namespace", ns))
                inner = full.rpartition(".")[0]
                found[full] = (s, inner)
                for f in s.get("fields", ()):
                    walk(f["type"], inner)
            elif kind == "array":
                walk(s["items"], ns)
            elif kind == "map":
                walk(s["values"], ns)
            elif isinstance(kind, (dict, list)):
                walk(kind, ns)

    walk(schema, "")
    return found


class _Side:
    """One schema with its named types; ``resolve`` turns references into definitions."""

    def __init__(self, schema: Any) -> None:
        self.names = _names(schema)

    def resolve(self, s: Any, ns: str) -> tuple[Any, str]:
        """(schema, namespace) with references followed and {"type": "int"} made "int"."""
        while True:
            if isinstance(s, str):
                if s in PRIMITIVES:
                    return s, ns
                s, ns = self.names[fullname(s, ns)]
                continue
            if isinstance(s, dict):
                kind = s.get("type")
                if isinstance(kind, (dict, list)):
                    s = kind
                    continue
                if kind in PRIMITIVES:
                    return kind, ns
                if kind not in ("record", "error", "enum", "fixed", "array", "map"):
                    s = kind
                    continue
            return s, ns


def _kind(s: Any) -> str:
    if isinstance(s, str):
        return s
    if isinstance(s, list):
        return "union"
    return "record" if s["type"] == "error" else str(s["type"])


def _label(s: Any) -> str:
    kind = _kind(s)
    return f"{kind} {s['name']}" if kind in ("record", "enum", "fixed") else kind


class _Checker:
    def __init__(self, reader: Any, writer: Any) -> None:
        self.r = _Side(reader)
        self.w = _Side(writer)
        self.active: set[tuple[int, int]] = set()  # record pairs being checked (recursion)

    def check(self, r: Any, w: Any, path: str, rns: str, wns: str) -> list[str]:
        r, rns = self.r.resolve(r, rns)
        w, wns = self.w.resolve(w, wns)
        if isinstance(w, list):
            problems = []
            for branch in w:
                sub = self.check(r, branch, path, rns, wns)
                if sub:
                    label = _label(self.w.resolve(branch, wns)[0])
                    problems.append(f"{path}: old union branch {label} cannot be read: {sub[0]}")
            return problems
        if isinstance(r, list):
            for branch in r:
                if not self.check(branch, w, path, rns, wns):
                    return []
            return [f"{path}: old type {_label(w)} matches no branch of the new union"]
        rk, wk = _kind(r), _kind(w)
        if rk != wk:
            if rk in _PROMOTIONS.get(wk, ()):
                return []
            return [f"{path}: type changed from {_label(w)} to {_label(r)} (not a promotion)"]
        if rk == "array":
            return self.check(r["items"], w["items"], f"{path}[]", rns, wns)
        if rk == "map":
            return self.check(r["values"], w["values"], f"{path}{{}}", rns, wns)
        if rk in ("record", "enum", "fixed"):
            problem = _name_problem(r, w, path, rns, wns)
            if problem:
                return [problem]
            if rk == "fixed" and r["size"] != w["size"]:
                return [f"{path}: fixed size changed from {w['size']} to {r['size']}"]
            if rk == "enum":
                return _enum_problems(r, w, path)
            if rk == "record":
                return self._record(r, w, path, rns, wns)
        return []

    def _record(self, r: dict, w: dict, path: str, rns: str, wns: str) -> list[str]:
        key = (id(r), id(w))
        if key in self.active:
            return []  # recursive type: already being checked higher up
        self.active.add(key)
        try:
            rns = fullname(r["name"], r.get("namespace", rns)).rpartition(".")[0]
            wns = fullname(w["name"], w.get("namespace", wns)).rpartition(".")[0]
            old_fields = {f["name"]: f for f in w["fields"]}
            problems = []
            for field in r["fields"]:
                fpath = f"{path}.{field['name']}"
                candidates = [field["name"], *field.get("aliases", ())]
                old = next((old_fields[c] for c in candidates if c in old_fields), None)
                if old is None:
                    if "default" not in field:
                        problems.append(
                            f"{fpath}: new field without a default (old data has no value for it)"
                        )
                    continue
                problems += self.check(field["type"], old["type"], fpath, rns, wns)
            return problems
        finally:
            self.active.discard(key)


def _name_problem(r: dict, w: dict, path: str, rns: str, wns: str) -> str | None:
    rfull = fullname(r["name"], r.get("namespace", rns))
    wfull = fullname(w["name"], w.get("namespace", wns))
    if rfull.rpartition(".")[2] == wfull.rpartition(".")[2]:
        return None
    aliases = {fullname(a, rfull.rpartition(".")[0]) for a in r.get("aliases", ())}
    if wfull in aliases:
        return None
    return f"{path}: {_kind(r)} renamed from {wfull} to {rfull} without an alias for the old name"


def _enum_problems(r: dict, w: dict, path: str) -> list[str]:
    missing = [s for s in w["symbols"] if s not in r["symbols"]]
    if missing and r.get("default") not in r["symbols"]:
        return [
            f"{path}: enum symbol(s) {', '.join(missing)} removed and the new enum has no "
            "default to read them as"
        ]
    return []


def check_backward(new_schema: Any, old_schema: Any) -> list[str]:
    """Problems reading data written with ``old_schema`` using ``new_schema``; [] if none."""
    try:
        parse_schema(new_schema)  # also rejects defaults that do not match their type
    except Exception as exc:
        return [f"new schema is not valid Avro: {exc}"]
    root = new_schema.get("name", "") if isinstance(new_schema, dict) else ""
    return _Checker(new_schema, old_schema).check(new_schema, old_schema, root, "", "")


def check_forward(new_schema: Any, old_schema: Any) -> list[str]:
    """Problems reading data written with ``new_schema`` using ``old_schema``."""
    return check_backward(old_schema, new_schema)


def check_store(store: Any) -> list[str]:
    """Every version of every record must read all its older versions (BACKWARD_TRANSITIVE)."""
    problems = []
    for name in store.names():
        versions = [store.get(name, n) for n in store.versions(name)]
        for i, new in enumerate(versions):
            for old in versions[:i]:
                problems += [
                    f"{name} v{new.version} cannot read v{old.version}: {p}"
                    for p in check_backward(new.schema, old.schema)
                ]
    return problems
