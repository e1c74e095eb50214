"""A small JSON Schema validator for request bodies, with field paths in its errors.

It understands the subset the gateway's schemas use (they are also the OpenAPI schemas in
/openapi.json, so what is documented is what is checked): ``type`` (one or a list),
``properties``, ``required``, ``additionalProperties`` (bool or schema), ``enum``,
``minimum``/``maximum``, ``minLength``/``maxLength``, ``pattern``, ``items``,
``minItems``/``maxItems``, ``uniqueItems``, ``anyOf``, ``nullable`` and ``format`` for the id
kinds of ``domain.ids`` (``home-id``, ``device-id``, ``doc-id``, ``username``, ``command-id``).

Errors are ``(path, message)`` pairs; paths look like ``actions[2].delay_ms``.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from domain import ids
from domain.capabilities import json_type

_TYPES = {
    "object": "an object",
    "array": "an array",
    "string": "a string",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "null": "null",
}


def _is(value: Any, t: str) -> bool:
    actual = json_type(value)
    if t == "number":
        return actual in ("integer", "number")
    if t == "integer":
        return actual == "integer" or (actual == "number" and float(value).is_integer())
    return actual == t


# One rule per kind of id (domain.ids), named in schemas as OpenAPI formats.
FORMATS = {
    "home-id": ids.home_id_problem,
    "device-id": ids.device_id_problem,
    "doc-id": ids.doc_id_problem,
    "username": ids.username_problem,
    "command-id": ids.command_id_problem,
}


@cache
def _pattern(text: str) -> re.Pattern[str]:
    return re.compile(text)


def join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def validate(value: Any, schema: dict[str, Any], path: str = "") -> list[tuple[str, str]]:
    errors: list[tuple[str, str]] = []
    _check(value, schema, path, errors)
    return errors


def _check(value: Any, schema: dict[str, Any], path: str, errors: list[tuple[str, str]]) -> None:
    if value is None and schema.get("nullable"):
        return
    if "anyOf" in schema:
        best: list[tuple[str, str]] | None = None
        for option in schema["anyOf"]:
            sub: list[tuple[str, str]] = []
            _check(value, option, path, sub)
            if not sub:
                return
            if best is None or len(sub) < len(best):
                best = sub
        errors.extend(best or [(path, "does not match any allowed shape")])
        return
    types = schema.get("type")
    if types is not None:
        wanted = [types] if isinstance(types, str) else list(types)
        if not any(_is(value, t) for t in wanted):
            names = " or ".join(_TYPES.get(t, t) for t in wanted)
            errors.append((path, f"must be {names}, got {json_type(value)}"))
            return
    if "enum" in schema and value not in schema["enum"]:
        options = ", ".join(repr(v) for v in schema["enum"])
        errors.append((path, f"must be one of {options}, got {value!r}"[:300]))
        return
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            errors.append((path, f"must have at least {schema['minLength']} character(s)"))
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            errors.append((path, f"must have at most {schema['maxLength']} characters"))
        if "pattern" in schema and not _pattern(schema["pattern"]).search(value):
            errors.append((path, f"must match {schema['pattern']}"))
        rule = FORMATS.get(schema.get("format", ""))
        if rule is not None and (problem := rule(value)):
            errors.append((path, problem))
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append((path, f"must be at least {schema['minimum']}, got {value}"))
        if "maximum" in schema and value > schema["maximum"]:
            errors.append((path, f"must be at most {schema['maximum']}, got {value}"))
    elif isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            errors.append((path, f"must have at least {schema['minItems']} item(s)"))
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            errors.append((path, f"must have at most {schema['maxItems']} items"))
        if schema.get("uniqueItems"):
            for i, item in enumerate(value):
                if item in value[:i]:
                    errors.append((join(path, i), "repeats an earlier item"))
                    break
        items = schema.get("items")
        if isinstance(items, dict):
            for i, item in enumerate(value):
                _check(item, items, join(path, i), errors)
    elif isinstance(value, dict):
        props: dict[str, Any] = schema.get("properties", {})
        for key in schema.get("required", ()):
            if key not in value:
                errors.append((join(path, key), "is required"))
        if "minProperties" in schema and len(value) < schema["minProperties"]:
            errors.append((path, f"must have at least {schema['minProperties']} field(s)"))
        if "maxProperties" in schema and len(value) > schema["maxProperties"]:
            errors.append((path, f"must have at most {schema['maxProperties']} fields"))
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            if key in props:
                _check(item, props[key], join(path, key), errors)
            elif extra is False:
                known = ", ".join(props) or "none"
                errors.append((join(path, key), f"is not a known field (known: {known})"))
            elif isinstance(extra, dict):
                _check(item, extra, join(path, key), errors)
