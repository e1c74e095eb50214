"""Avro schema-resolution rules in topics.compat (reader = new, writer = old)."""

from __future__ import annotations

from typing import Any

import pytest

from topics.compat import check_backward, check_forward


def rec(*fields: dict[str, Any], name: str = "R", **extra: Any) -> dict[str, Any]:
    return {"type": "record", "name": name, "namespace": "t", "fields": list(fields), **extra}


def fld(name: str, type_: Any, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": type_, **extra}


def enum(symbols: list[str], **extra: Any) -> dict[str, Any]:
    return {"type": "enum", "name": "E", "symbols": symbols, **extra}


COMPATIBLE = {
    "identical": (rec(fld("a", "long")), rec(fld("a", "long"))),
    "field added with default": (
        rec(fld("a", "long"), fld("b", "string", default="x")),
        rec(fld("a", "long")),
    ),
    "optional field added": (
        rec(fld("a", "long"), fld("b", ["null", "int"], default=None)),
        rec(fld("a", "long")),
    ),
    "field removed": (rec(fld("a", "long")), rec(fld("a", "long"), fld("b", "string"))),
    "int -> long": (rec(fld("a", "long")), rec(fld("a", "int"))),
    "int -> double": (rec(fld("a", "double")), rec(fld("a", "int"))),
    "long -> float": (rec(fld("a", "float")), rec(fld("a", "long"))),
    "float -> double": (rec(fld("a", "double")), rec(fld("a", "float"))),
    "string -> bytes": (rec(fld("a", "bytes")), rec(fld("a", "string"))),
    "bytes -> string": (rec(fld("a", "string")), rec(fld("a", "bytes"))),
    "value -> optional": (rec(fld("a", ["null", "long"], default=None)), rec(fld("a", "long"))),
    "union widened": (
        rec(fld("a", ["null", "long", "string"], default=None)),
        rec(fld("a", ["null", "long"], default=None)),
    ),
    "union branch promoted": (
        rec(fld("a", ["null", "double"], default=None)),
        rec(fld("a", ["null", "int"], default=None)),
    ),
    "enum symbol added": (rec(fld("e", enum(["A", "B", "C"]))), rec(fld("e", enum(["A", "B"])))),
    "enum symbol removed, reader default": (
        rec(fld("e", enum(["U", "A"], default="U"))),
        rec(fld("e", enum(["U", "A", "B"]))),
    ),
    "field renamed with alias": (rec(fld("b", "long", aliases=["a"])), rec(fld("a", "long"))),
    "record renamed with alias": (
        rec(fld("a", "long"), name="S", aliases=["t.R"]),
        rec(fld("a", "long")),
    ),
    "namespace changed, same short name": (
        {**rec(fld("a", "long")), "namespace": "other"},
        rec(fld("a", "long")),
    ),
    "nested record field added with default": (
        rec(fld("n", rec(fld("x", "int"), fld("y", "int", default=0), name="N"))),
        rec(fld("n", rec(fld("x", "int"), name="N"))),
    ),
    "array items promoted": (
        rec(fld("a", {"type": "array", "items": "long"})),
        rec(fld("a", {"type": "array", "items": "int"})),
    ),
    "map values widened": (
        rec(fld("m", {"type": "map", "values": ["null", "long", "string"]})),
        rec(fld("m", {"type": "map", "values": ["null", "long"]})),
    ),
    "named type referenced twice": (
        rec(fld("e", enum(["A", "B"])), fld("f", "E")),
        rec(fld("e", enum(["A"])), fld("f", "E")),
    ),
    "recursive record": (
        rec(fld("next", ["null", "R"], default=None), fld("v", "long")),
        rec(fld("next", ["null", "R"], default=None), fld("v", "int")),
    ),
    "fixed same size": (
        rec(fld("f", {"type": "fixed", "name": "F", "size": 4})),
        rec(fld("f", {"type": "fixed", "name": "F", "size": 4})),
    ),
    "logical type annotation added": (
        rec(fld("t", {"type": "long", "logicalType": "timestamp-millis"})),
        rec(fld("t", "long")),
    ),
}

INCOMPATIBLE = {
    "field added without default": (
        rec(fld("a", "long"), fld("b", "string")),
        rec(fld("a", "long")),
        "R.b: new field without",
    ),
    "long -> int": (
        rec(fld("a", "int")),
        rec(fld("a", "long")),
        "R.a: type changed from long to int",
    ),
    "double -> float": (rec(fld("a", "float")), rec(fld("a", "double")), "from double to float"),
    "string -> long": (rec(fld("a", "long")), rec(fld("a", "string")), "from string to long"),
    "optional -> required": (
        rec(fld("a", "long")),
        rec(fld("a", ["null", "long"], default=None)),
        "R.a: old union branch null cannot be read",
    ),
    "union narrowed": (
        rec(fld("a", ["null", "long"], default=None)),
        rec(fld("a", ["null", "long", "string"], default=None)),
        "old union branch string cannot be read",
    ),
    "value into union without it": (
        rec(fld("a", ["null", "string"], default=None)),
        rec(fld("a", "boolean")),
        "matches no branch of the new union",
    ),
    "enum symbol removed, no default": (
        rec(fld("e", enum(["A"]))),
        rec(fld("e", enum(["A", "B"]))),
        "R.e: enum symbol(s) B removed",
    ),
    "record renamed without alias": (
        rec(fld("a", "long"), name="S"),
        rec(fld("a", "long")),
        "renamed from t.R to t.S",
    ),
    "enum renamed": (
        rec(fld("e", {**enum(["A"]), "name": "F"})),
        rec(fld("e", enum(["A"]))),
        "R.e: enum renamed from t.E to t.F",
    ),
    "nested field added without default": (
        rec(fld("n", rec(fld("x", "int"), fld("y", "int"), name="N"))),
        rec(fld("n", rec(fld("x", "int"), name="N"))),
        "R.n.y: new field without a default",
    ),
    "array items narrowed": (
        rec(fld("a", {"type": "array", "items": "int"})),
        rec(fld("a", {"type": "array", "items": "long"})),
        "R.a[]: type changed",
    ),
    "map values changed": (
        rec(fld("m", {"type": "map", "values": "string"})),
        rec(fld("m", {"type": "map", "values": "long"})),
        "R.m{}: type changed",
    ),
    "map -> array": (
        rec(fld("m", {"type": "array", "items": "long"})),
        rec(fld("m", {"type": "map", "values": "long"})),
        "from map to array",
    ),
    "fixed size changed": (
        rec(fld("f", {"type": "fixed", "name": "F", "size": 8})),
        rec(fld("f", {"type": "fixed", "name": "F", "size": 4})),
        "fixed size changed from 4 to 8",
    ),
    "invalid default": (
        rec(fld("a", "long"), fld("b", "long", default="x")),
        rec(fld("a", "long")),
        "new schema is not valid Avro",
    ),
}


@pytest.mark.parametrize("case", COMPATIBLE)
def test_compatible_pairs(case: str) -> None:
    new, old = COMPATIBLE[case]
    assert check_backward(new, old) == []


@pytest.mark.parametrize("case", INCOMPATIBLE)
def test_incompatible_pairs(case: str) -> None:
    new, old, expected = INCOMPATIBLE[case]
    problems = check_backward(new, old)
    assert problems, case
    assert any(expected in p for p in problems), problems


def test_reports_every_problem_not_just_the_first() -> None:
    old = rec(fld("a", "long"), fld("b", "string"))
    new = rec(fld("a", "int"), fld("b", "boolean"), fld("c", "long"))
    problems = check_backward(new, old)
    assert len(problems) == 3
    assert [p.split(":")[0] for p in problems] == ["R.a", "R.b", "R.c"]


def test_forward_is_backward_reversed() -> None:
    old = rec(fld("a", "long"))
    new = rec(fld("a", "long"), fld("b", "string", default=""))
    assert check_backward(new, old) == []
    assert check_forward(new, old) == []  # old readers ignore the new field
    narrowed = rec(fld("a", "int"))
    # narrowing long -> int: old readers (long) read new int data, not the reverse
    assert check_forward(narrowed, old) == []
    assert check_backward(narrowed, old) != []
